//! `authprobe summarize FILE…`: a fleet's results counted where they landed (docs/fleet.md).

use crate::report::summarize::{By, Summary};
use clap::{Args, ValueEnum};
use std::io::{BufRead, BufReader, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub(crate) struct SummarizeArgs {
    /// JSON Lines files (`probe --format jsonl`), `--format json` reports, folders of them (their
    /// .jsonl, .ndjson, .json and .log files, recursively), `.gz` files, or `-` for stdin.
    #[arg(value_name = "FILE", required = true)]
    pub inputs: Vec<PathBuf>,
    /// Break the counts down by the runs' label, endpoint or client ID.
    #[arg(long, value_enum)]
    pub by: Option<ByArg>,
    /// Client IDs listed per cause (the first seen).
    #[arg(long, value_name = "N", default_value_t = 5)]
    pub examples: usize,
    /// text or json.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub format: SummaryFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ByArg {
    Label,
    Endpoint,
    ClientId,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum SummaryFormat {
    Text,
    Json,
}

/// Most files one run reads from folders (a bound on a runaway tree).
const MAX_FILES: usize = 1_000_000;
/// Deepest folder read.
const MAX_DEPTH: usize = 16;

pub(crate) fn run(args: SummarizeArgs) -> anyhow::Result<ExitCode> {
    let by = args.by.map(|b| match b {
        ByArg::Label => By::Label,
        ByArg::Endpoint => By::Endpoint,
        ByArg::ClientId => By::ClientId,
    });
    if args.examples > 1000 {
        anyhow::bail!("--examples {}: at most 1000 client IDs per cause", args.examples);
    }
    // Every input is checked before anything is read: a typo is bad input (exit 2), not a count.
    let files = files(&args.inputs)?;
    let mut summary = Summary::new(by, args.examples);
    for f in &files {
        let name = f.display().to_string();
        // A file that cannot be read to its end (unreadable, a truncated gzip) is counted as a bad
        // line at the point it broke; the other files are still read.
        let read = open(f).and_then(|mut input| summary.read(&name, &mut *input));
        if let Err(e) = read {
            summary.unreadable(&name, &e);
        }
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        SummaryFormat::Json => writeln!(out, "{}", serde_json::to_string_pretty(&summary)?)?,
        SummaryFormat::Text => write_text(&summary, &mut out)?,
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The files named: each file as given, each folder's files (sorted, recursively), `-` as stdin.
fn files(inputs: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for input in inputs {
        if input.as_os_str() == "-" {
            out.push(input.clone());
            continue;
        }
        let meta = std::fs::metadata(input)
            .map_err(|e| anyhow::anyhow!("{}: {e} (give JSON Lines files, reports, folders or -)", input.display()))?;
        if meta.is_dir() {
            walk(input, 0, &mut out)?;
        } else {
            out.push(input.clone());
        }
    }
    Ok(out)
}

fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    if depth > MAX_DEPTH {
        return Ok(());
    }
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    entries.sort();
    for path in entries {
        if out.len() >= MAX_FILES {
            break;
        }
        let Ok(meta) = std::fs::metadata(&path) else { continue };
        if meta.is_dir() {
            walk(&path, depth + 1, out)?;
        } else if meta.is_file() && is_result_file(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// In a folder, the files that may hold results: `.jsonl`, `.ndjson`, `.json`, `.log` (a Greengrass
/// component's log folder), each also gzip-compressed (`.gz`); other files (certificates,
/// recipes) are passed over. A file named on the command line is always read.
fn is_result_file(path: &Path) -> bool {
    let name = path.file_name().map(|n| n.to_string_lossy().to_ascii_lowercase()).unwrap_or_default();
    let name = name.strip_suffix(".gz").unwrap_or(&name);
    [".jsonl", ".ndjson", ".json", ".log"].iter().any(|ext| name.ends_with(ext))
}

/// A reader over one input, decompressed when it is gzip (by its magic bytes, whatever its name).
fn open(path: &Path) -> std::io::Result<Box<dyn BufRead>> {
    let raw: Box<dyn BufRead> = if path.as_os_str() == "-" {
        Box::new(BufReader::with_capacity(256 * 1024, std::io::stdin()))
    } else {
        Box::new(BufReader::with_capacity(256 * 1024, std::fs::File::open(path)?))
    };
    let mut raw = raw;
    let gzip = raw.fill_buf()?.starts_with(&[0x1f, 0x8b]);
    Ok(if gzip {
        Box::new(BufReader::with_capacity(256 * 1024, flate2::bufread::MultiGzDecoder::new(raw)))
    } else {
        raw
    })
}

fn write_text(s: &Summary, out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let esc = crate::secret::escape;
    let share = |n: u64| if s.runs == 0 { 0.0 } else { 100.0 * n as f64 / s.runs as f64 };
    writeln!(
        out,
        "{} run(s) in {} file(s), {} line(s): {} attempt/finding record(s) read, {} bad line(s)",
        s.runs, s.files, s.lines, s.other_records, s.bad_lines
    )?;
    writeln!(out)?;
    writeln!(out, "{:<32} {:>8} {:>7}", "verdict", "runs", "share")?;
    for (v, n) in s.verdicts.ranked() {
        writeln!(out, "{:<32} {n:>8} {:>6.1}%", esc(v), share(n))?;
    }
    writeln!(out)?;
    writeln!(out, "{:<32} {:>8} {:>7}  client IDs (first seen)", "first finding", "runs", "share")?;
    for (c, n) in s.causes.ranked() {
        let ids = s.client_ids.get(c).map(|v| v.iter().map(|i| esc(i)).collect::<Vec<_>>().join(", "));
        writeln!(out, "{:<32} {n:>8} {:>6.1}%  {}", esc(c), share(n), ids.unwrap_or_default())?;
    }
    if let Some(by) = s.by {
        let name = serde_json::to_value(by).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        writeln!(out)?;
        writeln!(out, "{:<32} {:>8} {:>6}  {:>6}  first findings", format!("by {name}"), "runs", "pass", "fail")?;
        let mut groups: Vec<_> = s.groups.iter().collect();
        groups.sort_by(|a, b| b.1.runs.cmp(&a.1.runs).then(a.0.cmp(b.0)));
        for (key, g) in groups {
            let causes: Vec<String> = g.causes.ranked().iter().map(|(c, n)| format!("{} {n}", esc(c))).collect();
            writeln!(
                out,
                "{:<32} {:>8} {:>6}  {:>6}  {}",
                esc(key),
                g.runs,
                g.verdicts.get("pass"),
                g.verdicts.get("fail"),
                causes.join(", ")
            )?;
        }
        if s.groups_other > 0 {
            writeln!(out, "{:<32} {:>8}", crate::report::summarize::OTHER, s.groups_other)?;
        }
    }
    if s.bad_lines > 0 {
        writeln!(out)?;
        writeln!(out, "bad lines ({}; the first {} named):", s.bad_lines, s.bad.len())?;
        for b in &s.bad {
            writeln!(out, "  {}:{}: {}", esc(&b.file), b.line, esc(&b.why))?;
        }
    }
    Ok(())
}
