//! Findings for baselines that never got their credentials to IoT Core: the network, TLS, SNI, ALPN.
//! They name the address and port actually dialled.

use super::cause::Cause;
use super::facts::{self, Seen};
use super::finding::{Confidence, Context, Evidence, Finding, FindingId, FindingKind};
use crate::auth::endpoint::{expects_amazon_chain, is_legacy, issuer_is_legacy};
use crate::auth::event::Transport;
use crate::probe::AttemptReport;
use crate::probe::outcome::{Detail, Kind, Stage};
use crate::probe::proxy::Scheme;
use crate::wire::alert::Alert;

pub(crate) fn findings(cx: &Context<'_>) -> Vec<Finding> {
    let bases: Vec<&AttemptReport> = facts::baselines(cx.attempts).collect();
    // Baselines whose credentials were neither accepted nor refused.
    let stuck: Vec<&AttemptReport> = bases.iter().copied().filter(|a| facts::seen(a) == Seen::Other).collect();
    let mut out: Vec<Finding> = if stuck.is_empty() {
        Vec::new()
    } else if stuck.len() == bases.len() {
        vec![nothing_reached(&stuck, cx)]
    } else {
        stuck.iter().map(|a| one_transport(a, &bases, cx)).collect()
    };
    let through: Vec<&AttemptReport> = bases.iter().copied().filter(|a| facts::seen(a) != Seen::Other).collect();
    if !out.iter().any(|f| f.id == Cause::TlsIntercepted) {
        out.extend(intercepted_yet_through(&through, cx));
    }
    if !out.iter().any(|f| f.id == Cause::DnsUnexpected) {
        out.extend(unexpected_answers(&through, cx));
    }
    out.extend(ipv6_path(cx));
    out
}

/// Where TLS got through only because the probe did not verify (`--insecure`): a chain for an AWS
/// IoT endpoint that is not issued under Amazon's roots is an interception a device rejects.
fn intercepted_yet_through(through: &[&AttemptReport], cx: &Context<'_>) -> Option<Finding> {
    if !matches!(cx.plan.target.trust, crate::probe::plan::Trust::Insecure)
        || !expects_amazon_chain(&cx.plan.target.endpoint)
    {
        return None;
    }
    let a = through.iter().find(|a| a.sent.tls.as_ref().is_some_and(|t| t.amazon_roots == Some(false)))?;
    let issuer = a.sent.tls.as_ref().and_then(|t| t.chain.last()).map(|c| c.issuer.clone()).unwrap_or_default();
    // With --insecure the user has said the chain is not the question: a risk, ranked below causes.
    let mut f = cause(
        Cause::TlsIntercepted,
        Confidence::Confirmed,
        format!(
            "TLS to {} is intercepted: the chain presented for {} is issued by {issuer}, which does not chain to Amazon's roots; the probe got through only because of --insecure, and a device that verifies the chain is refused",
            dialled(cx, &[a]),
            cx.plan.target.endpoint
        ),
        INTERCEPTION_FIX.into(),
        through.iter().map(|a| Evidence::attempt(a)).collect(),
    );
    f.kind = FindingKind::Risk;
    Some(f)
}

const INTERCEPTION_FIX: &str = "exempt the IoT endpoint from TLS inspection (allow-list *.iot.<region>.amazonaws.com on the firewall or proxy); or, only where policy demands inspection, have the device trust the inspecting CA";

/// The endpoint's DNS answers, from the system resolver, that are not where a public IoT endpoint
/// lives; `None` when there are none (or the answers came from --resolve, a literal or --connect-to).
fn dns_oddities(attempts: &[&AttemptReport], cx: &Context<'_>) -> Option<(String, Vec<String>)> {
    if cx.plan.target.connect_to.is_some() {
        return None;
    }
    let dns = attempts
        .iter()
        .find_map(|a| a.sent.dns.as_ref().filter(|d| d.source == crate::probe::resolve::DnsSource::Dns))?;
    let odd: Vec<String> = dns
        .answers
        .iter()
        .filter_map(|ip| {
            let why = crate::probe::resolve::unexpected(ip.parse().ok()?)?;
            Some(format!("{ip} ({why})"))
        })
        .collect();
    (!odd.is_empty()).then(|| (dns.answers.join(", "), odd))
}

