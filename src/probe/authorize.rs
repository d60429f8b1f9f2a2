//! Stage `authorize` (post-connect checks, `--subscribe` and `--publish`): after CONNACK 0, subscribe,
//! publish at QoS 1 and wait for the message to come back, classifying each answer — SUBACK/PUBACK
//! codes, a close after the request (MQTT 3.1.1 policy denial), or a missing message.

use super::classify::connack_reason_v4;
use super::classify::reason_v5;
use super::mqtt::{MAX_REPLY, packet_len};
use super::outcome::{Detail, Kind, Outcome};
use super::plan::MqttVersion;
use bytes::BytesMut;
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// What to check after the connection is accepted.
#[derive(Clone, Debug, Default)]
pub struct Checks {
    pub publish: Option<String>,
    pub subscribe: Option<String>,
}

impl Checks {
    pub fn is_empty(&self) -> bool {
        self.publish.is_none() && self.subscribe.is_none()
    }
}

/// How MQTT packets travel: TLS bytes, or WebSocket binary frames.
pub trait Wire {
    /// Appends what arrives next; `Ok(0)` when the peer closed.
    fn read_some(&mut self, buf: &mut Vec<u8>) -> impl std::future::Future<Output = std::io::Result<usize>> + Send;
    fn send(&mut self, bytes: &[u8]) -> impl std::future::Future<Output = std::io::Result<()>> + Send;
}

/// MQTT directly on a byte stream (TLS).
pub struct Bytes<'a, S>(pub &'a mut S);

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Wire for Bytes<'_, S> {
    async fn read_some(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        let mut chunk = [0u8; 4096];
        let n = self.0.read(&mut chunk).await?;
        buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.0.write_all(bytes).await?;
        self.0.flush().await
    }
}

/// MQTT in WebSocket binary frames.
pub struct Frames<'a>(pub &'a mut tokio_tungstenite::WebSocketStream<super::tls::Stream>);

impl Wire for Frames<'_> {
    async fn read_some(&mut self, buf: &mut Vec<u8>) -> std::io::Result<usize> {
        use futures_util::StreamExt as _;
        use tokio_tungstenite::tungstenite::Message;
        // Control and empty frames are bounded: a peer cannot keep this read busy forever.
        for _ in 0..super::websocket::MAX_IDLE_FRAMES {
            match self.0.next().await {
                Some(Ok(Message::Binary(b))) if !b.is_empty() => {
                    buf.extend_from_slice(&b);
                    return Ok(b.len());
                }
                Some(Ok(Message::Close(_))) | None => return Ok(0),
                Some(Err(e)) => return Err(std::io::Error::other(e)),
                Some(Ok(_)) => {}
            }
        }
        Err(std::io::Error::other("too many control frames without data"))
    }
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        use futures_util::SinkExt as _;
        self.0
            .send(tokio_tungstenite::tungstenite::Message::binary(bytes.to_vec()))
            .await
            .map_err(std::io::Error::other)
    }
}

/// Runs the checks on an accepted connection; returns every check's outcome, in order.
pub async fn run<W: Wire>(
    s: &mut W,
    v: MqttVersion,
    checks: &Checks,
    arns: &crate::auth::policy::Arns,
    timeout: Duration,
) -> Vec<Outcome> {
    let mut out = Vec::new();
    let mut conn = Conn { s, v, buf: Vec::new() };
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
    buf: Vec<u8>,
}

/// The next whole packet, or why none came.
enum Next {
    Packet(Vec<u8>),
    Closed,
    Timeout,
}

impl<W: Wire> Conn<'_, W> {
    async fn next(&mut self, deadline: tokio::time::Instant) -> Next {
        loop {
            if let Some(n) = packet_len(&self.buf).filter(|n| self.buf.len() >= (*n).min(MAX_REPLY)) {
                let n = n.min(self.buf.len());
                return Next::Packet(self.buf.drain(..n).collect());
            }
            if tokio::time::Instant::now() >= deadline {
                return Next::Timeout;
            }
            match tokio::time::timeout_at(deadline, self.s.read_some(&mut self.buf)).await {
                Err(_) => return Next::Timeout,
                Ok(Ok(n)) if n > 0 => {}
                Ok(_) => return Next::Closed,
            }
        }
    }

    /// Writes a request; a peer that stops reading counts as closed after 10 s.
    async fn send(&mut self, bytes: &[u8]) -> bool {
        matches!(tokio::time::timeout(Duration::from_secs(10), self.s.send(bytes)).await, Ok(Ok(())))
    }

    async fn subscribe(&mut self, filter: &str, resource: &str, timeout: Duration) -> Outcome {
        let mut buf = BytesMut::new();
        match self.v {
            MqttVersion::V311 => {
                let _ = rumqttc::mqttbytes::v4::Subscribe::new(filter, rumqttc::mqttbytes::QoS::AtLeastOnce)
                    .write(&mut buf);
            }
            MqttVersion::V5 => {
                let f = rumqttc::v5::mqttbytes::v5::Filter::new(filter, rumqttc::v5::mqttbytes::QoS::AtLeastOnce);
                let mut sub = rumqttc::v5::mqttbytes::v5::Subscribe::new(f, None);
                sub.pkid = 1;
                let _ = sub.write(&mut buf);
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
                Next::Packet(p) if p.first().map(|b| b >> 4) == Some(9) => {
                    // SUBACK: the (first) return code is the last byte.
                    let code = p.last().copied().unwrap_or(0x80);
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
                Next::Packet(_) => {}
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
                let _ = p.write(&mut buf);
            }
            MqttVersion::V5 => {
                let mut p = rumqttc::v5::mqttbytes::v5::Publish::new(
                    topic,
                    rumqttc::v5::mqttbytes::QoS::AtLeastOnce,
                    b"authprobe".to_vec(),
                    None,
                );
                p.pkid = 2;
                let _ = p.write(&mut buf);
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
                Next::Packet(p) if p.first().map(|b| b >> 4) == Some(3) => echoed = true,
                Next::Packet(p) if p.first().map(|b| b >> 4) == Some(4) => {
                    // PUBACK: MQTT 5 may carry a reason code after the packet id.
                    let code = if p.len() > 4 { p[4] } else { 0 };
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
                Next::Packet(_) => {}
            }
        }
    }

    async fn await_message(&mut self, topic: &str, resource: &str, timeout: Duration) -> Outcome {
        let started = Instant::now();
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            match self.next(deadline).await {
                Next::Packet(p) if p.first().map(|b| b >> 4) == Some(3) => return received(topic, resource),
                Next::Packet(_) => {}
                Next::Closed | Next::Timeout => {
                    return Outcome::new(
                        Kind::MessageMissing,
                        Detail::Check {
                            action: "iot:Receive".into(),
                            resource: resource.into(),
                            elapsed_ms: started.elapsed().as_millis() as u64,
                        },
                    );
                }
            }
        }
    }
}
