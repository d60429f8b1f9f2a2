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
pub mod classify;
pub mod cors;
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
pub(crate) mod turn;
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
    /// Chains of attempts in flight at once (at least 1); `usize::MAX`: every chain at once.
    pub parallel: usize,
    /// Every attempt in one chain, CONNECTs this far apart (all attempts share a client ID). `None`:
    /// chains by client ID, `--spacing` apart.
    pub spacing: Option<Duration>,
}

impl Schedule {
    pub(crate) const SEQUENTIAL: Self = Self { parallel: 1, spacing: None };
    /// Every chain at once, the plan's spacing.
    pub const ALL: Self = Self { parallel: usize::MAX, spacing: None };
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
    // MQTT attempts that share a client ID form a chain: their CONNECTs take turns (`turn`), everything
    // before runs ahead. HTTPS has no client ID. The chains run in parallel, unordered, so that a
    // finished one frees its slot at once; the report keeps the specs' order.
    let mut chains: Vec<Vec<(usize, &AttemptSpec)>> = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let shares = |c: &&mut Vec<(usize, &AttemptSpec)>| {
            schedule.spacing.is_some()
                || (spec.transport != Transport::Https
                    && c[0].1.transport != Transport::Https
                    && c[0].1.client_id == spec.client_id)
        };
        match chains.iter_mut().find(shares) {
            Some(chain) => chain.push((i, spec)),
            None => chains.push(vec![(i, spec)]),
        }
    }
    let spacing = schedule.spacing.unwrap_or(plan.matrix.follow_up_spacing);
    let runs = chains.into_iter().map(|chain| async move {
        let mut turns = turn::Chain::new(spacing);
        let mut running = futures_util::stream::FuturesUnordered::new();
        let mut out = Vec::with_capacity(chain.len());
        for (i, spec) in chain {
            // Start the next attempt when its turn allows, while the ones before go on.
            let next = turns.next();
            tokio::pin!(next);
            let mut turn = loop {
                tokio::select! {
                    turn = &mut next => break turn,
                    Some(done) = running.next(), if !running.is_empty() => out.push(done),
                }
            };
            running.push(async move {
                progress.started(spec);
                let r = attempt::run_in_turn(plan, spec, &mut turn).await;
                turn.end().await;
                progress.finished(&r);
                (i, r)
            });
        }
        out.extend(running.collect::<Vec<_>>().await);
        out
    });
    let done: Vec<Vec<(usize, AttemptReport)>> =
        futures_util::stream::iter(runs).buffer_unordered(schedule.parallel.max(1)).collect().await;
    let mut done: Vec<(usize, AttemptReport)> = done.into_iter().flatten().collect();
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}
