//! Stage `tls`: the handshake with the SNI and ALPN of the attempt. Records what was negotiated and the
//! chain the server presented (also when verification fails, for the "who intercepts TLS" question).

use super::classify::{Observation, TlsError};
use super::outcome::CertSummary;
use super::plan::Trust;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use serde::Serialize;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

pub(crate) type Stream = tokio_rustls::client::TlsStream<Tap<TcpStream>>;

/// What the handshake negotiated.
#[derive(Clone, Debug, Default, Serialize)]
pub struct TlsInfo {
    pub version: Option<String>,
    pub cipher: Option<String>,
    pub alpn: Option<String>,
    pub chain: Vec<CertSummary>,
    /// Whether the presented chain is issued under Amazon's roots (Amazon Root CA 1–4, Starfield
    /// Services Root CA G2), checked whatever the trust setting (also with `--insecure`).
    pub amazon_roots: Option<bool>,
}

/// Runs the handshake. `sni: None` sends no SNI; the certificate is then checked against `name`.
pub(crate) async fn handshake(
    tcp: TcpStream,
    name: &str,
    sni: Option<&str>,
    alpn: &[Vec<u8>],
    trust: &Trust,
    timeout: Duration,
) -> Result<(Stream, TlsInfo), Observation> {
    let started = Instant::now();
    let seen = Arc::new(Mutex::new(Seen::default()));
    let config = client_config(trust, alpn, sni.is_some(), Some(seen.clone()))
        .map_err(|e| tls_failure(TlsError::Rustls(e), &Tally::default(), &seen, name))?;
    let server_name = ServerName::try_from(sni.unwrap_or(name).to_owned())
        .or_else(|_| ServerName::try_from(name.to_owned()))
        .map_err(|e| {
            tls_failure(
                TlsError::Io { kind: io::ErrorKind::InvalidInput, message: e.to_string() },
                &Tally::default(),
                &seen,
                name,
            )
        })?;
    let tap = Tap::new(tcp);
    let tally = tap.tally.clone();
    let connect = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(server_name, tap);
    match tokio::time::timeout(timeout, connect).await {
        Err(_) => Err(Observation::TlsTimeout { elapsed_ms: started.elapsed().as_millis() as u64 }),
        Ok(Err(e)) => {
            let t = tally.lock().map(|t| t.clone()).unwrap_or_default();
            Err(tls_failure(handshake_error(&e), &t, &seen, name))
        }
        Ok(Ok(stream)) => {
            let conn = stream.get_ref().1;
            let info = TlsInfo {
                version: conn.protocol_version().map(|v| format!("{v:?}")),
                cipher: conn.negotiated_cipher_suite().map(|s| format!("{:?}", s.suite())),
                alpn: conn.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned()),
                chain: summarize(&seen.lock().map(|c| c.chain.clone()).unwrap_or_default()),
                amazon_roots: seen.lock().ok().and_then(|c| c.amazon_roots),
            };
            Ok((stream, info))
        }
    }
}

/// One client config for many connections (`authprobe storm`): the probe's verification without
/// recording each chain, and no session resumption (a device reconnecting after an outage or a
/// broker restart starts with a full handshake).
pub(crate) fn shared_config(trust: &Trust, alpn: &[Vec<u8>]) -> Result<Arc<rustls::ClientConfig>, rustls::Error> {
    let mut config = client_config(trust, alpn, true, None)?;
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// A handshake with a [`shared_config`], within `timeout`.
pub(crate) async fn connect_shared(
    tcp: TcpStream,
    config: &Arc<rustls::ClientConfig>,
    name: &str,
    timeout: Duration,
) -> Result<Stream, Observation> {
    let started = Instant::now();
    let fail = |error: TlsError, tally: &Tally| Observation::TlsError {
        error,
        bytes_seen: tally.bytes,
        first_bytes: tally.first.clone(),
        chain: Vec::new(),
        name_checked: name.to_owned(),
        amazon_roots: None,
    };
    let server_name = ServerName::try_from(name.to_owned()).map_err(|e| {
        fail(TlsError::Io { kind: io::ErrorKind::InvalidInput, message: e.to_string() }, &Tally::default())
    })?;
    let tap = Tap::new(tcp);
    let tally = tap.tally.clone();
    let connect = tokio_rustls::TlsConnector::from(config.clone()).connect(server_name, tap);
    match tokio::time::timeout(timeout, connect).await {
        Err(_) => Err(Observation::TlsTimeout { elapsed_ms: started.elapsed().as_millis() as u64 }),
        Ok(Err(e)) => Err(fail(handshake_error(&e), &tally.lock().map(|t| t.clone()).unwrap_or_default())),
        Ok(Ok(stream)) => Ok(stream),
    }
}

/// A failed handshake as the client saw it: rustls' own error where there is one, else the I/O error.
fn handshake_error(e: &io::Error) -> TlsError {
    match e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) {
        Some(r) => TlsError::Rustls(r.clone()),
        None => TlsError::Io { kind: e.kind(), message: e.to_string() },
    }
}

fn tls_failure(error: TlsError, tally: &Tally, seen: &Mutex<Seen>, name: &str) -> Observation {
    Observation::TlsError {
        error,
        bytes_seen: tally.bytes,
        first_bytes: tally.first.clone(),
        chain: summarize(&seen.lock().map(|c| c.chain.clone()).unwrap_or_default()),
        name_checked: name.to_owned(),
        amazon_roots: seen.lock().ok().and_then(|c| c.amazon_roots),
    }
}

/// The chain the server presented, and whether it is issued under Amazon's roots.
#[derive(Debug, Default)]
struct Seen {
    chain: Vec<CertificateDer<'static>>,
    amazon_roots: Option<bool>,
}

