//! The text report, answer first: the verdict, the findings (each with its fix and first next
//! command), one line per attempt that matters, and a short block for each documented attempt that
//! failed. `--details` adds every attempt, its evidence and what it sent (JSON always has it all).

use super::Report;
use crate::diagnosis::FindingKind;
use crate::probe::AttemptReport;
use crate::probe::outcome::Detail;
use crate::probe::plan::Expect;
use crate::probe::variant::Variant;
use crate::secret::escape;
use std::io::{self, Write};

/// Colours (ANSI) only when asked; callers decide from the terminal and `NO_COLOR`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Style {
    /// Colour the output (ANSI).
    pub color: bool,
    /// Every attempt in full, every finding's evidence and next commands (`--details`).
    pub details: bool,
}

impl Style {
    fn paint(self, code: &str, text: &str) -> String {
        if self.color { format!("\x1b[{code}m{text}\x1b[0m") } else { text.to_owned() }
    }
}

/// A variant that stopped before the stage it changes tested nothing: "not reached", never "failed
/// as expected".
pub(crate) fn verdict(a: &AttemptReport) -> String {
    if !a.succeeded && a.variant != Variant::Baseline && !crate::diagnosis::facts::reached(a) {
        return format!("not reached ({})", a.outcome.kind.as_str());
    }
    match (a.succeeded, a.expect) {
        (true, Expect::Pass) => "ok",
        (false, Expect::Pass) => "FAIL",
        (false, Expect::Fail) => "failed as expected",
        (true, Expect::Fail) => "passed (surprising)",
        (true, Expect::Unknown) => "passed",
        (false, Expect::Unknown) => "failed",
    }
    .to_owned()
}

/// Writes the report as text: every line scrubbed of the run's secrets (whatever a peer echoed into
/// a field), every value from outside escaped (no control character reaches the terminal).
pub fn write(report: &Report, style: Style, out: &mut dyn Write) -> io::Result<()> {
    let mut lines = crate::secret::ScrubLines::new(out, &report.secrets);
    write_lines(report, style, &mut lines)?;
    lines.flush()
}

fn write_lines(report: &Report, style: Style, out: &mut dyn Write) -> io::Result<()> {
    let via = report.connect_to.as_ref().map(|c| format!(" via {c}")).unwrap_or_default();
    let host = if report.endpoint.contains(':') { format!("[{}]", report.endpoint) } else { report.endpoint.clone() };
    writeln!(out, "authprobe probe {host}:{}{via}", report.port)?;
    if let Some(p) = &report.proxy {
        writeln!(out, "through proxy {} (from {})", escape(&p.url), p.source)?;
    }
    if let Some(b) = &report.proxy_bypassed {
        writeln!(out, "no proxy: {}", escape(b))?;
    }
    if !report.secret_sources.is_empty() {
        writeln!(out, "secrets: {}", escape(&report.secret_sources.join("; ")))?;
    }
    if report.insecure {
        writeln!(out, "{}", style.paint("33", "warning: --insecure: server certificates were NOT verified"))?;
    }
    writeln!(out)?;
    writeln!(out, "{} {}", style.paint("1", "Diagnosis:"), escape(&headline_with(report, style.details)))?;
    local_checks(report, style, out)?;
    findings(report, style, out)?;
    attempts_table(report, style, out)?;
    // A block per documented attempt that failed (what it sent, where it stopped, why); every
    // attempt with --details.
    for a in report.attempts.iter().filter(|a| style.details || failed_baseline(a)) {
        writeln!(out)?;
        attempt(a, style, out)?;
    }
    writeln!(out)?;
    if report.interrupted {
        return writeln!(
            out,
            "interrupted (Ctrl-C) after {} attempt(s): no verdict; exit code {}",
            report.attempts.len(),
            report.exit_code
        );
    }
    let failed = report.attempts.iter().filter(|a| a.expect == Expect::Pass && !a.succeeded).count();
    let expected = report.attempts.iter().filter(|a| a.expect == Expect::Pass).count();
    writeln!(
        out,
        "{} of {expected} attempt(s) expected to succeed did; exit code {}",
        expected - failed,
        report.exit_code
    )
}

/// A documented attempt that did not get through (its repeats among the follow-ups are in the table).
fn failed_baseline(a: &AttemptReport) -> bool {
    a.variant == Variant::Baseline && a.follow_up.is_none() && a.expect == Expect::Pass && !a.succeeded
}

