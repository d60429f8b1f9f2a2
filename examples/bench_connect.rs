//! Benchmark: the emulator's cost per connect and per held connection, side by side with mosquitto 2.x.
//!
//! Both servers present the same RSA-2048 certificate (as IoT Core's ATS endpoints do), both set
//! TCP_NODELAY, and both are driven by the same load client (this program: tokio + rustls), which
//! connects, handshakes, sends one MQTT 3.1.1 CONNECT with a custom-auth username (the emulator's
//! built-in authorizer allows it; mosquitto runs with `allow_anonymous true`), reads the CONNACK, sends
//! DISCONNECT and closes, in a loop, from 1, 8 or 32 concurrent clients. Rows: TLS 1.3 full handshake,
//! TLS 1.3 resumed (tickets), TLS 1.2 full, TLS 1.2 resumed (session IDs). For each row the two
//! servers run in interleaved pairs (emulator, mosquitto, emulator, …) and the medians are compared:
//! the server's CPU per connect (utime + stime of the whole process, from /proc) and the connects a
//! second the client completed. Then each holds 2,000 idle connections (CONNACK received, keep-alive
//! 1,200 s) and its resident memory growth per connection is compared.
//!
//! Run: `cargo run --release --example bench_connect -- [--emulator PATH] [--rounds N] [--secs S]
//! [--clients 1,8,32] [--rows 13full,13resumed,12full,12resumed] [--hold N]` (needs `mosquitto` and
//! `openssl` on PATH; default emulator: target/release/authprobe). `--emulator A --against B` compares
//! two emulator builds instead of the emulator and mosquitto.

use bytes::BytesMut;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::{BufRead as _, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const USERNAME: &str = "?x-amz-customauthorizer-name=MyAuthorizer&token=bench-token";

#[derive(Clone, Copy, Debug, PartialEq)]
enum Row {
    Tls13Full,
    Tls13Resumed,
    Tls12Full,
    Tls12Resumed,
}

impl Row {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "13full" => Self::Tls13Full,
            "13resumed" => Self::Tls13Resumed,
            "12full" => Self::Tls12Full,
            "12resumed" => Self::Tls12Resumed,
            _ => return None,
        })
    }
    fn name(self) -> &'static str {
        match self {
            Self::Tls13Full => "TLS 1.3 full",
            Self::Tls13Resumed => "TLS 1.3 resumed",
            Self::Tls12Full => "TLS 1.2 full",
            Self::Tls12Resumed => "TLS 1.2 resumed",
        }
    }
    fn client(self, roots: &rustls::RootCertStore) -> Arc<rustls::ClientConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions: &[&rustls::SupportedProtocolVersion] = match self {
            Self::Tls13Full | Self::Tls13Resumed => &[&rustls::version::TLS13],
            Self::Tls12Full | Self::Tls12Resumed => &[&rustls::version::TLS12],
        };
        let mut c = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .expect("versions")
            .with_root_certificates(roots.clone())
            .with_no_client_auth();
        c.alpn_protocols = vec![b"mqtt".to_vec()];
        if matches!(self, Self::Tls13Full | Self::Tls12Full) {
            c.resumption = rustls::client::Resumption::disabled();
        } else {
            c.resumption = rustls::client::Resumption::in_memory_sessions(1024);
        }
        Arc::new(c)
    }
}

/// A server under test: its process and address.
struct Server {
    name: String,
    child: Child,
    addr: SocketAddr,
}

impl Server {
    fn cpu_ticks(&self) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).unwrap_or_default();
        // Fields after the command name (which may hold spaces) start at ") ".
        let rest = stat.rsplit_once(") ").map_or("", |(_, r)| r);
        let f: Vec<&str> = rest.split(' ').collect();
        // utime and stime are fields 14 and 15 of the whole line, 12 and 13 after the name.
        f.get(11).and_then(|u| u.parse::<u64>().ok()).unwrap_or(0)
            + f.get(12).and_then(|s| s.parse::<u64>().ok()).unwrap_or(0)
    }
    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

