//! Stage `authorize` (post-connect checks, `--subscribe` and `--publish`): after CONNACK 0, subscribe,
//! publish at QoS 1 and wait for the message to come back, classifying each answer — SUBACK/PUBACK
//! codes, a close after the request (MQTT 3.1.1 policy denial), or a missing message.

use super::classify::connack_reason_v4;
use super::classify::reason_v5;
use super::mqtt::MAX_REPLY;
use super::outcome::{Detail, Kind, Outcome};
use super::plan::{Checks, MqttVersion};
use crate::wire::mqtt::{Channel, encode, idle};
use bytes::BytesMut;
use std::time::{Duration, Instant};

/// Runs the checks on an accepted connection; returns every check's outcome, in order. The CLI keeps
/// topics and filters within 256 bytes, so their packets always encode.
pub(crate) async fn run<W: Channel>(
    s: &mut W,
    v: MqttVersion,
    checks: &Checks,
    arns: &crate::auth::policy::Arns,
    timeout: Duration,
) -> Vec<Outcome> {
    let mut out = Vec::new();
    let mut conn = Conn { s, v, buf: BytesMut::new() };
    if let Some(filter) = &checks.subscribe {
        let resource = arns.topic_filter(filter);
        let o = conn.subscribe(filter, &resource, timeout).await;
        let stop = !o.success;
        out.push(o);
        if stop {
            return out;
        }
    }
    if let Some(topic) = &checks.publish {
        let resource = arns.topic(topic);
        let (o, echoed) = conn.publish(topic, &resource, timeout).await;
        let ok = o.success;
        out.push(o);
        let expects_echo = checks.subscribe.as_deref().is_some_and(|f| crate::auth::topic::filter_matches(f, topic));
        if ok && expects_echo {
            out.push(if echoed {
                received(topic, &resource)
            } else {
                conn.await_message(topic, &resource, timeout).await
            });
        }
    }
    out
}

fn received(topic: &str, resource: &str) -> Outcome {
    let _ = topic;
    Outcome::new(
        Kind::MessageReceived,
        Detail::Check { action: "iot:Receive".into(), resource: resource.into(), elapsed_ms: 0 },
    )
}

struct Conn<'a, S> {
    s: &'a mut S,
    v: MqttVersion,
    buf: BytesMut,
}

/// The next whole packet, decoded by rumqttc as far as the checks need, or why none came.
enum Next {
    /// SUBACK with its (first) return or reason code.
    SubAck(u8),
    /// PUBACK with its reason code (0 in MQTT 3.1.1, which has none).
    PubAck(u8),
    Publish,
    Other,
    /// A packet the decoder refuses (a reason code MQTT does not define, a bad length, …).
    Malformed(String),
    Closed,
    Timeout,
}

