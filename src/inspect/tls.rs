//! What a connection's bytes say: the client's first flight (a TLS ClientHello, or plain HTTP) and
//! the server's answer (ServerHello, alert, certificates in TLS 1.2, plain HTTP), read with
//! tls-parser.

use serde::Serialize;
use tls_parser::{TlsExtension, TlsMessage, TlsMessageHandshake, parse_tls_extensions, parse_tls_plaintext};

/// What the client offered in its ClientHello.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ClientHello {
    /// The server name sent (`None`: no SNI extension).
    pub sni: Option<String>,
    pub alpn: Vec<String>,
    pub versions: Vec<String>,
    pub cipher_suites: Vec<String>,
}

/// How the server answered.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ServerAnswer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// The ALPN protocol the server chose (visible in TLS 1.2 only; TLS 1.3 encrypts it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alpn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cipher_suite: Option<String>,
    /// A TLS alert, by its snake_case name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alert: Option<String>,
    /// Issuers of the certificates the server presented (TLS 1.2; TLS 1.3 encrypts them).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub certificate_issuers: Vec<String>,
}

/// The client's first bytes, read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum First {
    Hello(ClientHello),
    /// Plain HTTP (its request line).
    Http(String),
    /// Something else (shown as bytes), or a ClientHello the capture cut off.
    Other(String),
    Nothing,
}

fn version_name(v: u16) -> String {
    match v {
        0x0304 => "TLS 1.3".into(),
        0x0303 => "TLS 1.2".into(),
        0x0302 => "TLS 1.1".into(),
        0x0301 => "TLS 1.0".into(),
        0x0300 => "SSL 3.0".into(),
        other => format!("0x{other:04x}"),
    }
}

/// GREASE values (RFC 8701) are noise, not offers.
fn is_grease(v: u16) -> bool {
    v & 0x0f0f == 0x0a0a && (v >> 8) == (v & 0xff)
}

fn cipher_name(id: u16) -> String {
    tls_parser::TlsCipherSuite::from_id(id).map_or_else(|| format!("0x{id:04x}"), |c| c.name.to_owned())
}

fn printable(bytes: &[u8]) -> String {
    crate::probe::outcome::show_bytes(bytes)
}

/// A request line with every query value redacted (`name=<redacted len=N sha256=…>`), and what the
/// custom-auth signature's form says, if one is there.
fn redact_target(line: &str) -> (String, String) {
    let Some((head, rest)) = line.split_once('?') else { return (line.to_owned(), String::new()) };
    let (query, tail) = rest.split_once(' ').map_or((rest, ""), |(q, t)| (q, t));
    let (redacted, notes) = redact_query(query);
    let tail = if tail.is_empty() { String::new() } else { format!(" {tail}") };
    (format!("{head}?{redacted}{tail}"), notes)
}

/// `a=1&b=2` with the values redacted; a note on the signature's form.
fn redact_query(query: &str) -> (String, String) {
    let mut notes = String::new();
    let parts: Vec<String> = query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some((name, value)) => {
                if name.eq_ignore_ascii_case(crate::auth::credentials::SIGNATURE) {
                    notes = signature_form(value);
                }
                // The authorizer's name is no secret, and says which authorizer the device asks for.
                if name.eq_ignore_ascii_case(crate::auth::credentials::AUTHORIZER_NAME) {
                    return format!("{name}={}", crate::secret::escape(value));
                }
                format!("{name}={}", crate::secret::redact(value))
            }
            None => pair.to_owned(),
        })
        .collect();
    (parts.join("&"), notes)
}

/// What the form of a signature as sent says, without any key: IoT Core needs standard base64,
/// percent-encoded in a query or username.
fn signature_form(raw: &str) -> String {
    let decoded = crate::auth::credentials::parse_query(&format!("s={raw}"), false)
        .first()
        .map(|p| p.value.clone())
        .unwrap_or_default();
    let mut said = Vec::new();
    if raw.contains('+') {
        said.push("a raw `+` (IoT Core may read it as a space: percent-encode it as %2B)");
    }
    if decoded.contains(['-', '_']) {
        said.push("base64url characters `-`/`_` (IoT Core needs standard base64)");
    } else if !decoded.is_empty() && decoded.len() % 4 != 0 {
        said.push("no base64 padding (IoT Core needs standard base64 with `=`)");
    }
    if said.is_empty() { String::new() } else { format!(" — the signature has {}", said.join(" and ")) }
}

