//! The classification contract (docs/outcomes.md): stages, kinds and their evidence. These names are
//! the stable vocabulary of `--format json` and of the exit code.

use serde::Serialize;

/// Connection stages, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Resolve,
    Tcp,
    Proxy,
    Tls,
    Upgrade,
    Mqtt,
    Http,
    Authorize,
}

impl Stage {
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
    DnsFailed,
    TcpRefused,
    TcpTimeout,
    TcpUnreachable,
    TcpReset,
    ProxyRefused,
    ProxyAuthRequired,
    ProxyTimeout,
    TlsAlert,
    TlsClosed,
    TlsCertUntrusted,
    TlsCertNameMismatch,
    TlsCertExpired,
    TlsCertInvalid,
    TlsNotTls,
    TlsTimeout,
    /// Any other handshake failure (added to the contract: a TLS error that is none of the above).
    TlsHandshakeFailed,
    UpgradeRejected,
    UpgradeInvalid,
    UpgradeClosed,
    UpgradeTimeout,
    ConnackAccepted,
    ConnackRefused,
    ClosedBeforeConnack,
    ConnackTimeout,
    MqttProtocolError,
    HttpOk,
    HttpRejected,
    HttpClosed,
    HttpTimeout,
    HttpMalformedResponse,
    PublishAccepted,
    SubscribeAccepted,
    MessageReceived,
    PublishRefused,
    SubscribeRefused,
    ClosedAfterPublish,
    ClosedAfterSubscribe,
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
            HttpOk | HttpRejected | HttpClosed | HttpTimeout | HttpMalformedResponse => Stage::Http,
            PublishAccepted | SubscribeAccepted | MessageReceived | PublishRefused | SubscribeRefused
            | ClosedAfterPublish | ClosedAfterSubscribe | MessageMissing => Stage::Authorize,
        }
    }

    pub fn is_success(self) -> bool {
        matches!(
            self,
            Self::ConnackAccepted
                | Self::HttpOk
                | Self::PublishAccepted
                | Self::SubscribeAccepted
                | Self::MessageReceived
        )
    }

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
    pub subject: String,
    pub issuer: String,
    pub not_after: String,
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
    Dns {
        name: String,
        error: String,
    },
    Tcp {
        address: String,
        elapsed_ms: u64,
        error: String,
    },
    /// The proxy's answer: its status line (HTTP) or SOCKS5 reply, or that none came.
    Proxy {
        proxy: String,
        status_line: String,
        elapsed_ms: u64,
    },
    /// A TLS alert: its name and its code (both in the report; the code is the alert's own).
    Alert {
        alert: crate::wire::alert::Alert,
        code: u8,
    },
    Closed {
        how: CloseHow,
        bytes_seen: u64,
    },
    Cert {
        name_checked: String,
        error: String,
        chain: Vec<CertSummary>,
        /// Whether the chain is issued under Amazon's roots.
        #[serde(skip_serializing_if = "Option::is_none")]
        amazon_roots: Option<bool>,
    },
    NotTls {
        first_bytes: String,
    },
    Timeout {
        elapsed_ms: u64,
    },
    Http {
        status: u16,
        #[serde(skip_serializing_if = "Option::is_none")]
        error_type: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        request_id: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        #[serde(skip_serializing_if = "Option::is_none")]
        trace_id: Option<String>,
    },
    UpgradeInvalid {
        problem: String,
    },
    Elapsed {
        elapsed_ms: u64,
        bytes_seen: u64,
    },
    Connack {
        code: u8,
        reason: String,
        session_present: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        reason_string: Option<String>,
    },
    ClosedAfter {
        how: CloseHow,
        after_ms: u64,
    },
    Wait {
        waited_ms: u64,
    },
    Protocol {
        bytes: String,
        error: String,
    },
    /// A PUBACK or SUBACK reason code, and what it was for.
    Ack {
        code: u8,
        reason: String,
        action: String,
        resource: String,
    },
    /// A check that ended without an answer (closed, or the message never came).
    Check {
        action: String,
        resource: String,
        elapsed_ms: u64,
    },
    Failure {
        error: String,
    },
}

/// Where an attempt stopped (or that it succeeded), and the evidence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub stage: Stage,
    pub kind: Kind,
    pub success: bool,
    pub detail: Detail,
}

impl Outcome {
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
