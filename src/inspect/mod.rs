//! `authprobe inspect`: what a device's own capture (`tcpdump -w` on the gateway) shows — for every TCP
//! connection, what the device sent (SNI, ALPN, TLS versions, cipher suites) and how the server
//! answered (ServerHello, alert, FIN or RST, plain HTTP) — the cause where the capture shows it, and
//! the `authprobe probe` command line that sends the same.
//!
//! `capture` reads pcap and pcapng into TCP segments; `flows` puts them back into connections;
//! `tls` reads the hellos, alerts and certificates.

pub(crate) mod capture;
pub(crate) mod flows;
pub(crate) mod tls;

use crate::diagnosis::cause::Cause;
use crate::diagnosis::{Confidence, Evidence, Finding, FindingKind};
use flows::{Flow, Side};
use serde::Serialize;
use std::io::{self, Write};
use tls::First;

/// How a connection ended.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Ended {
    /// Which side ended it.
    pub by: Side,
    /// `fin` or `rst`.
    pub how: &'static str,
    /// Milliseconds after the client's first bytes (or after the SYN, when it sent none).
    pub after_ms: u64,
}

/// One TCP connection of the capture, read.
#[derive(Clone, Debug, Serialize)]
pub struct Connection {
    /// The client's address and port.
    pub client: String,
    /// The server's address and port.
    pub server: String,
    /// `established`, `refused` (RST to the SYN), `no_answer` (SYN without SYN-ACK), or
    /// `mid_stream` (the capture began after the SYN).
    pub tcp: &'static str,
    /// What the ClientHello offered, if one was captured.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_hello: Option<tls::ClientHello>,
    /// A first flight that is not a ClientHello (plain HTTP, other bytes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_sent: Option<String>,
    /// How the server answered it.
    pub server_answer: tls::ServerAnswer,
    /// A plaintext answer (e.g. `HTTP/1.1 400 Bad Request`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_plaintext: Option<String>,
    /// How the connection ended, if the capture shows it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ended: Option<Ended>,
    /// What the connection shows, in the cause catalogue's terms.
    pub findings: Vec<Finding>,
    /// The `authprobe probe` command line that sends what this client sent.
    pub probe_command: String,
}

/// The whole capture, read.
#[derive(Clone, Debug, Serialize)]
pub struct InspectReport {
    /// The capture file read.
    pub capture: String,
    /// What could not be read (truncated blocks, limits).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
    /// Every TCP connection to a TLS or MQTT port, in order.
    pub connections: Vec<Connection>,
    /// 0: nothing wrong seen; 1: a connection shows a cause.
    pub exit_code: u8,
}

/// What `inspect` checks a signature sent without TLS with (`--public-key`, `--authorizer-json`).
#[derive(Clone, Debug)]
pub struct Keys {
    /// The authorizer's token-signing public keys.
    pub public_keys: Vec<crate::auth::signature::PublicKey>,
    /// The authorizer's token key name.
    pub token_key_name: String,
}

impl Default for Keys {
    fn default() -> Self {
        Self { public_keys: Vec::new(), token_key_name: "token".into() }
    }
}

/// Reads a capture's bytes; `name` is how the report names it.
pub fn inspect(name: &str, capture: impl std::io::Read) -> Result<InspectReport, capture::CaptureError> {
    inspect_with(name, capture, &Keys::default())
}

/// [`inspect`], checking signatures sent without TLS with `keys`.
pub fn inspect_with(
    name: &str,
    capture: impl std::io::Read,
    keys: &Keys,
) -> Result<InspectReport, capture::CaptureError> {
    let (segments, mut warnings) = capture::segments(capture)?;
    let flows = flows::flows(&segments);
    for f in &flows {
        for side in &f.conflicting {
            warnings.push(format!(
                "{} → {}: the {} retransmitted bytes with different data; what the other side read is \
                 one of several copies (a middlebox rewriting the stream, or an attempt to evade inspection)",
                f.client,
                f.server,
                if *side == Side::Client { "client" } else { "server" }
            ));
        }
    }
    let connections: Vec<Connection> = flows.iter().map(|f| connection(f, keys)).collect();
    let failed = connections.iter().any(|c| c.findings.iter().any(|f| f.kind == FindingKind::Cause));
    Ok(InspectReport { capture: name.to_owned(), warnings, connections, exit_code: u8::from(failed) })
}

