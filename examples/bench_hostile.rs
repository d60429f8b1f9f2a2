//! Benchmark: the two resource attacks of the hostile-input issue, measured.
//!
//! - `emulator`: 64 connections that send a CONNECT with a malformed remaining length
//!   (`10 80 80 80 80`) and keep streaming bytes, while a good client connects every 200 ms. Target:
//!   peak RSS under 64 MB; every good client served within 100 ms.
//! - `probe`: a WebSocket server that answers the upgrade, then floods ping frames (or, with
//!   `probe-empty`, empty binary frames) and never reads. Target: the attempt ends within `--timeout`
//!   (3 s) plus one second, peak RSS under 32 MB.
//!
//! Run: `cargo run --release --example bench_hostile -- emulator|probe|probe-empty`. Each mode runs in
//! its own process, so the peak RSS (VmHWM) is that mode's alone.

use authprobe::auth::event::Transport;
use authprobe::emulator::{self, Authorizer, EmulatorConfig, Function, Rule};
use authprobe::probe::{Credentials, ProbePlan, Trust};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const ENDPOINT: &str = "abc123-ats.iot.us-east-1.amazonaws.com";

/// Peak resident set size of this process so far, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn roots(ca_pem: &str) -> Vec<CertificateDer<'static>> {
    CertificateDer::pem_slice_iter(ca_pem.as_bytes()).filter_map(Result::ok).collect()
}

fn client(ca_pem: &str, alpn: &[u8]) -> tokio_rustls::TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    for c in roots(ca_pem) {
        let _ = store.add(c);
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(store)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

fn plan(addr: std::net::SocketAddr, ca_pem: &str, timeout: Duration) -> ProbePlan {
    let credentials = Credentials {
        authorizer: Some("A".into()),
        token_key_name: "token".into(),
        token: Some("good".into()),
        ..Credentials::default()
    };
    ProbePlan {
        connect_to: Some((addr.ip().to_string(), Some(addr.port()))),
        transports: vec![Transport::Mqtt],
        client_id: "bench".into(),
        trust: Trust::Roots(roots(ca_pem)),
        timeout,
        follow_up: false,
        ..ProbePlan::new(ENDPOINT, credentials)
    }
}

async fn emulator_attack() -> Result<(), Box<dyn std::error::Error>> {
    let mut cfg = EmulatorConfig::new(vec![ENDPOINT.into()])?;
    let mut a = Authorizer::new("A", "token");
    a.function = Function::Rules(vec![Rule::allow_all("good")]);
    cfg.authorizers.push(a);
    let ca = cfg.identity.ca_pem.clone().unwrap_or_default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(emulator::run(listener, cfg, std::future::pending()));
    let before = peak_rss_mib();
    let connector = client(&ca, b"mqtt");
    let mut attackers = Vec::new();
    for _ in 0..64 {
        let connector = connector.clone();
        attackers.push(tokio::spawn(async move {
            let Ok(tcp) = tokio::net::TcpStream::connect(addr).await else { return (0u64, Duration::ZERO) };
            let Ok(mut tls) = connector.connect(ServerName::try_from(ENDPOINT).expect("name"), tcp).await else {
                return (0, Duration::ZERO);
            };
            let _ = tls.write_all(&[0x10, 0x80, 0x80, 0x80, 0x80]).await;
            let chunk = vec![0u8; 16 * 1024];
            let mut sent = 0u64;
            let started = Instant::now();
            let until = started + Duration::from_secs(12);
            while Instant::now() < until {
                if tls.write_all(&chunk).await.is_err() {
                    break;
                }
                sent += chunk.len() as u64;
            }
            (sent, started.elapsed())
        }));
    }
    // Good clients while the attack runs.
    let good = plan(addr, &ca, Duration::from_secs(5));
    let spec = good.baseline().remove(0);
    let mut worst = Duration::ZERO;
    let mut served = 0;
    for _ in 0..20 {
        let t = Instant::now();
        let r = authprobe::probe::attempt::run(&good, &spec).await;
        worst = worst.max(t.elapsed());
        served += usize::from(r.succeeded);
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut streamed = 0;
    let mut longest = Duration::ZERO;
    for a in attackers {
        let (sent, took) = a.await.unwrap_or_default();
        streamed += sent;
        longest = longest.max(took);
    }
    println!(
        "emulator: 64 malformed-length connections streamed {:.1} MiB in all, the last cut off after {} ms; good clients served {served}/20, slowest {} ms; peak RSS {:.1} MiB (before the attack {:.1} MiB)",
        streamed as f64 / 1048576.0,
        longest.as_millis(),
        worst.as_millis(),
        peak_rss_mib(),
        before
    );
    Ok(())
}

async fn probe_attack(frame: &'static [u8]) -> Result<(), Box<dyn std::error::Error>> {
    let ca = authprobe::emulator::certs::Ca::generate("bench CA")?;
    let id = ca.issue(&[ENDPOINT.to_owned()])?;
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(id.chain, id.key)?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(cfg));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut head = Vec::new();
                let mut b = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut b).await {
                        Ok(n) if n > 0 => head.extend_from_slice(&b[..n]),
                        _ => return,
                    }
                }
                let text = String::from_utf8_lossy(&head).into_owned();
                let key = text.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: ")).unwrap_or("").trim();
                let accept = tokio_tungstenite::tungstenite::handshake::derive_accept_key(key.as_bytes());
                let answer = format!(
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\nSec-WebSocket-Protocol: mqtt\r\n\r\n"
                );
                let _ = tls.write_all(answer.as_bytes()).await;
                let burst: Vec<u8> = frame.iter().copied().cycle().take(frame.len() * 8192).collect();
                let until = Instant::now() + Duration::from_secs(60);
                while Instant::now() < until && tls.write_all(&burst).await.is_ok() {}
            });
        }
    });
    let mut p = plan(addr, &ca.pem(), Duration::from_secs(3));
    p.transports = vec![Transport::Wss];
    let spec = p.baseline().remove(0);
    let before = peak_rss_mib();
    let t = Instant::now();
    let r = authprobe::probe::attempt::run(&p, &spec).await;
    println!(
        "probe ({}): --timeout 3 s, the attempt took {} ms and ended {}/{}; peak RSS {:.1} MiB (before {:.1} MiB)",
        if frame[0] == 0x89 { "endless pings" } else { "endless empty binary frames" },
        t.elapsed().as_millis(),
        r.outcome.stage.as_str(),
        r.outcome.kind.as_str(),
        peak_rss_mib(),
        before
    );
    Ok(())
}

