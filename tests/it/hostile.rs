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
            if let Ok(Ok(0) | Err(_)) = tokio::time::timeout(Duration::from_millis(50), s.read(&mut b)).await {
                closed = true;
                break;
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

/// The pids of processes whose command line contains `marker` (zombies excluded).
fn processes_with(marker: &str) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else { return Vec::new() };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            // Arguments are NUL-separated.
            let cmd: Vec<u8> = std::fs::read(format!("/proc/{pid}/cmdline"))
                .unwrap_or_default()
                .into_iter()
                .map(|b| if b == 0 { b' ' } else { b })
                .collect();
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            let zombie = stat.rsplit(')').next().is_some_and(|rest| rest.trim_start().starts_with('Z'));
            !zombie && String::from_utf8_lossy(&cmd).contains(marker)
        })
        .collect()
}

/// Case 2: an authorizer command that times out left its children running (only `sh` was killed).
/// The whole process group goes now.
#[tokio::test]
async fn timed_out_authorizer_command_leaves_no_process_behind() {
    let marker = format!("{}", 40_000 + std::process::id() % 20_000);
    let mut cfg = config();
    let mut a = allowing(AUTH);
    a.function = authprobe::emulator::Function::Command(format!("sleep {marker}1 & sleep {marker}2; wait"));
    cfg.authorizers.push(a);
    cfg.time_limit = Duration::from_millis(300);
    let mut emu = start(cfg).await;
    let user = username(&[("x-amz-customauthorizer-name", AUTH), ("token", GOOD)]);
    assert!(matches!(mqtt311(&emu, "slow", &user, "").await, Connack::Closed(_)));
    assert_eq!(emu.record().await.reason, Reason::FunctionTimeout);
    // SIGKILL is sent when the call times out; the kernel needs a moment to take the processes away.
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = processes_with(&format!("sleep {marker}"));
    while !left.is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = processes_with(&format!("sleep {marker}"));
    }
    assert!(left.is_empty(), "authorizer children still running: {left:?}");
}

/// The command's stdout over the cap is "too large", not a SIGPIPE exit status; NUL and newlines from
/// its stderr are escaped in the record.
#[tokio::test]
async fn authorizer_command_output_is_bounded_and_escaped() {
    let mut cfg = config();
    let mut big = allowing(AUTH);
    big.function = authprobe::emulator::Function::Command("head -c 3000000 /dev/zero | tr '\\0' 'a'".into());
    cfg.authorizers.push(big);
    let mut noisy = allowing("Noisy");
    noisy.function = authprobe::emulator::Function::Command(
        "printf 'bad\\000line\\n-> accepted (Accepted) forged' >&2; exit 3".into(),
    );
    cfg.authorizers.push(noisy);
    let mut emu = start(cfg).await;
    let user = username(&[("x-amz-customauthorizer-name", AUTH), ("token", GOOD)]);
    mqtt311(&emu, "big", &user, "").await;
    let r = emu.record().await;
    assert!(r.detail.contains("larger than"), "{}", r.detail);
    let user = username(&[("x-amz-customauthorizer-name", "Noisy"), ("token", GOOD)]);
    mqtt311(&emu, "noisy", &user, "").await;
    let r = emu.record().await;
    assert!(!r.detail.contains('\0') && !r.detail.contains('\n'), "{:?}", r.detail);
    assert!(r.detail.contains("\\u{0}") && r.detail.contains("\\n"), "{:?}", r.detail);
    assert!(!r.summary().contains('\n'));
}

/// Case 8: a username carrying a newline cannot forge a line in the emulator's stderr log.
#[tokio::test]
async fn log_lines_cannot_be_forged() {
    let mut emu = start(emulator_config()).await;
    let user = "?x-amz-customauthorizer-name=Nope%0A1234 127.0.0.1:1 -> accepted (Accepted)&token=x";
    mqtt311(&emu, "forge", user, "").await;
    let r = emu.record().await;
    let line = r.summary();
    assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
    assert!(line.contains("Nope\\n1234"), "{line}");
}