/// Whether the attempts table lists `a` without `--details`: the device's and the documented attempts, follow-ups,
/// and anything that did not do what IoT Core is documented to do.
fn listed(a: &AttemptReport) -> bool {
    matches!(a.variant, Variant::Baseline | Variant::Documented)
        || a.follow_up.is_some()
        || a.surprising
        || (a.expect == Expect::Pass && !a.succeeded)
}

/// The first finding, as one sentence; or that nothing is wrong.
/// A finding's summary as the text report shows it: an unexplained finding's candidates by id (their
/// sentences are in --details and the JSON), so that the answer fits a line or two.
fn summary(f: &crate::diagnosis::Finding, details: bool) -> String {
    match f.summary.split_once(crate::diagnosis::explain::ONE_OF) {
        Some((head, _)) if !details && !f.candidates.is_empty() => {
            let ids: Vec<&str> = f.candidates.iter().map(|c| c.id()).collect();
            format!("{head}; the cause is one of {}: {}.", ids.len(), ids.join(", "))
        }
        _ => f.summary.clone(),
    }
}

pub(crate) fn headline(report: &Report) -> String {
    headline_with(report, true)
}

fn headline_with(report: &Report, details: bool) -> String {
    if report.interrupted {
        return "interrupted (Ctrl-C): no verdict; only the attempts that ran are reported below.".into();
    }
    match report.findings.first() {
        Some(f) if f.kind != FindingKind::Risk => summary(f, details),
        _ if report.exit_code == 0 => match report.findings.len() {
            0 => "every attempt expected to succeed did; no cause to report.".into(),
            n => format!(
                "every attempt expected to succeed did; no cause, and {n} risk(s) below: what would break this device."
            ),
        },
        _ => "attempts failed, but no cause could be named; see each attempt below.".into(),
    }
}

fn local_checks(report: &Report, style: Style, out: &mut dyn Write) -> io::Result<()> {
    let shown: Vec<_> = report.local_checks.iter().filter(|c| style.details || !c.passed).collect();
    if shown.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "{}", style.paint("1", "Local checks (before anything was sent)"))?;
    for c in shown {
        let mark = if c.passed { style.paint("32", "ok  ") } else { style.paint("31;1", "FAIL") };
        writeln!(out, "  {mark} {:<20} {}", c.check, escape(&c.detail))?;
    }
    Ok(())
}

fn attempts_table(report: &Report, style: Style, out: &mut dyn Write) -> io::Result<()> {
    let width = report.attempts.iter().map(|a| a.id.len()).max().unwrap_or(4);
    let vwidth = report.attempts.iter().map(|a| verdict(a).len()).max().unwrap_or(4);
    writeln!(out)?;
    writeln!(out, "{}", style.paint("1", "Attempts"))?;
    let mut follow_ups = false;
    let hidden = report.attempts.iter().filter(|a| !style.details && !listed(a)).count();
    for a in report.attempts.iter().filter(|a| style.details || listed(a)) {
        if a.follow_up.is_some() && !follow_ups {
            follow_ups = true;
            writeln!(out, "{}", style.paint("1", "Follow-ups (the device's own client ID, one at a time)"))?;
        }
        let v = verdict(a);
        let code = if a.surprising {
            "31;1"
        } else if a.succeeded {
            "32"
        } else {
            "33"
        };
        let total: u64 = a.stages.iter().map(|s| s.ms).sum();
        writeln!(
            out,
            "  {} {:<width$}  {}/{}  {} ms",
            style.paint(code, &format!("{v:<vwidth$}")),
            a.id,
            a.outcome.stage.as_str(),
            a.outcome.kind.as_str(),
            total
        )?;
        if let Some(why) = a.follow_up.as_ref().filter(|_| style.details) {
            writeln!(out, "    {:vwidth$} {}", "", escape(why))?;
        }
    }
    if hidden > 0 {
        writeln!(out, "  … and {hidden} more variant(s), each as IoT Core documents it (--details lists them)")?;
    }
    Ok(())
}

