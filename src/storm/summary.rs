//! A storm's report computed from its attempts: the milestones, counts, latency, timeline and shape
//! of one run, or of shards merged on one clock.

use super::plan::StormPlan;
use super::report::{Attempt, Ended, Latency, Milestones, Raw, SCHEMA, Second, Setup, Shard, StormReport};
use std::collections::BTreeMap;

fn percentile(sorted: &[u64], pct: f64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil().max(1.0) as usize;
    sorted.get(rank.min(sorted.len()) - 1).copied()
}

impl StormReport {
    pub(crate) fn build(
        plan: &StormPlan,
        started_unix_ms: u64,
        elapsed: std::time::Duration,
        ended: Ended,
        outcomes: Vec<String>,
        attempts: Vec<Attempt>,
    ) -> Self {
        let raw = Raw { outcomes, attempts };
        Self::from_parts(Setup::of(plan), started_unix_ms, elapsed.as_millis() as u64, ended, raw)
    }

    /// Everything computed from the attempts.
    pub fn from_parts(setup: Setup, started_unix_ms: u64, elapsed_ms: u64, ended: Ended, mut raw: Raw) -> Self {
        raw.attempts.sort_by_key(|a| (a.sent_ms, a.device));
        let accepted_label = raw.outcomes.iter().position(|l| l == "connack_accepted").map(|i| i as u16);
        let is_ok = |a: &Attempt| Some(a.outcome) == accepted_label;
        // Each device's first connection, by when its CONNACK came.
        let mut first: BTreeMap<u32, u64> = BTreeMap::new();
        for a in raw.attempts.iter().filter(|a| is_ok(a)) {
            let at = u64::from(a.sent_ms) + u64::from(a.latency_ms);
            first.entry(a.device).and_modify(|t| *t = (*t).min(at)).or_insert(at);
        }
        let mut times: Vec<u64> = first.values().copied().collect();
        times.sort_unstable();
        let by_share = |pct: f64| {
            let need = ((pct / 100.0) * setup.devices as f64).ceil() as usize;
            (need >= 1 && times.len() >= need).then(|| times[need - 1])
        };
        let time_to_connected_ms =
            Milestones { p50: by_share(50.0), p90: by_share(90.0), p99: by_share(99.0), p100: by_share(100.0) };
        let mut outcomes = BTreeMap::new();
        for a in &raw.attempts {
            let label = raw.outcomes.get(usize::from(a.outcome)).cloned().unwrap_or_default();
            *outcomes.entry(label).or_insert(0) += 1;
        }
        let mut lat: Vec<u64> =
            raw.attempts.iter().filter(|a| a.in_flight > 0).map(|a| u64::from(a.latency_ms)).collect();
        lat.sort_unstable();
        let latency_ms = Latency {
            p50: percentile(&lat, 50.0),
            p95: percentile(&lat, 95.0),
            p99: percentile(&lat, 99.0),
            max: lat.last().copied(),
        };
        let timeline = timeline(&raw.attempts, &is_ok);
        let accepted = raw.attempts.iter().filter(|a| is_ok(a)).count();
        let attempted = raw.attempts.len();
        let secs = (elapsed_ms as f64 / 1000.0).max(0.001);
        let shaped_by = super::shape::shapes(&raw, &is_ok, &timeline, &setup, &times);
        Self {
            schema: SCHEMA.to_owned(),
            tool: "authprobe".to_owned(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            connected: first.len(),
            time_to_connected_ms,
            attempted,
            accepted,
            refused: attempted - accepted,
            outcomes,
            latency_ms,
            rate_per_s: (attempted as f64 / secs * 10.0).round() / 10.0,
            peak_rate_per_s: timeline.iter().map(|s| s.attempted).max().unwrap_or(0),
            timeline,
            shaped_by,
            setup,
            started_unix_ms,
            elapsed_ms,
            ended,
            raw,
        }
    }

    /// Shards' reports of one storm as one: attempts on one clock (the earliest start), devices and
    /// rates added up, everything computed again.
    pub fn merge(reports: Vec<Shard>) -> anyhow::Result<Self> {
        let Some(base) = reports.iter().map(|r| r.started_unix_ms).min() else {
            anyhow::bail!("nothing to merge");
        };
        let mut setup = reports[0].setup.clone();
        setup.devices = 0;
        setup.shards.clear();
        setup.max_rate = None;
        let mut raw = Raw::default();
        let mut end = base;
        for r in &reports {
            if r.schema != SCHEMA || r.setup.endpoint != setup.endpoint {
                anyhow::bail!(
                    "the reports are not shards of one storm (schema {}, endpoint {})",
                    r.schema,
                    r.setup.endpoint
                );
            }
            setup.devices += r.setup.devices;
            setup.shards.extend(r.setup.shards.iter().copied());
            setup.max_rate = match (setup.max_rate, r.setup.max_rate) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
            let offset = u32::try_from(r.started_unix_ms - base)
                .map_err(|_| anyhow::anyhow!("the shards started more than 49 days apart: not one storm"))?;
            end = end.max(r.started_unix_ms + r.elapsed_ms);
            for a in &r.raw.attempts {
                let label = &r.raw.outcomes[usize::from(a.outcome).min(r.raw.outcomes.len().saturating_sub(1))];
                let outcome = match raw.outcomes.iter().position(|l| l == label) {
                    Some(i) => i,
                    None => {
                        raw.outcomes.push(label.clone());
                        raw.outcomes.len() - 1
                    }
                } as u16;
                raw.attempts.push(Attempt { sent_ms: a.sent_ms.saturating_add(offset), outcome, ..*a });
            }
        }
        setup.shards.sort_unstable();
        Ok(Self::from_parts(setup, base, end - base, Ended::Merged, raw))
    }
}

/// Per second: connects started, and answers accepted and refused (by when they came).
fn timeline(attempts: &[Attempt], is_ok: &dyn Fn(&Attempt) -> bool) -> Vec<Second> {
    let last = attempts.iter().map(|a| a.sent_ms.saturating_add(a.latency_ms) / 1000).max().unwrap_or(0);
    let mut out: Vec<Second> = (0..=last).map(|second| Second { second, ..Second::default() }).collect();
    for a in attempts {
        out[(a.sent_ms / 1000) as usize].attempted += 1;
        let s = &mut out[(a.sent_ms.saturating_add(a.latency_ms) / 1000) as usize];
        if is_ok(a) {
            s.accepted += 1;
        } else {
            s.refused += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_take_the_nearest_rank() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 50.0), Some(50));
        assert_eq!(percentile(&v, 99.0), Some(99));
        assert_eq!(percentile(&v, 100.0), Some(100));
        assert_eq!(percentile(&[7], 50.0), Some(7));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
