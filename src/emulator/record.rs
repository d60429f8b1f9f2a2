//! One record per connection: what arrived, what the emulator decided and why, and how long each step
//! took. Written to stderr through `tracing` and, with `--log-json`, as JSON lines.

use super::settings::TlsReject;
use crate::auth::credentials::Placement;
use crate::auth::event::Transport;
use crate::auth::signature::Verdict;
use crate::secret::{escape, scrub_json, scrub_json_text};
use crate::wire::mqtt::Connack;
use serde::Serialize;
use serde_json::Value;
use serde_json::value::RawValue;
use std::net::SocketAddr;
use std::sync::Arc;

/// Receives every finished record.
pub type RecordSink = Arc<dyn Fn(&ConnectionRecord) + Send + Sync>;

/// Why a connection ended the way it did. Stable snake_case names (they appear in `--log-json`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    /// Authentication succeeded (CONNACK 0, 101 + CONNACK, or 200).
    Accepted,
    /// No SNI in the ClientHello.
    NoSni,
    /// An SNI that is not one of the endpoints.
    UnknownSni,
    /// ALPN `x-amzn-mqtt-ca`: the X.509 path, where no authorizer runs.
    X509Path,
    /// The first bytes were not a TLS ClientHello.
    NotTls,
    /// The TLS handshake failed.
    HandshakeFailed,
    /// No ClientHello, or no finished handshake, in time.
    HandshakeTimeout,
    /// The client sent nothing (or not enough) in time after the handshake.
    RequestTimeout,
    /// The client closed (or reset) before its request was complete.
    ClosedByClient,
    /// A request or packet that is not what the path expects.
    MalformedRequest,
    /// An HTTP path IoT Core does not serve.
    NotFound,
    /// A packet, message or body over the limit.
    PacketTooLarge,
    /// Refused at the connection limit, or shed before authenticating (for a newer connection at the
    /// limit, or over the budget of bytes held before authentication); the detail says which.
    TooManyConnections,
    /// The client ID is too long, or empty where it cannot be.
    ClientIdRejected,
    /// Another CONNECT for the client ID came sooner than `limits.connect_interval`.
    ConnectRateExceeded,
    /// The account's CONNECTs in this second are over `limits.connect_rate`.
    AccountRateExceeded,
    /// The function's concurrent invocations are at `limits.authorizer_concurrency`: this one was
    /// throttled (Lambda's 429), and the connection refused as for a failing function.
    FunctionThrottled,
    /// No authorizer named and no default authorizer.
    NoAuthorizer,
    /// The authorizer named does not exist.
    UnknownAuthorizer,
    /// The authorizer is INACTIVE.
    AuthorizerInactive,
    /// No token under the authorizer's token key name.
    TokenMissing,
    /// Signing is enabled and no signature was sent.
    SignatureMissing,
    /// No key of the authorizer verifies the signature.
    SignatureInvalid,
    /// The function did not answer within its time limit.
    FunctionTimeout,
    /// The function's command crashed or printed no JSON.
    FunctionFailed,
    /// The handler behind the Runtime API reported an error (its `errorType: errorMessage` follow):
    /// what IoT Core's troubleshooting calls a Lambda error.
    LambdaError,
    /// The function's answer breaks IoT Core's rules.
    InvalidResponse,
    /// The function answered `isAuthenticated: false`.
    Denied,
    /// The returned policies do not allow `iot:Connect` on `client/<clientId>`.
    ConnectNotAllowed,
    /// The returned policies do not allow `iot:Publish` on the HTTPS topic.
    PublishNotAllowed,
    /// A CORS preflight (`OPTIONS` with `Access-Control-Request-Method`) was answered as the `cors`
    /// setting says; no authorizer runs for a preflight.
    Preflight,
    /// A browser's upgrade from an origin that `[websocket] origins` does not list (answered 403).
    OriginRefused,
}

/// A credential parameter the connection carried, and where.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct CredentialSeen {
    /// The parameter or header name.
    pub parameter: String,
    /// Where it was found.
    pub placement: Placement,
    /// Whether the value on the wire used `%` escapes.
    pub percent_encoded: bool,
}

/// Milliseconds spent in each step.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Durations {
    /// From accept to the end of the TLS handshake.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub handshake_ms: Option<u64>,
    /// The function's time, latency included.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function_ms: Option<u64>,
    /// The whole connection.
    pub total_ms: u64,
}

