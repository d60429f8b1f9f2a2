//! MQTT on the emulator: read the CONNECT (3.1.1 or 5), authenticate it and answer as IoT Core does;
//! an accepted connection continues in the session (`session.rs`).

use super::Ctx;
use super::channel::Channel;
use super::gate::{self, Granted};
use super::record::{ConnectionRecord, Reason};
use super::settings::{Mqtt3Reject, Mqtt5Reject};
use crate::auth::credentials::{Sources, parse_query, split_username};
use crate::auth::event::{ConnectInfo, Observed, Transport};
use crate::wire::mqtt::encode;
use bytes::BytesMut;
use rumqttc::mqttbytes::Error as V4Error;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;
use tokio::time::{Instant, timeout_at};

/// A CONNECT, whichever version.
#[derive(Clone, Debug)]
pub struct Connect {
    pub version: u8,
    pub client_id: String,
    pub keep_alive: u16,
    /// MQTT 3.1.1 clean session / MQTT 5 clean start.
    pub clean: bool,
    pub username: Option<String>,
    pub password: Option<Vec<u8>>,
    /// MQTT 5's Authentication Method property (enhanced authentication), if sent.
    pub auth_method: Option<String>,
}

/// Why no CONNECT could be read.
#[derive(Debug)]
pub struct ReadFailure {
    pub reason: Reason,
    pub detail: String,
}

fn fail(reason: Reason, detail: impl Into<String>) -> ReadFailure {
    ReadFailure { reason, detail: detail.into() }
}

/// Parses a CONNECT from the front of `buf`; `Ok(None)` when more bytes are needed.
///
/// The fixed header is read first, in one pass over at most 5 bytes: a malformed remaining length or
/// one over `max` is refused at once, and the packet is only decoded once it has fully arrived, so
/// a peer streaming bytes costs neither copies nor unbounded memory.
pub fn parse_connect(buf: &mut BytesMut, max: usize) -> Result<Option<Connect>, ReadFailure> {
    if buf.first().is_some_and(|b| b >> 4 != 1) {
        return Err(fail(
            Reason::MalformedRequest,
            format!("first packet is not CONNECT (first bytes {})", super::tls::hex_prefix(buf)),
        ));
    }
    let Some((header, remaining)) = fixed_header(buf)? else { return Ok(None) };
    if remaining > max {
        return Err(too_large(remaining, max));
    }
    if buf.len() < header + remaining {
        return Ok(None);
    }
    let Some(level) = protocol_level(buf) else {
        return Err(fail(Reason::MalformedRequest, "CONNECT too short for a protocol name and level"));
    };
    if level == 5 {
        return parse_connect_v5(buf, max);
    }
    match v4::Packet::read(buf, max) {
        Ok(v4::Packet::Connect(c)) => {
            let login = c.login;
            Ok(Some(Connect {
                version: 4,
                client_id: c.client_id,
                keep_alive: c.keep_alive,
                clean: c.clean_session,
                username: login.as_ref().map(|l| l.username.clone()).filter(|u| !u.is_empty()),
                password: login.map(|l| l.password.into_bytes()).filter(|p| !p.is_empty()),
                auth_method: None,
            }))
        }
        Ok(_) => Err(fail(Reason::MalformedRequest, "first packet is not CONNECT")),
        // The whole packet is here: "insufficient bytes" means its own fields overrun it.
        Err(V4Error::InsufficientBytes(_)) => {
            Err(fail(Reason::MalformedRequest, "malformed CONNECT: a field overruns the packet"))
        }
        Err(V4Error::PayloadSizeLimitExceeded(n)) => Err(too_large(n, max)),
        Err(e) => Err(fail(Reason::MalformedRequest, format!("malformed CONNECT: {e}"))),
    }
}

/// The fixed header's length and the remaining length it announces; `None` until it has arrived.
/// A remaining length longer than 4 bytes is malformed (MQTT allows at most 268,435,455).
pub fn fixed_header(buf: &[u8]) -> Result<Option<(usize, usize)>, ReadFailure> {
    let mut remaining = 0usize;
    for i in 0..4 {
        let Some(&b) = buf.get(1 + i) else { return Ok(None) };
        remaining |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(Some((2 + i, remaining)));
        }
    }
    Err(fail(
        Reason::MalformedRequest,
        format!("malformed remaining length (more than 4 bytes): {}", super::tls::hex_prefix(buf)),
    ))
}