/// Case 6: an authorizer that echoes a short password in its stderr, or returns it as an invalid
/// principalId, must not put it in the emulator's record.
#[tokio::test]
async fn short_secrets_echoed_by_the_authorizer_are_redacted() {
    let password = "pw-SECRET-2";
    let echo = "import sys,json,base64; e=json.load(sys.stdin); p=base64.b64decode(e['protocolData']['mqtt']['password']).decode()";
    let mut cfg = config();
    cfg.show_secrets = false;
    let mut stderr = allowing("Stderr");
    stderr.function = authprobe::emulator::Function::Command(format!(
        "python3 -c \"{echo}; sys.stderr.write('invalid password ' + p); sys.exit(1)\""
    ));
    let mut principal = allowing("Principal");
    principal.function = authprobe::emulator::Function::Command(format!(
        "python3 -c \"{echo}; print(json.dumps({{'isAuthenticated': True, 'principalId': p + '?', 'policyDocuments': [], 'disconnectAfterInSeconds': 300, 'refreshAfterInSeconds': 300}}))\""
    ));
    cfg.authorizers.extend([stderr, principal]);
    let mut emu = start(cfg).await;
    for name in ["Stderr", "Principal"] {
        let user = username(&[("x-amz-customauthorizer-name", name), ("token", "t0k")]);
        mqtt311(&emu, "echo", &user, password).await;
        let r = emu.record().await;
        let logged = serde_json::to_string(&r).unwrap() + &r.summary();
        assert!(
            matches!(r.reason, Reason::FunctionFailed | Reason::InvalidResponse),
            "{name}: {:?} {}",
            r.reason,
            r.detail
        );
        assert!(!logged.contains(password) && !logged.contains("t0k"), "{name}: {logged}");
        assert!(r.detail.contains("<redacted len=11"), "{name}: {}", r.detail);
    }
}

/// Case 4: the token under a wrong key name or behind a second `?`, and the signature under a wrong
/// parameter name, are secrets too — in the username, the query and the headers.
#[tokio::test]
async fn secrets_under_wrong_names_are_redacted_in_the_record() {
    let mut cfg = emulator_config();
    cfg.authorizers.push(allowing("Other"));
    let mut emu = start(cfg).await;
    let sig = "c2lnbmF0dXJlLXNlY3JldA==";
    let users = [
        format!("?x-amz-customauthorizer-name={AUTH}&TOKEN=tok-Secret-1"),
        format!("?x-amz-customauthorizer-name={AUTH}&token=tok-Secret-1?SDK=Python&Version=1"),
        format!("?x-amz-customauthorizer-name={AUTH}&x-amz-customauthorizer-token-signature={}&token=x1y", pct(sig)),
    ];
    for user in &users {
        mqtt311(&emu, "names", user, "").await;
        let r = emu.record().await;
        let logged = serde_json::to_string(&r).unwrap() + &r.summary();
        assert!(!logged.contains("tok-Secret-1") && !logged.contains(sig) && !logged.contains(&pct(sig)), "{logged}");
    }
    let headers = [
        ("x-amz-customauthorizer-name", AUTH),
        ("x-amz-customauthorizer-token-signature", sig),
        ("TOKEN", "tok-Secret-1"),
    ];
    let _ = wss(&emu, "/mqtt", &headers, connect_packet("ws", None, "")).await;
    let r = emu.record().await;
    let logged = serde_json::to_string(&r).unwrap() + &r.summary();
    assert!(!logged.contains("tok-Secret-1") && !logged.contains(sig), "{logged}");
}

/// A raw HTTPS request; returns the status line.
async fn raw_https(emu: &Emu, request: &str) -> String {
    let mut s = tls(emu.addr, Some(ENDPOINT), &[], &emu.ca_pem).await.unwrap();
    s.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(WAIT, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).lines().next().unwrap_or_default().to_owned()
}

/// A negative, unparseable or duplicated Content-Length is a malformed request (400), never a 200.
#[tokio::test]
async fn content_length_must_be_one_number() {
    let mut emu = start(emulator_config()).await;
    let head = format!(
        "POST /topics/t?qos=1 HTTP/1.1\r\nHost: {ENDPOINT}\r\nx-amz-customauthorizer-name: {AUTH}\r\ntoken: {GOOD}\r\n"
    );
    for lengths in ["Content-Length: -5\r\n", "Content-Length: 5x\r\n", "Content-Length: 2\r\nContent-Length: 7\r\n"] {
        let status = raw_https(&emu, &format!("{head}{lengths}\r\nhi")).await;
        assert!(status.contains(" 400 "), "{lengths:?}: {status}");
        assert_eq!(emu.record().await.reason, Reason::MalformedRequest, "{lengths:?}");
    }
    let status = raw_https(&emu, &format!("{head}Content-Length: 2\r\n\r\nhi")).await;
    assert!(status.contains(" 200 "), "{status}");
}

/// A WebSocket message over the size limit is refused as too large, not logged as a client close.
#[tokio::test]
async fn oversized_websocket_message_is_logged_as_too_large() {
    let mut cfg = emulator_config();
    cfg.limits.max_packet = 4096;
    let mut emu = start(cfg).await;
    let headers = [("x-amz-customauthorizer-name", AUTH), ("token", GOOD)];
    let _ = wss(&emu, "/mqtt", &headers, vec![0x10; 10_000]).await;
    let r = emu.record().await;
    assert_eq!(r.reason, Reason::PacketTooLarge, "{}", r.detail);
}