fn connection(f: &Flow, keys: &Keys) -> Connection {
    let tcp = match (f.syn, f.syn_ack, f.ended) {
        (true, false, Some((Side::Server, true, _))) => "refused",
        (true, false, _) => "no_answer",
        (false, _, _) => "mid_stream",
        _ => "established",
    };
    let first = tls::client(&f.client_bytes);
    let (server_answer, server_plaintext) = tls::server(&f.server_bytes);
    let since = f.client_data_at.unwrap_or(f.started);
    let ended = f.ended.map(|(by, rst, at)| Ended {
        by,
        how: if rst { "rst" } else { "fin" },
        after_ms: at.saturating_sub(since).as_millis() as u64,
    });
    let (client_hello, client_sent) = match &first {
        First::Hello(h) => (Some(h.clone()), None),
        First::Http(line) => (None, Some(format!("plain HTTP: {line}"))),
        First::Other(what) => (None, Some(what.clone())),
        First::Nothing => (None, None),
    };
    let mut c = Connection {
        client: f.client.to_string(),
        server: f.server.to_string(),
        tcp,
        client_hello,
        client_sent,
        server_answer,
        server_plaintext,
        ended,
        findings: Vec::new(),
        probe_command: String::new(),
    };
    c.findings = findings(&c, f);
    c.findings.extend(signature_finding(&c, f, keys));
    // Most certain first: what the capture proves before what it suggests.
    c.findings.sort_by_key(|f| f.confidence);
    c.probe_command = command(&c, f);
    c
}

/// The signature a device sent without TLS, checked with the keys given: the forensics `probe` runs
/// on `--signature` (another key, a value other than the token, base64url).
fn signature_finding(c: &Connection, f: &Flow, keys: &Keys) -> Option<Finding> {
    use crate::auth::signature::{Verdict, forensics, verify};
    if keys.public_keys.is_empty() {
        return None;
    }
    let sent = tls::sent_credentials(&f.client_bytes, &keys.token_key_name)?;
    let token = sent.token.as_deref()?;
    if let Verdict::Verified { .. } = verify(&keys.public_keys, token, Some(&sent.signature)) {
        return None;
    }
    let fix = "sign the token itself with the authorizer's private key (RSA PKCS#1 v1.5, SHA-256), send it as standard base64, percent-encoded in a query or username";
    Some(match forensics(&keys.public_keys, token, &sent.signature, sent.username.as_deref()) {
        Some(found) => finding(
            Cause::SignatureWrongValue,
            Confidence::Confirmed,
            format!(
                "the signature this device sent does not verify over its token; it is an {} signature over {} (key `{}`)",
                found.scheme, found.signed, found.key
            ),
            fix,
            c,
        ),
        None => finding(
            Cause::SignatureInvalid,
            Confidence::Confirmed,
            format!(
                "the signature this device sent does not verify with any of the {} key(s) given",
                keys.public_keys.len()
            ),
            fix,
            c,
        ),
    })
}

fn finding(cause: Cause, confidence: Confidence, summary: String, fix: &str, c: &Connection) -> Finding {
    let hedge = match confidence {
        Confidence::Confirmed => "",
        Confidence::Likely => "Likely: ",
        Confidence::Possible => "Possibly: ",
    };
    let evidence = vec![Evidence::Attempt { attempt: format!("{} → {}", c.client, c.server), outcome: outcome(c) }];
    Finding::new(cause, FindingKind::Cause, confidence, format!("{hedge}{summary}."), fix.to_owned())
        .with_evidence(evidence)
}

/// The connection's end, in the outcome vocabulary's words.
fn outcome(c: &Connection) -> String {
    if let Some(a) = &c.server_answer.alert {
        return format!("tls/tls_alert {a}");
    }
    match (&c.ended, c.tcp) {
        (_, "refused") => "tcp/tcp_refused".into(),
        (_, "no_answer") => "tcp/tcp_timeout".into(),
        (Some(e), _) => format!("{:?} {} after {} ms", e.by, e.how, e.after_ms).to_lowercase(),
        (None, _) => "open at the end of the capture".into(),
    }
}

