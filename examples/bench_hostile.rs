//! Benchmark: the two resource attacks of the hostile-input issue, measured.
//!
//! - `emulator`: 64 connections that send a CONNECT with a malformed remaining length
//!   (`10 80 80 80 80`) and keep streaming bytes, while a good client connects every 200 ms. Target:
//!   peak RSS under 64 MB; every good client served within 100 ms.
//! - `probe`: a WebSocket server that answers the upgrade, then floods ping frames (or, with
//!   `probe-empty`, empty binary frames) and never reads. Target: the attempt ends within `--timeout`
//!   (3 s) plus one second, peak RSS under 32 MB.
//!
//! - `half-sent`: 4,096 connections each send half of a 128 KiB CONNECT and hold it. Target: the
//!   emulator's peak RSS under 128 MiB (the bytes before authentication share one budget).
//! - `exhaustion`: while 5,000 idle TCP connections (re-opened as they are shed), 1,000 half-sent
//!   CONNECTs, 500 half-sent WebSocket frames and two senders of a 64 KB many-parameter CONNECT every
//!   0.2 s press on the emulator, a good client connects every 50 ms. Target: its connect latency
//!   (TCP, TLS, CONNECT, CONNACK) p99 under 100 ms. `exhaustion quiet` times the good client
//!   alone; `exhaustion reopen` re-opens each shed idle connection a second later.
//!
//! In these two modes the emulator runs in a child process (this program with `serve`), so its peak
//! RSS is its own, not the attackers'.
//!
//! Run: `cargo run --release --example bench_hostile -- emulator|probe|probe-empty|scrubber|half-sent|exhaustion`.
//! Each mode runs in its own process, so the peak RSS (VmHWM) is that mode's alone.

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
    peak_rss_of("self")
}

/// Peak resident set size of process `pid` (or `self`) so far, in MiB.
fn peak_rss_of(pid: &str) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
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
    plan_over(addr, ca_pem, timeout, Transport::Mqtt)
}

fn plan_over(addr: std::net::SocketAddr, ca_pem: &str, timeout: Duration, transport: Transport) -> ProbePlan {
    let credentials = Credentials {
        authorizer: Some("A".into()),
        token_key_name: "token".into(),
        token: Some("good".into()),
        ..Credentials::default()
    };
    ProbePlan::builder(ENDPOINT, credentials)
        .connect_to(&addr.ip().to_string(), Some(addr.port()))
        .transports(vec![transport])
        .client_id("bench")
        .trust(Trust::Roots(roots(ca_pem)))
        .timeout(timeout)
        .follow_up(false)
        .build()
        .expect("the benchmark's plan is valid")
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
    let p = plan_over(addr, &ca.pem(), Duration::from_secs(3), Transport::Wss);
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
        Some("serve") => serve().await,
        Some("half-sent") => half_sent().await,
        Some("exhaustion") => {
            let how = std::env::args().nth(2);
            exhaustion(how.as_deref() == Some("reopen"), how.as_deref() == Some("quiet")).await
        }
        _ => Err("usage: bench_hostile emulator|probe|probe-empty|scrubber|half-sent|exhaustion".into()),
    }
}

/// The open-file soft limit raised to the hard one, as `authprobe emulate` does.
fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write the struct given, nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// Child mode: an emulator with default limits allowing the token `good`; prints its address and CA,
/// and runs until its standard input closes (the parent went).
async fn serve() -> Result<(), Box<dyn std::error::Error>> {
    raise_fd_limit();
    let mut cfg = EmulatorConfig::new(vec![ENDPOINT.into()])?;
    let mut a = Authorizer::new("A", "token");
    a.function = Function::Rules(vec![Rule::allow_all("good")]);
    cfg.authorizers.push(a);
    cfg.default_authorizer = Some("A".into());
    let ca = cfg.identity.ca_pem.clone().unwrap_or_default();
    let listener = emulator::listen("127.0.0.1:0".parse()?)?;
    println!("{}\n{ca}END", listener.local_addr()?);
    tokio::spawn(emulator::run(listener, cfg, std::future::pending()));
    tokio::task::spawn_blocking(|| {
        let mut sink = [0u8; 64];
        while std::io::Read::read(&mut std::io::stdin(), &mut sink).unwrap_or(0) > 0 {}
    })
    .await?;
    Ok(())
}