/// The attempts got through, but the endpoint resolves to addresses a public endpoint does not
/// have: a VPC interface endpoint or split-horizon DNS (fine when intended), or a DNS filter.
fn unexpected_answers(through: &[&AttemptReport], cx: &Context<'_>) -> Option<Finding> {
    let (all, odd) = dns_oddities(through, cx)?;
    let mut f = Finding::new(
        Cause::DnsUnexpected,
        FindingKind::Risk,
        Confidence::Possible,
        format!(
            "{} resolves here to {all}, not to public addresses: {}. Intended for a VPC interface endpoint or split-horizon DNS; otherwise a DNS filter answers for the endpoint, and devices on another network resolve differently",
            cx.plan.target.endpoint,
            odd.join(", ")
        ),
        "if the address is not your VPC endpoint, check this network's DNS (filtering, hijacking, a stale override)"
            .into(),
    );
    f.evidence = through.iter().map(|a| Evidence::attempt(a)).collect();
    Some(f)
}

/// `--family both`: a baseline that got through over IPv4 while its IPv6 twin could not connect.
fn ipv6_path(cx: &Context<'_>) -> Vec<Finding> {
    use crate::probe::variant::Variant;
    let mut out = Vec::new();
    for v6 in cx.attempts.iter().filter(|a| a.variant == Variant::Ipv6) {
        let Some(v4) = facts::baselines(cx.attempts).find(|b| b.transport == v6.transport) else { continue };
        if facts::seen(v4) == Seen::Other || !matches!(v6.outcome.stage, Stage::Tcp) {
            continue;
        }
        let mut f = Finding::new(
            Cause::PortBlocked,
            FindingKind::Risk,
            Confidence::Confirmed,
            format!(
                "{} gets through over IPv4 ({}) but TCP over IPv6 fails ({} at {}): a device that prefers IPv6 on this network cannot connect",
                v6.transport,
                v4.sent.address.as_deref().unwrap_or("?"),
                v6.outcome.kind.as_str(),
                v6.sent.resolved.first().map_or("?", String::as_str),
            ),
            "allow outbound TCP 443 over IPv6 too, or have the device use IPv4".into(),
        );
        f.evidence = vec![Evidence::attempt(v4), Evidence::attempt(v6)];
        out.push(f);
    }
    out
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
    if addrs.is_empty() { format!("{}:{}", cx.plan.target.endpoint, cx.plan.target.port) } else { addrs.join(", ") }
}

fn local<'a>(cx: &Context<'a>, cause: Cause) -> Option<&'a super::local::LocalCheck> {
    cx.local.iter().find(|c| !c.passed && c.implicates == Some(cause))
}

/// No transport got its credentials through: the finding is about the path.
fn nothing_reached(stuck: &[&AttemptReport], cx: &Context<'_>) -> Finding {
    let ev = evidence(stuck);
    proxy_failed(stuck, cx, &ev)
        .or_else(|| before_tls(stuck, cx, &ev))
        .or_else(|| tls_interfered(stuck, cx, &ev))
        .or_else(|| tls_refused(stuck, cx, &ev))
        .or_else(|| unanswered(stuck, cx, &ev, false))
        .unwrap_or_else(|| unreachable(stuck, cx, ev))
}

