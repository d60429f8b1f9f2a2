//! The emulator's MQTT session after CONNACK 0: enough of a broker for publish/subscribe round trips on
//! one connection, enforcing iot:Publish, iot:Subscribe and iot:Receive from the returned policies and
//! answering refusals as IoT Core does (docs/custom-auth.md §7).

use super::channel::Channel;
use super::clock::until;
use super::ctx::Ctx;
use super::gate::Granted;
use super::settings::Subscribe3Deny;
use crate::wire::mqtt::Connect;
use crate::wire::mqtt::encode;
use bytes::BytesMut;
use rumqttc::mqttbytes::v4;
use rumqttc::mqttbytes::{Error as V4Error, QoS};
use rumqttc::v5::mqttbytes::QoS as V5QoS;
use rumqttc::v5::mqttbytes::v5;
use std::time::Duration;

/// The post-CONNACK session: enough of a broker for publish/subscribe round trips on one connection.
pub(crate) struct Session<'a> {
    ch: Channel,
    buf: BytesMut,
    ctx: &'a Ctx,
    connect: Connect,
    granted: Granted,
    filters: Vec<String>,
    /// Boxed: most sessions have none, and a held session's state is counted per connection.
    reauthorize: Option<Box<Reauthorize>>,
}

static NEXT_SESSION: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// Why the server ends a session.
enum End {
    TakenOver,
    KeepAlive,
    MaxConnectTime,
    /// The function, asked again at `refreshAfterInSeconds`, no longer allows the connection.
    RefreshRefused,
}

/// What asking the function again needs: the connection's credentials as first seen.
pub(crate) struct Reauthorize {
    pub(crate) transport: crate::auth::event::Transport,
    pub(crate) seen: crate::auth::event::Observed,
    pub(crate) sources: crate::auth::credentials::Sources,
    pub(crate) scrub: crate::secret::Scrubber,
    /// A copy of the connection's record, written by the refresh (the logged one stays as it was).
    pub(crate) record: super::record::ConnectionRecord,
}

/// What the session does after a packet.
enum Next {
    Continue,
    Close,
}

impl<'a> Session<'a> {
    pub(crate) fn new(ch: Channel, buf: BytesMut, ctx: &'a Ctx, connect: Connect, granted: Granted) -> Self {
        Self { ch, buf, ctx, connect, granted, filters: Vec::new(), reauthorize: None }
    }

    /// Asks the function again every `refreshAfterInSeconds` (docs/custom-auth.md §5).
    pub(crate) fn refreshing(mut self, again: Reauthorize) -> Self {
        self.reauthorize = Some(Box::new(again));
        self
    }

