//! The probe against small in-test servers for what the emulator never does: silence, plaintext, raw
//! alerts, foreign certificates, FIN vs RST vs close_notify after CONNECT, broken upgrades and HTTP,
//! and hostile peers (trickle, flood, invalid CONNACK).

use super::common::*;
use authprobe::auth::event::Transport;
use authprobe::emulator::certs::Ca;
use authprobe::probe::outcome::{CloseHow, Detail, Kind, Stage};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::rustls;
use tokio_rustls::server::TlsStream;

pub(super) type Fut = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A plaintext TCP server running `behave` on every connection.
async fn tcp_server(behave: impl Fn(TcpStream) -> Fut + Send + Sync + 'static) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(behave(tcp));
        }
    });
    addr
}

/// A TLS server with a leaf for `names` from `ca`, offering ALPN `mqtt` and HTTP/1.1.
pub(super) async fn tls_server(
    ca: &Ca,
    names: &[&str],
    behave: impl Fn(TlsStream<TcpStream>) -> Fut + Send + Sync + 'static,
) -> SocketAddr {
    let id = ca.issue(&names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
    let mut cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(id.chain, id.key)
        .unwrap();
    cfg.alpn_protocols = vec![b"mqtt".to_vec(), b"http/1.1".to_vec()];
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let behave = Arc::new(behave);
    tcp_server(move |tcp| {
        let (acceptor, behave) = (acceptor.clone(), behave.clone());
        Box::pin(async move {
            if let Ok(tls) = acceptor.accept(tcp).await {
                behave(tls).await;
            }
        })
    })
    .await
}

fn plan_for(addr: SocketAddr, ca: &Ca) -> authprobe::probe::ProbePlan {
    plan_for_within(addr, ca, Duration::from_secs(2))
}

fn plan_for_within(addr: SocketAddr, ca: &Ca, timeout: Duration) -> authprobe::probe::ProbePlan {
    plan_builder_at(addr, &ca.pem()).timeout(timeout).build().unwrap()
}

/// Reads the client's first bytes (its CONNECT or request) so replies come after it.
async fn read_some<S: tokio::io::AsyncRead + Unpin>(s: &mut S) {
    let mut b = [0u8; 4096];
    let _ = s.read(&mut b).await;
}

#[tokio::test]
async fn silent_tcp_server_is_a_tls_timeout() {
    let addr = tcp_server(|tcp| {
        Box::pin(async move {
            let mut tcp = tcp;
            let _ = tcp.read_to_end(&mut Vec::new()).await;
        })
    })
    .await;
    let ca = Ca::generate("test CA").unwrap();
    let plan = plan_for_within(addr, &ca, Duration::from_millis(300));
    let r = probe(&plan, &baseline(&plan, Transport::Mqtt)).await;
    assert_eq!((r.outcome.stage, r.outcome.kind), (Stage::Tls, Kind::TlsTimeout));
}

#[tokio::test]
async fn plaintext_server_is_not_tls() {
    let addr = tcp_server(|mut tcp| {
        Box::pin(async move {
            let _ = tcp.write_all(b"SSH-2.0-OpenSSH_9.2\r\n").await;
            read_some(&mut tcp).await;
        })
    })
    .await;
    let ca = Ca::generate("test CA").unwrap();
    let plan = plan_for(addr, &ca);
    let r = probe(&plan, &baseline(&plan, Transport::Mqtt)).await;
    assert_eq!(r.outcome.kind, Kind::TlsNotTls);
    let Detail::NotTls { first_bytes } = &r.outcome.detail else { panic!() };
    assert!(first_bytes.contains("SSH-2.0"), "{first_bytes}");
}

#[tokio::test]
async fn raw_tls_alert_is_named() {
    let addr = tcp_server(|mut tcp| {
        Box::pin(async move {
            read_some(&mut tcp).await;
            let _ = tcp.write_all(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 40]).await;
        })
    })
    .await;
    let plan = plan_for(addr, &Ca::generate("test CA").unwrap());
    let r = probe(&plan, &baseline(&plan, Transport::Mqtt)).await;
    assert_eq!(r.outcome.detail, Detail::Alert { alert: authprobe::wire::alert::Alert::HANDSHAKE_FAILURE, code: 40 });
}