/// The request (CONNECT, POST) went out and no answer came within `--timeout`. IoT Core answers
/// within about 5 s even when the authorizer times out: a shorter `--timeout` cannot tell a slow
/// authorizer from a timed-out one; a longer one means something holds the connection.
/// `others_answered`: another transport got its answer, so the authorizer was not what kept this one
/// waiting.
fn unanswered(stuck: &[&AttemptReport], cx: &Context<'_>, ev: &[Evidence], others_answered: bool) -> Option<Finding> {
    if !stuck.iter().all(|a| matches!(a.outcome.kind, Kind::ConnackTimeout | Kind::HttpTimeout)) {
        return None;
    }
    let secs = cx.plan.matrix.timeout.as_secs_f64();
    let what: Vec<String> = stuck.iter().map(|a| format!("{} at {}", a.transport, a.outcome.kind.as_str())).collect();
    let said = format!("no answer came within {secs} s of the request ({})", what.join(", "));
    let limit = cx.plan.limit_text();
    // A wait shorter than the limit (and its slack) cannot tell a slow authorizer from one that times out.
    if secs < cx.plan.timeout_ms() as f64 / 1000.0 * 1.15 && !others_answered {
        // Likely, with both candidates (the catalogue allows candidates on `likely`): TLS completed
        // and the request went out, so the wait is the authorizer's, or a path that stalls.
        let mut f = cause(
            Cause::LambdaTimeout,
            Confidence::Likely,
            format!(
                "The credentials reached {} but {said}: IoT Core waits up to {limit} for the authorizer, so with --timeout {secs} a slow authorizer cannot be told from one that times out",
                dialled(cx, stuck)
            ),
            format!(
                "run again with --timeout {} (IoT Core answers within about {limit}, even when the authorizer times out)",
                (cx.plan.timeout_ms() * 2).div_ceil(1000)
            ),
            ev.to_vec(),
        );
        f.candidates = vec![Cause::LambdaTimeout, Cause::LambdaSlow];
        return Some(f);
    }
    let at = dialled(cx, stuck);
    let summary = if others_answered {
        format!(
            "The credentials reached {at} but {said}, while another transport got its answer: something on the path holds this one (a proxy or firewall that passes TLS and then stalls)."
        )
    } else {
        format!(
            "The credentials reached {at} but {said}; IoT Core answers within about {limit} even when the authorizer times out, so something on the path holds the connection (a proxy or firewall that passes TLS and then stalls), or the server is not IoT Core."
        )
    };
    Some(Finding {
        id: FindingId::UnreachableUnexplained,
        kind: FindingKind::Unexplained,
        confidence: Confidence::Possible,
        summary,
        candidates: [Cause::TlsIntercepted, Cause::ProxyFailed, Cause::LambdaTimeout]
            .into_iter()
            .filter(|c| !(others_answered && *c == Cause::LambdaTimeout))
            .collect(),
        evidence: ev.to_vec(),
        fix: "compare with a run from another network; check what answers on the path (the certificate chain below)"
            .into(),
        next: Vec::new(),
        see: super::finding::See {
            step: crate::auth::troubleshooting::Step::NetworkAndTls,
            url: super::cause::TROUBLESHOOTING_URL,
        },
    })
}

/// Every attempt stopped at DNS or TCP (or met the X.509 path on the wrong port).
fn before_tls(stuck: &[&AttemptReport], cx: &Context<'_>, ev: &[Evidence]) -> Option<Finding> {
    let all = |s: Stage| stuck.iter().all(|a| a.outcome.stage == s);
    let ep = &cx.plan.target.endpoint;
    let ev = ev.to_vec();
    if all(Stage::Resolve) {
        let (name, error) = stuck
            .iter()
            .find_map(|a| match &a.outcome.detail {
                Detail::Dns { name, error } => Some((name.clone(), error.clone())),
                _ => None,
            })
            .unwrap_or_else(|| (ep.clone(), String::new()));
        let instead = if name.eq_ignore_ascii_case(ep) { String::new() } else { format!(", dialled instead of {ep}") };
        let mut fix =
            "use the name `aws iot describe-endpoint --endpoint-type iot:Data-ATS` prints; check this network's DNS"
                .to_owned();
        if cx.plan.network.proxy.as_ref().is_some_and(|p| p.scheme == Scheme::Socks5) {
            fix.push_str(
                "; a socks5:// proxy gets the address resolved here, socks5h:// lets the proxy resolve the name",
            );
        }
        return Some(cause(
            Cause::DnsFailed,
            Confidence::Confirmed,
            format!("{name}{instead} does not resolve from this network ({error})"),
            fix,
            ev,
        ));
    }
    if let Some(c) = local(cx, Cause::WrongPort).filter(|_| all(Stage::Tcp) || stuck.iter().any(|a| is_x509_path(a))) {
        return Some(cause(
            Cause::WrongPort,
            Confidence::Confirmed,
            c.detail.clone(),
            "connect on port 443".into(),
            ev,
        ));
    }
    if !all(Stage::Tcp) {
        return None;
    }
    let what = format!("no TCP connection to {} from this network", dialled(cx, stuck));
    if let Some((_, odd)) = &dns_oddities(stuck, cx) {
        let mut f = cause(
            Cause::DnsUnexpected,
            Confidence::Likely,
            format!("{ep} resolves to {}, and {what}", odd.join(", ")),
            "check this network's DNS (a split-horizon or hijacking resolver); a VPC endpoint needs its route".into(),
            ev,
        );
        f.candidates = vec![Cause::DnsUnexpected, Cause::PortBlocked];
        return Some(f);
    }
    Some(cause(
        Cause::PortBlocked,
        Confidence::Confirmed,
        what,
        "allow outbound TCP 443 to the IoT endpoint; custom authentication works on 443 only".into(),
        ev,
    ))
}

