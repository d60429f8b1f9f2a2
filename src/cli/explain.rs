//! `authprobe explain <cause-id>`: a cause catalogue entry, on a gateway with no copy of the
//! repository. The catalogue is docs/causes.md's table, built into the binary: one text, read by
//! people in the repository and printed here.

use crate::diagnosis::{Cause, FindingId};
use clap::Args;
use std::io::Write as _;
use std::process::ExitCode;

/// The cause catalogue as the repository documents it.
const CATALOGUE: &str = include_str!("../../docs/causes.md");

#[derive(Debug, Args)]
pub(crate) struct ExplainArgs {
    /// A finding id from a report (`token_key_name_wrong`, `refused_unexplained`, …).
    #[arg(value_name = "ID", required_unless_present = "list")]
    pub id: Option<String>,
    /// List every cause id with what it means.
    #[arg(long)]
    pub list: bool,
    /// Print only the entry: no notes on standard error.
    #[arg(short, long)]
    pub quiet: bool,
}

/// One row of the catalogue table: id, what is wrong, step, what separates it.
fn row(id: &str) -> Option<[String; 3]> {
    // A row may name several ids that share an entry (`policy_publish_denied`, `…_subscribe_…`).
    let key = format!("`{id}`");
    let line = CATALOGUE.lines().filter(|l| l.starts_with("| `")).find(|l| {
        l.trim_matches('|').split(" | ").next().is_some_and(|ids| ids.split(", ").any(|i| i.trim() == key))
    })?;
    let cells: Vec<String> = line.trim_matches('|').split(" | ").map(|c| c.trim().to_owned()).collect();
    match cells.as_slice() {
        [_, what, step, how] => Some([what.clone(), step.clone(), how.clone()]),
        _ => None,
    }
}

/// The ids closest to `wrong` (edit distance), for a helpful error.
fn closest(wrong: &str) -> Vec<&'static str> {
    let mut ids: Vec<(usize, &'static str)> =
        Cause::ALL.iter().map(|c| (distance(wrong, c.id()), c.id())).filter(|(d, _)| *d <= 8).collect();
    ids.sort();
    ids.into_iter().take(3).map(|(_, id)| id).collect()
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

pub(crate) fn run(args: ExplainArgs) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if args.list {
        for c in Cause::ALL {
            writeln!(out, "{:<32} {}", c.id(), c.what())?;
        }
        return Ok(ExitCode::SUCCESS);
    }
    let given = args.id.unwrap_or_default();
    let id: FindingId = match given.trim().parse() {
        Ok(id) => id,
        Err(_) => {
            let near = closest(given.trim());
            let hint = if near.is_empty() { String::new() } else { format!("; did you mean {}?", near.join(", ")) };
            anyhow::bail!(
                "`{}` is not a finding id{hint} (`authprobe explain --list` lists them)",
                crate::secret::escape(&given)
            );
        }
    };
    match id.cause() {
        Some(c) => {
            let [what, _, how] = row(c.id()).unwrap_or_else(|| [c.what().into(), String::new(), String::new()]);
            writeln!(out, "{}: {what}", c.id())?;
            writeln!(
                out,
                "  kind:       {}",
                if c.is_credential() {
                    "credentials (read by IoT Core and the authorizer)"
                } else if c.is_browser() {
                    "what a web page sends (--client-type browser)"
                } else {
                    "network path or TLS"
                }
            )?;
            writeln!(out, "  step:       {}", c.step())?;
            if !how.is_empty() {
                writeln!(out, "  found by:   {how}")?;
            }
            writeln!(out, "  see:        {}", crate::auth::troubleshooting::TROUBLESHOOTING_URL)?;
        }
        None => {
            let what = match id {
                FindingId::RefusedUnexplained => {
                    "IoT Core read the credentials and refused them, and the evidence leaves more than one cause: the finding's candidates are those causes, and its next commands tell them apart"
                }
                _ => {
                    "the attempts never reached the credentials, and the evidence leaves more than one cause on the path: the finding's candidates are those causes"
                }
            };
            writeln!(out, "{id}: {what}")?;
            writeln!(out, "  see:        {}", crate::auth::troubleshooting::TROUBLESHOOTING_URL)?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_cause_has_a_catalogue_row() {
        for c in Cause::ALL {
            let [what, step, how] = row(c.id()).unwrap_or_else(|| panic!("docs/causes.md has no row for {}", c.id()));
            assert!(!what.is_empty() && !step.is_empty() && !how.is_empty(), "{}", c.id());
        }
        assert_eq!(closest("token_key_name_wrongg"), ["token_key_name_wrong"]);
        assert!(closest("sni_missng").contains(&"sni_missing"));
    }
}
