//! The probe's report: one serialisable value, rendered as text for people ([`text`]) or as JSON.

pub(crate) mod demo;
pub mod fleet;
pub(crate) mod html;
pub mod summarize;
pub mod text;
pub(crate) mod toolkit;

use crate::diagnosis::Finding;
use crate::diagnosis::local::LocalCheck;
use crate::probe::plan::Expect;
use crate::probe::{AttemptReport, ProbePlan, Trust};
use serde::Serialize;
use std::io;

/// Exit codes of `authprobe probe` (docs/outcomes.md).
pub const EXIT_OK: u8 = 0;
pub(crate) const EXIT_FAILED: u8 = 1;
/// Exit code of a run stopped with Ctrl-C (the shell's 128 + SIGINT); the partial report is printed.
pub const EXIT_INTERRUPTED: u8 = 130;

/// The name and version of the `--format json` document's schema (docs/schema/report.schema.json).
/// A change of a field's meaning bumps the version; new optional fields do not.
pub const REPORT_SCHEMA: &str = "authprobe.report/1";
/// The name and version of the JSON Lines records' schema (docs/schema/jsonl.schema.json).
pub const JSONL_SCHEMA: &str = "authprobe.jsonl/1";

/// What a run says in one word: `pass` (every attempt expected to succeed did), `fail`, or
/// `interrupted` (Ctrl-C: no verdict).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every attempt expected to succeed did.
    Pass,
    /// At least one attempt expected to succeed failed.
    Fail,
    /// Stopped before every planned attempt ended.
    Interrupted,
}

impl Verdict {
    /// The word as written in JSON and in the summary line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::Interrupted => "interrupted",
        }
    }
}

/// A probe's report: serialised as the `--format json` document, rendered by [`text`].
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The document's schema and version ([`REPORT_SCHEMA`]).
    pub schema: &'static str,
    /// `authprobe`.
    pub tool: &'static str,
    /// The version of authprobe.
    pub version: &'static str,
    /// The endpoint probed.
    pub endpoint: String,
    /// The port.
    pub port: u16,
    /// The address dialled instead of the endpoint's (`--connect-to`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub connect_to: Option<String>,
    /// The device's client ID (the baselines' CONNECT client ID).
    pub client_id: String,
    /// `--label`: the device or site, for a fleet's aggregation.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// The verdict in one word.
    pub verdict: Verdict,
    /// `--jitter`: how long the run waited before its first attempt, in milliseconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jitter_ms: Option<u64>,
    /// `--exit-zero`: the process exits 0 whatever the verdict (`exit_code` is then 0).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub exit_zero: bool,
    /// Certificate verification was off for every attempt.
    pub insecure: bool,
    /// The proxy every attempt went through (password redacted unless --show-secrets), and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<ReportProxy>,
    /// Why a configured proxy was not used (`NO_PROXY` / `--noproxy`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy_bypassed: Option<String>,
    /// Where each secret came from (a flag, a file, an environment variable, and which device
    /// profile named it).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub secret_sources: Vec<String>,
    /// Problems found in the AWS documents before anything was sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// What the AWS documents said about the credentials, before anything was sent.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub local_checks: Vec<LocalCheck>,
    /// Every attempt, in the order they were planned.
    pub attempts: Vec<AttemptReport>,
    /// Why: causes first (most likely first), then risks; empty when nothing stands out.
    pub findings: Vec<Finding>,
    /// The process's exit code (docs/outcomes.md).
    pub exit_code: u8,
    /// The run was stopped (Ctrl-C) before every planned attempt ended: the report covers those that
    /// did, and claims no verdict.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub interrupted: bool,
    /// Every secret of the run in every encoding: each renderer scrubs what it writes with it, so
    /// what a peer echoed back is redacted whichever field carries it.
    #[serde(skip)]
    pub secrets: crate::secret::Scrubber,
}

/// The proxy of a run: its URL and where it came from (`--proxy` or an environment variable).
#[derive(Clone, Debug, Serialize)]
pub struct ReportProxy {
    /// The proxy URL, password redacted unless `--show-secrets`.
    pub url: String,
    /// `--proxy` or the environment variable.
    pub source: crate::probe::proxy::ProxySource,
}

impl Report {
    /// The report of a run: its plan, the local checks, the attempts and what the diagnosis found.
    pub fn new(
        plan: &ProbePlan,
        warnings: Vec<String>,
        local: Vec<LocalCheck>,
        attempts: Vec<AttemptReport>,
        findings: Vec<Finding>,
    ) -> Self {
        let failed = attempts.iter().any(|a| a.expect == Expect::Pass && !a.succeeded);
        Self {
            schema: REPORT_SCHEMA,
            tool: "authprobe",
            version: env!("CARGO_PKG_VERSION"),
            endpoint: plan.target.endpoint.clone(),
            client_id: plan.device.client_id.clone(),
            label: None,
            verdict: if failed { Verdict::Fail } else { Verdict::Pass },
            jitter_ms: None,
            exit_zero: false,
            port: plan.target.port,
            connect_to: plan
                .target
                .connect_to
                .as_ref()
                .map(|(h, p)| p.map_or_else(|| h.clone(), |p| format!("{h}:{p}"))),
            insecure: matches!(plan.target.trust, Trust::Insecure),
            proxy: plan
                .network
                .proxy
                .as_ref()
                .map(|p| ReportProxy { url: p.display(plan.show_secrets), source: p.source }),
            proxy_bypassed: plan.network.proxy_bypassed.clone(),
            secret_sources: plan.credentials.sources.clone(),
            warnings,
            local_checks: local,
            findings,
            attempts,
            exit_code: if failed { EXIT_FAILED } else { EXIT_OK },
            interrupted: false,
            secrets: crate::probe::matrix::run_secrets(plan),
        }
    }

    /// Marks the report as the partial one of an interrupted run: `ran` of `planned` attempts ended.
    pub fn interrupt(&mut self, ran: usize, planned: usize) {
        self.interrupted = true;
        self.verdict = Verdict::Interrupted;
        self.exit_code = EXIT_INTERRUPTED;
        self.warnings
            .push(format!("interrupted (Ctrl-C) after {ran} of {planned} attempts: this report covers only those"));
    }

    /// `--exit-zero`: the process exits 0 whatever the verdict (an interrupted run still exits 130).
    pub fn exit_zero(&mut self) {
        self.exit_zero = true;
        if !self.interrupted {
            self.exit_code = EXIT_OK;
        }
    }

    /// The finding that answers the run: the first cause (or unexplained failure), not a risk.
    pub fn cause(&self) -> Option<&Finding> {
        self.findings.first().filter(|f| f.kind != crate::diagnosis::FindingKind::Risk)
    }

    /// (attempts expected to succeed that did, attempts expected to succeed).
    pub fn expected_ok(&self) -> (usize, usize) {
        let expected: Vec<_> = self.attempts.iter().filter(|a| a.expect == Expect::Pass).collect();
        (expected.iter().filter(|a| a.succeeded).count(), expected.len())
    }

    /// Writes the report as JSON, every string value scrubbed of the run's secrets (what a peer
    /// echoed back included).
    pub fn write_json(&self, out: &mut dyn io::Write) -> io::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        writeln!(out, "{}", crate::secret::scrub_json_text(&text, &self.secrets))
    }
}