/// The scrubber's cost per byte on the inputs of issue 21 (a username of short `a=%2Bxyz` parameters,
/// each a secret; a text of one repeated short secret; secrets that are suffixes of each other),
/// at growing sizes: linear means the ns/byte column stays flat as the size grows.
fn scrubber() {
    use authprobe::secret::Scrubber;
    println!("{:<28} {:>9} {:>7} {:>10}", "input", "bytes", "forms", "ns/byte");
    for kb in [4usize, 16, 64, 256] {
        let n = kb * 1024;
        // 1. Short parameters, every value registered (the emulator's guessed secrets).
        let mut s = Scrubber::new(false);
        let mut text = String::new();
        let mut i = 0;
        while text.len() < n {
            let v = format!("+x{i}");
            if s.len() < 900 {
                s.add(&v);
            }
            text.push_str(&format!("a=%2Bx{i}&"));
            i += 1;
        }
        row("many short parameters", &s, &text);
        // 2. One short secret repeated.
        let mut s = Scrubber::new(false);
        s.add("a");
        row("one secret repeated", &s, &"a&".repeat(n / 2));
        // 3. Secrets that are suffixes of each other (many matches end at every byte).
        let mut s = Scrubber::new(false);
        for k in 1..=64 {
            s.add(&"z".repeat(k));
        }
        row("64 nested suffixes", &s, &"z".repeat(n));
    }
}

fn row(name: &str, s: &authprobe::secret::Scrubber, text: &str) {
    let runs = 5;
    let started = Instant::now();
    for _ in 0..runs {
        std::hint::black_box(s.scrub(std::hint::black_box(text)));
    }
    let ns = started.elapsed().as_nanos() as f64 / runs as f64 / text.len() as f64;
    println!("{name:<28} {:>9} {:>7} {ns:>10.1}", text.len(), s.len());
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match std::env::args().nth(1).as_deref() {
        Some("emulator") => emulator_attack().await,
        Some("probe") => probe_attack(&[0x89, 0x00]).await,
        Some("probe-empty") => probe_attack(&[0x82, 0x00]).await,
        Some("scrubber") => {
            scrubber();
            Ok(())
        }
        _ => Err("usage: bench_hostile emulator|probe|probe-empty|scrubber".into()),
    }
}