#[tokio::test]
async fn certificate_from_another_ca_is_untrusted() {
    let other = Ca::generate("Intercepting Proxy CA").unwrap();
    let addr = tls_server(&other, &[ENDPOINT], |mut tls| Box::pin(async move { read_some(&mut tls).await })).await;
    let plan = plan_for(addr, &Ca::generate("Trusted CA").unwrap());
    let r = probe(&plan, &baseline(&plan, Transport::Mqtt)).await;
    assert_eq!(r.outcome.kind, Kind::TlsCertUntrusted);
    let Detail::Cert { chain, .. } = &r.outcome.detail else { panic!() };
    assert!(chain[0].issuer.contains("Intercepting Proxy CA"), "{chain:?}");
}

#[tokio::test]
async fn certificate_for_another_name_is_a_mismatch() {
    let ca = Ca::generate("test CA").unwrap();
    let addr =
        tls_server(&ca, &["other.example.com"], |mut tls| Box::pin(async move { read_some(&mut tls).await })).await;
    let plan = plan_for(addr, &ca);
    let r = probe(&plan, &baseline(&plan, Transport::Mqtt)).await;
    assert_eq!(r.outcome.kind, Kind::TlsCertNameMismatch);
    let Detail::Cert { chain, name_checked, .. } = &r.outcome.detail else { panic!() };
    assert_eq!(
        (name_checked.as_str(), chain[0].dns_names.as_slice()),
        (ENDPOINT, &["other.example.com".to_owned()][..])
    );
}

#[tokio::test]
async fn fin_rst_and_close_notify_after_connect_are_told_apart() {
    let ca = Ca::generate("test CA").unwrap();
    let notify = tls_server(&ca, &[ENDPOINT], |mut tls| {
        Box::pin(async move {
            read_some(&mut tls).await;
            let _ = tls.shutdown().await;
        })
    })
    .await;
    let fin = tls_server(&ca, &[ENDPOINT], |mut tls| {
        Box::pin(async move {
            read_some(&mut tls).await;
            let (mut tcp, _) = tls.into_inner();
            let _ = tcp.shutdown().await;
            let _ = tcp.read_to_end(&mut Vec::new()).await;
        })
    })
    .await;
    let rst = tls_server(&ca, &[ENDPOINT], |mut tls| {
        Box::pin(async move {
            read_some(&mut tls).await;
            let (tcp, _) = tls.into_inner();
            let _ = tcp.set_zero_linger();
        })
    })
    .await;
    for (addr, how) in [(notify, CloseHow::CloseNotify), (fin, CloseHow::Eof), (rst, CloseHow::Reset)] {
        let plan = plan_for(addr, &ca);
        let r = probe(&plan, &baseline(&plan, Transport::Mqtt)).await;
        assert_eq!(r.outcome.kind, Kind::ClosedBeforeConnack, "{how:?}");
        assert!(
            matches!(r.outcome.detail, Detail::ClosedAfter { how: h, .. } if h == how),
            "{how:?}: {:?}",
            r.outcome.detail
        );
    }
}

#[tokio::test]
async fn upgrade_without_a_valid_101_is_invalid_or_times_out() {
    let ca = Ca::generate("test CA").unwrap();
    let bad_101 = tls_server(&ca, &[ENDPOINT], |mut tls| {
        Box::pin(async move {
            read_some(&mut tls).await;
            let _ = tls.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: wrong\r\n\r\n").await;
            read_some(&mut tls).await;
        })
    })
    .await;
    let plan = plan_for(bad_101, &ca);
    let r = probe(&plan, &baseline(&plan, Transport::Wss)).await;
    assert_eq!(r.outcome.kind, Kind::UpgradeInvalid);
    let silent = tls_server(&ca, &[ENDPOINT], |mut tls| {
        Box::pin(async move { while tls.read(&mut [0u8; 64]).await.is_ok_and(|n| n > 0) {} })
    })
    .await;
    let plan = plan_for_within(silent, &ca, Duration::from_millis(300));
    let r = probe(&plan, &baseline(&plan, Transport::Wss)).await;
    assert_eq!(r.outcome.kind, Kind::UpgradeTimeout);
}