/// Something other than IoT Core answered the TLS handshake: an inspecting firewall, a captive
/// portal, or the legacy endpoint's chain.
fn tls_interfered(stuck: &[&AttemptReport], cx: &Context<'_>, ev: &[Evidence]) -> Option<Finding> {
    let ep = &cx.plan.target.endpoint;
    let ev = ev.to_vec();
    if let Some(f) = other_name(stuck, cx, &ev) {
        return Some(f);
    }
    if let Some(issuer) = stuck.iter().find_map(|a| intercepting_issuer(a, &cx.plan.target.endpoint)) {
        let summary = format!(
            "TLS to {} is intercepted: the chain presented for {ep} is issued by {issuer}, which does not chain to Amazon's roots",
            dialled(cx, stuck)
        );
        // Trusting only a --ca file, the probe cannot tell an interception from a file that is not
        // the CA of the server meant: both are said, the file named.
        if let Some(file) = &cx.plan.target.ca_file {
            let mut f = cause(
                Cause::TlsIntercepted,
                Confidence::Likely,
                format!(
                    "{summary}, and not to the --ca file {file} either: something intercepts TLS, or {file} is not the CA of the server you meant to reach"
                ),
                format!(
                    "{INTERCEPTION_FIX}; or give --ca the CA that issued the server's chain (Amazon Root CA 1 for IoT Core), or drop --ca to use the bundled roots"
                ),
                ev,
            );
            f.candidates = vec![Cause::TlsIntercepted];
            return Some(f);
        }
        return Some(cause(Cause::TlsIntercepted, Confidence::Confirmed, summary, INTERCEPTION_FIX.into(), ev));
    }

    if let Some(first) = stuck.iter().find_map(|a| match &a.outcome.detail {
        Detail::NotTls { first_bytes } => Some(first_bytes.clone()),
        _ => None,
    }) {
        let mut f = cause(
            Cause::TlsIntercepted,
            Confidence::Likely,
            format!(
                "{} does not speak TLS: it answered the ClientHello with plain bytes {first}. A captive portal, a transparent proxy or another service answers in IoT Core's place",
                dialled(cx, stuck)
            ),
            "log the network in (captive portal), or have its firewall pass TCP 443 to the IoT endpoint untouched; use --proxy if the site requires a proxy".into(),
            ev,
        );
        f.candidates = vec![Cause::TlsIntercepted, Cause::ProxyFailed, Cause::WrongPort];
        return Some(f);
    }
    if is_legacy(ep) && stuck.iter().any(|a| a.outcome.kind == Kind::TlsCertUntrusted) {
        let mut f = cause(
            Cause::SniNotEndpoint,
            Confidence::Likely,
            format!(
                "{ep} is the legacy iot:Data endpoint, whose certificate chain is VeriSign's (Symantec), not Amazon's; it is not trusted here"
            ),
            "use the iot:Data-ATS endpoint: `aws iot describe-endpoint --endpoint-type iot:Data-ATS`, with Amazon Root CA 1 on the device".into(),
            ev,
        );
        f.candidates = vec![Cause::SniNotEndpoint, Cause::TlsIntercepted];
        return Some(f);
    }
    untrusted_by_choice(stuck, cx, &ev)
}

