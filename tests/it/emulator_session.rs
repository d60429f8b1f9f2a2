//! Session behaviours IoT Core has, checked with raw bytes encoded and decoded by rumqttc's codecs:
//! client-ID takeover, the connection's maximum lifetime (`disconnectAfterInSeconds`), keep-alive
//! expiry, the 128-byte client ID limit, empty client IDs — in MQTT 3.1.1 and MQTT 5.

use super::common::*;
use bytes::BytesMut;
use rumqttc::mqttbytes::v4;
use rumqttc::v5::mqttbytes::v5;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

type Stream = TlsStream<TcpStream>;

fn username_good() -> String {
    username(&[("x-amz-customauthorizer-name", AUTH), ("token", GOOD)])
}

fn v4_connect(client_id: &str, clean: bool, keep_alive: u16) -> Vec<u8> {
    let mut c = v4::Connect::new(client_id);
    c.keep_alive = keep_alive;
    c.clean_session = clean;
    c.login = Some(v4::Login::new(username_good(), ""));
    let mut buf = BytesMut::new();
    c.write(&mut buf).unwrap();
    buf.to_vec()
}

fn v5_connect(client_id: &str, keep_alive: u16) -> Vec<u8> {
    let c = v5::Connect { keep_alive, client_id: client_id.into(), clean_start: true, properties: None };
    let mut buf = BytesMut::new();
    c.write(&None, &Some(v5::Login::new(username_good(), "")), &mut buf).unwrap();
    buf.to_vec()
}

async fn open(emu: &Emu, connect: &[u8]) -> Stream {
    let mut s = tls(emu.addr, Some(ENDPOINT), &[b"mqtt"], &emu.ca_pem).await.unwrap();
    s.write_all(connect).await.unwrap();
    s
}

