//! Findings for baselines that never got their credentials to IoT Core: the network, TLS, SNI, ALPN.
//! They name the address and port actually dialled.

use super::cause::Cause;
use super::facts::{self, Seen};
use super::{Confidence, Context, Evidence, Finding, FindingKind};
use crate::auth::event::Transport;
use crate::probe::AttemptReport;
use crate::probe::outcome::{Detail, Kind, Stage};

pub fn findings(cx: &Context<'_>) -> Vec<Finding> {
    let bases: Vec<&AttemptReport> = facts::baselines(cx.attempts).collect();
    // Baselines whose credentials were neither accepted nor refused.
    let stuck: Vec<&AttemptReport> = bases.iter().copied().filter(|a| facts::seen(a) == Seen::Other).collect();
    if stuck.is_empty() {
        return Vec::new();
    }
    if stuck.len() == bases.len() {
        return vec![nothing_reached(&stuck, cx)];
    }
    stuck.iter().map(|a| one_transport(a, &bases, cx)).collect()
}

fn evidence(attempts: &[&AttemptReport]) -> Vec<Evidence> {
    attempts.iter().map(|a| Evidence::attempt(a)).collect()
}

fn dialled(cx: &Context<'_>, attempts: &[&AttemptReport]) -> String {
    let addrs: Vec<String> = attempts
        .iter()
        .filter_map(|a| match &a.outcome.detail {
            Detail::Tcp { address, .. } => Some(address.clone()),
            _ => a.sent.address.clone(),
        })
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    if addrs.is_empty() { format!("{}:{}", cx.plan.endpoint, cx.plan.port) } else { addrs.join(", ") }
}

fn local<'a>(cx: &Context<'a>, cause: Cause) -> Option<&'a super::local::LocalCheck> {
    cx.plan.local.iter().find(|c| !c.passed && c.implicates == Some(cause))
}

/// No transport got its credentials through: the finding is about the path.
fn nothing_reached(stuck: &[&AttemptReport], cx: &Context<'_>) -> Finding {
    let ev = evidence(stuck);
    let all = |s: Stage| stuck.iter().all(|a| a.outcome.stage == s);
    let ep = &cx.plan.endpoint;
    if all(Stage::Resolve) {
        let error = stuck.iter().find_map(|a| match &a.outcome.detail {
            Detail::Dns { error, .. } => Some(error.clone()),
            _ => None,
        });
        return cause(
            Cause::DnsFailed,
            Confidence::Confirmed,
            format!("{ep} does not resolve from this network ({})", error.unwrap_or_default()),
            "use the name `aws iot describe-endpoint --endpoint-type iot:Data-ATS` prints; check this network's DNS"
                .into(),
            ev,
        );
    }
    let private = cx.plan.connect_to.is_none()
        && stuck.iter().flat_map(|a| a.sent.resolved.iter()).any(|addr| is_unexpected(addr));
    let wrong_port = local(cx, Cause::WrongPort);
    if let Some(c) = wrong_port.filter(|_| all(Stage::Tcp) || stuck.iter().any(|a| is_x509_path(a))) {
        return cause(Cause::WrongPort, Confidence::Confirmed, c.detail.clone(), "connect on port 443".into(), ev);
    }
    if all(Stage::Tcp) {
        let what = format!("no TCP connection to {} from this network", dialled(cx, stuck));
        if private {
            let mut f = cause(
                Cause::DnsUnexpected,
                Confidence::Likely,
                format!("{ep} resolves to a loopback or private address, and {what}"),
                "check this network's DNS (a split-horizon or hijacking resolver); a VPC endpoint needs its route"
                    .into(),
                ev,
            );
            f.candidates = vec![Cause::DnsUnexpected.id(), Cause::PortBlocked.id()];
            return f;
        }
        return cause(
            Cause::PortBlocked,
            Confidence::Confirmed,
            what,
            "allow outbound TCP 443 to the IoT endpoint; custom authentication works on 443 only".into(),
            ev,
        );
    }
    if let Some(issuer) = stuck.iter().find_map(|a| intercepting_issuer(a)) {
        return cause(
            Cause::TlsIntercepted,
            Confidence::Confirmed,
            format!("TLS to {} is intercepted: the certificate is issued by {issuer}, not Amazon", dialled(cx, stuck)),
            "exempt the IoT endpoint from TLS inspection; devices cannot complete custom auth through it".into(),
            ev,
        );
    }
    if all(Stage::Tls) {
        if let Some(c) = local(cx, Cause::SniMissing) {
            return cause(
                Cause::SniMissing,
                Confidence::Confirmed,
                c.detail.clone(),
                "connect by the endpoint's name, so that TLS sends it as SNI".into(),
                ev,
            );
        }
        if stuck.iter().any(|a| is_name_refusal(a))
            && !cx.plan.local.iter().any(|c| c.passed && c.rules_out.contains(&Cause::SniNotEndpoint))
        {
            let mut f = cause(
                Cause::SniNotEndpoint,
                Confidence::Likely,
                format!("the TLS handshake for SNI {ep} is refused at {}: the name is not an endpoint of the account", dialled(cx, stuck)),
                "use the endpoint exactly as `aws iot describe-endpoint --endpoint-type iot:Data-ATS` prints it (or a configured custom domain)".into(),
                ev,
            );
            f.candidates = vec![Cause::SniNotEndpoint.id(), Cause::TlsIntercepted.id()];
            return f;
        }
    }
    if let Some(c) = wrong_port {
        let mut f = cause(Cause::WrongPort, Confidence::Likely, c.detail.clone(), "connect on port 443".into(), ev);
        f.candidates = vec![Cause::WrongPort.id(), Cause::SniNotEndpoint.id(), Cause::TlsIntercepted.id()];
        return f;
    }
    unreachable(stuck, cx, ev)
}

