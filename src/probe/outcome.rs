//! The classification contract (docs/outcomes.md): stages, kinds and their evidence. These names are
//! the stable vocabulary of `--format json` and of the exit code.

use serde::Serialize;

/// Connection stages, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Resolving the endpoint's name.
    Resolve,
    /// The TCP connection.
    Tcp,
    /// The proxy's tunnel.
    Proxy,
    /// The TLS handshake.
    Tls,
    /// The WebSocket upgrade (wss).
    Upgrade,
    /// CONNECT and CONNACK (mqtt, wss).
    Mqtt,
    /// The HTTPS publish.
    Http,
    /// The post-connect checks (publish, subscribe).
    Authorize,
}

impl Stage {
    /// The stage's name in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Resolve => "resolve",
            Self::Tcp => "tcp",
            Self::Proxy => "proxy",
            Self::Tls => "tls",
            Self::Upgrade => "upgrade",
            Self::Mqtt => "mqtt",
            Self::Http => "http",
            Self::Authorize => "authorize",
        }
    }
}

/// Outcome kinds. Existing names are never renamed or reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// The name does not resolve.
    DnsFailed,
    /// RST to SYN.
    TcpRefused,
    /// No answer to SYN.
    TcpTimeout,
    /// No route, or the network is unreachable.
    TcpUnreachable,
    /// The connection was reset while opening.
    TcpReset,
    /// The proxy refused the tunnel.
    ProxyRefused,
    /// The proxy wants (other) credentials: 407, 401 or SOCKS5 authentication.
    ProxyAuthRequired,
    /// The proxy did not answer in time.
    ProxyTimeout,
    /// The server sent a TLS alert.
    TlsAlert,
    /// The server closed during the handshake.
    TlsClosed,
    /// The chain is not trusted.
    TlsCertUntrusted,
    /// The certificate is not valid for the name.
    TlsCertNameMismatch,
    /// The certificate has expired (or is not yet valid).
    TlsCertExpired,
    /// The certificate is invalid otherwise.
    TlsCertInvalid,
    /// What answered is not TLS.
    TlsNotTls,
    /// No finished handshake in time.
    TlsTimeout,
    /// Any other handshake failure (added to the contract: a TLS error that is none of the above).
    TlsHandshakeFailed,
    /// The upgrade was answered with an HTTP error.
    UpgradeRejected,
    /// The upgrade's answer is not a valid 101.
    UpgradeInvalid,
    /// Closed without answering the upgrade.
    UpgradeClosed,
    /// No answer to the upgrade in time.
    UpgradeTimeout,
    /// CONNACK 0: connected (success).
    ConnackAccepted,
    /// A CONNACK with a refusal code.
    ConnackRefused,
    /// Closed after CONNECT without a CONNACK.
    ClosedBeforeConnack,
    /// No CONNACK in time.
    ConnackTimeout,
    /// The server sent something that is not a CONNACK.
    MqttProtocolError,
    /// The HTTPS publish was accepted (success).
    HttpOk,
    /// The HTTPS publish was answered with an HTTP error.
    HttpRejected,
    /// Closed without an HTTP answer.
    HttpClosed,
    /// No HTTP answer in time.
    HttpTimeout,
    /// An answer that is not HTTP.
    HttpMalformedResponse,
    /// A page's CORS preflight was answered so that the browser sends no publish
    /// (`--client-type browser`; added to the contract).
    PreflightRefused,
    /// The PUBLISH was acknowledged (success).
    PublishAccepted,
    /// The SUBSCRIBE was granted (success).
    SubscribeAccepted,
    /// The published message came back on the subscription (success).
    MessageReceived,
    /// The PUBLISH was refused with a reason code.
    PublishRefused,
    /// The SUBSCRIBE was refused (0x80 or a reason code).
    SubscribeRefused,
    /// The server closed after the PUBLISH (MQTT 3.1.1's refusal).
    ClosedAfterPublish,
    /// The server closed after the SUBSCRIBE.
    ClosedAfterSubscribe,
    /// The message did not come back in time.
    MessageMissing,
}