fn too_large(n: usize, max: usize) -> ReadFailure {
    fail(Reason::PacketTooLarge, format!("CONNECT announces {n} bytes; the limit is {max}"))
}

/// The protocol level byte of a CONNECT (4 = 3.1.1, 5 = 5), once enough bytes have arrived.
fn protocol_level(buf: &[u8]) -> Option<u8> {
    // Fixed header: type byte, then a remaining length of 1-4 bytes (high bit = more follow).
    let len_bytes = buf.iter().skip(1).take(4).position(|b| b & 0x80 == 0)? + 1;
    let at = 1 + len_bytes;
    let name_len = usize::from(u16::from_be_bytes([*buf.get(at)?, *buf.get(at + 1)?]));
    buf.get(at + 2 + name_len).copied()
}

fn parse_connect_v5(buf: &mut BytesMut, max: usize) -> Result<Option<Connect>, ReadFailure> {
    match v5::Packet::read(buf, Some(max as u32)) {
        Ok(v5::Packet::Connect(c, _will, login)) => Ok(Some(Connect {
            version: 5,
            client_id: c.client_id,
            keep_alive: c.keep_alive,
            clean: c.clean_start,
            username: login.as_ref().map(|l| l.username.clone()).filter(|u| !u.is_empty()),
            password: login.map(|l| l.password.into_bytes()).filter(|p| !p.is_empty()),
            auth_method: c.properties.and_then(|p| p.authentication_method),
        })),
        Ok(_) => Err(fail(Reason::MalformedRequest, "first packet is not CONNECT")),
        Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => {
            Err(fail(Reason::MalformedRequest, "malformed MQTT 5 CONNECT: a field overruns the packet"))
        }
        Err(rumqttc::v5::mqttbytes::Error::PayloadSizeLimitExceeded { pkt_size, .. }) => Err(too_large(pkt_size, max)),
        Err(e) => Err(fail(Reason::MalformedRequest, format!("malformed MQTT 5 CONNECT: {e}"))),
    }
}

/// Reads the CONNECT within the request timeout.
pub(crate) async fn read_connect(ch: &mut Channel, buf: &mut BytesMut, ctx: &Ctx) -> Result<Connect, ReadFailure> {
    let limits = ctx.config.limits;
    let deadline = Instant::now() + limits.request_timeout;
    loop {
        if !buf.is_empty() {
            if let Some(c) = parse_connect(buf, limits.max_packet)? {
                return Ok(c);
            }
        }
        match timeout_at(deadline, ch.read_more(buf)).await {
            Err(_) => {
                return Err(fail(
                    Reason::RequestTimeout,
                    format!("no complete CONNECT within {:?}", limits.request_timeout),
                ));
            }
            Ok(Ok(0)) => return Err(fail(Reason::ClosedByClient, "closed before a complete CONNECT")),
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::FileTooLarge => {
                return Err(fail(Reason::PacketTooLarge, format!("WebSocket message refused: {e}")));
            }
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::InvalidData || crate::wire::mqtt::idle(&e) => {
                return Err(fail(Reason::MalformedRequest, format!("WebSocket: {e}")));
            }
            Ok(Err(e)) => return Err(fail(Reason::ClosedByClient, format!("read failed: {e}"))),
        }
    }
}

/// Serves MQTT on `ch` (direct TLS, or WebSocket after its upgrade). `granted` is a grant already
/// made for this connection (at a WebSocket upgrade); the CONNECT then needs only `iot:Connect`.
pub(crate) async fn serve(
    ch: Channel,
    ctx: &Ctx,
    seen: Observed,
    sources: Sources,
    granted: Option<Granted>,
    rec: &mut ConnectionRecord,
) {
    // Admission (CONNECT, authorizer, CONNACK) is boxed and over before the session runs: a held
    // session carries neither its state nor its size. The record's event and response wait as JSON
    // text meanwhile.
    let Some(session) = Box::pin(admit(ch, ctx, seen, sources, granted, rec)).await else { return };
    let run = Box::pin(session.run());
    rec.compact();
    run.await;
    rec.expand();
}

