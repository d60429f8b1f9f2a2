//! One record per connection: what arrived, what the emulator decided and why, and how long each step
//! took. Written to stderr through `tracing` and, with `--log-json`, as JSON lines.

use super::settings::TlsReject;
use crate::auth::credentials::Placement;
use crate::auth::event::Transport;
use crate::auth::signature::Verdict;
use crate::secret::{escape, scrub_json};
use crate::wire::mqtt::Connack;
use serde::Serialize;
use serde_json::Value;
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
    /// The event given to the function (secrets scrubbed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event: Option<Value>,
    /// The function's answer, as returned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<Value>,
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
    /// The event and response as compact JSON text while a session is held ([`Self::compact`]).
    #[serde(skip)]
    held: Option<Box<Held>>,
    /// The connection's admission, told when its credentials are complete.
    #[serde(skip)]
    pub(crate) admission: Option<std::sync::Arc<super::admission::Entry>>,
}

/// The event and response of a held session, as JSON text.
#[derive(Clone, Debug)]
struct Held {
    event: Option<Box<str>>,
    response: Option<Box<str>>,
}

impl ConnectionRecord {
    /// Keeps the event and response as compact JSON text while the session is held — a few hundred
    /// bytes each instead of a tree of maps (kilobytes) for every open connection; [`Self::expand`]
    /// restores them before the record is logged.
    pub(crate) fn compact(&mut self) {
        let text = |v: Option<Value>| v.and_then(|v| serde_json::to_string(&v).ok()).map(String::into_boxed_str);
        let held = Held { event: text(self.event.take()), response: text(self.response.take()) };
        self.held = (held.event.is_some() || held.response.is_some()).then(|| Box::new(held));
    }

    /// The event and response back as JSON values, after [`Self::compact`].
    pub(crate) fn expand(&mut self) {
        if let Some(held) = self.held.take() {
            let value = |t: Option<Box<str>>| t.and_then(|t| serde_json::from_str(&t).ok());
            self.event = value(held.event);
            self.response = value(held.response);
        }
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
            event: None,
            response: None,
            accepted: false,
            reason: Reason::ClosedByClient,
            detail: String::new(),
            answer: None,
            durations: Durations::default(),
            secrets: crate::secret::Scrubber::default(),
            held: None,
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
        let json = |v: &Option<Value>| v.as_ref().map(|x| scrub_json(x, s));
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
