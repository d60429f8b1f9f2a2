//! What each attempt shows, reduced to what the diagnosis rules need: did the credentials get
//! through, and how long did the answer take.

use crate::probe::AttemptReport;
use crate::probe::outcome::{Detail, Kind, Stage};
use crate::probe::variant::Variant;

/// What an attempt says about its credentials.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Seen {
    /// CONNACK accepted or HTTP 200 (post-connect checks aside).
    Connected,
    /// The credentials were read and refused.
    Refused,
    /// It never got that far, or failed in a way that says nothing about the credentials.
    Other,
}

/// The server got the credentials and said no: CONNACK refusal, close after CONNECT, or HTTP 401/403.
pub(crate) fn is_auth_refusal(a: &AttemptReport) -> bool {
    if mqtt_not_negotiated(a) {
        return false;
    }
    match (&a.outcome.kind, &a.outcome.detail) {
        (Kind::ConnackRefused | Kind::ClosedBeforeConnack, _) => true,
        (Kind::HttpRejected | Kind::UpgradeRejected, Detail::Http { status, .. }) => matches!(status, 401 | 403),
        _ => false,
    }
}

/// MQTT over TLS where the handshake did not negotiate ALPN `mqtt` although it was offered (or the
/// port is 443, where IoT Core needs it): the server took the connection for HTTPS, so whatever came
/// after the CONNECT — a close, an HTTP 400, silence — says nothing about the credentials. The
/// negotiated ALPN decides, whatever the server did next.
pub(crate) fn mqtt_not_negotiated(a: &AttemptReport) -> bool {
    use crate::auth::event::Transport;
    let Some(tls) = &a.sent.tls else { return false };
    let port_443 = a.sent.address.as_deref().and_then(|s| s.rsplit(':').next()).is_some_and(|p| p == "443");
    a.transport == Transport::Mqtt
        && tls.alpn.as_deref() != Some("mqtt")
        && (a.sent.alpn_offered.iter().any(|p| p == "mqtt") || port_443)
}

/// Connected: the outcome succeeded, or it is a post-connect check (which needs a connection).
pub(crate) fn is_connected(a: &AttemptReport) -> bool {
    a.succeeded || a.outcome.stage == Stage::Authorize
}

pub(crate) fn seen(a: &AttemptReport) -> Seen {
    if is_connected(a) {
        Seen::Connected
    } else if is_auth_refusal(a) {
        Seen::Refused
    } else {
        Seen::Other
    }
}

/// Whether the attempt got as far as the stage its variant changes.
pub(crate) fn reached(a: &AttemptReport) -> bool {
    a.outcome.stage >= a.variant.varies(a.transport)
}

/// Milliseconds from the request to the answer (refusal or acceptance), where known.
pub(crate) fn answer_ms(a: &AttemptReport) -> Option<u64> {
    match &a.outcome.detail {
        Detail::ClosedAfter { after_ms, .. } => Some(*after_ms),
        _ if is_auth_refusal(a) || is_connected(a) => {
            a.stages.iter().rev().find(|s| matches!(s.stage, Stage::Mqtt | Stage::Http | Stage::Upgrade)).map(|s| s.ms)
        }
        _ => None,
    }
}

/// The baselines, one per transport tried.
pub(crate) fn baselines(attempts: &[AttemptReport]) -> impl Iterator<Item = &AttemptReport> {
    attempts.iter().filter(|a| a.variant == Variant::Baseline && a.follow_up.is_none())
}
