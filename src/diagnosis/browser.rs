//! What a page must change (`--client-type browser`): the subprotocol it offers, its WebSocket URL's
//! path, its `Origin`, and an HTTPS publish the browser's CORS check stops. Each rule reads the browser
//! baseline beside the variant that changes one thing a page gets wrong; a failed baseline these rules
//! explain is left out of the other rules (it says nothing about the authorizer).

use super::cause::Cause;
use super::facts;
use super::finding::{Confidence, Context, Evidence, Finding, FindingKind};
use crate::auth::event::Transport;
use crate::probe::AttemptReport;
use crate::probe::outcome::{Detail, Kind, Stage};
use crate::probe::variant::Variant;

/// The browser findings, and the ids of the failed baselines they explain.
pub(crate) fn findings(cx: &Context<'_>) -> (Vec<Finding>, Vec<String>) {
    let mut out = Vec::new();
    let mut explained = Vec::new();
    if cx.plan.device.origin.is_none() {
        return (out, explained);
    }
    for base in facts::baselines(cx.attempts) {
        match base.transport {
            Transport::Https => cors(base, cx, &mut out, &mut explained),
            Transport::Wss => upgrade(base, cx, &mut out, &mut explained),
            Transport::Mqtt => {}
        }
    }
    (out, explained)
}

fn variant<'a>(cx: &'a Context<'_>, base: &AttemptReport, v: Variant) -> Option<&'a AttemptReport> {
    cx.attempts.iter().find(|a| a.variant == v && a.transport == base.transport && a.follow_up.is_none())
}

fn wss_connected(cx: &Context<'_>) -> bool {
    facts::baselines(cx.attempts).any(|a| a.transport == Transport::Wss && facts::is_connected(a))
}

/// A page's HTTPS publish: stopped at the preflight (a cause), or sent but its answer unreadable (a
/// risk: the message is published, the page sees a network error).
fn cors(base: &AttemptReport, cx: &Context<'_>, out: &mut Vec<Finding>, explained: &mut Vec<String>) {
    let Some(seen) = &base.sent.cors else { return };
    let origin = &seen.origin;
    let alternative = if wss_connected(cx) {
        "MQTT over WebSockets from this page works (the wss baseline connected): publish over it"
    } else {
        "publish over MQTT over WebSockets (wss) from the page"
    };
    let fix = format!(
        "{alternative}, or send the publish from your backend. IoT Core documents no CORS answers on its data \
         endpoint, so a page cannot count on an HTTPS publish; if something in front of it (your own domain's \
         gateway) is meant to answer CORS, make it allow the origin {origin} and the headers {}",
        seen.requested_headers.join(", ")
    );
    if let (Kind::PreflightRefused, Detail::Preflight { status, cors_problem }) =
        (&base.outcome.kind, &base.outcome.detail)
    {
        explained.push(base.id.clone());
        let summary = format!(
            "A page at {origin} cannot publish over HTTPS here: its custom-auth headers make the browser ask first \
             (CORS preflight, OPTIONS), and the answer (HTTP {status}) stops it: {cors_problem}. The browser never \
             sends the POST, the authorizer never runs, and the page sees only `TypeError: Failed to fetch`."
        );
        out.push(
            Finding::new(Cause::CorsRefused, FindingKind::Cause, Confidence::Confirmed, summary, fix)
                .with_evidence(vec![Evidence::attempt(base)]),
        );
    } else if seen.answer_readable == Some(false) {
        let summary = format!(
            "The page's HTTPS publish reaches the endpoint ({}), but its answer carries no Access-Control-Allow-Origin \
             for {origin}: the browser hides it, so the page sees a network error even when the message was published.",
            base.outcome.kind.as_str()
        );
        out.push(
            Finding::new(Cause::CorsRefused, FindingKind::Risk, Confidence::Confirmed, summary, fix)
                .with_evidence(vec![Evidence::attempt(base)]),
        );
    }
}

/// Refused at the WebSocket upgrade (the page's `onclose` with no `onopen`): an HTTP answer other
/// than 101, an invalid 101 (e.g. without the subprotocol offered), or a close.
fn refused_at_upgrade(a: &AttemptReport) -> bool {
    a.outcome.stage == Stage::Upgrade
        && matches!(a.outcome.kind, Kind::UpgradeRejected | Kind::UpgradeInvalid | Kind::UpgradeClosed)
}

fn upgrade(base: &AttemptReport, cx: &Context<'_>, out: &mut Vec<Finding>, explained: &mut Vec<String>) {
    subprotocol(base, cx, out, explained);
    path(base, cx, out);
    origin(base, cx, out, explained);
}

