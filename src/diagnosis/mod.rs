//! Diagnosis: every attempt, every local check and what the user told us, read together into
//! findings from the cause catalogue (docs/causes.md).
//!
//! - [`cause`]: the catalogue's ids, words and troubleshooting steps.
//! - [`local`]: checks of the device's credentials against the AWS documents, before anything is sent.
//! - [`facts`]: what each attempt shows, reduced to what the rules need.
//! - [`differential`]: for each credential cause, the outcome each attempt would show; what the
//!   observations leave is the finding, `confirmed` only when one cause is left.
//! - [`deviation`]: the device's own attempt fails where the documented one connects.
//! - [`explain`]: each cause in one sentence, with its fix.
//! - [`network`]: findings for attempts that never reached the credentials.
//! - [`risks`]: what would break a working device, and post-connect policy findings.
//! - [`followup`]: the attempts that would split the causes still left.
//! - [`next`]: the exact next commands.

pub(crate) mod cause;
pub(crate) mod deviation;
pub(crate) mod differential;
pub(crate) mod explain;
pub(crate) mod facts;
pub(crate) mod followup;
pub mod local;
pub(crate) mod network;
pub(crate) mod next;
pub(crate) mod risks;

pub use cause::Cause;

use crate::probe::{AttemptReport, ProbePlan};
use serde::Serialize;

/// What a finding says about the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// Explains a failed baseline.
    Cause,
    /// A failure whose cause is one of `candidates`.
    Unexplained,
    /// The baseline works; this would break it.
    Risk,
}

/// How sure the finding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// The evidence rules out every other cause.
    Confirmed,
    Likely,
    Possible,
}

/// One piece of evidence: an attempt's outcome or a local check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Evidence {
    Attempt { attempt: String, outcome: String },
    Check { check: &'static str, result: String },
}

impl Evidence {
    pub fn attempt(a: &AttemptReport) -> Self {
        Self::Attempt {
            attempt: a.id.clone(),
            outcome: format!("{}/{}", a.outcome.stage.as_str(), a.outcome.kind.as_str()),
        }
    }

    pub fn check(c: &local::LocalCheck) -> Self {
        Self::Check { check: c.check, result: c.detail.clone() }
    }
}

/// The troubleshooting step a finding maps to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct See {
    pub step: &'static str,
    pub url: &'static str,
}

/// A diagnosis: why, how sure, on what evidence, and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A cause id, or `refused_unexplained` / `unreachable_unexplained`.
    pub id: &'static str,
    pub kind: FindingKind,
    pub confidence: Confidence,
    /// One sentence a field engineer can read out on a call.
    pub summary: String,
    /// The cause ids still consistent with the evidence, most likely first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<&'static str>,
    pub evidence: Vec<Evidence>,
    pub fix: String,
    /// The exact next commands (placeholders, never secrets).
    pub next: Vec<String>,
    pub see: See,
}

impl Finding {
    /// A finding naming `cause`.
    pub fn new(cause: Cause, kind: FindingKind, confidence: Confidence, summary: String, fix: String) -> Self {
        Self {
            id: cause.id(),
            kind,
            confidence,
            summary,
            candidates: Vec::new(),
            evidence: Vec::new(),
            fix,
            next: Vec::new(),
            see: See { step: cause.step(), url: cause::TROUBLESHOOTING_URL },
        }
    }

    pub fn with_evidence(mut self, evidence: Vec<Evidence>) -> Self {
        self.evidence = evidence;
        self
    }
}

/// Everything the rules read.
pub struct Context<'a> {
    pub attempts: &'a [AttemptReport],
    pub plan: &'a ProbePlan,
    /// The local checks, run before anything was sent ([`local::for_plan`]).
    pub local: &'a [local::LocalCheck],
    /// When the run started and ended (Unix seconds), for the Logs Insights window.
    pub window: (u64, u64),
}

/// Every finding, ordered: causes (confirmed, then likely, then possible), then risks.
pub fn diagnose(cx: &Context<'_>) -> Vec<Finding> {
    let mut out = deviation::findings(cx);
    if out.is_empty() {
        out.extend(network::findings(cx));
        out.extend(differential::findings(cx));
    }
    out.extend(risks::findings(cx));
    for f in &mut out {
        f.next = next::commands(f, cx);
    }
    out.sort_by_key(|f| (f.kind == FindingKind::Risk, f.confidence, f.kind));
    out
}