fn quick_config() -> EmulatorConfig {
    let mut cfg = emulator_config();
    cfg.limits.handshake_timeout = Duration::from_millis(500);
    cfg.limits.request_timeout = Duration::from_millis(500);
    cfg
}

/// Upgrades a raw TLS connection to a WebSocket on the emulator; returns it after the 101.
async fn raw_upgrade(emu: &Emu) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let mut s = tls(emu.addr, Some(ENDPOINT), &[], &emu.ca_pem).await.unwrap();
    let req = format!(
        "GET /mqtt HTTP/1.1\r\nHost: {ENDPOINT}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: mqtt\r\nx-amz-customauthorizer-name: {AUTH}\r\ntoken: {GOOD}\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        assert_eq!(tokio::time::timeout(WAIT, s.read(&mut b)).await.unwrap().unwrap(), 1);
        head.push(b[0]);
    }
    assert!(head.starts_with(b"HTTP/1.1 101"), "{}", String::from_utf8_lossy(&head));
    s
}

/// A ping flood after the upgrade, before any CONNECT: the emulator stops reading it and closes,
/// within its request timeout, and keeps serving good clients.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn websocket_ping_flood_before_connect_is_cut_off() {
    let mut emu = start(quick_config()).await;
    let mut s = raw_upgrade(&emu).await;
    // Masked client pings with an empty payload.
    let burst: Vec<u8> = [0x89u8, 0x80, 1, 2, 3, 4].iter().copied().cycle().take(6 * 4096).collect();
    let started = Instant::now();
    for _ in 0..1000 {
        if s.write_all(&burst).await.is_err() || started.elapsed() > WAIT {
            break;
        }
    }
    let r = emu.record().await;
    assert!(
        matches!(r.reason, Reason::MalformedRequest | Reason::RequestTimeout | Reason::ClosedByClient),
        "{:?}: {}",
        r.reason,
        r.detail
    );
    good_client_connects(&emu).await;
}

