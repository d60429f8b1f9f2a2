//! The probe's report: one serialisable value, rendered as text for people ([`text`]) or as JSON.

pub(crate) mod demo;
pub(crate) mod html;
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

/// A probe's report: serialised as the `--format json` document, rendered by [`text`].
#[derive(Clone, Debug, Serialize)]
pub struct Report {
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
            tool: "authprobe",
            version: env!("CARGO_PKG_VERSION"),
            endpoint: plan.target.endpoint.clone(),
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
        self.exit_code = EXIT_INTERRUPTED;
        self.warnings
            .push(format!("interrupted (Ctrl-C) after {ran} of {planned} attempts: this report covers only those"));
    }

    /// Writes the report as JSON, every string value scrubbed of the run's secrets (what a peer
    /// echoed back included).
    pub fn write_json(&self, out: &mut dyn io::Write) -> io::Result<()> {
        let text = serde_json::to_string_pretty(self)?;
        writeln!(out, "{}", crate::secret::scrub_json_text(&text, &self.secrets))
    }
}
