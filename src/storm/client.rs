//! One simulated device's connection: TCP, TLS (one shared client config, no resumption), for wss the
//! upgrade, then CONNECT and whatever answers it, classified as the probe classifies it; an accepted
//! connection is held (PINGREQ within the keep-alive) until the storm lets it go.

use super::plan::{Identity, Placement, StormPlan};
use crate::auth::credentials::{encode, join_query, username_with};
use crate::auth::event::Transport;
use crate::probe::classify::{Observation, classify};
use crate::probe::outcome::{Detail, Kind};
use crate::probe::{mqtt, tcp, tls, websocket};
use crate::wire::mqtt::{Bytes, Channel, Frames};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// A held connection.
pub(crate) enum Link {
    Tls(Box<Bytes<tls::Stream>>),
    Ws(Box<Frames<tls::Stream>>),
}

/// What one attempt came to.
pub(crate) struct Answer {
    /// The outcome kind, with the CONNACK code for a refusal (`connack_refused:0x87`).
    pub label: String,
    /// CONNECT to answer (or to the stage's failure), in milliseconds.
    pub latency_ms: u32,
    /// The connection, when the CONNECT was accepted.
    pub link: Option<Link>,
}

/// The custom-auth parameters of `id`, encoded for where they go.
fn params(plan: &StormPlan, id: &Identity, in_query: bool) -> Vec<(String, String)> {
    let enc = |v: &str| if in_query { encode(v) } else { v.to_owned() };
    let mut out = Vec::new();
    if let Some(a) = &plan.authorizer {
        out.push(("x-amz-customauthorizer-name".to_owned(), enc(a)));
    }
    if let Some(s) = &id.signature {
        out.push(("x-amz-customauthorizer-signature".to_owned(), enc(s.expose())));
    }
    out.push((plan.token_key_name.clone(), enc(id.token.expose())));
    out
}

fn label(obs: &Observation) -> (String, bool) {
    let o = classify(obs);
    let label = match (&o.kind, &o.detail) {
        (Kind::ConnackRefused, Detail::Connack { code, .. }) => format!("connack_refused:{code:#04x}"),
        (k, _) => k.as_str(),
    };
    (label, o.kind == Kind::ConnackAccepted)
}

/// Connects device `id` once.
pub(crate) async fn attempt(
    plan: &StormPlan,
    id: &Identity,
    config: &Arc<rustls::ClientConfig>,
    in_flight: &std::sync::atomic::AtomicUsize,
) -> (Answer, usize) {
    use std::sync::atomic::Ordering::Relaxed;
    let started = Instant::now();
    let deadline = started + plan.timeout;
    let left = || deadline.saturating_duration_since(Instant::now());
    let failed = |obs: &Observation| Answer {
        label: label(obs).0,
        latency_ms: started.elapsed().as_millis() as u32,
        link: None,
    };
    let tcp = match tcp::dial(&plan.addrs, left()).await {
        Ok((tcp, _)) => tcp,
        Err(o) => return (failed(&o), in_flight.load(Relaxed)),
    };
    let _ = tcp.set_nodelay(true);
    let stream = match tls::connect_shared(tcp, config, &plan.server_name, left()).await {
        Ok(s) => s,
        Err(o) => return (failed(&o), in_flight.load(Relaxed)),
    };
    let username = match (plan.transport, plan.placement) {
        (Transport::Mqtt, _) | (_, Placement::Username) => match &id.username_raw {
            Some(raw) => raw.expose().to_owned(),
            None => username_with("", &params(plan, id, true)),
        },
        _ => String::new(),
    };
    let password = id.password.as_ref().map_or("", |p| p.expose());
    let connect = mqtt::connect_packet(plan.mqtt_version, &id.client_id, &username, password, plan.keep_alive);
    let mut link = match plan.transport {
        Transport::Wss => {
            let (target, headers) = match plan.placement {
                Placement::Query => (format!("/mqtt?{}", join_query(&params(plan, id, true))), Vec::new()),
                Placement::Header => ("/mqtt".to_owned(), params(plan, id, false)),
                Placement::Username => ("/mqtt".to_owned(), Vec::new()),
            };
            let host = Some(plan.server_name.as_str());
            match websocket::upgrade(stream, &target, host, websocket::PROTOCOL, &headers, None, left()).await {
                Ok(ws) => Link::Ws(Box::new(Frames::new(ws, true))),
                Err(o) => return (failed(&o), in_flight.load(Relaxed)),
            }
        }
        _ => Link::Tls(Box::new(Bytes(stream))),
    };
    let sent = Instant::now();
    let at_send = in_flight.fetch_add(1, Relaxed) + 1;
    let obs = match &mut link {
        Link::Tls(ch) => mqtt::exchange(ch.as_mut(), plan.mqtt_version, &connect, left()).await,
        Link::Ws(ch) => mqtt::exchange(ch.as_mut(), plan.mqtt_version, &connect, left()).await,
    };
    in_flight.fetch_sub(1, Relaxed);
    let (label, accepted) = label(&obs);
    let answer = Answer { label, latency_ms: sent.elapsed().as_millis() as u32, link: accepted.then_some(link) };
    (answer, at_send)
}

impl Link {
    async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match self {
            Self::Tls(c) => c.send(bytes).await,
            Self::Ws(c) => c.send(bytes).await,
        }
    }

    async fn read_some(&mut self, buf: &mut bytes::BytesMut) -> std::io::Result<usize> {
        match self {
            Self::Tls(c) => c.read_some(buf).await,
            Self::Ws(c) => c.read_some(buf).await,
        }
    }

    /// Holds the connection until `until` (PINGREQ every three quarters of the keep-alive, replies
    /// read and dropped); `false` when the server closed it first.
    pub(crate) async fn hold(&mut self, until: impl Future<Output = ()>, keep_alive: u16) -> bool {
        tokio::pin!(until);
        let every = Duration::from_secs(u64::from(keep_alive.max(1))) * 3 / 4;
        let mut ping = tokio::time::interval_at(Instant::now() + every, every);
        let mut buf = bytes::BytesMut::new();
        loop {
            tokio::select! {
                () = &mut until => return true,
                _ = ping.tick() => {
                    if self.send(&packet(|o| rumqttc::mqttbytes::v4::PingReq.write(o))).await.is_err() {
                        return false;
                    }
                }
                r = self.read_some(&mut buf) => match r {
                    Ok(n) if n > 0 => buf.clear(),
                    Err(e) if crate::wire::mqtt::idle(&e) => {}
                    _ => return false,
                },
            }
        }
    }

    /// DISCONNECT and close, briefly.
    pub(crate) async fn goodbye(mut self) {
        // MQTT 3.1.1's DISCONNECT; in MQTT 5 the same two bytes are a normal disconnection.
        let disconnect = packet(|o| rumqttc::mqttbytes::v4::Disconnect.write(o));
        let _ = tokio::time::timeout(Duration::from_secs(1), self.send(&disconnect)).await;
    }
}

/// A packet encoded with rumqttc's codecs.
fn packet(write: impl FnOnce(&mut bytes::BytesMut) -> Result<usize, rumqttc::mqttbytes::Error>) -> bytes::BytesMut {
    let mut buf = bytes::BytesMut::new();
    let _logged = crate::wire::mqtt::encode(&mut buf, write);
    buf
}