#[tokio::test]
async fn garbage_http_answer_is_malformed() {
    let ca = Ca::generate("test CA").unwrap();
    let addr = tls_server(&ca, &[ENDPOINT], |mut tls| {
        Box::pin(async move {
            read_some(&mut tls).await;
            let _ = tls.write_all(b"\x00\x01garbage that is not HTTP\r\n\r\n").await;
            let _ = tls.shutdown().await;
        })
    })
    .await;
    let plan = plan_for(addr, &ca);
    let r = probe(&plan, &baseline(&plan, Transport::Https)).await;
    assert_eq!(r.outcome.kind, Kind::HttpMalformedResponse);
}

#[tokio::test]
async fn trickling_server_is_bounded_by_the_timeout() {
    // One byte a second of an endless TLS record: the handshake can never finish.
    let addr = tcp_server(|mut tcp| {
        Box::pin(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            for b in [0x16u8, 0x03, 0x03, 0x40, 0x00].into_iter().chain(std::iter::repeat(0x02)).take(120) {
                tick.tick().await;
                if tcp.write_all(&[b]).await.is_err() {
                    return;
                }
            }
        })
    })
    .await;
    let plan = plan_for_within(addr, &Ca::generate("test CA").unwrap(), Duration::from_millis(1500));
    let r = probe(&plan, &baseline(&plan, Transport::Mqtt)).await;
    assert_eq!(r.outcome.kind, Kind::TlsTimeout);
}

#[tokio::test]
async fn flooding_server_is_classified_without_reading_it_all() {
    let ca = Ca::generate("test CA").unwrap();
    let addr = tls_server(&ca, &[ENDPOINT], |mut tls| {
        Box::pin(async move {
            read_some(&mut tls).await;
            let chunk = vec![0x30u8; 1 << 20];
            for _ in 0..100 {
                if tls.write_all(&chunk).await.is_err() {
                    return;
                }
            }
        })
    })
    .await;
    let plan = plan_for(addr, &ca);
    let r = probe(&plan, &baseline(&plan, Transport::Mqtt)).await;
    assert_eq!(r.outcome.kind, Kind::MqttProtocolError);
    let r = probe(&plan, &baseline(&plan, Transport::Https)).await;
    assert_eq!(r.outcome.kind, Kind::HttpMalformedResponse);
}

#[tokio::test]
async fn invalid_connack_is_a_protocol_error() {
    let ca = Ca::generate("test CA").unwrap();
    let addr = tls_server(&ca, &[ENDPOINT], |mut tls| {
        Box::pin(async move {
            read_some(&mut tls).await;
            let _ = tls.write_all(&[0x20, 0x02, 0x00, 0x09]).await;
            read_some(&mut tls).await;
        })
    })
    .await;
    let plan = plan_for(addr, &ca);
    let r = probe(&plan, &baseline(&plan, Transport::Mqtt)).await;
    assert_eq!(r.outcome.kind, Kind::MqttProtocolError);
    let Detail::Protocol { bytes, error } = &r.outcome.detail else { panic!() };
    assert!(bytes.starts_with("20 02 00 09") && error.contains("CONNACK"), "{bytes} {error}");
}

/// A WebSocket server that upgrades properly, then sends `frame` back to back forever.
async fn endless_frames(ca: &Ca, frame: &'static [u8]) -> SocketAddr {
    tls_server(ca, &[ENDPOINT], move |mut tls| {
        Box::pin(async move {
            let mut head = Vec::new();
            let mut b = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match tls.read(&mut b).await {
                    Ok(n) if n > 0 => head.extend_from_slice(&b[..n]),
                    _ => return,
                }
            }
            let text = String::from_utf8_lossy(&head);
            let key = text.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap_or("").trim().to_owned();
            let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
            let answer = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
            );
            if tls.write_all(answer.as_bytes()).await.is_err() {
                return;
            }
            let burst: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * 4096).collect();
            // Bounded: at most 60 s of flooding, whatever the client does.
            let until = tokio::time::Instant::now() + Duration::from_secs(60);
            while tokio::time::Instant::now() < until {
                if tls.write_all(&burst).await.is_err() {
                    return;
                }
            }
        })
    })
    .await
}

