//! `authprobe inspect CAPTURE`: a device's own packet capture read (see `crate::inspect`).

use super::args::Format;
use anyhow::Context as _;
use clap::Args;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

/// Captures larger than this are refused (a gateway capture of a failing connect is kilobytes).

#[derive(Debug, Args)]
pub(crate) struct InspectArgs {
    /// Print only the report: no warnings on standard error.
    #[arg(short, long)]
    pub quiet: bool,
    /// The capture: pcap or pcapng, as `tcpdump -w` writes it.
    pub capture: PathBuf,
    /// Output format: text, json, or jsonl (one line per object).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// A token-signing public key (SubjectPublicKeyInfo PEM file, repeatable): a signature the device
    /// sent without TLS is checked with it, with the same forensics as `probe`.
    #[arg(long = "public-key", value_name = "PEM")]
    pub public_keys: Vec<PathBuf>,
    /// The authorizer as `aws iot describe-authorizer` prints it: its keys and token key name.
    #[arg(long, value_name = "FILE")]
    pub authorizer_json: Option<PathBuf>,
    /// The token key name (default: the described authorizer's, else `token`).
    #[arg(long, value_name = "KEY")]
    pub token_key_name: Option<String>,
}

/// The keys and token key name the flags give.
fn keys(args: &InspectArgs) -> anyhow::Result<crate::inspect::Keys> {
    let mut keys = crate::inspect::Keys::default();
    if let Some(path) = &args.authorizer_json {
        let text = crate::input::read_text(path, crate::input::Kind::Document, "--authorizer-json")?;
        let a = crate::auth::documents::DescribedAuthorizer::from_describe_json(&text, path)?;
        keys.public_keys.extend(a.signing_keys.clone().unwrap_or_default());
        keys.token_key_name = a.token_key_name.clone();
    }
    keys.public_keys.extend(super::device::read_public_keys(&args.public_keys)?);
    if let Some(k) = &args.token_key_name {
        keys.token_key_name = k.clone();
    }
    Ok(keys)
}

pub(crate) fn run(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let path = &args.capture;
    // Streamed: a capture of any size (or a pipe) is read with bounded memory; a directory or a
    // missing file fails here.
    let file = std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    if file.metadata().is_ok_and(|m| m.is_dir()) {
        anyhow::bail!("{} is a directory; give a capture file made with `tcpdump -w FILE`", path.display());
    }
    let keys = keys(&args)?;
    let mut report = crate::inspect::inspect_with(&path.display().to_string(), file, &keys)
        .map_err(|e| anyhow::anyhow!("{}: {e}; give a capture made with `tcpdump -w FILE`", path.display()))?;
    if args.quiet && args.format == Format::Text {
        // The text report's warning lines (unread blocks, limits); JSON keeps them as data.
        report.warnings.clear();
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut out, &report)?;
            writeln!(out)?;
        }
        // One object per connection, then the capture's summary.
        Format::Jsonl => {
            for c in &report.connections {
                serde_json::to_writer(
                    &mut out,
                    &serde_json::json!({"type": "connection", "capture": report.capture, "connection": c}),
                )?;
                writeln!(out)?;
            }
            let summary = serde_json::json!({"type": "summary", "capture": report.capture, "warnings": report.warnings, "connections": report.connections.len(), "exit_code": report.exit_code});
            serde_json::to_writer(&mut out, &summary)?;
            writeln!(out)?;
        }
        Format::Text => crate::inspect::write_text(&report, &mut out)?,
    }
    out.flush()?;
    Ok(ExitCode::from(report.exit_code))
}
