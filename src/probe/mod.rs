//! `authprobe probe`: crafted custom-auth attempts, classified stage by stage.
//!
//! [`plan`] holds the validated settings; [`attempt`] runs one attempt through the stages
//! ([`resolve`], [`tcp`], [`tls`], [`mqtt`], [`websocket`], [`https`]); [`classify`] turns what happened
//! into the contract's [`outcome`]; [`advice`] says why and what to check; [`matrix`] makes the
//! [`variant`]s, and the diagnosis (`crate::diagnosis`) reads them all and may ask for follow-ups.

pub mod advice;
pub mod attempt;
pub mod authorize;
pub mod classify;
pub mod https;
pub mod matrix;
pub mod mqtt;
pub mod outcome;
pub mod plan;
pub mod proxy;
pub mod resolve;
pub mod tcp;
pub mod tls;
pub mod variant;
pub mod websocket;

pub use attempt::AttemptReport;
pub use plan::{AttemptSpec, Credentials, MqttVersion, ProbePlan, Trust};

use crate::report::Report;
use futures_util::StreamExt as _;
use std::time::Duration;

/// How attempts are scheduled.
#[derive(Clone, Copy, Debug)]
pub struct Schedule {
    /// Attempts in flight at once (at least 1).
    pub parallel: usize,
    /// One at a time with this gap (attempts sharing a client ID: IoT Core allows about one connect
    /// per second per client ID and drops the older connection).
    pub spacing: Option<Duration>,
}

impl Schedule {
    pub const SEQUENTIAL: Self = Self { parallel: 1, spacing: None };
}

/// Hooks for live progress (the CLI draws one line per running attempt).
pub trait Progress: Send + Sync {
    fn started(&self, _spec: &AttemptSpec) {}
    fn finished(&self, _report: &AttemptReport) {}
}

/// No progress output.
pub struct Quiet;
impl Progress for Quiet {}

/// Runs `specs` one after another and gathers the report.
pub async fn run(plan: &ProbePlan, specs: &[AttemptSpec]) -> Report {
    run_with(plan, specs, Schedule::SEQUENTIAL, &Quiet).await
}

/// Runs `specs` as scheduled, then the follow-ups the diagnosis asks for (unless the plan turns
/// them off); the report keeps their order.
pub async fn run_with(plan: &ProbePlan, specs: &[AttemptSpec], schedule: Schedule, progress: &dyn Progress) -> Report {
    let started = unix_now();
    let mut attempts = run_specs(plan, specs, schedule, progress).await;
    if plan.follow_up {
        let more = crate::diagnosis::followup::plan(plan, &attempts);
        if !more.is_empty() {
            // The baseline used the device's client ID moments ago: space every connect that reuses it.
            tokio::time::sleep(plan.follow_up_spacing).await;
            let spaced = Schedule { parallel: 1, spacing: Some(plan.follow_up_spacing) };
            attempts.extend(run_specs(plan, &more, spaced, progress).await);
        }
    }
    Report::new(plan, attempts, (started, unix_now()))
}

fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

async fn run_specs(
    plan: &ProbePlan,
    specs: &[AttemptSpec],
    schedule: Schedule,
    progress: &dyn Progress,
) -> Vec<AttemptReport> {
    let one = |spec: &AttemptSpec| {
        let spec = spec.clone();
        async move {
            progress.started(&spec);
            let r = attempt::run(plan, &spec).await;
            progress.finished(&r);
            r
        }
    };
    match schedule.spacing {
        Some(gap) => {
            let mut out = Vec::new();
            for (i, spec) in specs.iter().enumerate() {
                if i > 0 {
                    tokio::time::sleep(gap).await;
                }
                out.push(one(spec).await);
            }
            out
        }
        // Unordered, so that a finished attempt frees its slot at once; the report keeps the specs' order.
        None => {
            let indexed = specs.iter().enumerate().map(|(i, s)| async move { (i, one(s).await) });
            let mut done: Vec<(usize, AttemptReport)> =
                futures_util::stream::iter(indexed).buffer_unordered(schedule.parallel.max(1)).collect().await;
            done.sort_by_key(|(i, _)| *i);
            done.into_iter().map(|(_, r)| r).collect()
        }
    }
}
