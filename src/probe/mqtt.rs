//! Stage `mqtt`: send CONNECT (the custom-auth username of docs/custom-auth.md §2) and read what comes back —
//! a CONNACK, something else, a close (close_notify, FIN or RST, timed from CONNECT) or nothing.

use super::classify::{Observation, TlsError};
use super::outcome::CloseHow;
use super::plan::MqttVersion;
use crate::wire::mqtt::{Channel, encode, idle, packet_len};
use bytes::BytesMut;
use std::io;
use std::time::{Duration, Instant};

/// Largest reply read while waiting for a CONNACK (a CONNACK is a few bytes; anything bigger is wrong).
pub(crate) const MAX_REPLY: usize = 64 * 1024;

/// The CONNECT keep-alive unless the device's is given (`--keep-alive`).
pub(crate) const KEEP_ALIVE: u16 = 60;

/// Encodes CONNECT with rumqttc's codecs. An empty username or password is left out. The CLI keeps
/// every field within MQTT's 65,535 bytes, so encoding does not fail (`encode` logs it if it did).
pub(crate) fn connect_packet(
    version: MqttVersion,
    client_id: &str,
    username: &str,
    password: &str,
    keep_alive: u16,
) -> Vec<u8> {
    let mut buf = BytesMut::new();
    match version {
        MqttVersion::V311 => {
            let mut c = rumqttc::mqttbytes::v4::Connect::new(client_id);
            c.keep_alive = keep_alive;
            if !username.is_empty() || !password.is_empty() {
                c.login = Some(rumqttc::mqttbytes::v4::Login::new(username, password));
            }
            let _logged = encode(&mut buf, |o| c.write(o));
        }
        MqttVersion::V5 => {
            use rumqttc::v5::mqttbytes::v5::{Connect, Login};
            let c = Connect { keep_alive, client_id: client_id.to_owned(), clean_start: true, properties: None };
            let login = (!username.is_empty() || !password.is_empty())
                .then(|| Login { username: username.to_owned(), password: password.to_owned() });
            let _logged = encode(&mut buf, |o| c.write(&None, &login, o));
        }
    }
    buf.to_vec()
}

/// An MQTT 5 CONNECT carrying an Authentication Method property (enhanced authentication) and a
/// first piece of authentication data, as SCRAM clients send it.
pub(crate) fn connect_packet_with_auth_method(
    client_id: &str,
    username: &str,
    password: &str,
    keep_alive: u16,
    method: &str,
) -> Vec<u8> {
    use rumqttc::v5::mqttbytes::v5::{Connect, ConnectProperties, Login};
    let mut properties = ConnectProperties::new();
    properties.authentication_method = Some(method.to_owned());
    properties.authentication_data = Some(bytes::Bytes::from_static(b"n,,n=device,r=authprobe"));
    let c = Connect { keep_alive, client_id: client_id.to_owned(), clean_start: true, properties: Some(properties) };
    let login = (!username.is_empty() || !password.is_empty())
        .then(|| Login { username: username.to_owned(), password: password.to_owned() });
    let mut buf = BytesMut::new();
    let _logged = encode(&mut buf, |o| c.write(&None, &login, o));
    buf.to_vec()
}

/// How a read error or EOF ended the connection.
pub(crate) fn close_how(result: &io::Result<usize>) -> CloseHow {
    match result {
        Ok(_) => CloseHow::CloseNotify,
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted | io::ErrorKind::BrokenPipe
            ) =>
        {
            CloseHow::Reset
        }
        Err(_) => CloseHow::Eof,
    }
}

/// A TLS alert carried by a read error (TLS 1.3 servers refuse a client certificate after the client
/// has finished its handshake, so the refusal arrives on the first read).
pub(crate) fn alert_in(e: &io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()).filter(|r| matches!(r, rustls::Error::AlertReceived(_)))
}

/// The observation of an alert that arrived after the handshake: a TLS-stage failure.
pub(crate) fn late_alert(e: &io::Error) -> Observation {
    let error =
        alert_in(e).cloned().map_or_else(|| TlsError::Io { kind: e.kind(), message: e.to_string() }, TlsError::Rustls);
    Observation::TlsError {
        error,
        bytes_seen: 0,
        first_bytes: Vec::new(),
        chain: Vec::new(),
        name_checked: String::new(),
        amazon_roots: None,
    }
}

#[doc(hidden)]
/// Sends `connect` on `ch` (TLS bytes or WebSocket frames) and waits up to `timeout` for the first
/// packet: a reply (classified by its bytes), a close (how, and when after CONNECT), or nothing.
pub async fn exchange<C: Channel>(ch: &mut C, version: MqttVersion, connect: &[u8], timeout: Duration) -> Observation {
    let sent = Instant::now();
    let after_ms = || sent.elapsed().as_millis() as u64;
    let waited = || Observation::MqttTimeout { waited_ms: timeout.as_millis() as u64 };
    let deadline = tokio::time::Instant::now() + timeout;
    match tokio::time::timeout_at(deadline, ch.send(connect)).await {
        Err(_) => return waited(),
        Ok(Err(e)) => return Observation::MqttClosed { how: close_how(&Err(e)), after_ms: after_ms() },
        Ok(Ok(())) => {}
    }
    let mut buf = BytesMut::new();
    loop {
        let reply = |buf: BytesMut| Observation::MqttReply { version: version.level(), bytes: buf.to_vec() };
        if packet_len(&buf).is_some_and(|n| buf.len() >= n.min(MAX_REPLY)) {
            return reply(buf);
        }
        if tokio::time::Instant::now() >= deadline {
            return if buf.is_empty() { waited() } else { reply(buf) };
        }
        match tokio::time::timeout_at(deadline, ch.read_some(&mut buf)).await {
            Err(_) if buf.is_empty() => return waited(),
            // A reply that stopped arriving: classify what came.
            Err(_) => return reply(buf),
            Ok(Ok(n)) if n > 0 => {}
            // Only control or empty frames so far: read on until the deadline.
            Ok(Err(e)) if idle(&e) => {}
            Ok(Err(e)) if buf.is_empty() && alert_in(&e).is_some() => return late_alert(&e),
            Ok(r) if buf.is_empty() => return Observation::MqttClosed { how: close_how(&r), after_ms: after_ms() },
            Ok(_) => return reply(buf),
        }
    }
}