/// The roots IoT Core's ATS endpoints chain to: Amazon Root CA 1–4 and the Starfield Services root
/// that cross-signs them, taken from the bundled Mozilla roots.
fn amazon_roots() -> &'static Arc<rustls::RootCertStore> {
    static ROOTS: std::sync::OnceLock<Arc<rustls::RootCertStore>> = std::sync::OnceLock::new();
    ROOTS.get_or_init(|| {
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().filter(|a| is_amazon_root(a.subject.as_ref())).cloned());
        Arc::new(roots)
    })
}

/// Whether a root's subject (DER) names one of Amazon's roots.
fn is_amazon_root(subject: &[u8]) -> bool {
    let has = |needle: &[u8]| subject.windows(needle.len()).any(|w| w == needle);
    has(b"Amazon Root CA") || has(b"Starfield Services Root Certificate Authority - G2")
}

/// Whether the chain is issued under Amazon's roots: path building to them succeeds (a name or
/// validity problem is another matter, reported by the normal verification).
fn issued_under_amazon(
    end_entity: &CertificateDer<'_>,
    intermediates: &[CertificateDer<'_>],
    server_name: &ServerName<'_>,
    now: UnixTime,
    provider: &Arc<CryptoProvider>,
) -> bool {
    let Ok(v) =
        rustls::client::WebPkiServerVerifier::builder_with_provider(amazon_roots().clone(), provider.clone()).build()
    else {
        return false;
    };
    match v.verify_server_cert(end_entity, intermediates, server_name, &[], now) {
        Ok(_) => true,
        Err(rustls::Error::InvalidCertificate(e)) => !matches!(
            e,
            rustls::CertificateError::UnknownIssuer
                | rustls::CertificateError::BadSignature
                | rustls::CertificateError::BadEncoding
                | rustls::CertificateError::Other(_)
        ),
        Err(_) => false,
    }
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn client_config(
    trust: &Trust,
    alpn: &[Vec<u8>],
    sni: bool,
    seen: Option<Arc<Mutex<Seen>>>,
) -> Result<rustls::ClientConfig, rustls::Error> {
    let provider = provider();
    let inner = match trust {
        Trust::Insecure => None,
        Trust::Bundled | Trust::Roots(_) => {
            let mut roots = rustls::RootCertStore::empty();
            match trust {
                Trust::Roots(certs) => {
                    for c in certs {
                        // Unusable roots were rejected when the plan was built.
                        let _ = roots.add(c.clone());
                    }
                }
                _ => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
            }
            let built =
                rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone()).build();
            Some(built.map_err(|e| rustls::Error::General(e.to_string()))?)
        }
    };
    let verifier = Arc::new(Recording { inner, seen, provider: provider.clone() });
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = alpn.to_vec();
    config.enable_sni = sni;
    Ok(config)
}

/// Verifies through webpki (or not at all with `--insecure`) and keeps the presented chain (unless
/// `seen` is `None`: many connections sharing one config, `authprobe storm`).
#[derive(Debug)]
struct Recording {
    inner: Option<Arc<rustls::client::WebPkiServerVerifier>>,
    seen: Option<Arc<Mutex<Seen>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Recording {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Some(seen) = &self.seen {
            let amazon = issued_under_amazon(end_entity, intermediates, server_name, now, &self.provider);
            if let Ok(mut seen) = seen.lock() {
                seen.chain = std::iter::once(end_entity).chain(intermediates).map(|c| c.clone().into_owned()).collect();
                seen.amazon_roots = Some(amazon);
            }
        }
        match &self.inner {
            None => Ok(ServerCertVerified::assertion()),
            Some(v) => v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

/// Subject, issuer, expiry and DNS names of each certificate.
pub(crate) fn summarize(chain: &[CertificateDer<'_>]) -> Vec<CertSummary> {
    chain
        .iter()
        .map(|der| match x509_parser::parse_x509_certificate(der) {
            Ok((_, cert)) => CertSummary {
                subject: cert.subject().to_string(),
                issuer: cert.issuer().to_string(),
                not_after: cert.validity().not_after.to_string(),
                dns_names: cert
                    .subject_alternative_name()
                    .ok()
                    .flatten()
                    .map(|san| {
                        san.value
                            .general_names
                            .iter()
                            .filter_map(|g| match g {
                                x509_parser::extensions::GeneralName::DNSName(n) => Some((*n).to_owned()),
                                _ => None,
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
            },
            Err(e) => CertSummary {
                subject: format!("<unparsable: {e}>"),
                issuer: String::new(),
                not_after: String::new(),
                dns_names: vec![],
            },
        })
        .collect()
}

/// Bytes read from the server so far and the first of them.
#[derive(Clone, Debug, Default)]
pub(crate) struct Tally {
    pub bytes: u64,
    pub first: Vec<u8>,
}

/// A TCP stream that counts what it reads (to tell "closed after 0 bytes" from "not TLS").
pub(crate) struct Tap<S> {
    inner: S,
    pub tally: Arc<Mutex<Tally>>,
}

impl<S> Tap<S> {
    pub(crate) fn new(inner: S) -> Self {
        Self { inner, tally: Arc::new(Mutex::new(Tally::default())) }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Tap<S> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let res = Pin::new(&mut self.inner).poll_read(cx, buf);
        let new = &buf.filled()[before..];
        if !new.is_empty() {
            if let Ok(mut t) = self.tally.lock() {
                t.bytes += new.len() as u64;
                let room = 32usize.saturating_sub(t.first.len());
                t.first.extend_from_slice(&new[..new.len().min(room)]);
            }
        }
        res
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tap<S> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    // Passed through: rustls writes a flight of records as one vectored write (one segment).
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
