//! The hostile-peer suite: each failure found under attack (issue "hostile input") as a regression
//! test, plus floods and stalls on every transport. Loopback only; every wait is bounded.

use super::common::*;
use authprobe::emulator::{EmulatorConfig, Reason};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn emulator_config() -> EmulatorConfig {
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    cfg.show_secrets = false;
    cfg
}

async fn good_client_connects(emu: &Emu) -> Duration {
    let user = username(&[("x-amz-customauthorizer-name", AUTH), ("token", GOOD)]);
    let t = Instant::now();
    assert_eq!(mqtt311(emu, "good", &user, "").await, Connack::Code(0));
    t.elapsed()
}

/// Case 1: a CONNECT whose remaining length is malformed (`10 80 80 80 80`) followed by streamed
/// bytes was taken for "need more bytes" and copied on every read. It is refused at once now, on
/// MQTT over TLS and over WebSocket, and good clients are still served.
#[tokio::test]
async fn malformed_remaining_length_is_refused_at_once() {
    let mut emu = start(emulator_config()).await;
    let mut conns = Vec::new();
    for _ in 0..16 {
        let mut s = tls(emu.addr, Some(ENDPOINT), &[b"mqtt"], &emu.ca_pem).await.unwrap();
        s.write_all(&[0x10, 0x80, 0x80, 0x80, 0x80]).await.unwrap();
        conns.push(s);
    }
    for mut s in conns {
        // Keep streaming: the emulator must have closed already, so writes fail or reads see EOF.
        let started = Instant::now();
        let mut closed = false;
        for _ in 0..64 {
            if s.write_all(&[0u8; 1024]).await.is_err() {
                closed = true;
                break;
            }
            let mut b = [0u8; 16];
            match tokio::time::timeout(Duration::from_millis(50), s.read(&mut b)).await {
                Ok(Ok(0) | Err(_)) => {
                    closed = true;
                    break;
                }
                _ => {}
            }
        }
        assert!(closed && started.elapsed() < WAIT, "the emulator kept reading a malformed CONNECT");
    }
    for _ in 0..16 {
        let r = emu.record().await;
        assert_eq!(r.reason, Reason::MalformedRequest, "{}", r.detail);
        assert!(r.detail.contains("remaining length"), "{}", r.detail);
    }
    good_client_connects(&emu).await;
}
