//! What an attempt put on the wire, as its report shows it (secrets redacted unless `--show-secrets`).

use super::tls::TlsInfo;
use crate::auth::credentials::Placement;
use serde::Serialize;

/// What the attempt sent (secrets redacted unless `--show-secrets`).
#[derive(Clone, Debug, Default, Serialize)]
pub struct Sent {
    /// The addresses the attempt could dial (the proxy's, through a proxy).
    pub resolved: Vec<String>,
    /// What the endpoint's name resolved to, and from where (absent when a proxy resolves it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dns: Option<super::resolve::Answers>,
    /// The proxy the attempt went through, and why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proxy: Option<SentProxy>,
    /// The IP versions the attempt could dial (`-4`, `-6`, `--family both`).
    pub family: super::plan::Family,
    /// The address connected to.
    pub address: Option<String>,
    /// SNI sent, or none.
    pub sni: Option<String>,
    /// The ALPN protocols offered.
    pub alpn_offered: Vec<String>,
    /// The TLS session: version, cipher, ALPN, chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsInfo>,
    /// The HTTP request line (wss, https).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// The Host header sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_header: Option<String>,
    /// Each custom-auth parameter and where it went.
    pub credentials: Vec<SentCredential>,
    /// The CONNECT username (secrets redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// The CONNECT password (redacted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// The CONNECT client ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    /// The MQTT version of CONNECT.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt_version: Option<&'static str>,
    /// The CONNECT keep-alive, in seconds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<u16>,
    /// `Sec-WebSocket-Protocol` of the upgrade (wss).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ws_protocol: Option<String>,
    /// A page's HTTPS publish (`--client-type browser`): its CORS preflight and the browser's verdicts.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cors: Option<super::cors::CorsSeen>,
    /// Certificate verification was off (`--insecure`).
    pub insecure: bool,
}

/// The proxy of an attempt.
#[derive(Clone, Debug, Serialize)]
pub struct SentProxy {
    /// The proxy URL, its password redacted unless `--show-secrets`.
    pub url: String,
    /// `--proxy`, or the environment variable it came from.
    pub source: super::proxy::ProxySource,
    /// Who resolves the endpoint's name: `proxy` (http, socks5h) or `local` (socks5).
    pub resolves: Resolver,
    /// The target the tunnel was asked for.
    pub target: String,
}

/// Who resolves the endpoint's name when a proxy is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolver {
    /// The proxy (HTTP CONNECT, `socks5h://`).
    Proxy,
    /// This machine (`socks5://`).
    Local,
}

/// One custom-auth parameter as sent.
#[derive(Clone, Debug, Serialize)]
pub struct SentCredential {
    /// The parameter or header name.
    pub parameter: String,
    /// Where it went.
    pub placement: Placement,
    /// `percent-encoded` or `as-is`.
    pub encoding: &'static str,
    /// Its value as sent (redacted for secrets).
    pub value: String,
}
