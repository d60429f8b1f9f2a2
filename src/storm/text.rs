//! The storm report as text: what a firmware team reads first — how soon the fleet was connected and
//! what shaped it — then the counts, latency and a timeline as sparklines.

use super::report::{Ended, StormReport};
use std::io::Write;

/// Eight levels, lowest first.
const BARS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One mark per second (at most `width`: seconds are then summed per mark), scaled to the largest.
pub fn sparkline(values: &[u32], width: usize) -> String {
    if values.is_empty() {
        return String::new();
    }
    let per = values.len().div_ceil(width.max(1));
    let sums: Vec<u64> = values.chunks(per).map(|c| c.iter().map(|v| u64::from(*v)).sum()).collect();
    let max = sums.iter().copied().max().unwrap_or(0);
    sums.iter()
        .map(|&v| match (v, max) {
            (0, _) => ' ',
            (_, 0) => BARS[0],
            _ => BARS[((v * 7 / max) as usize).min(7)],
        })
        .collect()
}

/// A setting's name as the flags and the JSON spell it.
fn name(v: impl serde::Serialize) -> String {
    serde_json::to_value(v).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
}

fn secs(ms: Option<u64>) -> String {
    ms.map_or("—".to_owned(), |ms| format!("{:.1} s", ms as f64 / 1000.0))
}

/// Writes the report.
pub fn write(r: &StormReport, out: &mut dyn Write) -> std::io::Result<()> {
    let s = &r.setup;
    let shards = match s.shards.as_slice() {
        [(1, 1)] => String::new(),
        list => format!(", shards {}", list.iter().map(|(k, n)| format!("{k}/{n}")).collect::<Vec<_>>().join(" ")),
    };
    writeln!(
        out,
        "authprobe storm: {} devices over {} (MQTT {}) to {}{shards}",
        s.devices, s.transport, s.mqtt_version, s.endpoint
    )?;
    writeln!(
        out,
        "  reconnect: {} backoff {}–{} ms, {} jitter; ramp {} ms; {}",
        name(s.backoff),
        s.min_delay_ms,
        s.max_delay_ms,
        name(s.jitter),
        s.ramp_ms,
        s.max_rate.map_or("no rate cap".to_owned(), |r| format!("at most {r} connects/s"))
    )?;
    let ended = match r.ended {
        Ended::UntilConnected => format!("{}% of the devices connected", s.until_connected_pct),
        Ended::Duration => format!("--duration ({} ms) ran out", s.duration_ms),
        Ended::Interrupted => "interrupted (Ctrl-C): what ran so far".to_owned(),
        Ended::Merged => "shards merged".to_owned(),
    };
    writeln!(out, "\nEnded after {:.1} s: {ended}.", r.elapsed_ms as f64 / 1000.0)?;
    for shape in &r.shaped_by {
        writeln!(out, "Shaped by: {} ({}) — {}", shape.limit, shape.confidence, shape.summary)?;
    }
    let t = &r.time_to_connected_ms;
    writeln!(out, "\nconnected   {} of {} devices", r.connected, s.devices)?;
    writeln!(
        out,
        "  time to    50% {} · 90% {} · 99% {} · 100% {}",
        secs(t.p50),
        secs(t.p90),
        secs(t.p99),
        secs(t.p100)
    )?;
    writeln!(
        out,
        "connects    {} attempted · {} accepted · {} not ({:.1}/s, peak {}/s)",
        r.attempted, r.accepted, r.refused, r.rate_per_s, r.peak_rate_per_s
    )?;
    let mut outcomes: Vec<(&String, &usize)> = r.outcomes.iter().collect();
    outcomes.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (label, n) in outcomes {
        writeln!(out, "  {label:<32} {n:>8}")?;
    }
    let l = &r.latency_ms;
    let ms = |v: Option<u64>| v.map_or("—".to_owned(), |v| format!("{v} ms"));
    writeln!(
        out,
        "latency     p50 {} · p95 {} · p99 {} · max {} (CONNECT → answer)",
        ms(l.p50),
        ms(l.p95),
        ms(l.p99),
        ms(l.max)
    )?;
    let accepted: Vec<u32> = r.timeline.iter().map(|s| s.accepted).collect();
    let refused: Vec<u32> = r.timeline.iter().map(|s| s.refused).collect();
    let per = r.timeline.len().div_ceil(60).max(1);
    writeln!(out, "timeline    ({} s per mark; JSON `timeline` has every second)", per)?;
    writeln!(out, "  accepted  |{}|", sparkline(&accepted, 60))?;
    writeln!(out, "  not       |{}|", sparkline(&refused, 60))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sparklines_scale_to_the_largest_and_sum_when_long() {
        assert_eq!(sparkline(&[0, 1, 7, 14], 60), " ▁▄█");
        assert_eq!(sparkline(&[], 60), "");
        let long: Vec<u32> = (0..120).map(|i| if i < 60 { 1 } else { 2 }).collect();
        let line = sparkline(&long, 60);
        assert_eq!(line.chars().count(), 60);
        assert!(line.ends_with('█'));
    }
}
