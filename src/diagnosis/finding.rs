//! A finding — why, how sure, on what evidence, what to do — and the context every rule reads.

use super::cause::{self, Cause};
use super::local;
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
    /// The evidence points at it; another cause is not ruled out.
    Likely,
    /// One of the candidates; more evidence needed.
    Possible,
}

impl Confidence {
    /// The word as reports print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Confirmed => "confirmed",
            Self::Likely => "likely",
            Self::Possible => "possible",
        }
    }
}

/// One piece of evidence: an attempt's outcome or a local check's result.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Evidence {
    /// An attempt and its outcome.
    Attempt {
        /// The attempt's id.
        attempt: String,
        /// Its `stage/kind`.
        outcome: String,
    },
    /// A local check and what it found.
    Check {
        /// The check.
        check: local::CheckId,
        /// What it found.
        result: String,
    },
}

impl Evidence {
    /// The evidence of attempt `a`: its id and outcome.
    pub fn attempt(a: &AttemptReport) -> Self {
        Self::Attempt {
            attempt: a.id.clone(),
            outcome: format!("{}/{}", a.outcome.stage.as_str(), a.outcome.kind.as_str()),
        }
    }

    /// The evidence of local check `c`: the check and what it found.
    pub fn check(c: &local::LocalCheck) -> Self {
        Self::Check { check: c.check, result: c.detail.clone() }
    }
}

/// As reports print it: `mqtt → mqtt/closed_before_connack`, `check token_key_name: …`.
impl std::fmt::Display for Evidence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Attempt { attempt, outcome } => write!(f, "{attempt} → {outcome}"),
            Self::Check { check, result } => write!(f, "check {check}: {result}"),
        }
    }
}

/// The troubleshooting step a finding maps to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct See {
    /// The step.
    pub step: crate::auth::troubleshooting::Step,
    /// AWS's troubleshooting page.
    pub url: &'static str,
}

/// What a finding names: a cause of the catalogue, or a failure whose cause the evidence leaves
/// open among its `candidates`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum FindingId {
    /// A cause of the catalogue.
    Cause(Cause),
    /// IoT Core read the credentials and refused them; more than one cause explains it.
    RefusedUnexplained,
    /// The attempts never reached the credentials; more than one cause explains it.
    UnreachableUnexplained,
}

impl FindingId {
    /// The id as reports print it (docs/causes.md).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Cause(c) => c.id(),
            Self::RefusedUnexplained => "refused_unexplained",
            Self::UnreachableUnexplained => "unreachable_unexplained",
        }
    }

    /// The cause named, if the finding names one.
    pub fn cause(self) -> Option<Cause> {
        match self {
            Self::Cause(c) => Some(c),
            _ => None,
        }
    }
}

impl From<Cause> for FindingId {
    fn from(c: Cause) -> Self {
        Self::Cause(c)
    }
}

impl PartialEq<Cause> for FindingId {
    fn eq(&self, other: &Cause) -> bool {
        *self == Self::Cause(*other)
    }
}

impl std::str::FromStr for FindingId {
    type Err = String;

    /// The finding id a report prints (`token_key_name_wrong`, `refused_unexplained`).
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "refused_unexplained" => Ok(Self::RefusedUnexplained),
            "unreachable_unexplained" => Ok(Self::UnreachableUnexplained),
            _ => {
                Cause::from_id(s).map(Self::Cause).ok_or_else(|| format!("`{s}` is not a finding id (docs/causes.md)"))
            }
        }
    }
}

impl std::fmt::Display for FindingId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for FindingId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A diagnosis: why, how sure, on what evidence, and what to do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// A cause, or `refused_unexplained` / `unreachable_unexplained`.
    pub id: FindingId,
    /// Cause, unexplained or risk.
    pub kind: FindingKind,
    /// How sure.
    pub confidence: Confidence,
    /// One sentence a field engineer can read out on a call.
    pub summary: String,
    /// The causes still consistent with the evidence, most likely first.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub candidates: Vec<Cause>,
    /// What it rests on.
    pub evidence: Vec<Evidence>,
    /// What to change.
    pub fix: String,
    /// The exact next commands (placeholders, never secrets).
    pub next: Vec<String>,
    /// The troubleshooting step it maps to.
    pub see: See,
}

impl Finding {
    /// A finding naming `cause`.
    pub fn new(cause: Cause, kind: FindingKind, confidence: Confidence, summary: String, fix: String) -> Self {
        Self {
            id: FindingId::Cause(cause),
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

    pub(crate) fn with_evidence(mut self, evidence: Vec<Evidence>) -> Self {
        self.evidence = evidence;
        self
    }
}

/// Everything the rules read.
pub struct Context<'a> {
    /// Every attempt of the run.
    pub attempts: &'a [AttemptReport],
    /// The plan that ran.
    pub plan: &'a ProbePlan,
    /// The local checks, run before anything was sent ([`local::for_plan`]).
    pub local: &'a [local::LocalCheck],
    /// When the run started and ended (Unix seconds), for the Logs Insights window.
    pub window: (u64, u64),
}