/// The emulator child: its process, address and CA.
struct Child {
    process: tokio::process::Child,
    addr: std::net::SocketAddr,
    ca: String,
}

async fn spawn_emulator() -> Result<Child, Box<dyn std::error::Error>> {
    use tokio::io::AsyncBufReadExt as _;
    let mut process = tokio::process::Command::new(std::env::current_exe()?)
        .arg("serve")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let mut lines = tokio::io::BufReader::new(process.stdout.take().ok_or("stdout")?).lines();
    let addr = lines.next_line().await?.ok_or("no address")?.parse()?;
    let mut ca = String::new();
    while let Some(line) = lines.next_line().await? {
        if line == "END" {
            break;
        }
        ca += &line;
        ca.push('\n');
    }
    Ok(Child { process, addr, ca })
}

/// A TLS connection to the emulator (SNI the endpoint, ALPN `alpn` or none).
async fn open(
    addr: std::net::SocketAddr,
    connector: &tokio_rustls::TlsConnector,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    // As device MQTT clients do: a CONNECT held back by Nagle's algorithm would time the client.
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from(ENDPOINT).expect("name");
    tokio::time::timeout(Duration::from_secs(15), connector.connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("handshake timed out"))?
}

/// Half of a CONNECT that announces `size` bytes: the fixed header and `size / 2` bytes.
fn half_connect(size: usize) -> Vec<u8> {
    let mut p = vec![0x10];
    let mut n = size;
    loop {
        let b = (n % 128) as u8;
        n /= 128;
        p.push(if n > 0 { b | 0x80 } else { b });
        if n == 0 {
            break;
        }
    }
    p.extend(std::iter::repeat_n(b'a', size / 2));
    p
}

async fn half_sent() -> Result<(), Box<dyn std::error::Error>> {
    raise_fd_limit();
    let child = spawn_emulator().await?;
    let pid = child.process.id().ok_or("pid")?.to_string();
    let before = peak_rss_of(&pid);
    let connector = client(&child.ca, b"mqtt");
    let packet = Arc::new(half_connect(128 * 1024));
    let mut held = tokio::task::JoinSet::new();
    let started = Instant::now();
    for _ in 0..4096 {
        let (connector, packet, addr) = (connector.clone(), packet.clone(), child.addr);
        held.spawn(async move {
            let Ok(mut s) = open(addr, &connector).await else { return 0 };
            if s.write_all(&packet).await.is_err() {
                return 0;
            }
            // Held until the emulator closes it (shed, or its request timeout).
            let mut b = [0u8; 16];
            let _ = tokio::time::timeout(Duration::from_secs(30), s.read(&mut b)).await;
            1
        });
        // Opening 4,096 TLS connections at once would measure the handshake queue, not the holding.
        tokio::task::yield_now().await;
    }
    let mut sent = 0;
    while let Some(r) = held.join_next().await {
        sent += r.unwrap_or(0);
    }
    println!(
        "half-sent: {sent}/4096 connections sent half of a 128 KiB CONNECT ({:.1} s); emulator peak RSS {:.1} MiB (at start {:.1} MiB)",
        started.elapsed().as_secs_f64(),
        peak_rss_of(&pid),
        before
    );
    Ok(())
}

/// A 64 KB CONNECT username of ~7,200 short query parameters (the quadratic case of issue 21).
fn many_parameters_connect() -> Vec<u8> {
    let mut user = String::from("x?x-amz-customauthorizer-name=A&token=bad");
    while user.len() < 64 * 1024 - 16 {
        user.push_str("&a=%2Bxyz");
    }
    let mut p = rumqttc::mqttbytes::v4::Connect::new("many");
    p.set_login(user, "");
    let mut buf = bytes::BytesMut::new();
    let _ = p.write(&mut buf);
    buf.to_vec()
}

