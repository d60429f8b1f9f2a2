//! The emulator's MQTT session after CONNACK 0: enough of a broker for publish/subscribe round trips on
//! one connection, enforcing iot:Publish, iot:Subscribe and iot:Receive from the returned policies and
//! answering refusals as IoT Core does (docs/custom-auth.md §7).

use super::Ctx;
use super::channel::Channel;
use super::gate::Granted;
use super::mqtt::Connect;
use super::settings::Subscribe3Deny;
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
}

/// What the session does after a packet.
enum Next {
    Continue,
    Close,
}

impl<'a> Session<'a> {
    pub(crate) fn new(ch: Channel, buf: BytesMut, ctx: &'a Ctx, connect: Connect, granted: Granted) -> Self {
        Self { ch, buf, ctx, connect, granted, filters: Vec::new() }
    }

    pub(crate) async fn run(mut self) {
        // IoT raises keep-alives below 30 s to 30 and caps them at 1200 s (docs/custom-auth.md §8); allow 1.5×.
        let ka = match self.connect.keep_alive {
            0 => 1200,
            k => k.clamp(30, 1200),
        };
        let idle = Duration::from_millis(u64::from(ka) * 1500);
        loop {
            let step = if self.connect.version == 5 { self.next_v5() } else { self.next_v4() };
            match step {
                Err(()) => return self.ch.close().await,
                Ok(Some(out)) => {
                    let (bytes, next) = out;
                    if !bytes.is_empty() && self.ch.send(&bytes).await.is_err() {
                        return;
                    }
                    if matches!(next, Next::Close) {
                        return self.ch.close().await;
                    }
                }
                Ok(None) => match tokio::time::timeout(idle, self.ch.read_more(&mut self.buf)).await {
                    Ok(Ok(n)) if n > 0 => {}
                    _ => return self.ch.close().await,
                },
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
                let _ = v4::PingResp.write(&mut out);
                Next::Continue
            }
            v4::Packet::Disconnect => Next::Close,
            v4::Packet::Publish(p) => {
                if !self.allowed("iot:Publish", self.arns().topic(&p.topic)) {
                    // MQTT 3.1.1 has no negative PUBACK: IoT Core closes the connection (docs/custom-auth.md §7).
                    return Ok(Some((Vec::new(), Next::Close)));
                }
                if p.qos != QoS::AtMostOnce {
                    let _ = v4::PubAck::new(p.pkid).write(&mut out);
                }
                if self.delivers(&p.topic) {
                    let mut echo = v4::Publish::new(p.topic.clone(), QoS::AtMostOnce, p.payload.to_vec());
                    echo.retain = false;
                    let _ = echo.write(&mut out);
                }
                Next::Continue
            }
            v4::Packet::Subscribe(s) => {
                let mut codes = Vec::new();
                for f in &s.filters {
                    if self.allowed("iot:Subscribe", self.arns().topic_filter(&f.path)) {
                        self.filters.push(f.path.clone());
                        codes.push(v4::SubscribeReasonCode::Success(min_qos1(f.qos)));
                    } else if self.ctx.config.reject.subscribe3 == Subscribe3Deny::Close {
                        return Ok(Some((Vec::new(), Next::Close)));
                    } else {
                        codes.push(v4::SubscribeReasonCode::Failure);
                    }
                }
                let _ = v4::SubAck::new(s.pkid, codes).write(&mut out);
                Next::Continue
            }
            v4::Packet::Unsubscribe(u) => {
                self.filters.retain(|f| !u.topics.contains(f));
                let _ = v4::UnsubAck::new(u.pkid).write(&mut out);
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
                let _ = v5::PingResp::write(&mut out);
                Next::Continue
            }
            v5::Packet::Disconnect(_) => Next::Close,
            v5::Packet::Publish(p) => {
                let topic = String::from_utf8_lossy(&p.topic).into_owned();
                let ok = self.allowed("iot:Publish", self.arns().topic(&topic));
                if p.qos != V5QoS::AtMostOnce {
                    let reason = if ok { v5::PubAckReason::Success } else { v5::PubAckReason::NotAuthorized };
                    let _ = v5::PubAck { pkid: p.pkid, reason, properties: None }.write(&mut out);
                }
                if ok && self.delivers(&topic) {
                    let echo = v5::Publish::new(topic, V5QoS::AtMostOnce, p.payload.clone(), None);
                    let _ = echo.write(&mut out);
                }
                Next::Continue
            }
            v5::Packet::Subscribe(s) => {
                let mut codes = Vec::new();
                for f in &s.filters {
                    if self.allowed("iot:Subscribe", self.arns().topic_filter(&f.path)) {
                        self.filters.push(f.path.clone());
                        codes.push(v5::SubscribeReasonCode::Success(if f.qos == V5QoS::AtMostOnce {
                            f.qos
                        } else {
                            V5QoS::AtLeastOnce
                        }));
                    } else {
                        codes.push(v5::SubscribeReasonCode::NotAuthorized);
                    }
                }
                let _ = v5::SubAck { pkid: s.pkid, return_codes: codes, properties: None }.write(&mut out);
                Next::Continue
            }
            v5::Packet::Unsubscribe(u) => {
                self.filters.retain(|f| !u.filters.contains(f));
                let reasons = vec![v5::UnsubAckReason::Success; u.filters.len()];
                let _ = v5::UnsubAck { pkid: u.pkid, reasons, properties: None }.write(&mut out);
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

fn min_qos1(q: QoS) -> QoS {
    if q == QoS::AtMostOnce { q } else { QoS::AtLeastOnce }
}