/// Reads the CONNECT and answers it: refused (closed here) or accepted, then the session to run.
async fn admit<'a>(
    mut ch: Channel,
    ctx: &'a Ctx,
    mut seen: Observed,
    mut sources: Sources,
    granted: Option<Granted>,
    rec: &mut ConnectionRecord,
) -> Option<super::session::Session<'a>> {
    let mut buf = BytesMut::new();
    let mut connect = match read_connect(&mut ch, &mut buf, ctx).await {
        Ok(c) => c,
        Err(f) => {
            rec.set(f.reason, f.detail);
            ch.close().await;
            return None;
        }
    };
    if let Some(early) = early_refusal(ctx, &connect) {
        rec.client_id = Some(connect.client_id.chars().take(MAX_CLIENT_ID).collect());
        rec.set(early.reason, early.detail);
        match early.code {
            Some(code) => {
                rec.answer = Some(format!("connack:0x{code:02x}"));
                let _ = ch.send(&connack(connect.version, code)).await;
            }
            None => rec.answer = Some("close".into()),
        }
        ch.close().await;
        return None;
    }
    let cfg = &ctx.config;
    let assigned = (connect.version == 5 && connect.client_id.is_empty())
        .then(|| format!("authprobe-{}", crate::auth::event::new_uuid()));
    if let Some(id) = &assigned {
        connect.client_id = id.clone();
    }
    rec.mqtt_version = Some(if connect.version == 5 { 5 } else { 4 });
    rec.client_id = Some(connect.client_id.clone());
    observe(&connect, cfg, &mut seen, &mut sources);
    let transport = rec.transport.unwrap_or(Transport::Mqtt);
    let scrub = gate::scrubber(cfg, &seen, &sources);
    rec.secrets.merge(&scrub);
    rec.username = connect.username.as_deref().map(|u| gate::redact_query(u, &scrub));
    let authorized = match granted {
        Some(g) => Ok(g),
        None => gate::authorize(cfg, transport, &seen, &sources, &scrub, rec).await,
    };
    match authorized.and_then(|granted| may_connect(cfg, granted, &connect.client_id)) {
        Ok(granted) => {
            rec.set(Reason::Accepted, format!("principal {}", granted.principal_id.clone().unwrap_or_default()));
            let ack = match &assigned {
                Some(id) => connack_assigning(id),
                None => connack(connect.version, 0),
            };
            if ch.send(&ack).await.is_err() {
                return None;
            }
            // What a refresh needs (a copy of the record, the credentials' sources) is kept only when
            // the function asked for one; otherwise it is dropped here (the closure takes it either
            // way): a held session carries no more than it uses.
            let record = granted.refresh_after.map(|_| rec.copy_for_refresh());
            let again =
                record.map(move |record| super::session::Reauthorize { transport, seen, sources, scrub, record });
            Some(session(ch, &buf, ctx, connect, granted, again))
        }
        Err(refusal) => {
            rec.set(refusal.reason, refusal.detail);
            refuse(ch, connect.version, cfg, rec).await;
            None
        }
    }
}

/// What the CONNECT adds to what the authorizer sees: the username's parameters and the MQTT fields.
fn observe(connect: &Connect, cfg: &super::EmulatorConfig, seen: &mut Observed, sources: &mut Sources) {
    if let Some(u) = &connect.username {
        if let (_, Some(q)) = split_username(u) {
            sources.username = parse_query(q, cfg.plus_as_space);
        }
    }
    seen.connect = Some(ConnectInfo {
        username: connect.username.clone(),
        password: connect.password.clone(),
        client_id: connect.client_id.clone(),
    });
}

/// The session of an accepted CONNECT, holding no more than it uses.
fn session<'a>(
    ch: Channel,
    buf: &BytesMut,
    ctx: &'a Ctx,
    mut connect: Connect,
    granted: Granted,
    again: Option<super::session::Reauthorize>,
) -> super::session::Session<'a> {
    // The session needs neither credential (a refresh asks with its own copy): the secrets are not
    // kept in memory for the connection's life.
    connect.username = None;
    connect.password = None;
    // The read buffer held the whole CONNECT (a token can be kilobytes): the session starts with one
    // the size of what followed it.
    let session = super::session::Session::new(ch, BytesMut::from(&buf[..]), ctx, connect, granted);
    match again {
        Some(again) => session.refreshing(again),
        None => session,
    }
}

/// A CONNECT refused before any authorizer runs: why, and the CONNACK code (`None`: closed).
struct Early {
    reason: Reason,
    detail: String,
    code: Option<u8>,
}