fn findings(report: &Report, style: Style, out: &mut dyn Write) -> io::Result<()> {
    if report.findings.is_empty() {
        return Ok(());
    }
    writeln!(out)?;
    writeln!(out, "{}", style.paint("1", "Findings"))?;
    for (i, f) in report.findings.iter().enumerate() {
        if style.details {
            writeln!(out)?;
        }
        let kind = serde_json::to_value(f.kind).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let conf =
            serde_json::to_value(f.confidence).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let colour = if f.kind == FindingKind::Risk { "33;1" } else { "31;1" };
        writeln!(
            out,
            "  {}. {} {}",
            i + 1,
            style.paint(colour, &format!("[{kind} · {conf}]")),
            style.paint("1", f.id.as_str())
        )?;
        field(out, "", &summary(f, style.details))?;
        if !f.candidates.is_empty() && style.details {
            field(out, "candidates", &f.candidates.iter().map(|c| c.id()).collect::<Vec<_>>().join(", "))?;
        }
        if style.details {
            let evidence: Vec<String> = f.evidence.iter().map(ToString::to_string).collect();
            for (j, e) in evidence.iter().enumerate() {
                field(out, if j == 0 { "evidence" } else { "" }, e)?;
            }
        }
        if !f.fix.is_empty() {
            field(out, "fix", &f.fix)?;
        }
        // An unexplained finding's commands are its answer (each rules candidates out): all shown. A
        // cause shows its first; a risk's are in --details (and the JSON), like every step.
        let next = match f.kind {
            _ if style.details => f.next.len(),
            FindingKind::Unexplained => f.next.len(),
            FindingKind::Cause => f.next.len().min(1),
            FindingKind::Risk => 0,
        };
        for (j, n) in f.next.iter().take(next).enumerate() {
            field(out, if j == 0 { "next" } else { "" }, n)?;
        }
        if style.details {
            field(out, "see", &format!("{} — {}", f.see.step, f.see.url))?;
        } else if f.next.len() > next && f.kind != FindingKind::Risk {
            field(out, "", &format!("(+{} more next command(s) with --details)", f.next.len() - next))?;
        }
    }
    Ok(())
}

fn attempt(a: &AttemptReport, style: Style, out: &mut dyn Write) -> io::Result<()> {
    let s = &a.sent;
    writeln!(out, "{}", style.paint("1", &format!("── {} ({}) — {}", a.id, a.transport, verdict(a))))?;
    if !style.details {
        return attempt_in_short(a, out);
    }
    if a.variant != Variant::Baseline {
        field(out, "variant", &a.description)?;
    }
    if let Some(why) = &a.follow_up {
        field(out, "follow-up", why)?;
    }
    let mut conn = vec![s.address.clone().unwrap_or_else(|| "(not connected)".into())];
    if a.outcome.stage < crate::probe::outcome::Stage::Tls {
        conn.push("TLS not reached".into());
    } else {
        conn.push(format!("SNI {}", s.sni.as_deref().unwrap_or("(none)")));
        let alpn = if s.alpn_offered.is_empty() { "(none)".to_owned() } else { s.alpn_offered.join(",") };
        let negotiated = s.tls.as_ref().and_then(|t| t.alpn.clone()).unwrap_or_else(|| "-".into());
        conn.push(format!("ALPN {alpn} → {negotiated}"));
    }
    if let Some(t) = &s.tls {
        conn.push(format!("{} {}", t.version.as_deref().unwrap_or("?"), t.cipher.as_deref().unwrap_or("?")));
    }
    if let Some(d) = s.dns.as_ref().filter(|d| d.source != crate::probe::resolve::DnsSource::AddressLiteral) {
        let family = match s.family {
            crate::probe::plan::Family::V4 => " (IPv4 only)",
            crate::probe::plan::Family::V6 => " (IPv6 only)",
            _ => "",
        };
        field(out, "dns", &format!("{} → {} ({}){family}", d.name, d.answers.join(", "), d.source))?;
    }
    if let Some(p) = &s.proxy {
        let resolves = if p.resolves == crate::probe::sent::Resolver::Proxy {
            "the proxy resolves the name"
        } else {
            "the name resolved here"
        };
        field(out, "proxy", &format!("{} (from {}) → tunnel to {}, {resolves}", p.url, p.source, p.target))?;
    }
    field(out, "sent", &conn.join(" · "))?;
    if s.insecure {
        writeln!(out, "   {:<10} {}", "", style.paint("33", "certificate NOT verified (--insecure)"))?;
    }
    chain(a, out)?;
    if let Some(r) = &s.request {
        field(out, "request", &format!("{r}  (Host: {})", s.host_header.as_deref().unwrap_or("(none)")))?;
    }
    if let (Some(id), Some(v)) = (&s.client_id, s.mqtt_version) {
        field(out, "mqtt", &format!("MQTT {v}, client ID {id}"))?;
    }
    if let Some(u) = &s.username {
        field(out, "username", u)?;
    }
    if let Some(p) = &s.password {
        field(out, "password", p)?;
    }
    for c in &s.credentials {
        let placement = format!("{:?}", c.placement).to_lowercase();
        field(out, "credential", &format!("{} in {placement} ({}): {}", c.parameter, c.encoding, c.value))?;
    }
    let stages: Vec<String> = a.stages.iter().map(|t| format!("{} {} ms", t.stage.as_str(), t.ms)).collect();
    field(out, "stages", &stages.join(" · "))?;
    field(
        out,
        "result",
        &format!("{}/{}{}", a.outcome.stage.as_str(), a.outcome.kind.as_str(), evidence(&a.outcome.detail)),
    )?;
    for c in &a.checks {
        field(out, "check", &format!("{}/{}{}", c.stage.as_str(), c.kind.as_str(), evidence(&c.detail)))?;
    }
    field(out, "what", &a.advice.summary)?;
    if !a.advice.likely_cause.is_empty() {
        field(out, "why", &a.advice.likely_cause)?;
        field(out, "next", &a.advice.next_check)?;
        field(out, "see", &format!("troubleshooting: {}", a.advice.see.map(|s| s.label()).unwrap_or_default()))?;
    }
    Ok(())
}

