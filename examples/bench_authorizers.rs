//! Benchmark: connects per second and server CPU per connect, for each way the emulator runs the
//! authorizer — the built-in function, the Python handler behind the Runtime API (`awslambdaric`),
//! the same Python logic as `--authorizer-command` (one process per connect) — and, side by side on the
//! same load generator, mosquitto (TLS, anonymous) as a reference broker.
//!
//! Each server runs as its own process (`authprobe emulate`, `mosquitto`); its CPU is read from
//! `/proc/<pid>/stat` (user + system, plus that of children it waited for, plus its live workers), so
//! the load generator's own CPU is not counted. For the built-in function and mosquitto, a second row
//! gives resident memory per held connection: 1,000 clients connect and stay, and the server's
//! `VmRSS` is read before and after.
//!
//! Run: `cargo run --release --example bench_authorizers -- [SECONDS] [CONCURRENCY]` (default 5 s, 8);
//! `AUTHPROBE_BIN=path` measures another build of the binary (e.g. the `dist` profile's);
//! `BENCH_ROWS=built-in,mosquitto` runs only the rows whose names contain those words.
//! Needs `.venv` with awslambdaric (`.ci/run` makes it) and mosquitto; what is missing is skipped.

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use std::io::BufRead as _;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const ENDPOINT: &str = "abc123-ats.iot.us-east-1.amazonaws.com";

/// CPU seconds of `pid` and every live descendant, plus children they waited for.
fn cpu_seconds(pid: u32) -> f64 {
    let tick = 100.0; // USER_HZ on Linux
    let mut total = 0.0;
    let mut stack = vec![pid];
    let all: Vec<(u32, u32, f64)> = std::fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let rest = stat.rsplit_once(')')?.1;
            let f: Vec<&str> = rest.split_whitespace().collect();
            let ppid = f.get(1)?.parse().ok()?;
            let t: f64 = [11, 12, 13, 14].iter().filter_map(|&i| f.get(i)?.parse::<f64>().ok()).sum();
            Some((p, ppid, t / tick))
        })
        .collect();
    while let Some(p) = stack.pop() {
        for &(child, parent, t) in &all {
            if child == p {
                total += t;
            }
            if parent == p {
                stack.push(child);
            }
        }
    }
    total
}

struct Server {
    child: Child,
    port: u16,
    ca_pem: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn emulate(dir: &std::path::Path, function: &[&str]) -> Server {
    let ca = dir.join("ca.pem");
    // AUTHPROBE_BIN, else the binary beside this example's directory (target/release/authprobe).
    let exe = std::env::current_exe().unwrap();
    let bin = std::env::var_os("AUTHPROBE_BIN")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| exe.parent().and_then(|d| d.parent()).unwrap().join("authprobe"));
    assert!(bin.exists(), "{} missing: run `cargo build --release` first", bin.display());
    let mut child = Command::new(bin)
        .args(["emulate", "--listen", "127.0.0.1:0", "--default-authorizer", "MyAuthorizer", "--write-ca"])
        .arg(&ca)
        .args(function)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("authprobe emulate");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let port = first.rsplit(':').next().unwrap().parse().unwrap();
    std::thread::spawn(move || for _ in lines {});
    Server { child, port, ca_pem: std::fs::read_to_string(ca).unwrap() }
}

/// mosquitto with its own key pair for the endpoint's name (openssl), TLS, anonymous.
fn mosquitto(dir: &std::path::Path) -> Option<Server> {
    let run = |args: &[&str]| {
        Command::new("openssl").args(args).current_dir(dir).output().ok().filter(|o| o.status.success())
    };
    run(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "mca.key",
        "-out",
        "mca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=bench CA",
    ])?;
    run(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "m.key",
        "-out",
        "m.csr",
        "-subj",
        &format!("/CN={ENDPOINT}"),
    ])?;
    std::fs::write(dir.join("ext"), format!("subjectAltName=DNS:{ENDPOINT}\n")).ok()?;
    run(&[
        "x509",
        "-req",
        "-in",
        "m.csr",
        "-CA",
        "mca.pem",
        "-CAkey",
        "mca.key",
        "-CAcreateserial",
        "-out",
        "m.pem",
        "-days",
        "2",
        "-extfile",
        "ext",
    ])?;
    // mosquitto started as root drops to its own user, which must read the key.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(dir.join("m.key"), std::fs::Permissions::from_mode(0o644)).ok()?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).ok()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0").ok()?.local_addr().ok()?.port();
    std::fs::write(
        dir.join("mosquitto.conf"),
        format!(
            "listener {port} 127.0.0.1\ncafile {d}/mca.pem\ncertfile {d}/m.pem\nkeyfile {d}/m.key\nallow_anonymous true\nmax_keepalive 60\n",
            d = dir.display()
        ),
    )
    .ok()?;
    let mut child = Command::new("mosquitto")
        .arg("-c")
        .arg(dir.join("mosquitto.conf"))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .ok()?;
    let mut lines = std::io::BufReader::new(child.stderr.take()?).lines();
    for _ in 0..20 {
        if lines.next()?.ok()?.contains("running") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    Some(Server { child, port, ca_pem: std::fs::read_to_string(dir.join("mca.pem")).ok()? })
}