/// Peers that connect and say nothing, or drip a CONNECT one byte at a time, on every transport:
/// each is closed at the emulator's deadlines, and good clients are served meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_and_dripping_peers_are_cut_off_at_the_deadlines() {
    let mut emu = start(quick_config()).await;
    let mut idle = Vec::new();
    for _ in 0..100 {
        idle.push(tokio::net::TcpStream::connect(emu.addr).await.unwrap());
    }
    let packet = connect_packet("drip", Some(&format!("?x-amz-customauthorizer-name={AUTH}&token={GOOD}")), "");
    let mut drips = Vec::new();
    for alpn in [&b"mqtt"[..], &b""[..]] {
        let alpns: Vec<&[u8]> = if alpn.is_empty() { vec![] } else { vec![alpn] };
        let mut s = tls(emu.addr, Some(ENDPOINT), &alpns, &emu.ca_pem).await.unwrap();
        let bytes = if alpn.is_empty() { b"POST /topics/t HTTP/1.1\r\nHost: x\r\n".to_vec() } else { packet.clone() };
        drips.push(tokio::spawn(async move {
            for b in bytes {
                if s.write_all(&[b]).await.is_err() {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let mut rest = Vec::new();
            tokio::time::timeout(WAIT, s.read_to_end(&mut rest)).await.is_ok()
        }));
    }
    good_client_connects(&emu).await;
    for d in drips {
        assert!(tokio::time::timeout(WAIT, d).await.unwrap().unwrap(), "a dripping peer was closed");
    }
    let mut reasons = Vec::new();
    for _ in 0..103 {
        reasons.push(emu.record().await.reason);
    }
    assert!(reasons.contains(&Reason::Accepted));
    assert!(reasons.iter().filter(|r| **r == Reason::RequestTimeout).count() >= 2, "{reasons:?}");
    drop(idle);
}

/// Issue 21: handlers and commands outlived `kill`/`timeout`/systemd's stop (SIGTERM). They go with the
/// emulator now.
#[test]
fn sigterm_leaves_no_handler_behind() {
    use std::io::BufRead as _;
    let marker = format!("{}", 30_000 + std::process::id() % 9_000);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_authprobe"))
        .env_clear()
        .args(["emulate", "--listen", "127.0.0.1:0", "--authorizer-handler"])
        .arg(format!("sleep {marker}7 & sleep {marker}8; wait"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    out.read_line(&mut banner).unwrap();
    assert!(banner.contains("listening"), "{banner}");
    let deadline = Instant::now() + WAIT;
    while processes_with(&format!("sleep {marker}8")).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(!processes_with(&format!("sleep {marker}8")).is_empty(), "the handler started");
    // SAFETY: a signal to the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut left = processes_with(&format!("sleep {marker}"));
    while !left.is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        left = processes_with(&format!("sleep {marker}"));
    }
    assert!(left.is_empty(), "handler processes still running after SIGTERM: {left:?}");
}

/// An accepted session, its CONNACK read.
async fn session(emu: &Emu, client_id: &str) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    let user = username(&[("x-amz-customauthorizer-name", AUTH), ("token", GOOD)]);
    let mut s = tls(emu.addr, Some(ENDPOINT), &[b"mqtt"], &emu.ca_pem).await.unwrap();
    s.write_all(&connect_packet(client_id, Some(&user), "")).await.unwrap();
    let mut ack = [0u8; 4];
    tokio::time::timeout(WAIT, s.read_exact(&mut ack)).await.unwrap().unwrap();
    assert_eq!(ack, [0x20, 2, 0, 0]);
    s
}

/// Reads until the emulator closes; fails if it answers or keeps the connection past `WAIT`.
async fn closed_without_answer(s: &mut tokio_rustls::client::TlsStream<tokio::net::TcpStream>, what: &str) {
    let mut b = [0u8; 64];
    let n = tokio::time::timeout(WAIT, s.read(&mut b)).await.unwrap_or_else(|_| panic!("{what}: still open"));
    assert!(matches!(n, Ok(0) | Err(_)), "{what}: answered {:?}", n.map(|n| b[..n].to_vec()));
}

/// Issue 21: a second CONNECT was accepted, QoS 2 got a PUBACK, and a session grew without bound
/// with its subscriptions. MQTT says a second CONNECT closes; IoT Core does not support QoS 2 and
/// bounds subscriptions per connection.
#[tokio::test]
async fn protocol_violations_close_the_session() {
    let emu = start(emulator_config()).await;
    let mut s = session(&emu, "again").await;
    let user = username(&[("x-amz-customauthorizer-name", AUTH), ("token", GOOD)]);
    s.write_all(&connect_packet("again", Some(&user), "")).await.unwrap();
    closed_without_answer(&mut s, "a second CONNECT").await;

    let mut s = session(&emu, "qos2").await;
    let mut publish = rumqttc::mqttbytes::v4::Publish::new("t/1", rumqttc::mqttbytes::QoS::ExactlyOnce, "x");
    publish.pkid = 7;
    let mut buf = bytes::BytesMut::new();
    publish.write(&mut buf).unwrap();
    s.write_all(&buf).await.unwrap();
    closed_without_answer(&mut s, "a QoS 2 PUBLISH").await;

    let mut s = session(&emu, "subs").await;
    let mut subs_acked = 0;
    for i in 0..60u16 {
        let sub = rumqttc::mqttbytes::v4::Subscribe::new(format!("t/{i}"), rumqttc::mqttbytes::QoS::AtMostOnce);
        let mut sub = sub;
        sub.pkid = i + 1;
        let mut buf = bytes::BytesMut::new();
        sub.write(&mut buf).unwrap();
        if s.write_all(&buf).await.is_err() {
            break;
        }
        let mut ack = [0u8; 5];
        match tokio::time::timeout(WAIT, s.read_exact(&mut ack)).await.unwrap() {
            Ok(_) => subs_acked += 1,
            Err(_) => break,
        }
    }
    assert_eq!(subs_acked, 50, "the 51st distinct filter closes the session");
    good_client_connects(&emu).await;
}

/// Issue 21: 5,000 idle TCP connections (never a byte) took every file descriptor, and no good
/// client could connect until they went. At the connection limit the oldest connection that has not
/// authenticated is shed now: idle ones go, a good client gets in, an authenticated session stays.
#[tokio::test]
async fn idle_connections_are_shed_for_good_clients() {
    let mut cfg = emulator_config();
    cfg.limits.max_connections = 20;
    let mut emu = start(cfg).await;
    let mut held = session(&emu, "held").await;
    let mut idle = Vec::new();
    for _ in 0..40 {
        idle.push(tokio::net::TcpStream::connect(emu.addr).await.unwrap());
    }
    good_client_connects(&emu).await;
    // The oldest idle connections were closed by the emulator, not left open.
    let mut first = idle.remove(0);
    let mut b = [0u8; 1];
    let n = tokio::time::timeout(WAIT, first.read(&mut b)).await.expect("the oldest idle connection is closed");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    let mut shed = 0;
    for _ in 0..21 {
        let rec = emu.record().await;
        if rec.reason == Reason::TooManyConnections && rec.detail.contains("connection limit") {
            shed += 1;
        }
    }
    assert!(shed >= 20, "{shed} connections shed");
    // The authenticated session was never shed: it still answers a ping.
    held.write_all(&[0xc0, 0]).await.unwrap();
    let mut pong = [0u8; 2];
    tokio::time::timeout(WAIT, held.read_exact(&mut pong)).await.unwrap().unwrap();
    assert_eq!(pong, [0xd0, 0]);
}

/// Issue 21: with the open-file limit far below the connection limit, idle connections still do not
/// lock good clients out: the emulator's limit follows the descriptors it has (run under `ulimit -n`).
#[tokio::test]
async fn a_low_open_file_limit_sheds_instead_of_locking_out() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let bin = env!("CARGO_BIN_EXE_authprobe");
    let mut child = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "ulimit -n 200 && exec '{bin}' emulate --listen 127.0.0.1:0 --allow-token {GOOD} --write-ca '{}'",
            ca.display()
        ))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // Killed however the test ends.
    struct Reap(std::process::Child);
    impl Drop for Reap {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let _child = Reap(child);
    let mut out = std::io::BufReader::new(stdout);
    let mut banner = String::new();
    out.read_line(&mut banner).unwrap();
    let mut emu = Emu::unstarted(banner.split_whitespace().last().unwrap().parse().unwrap());
    emu.ca_pem = std::fs::read_to_string(&ca).unwrap();
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(tokio::net::TcpStream::connect(emu.addr).await.unwrap());
    }
    good_client_connects(&emu).await;
    good_client_connects(&emu).await;
    drop(idle);
}