    pub(crate) async fn run(mut self) {
        // IoT raises keep-alives below 30 s to 30 and caps them at 1200 s (docs/custom-auth.md §8); allow 1.5×.
        let limits = &self.ctx.config.limits;
        let ka = match self.connect.keep_alive {
            0 => Duration::from_secs(1200),
            // A configured minimum above the cap must not make clamp panic: the cap wins.
            k => Duration::from_secs(u64::from(k))
                .clamp(limits.min_keep_alive.min(Duration::from_secs(1200)), Duration::from_secs(1200)),
        };
        let idle = ka * 3 / 2;
        let (me, mut taken_over) = self.register();
        // disconnectAfterInSeconds: the connection ends then (docs/custom-auth.md §5).
        let lifetime = match (self.granted.disconnect_after.map(Duration::from_secs), limits.max_connect_time) {
            (Some(a), Some(cap)) => Some(a.min(cap)),
            (a, cap) => a.or(cap),
        };
        let ends_at = lifetime.map(|d| tokio::time::Instant::now() + d);
        let refresh_every = match (self.granted.refresh_after.map(Duration::from_secs), limits.max_refresh) {
            (Some(a), Some(cap)) => Some(a.min(cap)),
            (a, _) => a,
        }
        .filter(|_| self.reauthorize.is_some());
        let mut refresh_at = refresh_every.map(|d| tokio::time::Instant::now() + d);
        let end = loop {
            let step = if self.connect.version == 5 { self.next_v5() } else { self.next_v4() };
            match step {
                Err(()) => break None,
                Ok(Some(out)) => {
                    let (bytes, next) = out;
                    if !bytes.is_empty() && self.ch.send(&bytes).await.is_err() {
                        break None;
                    }
                    if matches!(next, Next::Close) {
                        break None;
                    }
                }
                Ok(None) => {
                    tokio::select! {
                        () = until(refresh_at) => {
                            if !Box::pin(self.refresh()).await {
                                break Some(End::RefreshRefused);
                            }
                            refresh_at = refresh_every.map(|d| tokio::time::Instant::now() + d);
                        }
                        read = tokio::time::timeout(idle, self.ch.read_more(&mut self.buf)) => match read {
                            Ok(Ok(n)) if n > 0 => {}
                            Ok(_) => break None,
                            Err(_) => break Some(End::KeepAlive),
                        },
                        _ = &mut taken_over => break Some(End::TakenOver),
                        () = until(ends_at) => break Some(End::MaxConnectTime),
                    }
                }
            }
        };
        self.unregister(me);
        // Boxed: the closing steps would otherwise add their size to every held session.
        Box::pin(self.end(end)).await
    }

    /// Closes the connection; MQTT 5 says why (DISCONNECT reason codes 0x8E session taken over,
    /// 0x8D keep alive timeout, 0xA0 maximum connect time); MQTT 3.1.1 has no server DISCONNECT.
    async fn end(mut self, end: Option<End>) {
        if let (Some(end), 5) = (end, self.connect.version) {
            let code = match end {
                End::TakenOver => v5::DisconnectReasonCode::SessionTakenOver,
                End::KeepAlive => v5::DisconnectReasonCode::KeepAliveTimeout,
                End::MaxConnectTime => v5::DisconnectReasonCode::MaximumConnectTime,
                End::RefreshRefused => v5::DisconnectReasonCode::NotAuthorized,
            };
            // Written by hand: rumqttc 0.25's encoder writes a property length that its remaining
            // length does not count ([e0 01 rc 00]). Here: remaining length 2, reason code, no properties.
            let _ = self.ch.send(&[0xe0, 0x02, code as u8, 0x00]).await;
        }
        self.ch.close().await
    }

    /// Asks the function again with the connection's credentials; the new answer's policies apply
    /// from now on. False when it now denies, fails or no longer allows `iot:Connect`.
    async fn refresh(&mut self) -> bool {
        let Some(again) = self.reauthorize.as_mut() else { return true };
        let cfg = &self.ctx.config;
        let answer = super::gate::authorize(
            self.ctx,
            again.transport,
            &again.seen,
            &again.sources,
            &again.scrub,
            &mut again.record,
        )
        .await;
        let id = &self.connect.client_id;
        let allowed = answer.and_then(|granted| {
            granted
                .permit("iot:Connect", &cfg.arns.client(id), id, super::record::Reason::ConnectNotAllowed)
                .map(|()| granted)
        });
        match allowed {
            Ok(granted) => {
                tracing::info!(client_id = %again.scrub.scrub(id), "refresh: the function allows the connection again");
                self.granted = granted;
                true
            }
            Err(refusal) => {
                tracing::info!(
                    client_id = %again.scrub.scrub(id),
                    "refresh: {:?}: {}; disconnecting",
                    refusal.reason,
                    again.scrub.scrub(&refusal.detail)
                );
                false
            }
        }
    }

    /// Takes the client ID over: the older session with it (if any) is told to end.
    fn register(&self) -> (u64, tokio::sync::oneshot::Receiver<()>) {
        let me = NEXT_SESSION.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let (tx, rx) = tokio::sync::oneshot::channel();
        if let Ok(mut live) = self.ctx.sessions.lock() {
            if let Some((_, older)) = live.insert(self.connect.client_id.clone(), (me, tx)) {
                let _ = older.send(());
            }
        }
        (me, rx)
    }