/// An MQTT CONNECT sent without TLS, shown without its secrets: client ID, the username's structure
/// with its values redacted, whether a password came.
fn plaintext_connect(bytes: &[u8]) -> Option<String> {
    if bytes.first().map(|b| b >> 4) != Some(1) {
        return None;
    }
    let mut buf = bytes::BytesMut::from(bytes);
    let (client_id, username, password) = match rumqttc::mqttbytes::v4::Packet::read(&mut buf, 1 << 20) {
        Ok(rumqttc::mqttbytes::v4::Packet::Connect(c)) => {
            let login = c.login;
            (c.client_id, login.as_ref().map(|l| l.username.clone()), login.is_some_and(|l| !l.password.is_empty()))
        }
        _ => {
            let mut buf = bytes::BytesMut::from(bytes);
            match rumqttc::v5::mqttbytes::v5::Packet::read(&mut buf, Some(1 << 20)) {
                Ok(rumqttc::v5::mqttbytes::v5::Packet::Connect(c, _, login)) => (
                    c.client_id,
                    login.as_ref().map(|l| l.username.clone()),
                    login.is_some_and(|l| !l.password.is_empty()),
                ),
                _ => return Some("an MQTT CONNECT without TLS (cut off, or malformed)".into()),
            }
        }
    };
    let user = match username.as_deref().map(|u| u.split_once('?').map_or((u, ""), |(a, b)| (a, b))) {
        Some((name, "")) => format!("username {}", crate::secret::escape(name)),
        Some((name, query)) => {
            let (redacted, notes) = redact_query(query);
            format!("username {}?{}{notes}", crate::secret::escape(name), crate::secret::escape(&redacted))
        }
        None => "no username".into(),
    };
    let password = if password { ", a password (redacted)" } else { "" };
    Some(format!(
        "an MQTT CONNECT without TLS: client ID {}, {user}{password}; IoT Core takes MQTT only over TLS",
        crate::secret::escape(&client_id)
    ))
}

/// The token and signature a device sent without TLS, as IoT Core would read them: from an HTTP
/// request's query or headers, or from an MQTT CONNECT's username query (percent-decoded). Secrets:
/// for checking with keys, never shown.
pub(crate) struct SentCredentials {
    pub token: Option<String>,
    pub signature: String,
    pub username: Option<String>,
}

pub(crate) fn sent_credentials(bytes: &[u8], token_key_name: &str) -> Option<SentCredentials> {
    use crate::auth::credentials::{SIGNATURE, parse_query};
    let from_query = |query: &str, username: Option<String>| {
        let params = parse_query(query, false);
        let find = |n: &str| params.iter().find(|p| p.name.eq_ignore_ascii_case(n)).map(|p| p.value.clone());
        find(SIGNATURE).map(|signature| SentCredentials { token: find(token_key_name), signature, username })
    };
    if bytes.first() == Some(&0x16) {
        return None;
    }
    if bytes.first().map(|b| b >> 4) == Some(1) {
        let mut buf = bytes::BytesMut::from(bytes);
        let username = match rumqttc::mqttbytes::v4::Packet::read(&mut buf, 1 << 20) {
            Ok(rumqttc::mqttbytes::v4::Packet::Connect(c)) => c.login.map(|l| l.username),
            _ => {
                let mut buf = bytes::BytesMut::from(bytes);
                match rumqttc::v5::mqttbytes::v5::Packet::read(&mut buf, Some(1 << 20)) {
                    Ok(rumqttc::v5::mqttbytes::v5::Packet::Connect(_, _, login)) => login.map(|l| l.username),
                    _ => None,
                }
            }
        }?;
        let query = username.split_once('?').map(|(_, q)| q.to_owned())?;
        return from_query(&query, Some(username));
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(bytes).ok()?;
    let query = req.path.and_then(|p| p.split_once('?')).map_or("", |(_, q)| q);
    if let Some(found) = from_query(query, None) {
        return Some(found);
    }
    let header = |n: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(n))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    header(SIGNATURE).map(|signature| SentCredentials { token: header(token_key_name), signature, username: None })
}