/// The handshake got as far as a certificate chain this probe trusts, issued for other names: the
/// server did not refuse anything — something else answers at the address dialled (an inspecting
/// proxy whose CA is trusted here, or a `--connect-to`/DNS answer that belongs to another server).
fn other_name(stuck: &[&AttemptReport], cx: &Context<'_>, ev: &[Evidence]) -> Option<Finding> {
    let (a, chain, amazon) = stuck.iter().find_map(|a| match &a.outcome.detail {
        Detail::Cert { chain, amazon_roots, .. } if a.outcome.kind == Kind::TlsCertNameMismatch => {
            Some((a, chain, *amazon_roots))
        }
        _ => None,
    })?;
    let ep = &cx.plan.target.endpoint;
    let names =
        chain.first().map(|c| c.dns_names.join(", ")).filter(|n| !n.is_empty()).unwrap_or_else(|| "other names".into());
    let issuer = chain.last().map(|c| c.issuer.clone()).unwrap_or_default();
    let at = dialled(cx, &[a]);
    let how = if cx.plan.target.connect_to.is_some() { "--connect-to" } else { "DNS (or --resolve)" };
    let (first, summary) = if amazon == Some(true) {
        (
            Cause::DnsUnexpected,
            format!(
                "{at} answers with an Amazon certificate for {names}, not for {ep}: the address ({how}) belongs to another AWS endpoint — another region or account, or the legacy endpoint"
            ),
        )
    } else {
        (
            Cause::TlsIntercepted,
            format!(
                "{at} completed the handshake with a certificate for {names} (issued by {issuer}), not for {ep}: the handshake was not refused — something else answers there, an inspecting proxy whose CA this probe trusts, or an address ({how}) that belongs to another server"
            ),
        )
    };
    let mut f = cause(
        first,
        Confidence::Likely,
        summary,
        format!(
            "check that {at} is the endpoint's address (`getent hosts {ep}` from another network); exempt the endpoint from TLS inspection"
        ),
        ev.to_vec(),
    );
    f.candidates = vec![
        first,
        if first == Cause::TlsIntercepted { Cause::DnsUnexpected } else { Cause::TlsIntercepted },
        Cause::SniNotEndpoint,
    ];
    Some(f)
}

/// A chain refused as untrusted where no Amazon chain is expected (a custom domain, an IP, the
/// emulator), or an Amazon chain that the `--ca` file does not hold: the file (or the bundled roots)
/// and the issuer presented are named.
fn untrusted_by_choice(stuck: &[&AttemptReport], cx: &Context<'_>, ev: &[Evidence]) -> Option<Finding> {
    let (a, chain) = stuck.iter().find_map(|a| match &a.outcome.detail {
        Detail::Cert { chain, .. } if a.outcome.kind == Kind::TlsCertUntrusted => Some((a, chain)),
        _ => None,
    })?;
    let issuer = chain.last().map(|c| c.issuer.clone()).unwrap_or_else(|| "an unknown issuer".into());
    let trusted = match &cx.plan.target.ca_file {
        Some(file) => format!("the --ca file {file}"),
        None => "the bundled roots".into(),
    };
    let mut f = cause(
        Cause::TlsIntercepted,
        Confidence::Possible,
        format!(
            "the chain {} presented for {} is issued by {issuer}, which {trusted} does not hold: the wrong CA is trusted here, or something intercepts TLS",
            dialled(cx, &[a]),
            cx.plan.target.endpoint
        ),
        "give --ca the CA that issued the server's chain (see the chain below), or exempt the endpoint from TLS inspection".into(),
        ev.to_vec(),
    );
    f.kind = FindingKind::Unexplained;
    f.id = FindingId::UnreachableUnexplained;
    f.candidates = vec![Cause::TlsIntercepted];
    Some(f)
}