/// The causes this connection shows by itself.
fn findings(c: &Connection, f: &Flow) -> Vec<Finding> {
    let port = f.server.port();
    let mut out = Vec::new();
    match c.tcp {
        "refused" | "no_answer" => {
            let how = if c.tcp == "refused" { "refused (RST)" } else { "never answered" };
            out.push(finding(
                Cause::PortBlocked,
                Confidence::Confirmed,
                format!("The connection to {} was {how}", c.server),
                "allow outbound TCP 443 to the IoT endpoint",
                c,
            ));
            return out;
        }
        _ => {}
    }
    let Some(hello) = &c.client_hello else { return out };
    let refused = c.server_answer.alert.is_some()
        || c.ended.as_ref().is_some_and(|e| e.by == Side::Server && c.server_answer.version.is_none());
    if port != 443 {
        out.push(finding(
            Cause::WrongPort,
            Confidence::Likely,
            format!("The device connects to port {port}; IoT Core runs custom authentication on port 443 only"),
            "connect on port 443",
            c,
        ));
    }
    let ip_as_name = hello.sni.as_deref().filter(|n| n.parse::<std::net::IpAddr>().is_ok());
    if hello.sni.is_none() || ip_as_name.is_some() {
        let confidence = if refused { Confidence::Confirmed } else { Confidence::Likely };
        let what = match ip_as_name {
            // Some clients (mosquitto given `-h <IP>`) put the address in SNI, which names no endpoint.
            Some(ip) => format!("The device sends the IP address {ip} as SNI, not the endpoint's name"),
            None => "The device sends no SNI".to_owned(),
        };
        out.push(finding(
            Cause::SniMissing,
            confidence,
            format!("{what}; IoT Core needs the endpoint name to pick the account's endpoint"),
            "connect by the endpoint's name so that TLS sends it as SNI",
            c,
        ));
    } else if c.server_answer.alert.as_deref() == Some("unrecognized_name") {
        out.push(finding(
            Cause::SniNotEndpoint,
            Confidence::Likely,
            format!("The server refuses the name {} (unrecognized_name)", hello.sni.as_deref().unwrap_or_default()),
            "use the endpoint `aws iot describe-endpoint --endpoint-type iot:Data-ATS` prints",
            c,
        ));
    }
    let issuers = &c.server_answer.certificate_issuers;
    if !issuers.is_empty() && !issuers.iter().any(|i| i.contains("Amazon") || i.contains("Starfield")) {
        out.push(finding(
            Cause::TlsIntercepted,
            Confidence::Confirmed,
            format!(
                "The certificate presented to the device is issued by {}, not Amazon",
                issuers.last().cloned().unwrap_or_default()
            ),
            "exempt the IoT endpoint from TLS inspection",
            c,
        ));
    }
    out.extend(alpn(hello, port, c));
    out
}

/// The ALPN a device offers: the X.509 path's id, or nothing MQTT over TLS on 443 can use.
fn alpn(hello: &tls::ClientHello, port: u16, c: &Connection) -> Option<Finding> {
    let x509 = hello.alpn.iter().find(|a| a.starts_with("x-amzn-") && a.ends_with("-ca"));
    if let Some(x509) = x509.filter(|_| !hello.alpn.iter().any(|a| a == "mqtt")) {
        // AWS's ALPN ids for X.509 client certificates on 443 (x-amzn-mqtt-ca, x-amzn-http-ca).
        Some(finding(
            Cause::AlpnMissing,
            Confidence::Likely,
            format!(
                "The device offers ALPN {x509}, which selects X.509 client-certificate authentication; custom authentication over MQTT needs ALPN `mqtt`"
            ),
            "offer ALPN `mqtt` (not x-amzn-mqtt-ca) for MQTT over TLS with a custom authorizer",
            c,
        ))
    } else if port == 443 && !hello.alpn.iter().any(|a| a == "mqtt" || a == "http/1.1") {
        let offered =
            if hello.alpn.is_empty() { "no ALPN".to_owned() } else { format!("ALPN {}", hello.alpn.join(",")) };
        Some(finding(
            Cause::AlpnMissing,
            Confidence::Possible,
            format!(
                "The device offers {offered} on port 443: MQTT over TLS there needs ALPN `mqtt` (WebSocket and HTTPS need none)"
            ),
            "offer ALPN `mqtt` for MQTT over TLS on port 443",
            c,
        ))
    } else {
        None
    }
}