    fn unregister(&self, me: u64) {
        if let Ok(mut live) = self.ctx.sessions.lock() {
            if live.get(&self.connect.client_id).is_some_and(|(id, _)| *id == me) {
                live.remove(&self.connect.client_id);
            }
        }
    }

    fn allowed(&self, action: &str, resource: String) -> bool {
        self.granted.allows(action, &resource, &self.connect.client_id).is_allowed()
    }

    fn arns(&self) -> &crate::auth::policy::Arns {
        &self.ctx.config.arns
    }

    /// Handles one buffered MQTT 3.1.1 packet: `Ok(None)` when more bytes are needed.
    fn next_v4(&mut self) -> Result<Option<(Vec<u8>, Next)>, ()> {
        let packet = match v4::Packet::read(&mut self.buf, self.ctx.config.limits.max_packet) {
            Ok(p) => p,
            Err(V4Error::InsufficientBytes(_)) => return Ok(None),
            Err(_) => return Err(()),
        };
        let mut out = BytesMut::new();
        let next = match packet {
            v4::Packet::PingReq => {
                encode(&mut out, |o| v4::PingResp.write(o)).map_err(drop)?;
                Next::Continue
            }
            v4::Packet::Disconnect => Next::Close,
            // MQTT 3.1.1 §3.1.0: a second CONNECT is a protocol violation; the server closes.
            v4::Packet::Connect(..) => Next::Close,
            // IoT Core does not support QoS 2 (docs/custom-auth.md): no PUBACK, the connection closes.
            v4::Packet::Publish(p) if p.qos == QoS::ExactlyOnce => Next::Close,
            v4::Packet::Publish(p) => {
                if !self.allowed("iot:Publish", self.arns().topic(&p.topic)) {
                    // MQTT 3.1.1 has no negative PUBACK: IoT Core closes the connection (docs/custom-auth.md §7).
                    return Ok(Some((Vec::new(), Next::Close)));
                }
                if p.qos != QoS::AtMostOnce {
                    encode(&mut out, |o| v4::PubAck::new(p.pkid).write(o)).map_err(drop)?;
                }
                if self.delivers(&p.topic) {
                    let mut echo = v4::Publish::new(p.topic.clone(), QoS::AtMostOnce, p.payload.to_vec());
                    echo.retain = false;
                    encode(&mut out, |o| echo.write(o)).map_err(drop)?;
                }
                Next::Continue
            }
            v4::Packet::Subscribe(s) => {
                let mut codes = Vec::new();
                for f in &s.filters {
                    if self.filters.len() >= MAX_FILTERS && !self.filters.contains(&f.path) {
                        // IoT Core bounds subscriptions per connection: a session's state stays small.
                        return Ok(Some((Vec::new(), Next::Close)));
                    }
                    if self.allowed("iot:Subscribe", self.arns().topic_filter(&f.path)) {
                        if !self.filters.contains(&f.path) {
                            self.filters.push(f.path.clone());
                        }
                        codes.push(v4::SubscribeReasonCode::Success(min_qos1(f.qos)));
                    } else if self.ctx.config.reject.subscribe3 == Subscribe3Deny::Close {
                        return Ok(Some((Vec::new(), Next::Close)));
                    } else {
                        codes.push(v4::SubscribeReasonCode::Failure);
                    }
                }
                encode(&mut out, |o| v4::SubAck::new(s.pkid, codes).write(o)).map_err(drop)?;
                Next::Continue
            }
            v4::Packet::Unsubscribe(u) => {
                self.filters.retain(|f| !u.topics.contains(f));
                encode(&mut out, |o| v4::UnsubAck::new(u.pkid).write(o)).map_err(drop)?;
                Next::Continue
            }
            _ => Next::Continue,
        };
        Ok(Some((out.to_vec(), next)))
    }