fn outcome(a: &AttemptReport) -> String {
    format!("{}/{}", a.outcome.stage.as_str(), a.outcome.kind.as_str())
}

/// The subprotocol the page offers.
fn subprotocol(base: &AttemptReport, cx: &Context<'_>, out: &mut Vec<Finding>, explained: &mut Vec<String>) {
    let offered = base.sent.ws_protocol.clone().unwrap_or_default();
    let base_ok = facts::is_connected(base);
    if let Some(other) = variant(cx, base, Variant::WsProtocolOther) {
        let other_protocol = other.sent.ws_protocol.clone().unwrap_or_default();
        let evidence = vec![Evidence::attempt(base), Evidence::attempt(other)];
        if refused_at_upgrade(base) && facts::is_connected(other) {
            explained.push(base.id.clone());
            let summary = format!(
                "The endpoint refuses the page's WebSocket subprotocol {offered} ({}) and accepts {other_protocol}: \
                 the same upgrade, with only the subprotocol changed, connects. A browser drops such a connection \
                 before any CONNECT is sent.",
                outcome(base)
            );
            let fix = format!(
                "make the page offer {other_protocol} (mqtt.js offers `mqtt`, or `mqttv3.1` with protocolVersion 3; \
                 the AWS IoT Device SDK v2's MQTT 3.1.1 browser client offers `mqttv3.1`), or check what in front \
                 of the endpoint picks subprotocols"
            );
            out.push(
                Finding::new(Cause::WsSubprotocolRefused, FindingKind::Cause, Confidence::Confirmed, summary, fix)
                    .with_evidence(evidence),
            );
        } else if base_ok && refused_at_upgrade(other) {
            let summary = format!(
                "A page offering the subprotocol {other_protocol} is refused here ({}); {offered}, the one this \
                 probe offered, works.",
                outcome(other)
            );
            let fix =
                format!("keep pages on {offered}; a library or version change that switches to {other_protocol} fails");
            out.push(
                Finding::new(Cause::WsSubprotocolRefused, FindingKind::Risk, Confidence::Confirmed, summary, fix)
                    .with_evidence(evidence),
            );
        }
    }
}

/// A `wss://host//mqtt` URL.
fn path(base: &AttemptReport, cx: &Context<'_>, out: &mut Vec<Finding>) {
    let base_ok = facts::is_connected(base);
    if let Some(slash) = variant(cx, base, Variant::PathDoubleSlash) {
        if base_ok && !facts::is_connected(slash) && facts::reached(slash) {
            let summary = format!(
                "A page whose URL has a doubled slash (wss://HOST//mqtt, e.g. a base URL ending in `/` joined with \
                 `/mqtt`) is refused here ({}); /mqtt connects.",
                outcome(slash)
            );
            out.push(
                Finding::new(
                    Cause::WsPathWrong,
                    FindingKind::Risk,
                    Confidence::Confirmed,
                    summary,
                    "build the page's URL as wss://HOST/mqtt exactly (no doubled slash, no trailing slash)".into(),
                )
                .with_evidence(vec![Evidence::attempt(base), Evidence::attempt(slash)]),
            );
        }
    }
}

/// Another page's Origin.
fn origin(base: &AttemptReport, cx: &Context<'_>, out: &mut Vec<Finding>, explained: &mut Vec<String>) {
    let origin = cx.plan.device.origin.clone().unwrap_or_default();
    let base_ok = facts::is_connected(base);
    if let Some(other) = variant(cx, base, Variant::OriginOther) {
        let evidence = vec![Evidence::attempt(base), Evidence::attempt(other)];
        if refused_at_upgrade(base) && facts::is_connected(other) && !explained.contains(&base.id) {
            explained.push(base.id.clone());
            let summary = format!(
                "The page's Origin {origin} is refused ({}) where another origin connects: something on the path \
                 (IoT Core documents no Origin check: a proxy, a gateway in front of a custom domain) filters origins.",
                outcome(base)
            );
            out.push(
                Finding::new(
                    Cause::OriginRefused,
                    FindingKind::Cause,
                    Confidence::Likely,
                    summary,
                    format!(
                        "allow the origin {origin} where origins are filtered, or serve the page from an allowed origin"
                    ),
                )
                .with_evidence(evidence),
            );
        } else if base_ok && refused_at_upgrade(other) {
            let summary = format!(
                "A page from another origin is refused here ({}): something on the path filters origins, so the \
                 page works only from {origin}.",
                outcome(other)
            );
            out.push(
                Finding::new(
                    Cause::OriginRefused,
                    FindingKind::Risk,
                    Confidence::Likely,
                    summary,
                    "serve every page that connects from an allowed origin".into(),
                )
                .with_evidence(evidence),
            );
        }
    }
}
