//! `authprobe demo`: no flags needed; prints what it set up, then the probe's report.

use super::probe::{Format, OutputArgs, render};
use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub output: OutputArgs,
}

pub fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let rt = super::runtime()?;
    let (setup, report) = rt.block_on(crate::demo::run(args.output.show_secrets))?;
    if args.output.format == Format::Text {
        println!("authprobe demo: a local IoT Core custom-auth endpoint, probed over MQTT, WebSocket and HTTPS.");
        println!("No AWS account or network needed: everything runs on 127.0.0.1.\n");
        println!("Set up:");
        println!("  emulator     {} serving {} with its own CA (trusted by the probe)", setup.emulator, setup.endpoint);
        println!(
            "  authorizer   {}: token key name `{}`, signing on (fresh RSA-{} key), allows one token with iot:*",
            setup.authorizer, setup.token_key_name, setup.key_bits
        );
        println!("  good attempts: mqtt, wss, https with the allowed token, signed — all should succeed");
        println!("  broken attempts (each should fail):");
        for (id, why) in &setup.broken {
            println!("    {id:<28} {why}");
        }
        println!();
    }
    render(&report, &args.output)?;
    // The demo succeeds when every attempt did what it was set up to do.
    let as_expected = report.attempts.iter().all(|a| a.as_expected);
    Ok(ExitCode::from(if as_expected { 0 } else { 1 }))
}
