//! `authprobe summarize`: counts a fleet's probe results where they landed — JSON Lines files
//! (`--format jsonl`, one summary record per run), whole `--format json` reports, gzip-compressed or
//! not — by verdict and first finding, with a breakdown by label, endpoint or client ID and the
//! client IDs behind each cause.
//!
//! It streams: one line at a time (at most [`MAX_LINE`] bytes are kept of a line), and every map is
//! bounded ([`MAX_GROUPS`] keys, then `(other)`), so memory stays bounded whatever the input's size.
//! A line that is not a record is counted and named by file and line (the first [`MAX_BAD_NAMED`]),
//! never fatal.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::io::{self, BufRead};

/// Longest line read as a record; a longer one is a bad line (skipped without being kept).
pub const MAX_LINE: usize = 8 * 1024 * 1024;
/// Largest pretty-printed `--format json` report read whole.
pub const MAX_DOCUMENT: usize = 64 * 1024 * 1024;
/// Most distinct keys in one count (labels, endpoints, causes); the rest count under `(other)`.
pub const MAX_GROUPS: usize = 10_000;
/// Most bad lines named one by one (all are counted).
pub const MAX_BAD_NAMED: usize = 20;
/// The key every group past [`MAX_GROUPS`] counts under.
pub const OTHER: &str = "(other)";

/// The breakdown asked for with `--by`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum By {
    /// `--label` of each run (`(none)` without one).
    Label,
    /// The endpoint probed.
    Endpoint,
    /// The device's client ID.
    ClientId,
}

/// Counts by key, bounded to [`MAX_GROUPS`] keys.
#[derive(Clone, Debug, Default, Serialize)]
#[serde(transparent)]
pub struct Counts(BTreeMap<String, u64>);

impl Counts {
    fn add(&mut self, key: &str) {
        if let Some(n) = self.0.get_mut(key) {
            *n += 1;
        } else if self.0.len() < MAX_GROUPS {
            self.0.insert(key.to_owned(), 1);
        } else {
            *self.0.entry(OTHER.to_owned()).or_default() += 1;
        }
    }

    /// The keys and counts, largest first (then by key).
    pub fn ranked(&self) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.0.iter().map(|(k, n)| (k.as_str(), *n)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v
    }

    /// The count of one key.
    pub fn get(&self, key: &str) -> u64 {
        self.0.get(key).copied().unwrap_or(0)
    }
}

/// One group of the `--by` breakdown.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Group {
    /// Runs in the group.
    pub runs: u64,
    /// By verdict.
    pub verdicts: Counts,
    /// By first finding (`none` when the run named no cause).
    pub causes: Counts,
}

/// A line that was not a record.
#[derive(Clone, Debug, Serialize)]
pub struct BadLine {
    /// The file (`-` for stdin).
    pub file: String,
    /// Its line number (1-based).
    pub line: u64,
    /// Why it was not read.
    pub why: String,
}

/// The name and version of `summarize --format json`'s document.
pub const SUMMARY_SCHEMA: &str = "authprobe.summary/1";

/// What `summarize` found.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Summary {
    /// [`SUMMARY_SCHEMA`].
    pub schema: &'static str,
    /// Files read.
    pub files: u64,
    /// Lines read.
    pub lines: u64,
    /// Runs counted (JSON Lines summary records and whole reports).
    pub runs: u64,
    /// Attempt and finding records (read, not counted as runs).
    pub other_records: u64,
    /// Runs by verdict (`pass`, `fail`, `interrupted`).
    pub verdicts: Counts,
    /// Runs by first finding (`none` when the run named no cause).
    pub causes: Counts,
    /// The breakdown asked for with `--by`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub by: Option<By>,
    /// The groups of the breakdown.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, Group>,
    /// Runs whose group was past [`MAX_GROUPS`].
    #[serde(skip_serializing_if = "is_zero")]
    pub groups_other: u64,
    /// The first client IDs seen for each cause (at most `examples` each, distinct).
    pub client_ids: BTreeMap<String, Vec<String>>,
    /// Lines that were not records.
    pub bad_lines: u64,
    /// The first of them, by file and line.
    pub bad: Vec<BadLine>,
    #[serde(skip)]
    examples: usize,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A record, as far as `summarize` reads it (everything else is skipped unparsed).