impl<W: Channel> Conn<'_, W> {
    async fn next(&mut self, deadline: tokio::time::Instant) -> Next {
        loop {
            if let Some(next) = decode(self.v, &mut self.buf) {
                return next;
            }
            if tokio::time::Instant::now() >= deadline {
                return Next::Timeout;
            }
            match tokio::time::timeout_at(deadline, self.s.read_some(&mut self.buf)).await {
                Err(_) => return Next::Timeout,
                Ok(Ok(n)) if n > 0 => {}
                Ok(Err(e)) if idle(&e) => {}
                Ok(_) => return Next::Closed,
            }
        }
    }

    /// Writes a request; a peer that stops reading counts as closed (the channel bounds the write).
    async fn send(&mut self, bytes: &[u8]) -> bool {
        self.s.send(bytes).await.is_ok()
    }

    async fn subscribe(&mut self, filter: &str, resource: &str, timeout: Duration) -> Outcome {
        let mut buf = BytesMut::new();
        match self.v {
            MqttVersion::V311 => {
                let sub = rumqttc::mqttbytes::v4::Subscribe::new(filter, rumqttc::mqttbytes::QoS::AtLeastOnce);
                let _logged = encode(&mut buf, |o| sub.write(o));
            }
            MqttVersion::V5 => {
                let f = rumqttc::v5::mqttbytes::v5::Filter::new(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce);
                let mut sub = rumqttc::v5::mqttbytes::v5::Subscribe::new(f, None);
                sub.pkid = 1;
                let _logged = encode(&mut buf, |o| sub.write(o));
            }
        }
        let started = Instant::now();
        let check = |kind| {
            Outcome::new(
                kind,
                Detail::Check {
                    action: "iot:Subscribe".into(),
                    resource: resource.into(),
                    elapsed_ms: started.elapsed().as_millis() as u64,
                },
            )
        };
        if !self.send(&buf).await {
            return check(Kind::ClosedAfterSubscribe);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.next(deadline).await {
                Next::Closed => return check(Kind::ClosedAfterSubscribe),
                Next::Timeout => return check(Kind::MessageMissing),
                Next::Malformed(e) => {
                    let reason = format!("malformed reply: {e}");
                    return Outcome::new(
                        Kind::SubscribeRefused,
                        Detail::Ack { code: 0x80, reason, action: "iot:Subscribe".into(), resource: resource.into() },
                    );
                }
                Next::SubAck(code) => {
                    let (kind, reason) = match (self.v, code) {
                        (_, 0..=2) => (Kind::SubscribeAccepted, format!("granted_qos_{code}")),
                        (MqttVersion::V311, _) => (Kind::SubscribeRefused, "failure".to_owned()),
                        (MqttVersion::V5, c) => (Kind::SubscribeRefused, reason_v5(c).to_owned()),
                    };
                    return Outcome::new(
                        kind,
                        Detail::Ack { code, reason, action: "iot:Subscribe".into(), resource: resource.into() },
                    );
                }
                _ => {}
            }
        }
    }

    /// Publishes at QoS 1; returns the PUBACK outcome and whether the message already came back.
    async fn publish(&mut self, topic: &str, resource: &str, timeout: Duration) -> (Outcome, bool) {
        let mut buf = BytesMut::new();
        match self.v {
            MqttVersion::V311 => {
                let mut p = rumqttc::mqttbytes::v4::Publish::new(
                    topic,
                    rumqttc::mqttbytes::QoS::AtLeastOnce,
                    b"authprobe".to_vec(),
                );
                p.pkid = 2;
                let _logged = encode(&mut buf, |o| p.write(o));
            }
            MqttVersion::V5 => {
                let mut p = rumqttc::v5::mqttbytes::v5::Publish::new(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    b"authprobe".to_vec(),
                    None,
                );
                p.pkid = 2;
                let _logged = encode(&mut buf, |o| p.write(o));
            }
        }
        let started = Instant::now();
        let check = |kind| {
            Outcome::new(
                kind,
                Detail::Check {
                    action: "iot:Publish".into(),
                    resource: resource.into(),
                    elapsed_ms: started.elapsed().as_millis() as u64,
                },
            )
        };
        if !self.send(&buf).await {
            return (check(Kind::ClosedAfterPublish), false);
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let mut echoed = false;
        loop {
            match self.next(deadline).await {
                Next::Closed => return (check(Kind::ClosedAfterPublish), echoed),
                Next::Timeout => return (check(Kind::MessageMissing), echoed),
                Next::Publish => echoed = true,
                Next::Malformed(e) => {
                    let reason = format!("malformed reply: {e}");
                    let detail =
                        Detail::Ack { code: 0x80, reason, action: "iot:Publish".into(), resource: resource.into() };
                    return (Outcome::new(Kind::PublishRefused, detail), echoed);
                }
                Next::PubAck(code) => {
                    let (kind, reason) = match (self.v, code) {
                        (_, 0 | 0x10) => (Kind::PublishAccepted, "success".to_owned()),
                        (MqttVersion::V311, c) => (Kind::PublishRefused, connack_reason_v4(c).to_owned()),
                        (MqttVersion::V5, c) => (Kind::PublishRefused, reason_v5(c).to_owned()),
                    };
                    return (
                        Outcome::new(
                            kind,
                            Detail::Ack { code, reason, action: "iot:Publish".into(), resource: resource.into() },
                        ),
                        echoed,
                    );
                }
                _ => {}
            }
        }
    }

    async fn await_message(&mut self, topic: &str, resource: &str, timeout: Duration) -> Outcome {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.next(deadline).await {
                Next::Publish => return received(topic, resource),
                Next::Closed | Next::Timeout | Next::Malformed(_) => {
                    return Outcome::new(
                        Kind::MessageMissing,
                        Detail::Check {
                            action: "iot:Receive".into(),
                            resource: resource.into(),
                            elapsed_ms: started.elapsed().as_millis() as u64,
                        },
                    );
                }
                _ => {}
            }
        }
    }
}