fn early_refusal(ctx: &Ctx, connect: &Connect) -> Option<Early> {
    let v5 = connect.version == 5;
    // Client IDs: at most 128 bytes (IoT Core quotas, "Maximum client ID size"); an empty one with
    // a persistent session has nothing to resume (MQTT 3.1.1 §3.1.3.1: return code 2); MQTT 5 assigns
    // one to an empty client ID (MQTT 5 §3.2.2.3.7, which IoT Core documents supporting).
    let invalid_id = if connect.client_id.len() > MAX_CLIENT_ID {
        Some(format!("client ID of {} bytes; IoT Core allows at most {MAX_CLIENT_ID}", connect.client_id.len()))
    } else if connect.client_id.is_empty() && !v5 && !connect.clean {
        Some("empty client ID with clean session 0".to_owned())
    } else {
        None
    };
    if let Some(detail) = invalid_id {
        return Some(Early { reason: Reason::ClientIdRejected, detail, code: Some(if v5 { 0x85 } else { 2 }) });
    }
    // IoT Core has no AUTH packet: enhanced authentication is refused with "bad authentication
    // method" (what IoT Core answers is not documented; this is the MQTT 5 code that says it).
    if let Some(method) = &connect.auth_method {
        return Some(Early {
            reason: Reason::MalformedRequest,
            detail: format!(
                "MQTT 5 enhanced authentication (Authentication Method {}) is not supported",
                crate::secret::escape(method)
            ),
            code: Some(0x8c),
        });
    }
    let every = ctx.config.limits.connect_interval?;
    // MQTT 5 has a reason code for it; MQTT 3.1.1 gets the connection closed.
    too_soon(ctx, &connect.client_id, every).then(|| Early {
        reason: Reason::ConnectRateExceeded,
        detail: format!("another CONNECT for this client ID within {} ms", every.as_millis()),
        code: v5.then_some(0x9f),
    })
}

/// The grant, if its policies allow `iot:Connect` for `client_id`.
fn may_connect(cfg: &super::EmulatorConfig, granted: Granted, client_id: &str) -> Result<Granted, gate::Refusal> {
    let resource = cfg.arns.client(client_id);
    match granted.allows("iot:Connect", &resource, client_id) {
        d if d.is_allowed() => Ok(granted),
        d => Err(gate::Refusal {
            reason: Reason::ConnectNotAllowed,
            detail: format!("iot:Connect on {resource}: {}", serde_json::to_string(&d).unwrap_or_default()),
        }),
    }
}

async fn refuse(mut ch: Channel, version: u8, cfg: &super::EmulatorConfig, rec: &mut ConnectionRecord) {
    let code = match (version, cfg.reject.mqtt3, cfg.reject.mqtt5) {
        (5, _, Mqtt5Reject::Connack(c)) | (4, Mqtt3Reject::Connack(c), _) => Some(c),
        _ => None,
    };
    match code {
        Some(c) => {
            rec.answer = Some(format!("connack:0x{c:02x}"));
            let _ = ch.send(&connack(version, c)).await;
        }
        None => rec.answer = Some("close".into()),
    }
    ch.close().await;
}

/// Whether `client_id` connected less than `every` ago (and notes this connect). The table is pruned
/// of entries older than `every` when it grows, so it stays bounded by the connect rate.
fn too_soon(ctx: &Ctx, client_id: &str, every: std::time::Duration) -> bool {
    let now = std::time::Instant::now();
    let Ok(mut last) = ctx.last_connect.lock() else { return false };
    if last.len() > 10_000 {
        last.retain(|_, t| now.duration_since(*t) < every);
    }
    // A refused CONNECT does not restart the interval: a device retrying gets in once it has passed.
    if last.get(client_id).is_some_and(|before| now.duration_since(*before) < every) {
        return true;
    }
    last.insert(client_id.to_owned(), now);
    false
}

/// IoT Core's largest client ID, in bytes.
pub const MAX_CLIENT_ID: usize = 128;

/// An MQTT 5 CONNACK 0 carrying the client identifier the server assigned.
fn connack_assigning(id: &str) -> Vec<u8> {
    let mut out = BytesMut::new();
    let properties = v5::ConnAckProperties {
        session_expiry_interval: None,
        receive_max: None,
        max_qos: None,
        retain_available: None,
        max_packet_size: None,
        assigned_client_identifier: Some(id.to_owned()),
        topic_alias_max: None,
        reason_string: None,
        user_properties: Vec::new(),
        wildcard_subscription_available: None,
        subscription_identifiers_available: None,
        shared_subscription_available: None,
        server_keep_alive: None,
        response_information: None,
        server_reference: None,
        authentication_method: None,
        authentication_data: None,
    };
    let ack =
        v5::ConnAck { session_present: false, code: v5::ConnectReturnCode::Success, properties: Some(properties) };
    // A failure (never: the ID is one the emulator made) is logged; the client then gets no CONNACK.
    let _logged = encode(&mut out, |o| ack.write(o));
    out.to_vec()
}

