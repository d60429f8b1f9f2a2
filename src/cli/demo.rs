//! `authprobe demo`: no flags needed; says what it set up, then each scenario's report.

use super::probe::{Bars, Format, OutputArgs};
use crate::report::text;
use clap::Args;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub output: OutputArgs,
}

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let rt = super::runtime()?;
    let bars = Bars::for_output(&args.output);
    let progress: &dyn crate::probe::Progress = match &bars {
        Some(b) => b,
        None => &crate::probe::Quiet,
    };
    let demo = rt.block_on(crate::demo::run(args.output.show_secrets, progress))?;
    let mut out = std::io::stdout().lock();
    if args.output.format == Format::Jsonl {
        for sc in &demo.scenarios {
            serde_json::to_writer(&mut out, &serde_json::json!({"type": "scenario", "scenario": sc}))?;
            writeln!(out)?;
        }
    } else if args.output.format == Format::Json {
        serde_json::to_writer_pretty(&mut out, &demo)?;
        writeln!(out)?;
    } else {
        let color = args.output.color_for(std::io::stdout().is_terminal());
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
            text::write(&sc.report, text::Style { color }, &mut out)?;
            let verdict = if sc.as_designed { "as designed" } else { "NOT as designed" };
            writeln!(out, "scenario {}: expected findings [{}] — {verdict}", sc.name, sc.expected_findings.join(", "))?;
        }
    }
    out.flush()?;
    Ok(ExitCode::from(if demo.as_designed { 0 } else { 1 }))
}
