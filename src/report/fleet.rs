//! What a fleet engine keeps of a run: the one-line summary (`--summary-line`), made for the last
//! 1,024 characters of output that an AWS IoT job execution's `statusDetails` keeps and for a
//! Greengrass log line (docs/fleet.md).

use super::Report;

/// Longest summary line, in bytes (what an IoT job execution keeps of a step's output).
pub const MAX_SUMMARY_LINE: usize = 1024;

/// Longest value of a free-text field (endpoint, client ID, label) in the summary line, in bytes.
const MAX_FREE_VALUE: usize = 240;

/// The run in one logfmt line: `authprobe verdict=fail cause=token_key_name_wrong
/// confidence=confirmed ok=1/2 risks=0 endpoint=… client_id=… label=… exit=1`, at most
/// [`MAX_SUMMARY_LINE`] bytes. `cause` is `none` when no cause was named; `ok` counts the attempts
/// expected to succeed that did. Free-text values are scrubbed of the run's secrets, quoted and
/// escaped when they hold spaces, quotes, `=` or control characters, and cut (ending in `…`) when
/// longer than 240 bytes.
pub fn summary_line(report: &Report) -> String {
    let (ok, expected) = report.expected_ok();
    let cause = report.cause();
    let risks = report.findings.iter().filter(|f| f.kind == crate::diagnosis::FindingKind::Risk).count();
    let mut line = format!(
        "authprobe verdict={} cause={} confidence={} ok={ok}/{expected} risks={risks}",
        report.verdict.as_str(),
        cause.map_or("none", |f| f.id.as_str()),
        cause.map_or("none", |f| f.confidence.as_str()),
    );
    let free = [
        ("endpoint", Some(&report.endpoint)),
        ("client_id", Some(&report.client_id)),
        ("label", report.label.as_ref()),
    ];
    for (key, value) in free {
        if let Some(v) = value {
            let v = report.secrets.scrub(v);
            line.push_str(&format!(" {key}={}", bounded_value(&v, MAX_FREE_VALUE)));
        }
    }
    line.push_str(&format!(" exit={}", report.exit_code));
    debug_assert!(line.len() <= MAX_SUMMARY_LINE);
    line
}

/// [`logfmt_value`] of `v`, at most `max` bytes: when longer, `v` is cut at a character boundary
/// (ending in `…`) until its escaped form fits.
fn bounded_value(v: &str, max: usize) -> String {
    let full = logfmt_value(v);
    if full.len() <= max {
        return full;
    }
    // The escaped form is never shorter than the raw text: start from `max` raw bytes.
    let mut end = v.len().min(max);
    loop {
        while !v.is_char_boundary(end) {
            end -= 1;
        }
        let candidate = logfmt_value(&format!("{}…", &v[..end]));
        if candidate.len() <= max || end == 0 {
            return candidate;
        }
        end -= 1;
    }
}

/// A logfmt value: bare when it is a plain word, else in double quotes with `\` and `"` escaped and
/// control characters written as `\n`, `\t`, `\r` or `\u{…}` (a peer-chosen client ID cannot start a
/// new line or forge a field).
pub fn logfmt_value(v: &str) -> String {
    let plain =
        !v.is_empty() && v.chars().all(|c| !c.is_control() && !c.is_whitespace() && c != '"' && c != '=' && c != '\\');
    if plain {
        return v.to_owned();
    }
    let mut out = String::with_capacity(v.len() + 2);
    out.push('"');
    for c in v.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_quoted_and_escaped_where_needed() {
        assert_eq!(logfmt_value("dev-17"), "dev-17");
        assert_eq!(logfmt_value(""), "\"\"");
        assert_eq!(logfmt_value("a b"), "\"a b\"");
        assert_eq!(logfmt_value("x=1\nauthprobe verdict=pass"), "\"x=1\\nauthprobe verdict=pass\"");
        assert_eq!(logfmt_value("q\"\\"), "\"q\\\"\\\\\"");
        assert_eq!(logfmt_value("\u{1b}[31m"), "\"\\u{1b}[31m\"");
    }

    #[test]
    fn long_values_are_cut_at_a_character_boundary_after_escaping() {
        for v in ["é".repeat(400), "\u{1b}".repeat(300), format!("{}\n", "a".repeat(500))] {
            let b = bounded_value(&v, MAX_FREE_VALUE);
            assert!(b.len() <= MAX_FREE_VALUE && b.contains('…'), "{b}");
        }
        assert_eq!(bounded_value("short", MAX_FREE_VALUE), "short");
    }
}
