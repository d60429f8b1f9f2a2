//! The TLS front: read the ClientHello before choosing anything, route on SNI and ALPN as IoT Core does,
//! and refuse in the configured way (alert, close, reset, or the X.509 path's client-certificate demand).

use super::config::EmulatorConfig;
use super::record::Reason;
use super::settings::TlsReject;
use std::io;
use std::sync::Arc;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The ALPN protocol of MQTT over TLS on 443.
pub(crate) const ALPN_MQTT: &[u8] = b"mqtt";
/// The ALPN protocol of the X.509 path on 443.
pub(crate) const ALPN_X509: &[u8] = b"x-amzn-mqtt-ca";
/// Largest ClientHello read (a post-quantum key share makes them about 2 KB).
const MAX_HELLO: usize = 64 * 1024;

/// What the ClientHello offered.
#[derive(Clone, Debug, Default)]
pub(crate) struct Hello {
    pub sni: Option<String>,
    pub alpn: Vec<Vec<u8>>,
}

impl Hello {
    pub(crate) fn offers(&self, proto: &[u8]) -> bool {
        self.alpn.iter().any(|p| p == proto)
    }
}

/// Why no ClientHello could be read.
#[derive(Debug)]
pub(crate) enum HelloError {
    ClosedByClient,
    NotTls(String),
    Io(io::Error),
}

/// Reads until a whole ClientHello has arrived; returns it with every byte read, to be replayed into
/// the real handshake. Garbage gets rustls' own alert.
pub(crate) async fn read_client_hello(tcp: &mut TcpStream) -> Result<(Hello, Vec<u8>), HelloError> {
    let mut acceptor = rustls::server::Acceptor::default();
    // Read straight into the heap buffer: a stack array here would live in every connection's task
    // for its whole life (a spawned future is as large as its largest state).
    let mut seen = Vec::with_capacity(1024);
    loop {
        let start = seen.len();
        seen.reserve(1024);
        let n = tcp.read_buf(&mut seen).await.map_err(HelloError::Io)?;
        if n == 0 {
            return Err(HelloError::ClosedByClient);
        }
        if seen.len() > MAX_HELLO {
            return Err(HelloError::NotTls(format!("no complete ClientHello in {MAX_HELLO} bytes")));
        }
        let mut rd = &seen[start..];
        while !rd.is_empty() {
            match acceptor.read_tls(&mut rd) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(HelloError::NotTls(e.to_string())),
            }
        }
        match acceptor.accept() {
            Ok(None) => continue,
            Ok(Some(accepted)) => {
                let ch = accepted.client_hello();
                let hello = Hello {
                    sni: ch.server_name().map(str::to_owned),
                    alpn: ch.alpn().map(|i| i.map(<[u8]>::to_vec).collect()).unwrap_or_default(),
                };
                return Ok((hello, seen));
            }
            Err((err, mut alert)) => {
                let mut out = Vec::new();
                let _ = alert.write_all(&mut out);
                let _ = tcp.write_all(&out).await;
                return Err(HelloError::NotTls(format!("{err}; first bytes {}", crate::wire::hex_prefix(&seen))));
            }
        }
    }
}

/// Where a connection goes after its ClientHello.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Route {
    Mqtt,
    Http,
    /// The X.509 path (`x-amzn-mqtt-ca`): the authorizer never runs.
    X509,
    Refuse(TlsReject, Reason),
}

/// Routes on SNI first (it selects the domain configuration), then ALPN.
pub(crate) fn route(hello: &Hello, cfg: &EmulatorConfig) -> Route {
    match &hello.sni {
        None => return Route::Refuse(cfg.reject.no_sni, Reason::NoSni),
        Some(name) if !cfg.endpoints.iter().any(|e| e.eq_ignore_ascii_case(name)) => {
            return Route::Refuse(cfg.reject.unknown_sni, Reason::UnknownSni);
        }
        Some(_) => {}
    }
    if hello.offers(ALPN_MQTT) {
        Route::Mqtt
    } else if hello.offers(ALPN_X509) {
        Route::X509
    } else {
        Route::Http
    }
}

/// Refuses a connection on the raw socket, before any ServerHello.
pub(crate) async fn refuse(mut tcp: TcpStream, how: TlsReject) {
    match how {
        TlsReject::Alert(alert) => {
            // A plaintext TLS 1.2 record: level fatal (2), then the description.
            let _ = tcp.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, alert.0]).await;
            let _ = tcp.shutdown().await;
        }
        TlsReject::Close | TlsReject::RequireClientCert | TlsReject::HandshakeThenClose => {
            let _ = tcp.shutdown().await;
        }
        TlsReject::Reset => reset(&tcp),
    }
}

/// Makes the coming drop send RST instead of FIN.
pub(crate) fn reset(tcp: &TcpStream) {
    let _ = tcp.set_zero_linger();
}

/// Server configurations, one per route, built once.
pub(crate) struct ServerConfigs {
    pub mqtt: Arc<rustls::ServerConfig>,
    pub http: Arc<rustls::ServerConfig>,
    /// No ALPN at all: what a server behind an ALPN-stripping middlebox negotiates.
    pub no_alpn: Arc<rustls::ServerConfig>,
    pub x509: Arc<rustls::ServerConfig>,
}

impl ServerConfigs {
    pub(crate) fn build(cfg: &EmulatorConfig) -> Result<Self, rustls::Error> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let ticketer = rustls::crypto::ring::Ticketer::new()?;
        let plain = |alpn: &[&[u8]]| -> Result<Arc<rustls::ServerConfig>, rustls::Error> {
            let mut c = rustls::ServerConfig::builder_with_provider(provider.clone())
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(cfg.identity.chain.clone(), cfg.identity.key.clone_key())?;
            c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            c.ticketer = ticketer.clone();
            Ok(Arc::new(c))
        };
        // The X.509 path demands a client certificate from a CA no client has: exactly what a device
        // without a certificate meets on the real endpoint.
        let ca = super::certs::Ca::generate("authprobe X.509-path client CA")
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der())?;
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        let mut x509 = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()?
            .with_client_cert_verifier(verifier)
            .with_single_cert(cfg.identity.chain.clone(), cfg.identity.key.clone_key())?;
        x509.alpn_protocols = vec![ALPN_X509.to_vec()];
        Ok(Self {
            mqtt: plain(&[ALPN_MQTT])?,
            http: plain(&[b"http/1.1"])?,
            no_alpn: plain(&[])?,
            x509: Arc::new(x509),
        })
    }
}
