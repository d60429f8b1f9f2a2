//! What a storm did: how soon the devices were connected, every attempt's outcome, CONNECT→answer
//! latency, a per-second timeline, and the limit that shaped it — computed from the attempts alone,
//! so that shards' reports merge into one by concatenating their attempts (`--merge`).

use super::plan::StormPlan;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;

/// The report's schema id (docs/storm.md).
pub const SCHEMA: &str = "authprobe.storm/1";

/// The outcome of an attempt the storm's end cut off (its connection was open: the endpoint saw it).
pub const INTERRUPTED: &str = "interrupted";

/// One attempt, as the JSON keeps it: `[device, sent_ms, latency_ms, outcome, in_flight, gap_ms]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(into = "AttemptRow")]
pub struct Attempt {
    /// The device's index.
    pub device: u32,
    /// When its connect started, in ms from the storm's start.
    pub sent_ms: u32,
    /// CONNECT to answer (or to the failing stage's end), in ms.
    pub latency_ms: u32,
    /// Index into `raw.outcomes`.
    pub outcome: u16,
    /// CONNECTs in flight when this one was sent (itself included; 0 if it sent none).
    pub in_flight: u32,
    /// Since the same device's previous connect started, in ms.
    pub gap_ms: Option<u32>,
}

type AttemptRow = (u32, u32, u32, u16, u32, Option<u32>);

impl From<Attempt> for AttemptRow {
    fn from(a: Attempt) -> Self {
        (a.device, a.sent_ms, a.latency_ms, a.outcome, a.in_flight, a.gap_ms)
    }
}

/// Why the storm ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Ended {
    /// `--until-connected` of the devices connected.
    UntilConnected,
    /// `--duration` ran out.
    Duration,
    /// Ctrl-C.
    Interrupted,
    /// Shards' reports merged (each ended on its own).
    Merged,
}

/// What was asked for, as the report repeats it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Setup {
    /// The endpoint (SNI and Host).
    pub endpoint: String,
    /// `mqtt` or `wss`.
    pub transport: String,
    /// `3.1.1` or `5`.
    pub mqtt_version: String,
    /// The devices of this report (its shards).
    pub devices: usize,
    /// Every device of the storm.
    pub devices_total: usize,
    /// `[k, n]` of each shard in this report.
    pub shards: Vec<(u32, u32)>,
    /// The reconnect policy's base delay.
    pub backoff: super::policy::Backoff,
    /// Its jitter.
    pub jitter: super::policy::Jitter,
    /// Its first (and smallest) delay.
    pub min_delay_ms: u64,
    /// Its largest delay.
    pub max_delay_ms: u64,
    /// The first attempts are spread over this.
    pub ramp_ms: u64,
    /// How long a connected device stays (absent: until the end).
    pub hold_ms: Option<u64>,
    /// The storm ends when this share of the devices has connected…
    pub until_connected_pct: f64,
    /// …or after this long.
    pub duration_ms: u64,
    /// Connects per second at most (all shards together).
    pub max_rate: Option<f64>,
    /// Each attempt's deadline.
    pub timeout_ms: u64,
}

/// The times by which a share of the devices had connected (ms; absent: never reached).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Milestones {
    /// Half of them.
    pub p50: Option<u64>,
    /// 90 %.
    pub p90: Option<u64>,
    /// 99 %.
    pub p99: Option<u64>,
    /// All of them.
    pub p100: Option<u64>,
}

/// CONNECT→answer latency of the attempts that sent a CONNECT (ms).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Latency {
    /// Half of them.
    pub p50: Option<u64>,
    /// 95 %.
    pub p95: Option<u64>,
    /// 99 %.
    pub p99: Option<u64>,
    /// The slowest.
    pub max: Option<u64>,
}

/// One second of the storm (by when the answers came).
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Second {
    /// Seconds from the start.
    pub second: u32,
    /// Connects started in this second.
    pub attempted: u32,
    /// Answers accepted in this second.
    pub accepted: u32,
    /// Answers in this second that were not an acceptance.
    pub refused: u32,
}

/// A limit that shaped the storm, and the evidence.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Shape {
    /// `authorizer_concurrency`, `account_connect_rate`, `client_id_rate`, `authorizer_timeout`,
    /// `connections` (failures before the CONNECT), `not_load` (refusals that do not follow the
    /// load), or `none`.
    pub limit: String,
    /// `confirmed` (the answer says it), `likely` (the pattern does).
    pub confidence: String,
    /// What the attempts show, with the numbers.
    pub summary: String,
}

/// What `--merge` reads of a shard's report: what it was asked, when it ran, its attempts.
#[derive(Clone, Debug)]
pub struct Shard {
    /// `authprobe.storm/1`.
    pub schema: String,
    /// What was asked for.
    pub setup: Setup,
    /// When it started (Unix ms).
    pub started_unix_ms: u64,
    /// How long it ran.
    pub elapsed_ms: u64,
    /// Its attempts.
    pub raw: Raw,
}

/// The attempts, for merging shards.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Raw {
    /// Outcome labels (`connack_accepted`, `closed_before_connack`, `connack_refused:0x87`, …).
    pub outcomes: Vec<String>,
    /// Every attempt, by start.
    pub attempts: Vec<Attempt>,
}