/// What the client was sent when the emulator refused or closed its connection: typed where it is
/// decided, rendered here only (`close`, `connack:0x87`, `http:403`, `alert:unrecognized_name`, …).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answered {
    /// Closed without an answer.
    Close,
    /// A CONNACK with this code.
    Connack(Connack),
    /// An HTTP status (an HTTPS publish, a refused upgrade).
    Http(u16),
    /// Refused in the TLS handshake, as this setting says.
    Tls(TlsReject),
}

impl std::fmt::Display for Answered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Close => f.write_str("close"),
            Self::Connack(c) => write!(f, "connack:0x{:02x}", c.value()),
            Self::Http(status) => write!(f, "http:{status}"),
            Self::Tls(how) => write!(f, "{how}"),
        }
    }
}

impl Serialize for Answered {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// What one connection did, as the emulator logs it (secrets scrubbed unless `show_secrets`).
#[derive(Clone, Debug, Serialize)]
pub struct ConnectionRecord {
    /// The connection's UUID (also `connectionMetadata.id` of the event).
    pub id: String,
    /// The client's address.
    pub peer: String,
    /// The SNI the client sent.
    pub sni: Option<String>,
    /// The ALPN protocols it offered.
    pub alpn_offered: Vec<String>,
    /// The protocol negotiated.
    pub alpn: Option<String>,
    /// mqtt, wss or https, once known.
    pub transport: Option<Transport>,
    /// `METHOD target` of the HTTP request (secrets scrubbed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The Host header (wss, https).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Request headers as they arrived (secrets scrubbed).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<(String, String)>,
    /// 4 (MQTT 3.1.1) or 5.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt_version: Option<u8>,
    /// The CONNECT client ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The CONNECT username (secrets scrubbed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Each custom-auth parameter found and where.
    pub credentials: Vec<CredentialSeen>,
    /// The authorizer that ran (or was named).
    pub authorizer: Option<String>,
    /// What the signature check said.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<Verdict>,
    /// The WebSocket subprotocol the 101 answered (`mqtt` or `mqttv3.1`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subprotocol: Option<String>,
    /// The `Origin` header of the request (what a browser adds; never a secret).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The event given to the function, as JSON text (scrubbed in the copy that is logged).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<Box<RawValue>>,
    /// The function's answer, as returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Box<RawValue>>,
    /// Whether the connection was accepted.
    pub accepted: bool,
    /// Why it ended as it did.
    pub reason: Reason,
    /// The reason in words.
    pub detail: String,
    /// What the client was sent as the refusal, e.g. `connack:0x87`, `close`, `http:403`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<Answered>,
    /// How long its stages took.
    pub durations: Durations,
    /// The secrets this connection carried; every string of the record is scrubbed with them before
    /// it is logged.
    #[serde(skip)]
    pub secrets: crate::secret::Scrubber,
    /// The connection's admission, told when its credentials are complete.
    #[serde(skip)]
    pub(crate) admission: Option<std::sync::Arc<super::admission::Entry>>,
}

impl ConnectionRecord {
    /// The event as a JSON value (for tests and library users; the record keeps the text).
    pub fn event_value(&self) -> Option<Value> {
        self.event.as_deref().and_then(|t| serde_json::from_str(t.get()).ok())
    }

    /// The function's response as a JSON value.
    pub fn response_value(&self) -> Option<Value> {
        self.response.as_deref().and_then(|t| serde_json::from_str(t.get()).ok())
    }

    /// A copy for a refresh to write into: without the event and response, which the refresh's own
    /// call replaces (a held session carries no second copy of them).
    pub(crate) fn copy_for_refresh(&mut self) -> Self {
        let (event, response) = (self.event.take(), self.response.take());
        let copy = self.clone();
        (self.event, self.response) = (event, response);
        copy
    }

    /// A record of a connection from `peer` with this UUID.
    pub fn new(id: String, peer: SocketAddr) -> Self {
        Self {
            id,
            peer: peer.to_string(),
            sni: None,
            alpn_offered: Vec::new(),
            alpn: None,
            transport: None,
            request: None,
            host: None,
            headers: Vec::new(),
            mqtt_version: None,
            client_id: None,
            username: None,
            credentials: Vec::new(),
            authorizer: None,
            signature: None,
            subprotocol: None,
            origin: None,
            event: None,
            response: None,
            accepted: false,
            reason: Reason::ClosedByClient,
            detail: String::new(),
            answer: None,
            durations: Durations::default(),
            secrets: crate::secret::Scrubber::default(),
            admission: None,
        }
    }

    /// The connection's credentials are complete and its decision starts: it is past
    /// authentication for [`super::admission`].
    pub(crate) fn authenticating(&self) {
        if let Some(a) = &self.admission {
            a.authenticating();
        }
    }