/// The X.509 path's answer: a client certificate demanded (port 8883, 8443, ALPN x-amzn-mqtt-ca).
fn is_x509_path(a: &AttemptReport) -> bool {
    matches!(&a.outcome.detail, Detail::Alert { alert, .. } if matches!(alert.as_str(), "certificate_required" | "bad_certificate" | "certificate_unknown"))
}

fn unreachable(stuck: &[&AttemptReport], cx: &Context<'_>, ev: Vec<Evidence>) -> Finding {
    let stages: Vec<String> = stuck
        .iter()
        .map(|a| format!("{} at {}/{}", a.transport, a.outcome.stage.as_str(), a.outcome.kind.as_str()))
        .collect();
    Finding {
        id: "unreachable_unexplained",
        kind: FindingKind::Unexplained,
        confidence: Confidence::Possible,
        summary: format!(
            "No attempt got its credentials to IoT Core at {} ({}); the path or the server refused them before the authorizer",
            dialled(cx, stuck),
            stages.join("; ")
        ),
        candidates: [Cause::TlsIntercepted, Cause::SniNotEndpoint, Cause::ProxyFailed].iter().map(|c| c.id()).collect(),
        evidence: ev,
        fix: "compare with a run from another network; read each attempt's detail below".into(),
        next: Vec::new(),
        see: super::See { step: "network and TLS steps", url: super::cause::TROUBLESHOOTING_URL },
    }
}

/// One transport did not get through while another did.
fn one_transport(a: &AttemptReport, bases: &[&AttemptReport], cx: &Context<'_>) -> Finding {
    let others: Vec<&AttemptReport> =
        bases.iter().copied().filter(|b| b.transport != a.transport && facts::seen(b) != Seen::Other).collect();
    let mut ev = vec![Evidence::attempt(a)];
    ev.extend(evidence(&others));
    let negotiated = a.sent.tls.as_ref().and_then(|t| t.alpn.clone());
    if a.transport == Transport::Mqtt && a.outcome.stage >= Stage::Mqtt && negotiated.as_deref() != Some("mqtt") {
        let mut ev = ev;
        ev.extend(
            cx.attempts
                .iter()
                .filter(|x| x.transport == Transport::Mqtt && x.variant.as_str().starts_with("alpn"))
                .map(Evidence::attempt),
        );
        return cause(
            Cause::AlpnStripped,
            Confidence::Confirmed,
            format!(
                "ALPN `mqtt` was offered but {} at {}, so IoT Core treated the connection as HTTPS while WebSocket and HTTPS get through: something on the path strips ALPN",
                negotiated.map_or("none was negotiated".into(), |n| format!("`{n}` was negotiated")),
                dialled(cx, &[a])
            ),
            "use MQTT over WebSockets from this network, or have the middlebox pass ALPN through".into(),
            ev,
        );
    }
    unreachable(&[a], cx, ev)
}

fn cause(c: Cause, confidence: Confidence, summary: String, fix: String, ev: Vec<Evidence>) -> Finding {
    let hedge = if confidence == Confidence::Confirmed { "" } else { "Likely: " };
    let mut s = summary;
    if let Some(first) = s.get(..1) {
        s = first.to_uppercase() + &s[1..];
    }
    Finding::new(c, FindingKind::Cause, confidence, format!("{hedge}{s}."), fix).with_evidence(ev)
}

/// The issuer of a presented chain that is not Amazon's.
pub fn intercepting_issuer(a: &AttemptReport) -> Option<String> {
    match &a.outcome.detail {
        Detail::Cert { chain, .. } if a.outcome.kind == Kind::TlsCertUntrusted => {
            let amazon = chain.iter().any(|c| c.issuer.contains("Amazon") || c.issuer.contains("Starfield"));
            (!amazon).then(|| chain.last().map(|c| c.issuer.clone())).flatten()
        }
        _ => None,
    }
}

/// A refusal of the server name itself: alert unrecognized_name, or a close during the handshake.
fn is_name_refusal(a: &AttemptReport) -> bool {
    match &a.outcome.detail {
        Detail::Alert { alert, .. } => alert == "unrecognized_name" || alert == "handshake_failure",
        _ => matches!(a.outcome.kind, Kind::TlsClosed | Kind::TlsCertNameMismatch),
    }
}

/// Loopback, private, link-local or unspecified: not where a public IoT endpoint lives.
fn is_unexpected(addr: &str) -> bool {
    let ip = addr.parse::<std::net::SocketAddr>().map(|s| s.ip()).or_else(|_| addr.parse());
    match ip {
        Ok(std::net::IpAddr::V4(v4)) => {
            v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified()
        }
        Ok(std::net::IpAddr::V6(v6)) => {
            v6.is_loopback() || v6.is_unspecified() || (v6.segments()[0] & 0xfe00) == 0xfc00
        }
        Err(_) => false,
    }
}