impl Kind {
    /// The stage this kind belongs to.
    pub fn stage(self) -> Stage {
        use Kind::*;
        match self {
            DnsFailed => Stage::Resolve,
            TcpRefused | TcpTimeout | TcpUnreachable | TcpReset => Stage::Tcp,
            ProxyRefused | ProxyAuthRequired | ProxyTimeout => Stage::Proxy,
            TlsAlert | TlsClosed | TlsCertUntrusted | TlsCertNameMismatch | TlsCertExpired | TlsCertInvalid
            | TlsNotTls | TlsTimeout | TlsHandshakeFailed => Stage::Tls,
            UpgradeRejected | UpgradeInvalid | UpgradeClosed | UpgradeTimeout => Stage::Upgrade,
            ConnackAccepted | ConnackRefused | ClosedBeforeConnack | ConnackTimeout | MqttProtocolError => Stage::Mqtt,
            HttpOk | HttpRejected | HttpClosed | HttpTimeout | HttpMalformedResponse | PreflightRefused => Stage::Http,
            PublishAccepted | SubscribeAccepted | MessageReceived | PublishRefused | SubscribeRefused
            | ClosedAfterPublish | ClosedAfterSubscribe | MessageMissing => Stage::Authorize,
        }
    }

    pub(crate) fn is_success(self) -> bool {
        matches!(
            self,
            Self::ConnackAccepted
                | Self::HttpOk
                | Self::PublishAccepted
                | Self::SubscribeAccepted
                | Self::MessageReceived
        )
    }

    /// The kind's name in reports.
    pub fn as_str(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }
}

/// How a peer ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseHow {
    /// TLS close_notify, then EOF.
    CloseNotify,
    /// FIN without close_notify.
    Eof,
    /// RST.
    Reset,
}

impl CloseHow {
    /// `close_notify`, `eof` or `reset`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CloseNotify => "close_notify",
            Self::Eof => "eof",
            Self::Reset => "reset",
        }
    }
}

/// One certificate of the presented chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CertSummary {
    /// The subject DN.
    pub subject: String,
    /// The issuer DN.
    pub issuer: String,
    /// The end of its validity.
    pub not_after: String,
    /// Its DNS subject alternative names.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub dns_names: Vec<String>,
}

/// Whether a presented chain is Amazon's: as path building to Amazon's roots decided
/// (`amazon_roots`), or where that could not run, by the issuers' names.
pub fn chain_is_amazons(chain: &[CertSummary], amazon_roots: Option<bool>) -> bool {
    amazon_roots.unwrap_or_else(|| chain.iter().any(|c| crate::auth::endpoint::issuer_is_amazon(&c.issuer)))
}