/// The TLS handshake refused for the name sent (or none), or a port that is not 443.
fn tls_refused(stuck: &[&AttemptReport], cx: &Context<'_>, ev: &[Evidence]) -> Option<Finding> {
    let ep = &cx.plan.target.endpoint;
    let ev = ev.to_vec();
    if stuck.iter().all(|a| a.outcome.stage == Stage::Tls) {
        if let Some(c) = local(cx, Cause::SniMissing) {
            return Some(cause(
                Cause::SniMissing,
                Confidence::Confirmed,
                c.detail.clone(),
                "connect by the endpoint's name, so that TLS sends it as SNI".into(),
                ev,
            ));
        }
        if stuck.iter().any(|a| is_name_refusal(a))
            && !cx.local.iter().any(|c| c.passed && c.rules_out.contains(&Cause::SniNotEndpoint))
        {
            let mut f = cause(
                Cause::SniNotEndpoint,
                Confidence::Likely,
                format!("the TLS handshake for SNI {ep} is refused at {}: the name is not an endpoint of the account", dialled(cx, stuck)),
                "use the endpoint exactly as `aws iot describe-endpoint --endpoint-type iot:Data-ATS` prints it (or a configured custom domain)".into(),
                ev,
            );
            f.candidates = vec![Cause::SniNotEndpoint, Cause::TlsIntercepted];
            return Some(f);
        }
    }
    let c = local(cx, Cause::WrongPort)?;
    let mut f = cause(Cause::WrongPort, Confidence::Likely, c.detail.clone(), "connect on port 443".into(), ev);
    f.candidates = vec![Cause::WrongPort, Cause::SniNotEndpoint, Cause::TlsIntercepted];
    Some(f)
}

/// The X.509 path's answer: a client certificate demanded (port 8883, 8443, ALPN x-amzn-mqtt-ca).
fn is_x509_path(a: &AttemptReport) -> bool {
    matches!(&a.outcome.detail, Detail::Alert { alert, .. } if alert.wants_client_certificate())
}

