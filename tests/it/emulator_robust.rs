//! Malformed and hostile input never crashes or hangs the emulator; a good client is served afterwards.

use super::common::*;
use authprobe::emulator::{EmulatorConfig, Reason};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

fn quick_timeouts() -> EmulatorConfig {
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    cfg.limits.handshake_timeout = Duration::from_millis(500);
    cfg.limits.request_timeout = Duration::from_millis(500);
    cfg
}

async fn still_serves(emu: &mut Emu) {
    let user = username(&[("x-amz-customauthorizer-name", AUTH), ("token", GOOD)]);
    assert_eq!(mqtt311(emu, "after", &user, "").await, Connack::Code(0));
    assert_eq!(emu.record().await.reason, Reason::Accepted);
}

/// Reads until the peer closes (EOF or reset); returns what arrived.
async fn read_to_close<S: tokio::io::AsyncRead + Unpin>(s: &mut S) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await.expect("the emulator closed the connection");
    out
}

#[tokio::test]
async fn garbage_instead_of_a_client_hello() {
    let mut emu = start(quick_timeouts()).await;
    let mut tcp = TcpStream::connect(emu.addr).await.unwrap();
    tcp.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let answer = read_to_close(&mut tcp).await;
    assert_eq!(answer.first(), Some(&0x15), "a TLS alert record: {answer:?}");
    assert_eq!(emu.record().await.reason, Reason::NotTls);
    still_serves(&mut emu).await;
}

#[tokio::test]
async fn garbage_after_the_handshake() {
    let mut emu = start(quick_timeouts()).await;
    let mut s = tls(emu.addr, Some(ENDPOINT), &[b"mqtt"], &emu.ca_pem).await.unwrap();
    s.write_all(&[0xde, 0xad, 0xbe, 0xef, 0, 1, 2, 3]).await.unwrap();
    assert!(read_to_close(&mut s).await.is_empty());
    assert_eq!(emu.record().await.reason, Reason::MalformedRequest);
    still_serves(&mut emu).await;
}

#[tokio::test]
async fn truncated_connect_then_close_or_stall() {
    let mut emu = start(quick_timeouts()).await;
    let packet = connect_packet("trunc", Some("?token=x"), "");
    let mut s = tls(emu.addr, Some(ENDPOINT), &[b"mqtt"], &emu.ca_pem).await.unwrap();
    s.write_all(&packet[..packet.len() / 2]).await.unwrap();
    s.shutdown().await.unwrap();
    assert_eq!(emu.record().await.reason, Reason::ClosedByClient);
    // A client that stops mid-CONNECT is closed after the request timeout.
    let mut s = tls(emu.addr, Some(ENDPOINT), &[b"mqtt"], &emu.ca_pem).await.unwrap();
    s.write_all(&packet[..packet.len() / 2]).await.unwrap();
    assert!(read_to_close(&mut s).await.is_empty());
    assert_eq!(emu.record().await.reason, Reason::RequestTimeout);
    still_serves(&mut emu).await;
}

#[tokio::test]
async fn connect_announcing_100_mb_is_refused_at_once() {
    let mut emu = start(config_with_long_timeouts()).await;
    let mut s = tls(emu.addr, Some(ENDPOINT), &[b"mqtt"], &emu.ca_pem).await.unwrap();
    // Remaining length 100,000,000 (varint 0x80 0xc2 0xd7 0x2f), then the start of a CONNECT.
    s.write_all(&[0x10, 0x80, 0xc2, 0xd7, 0x2f, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04]).await.unwrap();
    assert!(read_to_close(&mut s).await.is_empty());
    let rec = emu.record().await;
    assert_eq!(rec.reason, Reason::PacketTooLarge);
    // Refused on the header, not after a timeout.
    assert!(rec.durations.total_ms < 10_000, "{}", rec.durations.total_ms);
    still_serves(&mut emu).await;
}

fn config_with_long_timeouts() -> EmulatorConfig {
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    cfg.limits.request_timeout = Duration::from_secs(60);
    cfg
}

#[tokio::test]
async fn unfinished_http_request_is_closed_after_the_timeout() {
    let mut emu = start(quick_timeouts()).await;
    let mut s = tls(emu.addr, Some(ENDPOINT), &[], &emu.ca_pem).await.unwrap();
    s.write_all(b"POST /topics/t HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    assert!(read_to_close(&mut s).await.is_empty());
    assert_eq!(emu.record().await.reason, Reason::RequestTimeout);
    still_serves(&mut emu).await;
}

#[tokio::test]
async fn silent_client_is_closed_after_the_handshake_timeout() {
    let mut emu = start(quick_timeouts()).await;
    let mut tcp = TcpStream::connect(emu.addr).await.unwrap();
    assert!(read_to_close(&mut tcp).await.is_empty());
    assert_eq!(emu.record().await.reason, Reason::HandshakeTimeout);
}

#[tokio::test]
async fn raw_mqtt_without_alpn_is_treated_as_http() {
    let mut emu = start(quick_timeouts()).await;
    let mut s = tls(emu.addr, Some(ENDPOINT), &[], &emu.ca_pem).await.unwrap();
    s.write_all(&connect_packet("no-alpn", Some("?token=x"), "")).await.unwrap();
    let answer = String::from_utf8_lossy(&read_to_close(&mut s).await).into_owned();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("x-amzn-ErrorType: InvalidRequestException:"), "{answer}");
    assert_eq!(emu.record().await.reason, Reason::MalformedRequest);
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_idle_connections_do_not_starve_a_good_client() {
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    let mut emu = start(cfg).await;
    let before = rss_kib();
    let mut idle = Vec::new();
    for _ in 0..1000 {
        idle.push(TcpStream::connect(emu.addr).await.unwrap());
    }
    // They send nothing: each holds a task waiting for its ClientHello.
    still_serves(&mut emu).await;
    let grown_mib = rss_kib().saturating_sub(before) / 1024;
    eprintln!("RSS growth with 1,000 idle connections: {grown_mib} MiB");
    // Each idle connection costs a task and a small read buffer; 1,000 of them stay far below this.
    assert!(grown_mib < 100, "RSS grew by {grown_mib} MiB for 1,000 idle connections");
    drop(idle);
}