/// Reads the client's first flight.
pub(crate) fn client(bytes: &[u8]) -> First {
    if bytes.is_empty() {
        return First::Nothing;
    }
    if bytes[0] != 0x16 {
        let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        let text = String::from_utf8_lossy(line).trim().to_owned();
        let is_http = ["GET ", "POST ", "PUT ", "HEAD ", "CONNECT ", "OPTIONS "].iter().any(|m| text.starts_with(m));
        if is_http {
            // The query may carry the token and signature: values redacted, their form said.
            let (target, notes) = redact_target(&text);
            return First::Http(format!("{}{notes}", target.chars().take(300).collect::<String>()));
        }
        if let Some(connect) = plaintext_connect(bytes) {
            return First::Other(connect);
        }
        return First::Other(printable(bytes));
    }
    let Ok((_, record)) = parse_tls_plaintext(bytes) else {
        return First::Other(format!("a TLS record that does not parse (cut off?): {}", printable(bytes)));
    };
    for m in &record.msg {
        if let TlsMessage::Handshake(TlsMessageHandshake::ClientHello(ch)) = m {
            let mut hello = ClientHello {
                versions: vec![version_name(ch.version.0)],
                cipher_suites: ch.ciphers.iter().filter(|c| !is_grease(c.0)).map(|c| cipher_name(c.0)).collect(),
                ..ClientHello::default()
            };
            let exts = ch.ext.and_then(|e| parse_tls_extensions(e).ok()).map(|(_, v)| v).unwrap_or_default();
            for e in exts {
                match e {
                    TlsExtension::SNI(names) => {
                        hello.sni = names.first().map(|(_, n)| String::from_utf8_lossy(n).into_owned());
                    }
                    TlsExtension::ALPN(list) => {
                        hello.alpn = list.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
                    }
                    TlsExtension::SupportedVersions(v) => {
                        hello.versions = v.iter().filter(|v| !is_grease(v.0)).map(|v| version_name(v.0)).collect();
                    }
                    _ => {}
                }
            }
            return First::Hello(hello);
        }
    }
    First::Other(format!("a TLS record that is not a ClientHello: {}", printable(bytes)))
}

/// Reads the server's answer: every plaintext record up to the first encrypted one.
pub(crate) fn server(bytes: &[u8]) -> (ServerAnswer, Option<String>) {
    let mut answer = ServerAnswer::default();
    if bytes.first().is_some_and(|b| *b != 0x16 && *b != 0x15) {
        let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
        return (answer, Some(String::from_utf8_lossy(line).trim().chars().take(200).collect()));
    }
    let mut rest = bytes;
    for _ in 0..16 {
        let Ok((next, record)) = parse_tls_plaintext(rest) else { break };
        for m in &record.msg {
            match m {
                TlsMessage::Handshake(TlsMessageHandshake::ServerHello(sh)) => {
                    answer.version = Some(version_name(sh.version.0));
                    answer.cipher_suite = Some(cipher_name(sh.cipher.0));
                    let exts = sh.ext.and_then(|e| parse_tls_extensions(e).ok()).map(|(_, v)| v).unwrap_or_default();
                    for e in exts {
                        match e {
                            TlsExtension::ALPN(list) => {
                                answer.alpn = list.first().map(|p| String::from_utf8_lossy(p).into_owned());
                            }
                            TlsExtension::SupportedVersions(v) => answer.version = v.first().map(|v| version_name(v.0)),
                            _ => {}
                        }
                    }
                }
                TlsMessage::Handshake(TlsMessageHandshake::Certificate(c)) => {
                    for cert in &c.cert_chain {
                        if let Ok((_, x)) = x509_parser::parse_x509_certificate(cert.data) {
                            answer.certificate_issuers.push(x.issuer().to_string());
                        }
                    }
                }
                TlsMessage::Alert(a) => {
                    let code = a.code.0;
                    let name = crate::wire::alert::Alert(code).name();
                    answer.alert.get_or_insert(name);
                }
                _ => {}
            }
        }
        rest = next;
    }
    (answer, None)
}