#[derive(Deserialize)]
struct Record<'a> {
    #[serde(rename = "type", borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    verdict: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    cause: Option<Cow<'a, str>>,
    #[serde(default)]
    exit_code: Option<u64>,
    #[serde(default)]
    interrupted: Option<bool>,
    #[serde(borrow, default)]
    label: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    endpoint: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    client_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    findings: Option<Vec<FindingRef<'a>>>,
    #[serde(borrow, default)]
    tool: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct FindingRef<'a> {
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow)]
    kind: Cow<'a, str>,
}

impl Summary {
    /// An empty summary: `by` the breakdown, `examples` client IDs kept per cause.
    pub fn new(by: Option<By>, examples: usize) -> Self {
        Self { schema: SUMMARY_SCHEMA, by, examples, ..Self::default() }
    }

    /// Reads one input (a file's contents, decompressed) named `name`.
    pub fn read(&mut self, name: &str, input: &mut dyn BufRead) -> io::Result<()> {
        self.files += 1;
        let mut buf = Vec::new();
        let mut line_no = 0u64;
        loop {
            buf.clear();
            let Some(whole) = read_line_bounded(input, &mut buf, MAX_LINE)? else { break };
            line_no += 1;
            self.lines += 1;
            if !whole {
                self.bad_line(name, line_no, format!("longer than {MAX_LINE} bytes"));
                continue;
            }
            let line = trim_ascii(&buf);
            if line.is_empty() {
                continue;
            }
            if line == b"{" {
                // A pretty-printed `--format json` report: the rest of the file is the document.
                return self.document(name, line_no, input);
            }
            self.line(name, line_no, line);
        }
        Ok(())
    }

    fn document(&mut self, name: &str, line_no: u64, input: &mut dyn BufRead) -> io::Result<()> {
        let mut doc = b"{".to_vec();
        let n = std::io::Read::read_to_end(&mut std::io::Read::take(input, MAX_DOCUMENT as u64), &mut doc)?;
        self.lines += doc.iter().filter(|b| **b == b'\n').count() as u64;
        if n >= MAX_DOCUMENT - 1 {
            self.bad_line(name, line_no, format!("a JSON document larger than {MAX_DOCUMENT} bytes"));
            return Ok(());
        }
        self.line(name, line_no, &doc);
        Ok(())
    }

    fn line(&mut self, name: &str, line_no: u64, line: &[u8]) {
        match serde_json::from_slice::<Record<'_>>(line) {
            Ok(r) => self.record(name, line_no, &r),
            Err(e) => self.bad_line(name, line_no, format!("not a JSON object: {e}")),
        }
    }

    fn record(&mut self, name: &str, line_no: u64, r: &Record<'_>) {
        match r.kind.as_deref() {
            Some("summary") => {}
            None if r.tool.as_deref() == Some("authprobe") && r.findings.is_some() => {}
            Some(_) => {
                self.other_records += 1;
                return;
            }
            None => return self.bad_line(name, line_no, "not an authprobe record (no `type`, no `tool`)".into()),
        }
        let verdict = match (r.verdict.as_deref(), r.interrupted, r.exit_code) {
            (Some(v), _, _) => v,
            (None, Some(true), _) | (None, _, Some(130)) => "interrupted",
            (None, _, Some(0)) => "pass",
            (None, _, Some(_)) => "fail",
            (None, _, None) => {
                return self.bad_line(name, line_no, "a summary without `verdict` or `exit_code`".into());
            }
        };
        let first = r.findings.as_ref().and_then(|f| f.first().filter(|f| f.kind != "risk")).map(|f| f.id.as_ref());
        let cause = r.cause.as_deref().or(first).unwrap_or("none");
        self.runs += 1;
        self.verdicts.add(verdict);
        self.causes.add(cause);
        let client = r.client_id.as_deref().unwrap_or("");
        if self.examples > 0 && !client.is_empty() {
            let known = self.client_ids.len() < MAX_GROUPS || self.client_ids.contains_key(cause);
            if known {
                let ids = self.client_ids.entry(cause.to_owned()).or_default();
                if ids.len() < self.examples && !ids.iter().any(|i| i == client) {
                    ids.push(client.to_owned());
                }
            }
        }
        if let Some(by) = self.by {
            let key = match by {
                By::Label => r.label.as_deref().unwrap_or("(none)"),
                By::Endpoint => r.endpoint.as_deref().unwrap_or("(none)"),
                By::ClientId => r.client_id.as_deref().unwrap_or("(none)"),
            };
            let bump = |g: &mut Group| {
                g.runs += 1;
                g.verdicts.add(verdict);
                g.causes.add(cause);
            };
            if let Some(g) = self.groups.get_mut(key) {
                bump(g);
            } else if self.groups.len() < MAX_GROUPS {
                bump(self.groups.entry(key.to_owned()).or_default());
            } else {
                self.groups_other += 1;
            }
        }
    }

    /// `name` could not be read (to its end): a bad line where it broke.
    pub fn unreadable(&mut self, name: &str, e: &io::Error) {
        let line = self.bad.iter().rev().find(|b| b.file == name).map_or(0, |b| b.line);
        self.bad_line(name, line, format!("cannot read on: {e}"));
    }

    fn bad_line(&mut self, name: &str, line: u64, why: String) {
        self.bad_lines += 1;
        if self.bad.len() < MAX_BAD_NAMED {
            self.bad.push(BadLine { file: name.to_owned(), line, why });
        }
    }
}