/// Issue 21: half-sent 128 KiB CONNECTs held 142 KiB each (569 MiB at 4,096 connections), half-sent
/// WebSocket frames 161 KiB. Bytes held before authentication share one budget now: past it the
/// oldest holder is shed, and a good client still connects.
#[tokio::test]
async fn half_sent_packets_share_one_budget() {
    let mut cfg = emulator_config();
    cfg.limits.pre_auth_bytes = 512 * 1024;
    let mut emu = start(cfg).await;
    // A CONNECT announcing 128 KiB, then 60 KiB of it; over WebSocket, a frame announcing 128 KiB.
    let mut held = Vec::new();
    for i in 0..20 {
        let mut s = if i % 2 == 0 {
            let mut s = tls(emu.addr, Some(ENDPOINT), &[b"mqtt"], &emu.ca_pem).await.unwrap();
            let _ = s.write_all(&[0x10, 0x80, 0x80, 0x08]).await;
            s
        } else {
            let mut s = tls(emu.addr, Some(ENDPOINT), &[], &emu.ca_pem).await.unwrap();
            let head = format!(
                "GET /mqtt HTTP/1.1\r\nHost: {ENDPOINT}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                 Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
                 Sec-WebSocket-Protocol: mqtt\r\n\r\n"
            );
            let _ = s.write_all(head.as_bytes()).await;
            // A masked binary frame with a 64-bit length of 128 KiB.
            let _ = s.write_all(&[0x82, 0xff, 0, 0, 0, 0, 0, 2, 0, 0, 1, 2, 3, 4]).await;
            s
        };
        let _ = s.write_all(&vec![b'a'; 60 * 1024]).await;
        let _ = s.flush().await;
        held.push(s);
    }
    good_client_connects(&emu).await;
    let mut shed = 0;
    for _ in 0..10 {
        let rec = emu.record().await;
        if rec.reason == Reason::TooManyConnections && rec.detail.contains("budget") {
            shed += 1;
        }
    }
    assert!(shed >= 8, "{shed} of the first 10 records shed for the byte budget");
    drop(held);
}

/// Issue 21: a configured keep-alive minimum above the 1,200 s cap made `clamp` panic in the
/// connection's task (the client saw its connection dropped). The cap wins now.
#[tokio::test]
async fn a_keep_alive_minimum_above_the_cap_serves_sessions() {
    let mut cfg = emulator_config();
    cfg.limits.min_keep_alive = Duration::from_secs(3_000);
    let emu = start(cfg).await;
    let mut s = session(&emu, "keep-alive").await;
    s.write_all(&[0xc0, 0]).await.unwrap();
    let mut pong = [0u8; 2];
    tokio::time::timeout(WAIT, s.read_exact(&mut pong)).await.unwrap().unwrap();
    assert_eq!(pong, [0xd0, 0]);
}