/// Reads until one whole MQTT 5 packet is decoded, or the connection ends (`None`).
async fn v5_packet(s: &mut Stream, buf: &mut BytesMut) -> Option<v5::Packet> {
    loop {
        match v5::Packet::read(buf, None) {
            Ok(p) => return Some(p),
            Err(rumqttc::v5::mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(e) => panic!("undecodable: {e}"),
        }
        let mut chunk = [0u8; 512];
        match tokio::time::timeout(WAIT, s.read(&mut chunk)).await.expect("an answer in time") {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn v4_packet(s: &mut Stream, buf: &mut BytesMut) -> Option<v4::Packet> {
    loop {
        match v4::Packet::read(buf, 1 << 20) {
            Ok(p) => return Some(p),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(e) => panic!("undecodable: {e}"),
        }
        let mut chunk = [0u8; 512];
        match tokio::time::timeout(WAIT, s.read(&mut chunk)).await.expect("an answer in time") {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn v5_connack(s: &mut Stream, buf: &mut BytesMut) -> v5::ConnAck {
    match v5_packet(s, buf).await {
        Some(v5::Packet::ConnAck(a)) => a,
        other => panic!("CONNACK expected, got {other:?}"),
    }
}

async fn v4_code(s: &mut Stream, buf: &mut BytesMut) -> v4::ConnectReturnCode {
    match v4_packet(s, buf).await {
        Some(v4::Packet::ConnAck(a)) => a.code,
        other => panic!("CONNACK expected, got {other:?}"),
    }
}

async fn emulator(tune: impl FnOnce(&mut authprobe::emulator::EmulatorConfig)) -> Emu {
    let mut c = config();
    c.authorizers.push(allowing(AUTH));
    tune(&mut c);
    start(c).await
}

#[tokio::test]
async fn a_second_connection_takes_the_client_id_over() {
    let emu = emulator(|_| {}).await;
    // MQTT 5: the older connection gets DISCONNECT 0x8E (session taken over), then the close.
    let (mut a, mut abuf) = (open(&emu, &v5_connect("dup5", 60)).await, BytesMut::new());
    assert_eq!(v5_connack(&mut a, &mut abuf).await.code, v5::ConnectReturnCode::Success);
    let (mut b, mut bbuf) = (open(&emu, &v5_connect("dup5", 60)).await, BytesMut::new());
    assert_eq!(v5_connack(&mut b, &mut bbuf).await.code, v5::ConnectReturnCode::Success);
    match v5_packet(&mut a, &mut abuf).await {
        Some(v5::Packet::Disconnect(d)) => assert_eq!(d.reason_code, v5::DisconnectReasonCode::SessionTakenOver),
        other => panic!("DISCONNECT 0x8E expected, got {other:?}"),
    }
    assert!(v5_packet(&mut a, &mut abuf).await.is_none(), "then closed");
    // MQTT 3.1.1: no server DISCONNECT exists; the older connection is closed. The newer one lives.
    let (mut c, mut cbuf) = (open(&emu, &v4_connect("dup4", true, 60)).await, BytesMut::new());
    assert_eq!(v4_code(&mut c, &mut cbuf).await, v4::ConnectReturnCode::Success);
    let (mut d, mut dbuf) = (open(&emu, &v4_connect("dup4", true, 60)).await, BytesMut::new());
    assert_eq!(v4_code(&mut d, &mut dbuf).await, v4::ConnectReturnCode::Success);
    assert!(v4_packet(&mut c, &mut cbuf).await.is_none(), "the older MQTT 3.1.1 connection is closed");
    d.write_all(&[0xc0, 0]).await.unwrap(); // PINGREQ
    assert!(matches!(v4_packet(&mut d, &mut dbuf).await, Some(v4::Packet::PingResp)), "the newer one is served");
}

#[tokio::test]
async fn connections_end_at_their_maximum_lifetime() {
    let emu = emulator(|c| c.limits.max_connect_time = Some(Duration::from_millis(300))).await;
    let (mut a, mut buf) = (open(&emu, &v5_connect("life5", 60)).await, BytesMut::new());
    assert_eq!(v5_connack(&mut a, &mut buf).await.code, v5::ConnectReturnCode::Success);
    match v5_packet(&mut a, &mut buf).await {
        Some(v5::Packet::Disconnect(d)) => assert_eq!(d.reason_code, v5::DisconnectReasonCode::MaximumConnectTime),
        other => panic!("DISCONNECT 0xA0 expected, got {other:?}"),
    }
    let (mut b, mut buf) = (open(&emu, &v4_connect("life4", true, 60)).await, BytesMut::new());
    assert_eq!(v4_code(&mut b, &mut buf).await, v4::ConnectReturnCode::Success);
    assert!(v4_packet(&mut b, &mut buf).await.is_none(), "closed at the end of its lifetime");
}

#[tokio::test]
async fn keep_alive_expiry_says_why_in_mqtt5() {
    let emu = emulator(|c| c.limits.min_keep_alive = Duration::from_millis(100)).await;
    let (mut a, mut buf) = (open(&emu, &v5_connect("ka5", 1)).await, BytesMut::new());
    assert_eq!(v5_connack(&mut a, &mut buf).await.code, v5::ConnectReturnCode::Success);
    match v5_packet(&mut a, &mut buf).await {
        Some(v5::Packet::Disconnect(d)) => assert_eq!(d.reason_code, v5::DisconnectReasonCode::KeepAliveTimeout),
        other => panic!("DISCONNECT 0x8D expected, got {other:?}"),
    }
    let (mut b, mut buf) = (open(&emu, &v4_connect("ka4", true, 1)).await, BytesMut::new());
    assert_eq!(v4_code(&mut b, &mut buf).await, v4::ConnectReturnCode::Success);
    assert!(v4_packet(&mut b, &mut buf).await.is_none(), "MQTT 3.1.1: closed");
}

#[tokio::test]
async fn client_id_limits_and_empty_client_ids() {
    let mut emu = emulator(|_| {}).await;
    let long = "x".repeat(129);
    let (mut a, mut buf) = (open(&emu, &v4_connect(&long, true, 60)).await, BytesMut::new());
    assert_eq!(v4_code(&mut a, &mut buf).await, v4::ConnectReturnCode::BadClientId);
    let rec = emu.record().await;
    assert!(rec.detail.contains("129 bytes"), "{}", rec.detail);
    let (mut b, mut buf) = (open(&emu, &v5_connect(&long, 60)).await, BytesMut::new());
    assert_eq!(v5_connack(&mut b, &mut buf).await.code, v5::ConnectReturnCode::ClientIdentifierNotValid);
    let _ = emu.record().await;
    // 128 bytes is allowed.
    let (mut c, mut buf) = (open(&emu, &v4_connect(&"y".repeat(128), true, 60)).await, BytesMut::new());
    assert_eq!(v4_code(&mut c, &mut buf).await, v4::ConnectReturnCode::Success);
    drop(c);
    let _ = emu.record().await;
    // MQTT 3.1.1: an empty client ID needs a clean session.
    let (mut d, mut buf) = (open(&emu, &v4_connect("", false, 60)).await, BytesMut::new());
    assert_eq!(v4_code(&mut d, &mut buf).await, v4::ConnectReturnCode::BadClientId);
    let _ = emu.record().await;
    // MQTT 5: the server assigns one.
    let (mut e, mut buf) = (open(&emu, &v5_connect("", 60)).await, BytesMut::new());
    let ack = v5_connack(&mut e, &mut buf).await;
    assert_eq!(ack.code, v5::ConnectReturnCode::Success);
    let assigned = ack.properties.and_then(|p| p.assigned_client_identifier).expect("an assigned client identifier");
    assert!(!assigned.is_empty() && assigned.len() <= 128, "{assigned}");
}

/// `refreshAfterInSeconds`: the function is asked again; while it allows, the session lives on, and
/// when it then denies, the connection ends (MQTT 5: DISCONNECT 0x87; MQTT 3.1.1: closed).
#[tokio::test]
async fn a_refresh_that_denies_ends_the_session() {
    for version in [5u8, 4] {
        let dir = tempfile::tempdir().unwrap();
        let count = dir.path().join("calls");
        // Allows twice (the connect and the first refresh), then denies.
        let allow = r#"{"isAuthenticated":true,"principalId":"dev","disconnectAfterInSeconds":86400,"refreshAfterInSeconds":300,"policyDocuments":[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}]}"#;
        let deny = r#"{"isAuthenticated":false,"principalId":"dev","disconnectAfterInSeconds":86400,"refreshAfterInSeconds":300,"policyDocuments":[]}"#;
        let script = format!(
            "cat >/dev/null; echo x >> '{c}'; if [ $(wc -l < '{c}') -le 2 ]; then echo '{allow}'; else echo '{deny}'; fi",
            c = count.display()
        );
        let mut emu = emulator(|c| {
            c.limits.max_refresh = Some(Duration::from_millis(300));
            c.authorizers.clear();
            let mut a = authprobe::emulator::Authorizer::new(AUTH, "token");
            a.function = authprobe::emulator::Function::Command(script);
            c.authorizers.push(a);
        })
        .await;
        let started = std::time::Instant::now();
        let mut buf = BytesMut::new();
        let mut s = if version == 5 {
            let mut s = open(&emu, &v5_connect("refreshed", 60)).await;
            assert_eq!(v5_connack(&mut s, &mut buf).await.code, v5::ConnectReturnCode::Success);
            s
        } else {
            let mut s = open(&emu, &v4_connect("refreshed", true, 60)).await;
            assert_eq!(v4_code(&mut s, &mut buf).await, v4::ConnectReturnCode::Success);
            s
        };
        let _ = emu.record().await;
        if version == 5 {
            match v5_packet(&mut s, &mut buf).await {
                Some(v5::Packet::Disconnect(d)) => assert_eq!(d.reason_code, v5::DisconnectReasonCode::NotAuthorized),
                other => panic!("DISCONNECT 0x87 expected, got {other:?}"),
            }
        } else {
            assert!(v4_packet(&mut s, &mut buf).await.is_none(), "closed after the denying refresh");
        }
        let calls = std::fs::read_to_string(&count).unwrap().lines().count();
        assert_eq!(calls, 3, "the connect, an allowing refresh, a denying one");
        assert!(
            started.elapsed() >= Duration::from_millis(550),
            "two refresh intervals passed: {:?}",
            started.elapsed()
        );
    }
}

/// With `limits.connect_interval` (IoT Core: one CONNECT per second per client ID), a second CONNECT
/// too soon is refused: MQTT 5 CONNACK 0x9F, MQTT 3.1.1 closed; another client ID is not affected.
#[tokio::test]
async fn connect_rate_per_client_id_as_an_option() {
    let mut emu = emulator(|c| c.limits.connect_interval = Some(Duration::from_secs(60))).await;
    let mut buf = BytesMut::new();
    let mut a = open(&emu, &v5_connect("rate5", 60)).await;
    assert_eq!(v5_connack(&mut a, &mut buf).await.code, v5::ConnectReturnCode::Success);
    let mut buf = BytesMut::new();
    let mut b = open(&emu, &v5_connect("rate5", 60)).await;
    assert_eq!(v5_connack(&mut b, &mut buf).await.code, v5::ConnectReturnCode::ConnectionRateExceeded);
    // The refused connection's record comes first: the accepted one is still open.
    assert_eq!(emu.record().await.reason, authprobe::emulator::Reason::ConnectRateExceeded);
    let mut buf = BytesMut::new();
    let mut c = open(&emu, &v4_connect("rate4", true, 60)).await;
    assert_eq!(v4_code(&mut c, &mut buf).await, v4::ConnectReturnCode::Success);
    let mut buf = BytesMut::new();
    let mut d = open(&emu, &v4_connect("rate4", true, 60)).await;
    assert!(v4_packet(&mut d, &mut buf).await.is_none(), "MQTT 3.1.1: closed without CONNACK");
}