fn connector(ca_pem: &str) -> tokio_rustls::TlsConnector {
    let mut store = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca_pem.as_bytes()).flatten() {
        let _ = store.add(c);
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(store)
        .with_no_client_auth();
    cfg.alpn_protocols = vec![b"mqtt".to_vec()];
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

/// An MQTT 3.1.1 CONNECT with a username (no password).
fn connect_packet(client_id: &str, username: &str) -> Vec<u8> {
    let mut body = vec![0, 4, b'M', b'Q', b'T', b'T', 4, 0x82, 0, 60];
    for s in [client_id, username] {
        body.extend_from_slice(&(s.len() as u16).to_be_bytes());
        body.extend_from_slice(s.as_bytes());
    }
    let mut p = vec![0x10];
    let mut len = body.len();
    loop {
        let mut b = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            b |= 0x80;
        }
        p.push(b);
        if len == 0 {
            break;
        }
    }
    p.extend(body);
    p
}

/// Connects as fast as `concurrency` clients can for `secs`; returns (accepted connects, failures).
async fn load(port: u16, ca_pem: &str, secs: f64, concurrency: usize) -> (u64, u64) {
    let tls = connector(ca_pem);
    let ok = Arc::new(AtomicU64::new(0));
    let bad = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = tokio::task::JoinSet::new();
    for w in 0..concurrency {
        let (tls, ok, bad) = (tls.clone(), ok.clone(), bad.clone());
        tasks.spawn(async move {
            let mut n = 0u64;
            while Instant::now() < until {
                n += 1;
                let work = async {
                    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
                    let name = ServerName::try_from(ENDPOINT).ok()?;
                    let mut s = tls.connect(name, tcp).await.ok()?;
                    s.write_all(&connect_packet(&format!("bench-{w}-{n}"), "?token=allow-me")).await.ok()?;
                    let mut ack = [0u8; 4];
                    s.read_exact(&mut ack).await.ok()?;
                    let _ = s.write_all(&[0xe0, 0]).await;
                    (ack[0] == 0x20 && ack[3] == 0).then_some(())
                };
                match tokio::time::timeout(Duration::from_secs(10), work).await {
                    Ok(Some(())) => ok.fetch_add(1, Ordering::Relaxed),
                    _ => bad.fetch_add(1, Ordering::Relaxed),
                };
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    (ok.load(Ordering::Relaxed), bad.load(Ordering::Relaxed))
}

async fn measure(name: &str, server: &Server, secs: f64, concurrency: usize) {
    if !wanted(name) {
        return;
    }
    // Warm-up: TLS session state, handler workers importing their modules.
    let _ = load(server.port, &server.ca_pem, 0.5, 2).await;
    let cpu0 = cpu_seconds(server.child.id());
    let started = Instant::now();
    let (ok, bad) = load(server.port, &server.ca_pem, secs, concurrency).await;
    let wall = started.elapsed().as_secs_f64();
    let cpu = cpu_seconds(server.child.id()) - cpu0;
    let rate = ok as f64 / wall;
    let per = if ok > 0 { cpu * 1000.0 / ok as f64 } else { f64::NAN };
    println!("{name:<34} {rate:>9.0} connects/s  {per:>7.3} ms CPU/connect  ({ok} ok, {bad} failed)");
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let secs: f64 = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(5.0);
    let concurrency: usize = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(8);
    let dir = tempfile_dir();
    let root = env!("CARGO_MANIFEST_DIR");
    let python = std::env::var("AUTHPROBE_PYTHON").unwrap_or_else(|_| format!("{root}/.venv/bin/python"));
    println!("{secs} s per row, {concurrency} concurrent clients, TLS + MQTT 3.1.1 CONNECT/CONNACK each");
    const BUILTIN: &str = "emulator, built-in function";
    const HANDLER: &str = "emulator, Python handler (Runtime API)";
    const COMMAND: &str = "emulator, --authorizer-command (Python)";
    const MOSQUITTO: &str = "mosquitto (TLS, anonymous)";
    if wanted(BUILTIN) {
        let builtin = emulate(&dir, &["--allow-token", "allow-me"]);
        measure(BUILTIN, &builtin, secs, concurrency).await;
        held(BUILTIN, &builtin, HELD).await;
    }
    let have_ric = Command::new(&python).args(["-c", "import awslambdaric"]).output().is_ok_and(|o| o.status.success());
    if wanted(HANDLER) && have_ric {
        let cmd = format!("cd {root}/examples/lambda/python && exec {python} -m awslambdaric handler.lambda_handler");
        let handler = emulate(&dir, &["--authorizer-handler", &cmd, "--authorizer-workers", "4"]);
        measure(HANDLER, &handler, secs, concurrency).await;
    } else if wanted(HANDLER) {
        println!("{HANDLER}: skipped ({python} has no awslambdaric)");
    }
    if wanted(COMMAND) {
        let script = format!("{python} {root}/examples/authorizer.py");
        let command = emulate(&dir, &["--authorizer-command", &script]);
        measure(COMMAND, &command, secs, concurrency).await;
    }
    if wanted(MOSQUITTO) {
        match mosquitto(&dir) {
            Some(m) => {
                measure(MOSQUITTO, &m, secs, concurrency).await;
                held(MOSQUITTO, &m, HELD).await;
            }
            None => println!("{MOSQUITTO}: skipped (not installed, or openssl missing)"),
        }
    }
}

/// Connections held open at once for the memory row.
const HELD: usize = 1000;

/// Resident memory of `pid` in KiB (`VmRSS`).
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Memory per held connection: `n` clients connect (TLS, CONNECT, CONNACK) and stay; the server's
/// resident memory is read before and once every CONNACK has arrived. Run after `measure`, so both
/// servers' allocators are already warm.
async fn held(name: &str, server: &Server, n: usize) {
    let tls = connector(&server.ca_pem);
    let before = rss_kib(server.child.id());
    let (release, _) = tokio::sync::broadcast::channel::<()>(1);
    let (up_tx, mut up_rx) = tokio::sync::mpsc::channel::<bool>(n);
    let gate = Arc::new(tokio::sync::Semaphore::new(32));
    for i in 0..n {
        let (tls, up, gate, port) = (tls.clone(), up_tx.clone(), gate.clone(), server.port);
        let mut release = release.subscribe();
        tokio::spawn(async move {
            let permit = gate.acquire_owned().await.ok();
            let work = async {
                let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
                let mut s = tls.connect(ServerName::try_from(ENDPOINT).ok()?, tcp).await.ok()?;
                s.write_all(&connect_packet(&format!("held-{i}"), "?token=allow-me")).await.ok()?;
                let mut ack = [0u8; 4];
                s.read_exact(&mut ack).await.ok()?;
                (ack[3] == 0).then_some(s)
            };
            let stream = tokio::time::timeout(Duration::from_secs(10), work).await.ok().flatten();
            drop(permit);
            let _ = up.send(stream.is_some()).await;
            if let Some(mut s) = stream {
                let _ = release.recv().await;
                let _ = s.write_all(&[0xe0, 0]).await;
            }
        });
    }
    drop(up_tx);
    let mut ok = 0;
    for _ in 0..n {
        if up_rx.recv().await == Some(true) {
            ok += 1;
        }
    }
    let after = rss_kib(server.child.id());
    let _ = release.send(());
    let per = (after.saturating_sub(before)) as f64 / ok.max(1) as f64;
    println!("{name:<34} {per:>9.1} KiB resident per held connection ({ok} held; {before} -> {after} KiB)");
}

/// `BENCH_ROWS=built-in,mosquitto` runs only the rows whose name contains one of the words.
fn wanted(name: &str) -> bool {
    match std::env::var("BENCH_ROWS") {
        Ok(rows) if !rows.is_empty() => rows.split(',').any(|r| name.contains(r.trim())),
        _ => true,
    }
}

fn tempfile_dir() -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("authprobe-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}