async fn exhaustion(reopen: bool, quiet: bool) -> Result<(), Box<dyn std::error::Error>> {
    raise_fd_limit();
    let child = spawn_emulator().await?;
    let (addr, ca) = (child.addr, child.ca.clone());
    let until = Instant::now() + Duration::from_secs(25);
    let mut attacks = tokio::task::JoinSet::new();
    // 5,000 idle TCP connections; with `reopen`, each re-opened one second after the emulator sheds it.
    for _ in 0..5000 {
        attacks.spawn(async move {
            while Instant::now() < until {
                let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else { break };
                let mut b = [0u8; 1];
                let left = until.saturating_duration_since(Instant::now());
                if tokio::time::timeout(left, s.read(&mut b)).await.is_err() || !reopen {
                    break;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
    }
    let mqtt = client(&ca, b"mqtt");
    let half = Arc::new(half_connect(128 * 1024));
    for i in 0..1500 {
        let (connector, half) = (mqtt.clone(), half.clone());
        attacks.spawn(async move {
            let ws = i >= 1000;
            let Ok(mut s) = open(addr, &connector).await else { return };
            if ws {
                let head = format!(
                    "GET /mqtt HTTP/1.1\r\nHost: {ENDPOINT}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
                );
                let _ = s.write_all(head.as_bytes()).await;
                let _ = s.write_all(&[0x82, 0xff, 0, 0, 0, 0, 0, 2, 0, 0, 1, 2, 3, 4]).await;
                let _ = s.write_all(&half[8..]).await;
            } else {
                let _ = s.write_all(&half).await;
            }
            let mut b = [0u8; 16];
            let _ = tokio::time::timeout(until.saturating_duration_since(Instant::now()), s.read(&mut b)).await;
        });
    }
    let many = Arc::new(many_parameters_connect());
    for _ in 0..2 {
        let (connector, many) = (mqtt.clone(), many.clone());
        attacks.spawn(async move {
            while Instant::now() < until {
                let (connector, many) = (connector.clone(), many.clone());
                tokio::spawn(async move {
                    if let Ok(mut s) = open(addr, &connector).await {
                        let _ = s.write_all(&many).await;
                        let mut b = [0u8; 16];
                        let _ = tokio::time::timeout(Duration::from_secs(5), s.read(&mut b)).await;
                    }
                });
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }
    // Let the attacks build up, then time good clients (with `quiet`, no attack at all: the baseline).
    if quiet {
        attacks.abort_all();
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut good = rumqttc::mqttbytes::v4::Connect::new("good");
    good.set_login("x?x-amz-customauthorizer-name=A&token=good", "");
    let mut packet = bytes::BytesMut::new();
    good.write(&mut packet)?;
    let mut times = Vec::new();
    let mut failed = 0;
    for n in 0..300 {
        if Instant::now() + Duration::from_secs(1) > until {
            break;
        }
        let t = Instant::now();
        let ok = tokio::time::timeout(Duration::from_secs(10), async {
            let mut s = open(addr, &mqtt).await?;
            s.write_all(&packet).await?;
            let mut ack = [0u8; 4];
            s.read_exact(&mut ack).await?;
            Ok::<_, std::io::Error>(ack == [0x20, 2, 0, 0])
        })
        .await;
        match ok {
            Ok(Ok(true)) => times.push(t.elapsed()),
            _ => failed += 1,
        }
        let _ = n;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    times.sort();
    let pct =
        |p: f64| times.get(((times.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied().unwrap_or_default();
    let pid = child.process.id().map(|p| p.to_string()).unwrap_or_default();
    println!(
        "exhaustion: good clients {} served, {failed} failed; connect latency p50 {} ms, p99 {} ms, max {} ms; emulator peak RSS {:.1} MiB",
        times.len(),
        pct(0.5).as_micros() as f64 / 1000.0,
        pct(0.99).as_micros() as f64 / 1000.0,
        times.last().copied().unwrap_or_default().as_micros() as f64 / 1000.0,
        peak_rss_of(&pid)
    );
    attacks.abort_all();
    Ok(())
}