/// The packet at the front of `buf`, decoded and taken off, or `None` until it has all arrived.
fn decode(v: MqttVersion, buf: &mut BytesMut) -> Option<Next> {
    if buf.is_empty() {
        return None;
    }
    match v {
        MqttVersion::V311 => {
            use rumqttc::mqttbytes::v4::{Packet, SubscribeReasonCode};
            match Packet::read(buf, MAX_REPLY) {
                Ok(Packet::SubAck(s)) => Some(Next::SubAck(match s.return_codes.first() {
                    Some(SubscribeReasonCode::Success(q)) => *q as u8,
                    _ => 0x80,
                })),
                Ok(Packet::PubAck(_)) => Some(Next::PubAck(0)),
                Ok(Packet::Publish(_)) => Some(Next::Publish),
                Ok(_) => Some(Next::Other),
                Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => None,
                Err(e) => Some(malformed(buf, e)),
            }
        }
        MqttVersion::V5 => {
            use rumqttc::v5::mqttbytes::v5::Packet;
            match Packet::read(buf, Some(MAX_REPLY as u32)) {
                Ok(Packet::SubAck(s)) => {
                    Some(Next::SubAck(s.return_codes.first().map_or(0x80, |c| suback_code_v5(*c))))
                }
                Ok(Packet::PubAck(p)) => Some(Next::PubAck(puback_code_v5(p.reason))),
                Ok(Packet::Publish(_)) => Some(Next::Publish),
                Ok(_) => Some(Next::Other),
                Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => None,
                Err(e) => Some(malformed(buf, e)),
            }
        }
    }
}

/// A packet the decoder refused: its bytes are dropped (the connection is not read further).
fn malformed(buf: &mut BytesMut, e: impl std::fmt::Display) -> Next {
    buf.clear();
    Next::Malformed(e.to_string())
}

/// MQTT 5 SUBACK reason codes (MQTT 5.0 §3.9.3; rumqttc keeps its own table private).
fn suback_code_v5(c: rumqttc::v5::mqttbytes::v5::SubscribeReasonCode) -> u8 {
    use rumqttc::v5::mqttbytes::v5::SubscribeReasonCode as C;
    match c {
        C::Success(q) => q as u8,
        C::Failure | C::Unspecified => 0x80,
        C::ImplementationSpecific => 0x83,
        C::NotAuthorized => 0x87,
        C::TopicFilterInvalid => 0x8f,
        C::PkidInUse => 0x91,
        C::QuotaExceeded => 0x97,
        C::SharedSubscriptionsNotSupported => 0x9e,
        C::SubscriptionIdNotSupported => 0xa1,
        C::WildcardSubscriptionsNotSupported => 0xa2,
    }
}

/// MQTT 5 PUBACK reason codes (MQTT 5.0 §3.4.2.1).
fn puback_code_v5(r: rumqttc::v5::mqttbytes::v5::PubAckReason) -> u8 {
    use rumqttc::v5::mqttbytes::v5::PubAckReason as R;
    match r {
        R::Success => 0,
        R::NoMatchingSubscribers => 0x10,
        R::UnspecifiedError => 0x80,
        R::ImplementationSpecificError => 0x83,
        R::NotAuthorized => 0x87,
        R::TopicNameInvalid => 0x90,
        R::PacketIdentifierInUse => 0x91,
        R::QuotaExceeded => 0x97,
        R::PayloadFormatInvalid => 0x99,
    }
}