fn start_emulator(bin: &Path, dir: &Path, label: &str) -> Server {
    let mut child = Command::new(bin)
        .args(["emulate", "-q", "--listen", "127.0.0.1:0", "--allow-token", "bench-token"])
        .arg("--cert")
        .arg(dir.join("server.pem"))
        .arg("--key")
        .arg(dir.join("server.key"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the emulator");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line).expect("the listening line");
    let addr = line
        .split_whitespace()
        .find_map(|w| w.trim_end_matches([',', '.']).parse::<SocketAddr>().ok())
        .unwrap_or_else(|| panic!("no address in the emulator's first line: {line}"));
    Server { name: label.to_owned(), child, addr }
}

fn start_mosquitto(dir: &Path) -> Server {
    let port = free_port();
    let conf = dir.join("mosquitto.conf");
    std::fs::write(
        &conf,
        format!(
            "listener {port} 127.0.0.1\ncertfile {d}/server.pem\nkeyfile {d}/server.key\nallow_anonymous true\n\
             set_tcp_nodelay true\npersistence false\nlog_type none\nmax_keepalive 1200\nuser root\n",
            d = dir.display()
        ),
    )
    .expect("write mosquitto.conf");
    let child = Command::new("mosquitto")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start mosquitto (apt-get install mosquitto)");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().expect("address");
    // mosquitto prints nothing with log_type none: wait until it accepts (bounded). `user root`: as root
    // it would otherwise switch to the `mosquitto` user, who cannot read the private temporary directory.
    let until = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < until, "mosquitto did not listen on {addr}");
        std::thread::sleep(Duration::from_millis(20));
    }
    Server { name: "mosquitto".into(), child, addr }
}

fn certificates(dir: &Path) {
    let run = |args: &[&str]| {
        let ok =
            Command::new("openssl").args(args).current_dir(dir).stdout(Stdio::null()).stderr(Stdio::null()).status();
        assert!(ok.is_ok_and(|s| s.success()), "openssl {args:?} failed");
    };
    std::fs::write(dir.join("san.ext"), "subjectAltName=DNS:localhost\n").expect("write san.ext");
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-subj",
        "/CN=bench CA",
        "-days",
        "2",
    ]);
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=localhost",
    ]);
    run(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "2",
        "-extfile",
        "san.ext",
    ]);
}

fn connect_packet(client_id: &str) -> Vec<u8> {
    let mut c = rumqttc::mqttbytes::v4::Connect::new(client_id);
    c.keep_alive = 1200;
    c.set_login(USERNAME, "");
    let mut buf = BytesMut::new();
    c.write(&mut buf).expect("a CONNECT");
    buf.to_vec()
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// One connect: TCP, TLS, CONNECT → CONNACK (accepted). Returns the open stream.
async fn connect_once(
    connector: &tokio_rustls::TlsConnector,
    addr: SocketAddr,
    client_id: &str,
) -> std::io::Result<Tls> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").expect("name");
    let mut tls = connector.connect(name, tcp).await?;
    tls.write_all(&connect_packet(client_id)).await?;
    let mut connack = [0u8; 4];
    tls.read_exact(&mut connack).await?;
    if connack[0] != 0x20 || connack[3] != 0 {
        return Err(std::io::Error::other(format!("refused: CONNACK {connack:02x?}")));
    }
    Ok(tls)
}