    /// Sets why the connection ended as it did (accepted or not follows from `reason`), and the detail.
    pub fn set(&mut self, reason: Reason, detail: impl Into<String>) {
        self.accepted = reason == Reason::Accepted;
        self.reason = reason;
        self.detail = escape(&detail.into());
    }

    /// The record as logged: every string scrubbed of the connection's secrets, wherever the device
    /// put them, and control characters escaped in the free text.
    pub fn scrubbed(&self) -> Self {
        let s = &self.secrets;
        let opt = |v: &Option<String>| v.as_deref().map(|x| s.scrub(x));
        let json = |v: &Option<Box<RawValue>>| v.as_deref().map(|x| scrub_raw(x, s));
        Self {
            sni: opt(&self.sni),
            alpn_offered: self.alpn_offered.iter().map(|a| s.scrub(a)).collect(),
            alpn: opt(&self.alpn),
            request: opt(&self.request),
            host: opt(&self.host),
            headers: self.headers.iter().map(|(n, v)| (n.clone(), s.scrub(v))).collect(),
            client_id: opt(&self.client_id),
            username: opt(&self.username),
            authorizer: opt(&self.authorizer),
            origin: opt(&self.origin),
            event: json(&self.event),
            response: json(&self.response),
            detail: escape(&s.scrub(&self.detail)),
            ..self.clone()
        }
    }

    /// One human line for stderr. Every field is escaped: a peer cannot start a new line or forge one.
    pub fn summary(&self) -> String {
        let or_dash = |v: &Option<String>| v.as_deref().map_or_else(|| "-".into(), escape);
        format!(
            "{} {} sni={} alpn={} transport={} authorizer={} -> {} ({:?}{}{}) {}ms",
            &self.id[..8.min(self.id.len())],
            self.peer,
            or_dash(&self.sni),
            or_dash(&self.alpn),
            self.transport.map_or("-", Transport::as_str),
            or_dash(&self.authorizer),
            if self.accepted { "accepted" } else { "rejected" },
            self.reason,
            if self.detail.is_empty() { "" } else { ": " },
            escape(&self.detail),
            self.durations.total_ms,
        )
    }
}

/// JSON text kept as it is (serialised once, embedded as it is in the log line).
pub(crate) fn raw(text: String) -> Option<Box<RawValue>> {
    RawValue::from_string(text).ok()
}

/// `json` with its string values scrubbed of `s`'s secrets, as text in one pass. A secret whose
/// raw form runs into a JSON escape could leave text that is not JSON: then the tree is scrubbed.
fn scrub_raw(json: &RawValue, s: &crate::secret::Scrubber) -> Box<RawValue> {
    let text = scrub_json_text(json.get(), s);
    let text = if serde_json::from_str::<serde::de::IgnoredAny>(&text).is_ok() {
        text
    } else {
        let tree: Value = serde_json::from_str(json.get()).unwrap_or(Value::Null);
        scrub_json(&tree, s).to_string()
    };
    RawValue::from_string(text).unwrap_or_else(|_| RawValue::from_string("null".into()).expect("null is JSON"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The event and response are logged as JSON text scrubbed of the connection's secrets, whatever
    /// characters a secret holds — even one whose raw form runs into a JSON escape.
    #[test]
    fn logged_json_text_is_scrubbed_and_still_json() {
        for secret in ["plain-token-123", "tok\"en\\x", "ends-with-backslash\\", "a\nb\tc-😀"] {
            let mut rec = ConnectionRecord::new("id".into(), "127.0.0.1:1".parse().unwrap());
            rec.secrets = crate::secret::Scrubber::new(false);
            rec.secrets.add_all_forms(secret);
            let event =
                serde_json::json!({"token": secret, "protocolData": {"mqtt": {"username": format!("u?t={secret}")}}});
            rec.event = raw(event.to_string());
            rec.response = raw(serde_json::json!({"context": {"echo": secret, "n": 1}}).to_string());
            let logged = serde_json::to_string(&rec.scrubbed()).unwrap();
            let back: Value = serde_json::from_str(&logged).expect("the log line is JSON");
            let text = back.to_string();
            assert!(!text.contains(secret), "{secret:?} in {text}");
            let escaped = serde_json::to_string(secret).unwrap();
            assert!(!logged.contains(&escaped[1..escaped.len() - 1]), "{logged}");
            assert_eq!(back["response"]["context"]["n"], 1, "the rest is kept: {text}");
            assert!(back["event"]["protocolData"]["mqtt"]["username"].as_str().unwrap().starts_with("u?t="));
        }
    }
}
