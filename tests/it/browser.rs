//! A real browser against the emulator: headless Chromium (Debian's `chromium`) loads a page from a
//! local HTTP server and connects to the emulator with custom auth the way a web app does — MQTT
//! over WebSockets with the subprotocol `mqttv3.1` (what the AWS IoT Device SDK v2's MQTT 3.1.1
//! browser client offers), credentials in the upgrade URL's query string or in the CONNECT
//! username, no custom headers (a browser cannot set them on a WebSocket) — and publishes over
//! HTTPS with custom headers, which makes the browser send a CORS preflight first.
//!
//! The emulator's CA is trusted the way a developer trusts it: in the NSS database of the profile's
//! home (`certutil`, Debian's `libnss3-tools`), not by switching verification off.

use super::common::*;
use authprobe::auth::credentials::Placement;
use authprobe::emulator::settings::Cors;
use authprobe::emulator::{ConnectionRecord, Reason};
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The page: four WebSocket connections and one HTTPS publish per emulator, results POSTed back.
/// The MQTT CONNECT is built in the page, as an app's MQTT library does.
const PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>authprobe browser client</title>
<script>
const q = new URLSearchParams(location.search);
const AUTH = q.get('auth');
const enc = new TextEncoder();
const str = s => { const b = enc.encode(s); return [b.length >> 8, b.length & 255, ...b]; };
function varint(n) { const out = []; do { let d = n % 128; n = Math.floor(n / 128); if (n > 0) d |= 128; out.push(d); } while (n > 0); return out; }
function connect(clientId, username) {
  let flags = 0x02; const payload = str(clientId);
  if (username !== null) { flags |= 0x80; payload.push(...str(username)); }
  const body = [...str('MQTT'), 4, flags, 0, 60, ...payload];
  return new Uint8Array([0x10, ...varint(body.length), ...body]);
}
function mqtt(url, protocols, clientId, username) {
  return new Promise(resolve => {
    let done = false;
    const finish = r => { if (!done) { done = true; clearTimeout(t); resolve(r); } };
    const ws = new WebSocket(url, protocols);
    ws.binaryType = 'arraybuffer';
    const t = setTimeout(() => { finish({ timeout: true }); ws.close(); }, 8000);
    ws.onopen = () => ws.send(connect(clientId, username));
    ws.onmessage = e => { finish({ protocol: ws.protocol, connack: Array.from(new Uint8Array(e.data)) }); ws.close(); };
    ws.onclose = e => finish({ closed: e.code, protocol: ws.protocol });
  });
}
async function publish(host) {
  try {
    const r = await fetch(`https://${host}/topics/browser?qos=0`, { method: 'POST', body: 'hello',
      headers: { 'x-amz-customauthorizer-name': AUTH, 'token': q.get('good') } });
    return { status: r.status };
  } catch (e) { return { error: e.name }; }
}
async function run(host, tag) {
  const good = q.get('good'), base = `wss://${host}/mqtt`;
  return {
    query: await mqtt(`${base}?x-amz-customauthorizer-name=${AUTH}&token=${good}`, ['mqttv3.1'], `${tag}-query`, null),
    username: await mqtt(base, ['mqttv3.1'], `${tag}-user`, `app?x-amz-customauthorizer-name=${AUTH}&token=${good}`),
    mqtt: await mqtt(`${base}?x-amz-customauthorizer-name=${AUTH}&token=${good}`, ['mqtt'], `${tag}-mqtt`, null),
    wrong: await mqtt(`${base}?x-amz-customauthorizer-name=${AUTH}&token=not-${good}`, ['mqttv3.1'], `${tag}-wrong`, null),
    publish: await publish(host),
  };
}
(async () => {
  const results = { none: await run(q.get('none'), 'none'), allow: await run(q.get('allow'), 'allow') };
  await fetch('/result', { method: 'POST', body: JSON.stringify(results) });
})();
</script>"#;