/// Connects in a loop from `clients` tasks for `secs`; returns the connects completed and how many of
/// them resumed a TLS session.
async fn load(addr: SocketAddr, config: Arc<rustls::ClientConfig>, clients: usize, secs: f64) -> (u64, u64) {
    let done = Arc::new(AtomicU64::new(0));
    let resumed = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let connector = tokio_rustls::TlsConnector::from(config.clone());
        let done = done.clone();
        let resumed = resumed.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < until {
                let id = format!("bench-{c}-{n}");
                n += 1;
                match tokio::time::timeout(Duration::from_secs(10), connect_once(&connector, addr, &id)).await {
                    Ok(Ok(mut tls)) => {
                        if tls.get_ref().1.handshake_kind() == Some(rustls::HandshakeKind::Resumed) {
                            resumed.fetch_add(1, Ordering::Relaxed);
                        }
                        let _ = tls.write_all(&[0xe0, 0x00]).await;
                        let _ = tls.shutdown().await;
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(Err(e)) => panic!("connect {id}: {e}"),
                    Err(_) => panic!("connect {id}: no CONNACK within 10 s"),
                }
            }
        }));
    }
    for t in tasks {
        t.await.expect("a load client");
    }
    (done.load(Ordering::Relaxed), resumed.load(Ordering::Relaxed))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn raise_open_files() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: plain libc calls on a valid, owned struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 {
            lim.rlim_cur = lim.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1).cloned())
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    raise_open_files();
    let rounds: usize = arg("--rounds").map_or(3, |r| r.parse().expect("--rounds N"));
    let secs: f64 = arg("--secs").map_or(3.0, |s| s.parse().expect("--secs S"));
    let hold: usize = arg("--hold").map_or(2_000, |h| h.parse().expect("--hold N"));
    let clients: Vec<usize> = arg("--clients")
        .unwrap_or_else(|| "1,8,32".into())
        .split(',')
        .map(|c| c.parse().expect("--clients 1,8,32"))
        .collect();
    let rows: Vec<Row> = arg("--rows")
        .unwrap_or_else(|| "13full,13resumed,12full,12resumed".into())
        .split(',')
        .map(|r| Row::parse(r).expect("--rows 13full,13resumed,12full,12resumed"))
        .collect();
    let emulator = PathBuf::from(arg("--emulator").unwrap_or_else(|| "target/release/authprobe".into()));
    let against = arg("--against").map(PathBuf::from);

    let dir = tempfile::tempdir().expect("a temporary directory");
    certificates(dir.path());
    let ca = std::fs::read(dir.path().join("ca.pem")).expect("ca.pem");
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(&ca) {
        roots.add(c.expect("a CA certificate")).expect("a usable CA");
    }
    let servers: Vec<Server> = vec![
        start_emulator(&emulator, dir.path(), "emulator"),
        match &against {
            Some(other) => start_emulator(other, dir.path(), "other emulator"),
            None => start_mosquitto(dir.path()),
        },
    ];
    let tick = 1_000_000.0 / f64::from(u32::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100));
    println!(
        "{} vs {}: {rounds} interleaved rounds of {secs} s per row, RSA-2048, load client in-process (2 worker threads)",
        servers[0].name, servers[1].name
    );
    println!(
        "{:<16} {:>7} | {:>12} {:>12} {:>6} | {:>11} {:>11} {:>6}",
        "row", "clients", "µs CPU/conn", "", "ratio", "connects/s", "", "ratio"
    );
    for row in &rows {
        let config = row.client(&roots);
        for &n in &clients {
            let mut cpu = [Vec::new(), Vec::new()];
            let mut rate = [Vec::new(), Vec::new()];
            // Warm-up (tickets, caches) on each, not measured.
            for s in &servers {
                load(s.addr, config.clone(), n, 0.3).await;
            }
            for _ in 0..rounds {
                for (i, s) in servers.iter().enumerate() {
                    let before = s.cpu_ticks();
                    let t = Instant::now();
                    let (done, resumed) = load(s.addr, config.clone(), n, secs).await;
                    if matches!(row, Row::Tls13Resumed | Row::Tls12Resumed) && resumed * 10 < done * 9 {
                        println!("  note: {} resumed only {resumed} of {done} sessions", s.name);
                    }
                    let wall = t.elapsed().as_secs_f64();
                    let used = (s.cpu_ticks() - before) as f64 * tick;
                    cpu[i].push(used / done.max(1) as f64);
                    rate[i].push(done as f64 / wall);
                }
            }
            let (c0, c1) = (median(&mut cpu[0]), median(&mut cpu[1]));
            let (r0, r1) = (median(&mut rate[0]), median(&mut rate[1]));
            println!(
                "{:<16} {:>7} | {:>12.0} {:>12.0} {:>6.2} | {:>11.0} {:>11.0} {:>6.2}",
                row.name(),
                n,
                c0,
                c1,
                c0 / c1,
                r0,
                r1,
                r0 / r1
            );
        }
    }
    println!(
        "(columns: {} then {}; ratio = first / second: CPU lower is better, connects/s higher)",
        servers[0].name, servers[1].name
    );

    if hold > 0 {
        let config = Row::Tls13Full.client(&roots);
        let mut per = Vec::new();
        for s in &servers {
            let before = s.rss_kib();
            let connector = tokio_rustls::TlsConnector::from(config.clone());
            let mut held = Vec::with_capacity(hold);
            for i in 0..hold {
                held.push(connect_once(&connector, s.addr, &format!("held-{i}")).await.expect("a held connection"));
            }
            // Let the server settle (its buffers and tasks after the CONNACK), bounded.
            tokio::time::sleep(Duration::from_millis(500)).await;
            let after = s.rss_kib();
            let kib = (after.saturating_sub(before)) as f64 / hold as f64;
            println!("{}: {hold} held connections, RSS {before} → {after} KiB, {kib:.1} KiB per connection", s.name);
            per.push(kib);
            drop(held);
        }
        println!("memory per held connection ratio {:.2}", per[0] / per[1]);
    }
}