fn unreachable(stuck: &[&AttemptReport], cx: &Context<'_>, ev: Vec<Evidence>) -> Finding {
    let stages: Vec<String> = stuck
        .iter()
        .map(|a| format!("{} at {}/{}", a.transport, a.outcome.stage.as_str(), a.outcome.kind.as_str()))
        .collect();
    Finding {
        id: FindingId::UnreachableUnexplained,
        kind: FindingKind::Unexplained,
        confidence: Confidence::Possible,
        summary: format!(
            "No attempt got its credentials to IoT Core at {} ({}); the path or the server refused them before the authorizer",
            dialled(cx, stuck),
            stages.join("; ")
        ),
        candidates: vec![Cause::TlsIntercepted, Cause::SniNotEndpoint, Cause::ProxyFailed],
        evidence: ev,
        fix: "compare with a run from another network; read each attempt's detail below".into(),
        next: Vec::new(),
        see: super::finding::See {
            step: crate::auth::troubleshooting::Step::NetworkAndTls,
            url: super::cause::TROUBLESHOOTING_URL,
        },
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
    unanswered(&[a], cx, &ev, true).unwrap_or_else(|| unreachable(&[a], cx, ev))
}

fn cause(c: Cause, confidence: Confidence, summary: String, fix: String, ev: Vec<Evidence>) -> Finding {
    let hedge = if confidence == Confidence::Confirmed { "" } else { "Likely: " };
    let mut s = summary;
    // A sentence starts with a capital, unless it starts with a name or address (`abc123-ats.iot…`).
    let starts_with_name = s.split_whitespace().next().is_some_and(|w| w.contains(['.', ':', '/']));
    if let Some(first) = s.get(..1).filter(|_| !starts_with_name) {
        s = first.to_uppercase() + &s[1..];
    }
    Finding::new(c, FindingKind::Cause, confidence, format!("{hedge}{s}."), fix).with_evidence(ev)
}

/// The issuer of a presented chain, refused as untrusted, that is not issued under Amazon's roots
/// (for an AWS IoT endpoint; the legacy VeriSign endpoint aside).
pub(crate) fn intercepting_issuer(a: &AttemptReport, endpoint: &str) -> Option<String> {
    if !expects_amazon_chain(endpoint) {
        return None;
    }
    match &a.outcome.detail {
        Detail::Cert { chain, amazon_roots, .. } if a.outcome.kind == Kind::TlsCertUntrusted => {
            let amazon = crate::probe::outcome::chain_is_amazons(chain, *amazon_roots);
            let legacy = is_legacy(endpoint) && chain.iter().any(|c| issuer_is_legacy(&c.issuer));
            (!amazon && !legacy).then(|| chain.last().map(|c| c.issuer.clone())).flatten()
        }
        _ => None,
    }
}

/// The proxy in use did not get the attempts through: it refused, wanted credentials, did not
/// answer, or could not be reached at all.
fn proxy_failed(stuck: &[&AttemptReport], cx: &Context<'_>, ev: &[Evidence]) -> Option<Finding> {
    let proxy = cx.plan.network.proxy.as_ref()?;
    let at = |s: Stage| stuck.iter().find(|a| a.outcome.stage == s);
    let shown = proxy.display(cx.plan.show_secrets);
    let from = if proxy.source == crate::probe::proxy::ProxySource::Flag {
        "given with --proxy".to_owned()
    } else {
        format!("from {}", proxy.source)
    };
    let (summary, fix) = if let Some(a) = at(Stage::Proxy) {
        let status = match &a.outcome.detail {
            Detail::Proxy { status_line, .. } => status_line.clone(),
            _ => String::new(),
        };
        let target = a.sent.proxy.as_ref().map_or_else(|| cx.plan.target.endpoint.clone(), |p| p.target.clone());
        match a.outcome.kind {
            Kind::ProxyAuthRequired if proxy.user.is_some() => (
                format!("the proxy {shown} ({from}) refuses the credentials sent for the tunnel to {target}: {status}"),
                "check the proxy user and password in the proxy URL (percent-encode `@`, `:` and `%` in them)".to_owned(),
            ),
            Kind::ProxyAuthRequired => (
                format!("the proxy {shown} ({from}) wants credentials for the tunnel to {target}: {status}"),
                "give the proxy's user and password in the proxy URL (http://user:password@host:port), or have the proxy allow this device".to_owned(),
            ),
            Kind::ProxyTimeout => (
                format!("the proxy {shown} ({from}) does not open the tunnel to {target}: {status}"),
                "check that the proxy can reach the IoT endpoint on 443 (its own firewall and DNS)".to_owned(),
            ),
            _ => (
                format!("the proxy {shown} ({from}) refuses the tunnel to {target}: {status}"),
                "have the proxy allow CONNECT to the IoT endpoint on port 443 (e.g. squid's SSL_ports, tinyproxy's ConnectPort), or use a network path without it".to_owned(),
            ),
        }
    } else if stuck.iter().all(|a| match &a.outcome.detail {
        // A socks5:// proxy gets the endpoint resolved here: its failure is the endpoint's DNS.
        Detail::Dns { name, .. } => name.eq_ignore_ascii_case(&proxy.host),
        _ => a.outcome.stage == Stage::Tcp,
    }) {
        let how = stuck
            .first()
            .map(|a| format!("{}/{}", a.outcome.stage.as_str(), a.outcome.kind.as_str()))
            .unwrap_or_default();
        (
            format!("the proxy {shown} ({from}) cannot be reached from this device ({how} at {})", dialled(cx, stuck)),
            "check the proxy's address and port, or unset the variable if this network needs no proxy (--noproxy '*')"
                .to_owned(),
        )
    } else {
        return None;
    };
    Some(cause(Cause::ProxyFailed, Confidence::Confirmed, summary, fix, ev.to_vec()))
}

/// A refusal of the server name itself: alert unrecognized_name, or a close during the handshake.
fn is_name_refusal(a: &AttemptReport) -> bool {
    match &a.outcome.detail {
        Detail::Alert { alert, .. } => matches!(*alert, Alert::UNRECOGNIZED_NAME | Alert::HANDSHAKE_FAILURE),
        _ => a.outcome.kind == Kind::TlsClosed,
    }
}