/// Case 3: endless pings (or empty binary frames) after the upgrade kept the probe's WebSocket read
/// busy past `--timeout`, and the report claimed the timeout as the wait. The deadline holds now.
/// (Two worker threads: on one, the flooding server could not outrun the probe.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endless_websocket_frames_cannot_extend_the_timeout() {
    let ca = Ca::generate("test CA").unwrap();
    for frame in [&[0x89u8, 0x00][..], &[0x82u8, 0x00][..]] {
        let addr = endless_frames(&ca, frame).await;
        let plan = plan_for_within(addr, &ca, Duration::from_secs(1));
        let started = std::time::Instant::now();
        let r = probe(&plan, &baseline(&plan, Transport::Wss)).await;
        let took = started.elapsed();
        assert!(took < Duration::from_secs(10), "frame {frame:02x?}: the attempt took {took:?}");
        assert_eq!(r.outcome.kind, Kind::ConnackTimeout, "{:?}", r.outcome);
        if let Detail::Wait { waited_ms } = r.outcome.detail {
            assert!(u128::from(waited_ms) <= took.as_millis(), "the reported wait is what was waited");
        }
    }
}

/// `--timeout` bounds each attempt's whole life, and attempts sharing a client ID wait only at their
/// CONNECT: against a server that never answers, every matrix ends within one timeout plus the spacing
/// its chain needs (the mqtt and wss baselines share the device's client ID), not one timeout per
/// chained attempt or per wave of `--parallel`, with the default `--parallel`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_matrix_against_a_silent_server_ends_within_one_timeout() {
    // The run is timed from its first connection (the process's start-up and plan are not the
    // matrix's: on a loaded CI machine they alone took a tenth of a second).
    let first: Arc<Mutex<Option<std::time::Instant>>> = Arc::default();
    let seen = first.clone();
    let addr = tcp_server(move |mut tcp| {
        if let Ok(mut f) = seen.lock() {
            f.get_or_insert_with(std::time::Instant::now);
        }
        Box::pin(async move {
            let _ = tcp.read_to_end(&mut Vec::new()).await;
        })
    })
    .await;
    let (timeout_ms, spacing_ms) = (3_000u64, 300u64);
    for matrix in ["quick", "full"] {
        let to = format!("127.0.0.1:{}", addr.port());
        let (timeout, spacing) = (format!("{timeout_ms}ms"), format!("{spacing_ms}ms"));
        *first.lock().unwrap() = None;
        let out = tokio::task::spawn_blocking(move || {
            authprobe_bin(&[
                "probe",
                "--endpoint",
                ENDPOINT,
                "--connect-to",
                &to,
                "--authorizer",
                "a",
                "--token",
                "t",
                "--timeout",
                &timeout,
                "--spacing",
                &spacing,
                "--matrix",
                matrix,
                "--format",
                "json",
            ])
        })
        .await
        .unwrap();
        let took = first.lock().unwrap().expect("a first connection").elapsed();
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
        let attempts = report["attempts"].as_array().unwrap();
        assert!(attempts.len() >= 9, "{matrix}: {} attempts", attempts.len());
        for a in attempts {
            assert_eq!(a["outcome"]["kind"], "tls_timeout", "{a}");
            let life: u64 = a["stages"].as_array().unwrap().iter().map(|s| s["ms"].as_u64().unwrap()).sum();
            assert!(life <= timeout_ms + 200, "{matrix}: {} lived {life} ms", a["id"]);
        }
        // One timeout, one spacing for the chain of two baselines, and 0.5 s for everything else.
        let bound = Duration::from_millis(timeout_ms + spacing_ms + 500);
        assert!(took <= bound, "{matrix} matrix took {took:?}, more than {bound:?}");
    }
}