/// Where an attempt stopped and why; what it sent is in --details and the JSON.
fn attempt_in_short(a: &AttemptReport, out: &mut dyn Write) -> io::Result<()> {
    field(
        out,
        "result",
        &format!("{}/{}{}", a.outcome.stage.as_str(), a.outcome.kind.as_str(), evidence(&a.outcome.detail)),
    )?;
    // A refused chain is the evidence of a TLS failure: shown here too.
    if a.outcome.stage == crate::probe::outcome::Stage::Tls {
        chain(a, out)?;
    }
    field(out, "what", &a.advice.summary)?;
    if !a.advice.likely_cause.is_empty() {
        field(out, "why", &a.advice.likely_cause)?;
        field(out, "next", &a.advice.next_check)?;
        field(out, "see", &format!("troubleshooting: {}", a.advice.see.map(|s| s.label()).unwrap_or_default()))?;
    }
    Ok(())
}

/// One `name value` line; the value is escaped, so what a peer put in it (a body, a certificate
/// subject, a captured SNI) cannot start a line of its own or reach the terminal as a control code.
/// The chain as presented: from the handshake, or from the verification that refused it.
fn chain(a: &AttemptReport, out: &mut dyn Write) -> io::Result<()> {
    let refused = match &a.outcome.detail {
        Detail::Cert { chain, amazon_roots, .. } => Some((chain, *amazon_roots)),
        _ => None,
    };
    let shown = a.sent.tls.as_ref().map(|t| (&t.chain, t.amazon_roots)).filter(|(c, _)| !c.is_empty()).or(refused);
    let Some((chain, amazon_roots)) = shown.filter(|(c, _)| !c.is_empty()) else { return Ok(()) };
    field(out, "chain", &chain.iter().map(|c| c.subject.clone()).collect::<Vec<_>>().join("  ←  "))?;
    let anchored = match amazon_roots {
        Some(true) => " (under Amazon's roots)",
        Some(false) => " (NOT under Amazon's roots)",
        None => "",
    };
    field(out, "", &format!("issued by {}{anchored}", chain.last().map(|c| c.issuer.as_str()).unwrap_or("?")))
}

fn field(out: &mut dyn Write, name: &str, value: &str) -> io::Result<()> {
    writeln!(out, "   {name:<10} {}", escape(value))
}

/// The key evidence, inline.
fn evidence(d: &Detail) -> String {
    match d {
        Detail::Alert { alert, code } => format!(" (alert {alert} {code})"),
        Detail::Connack { code, reason, .. } => format!(" (code 0x{code:02x} {reason})"),
        Detail::ClosedAfter { how, after_ms } => format!(" ({} {after_ms} ms after CONNECT)", how.as_str()),
        Detail::Closed { how, bytes_seen } => format!(" ({}, {bytes_seen} bytes seen)", how.as_str()),
        Detail::Http { status, error_type, .. } => {
            format!(" (HTTP {status}{})", error_type.as_ref().map(|e| format!(" {e}")).unwrap_or_default())
        }
        Detail::Tcp { address, .. } => format!(" ({address})"),
        Detail::Ack { code, reason, action, resource } => format!(" ({action} on {resource}: 0x{code:02x} {reason})"),
        Detail::Check { action, resource, elapsed_ms } => format!(" ({action} on {resource}, {elapsed_ms} ms)"),
        _ => String::new(),
    }
}
