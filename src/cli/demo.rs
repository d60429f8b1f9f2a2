//! `authprobe demo`: no flags needed; says what it set up, then each scenario's report.

use super::args::{Format, OutputArgs};
use super::progress::Bars;
use crate::report::text;
use clap::Args;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    #[command(flatten)]
    pub output: OutputArgs,
}

pub(crate) fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let rt = super::runtime::runtime()?;
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
        crate::report::demo::write_text(&demo, text::Style { color, details: args.output.details }, &mut out)?;
    }
    out.flush()?;
    Ok(ExitCode::from(if demo.as_designed { 0 } else { 1 }))
}