/// A storm's report (`--format json`; docs/storm.md).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StormReport {
    /// `authprobe.storm/1`.
    pub schema: String,
    /// `authprobe`.
    pub tool: String,
    /// The tool's version.
    pub version: String,
    /// What was asked for.
    pub setup: Setup,
    /// When the storm started (Unix ms): its attempts' `sent_ms` count from here.
    pub started_unix_ms: u64,
    /// How long it ran.
    pub elapsed_ms: u64,
    /// Why it ended.
    pub ended: Ended,
    /// Devices that connected at least once.
    pub connected: usize,
    /// When 50/90/99/100 % of the devices had connected.
    pub time_to_connected_ms: Milestones,
    /// Connects started.
    pub attempted: usize,
    /// Attempts accepted (CONNACK 0).
    pub accepted: usize,
    /// Attempts not accepted (refused, timed out, or failed before the CONNECT).
    pub refused: usize,
    /// Attempts by outcome.
    pub outcomes: BTreeMap<String, usize>,
    /// CONNECT→answer latency.
    pub latency_ms: Latency,
    /// Connects started per second, over the whole storm.
    pub rate_per_s: f64,
    /// Connects started in its busiest second.
    pub peak_rate_per_s: u32,
    /// Second by second.
    pub timeline: Vec<Second>,
    /// The limits that shaped the storm, most telling first.
    pub shaped_by: Vec<Shape>,
    /// The attempts themselves, for merging shards.
    pub raw: Raw,
}

impl Setup {
    pub(crate) fn of(plan: &StormPlan) -> Self {
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        Self {
            endpoint: plan.server_name.clone(),
            transport: plan.transport.as_str().to_owned(),
            mqtt_version: plan.mqtt_version.as_str().to_owned(),
            devices: plan.identities.len(),
            devices_total: plan.devices_total,
            shards: vec![plan.shard],
            backoff: plan.policy.backoff,
            jitter: plan.policy.jitter,
            min_delay_ms: ms(plan.policy.min_delay),
            max_delay_ms: ms(plan.policy.max_delay),
            ramp_ms: ms(plan.ramp),
            hold_ms: plan.hold.map(ms),
            until_connected_pct: plan.until_connected,
            duration_ms: ms(plan.duration),
            max_rate: plan.max_rate,
            timeout_ms: ms(plan.timeout),
        }
    }
}

/// Reading a shard's JSON report back (`--merge`): read from the JSON tree, field by field (a derived
/// deserializer for the whole report cost the gateway binary more than its 5 MiB allowed).
impl Shard {
    /// The shard in `v`, or what is missing or wrong in it.
    pub fn from_json(v: &Value) -> Result<Self, String> {
        let s = &v["setup"];
        let text = |v: &Value, k: &str| v[k].as_str().map(str::to_owned).ok_or(format!("no `{k}`"));
        let num = |v: &Value, k: &str| v[k].as_u64().ok_or(format!("no `{k}`"));
        let opt = |v: &Value, k: &str| v[k].as_u64();
        let named = |k: &str| text(s, k);
        let setup = Setup {
            endpoint: named("endpoint")?,
            transport: named("transport")?,
            mqtt_version: named("mqtt_version")?,
            devices: num(s, "devices")? as usize,
            devices_total: num(s, "devices_total")? as usize,
            shards: s["shards"]
                .as_array()
                .ok_or("no `shards`")?
                .iter()
                .map(|p| Some((u32::try_from(p[0].as_u64()?).ok()?, u32::try_from(p[1].as_u64()?).ok()?)))
                .collect::<Option<_>>()
                .ok_or("a `shards` entry is not [k, n]")?,
            backoff: super::policy::Backoff::from_name(&named("backoff")?).ok_or("an unknown `backoff`")?,
            jitter: super::policy::Jitter::from_name(&named("jitter")?).ok_or("an unknown `jitter`")?,
            min_delay_ms: num(s, "min_delay_ms")?,
            max_delay_ms: num(s, "max_delay_ms")?,
            ramp_ms: num(s, "ramp_ms")?,
            hold_ms: opt(s, "hold_ms"),
            until_connected_pct: s["until_connected_pct"].as_f64().ok_or("no `until_connected_pct`")?,
            duration_ms: num(s, "duration_ms")?,
            max_rate: s["max_rate"].as_f64(),
            timeout_ms: num(s, "timeout_ms")?,
        };
        let raw = &v["raw"];
        let outcomes = raw["outcomes"]
            .as_array()
            .ok_or("no `raw.outcomes`")?
            .iter()
            .map(|o| o.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or("a `raw.outcomes` entry is not text")?;
        let attempts = raw["attempts"]
            .as_array()
            .ok_or("no `raw.attempts`")?
            .iter()
            .map(|a| {
                let n = |i: usize| a[i].as_u64().and_then(|x| u32::try_from(x).ok());
                Some(Attempt {
                    device: n(0)?,
                    sent_ms: n(1)?,
                    latency_ms: n(2)?,
                    outcome: u16::try_from(n(3)?).ok()?,
                    in_flight: n(4)?,
                    gap_ms: if a[5].is_null() { None } else { Some(n(5)?) },
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or("a `raw.attempts` entry is not [device, sent_ms, latency_ms, outcome, in_flight, gap_ms]")?;
        if attempts.iter().any(|a| usize::from(a.outcome) >= outcomes.len()) {
            return Err("an attempt's outcome is not in `raw.outcomes`".into());
        }
        Ok(Self {
            schema: text(v, "schema")?,
            setup,
            started_unix_ms: num(v, "started_unix_ms")?,
            elapsed_ms: num(v, "elapsed_ms")?,
            raw: Raw { outcomes, attempts },
        })
    }
}
