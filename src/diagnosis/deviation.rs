//! When the device's own attempt (`--sni`, `--alpn`, `--username-raw`, …) fails and the documented
//! attempt beside it connects, the cause is in what the device does differently — named from the
//! differences, `confirmed` when there is only one.

use super::cause::Cause;
use super::facts;
use super::finding::{Confidence, Context, Evidence, Finding, FindingId, FindingKind};
use crate::auth::credentials::Placement;
use crate::auth::event::Transport;
use crate::probe::AttemptReport;
use crate::probe::plan::{DeviceSends, HostHeader, Sni};
use crate::probe::variant::Variant;

pub(crate) fn findings(cx: &Context<'_>) -> Vec<Finding> {
    let d = &cx.plan.device;
    if !d.deviates() {
        return Vec::new();
    }
    // Transports that fail for the same differences make one finding.
    let mut groups: Vec<(Differences, Vec<Pair<'_>>)> = Vec::new();
    for device in facts::baselines(cx.attempts).filter(|a| !facts::is_connected(a)) {
        let documented = cx
            .attempts
            .iter()
            .find(|a| a.variant == Variant::Documented && a.transport == device.transport && facts::is_connected(a));
        let Some(documented) = documented else { continue };
        let differences = differences(d, device, &cx.plan.target.endpoint);
        match groups.iter_mut().find(|(diff, _)| *diff == differences) {
            Some((_, pairs)) => pairs.push((device, documented)),
            None => groups.push((differences, vec![(device, documented)])),
        }
    }
    groups.iter().map(|(differences, pairs)| finding(differences, pairs)).collect()
}

/// The device's failed attempt and the documented one that connected, on one transport.
type Pair<'a> = (&'a AttemptReport, &'a AttemptReport);

/// What the device does differently, each with the cause it is (if one).
type Differences = Vec<(String, Option<Cause>)>;

/// What the device does differently on this attempt's transport, and the cause each one is.
fn differences(d: &DeviceSends, a: &AttemptReport, endpoint: &str) -> Differences {
    let t = a.transport;
    let mut out = Vec::new();
    match &d.sni {
        Sni::Omitted => out.push(("it sends no SNI".to_owned(), Some(Cause::SniMissing))),
        Sni::Name(ip) if ip.parse::<std::net::IpAddr>().is_ok() => {
            out.push((format!("it names the server by IP ({ip}), so no SNI is sent"), Some(Cause::SniMissing)))
        }
        Sni::Name(name) if !name.eq_ignore_ascii_case(endpoint) => {
            out.push((format!("it sends SNI {name}, not {endpoint}"), Some(Cause::SniNotEndpoint)))
        }
        _ => {}
    }
    if let Some(alpn) = &d.alpn {
        let list = alpn.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect::<Vec<_>>();
        let shown = if list.is_empty() { "no ALPN".to_owned() } else { format!("ALPN {}", list.join(",")) };
        match t {
            Transport::Mqtt if !list.iter().any(|p| p == "mqtt") => {
                out.push((format!("it offers {shown} for MQTT over TLS"), Some(Cause::AlpnMissing)))
            }
            Transport::Wss | Transport::Https if !list.is_empty() => {
                out.push((format!("it offers {shown} on {t}, where IoT Core expects none"), None))
            }
            _ => {}
        }
    }
    let what = match &d.host {
        HostHeader::Omitted => Some("no Host header".to_owned()),
        HostHeader::Value(h) => Some(format!("Host: {h}")),
        HostHeader::Documented => None,
    };
    if let (Some(what), true) = (what, t != Transport::Mqtt) {
        out.push((format!("it sends {what}"), Some(Cause::HostHeaderWrong)));
    }
    if d.signature_raw && a.placement != Placement::Header {
        out.push((
            "it sends the signature's base64 raw in the username or query".into(),
            Some(Cause::SignatureNotEncoded),
        ));
    }
    if d.username_raw.is_some() && t != Transport::Https && a.placement == Placement::Username {
        out.push(("its CONNECT username is not the documented one".into(), Some(Cause::UsernameMalformed)));
    }
    if d.placement.is_some_and(|p| p != Placement::Username || t == Transport::Wss)
        && a.placement != documented_placement(t)
    {
        out.push((format!("it puts the credentials in the {}", placement_word(a.placement)), None));
    }
    if let (Some(p), Transport::Wss) = (&d.ws_protocol, t) {
        out.push((format!("it asks for Sec-WebSocket-Protocol {p}"), None));
    }
    match (&d.origin, t) {
        (Some(o), Transport::Wss) => {
            out.push((format!("it is a browser: Chromium's upgrade headers with Origin {o}"), None))
        }
        (Some(o), Transport::Https) => {
            out.push((format!("it is a browser: a page's publish from Origin {o}, with its CORS preflight"), None))
        }
        _ => {}
    }
    out
}

fn documented_placement(t: Transport) -> Placement {
    if t == Transport::Mqtt { Placement::Username } else { Placement::Header }
}

fn placement_word(p: Placement) -> &'static str {
    match p {
        Placement::Username => "MQTT username",
        Placement::Query => "URL query",
        Placement::Header => "headers",
    }
}

fn finding(differences: &[(String, Option<Cause>)], pairs: &[Pair<'_>]) -> Finding {
    let evidence: Vec<Evidence> = pairs
        .iter()
        .flat_map(|(device, documented)| [Evidence::attempt(device), Evidence::attempt(documented)])
        .collect();
    let words: Vec<&str> = differences.iter().map(|(w, _)| w.as_str()).collect();
    let causes: Vec<Cause> = differences.iter().filter_map(|(_, c)| *c).collect();
    let device = pairs[0].0;
    let transports: Vec<String> = pairs.iter().map(|(d, _)| d.transport.to_string()).collect();
    let mut outcomes: Vec<String> =
        pairs.iter().map(|(d, _)| format!("{}/{}", d.outcome.stage.as_str(), d.outcome.kind.as_str())).collect();
    outcomes.dedup();
    let (attempts, fail, ones, connect) = if pairs.len() == 1 {
        ("attempt", "fails", "one", "connects")
    } else {
        ("attempts", "fail", "ones", "connect")
    };
    let said = format!(
        "The device's {attempts} over {} {fail} ({}) and the documented {ones} {connect}: {}",
        transports.join(", "),
        outcomes.join(", "),
        if words.is_empty() {
            "the two differ only in ways IoT Core does not document".into()
        } else {
            words.join("; ")
        }
    );
    let fix = "make the device send what the documented attempt sends (see both attempts below)".to_owned();
    match (causes.as_slice(), differences.len()) {
        ([only], 1) => Finding::new(*only, FindingKind::Cause, Confidence::Confirmed, format!("{said}."), fix)
            .with_evidence(evidence),
        ([first, ..], _) => {
            let mut f = Finding::new(*first, FindingKind::Cause, Confidence::Likely, format!("Likely: {said}."), fix)
                .with_evidence(evidence);
            f.candidates = causes.to_vec();
            f
        }
        ([], _) => {
            let id = if facts::is_auth_refusal(device) {
                FindingId::RefusedUnexplained
            } else {
                FindingId::UnreachableUnexplained
            };
            Finding {
                id,
                kind: FindingKind::Unexplained,
                confidence: Confidence::Likely,
                summary: format!("{said}."),
                candidates: Vec::new(),
                evidence,
                fix,
                next: Vec::new(),
                see: super::finding::See {
                    step: crate::auth::troubleshooting::Step::DeviceSends,
                    url: super::cause::TROUBLESHOOTING_URL,
                },
            }
        }
    }
}