/// Serves the page and waits for the results it POSTs back (bounded by `deadline`).
fn serve_page(listener: TcpListener, deadline: Instant) -> Option<serde_json::Value> {
    listener.set_nonblocking(true).unwrap();
    // Bounded: one accept per 10 ms until the deadline.
    while Instant::now() < deadline {
        let Ok((mut conn, _)) = listener.accept() else {
            std::thread::sleep(Duration::from_millis(10));
            continue;
        };
        conn.set_nonblocking(false).unwrap();
        conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut reader = BufReader::new(conn.try_clone().unwrap());
        let mut line = String::new();
        if reader.read_line(&mut line).is_err() {
            continue;
        }
        let mut length = 0usize;
        for _ in 0..64 {
            let mut h = String::new();
            if reader.read_line(&mut h).is_err() || h.trim().is_empty() {
                break;
            }
            if let Some(v) = h.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        if line.starts_with("GET / ") || line.starts_with("GET /?") {
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{PAGE}",
                PAGE.len()
            );
        } else if line.starts_with("POST /result") {
            let mut body = vec![0u8; length.min(1 << 20)];
            reader.read_exact(&mut body).unwrap();
            let _ = conn.write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n");
            return Some(serde_json::from_slice(&body).expect("the page's results are JSON"));
        } else {
            let _ = conn.write_all(b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    }
    None
}

/// A home whose NSS database trusts each CA of `cas`, as `certutil` puts them there.
fn home_trusting(cas: &[&str]) -> tempfile::TempDir {
    let home = tempfile::tempdir().unwrap();
    let db = home.path().join(".pki/nssdb");
    std::fs::create_dir_all(&db).unwrap();
    let nssdb = format!("sql:{}", db.display());
    let certutil = |args: &[&str]| {
        let out = Command::new("certutil")
            .args(args)
            .output()
            .expect("certutil (Debian's libnss3-tools; .ci/run installs it) to trust the emulator's CA in Chromium");
        assert!(out.status.success(), "certutil {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    certutil(&["-N", "-d", &nssdb, "--empty-password"]);
    for (i, pem) in cas.iter().enumerate() {
        let ca = home.path().join(format!("emulator-ca-{i}.pem"));
        std::fs::write(&ca, pem).unwrap();
        let name = format!("authprobe emulator CA {i}");
        certutil(&["-A", "-d", &nssdb, "-n", &name, "-t", "C,,", "-i", ca.to_str().unwrap()]);
    }
    home
}

fn emulator_with(cors: Cors) -> authprobe::emulator::EmulatorConfig {
    let mut c = config();
    c.authorizers.push(allowing(AUTH));
    c.reject.cors = cors;
    c
}

/// The records of one emulator's run, in the page's order: query, username, mqtt, wrong, then the
/// publish (the preflight, and with `cors = allow` the POST).
async fn records(emu: &mut Emu, n: usize) -> Vec<ConnectionRecord> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(emu.record().await);
    }
    out
}

fn placement_of_token(rec: &ConnectionRecord) -> Option<Placement> {
    rec.credentials.iter().find(|c| c.parameter == "token").map(|c| c.placement)
}

#[tokio::test(flavor = "multi_thread")]
async fn chromium_connects_with_custom_auth_and_its_record_shows_a_browser() {
    let mut none = start(emulator_with(Cors::None)).await;
    let mut allow = start(emulator_with(Cors::Allow)).await;
    // Each emulator generated its own CA: the profile trusts both.
    let home = home_trusting(&[&none.ca_pem, &allow.ca_pem]);
    let site = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", site.local_addr().unwrap());
    let url = format!(
        "{origin}/?auth={AUTH}&good={GOOD}&none=localhost:{}&allow=localhost:{}",
        none.addr.port(),
        allow.addr.port()
    );
    let profile = tempfile::tempdir().unwrap();
    let mut chromium = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(&url)
        .env("HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium (Debian's `chromium`; .ci/run installs it)");
    let deadline = Instant::now() + Duration::from_secs(90);
    let results = tokio::task::spawn_blocking(move || serve_page(site, deadline)).await.unwrap();
    let _ = chromium.kill();
    let _ = chromium.wait();
    let results = results.expect("the page reported its results within 90 s");

    for (tag, emu, cors) in [("none", &mut none, Cors::None), ("allow", &mut allow, Cors::Allow)] {
        let page = &results[tag];
        // What the page saw: a CONNACK (accepted) with the subprotocol it offered.
        for (case, protocol) in [("query", "mqttv3.1"), ("username", "mqttv3.1"), ("mqtt", "mqtt")] {
            assert_eq!(page[case]["connack"], serde_json::json!([32, 2, 0, 0]), "{tag}/{case}: {page}");
            assert_eq!(page[case]["protocol"], protocol, "{tag}/{case}: {page}");
        }
        // A wrong token: the socket closes after the CONNECT, no CONNACK (IoT Core's MQTT 3.1.1 refusal).
        assert!(page["wrong"]["closed"].is_number() && page["wrong"]["connack"].is_null(), "{tag}: {page}");

        let n = if cors == Cors::Allow { 6 } else { 5 };
        let recs = records(emu, n).await;
        let [query, user, mqtt, wrong] = [&recs[0], &recs[1], &recs[2], &recs[3]];
        for (r, placement, protocol) in [
            (query, Placement::Query, "mqttv3.1"),
            (user, Placement::Username, "mqttv3.1"),
            (mqtt, Placement::Query, "mqtt"),
        ] {
            assert!(r.accepted, "{tag}: {r:?}");
            assert_eq!(r.transport, Some(authprobe::auth::event::Transport::Wss));
            assert_eq!(r.subprotocol.as_deref(), Some(protocol));
            assert_eq!(r.origin.as_deref(), Some(origin.as_str()), "the page's origin is recorded, unredacted");
            assert_eq!(placement_of_token(r), Some(placement), "{tag}: {:?}", r.credentials);
            assert_eq!(r.sni.as_deref(), Some("localhost"));
            // Chromium offers ALPN for its WebSocket connection (http/1.1), never `mqtt`.
            assert!(r.alpn_offered.iter().any(|p| p == "http/1.1"), "{:?}", r.alpn_offered);
            assert!(!r.alpn_offered.iter().any(|p| p == "mqtt"), "{:?}", r.alpn_offered);
            // No custom headers: a browser cannot set them on a WebSocket.
            assert!(!r.headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("token")), "{:?}", r.headers);
        }
        assert!(!wrong.accepted && wrong.reason == Reason::Denied, "{wrong:?}");

        // The HTTPS publish with custom headers: the browser asks first (OPTIONS).
        let pre = &recs[4];
        assert_eq!(pre.reason, Reason::Preflight, "{pre:?}");
        assert!(pre.request.as_deref().is_some_and(|r| r.starts_with("OPTIONS /topics/browser")), "{pre:?}");
        assert_eq!(pre.origin.as_deref(), Some(origin.as_str()));
        match cors {
            // No CORS answer: the browser never sends the POST, and the page sees a network error.
            Cors::None => assert_eq!(page["publish"]["error"], "TypeError", "{page}"),
            Cors::Allow => {
                assert_eq!(page["publish"]["status"], 200, "{page}");
                let post = &recs[5];
                assert!(post.accepted && post.request.as_deref().is_some_and(|r| r.starts_with("POST ")), "{post:?}");
                assert_eq!(
                    post.credentials.iter().find(|c| c.parameter == "token").map(|c| c.placement),
                    Some(Placement::Header)
                );
            }
        }
    }
}