/// The evidence of an outcome (the contract's `detail`), one shape per family of kinds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(untagged)]
pub enum Detail {
    /// Resolving failed.
    Dns {
        /// The name looked up.
        name: String,
        /// The error, in the words of the layer that saw it.
        error: String,
    },
    /// Connecting failed.
    Tcp {
        /// The address dialled (the proxy's, through a proxy).
        address: String,
        /// Milliseconds from the stage's start.
        elapsed_ms: u64,
        /// The error, in the words of the layer that saw it.
        error: String,
    },
    /// The proxy's answer: its status line (HTTP) or SOCKS5 reply, or that none came.
    Proxy {
        /// The proxy URL, its password redacted.
        proxy: String,
        /// The HTTP status line, or the SOCKS5 reply, or that none came.
        status_line: String,
        /// Milliseconds from the stage's start.
        elapsed_ms: u64,
    },
    /// A TLS alert: its name and its code (both in the report; the code is the alert's own).
    Alert {
        /// The alert (its name in reports).
        alert: crate::wire::alert::Alert,
        /// The code on the wire.
        code: u8,
    },
    /// A close during the handshake.
    Closed {
        /// `close_notify`, FIN or RST.
        how: CloseHow,
        /// Bytes received from the server before it.
        bytes_seen: u64,
    },
    /// A certificate problem.
    Cert {
        /// The name the certificate was checked for.
        name_checked: String,
        /// The error, in the words of the layer that saw it.
        error: String,
        /// The chain presented, leaf first.
        chain: Vec<CertSummary>,
        /// Whether the chain is issued under Amazon's roots.
        #[serde(skip_serializing_if = "Option::is_none")]
        amazon_roots: Option<bool>,
    },
    /// What answered is not TLS.
    NotTls {
        /// Its first bytes.
        first_bytes: String,
    },
    /// The stage ran out of time.
    Timeout {
        /// Milliseconds from the stage's start.
        elapsed_ms: u64,
    },
    /// An HTTP answer.
    Http {
        /// The HTTP status.
        status: u16,
        /// `x-amzn-ErrorType`.
        #[serde(skip_serializing_if = "Option::is_none")]
        error_type: Option<String>,
        /// `x-amzn-RequestId`.
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        /// The body's `message`.
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// The body's `traceId`.
        #[serde(skip_serializing_if = "Option::is_none")]
        trace_id: Option<String>,
    },
    /// A CORS preflight's answer and why the browser stops there.
    Preflight {
        /// The preflight's HTTP status.
        status: u16,
        /// What in the answer stops the browser.
        cors_problem: String,
    },
    /// An invalid upgrade answer.
    UpgradeInvalid {
        /// What is wrong with it.
        problem: String,
    },
    /// A close or a silence, after so long.
    Elapsed {
        /// Milliseconds from the stage's start.
        elapsed_ms: u64,
        /// Bytes received from the server before it.
        bytes_seen: u64,
    },
    /// The CONNACK.
    Connack {
        /// The code on the wire.
        code: u8,
        /// The code's name.
        reason: String,
        /// Its session-present flag.
        session_present: bool,
        /// MQTT 5's reason string.
        #[serde(skip_serializing_if = "Option::is_none")]
        reason_string: Option<String>,
    },
    /// A close after CONNECT without CONNACK.
    ClosedAfter {
        /// `close_notify`, FIN or RST.
        how: CloseHow,
        /// Milliseconds after CONNECT.
        after_ms: u64,
    },
    /// Nothing came in time.
    Wait {
        /// Milliseconds waited.
        waited_ms: u64,
    },
    /// Bytes that break MQTT.
    Protocol {
        /// The bytes, as hex.
        bytes: String,
        /// The error, in the words of the layer that saw it.
        error: String,
    },
    /// A PUBACK or SUBACK reason code, and what it was for.
    Ack {
        /// The code on the wire.
        code: u8,
        /// The code's name.
        reason: String,
        /// The IoT action checked.
        action: String,
        /// The resource ARN checked.
        resource: String,
    },
    /// A check that ended without an answer (closed, or the message never came).
    Check {
        /// The IoT action checked.
        action: String,
        /// The resource ARN checked.
        resource: String,
        /// Milliseconds from the stage's start.
        elapsed_ms: u64,
    },
    /// A failure no other shape fits.
    Failure {
        /// The error, in the words of the layer that saw it.
        error: String,
    },
}

/// Where an attempt stopped (or that it succeeded), and the evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// Where the attempt stopped.
    pub stage: Stage,
    /// What happened there.
    pub kind: Kind,
    /// Whether this is the transport's success.
    pub success: bool,
    /// The evidence.
    pub detail: Detail,
}

impl Outcome {
    /// The outcome of `kind` (its stage and success follow from it).
    pub fn new(kind: Kind, detail: Detail) -> Self {
        Self { stage: kind.stage(), kind, success: kind.is_success(), detail }
    }
}

/// Bytes as hex, with a printable rendering when they look like text.
pub fn show_bytes(bytes: &[u8]) -> String {
    let shown = &bytes[..bytes.len().min(32)];
    let hex: Vec<String> = shown.iter().map(|b| format!("{b:02x}")).collect();
    let text: String = shown.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' }).collect();
    let more =
        if bytes.len() > shown.len() { format!(" (+{} bytes)", bytes.len() - shown.len()) } else { String::new() };
    format!("{} \"{text}\"{more}", hex.join(" "))
}