/// Encodes a CONNACK with `code` (0 = accepted). Its fields are fixed sizes: encoding cannot fail
/// (and would be logged by `encode`).
pub fn connack(version: u8, code: u8) -> Vec<u8> {
    let mut out = BytesMut::new();
    if version == 5 {
        let code = v5_connack_code(code);
        let _logged = encode(&mut out, |o| v5::ConnAck { session_present: false, code, properties: None }.write(o));
    } else {
        let code = match code {
            0 => v4::ConnectReturnCode::Success,
            1 => v4::ConnectReturnCode::RefusedProtocolVersion,
            2 => v4::ConnectReturnCode::BadClientId,
            3 => v4::ConnectReturnCode::ServiceUnavailable,
            4 => v4::ConnectReturnCode::BadUserNamePassword,
            _ => v4::ConnectReturnCode::NotAuthorized,
        };
        let _logged = encode(&mut out, |o| v4::ConnAck::new(code, false).write(o));
    }
    out.to_vec()
}

fn v5_connack_code(code: u8) -> v5::ConnectReturnCode {
    use v5::ConnectReturnCode as C;
    match code {
        0 => C::Success,
        0x85 => C::ClientIdentifierNotValid,
        0x86 => C::BadUserNamePassword,
        0x87 => C::NotAuthorized,
        0x88 => C::ServerUnavailable,
        0x89 => C::ServerBusy,
        0x8a => C::Banned,
        0x97 => C::QuotaExceeded,
        0x9f => C::ConnectionRateExceeded,
        _ => C::UnspecifiedError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_parses_across_versions_and_waits_for_bytes() {
        let mut buf = BytesMut::new();
        let mut c = v4::Connect::new("dev1");
        c.login = Some(v4::Login::new("u?token=t", "pw"));
        c.write(&mut buf).unwrap();
        let whole = buf.clone();
        let mut part = BytesMut::from(&whole[..whole.len() - 3]);
        assert!(parse_connect(&mut part, 1024).unwrap().is_none());
        let got = parse_connect(&mut buf, 1024).unwrap().unwrap();
        assert_eq!((got.version, got.client_id.as_str()), (4, "dev1"));
        assert_eq!(got.password.as_deref(), Some(&b"pw"[..]));

        let mut buf5 = BytesMut::new();
        let login = v5::Login { username: "u5".into(), password: "p5".into() };
        v5::Connect { keep_alive: 30, client_id: "dev5".into(), clean_start: true, properties: None }
            .write(&None, &Some(login), &mut buf5)
            .unwrap();
        let got = parse_connect(&mut buf5, 1024).unwrap().unwrap();
        assert_eq!((got.version, got.username.as_deref()), (5, Some("u5")));
    }

    #[test]
    fn huge_remaining_length_is_refused_without_waiting() {
        // CONNECT announcing 100 MB: 0x10 then a 4-byte remaining length.
        let mut buf = BytesMut::from(&[0x10u8, 0x80, 0xc2, 0xd7, 0x2f][..]);
        let err = parse_connect(&mut buf, 128 * 1024).unwrap_err();
        assert_eq!(err.reason, Reason::PacketTooLarge);
    }

    /// Case 1 of the hostile-input issue: `10 80 80 80 80` was taken for "need more bytes".
    #[test]
    fn malformed_remaining_length_is_refused_at_once() {
        let mut buf = BytesMut::from(&[0x10u8, 0x80, 0x80, 0x80, 0x80, 0x00, 0x01][..]);
        let err = parse_connect(&mut buf, 128 * 1024).unwrap_err();
        assert_eq!(err.reason, Reason::MalformedRequest, "{}", err.detail);
        assert!(err.detail.contains("remaining length"), "{}", err.detail);
        // Short of the 5th byte, it is still a valid prefix.
        assert!(parse_connect(&mut BytesMut::from(&[0x10u8, 0x80, 0x80, 0x80][..]), 1024).unwrap().is_none());
    }

    #[test]
    fn a_complete_packet_whose_fields_overrun_it_is_malformed() {
        // Remaining length 4: protocol name length 4 ("MQTT") but nothing after it.
        let mut buf = BytesMut::from(&[0x10u8, 0x06, 0x00, 0x04, b'M', b'Q', b'T', b'T'][..]);
        assert_eq!(parse_connect(&mut buf, 1024).unwrap_err().reason, Reason::MalformedRequest);
    }
}