/// Reads one line (without its `\n`) into `buf`, keeping at most `max` bytes of it: `None` at the
/// end of the input, `Some(false)` when the line was longer (the rest was skipped unread into memory).
fn read_line_bounded(input: &mut dyn BufRead, buf: &mut Vec<u8>, max: usize) -> io::Result<Option<bool>> {
    let mut any = false;
    let mut whole = true;
    loop {
        let chunk = match input.fill_buf() {
            Ok(c) => c,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        if chunk.is_empty() {
            return Ok(any.then_some(whole));
        }
        any = true;
        let (part, done) = match memchr::memchr(b'\n', chunk) {
            Some(i) => (&chunk[..i], i + 1),
            None => (chunk, chunk.len()),
        };
        if whole && buf.len() + part.len() <= max {
            buf.extend_from_slice(part);
        } else {
            whole = false;
            buf.clear();
        }
        let ended = done <= chunk.len() && chunk.get(done - 1) == Some(&b'\n');
        input.consume(done);
        if ended {
            return Ok(Some(whole));
        }
    }
}

fn trim_ascii(b: &[u8]) -> &[u8] {
    b.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summarize(text: &str, by: Option<By>) -> Summary {
        let mut s = Summary::new(by, 3);
        s.read("t.jsonl", &mut io::Cursor::new(text.as_bytes().to_vec())).unwrap();
        s
    }

    #[test]
    fn summary_records_count_by_verdict_cause_and_group() {
        let text = r#"{"type":"attempt","id":"mqtt"}
{"type":"summary","verdict":"fail","cause":"token_key_name_wrong","label":"a","client_id":"d1"}
{"type":"summary","verdict":"fail","cause":"token_key_name_wrong","label":"b","client_id":"d2"}
not json
{"type":"summary","exit_code":0,"label":"a","client_id":"d3","findings":[{"id":"keep_alive_too_long","kind":"risk"}]}
{"tool":"authprobe","verdict":"fail","findings":[{"id":"authorizer_denied","kind":"cause"}],"client_id":"d4"}
"#;
        let s = summarize(text, Some(By::Label));
        assert_eq!((s.runs, s.other_records, s.bad_lines), (4, 1, 1));
        assert_eq!((s.verdicts.get("fail"), s.verdicts.get("pass")), (3, 1));
        assert_eq!(
            (s.causes.get("token_key_name_wrong"), s.causes.get("none"), s.causes.get("authorizer_denied")),
            (2, 1, 1)
        );
        assert_eq!(s.groups["a"].runs, 2);
        assert_eq!(s.groups["(none)"].runs, 1);
        assert_eq!(s.client_ids["token_key_name_wrong"], ["d1", "d2"]);
        assert_eq!((s.bad[0].line, s.bad[0].file.as_str()), (4, "t.jsonl"));
    }

    #[test]
    fn a_long_line_is_skipped_and_the_next_one_read() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\n{\"type\":\"summary\",\"verdict\":\"pass\"}\n");
        let mut s = Summary::new(None, 0);
        s.read("big", &mut io::BufReader::with_capacity(4096, io::Cursor::new(input))).unwrap();
        assert_eq!((s.runs, s.bad_lines, s.bad[0].line), (1, 1, 1));
    }

    #[test]
    fn groups_are_bounded() {
        let mut s = Summary::new(Some(By::ClientId), 1);
        let text: String = (0..MAX_GROUPS + 5)
            .map(|i| format!("{{\"type\":\"summary\",\"verdict\":\"pass\",\"client_id\":\"d{i}\"}}\n"))
            .collect();
        s.read("many", &mut io::Cursor::new(text.into_bytes())).unwrap();
        assert_eq!((s.groups.len(), s.groups_other, s.runs), (MAX_GROUPS, 5, (MAX_GROUPS + 5) as u64));
    }
}