/// The probe command line that sends what this client sent.
fn command(c: &Connection, f: &Flow) -> String {
    let server_ip = f.server.ip();
    let dial = if server_ip.is_ipv6() { format!("[{server_ip}]:{}", f.server.port()) } else { f.server.to_string() };
    let mut cmd = vec!["authprobe probe".to_owned()];
    let hello = c.client_hello.clone().unwrap_or_default();
    match &hello.sni {
        // A captured SNI or ALPN is the peer's text: quoted, so that pasting the line runs nothing else.
        Some(name) => cmd.push(format!("--endpoint {} --connect-to {dial}", crate::secret::shell_quote(name))),
        None => cmd.push(format!("--endpoint {server_ip} --port {}", f.server.port())),
    }
    if f.server.port() != 443 && hello.sni.is_some() {
        cmd.push(format!("--port {}", f.server.port()));
    }
    if hello.alpn.iter().any(|a| a == "mqtt") {
        cmd.push("--transport mqtt".into());
    }
    if hello.alpn.is_empty() {
        cmd.push("--no-alpn".into());
    } else {
        cmd.extend(hello.alpn.iter().map(|a| format!("--alpn {}", crate::secret::shell_quote(a))));
    }
    cmd.push("--authorizer <NAME> --token-file <TOKEN_FILE>".into());
    cmd.join(" ")
}

/// The text report.
pub fn write_text(r: &InspectReport, out: &mut dyn Write) -> io::Result<()> {
    let capture = crate::secret::escape(&r.capture);
    writeln!(out, "authprobe inspect {capture}: {} TCP connection(s)", r.connections.len())?;
    for w in &r.warnings {
        writeln!(out, "warning: {}", crate::secret::escape(w))?;
    }
    for (i, c) in r.connections.iter().enumerate() {
        writeln!(out)?;
        writeln!(out, "── {}. {} → {} ({})", i + 1, c.client, c.server, c.tcp.replace('_', " "))?;
        if let Some(h) = &c.client_hello {
            let sni = h.sni.as_deref().map_or("(none)".into(), |s| s.to_owned());
            let alpn = if h.alpn.is_empty() { "(none)".into() } else { h.alpn.join(",") };
            field(
                out,
                "sent",
                &format!(
                    "ClientHello · SNI {sni} · ALPN {alpn} · {} · {} cipher suites",
                    h.versions.join(", "),
                    h.cipher_suites.len()
                ),
            )?;
        }
        if let Some(s) = &c.client_sent {
            field(out, "sent", s)?;
        }
        let a = &c.server_answer;
        let mut answer = Vec::new();
        if let Some(v) = &a.version {
            answer.push(format!(
                "ServerHello {v}{}",
                a.alpn.as_ref().map(|p| format!(" (ALPN {p})")).unwrap_or_default()
            ));
        }
        if let Some(al) = &a.alert {
            answer.push(format!("alert {al}"));
        }
        if !a.certificate_issuers.is_empty() {
            answer.push(format!("certificate issued by {}", a.certificate_issuers.last().cloned().unwrap_or_default()));
        }
        if let Some(p) = &c.server_plaintext {
            answer.push(format!("plaintext: {p}"));
        }
        if !answer.is_empty() {
            field(out, "answer", &answer.join(" · "))?;
        }
        if let Some(e) = &c.ended {
            field(
                out,
                "ended",
                &format!("{:?} {} {} ms after the client's first bytes", e.by, e.how.to_uppercase(), e.after_ms)
                    .to_lowercase(),
            )?;
        }
        for f in &c.findings {
            // A summary that is not confirmed opens with its hedge ("Likely: "), as in the probe's
            // findings: the label is then left out rather than said twice.
            match f.confidence {
                Confidence::Confirmed => field(out, "finding", &format!("{} (confirmed): {}", f.id, f.summary))?,
                _ => field(out, "finding", &format!("{}: {}", f.id, f.summary))?,
            }
        }
        field(out, "replay", &c.probe_command)?;
    }
    Ok(())
}

/// One `name value` line; the value (a captured SNI, a server's bytes) is escaped.
fn field(out: &mut dyn Write, name: &str, value: &str) -> io::Result<()> {
    writeln!(out, "   {name:<8} {}", crate::secret::escape(value))
}
