//! The demo's result (`authprobe demo`) and its text: what was set up, then each device's report.

use super::Report;
use super::text;
use std::io::{self, Write};

/// What the demo set up, for the user to read.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Setup {
    pub emulator: String,
    pub endpoint: String,
    pub authorizer: String,
    pub token_key_name: String,
    pub key_bits: usize,
}

/// One device configuration probed with the quick matrix.
#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Scenario {
    pub name: &'static str,
    pub description: &'static str,
    /// The findings this scenario is set up to produce, and only those.
    pub expected_findings: Vec<&'static str>,
    pub as_designed: bool,
    pub report: Report,
}

#[derive(Clone, Debug, serde::Serialize)]
pub(crate) struct Demo {
    pub setup: Setup,
    pub scenarios: Vec<Scenario>,
    /// Every scenario produced exactly its expected findings, and the working device connected.
    pub as_designed: bool,
}

/// The demo as a person reads it: the setup, then each scenario's report and whether it came out as
/// designed.
pub(crate) fn write_text(demo: &Demo, style: text::Style, out: &mut dyn Write) -> io::Result<()> {
    let s = &demo.setup;
    writeln!(out, "authprobe demo: a local IoT Core custom-auth endpoint, probed over MQTT, WebSocket and HTTPS.")?;
    writeln!(out, "No AWS account or network needed: everything runs on 127.0.0.1.\n")?;
    writeln!(out, "Set up:")?;
    writeln!(out, "  emulator    {} serving {} with its own CA (the probe trusts it)", s.emulator, s.endpoint)?;
    writeln!(
        out,
        "  authorizer  {}: token key name `{}`, signing on (a fresh RSA-{} key), allows one token with iot:*, no default authorizer",
        s.authorizer, s.token_key_name, s.key_bits
    )?;
    writeln!(out, "  devices     each probed with the quick matrix (baseline + deviations per transport):")?;
    for (i, sc) in demo.scenarios.iter().enumerate() {
        writeln!(out, "              {}. {}: {}", i + 1, sc.name, sc.description)?;
    }
    for (i, sc) in demo.scenarios.iter().enumerate() {
        writeln!(out, "\n══ {}. {} ═══════════════════════════════════════════", i + 1, sc.name)?;
        writeln!(out, "{}\n", sc.description)?;
        text::write(&sc.report, style, out)?;
        let verdict = if sc.as_designed { "as designed" } else { "NOT as designed" };
        writeln!(out, "scenario {}: expected findings [{}] — {verdict}", sc.name, sc.expected_findings.join(", "))?;
    }
    Ok(())
}
