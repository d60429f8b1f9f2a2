//! The report as one self-contained HTML file for a ticket (`--report FILE.html`): the verdict, the
//! findings with their evidence and next commands, and a timeline of every attempt's stages as an
//! inline SVG waterfall, IoT Core's authorizer limit drawn. No script, no external style, font or
//! image: it opens offline, attached to a ticket. Every text is escaped, and the whole page scrubbed
//! of the run's secrets like every other output.

use super::Report;
use crate::secret::{Scrubber, html_escape};
use std::fmt::Write as _;

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;margin:2em;color:#222}\
h1{font-size:1.3em}h2{font-size:1.1em;margin-top:1.6em}.verdict{font-size:1.15em;font-weight:600}\
.finding{border-left:4px solid #c33;padding:.2em .8em;margin:.8em 0}.finding.risk{border-color:#d90}\
pre{background:#f4f4f4;padding:.5em;white-space:pre-wrap}table{border-collapse:collapse}\
td,th{padding:.15em .6em;text-align:left;border-bottom:1px solid #ddd}.fail{color:#b00}.ok{color:#070}\
svg text{font:11px sans-serif}";

/// Stage colours in the timeline.
fn colour(stage: &str) -> &'static str {
    match stage {
        "resolve" => "#9ab",
        "tcp" => "#7ad",
        "proxy" => "#a8d",
        "tls" => "#5b8",
        "upgrade" => "#db5",
        "mqtt" | "http" => "#e74",
        _ => "#888",
    }
}

/// `text` scrubbed of the run's secrets, then escaped for HTML: in that order, so that a secret with
/// `&` or `<` in it is found before escaping changes its form.
fn esc(s: &Scrubber, text: &str) -> String {
    html_escape(&s.scrub(text))
}

/// The page.
pub(crate) fn page(report: &Report) -> String {
    let s = &report.secrets;
    let mut h = String::new();
    let title = format!("authprobe probe {}:{}", report.endpoint, report.port);
    let _ =
        write!(h, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title>", esc(s, &title));
    let _ = write!(h, "<style>{STYLE}</style></head><body><h1>{}</h1>", esc(s, &title));
    if let Some(c) = &report.connect_to {
        let _ = write!(h, "<p>dialled {}</p>", esc(s, c));
    }
    let _ = write!(h, "<p class=\"verdict\" id=\"verdict\">{}</p>", esc(s, &super::text::headline(report)));
    let _ = write!(h, "<p>exit code {}</p>", report.exit_code);
    findings(&mut h, report);
    timeline(&mut h, report);
    attempts(&mut h, report);
    h.push_str("</body></html>\n");
    // A second net: a secret that reached the page in a form the escaping did not touch.
    s.scrub(&h)
}

fn findings(h: &mut String, report: &Report) {
    let s = &report.secrets;
    if report.findings.is_empty() {
        return;
    }
    h.push_str("<h2>Findings</h2>");
    for f in &report.findings {
        let kind = serde_json::to_value(f.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let conf =
            serde_json::to_value(f.confidence).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let _ = write!(
            h,
            "<div class=\"finding {kind}\" id=\"{}\"><p><b>{}</b> [{kind} · {conf}]</p><p>{}</p>",
            esc(s, f.id.as_str()),
            esc(s, f.id.as_str()),
            esc(s, &f.summary)
        );
        if !f.candidates.is_empty() {
            let ids: Vec<&str> = f.candidates.iter().map(|c| c.id()).collect();
            let _ = write!(h, "<p>candidates: {}</p>", esc(s, &ids.join(", ")));
        }
        let evidence: Vec<String> = f.evidence.iter().map(ToString::to_string).collect();
        if !evidence.is_empty() {
            let _ = write!(
                h,
                "<p>evidence:</p><ul>{}</ul>",
                evidence.iter().map(|e| format!("<li>{}</li>", esc(s, e))).collect::<String>()
            );
        }
        if !f.fix.is_empty() {
            let _ = write!(h, "<p>fix: {}</p>", esc(s, &f.fix));
        }
        if !f.next.is_empty() {
            let _ = write!(h, "<p>next:</p><pre>{}</pre>", esc(s, &f.next.join("\n")));
        }
        let _ = write!(h, "<p>see: {} — {}</p></div>", esc(s, &f.see.step.to_string()), esc(s, f.see.url));
    }
}

/// The waterfall: a row per attempt, a bar per stage (its duration, from where the previous ended),
/// and IoT Core's authorizer limit as a line at 5 s.
fn timeline(h: &mut String, report: &Report) {
    let s = &report.secrets;
    const ROW: u64 = 18;
    const LEFT: u64 = 260;
    const WIDTH: u64 = 640;
    let limit_ms = 5_000u64;
    let longest = report.attempts.iter().map(|a| a.stages.iter().map(|s| s.ms).sum::<u64>()).max().unwrap_or(0);
    let span = longest.max(limit_ms + limit_ms / 10).max(1);
    let x = |ms: u64| LEFT + ms * WIDTH / span;
    let height = ROW * (report.attempts.len() as u64 + 2);
    let _ = write!(
        h,
        "<h2>Timeline</h2><svg id=\"timeline\" xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{height}\" role=\"img\" aria-label=\"each attempt's stages\">",
        LEFT + WIDTH + 20
    );
    for (i, a) in report.attempts.iter().enumerate() {
        let y = ROW * (i as u64 + 1);
        let _ = write!(h, "<text x=\"4\" y=\"{}\">{}</text>", y + 12, esc(s, &a.id));
        let mut at = 0;
        for t in &a.stages {
            let stage = t.stage.as_str();
            let w = (x(at + t.ms) - x(at)).max(2);
            let _ = write!(
                h,
                "<rect class=\"stage {stage}\" x=\"{}\" y=\"{}\" width=\"{w}\" height=\"{}\" fill=\"{}\"><title>{} {stage} {} ms</title></rect>",
                x(at),
                y + 2,
                ROW - 4,
                colour(stage),
                esc(s, &a.id),
                t.ms
            );
            at += t.ms;
        }
    }
    let lx = x(limit_ms);
    let _ = write!(
        h,
        "<line id=\"authorizer-limit\" x1=\"{lx}\" y1=\"{ROW}\" x2=\"{lx}\" y2=\"{height}\" stroke=\"#c00\" stroke-dasharray=\"4 3\"/>\
         <text x=\"{}\" y=\"12\" fill=\"#c00\">IoT Core's authorizer limit: 5 s</text></svg>",
        lx.saturating_sub(90)
    );
}

fn attempts(h: &mut String, report: &Report) {
    let s = &report.secrets;
    h.push_str("<h2>Attempts</h2><table><tr><th>attempt</th><th>result</th><th>outcome</th><th>what</th></tr>");
    for a in &report.attempts {
        let verdict = super::text::verdict(a);
        let class = if verdict == "FAIL" || a.surprising { "fail" } else { "ok" };
        let _ = write!(
            h,
            "<tr><td>{}</td><td class=\"{class}\">{}</td><td>{}/{}</td><td>{}</td></tr>",
            esc(s, &a.id),
            esc(s, &verdict),
            a.outcome.stage.as_str(),
            a.outcome.kind.as_str(),
            esc(s, &a.advice.summary)
        );
    }
    h.push_str("</table>");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_with_html_characters_is_redacted_before_it_is_escaped() {
        let mut s = Scrubber::new(false);
        s.add_all_forms("t&k<3n\"x");
        let out = esc(&s, "echoed: t&k<3n\"x <b>");
        assert!(!out.contains("t&amp;k&lt;3n") && !out.contains("t&k<3n"), "{out}");
        assert!(out.contains("&lt;redacted len=8") && out.ends_with("&lt;b&gt;"), "{out}");
    }
}
