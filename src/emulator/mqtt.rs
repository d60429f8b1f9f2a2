//! MQTT on the emulator: read the CONNECT (3.1.1 or 5), authenticate it and answer as IoT Core does;
//! an accepted connection continues in the session (`session.rs`).

use super::channel::Channel;
use super::config::EmulatorConfig;
use super::ctx::Ctx;
use super::gate::{self, Granted};
use super::record::{Answered, ConnectionRecord, Reason};
use super::settings::{Mqtt3Reject, Mqtt5Reject};
use crate::auth::credentials::{Sources, parse_query, split_username};
use crate::auth::event::{ConnectInfo, Observed, Transport};
use crate::wire::mqtt::{Code5, Code311, Connack, Connect, ConnectError, connack_assigning, parse_connect};
use bytes::BytesMut;
use tokio::time::{Instant, timeout_at};

/// Why no CONNECT could be read.
#[derive(Debug)]
pub(crate) struct ReadFailure {
    pub(crate) reason: Reason,
    pub(crate) detail: String,
}

fn fail(reason: Reason, detail: impl Into<String>) -> ReadFailure {
    ReadFailure { reason, detail: detail.into() }
}

impl From<ConnectError> for ReadFailure {
    fn from(e: ConnectError) -> Self {
        let reason = match e {
            ConnectError::Malformed(_) => Reason::MalformedRequest,
            ConnectError::TooLarge { .. } => Reason::PacketTooLarge,
        };
        fail(reason, e.to_string())
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
            // Nothing at all after the handshake (or upgrade) is a client that never built its
            // CONNECT: a page's MQTT library that rejected its options (a binary password) says so
            // only to its own console.
            Err(_) if buf.is_empty() => {
                return Err(fail(
                    Reason::RequestTimeout,
                    format!("no CONNECT (no byte at all) within {:?}", limits.request_timeout),
                ));
            }
            Err(_) => {
                return Err(fail(
                    Reason::RequestTimeout,
                    format!("no complete CONNECT within {:?}", limits.request_timeout),
                ));
            }
            Ok(Ok(0)) if buf.is_empty() => {
                return Err(fail(Reason::ClosedByClient, "closed without sending a CONNECT (no byte at all)"));
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
    // session carries neither its state nor its size. The record's event and response are JSON
    // text already.
    let Some(session) = Box::pin(admit(ch, ctx, seen, sources, granted, rec)).await else { return };
    Box::pin(session.run()).await;
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
        answer(&mut ch, early.connack, rec).await;
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
        None => gate::authorize(ctx, transport, &seen, &sources, &scrub, rec).await,
    };
    match authorized.and_then(|granted| may_connect(cfg, granted, &connect.client_id)) {
        Ok(granted) => {
            rec.set(Reason::Accepted, format!("principal {}", granted.principal_id.clone().unwrap_or_default()));
            let ack = match &assigned {
                Some(id) => connack_assigning(id),
                None => Connack::accepted(connect.version).packet(),
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
fn observe(connect: &Connect, cfg: &EmulatorConfig, seen: &mut Observed, sources: &mut Sources) {
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

/// A CONNECT refused before any authorizer runs: why, and the CONNACK sent (`None`: closed).
struct Early {
    reason: Reason,
    detail: String,
    connack: Option<Connack>,
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
        let code = if v5 { Connack::V5(Code5::ClientIdentifierNotValid) } else { Connack::V311(Code311::BadClientId) };
        return Some(Early { reason: Reason::ClientIdRejected, detail, connack: Some(code) });
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
            connack: Some(Connack::V5(Code5::BadAuthenticationMethod)),
        });
    }
    // The account's connect rate, before the client ID's: IoT Core throttles the account's CONNECTs
    // before any authorizer runs (MQTT 5: "connection rate exceeded"; MQTT 3.1.1: closed).
    if let Some(rate) = ctx.config.limits.connect_rate {
        if !ctx.connect_bucket.take(rate) {
            return Some(Early {
                reason: Reason::AccountRateExceeded,
                detail: format!("over the account's {rate} CONNECTs per second (connect_rate)"),
                connack: v5.then_some(Connack::V5(Code5::ConnectionRateExceeded)),
            });
        }
    }
    let every = ctx.config.limits.connect_interval?;
    // MQTT 5 has a reason code for it; MQTT 3.1.1 gets the connection closed.
    too_soon(ctx, &connect.client_id, every).then(|| Early {
        reason: Reason::ConnectRateExceeded,
        detail: format!("another CONNECT for this client ID within {} ms", every.as_millis()),
        connack: v5.then_some(Connack::V5(Code5::ConnectionRateExceeded)),
    })
}

/// The grant, if its policies allow `iot:Connect` for `client_id`.
fn may_connect(cfg: &EmulatorConfig, granted: Granted, client_id: &str) -> Result<Granted, gate::Refusal> {
    granted.permit("iot:Connect", &cfg.arns.client(client_id), client_id, Reason::ConnectNotAllowed).map(|()| granted)
}

async fn refuse(mut ch: Channel, version: u8, cfg: &EmulatorConfig, rec: &mut ConnectionRecord) {
    let connack = match (version, cfg.reject.mqtt3, cfg.reject.mqtt5) {
        (5, _, Mqtt5Reject::Connack(c)) | (4, Mqtt3Reject::Connack(c), _) => Some(c),
        _ => None,
    };
    answer(&mut ch, connack, rec).await;
    ch.close().await;
}

/// Sends `connack` (none: the connection is only closed) and records it.
async fn answer(ch: &mut Channel, connack: Option<Connack>, rec: &mut ConnectionRecord) {
    match connack {
        Some(c) => {
            rec.answer = Some(Answered::Connack(c));
            let _ = ch.send(&c.packet()).await;
        }
        None => rec.answer = Some(Answered::Close),
    }
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
pub(crate) const MAX_CLIENT_ID: usize = 128;
