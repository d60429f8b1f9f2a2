//! `authprobe probe`: crafted custom-auth attempts, classified stage by stage.
//!
//! [`plan`] holds the validated settings; [`attempt`] runs one attempt through the stages
//! ([`resolve`], [`tcp`], [`tls`], [`mqtt`], [`websocket`], [`https`]); [`classify`] turns what happened
//! into the contract's [`outcome`]; [`advice`] says why and what to check.

pub mod advice;
pub mod attempt;
pub mod classify;
pub mod https;
pub mod mqtt;
pub mod outcome;
pub mod plan;
pub mod resolve;
pub mod tcp;
pub mod tls;
pub mod websocket;

pub use attempt::AttemptReport;
pub use plan::{AttemptSpec, Credentials, MqttVersion, ProbePlan, Trust};

use crate::report::Report;

/// Runs `specs` one after another (they may share a client ID, and IoT Core drops the older
/// connection of a client ID) and gathers the report.
pub async fn run(plan: &ProbePlan, specs: &[AttemptSpec]) -> Report {
    let mut attempts = Vec::new();
    for spec in specs {
        attempts.push(attempt::run(plan, spec).await);
    }
    Report::new(plan, attempts)
}
