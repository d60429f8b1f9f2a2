//! `authprobe probe`: crafted custom-auth attempts, classified stage by stage.
//!
//! [`plan`] holds the validated settings; [`attempt`] runs one attempt through the stages
//! (`resolve`, `tcp`, `tls`, `mqtt`, `websocket`, `https`); `classify` turns what happened
//! into the contract's [`outcome`]; `advice` says why and what to check; [`matrix`] makes the
//! `variant`s. What the attempts mean is the diagnosis' job (`crate::diagnosis`); `crate::investigate`
//! runs both.

pub(crate) mod advice;
pub mod attempt;
pub(crate) mod authorize;
pub(crate) mod classify;
pub(crate) mod https;
pub mod matrix;
pub(crate) mod mqtt;
pub mod outcome;
pub mod plan;
pub(crate) mod proxy;
pub(crate) mod resolve;
pub mod sent;
pub(crate) mod tcp;
pub(crate) mod tls;
pub(crate) mod variant;
pub(crate) mod websocket;

pub use attempt::AttemptReport;
pub use plan::{AttemptSpec, Checks, Credentials, DeviceSends, MqttVersion, PlanBuilder, PlanError, ProbePlan, Trust};
pub use proxy::{Proxy, ProxySource};

/// What the fuzz targets drive (see `crate::fuzzing`).
pub(crate) mod fuzzing {
    pub use super::classify::{Observation, TlsError, classify};
    pub use super::mqtt::exchange;
    pub use super::websocket::{config as websocket_config, parse_response_head};
}

use crate::auth::event::Transport;
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
    pub(crate) const SEQUENTIAL: Self = Self { parallel: 1, spacing: None };
}

/// Hooks for live progress (the CLI draws one line per running attempt).
pub trait Progress: Send + Sync {
    /// An attempt starts.
    fn started(&self, _spec: &AttemptSpec) {}
    /// An attempt ended.
    fn finished(&self, _report: &AttemptReport) {}
}

/// No progress output.
pub struct Quiet;
impl Progress for Quiet {}

/// Runs `specs` as scheduled; the attempts come back in the specs' order.
pub async fn run_attempts(
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
        // MQTT attempts that share a client ID run one after another: IoT Core keeps one connection
        // per client ID (a second connect takes the first over, which would look like a policy
        // closing it) and allows one connect a second per client ID, so each starts once the one
        // before has ended and at least `plan.matrix.follow_up_spacing` after it started. HTTPS has no
        // client ID. The chains run in parallel, unordered, so that a finished one frees its slot at
        // once; the report keeps the specs' order.
        None => {
            let mut chains: Vec<Vec<(usize, &AttemptSpec)>> = Vec::new();
            for (i, spec) in specs.iter().enumerate() {
                let shares = |c: &&mut Vec<(usize, &AttemptSpec)>| {
                    spec.transport != Transport::Https
                        && c[0].1.transport != Transport::Https
                        && c[0].1.client_id == spec.client_id
                };
                match chains.iter_mut().find(shares) {
                    Some(chain) => chain.push((i, spec)),
                    None => chains.push(vec![(i, spec)]),
                }
            }
            let one = &one;
            let runs = chains.into_iter().map(|chain| async move {
                let mut out = Vec::with_capacity(chain.len());
                let mut next = tokio::time::Instant::now();
                for (i, spec) in chain {
                    tokio::time::sleep_until(next).await;
                    next = tokio::time::Instant::now() + plan.matrix.follow_up_spacing;
                    out.push((i, one(spec).await));
                }
                out
            });
            let done: Vec<Vec<(usize, AttemptReport)>> =
                futures_util::stream::iter(runs).buffer_unordered(schedule.parallel.max(1)).collect().await;
            let mut done: Vec<(usize, AttemptReport)> = done.into_iter().flatten().collect();
            done.sort_by_key(|(i, _)| *i);
            done.into_iter().map(|(_, r)| r).collect()
        }
    }
}