    /// Handles one buffered MQTT 5 packet.
    fn next_v5(&mut self) -> Result<Option<(Vec<u8>, Next)>, ()> {
        let max = self.ctx.config.limits.max_packet as u32;
        let packet = match v5::Packet::read(&mut self.buf, Some(max)) {
            Ok(p) => p,
            Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => return Ok(None),
            Err(_) => return Err(()),
        };
        let mut out = BytesMut::new();
        let next = match packet {
            v5::Packet::PingReq(_) => {
                encode(&mut out, v5::PingResp::write).map_err(drop)?;
                Next::Continue
            }
            v5::Packet::Disconnect(_) => Next::Close,
            v5::Packet::Connect(..) => Next::Close,
            v5::Packet::Publish(p) if p.qos == V5QoS::ExactlyOnce => Next::Close,
            v5::Packet::Publish(p) => {
                let topic = String::from_utf8_lossy(&p.topic).into_owned();
                let ok = self.allowed("iot:Publish", self.arns().topic(&topic));
                if p.qos != V5QoS::AtMostOnce {
                    let reason = if ok { v5::PubAckReason::Success } else { v5::PubAckReason::NotAuthorized };
                    encode(&mut out, |o| v5::PubAck { pkid: p.pkid, reason, properties: None }.write(o))
                        .map_err(drop)?;
                }
                if ok && self.delivers(&topic) {
                    let echo = v5::Publish::new(topic, V5QoS::AtMostOnce, p.payload.clone(), None);
                    encode(&mut out, |o| echo.write(o)).map_err(drop)?;
                }
                Next::Continue
            }
            v5::Packet::Subscribe(s) => {
                let mut codes = Vec::new();
                for f in &s.filters {
                    if self.filters.len() >= MAX_FILTERS && !self.filters.contains(&f.path) {
                        // IoT Core bounds subscriptions per connection: a session's state stays small.
                        return Ok(Some((Vec::new(), Next::Close)));
                    }
                    if self.allowed("iot:Subscribe", self.arns().topic_filter(&f.path)) {
                        if !self.filters.contains(&f.path) {
                            self.filters.push(f.path.clone());
                        }
                        codes.push(v5::SubscribeReasonCode::Success(if f.qos == V5QoS::AtMostOnce {
                            f.qos
                        } else {
                            V5QoS::AtLeastOnce
                        }));
                    } else {
                        codes.push(v5::SubscribeReasonCode::NotAuthorized);
                    }
                }
                encode(&mut out, |o| v5::SubAck { pkid: s.pkid, return_codes: codes, properties: None }.write(o))
                    .map_err(drop)?;
                Next::Continue
            }
            v5::Packet::Unsubscribe(u) => {
                self.filters.retain(|f| !u.filters.contains(f));
                let reasons = vec![v5::UnsubAckReason::Success; u.filters.len()];
                encode(&mut out, |o| v5::UnsubAck { pkid: u.pkid, reasons, properties: None }.write(o))
                    .map_err(drop)?;
                Next::Continue
            }
            _ => Next::Continue,
        };
        Ok(Some((out.to_vec(), next)))
    }

    /// Whether a message on `topic` goes back to this client: a subscription matches and the policies
    /// allow `iot:Receive` on it.
    fn delivers(&self, topic: &str) -> bool {
        self.filters.iter().any(|f| crate::auth::topic::filter_matches(f, topic))
            && self.allowed("iot:Receive", self.arns().topic(topic))
    }
}

/// Most distinct topic filters one session holds (IoT Core's quota of subscriptions per connection
/// is 50); a client asking for more is disconnected, as a client over a quota is.
const MAX_FILTERS: usize = 50;

fn min_qos1(q: QoS) -> QoS {
    if q == QoS::AtMostOnce { q } else { QoS::AtLeastOnce }
}
