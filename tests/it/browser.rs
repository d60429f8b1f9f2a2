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

/// Serves the page (and `assets`: path, content type, bytes) and waits for the results it POSTs
/// back (bounded by `deadline`).
fn serve_page(
    listener: TcpListener,
    page: &'static str,
    assets: Vec<(&'static str, &'static str, Vec<u8>)>,
    deadline: Instant,
) -> Option<serde_json::Value> {
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
        let path = line.split_whitespace().nth(1).unwrap_or("").split('?').next().unwrap_or("");
        let asset = assets.iter().find(|(p, _, _)| *p == path);
        if line.starts_with("GET ") && path == "/" {
            let _ = write!(
                conn,
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{page}",
                page.len()
            );
        } else if let (true, Some((_, kind, body))) = (line.starts_with("GET "), asset) {
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = conn.write_all(head.as_bytes()).and_then(|()| conn.write_all(body));
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

/// Headless Chromium with `home`'s NSS database loads `url` (served from `site`); the results the
/// page POSTs back, within 90 s.
async fn in_chromium(
    home: &tempfile::TempDir,
    site: TcpListener,
    url: &str,
    page: &'static str,
    assets: Vec<(&'static str, &'static str, Vec<u8>)>,
) -> serde_json::Value {
    let profile = tempfile::tempdir().unwrap();
    let mut chromium = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions"])
        .args(["--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url)
        .env("HOME", home.path())
        .stdout(Stdio::null())
        .stderr(Stdio::from(std::fs::File::create(home.path().join("chromium.log")).unwrap()))
        .spawn()
        .expect("chromium (Debian's `chromium`; .ci/run installs it)");
    let deadline = Instant::now() + Duration::from_secs(90);
    let results = tokio::task::spawn_blocking(move || serve_page(site, page, assets, deadline)).await.unwrap();
    let _ = chromium.kill();
    let _ = chromium.wait();
    // The browser's console (`--enable-logging=stderr`) says why when a page does not report.
    let log = std::fs::read_to_string(home.path().join("chromium.log")).unwrap_or_default();
    let console: Vec<&str> = log.lines().filter(|l| l.contains("CONSOLE")).take(40).collect();
    results.unwrap_or_else(|| panic!("the page reported no results within 90 s; its console:\n{}", console.join("\n")))
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
    let results = in_chromium(&home, site, &url, PAGE, Vec::new()).await;

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

/// The page for the real client libraries: mqtt.js (its browser build) and the AWS IoT Device SDK v2
/// (its browser build, bundled with esbuild), each connecting with custom auth, subscribing,
/// publishing and receiving its own message; then refusals as an app meets them.
const LIBRARY_PAGE: &str = r#"<!doctype html><meta charset="utf-8"><title>authprobe: mqtt.js and SDK v2</title>
<script src="/mqtt.min.js"></script><script src="/sdk.js"></script>
<script>
const q = new URLSearchParams(location.search);
const host = q.get('emu'), [hostname, port] = host.split(':');
const AUTH = q.get('auth'), GOOD = q.get('good');
const sleep = ms => new Promise(r => setTimeout(() => r('timeout'), ms));
function viaMqttJs(url, opts) {
  return new Promise(resolve => {
    const r = { connected: false };
    const c = mqtt.connect(url, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 8000, ...opts });
    const done = () => { clearTimeout(t); c.end(true); resolve(r); };
    const t = setTimeout(() => { r.timeout = true; done(); }, 10000);
    c.on('connect', () => {
      r.connected = true;
      c.subscribe('browser/echo', { qos: 0 }, err => {
        if (err) r.subscribe_error = String(err);
        c.publish('browser/echo', 'hello from mqtt.js');
      });
    });
    c.on('message', (topic, payload) => { r.received = payload.toString(); done(); });
    c.on('error', e => { r.error = e.message; });
    c.on('close', () => { r.closed = true; if (!r.received) done(); });
  });
}
async function viaSdk(clientId, authorizer, token, signature) {
  const { iot, mqtt: m } = window.awsiot;
  const r = { connected: false };
  const cfg = iot.AwsIotMqttConnectionConfigBuilder.new_with_websockets()
    .with_endpoint(hostname).with_port(Number(port)).with_client_id(clientId).with_clean_session(true)
    .with_custom_authorizer('app', authorizer, signature, '', 'token', token)
    .build();
  const conn = new m.MqttClient().new_connection(cfg);
  conn.on('error', e => { r.error = String(e && e.message || e); });
  try {
    const connected = await Promise.race([conn.connect().then(() => 'connected', e => 'failed: ' + (e && e.message || e)), sleep(10000)]);
    r.connect = connected;
    r.connected = connected === 'connected';
    if (r.connected) {
      const got = new Promise(res => conn.subscribe('browser/echo', m.QoS.AtMostOnce,
        (topic, payload) => res(new TextDecoder().decode(payload))));
      await sleep(200);
      await conn.publish('browser/echo', 'hello from the SDK v2', m.QoS.AtMostOnce);
      r.received = await Promise.race([got, sleep(5000)]);
    }
  } catch (e) { r.error = String(e && e.message || e); }
  try { await Promise.race([conn.disconnect(), sleep(2000)]); } catch (e) {}
  return r;
}
(async () => {
  const base = `wss://${host}/mqtt`;
  const user = p => 'app?' + new URLSearchParams(p).toString();
  const results = {
    mqttjs_username: await viaMqttJs(base, { clientId: 'mqttjs-user', username: user({ 'x-amz-customauthorizer-name': AUTH, token: GOOD }) }),
    mqttjs_query: await viaMqttJs(`${base}?x-amz-customauthorizer-name=${AUTH}&token=${GOOD}`, { clientId: 'mqttjs-query' }),
    mqttjs_wrong_token: await viaMqttJs(base, { clientId: 'mqttjs-wrong', username: user({ 'x-amz-customauthorizer-name': AUTH, token: 'not-' + GOOD }) }),
    mqttjs_no_signature: await viaMqttJs(base, { clientId: 'mqttjs-nosig', username: user({ 'x-amz-customauthorizer-name': 'Signed', token: GOOD }) }),
    mqttjs_wrong_authorizer: await viaMqttJs(base, { clientId: 'mqttjs-noauth', username: user({ 'x-amz-customauthorizer-name': 'NoSuchAuthorizer', token: GOOD }) }),
    // Signed custom auth: the SDK percent-encodes the signature (it holds a `+`) in the username.
    sdk: await viaSdk('sdk-good', 'Signed', q.get('tok'), q.get('sig')),
    sdk_wrong_token: await viaSdk('sdk-wrong', 'Signed', 'not-' + q.get('tok'), q.get('sig')),
  };
  await fetch('/result', { method: 'POST', body: JSON.stringify(results) });
})();
</script>"#;

/// The browser builds of mqtt.js and of the SDK v2 (bundled now with esbuild), from
/// tests/browser/node_modules (`npm ci` there; .ci/run does it).
fn client_libraries() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser");
    let mqtt_js = std::fs::read(dir.join("node_modules/mqtt/dist/mqtt.min.js"))
        .expect("mqtt.js: run `npm ci` in tests/browser (.ci/run does)");
    let out = tempfile::tempdir().unwrap();
    let sdk = out.path().join("sdk.js");
    let built = Command::new(dir.join("node_modules/.bin/esbuild"))
        .current_dir(&dir)
        .args(["sdk-entry.js", "--bundle", "--platform=browser", "--format=iife", "--log-level=warning"])
        .arg("--alias:util=./util-stub.js")
        .arg(format!("--outfile={}", sdk.display()))
        .output()
        .expect("esbuild: run `npm ci` in tests/browser (.ci/run does)");
    assert!(built.status.success(), "esbuild: {}", String::from_utf8_lossy(&built.stderr));
    vec![("/mqtt.min.js", "text/javascript", mqtt_js), ("/sdk.js", "text/javascript", std::fs::read(&sdk).unwrap())]
}

/// `authprobe probe --client-type browser --format json` against `emu` (its CA in `ca`) with `extra`
/// flags and the allowing authorizer's good token; it must exit 0.
async fn browser_probe(emu: &Emu, ca: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let out = browser_probe_exit(emu, ca, extra).await;
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
    out
}

/// [`browser_probe`], whatever its exit code.
async fn browser_probe_exit(emu: &Emu, ca: &std::path::Path, extra: &[&str]) -> std::process::Output {
    let (connect_to, ca) = (emu.addr.to_string(), ca.to_str().unwrap().to_owned());
    let mut args: Vec<String> = [
        "probe",
        "--endpoint",
        "localhost",
        "--connect-to",
        &connect_to,
        "--ca",
        &ca,
        "--token",
        GOOD,
        "--authorizer",
        AUTH,
        "--client-type",
        "browser",
        "--format",
        "json",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    // The binary runs while this test's emulator serves on the runtime: off the async threads.
    tokio::task::spawn_blocking(move || authprobe_bin(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap()
}

/// Takes records until the one of `client_id` (others are kept in `seen`), bounded.
async fn record_of(emu: &mut Emu, seen: &mut Vec<ConnectionRecord>, client_id: &str) -> ConnectionRecord {
    for _ in 0..64 {
        if let Some(i) = seen.iter().position(|r| r.client_id.as_deref() == Some(client_id)) {
            return seen.remove(i);
        }
        seen.push(emu.record().await);
    }
    panic!("no record of {client_id}: {seen:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mqtt_js_and_the_sdk_v2_connect_with_custom_auth_and_see_refusals() {
    let assets = client_libraries();
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    let (tok, sig) = token_with_plus_in_signature();
    cfg.authorizers.push(signed("Signed", &[&tok]));
    let mut emu = start(cfg).await;
    let home = home_trusting(&[&emu.ca_pem]);
    let site = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", site.local_addr().unwrap());
    let url =
        format!("{origin}/?auth={AUTH}&good={GOOD}&tok={tok}&sig={}&emu=localhost:{}", pct(&sig), emu.addr.port());
    let page = in_chromium(&home, site, &url, LIBRARY_PAGE, assets).await;

    // What the apps saw: connected, subscribed, and received their own publish.
    for case in ["mqttjs_username", "mqttjs_query"] {
        assert_eq!(page[case]["connected"], true, "{case}: {page}");
        assert_eq!(page[case]["received"], "hello from mqtt.js", "{case}: {page}");
    }
    assert_eq!(page["sdk"]["connected"], true, "{page}");
    assert_eq!(page["sdk"]["received"], "hello from the SDK v2", "{page}");
    // Refusals: MQTT 3.1.1 over WebSocket, closed after the CONNECT without a CONNACK.
    for case in ["mqttjs_wrong_token", "mqttjs_no_signature", "mqttjs_wrong_authorizer", "sdk_wrong_token"] {
        assert_eq!(page[case]["connected"], false, "{case}: {page}");
    }

    let mut seen = Vec::new();
    let user = record_of(&mut emu, &mut seen, "mqttjs-user").await;
    let query = record_of(&mut emu, &mut seen, "mqttjs-query").await;
    let sdk = record_of(&mut emu, &mut seen, "sdk-good").await;
    for (r, subprotocol, placement) in [
        (&user, "mqtt", Placement::Username),
        (&query, "mqtt", Placement::Query),
        // The SDK v2's MQTT 3.1.1 browser client offers only `mqttv3.1`.
        (&sdk, "mqttv3.1", Placement::Username),
    ] {
        assert!(r.accepted, "{r:?}");
        assert_eq!(r.subprotocol.as_deref(), Some(subprotocol), "{r:?}");
        assert_eq!(placement_of_token(r), Some(placement), "{:?}", r.credentials);
        assert_eq!(r.origin.as_deref(), Some(origin.as_str()));
        assert_eq!(r.transport, Some(authprobe::auth::event::Transport::Wss));
        assert!(!r.alpn_offered.iter().any(|p| p == "mqtt"), "{:?}", r.alpn_offered);
    }
    assert_eq!(record_of(&mut emu, &mut seen, "mqttjs-wrong").await.reason, Reason::Denied);
    assert_eq!(record_of(&mut emu, &mut seen, "mqttjs-nosig").await.reason, Reason::SignatureMissing);
    assert_eq!(record_of(&mut emu, &mut seen, "mqttjs-noauth").await.reason, Reason::UnknownAuthorizer);
    // The signature of another token does not verify.
    assert_eq!(record_of(&mut emu, &mut seen, "sdk-wrong").await.reason, Reason::SignatureInvalid);
}

/// `probe --client-type browser` sends what Chromium sends: one emulator records a page's
/// connection and the probe's, and the records agree on every field a browser decides (ALPN
/// offered, subprotocol, Origin, the request line, where each credential is, the headers in order).
#[tokio::test(flavor = "multi_thread")]
async fn the_probe_as_a_browser_sends_what_chromium_sends() {
    let mut emu = start(emulator_with(Cors::None)).await;
    let home = home_trusting(&[&emu.ca_pem]);
    let site = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", site.local_addr().unwrap());
    // The first page's helpers, with one connection per placement as its whole run.
    let helpers = PAGE.split("(async () => {").next().unwrap();
    let page: &'static str = Box::leak(
        format!(
            "{helpers}(async () => {{ const h = q.get('emu'), b = `wss://${{h}}/mqtt`, g = q.get('good');
  const results = {{
    query: await mqtt(`${{b}}?x-amz-customauthorizer-name=${{AUTH}}&token=${{g}}`, ['mqttv3.1'], 'page-query', null),
    username: await mqtt(b, ['mqtt'], 'page-user', `?x-amz-customauthorizer-name=${{AUTH}}&token=${{g}}`),
  }};
  await fetch('/result', {{ method: 'POST', body: JSON.stringify(results) }});
}})();
</script>"
        )
        .into_boxed_str(),
    );
    let url = format!("{origin}/?auth={AUTH}&good={GOOD}&emu=localhost:{}", emu.addr.port());
    let results = in_chromium(&home, site, &url, page, Vec::new()).await;
    assert_eq!(results["query"]["connack"], serde_json::json!([32, 2, 0, 0]), "{results}");
    let mut seen = Vec::new();
    let page_query = record_of(&mut emu, &mut seen, "page-query").await;
    let page_user = record_of(&mut emu, &mut seen, "page-user").await;

    let ca = home.path().join("probe-ca.pem");
    std::fs::write(&ca, &emu.ca_pem).unwrap();
    for (placement, protocol, client_id, page_rec) in
        [("query", "mqttv3.1", "probe-query", &page_query), ("username", "mqtt", "probe-user", &page_user)]
    {
        let extra =
            ["--client-id", client_id, "--origin", &origin, "--placement", placement, "--ws-protocol", protocol];
        browser_probe(&emu, &ca, &extra).await;
        // The baseline is the browser's attempt; its `documented` twin puts credentials in headers.
        let probe = loop {
            let r = record_of(&mut emu, &mut seen, client_id).await;
            if r.credentials.iter().all(|c| c.placement != Placement::Header) {
                break r;
            }
        };
        assert!(probe.accepted, "{probe:?}");
        assert_eq!(probe.alpn_offered, page_rec.alpn_offered, "ALPN offered");
        assert_eq!(probe.subprotocol, page_rec.subprotocol, "subprotocol");
        assert_eq!(probe.origin, page_rec.origin, "Origin");
        assert_eq!(probe.request, page_rec.request, "request line");
        assert_eq!(probe.transport, page_rec.transport);
        let places = |r: &ConnectionRecord| {
            let mut p: Vec<(String, Placement)> =
                r.credentials.iter().map(|c| (c.parameter.clone(), c.placement)).collect();
            p.sort_by(|a, b| a.0.cmp(&b.0));
            p
        };
        assert_eq!(places(&probe), places(page_rec), "where each credential is");
        // Chromium's headers in its order, but its permessage-deflate offer (docs/browser.md).
        let names = |r: &ConnectionRecord| -> Vec<String> {
            r.headers.iter().map(|(n, _)| n.to_ascii_lowercase()).filter(|n| n != "sec-websocket-extensions").collect()
        };
        assert_eq!(names(&probe), names(page_rec), "headers in order");
        let value = |r: &ConnectionRecord, name: &str| {
            r.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
        };
        for h in ["pragma", "cache-control", "accept-encoding", "accept-language", "sec-websocket-version"] {
            assert_eq!(value(&probe, h), value(page_rec, h), "{h}");
        }
    }
}

/// What a browser adds to a preflight and a publish (CORS request headers, fetch metadata, client
/// hints, `Origin`) is recorded as sent, never taken for a secret; the token still is one.
#[tokio::test]
async fn browser_headers_are_recorded_and_the_token_is_still_redacted() {
    let mut cfg = emulator_with(Cors::Allow);
    cfg.show_secrets = false;
    let mut emu = start(cfg).await;
    let browser = [
        ("origin", "https://dashboard.example.com"),
        ("sec-fetch-mode", "cors"),
        ("sec-fetch-site", "cross-site"),
        ("sec-fetch-dest", "empty"),
        ("sec-ch-ua-platform", "\"Linux\""),
        ("accept-language", "en-US,en;q=0.9"),
    ];
    let mut pre = browser.to_vec();
    pre.extend([
        ("access-control-request-method", "POST"),
        ("access-control-request-headers", "token,x-amz-customauthorizer-name"),
    ]);
    let a = https(&emu, "OPTIONS", "/topics/browser?qos=0", &pre, "").await;
    assert_eq!(a.status, 200);
    let r = emu.record().await;
    assert_eq!(r.reason, Reason::Preflight);
    assert!(r.detail.contains("POST"), "{}", r.detail);
    for (name, value) in &pre {
        let recorded = r.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str());
        assert_eq!(recorded, Some(*value), "{name} recorded as sent: {:?}", r.headers);
    }
    let mut post = browser.to_vec();
    post.extend([("x-amz-customauthorizer-name", AUTH), ("token", GOOD)]);
    assert_eq!(https(&emu, "POST", "/topics/browser?qos=0", &post, "hi").await.status, 200);
    let r = emu.record().await;
    let logged = serde_json::to_string(&r).unwrap();
    assert!(!logged.contains(GOOD), "the token is redacted: {logged}");
    assert_eq!(r.origin.as_deref(), Some("https://dashboard.example.com"));
    assert!(logged.contains("cross-site") && logged.contains("en-US,en;q=0.9"), "{logged}");
}

/// A browser probe's matrix varies what a page gets wrong: the other subprotocol (expected to
/// connect), a `//mqtt` URL and (full) another page's Origin (undocumented: reported, not judged);
/// each attempt is still a browser's upgrade, as the emulator's records show.
#[tokio::test(flavor = "multi_thread")]
async fn a_browser_probe_varies_what_pages_get_wrong() {
    let mut emu = start(emulator_with(Cors::None)).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &emu.ca_pem).unwrap();
    let extra = ["--origin", "https://app.example.com", "--ws-protocol", "mqttv3.1", "--matrix", "full"];
    let out = browser_probe(&emu, &ca, &extra).await;
    let report = probe_report(&out.stdout);
    let attempts = report["attempts"].as_array().unwrap();
    let attempt = |id: &str| attempts.iter().find(|a| a["id"] == id).unwrap_or_else(|| panic!("no {id}: {report}"));
    assert_eq!(attempt("wss/ws-protocol-other")["expect"], "pass");
    assert_eq!(attempt("wss/path-double-slash")["expect"], "unknown");
    assert_eq!(attempt("wss/origin-other")["expect"], "unknown");
    assert!(attempts.iter().all(|a| a["transport"] == "wss"), "a page speaks MQTT over WebSockets only");

    let mut records = Vec::new();
    for _ in 0..attempts.len() {
        records.push(emu.record().await);
    }
    let other_protocol = records
        .iter()
        .find(|r| r.subprotocol.as_deref() == Some("mqtt") && r.origin.is_some())
        .expect("the browser's upgrade with mqtt");
    assert!(other_protocol.accepted && other_protocol.origin.as_deref() == Some("https://app.example.com"));
    let slash = records
        .iter()
        .find(|r| r.request.as_deref().is_some_and(|q| q.starts_with("GET //mqtt")))
        .expect("the //mqtt upgrade");
    assert_eq!(slash.reason, Reason::NotFound, "{slash:?}");
    let other_origin =
        records.iter().find(|r| r.origin.as_deref() == Some("https://other.example")).expect("another Origin");
    assert!(other_origin.accepted, "{other_origin:?}");
    // Every upgrade but the documented twin's is a browser's (the TLS variants never reach one).
    let upgrades: Vec<_> = records.iter().filter(|r| r.request.is_some()).collect();
    let without_origin: Vec<_> = upgrades.iter().filter(|r| r.origin.is_none()).collect();
    assert_eq!(without_origin.len(), 1, "only the documented twin: {without_origin:?}");
    assert!(without_origin[0].client_id.as_deref().is_some_and(|c| c.ends_with("-documented")));
    assert!(records.iter().filter(|r| r.origin.is_some()).all(|r| !r.headers.iter().any(|(n, _)| n == "token")));
}

/// A page's HTTPS publish: the probe sends the CORS preflight Chromium sends (the same headers in the
/// same order, the same `Access-Control-Request-*` and `Origin`) and, when the answer lets a browser
/// go on, the publish Chromium sends (the same headers in the same order); where the answer stops a
/// browser, the probe stops too (`preflight_refused`, no POST) and names the cause.
#[tokio::test(flavor = "multi_thread")]
async fn the_probe_publishes_over_https_as_a_page_does() {
    let mut allow = start(emulator_with(Cors::Allow)).await;
    let mut none = start(emulator_with(Cors::None)).await;
    let home = home_trusting(&[&allow.ca_pem]);
    let site = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", site.local_addr().unwrap());
    let helpers = PAGE.split("(async () => {").next().unwrap();
    let page: &'static str = Box::leak(
        format!(
            "{helpers}(async () => {{
  const results = {{ publish: await publish(q.get('emu')) }};
  await fetch('/result', {{ method: 'POST', body: JSON.stringify(results) }});
}})();
</script>"
        )
        .into_boxed_str(),
    );
    let url = format!("{origin}/?auth={AUTH}&good={GOOD}&emu=localhost:{}", allow.addr.port());
    let results = in_chromium(&home, site, &url, page, Vec::new()).await;
    assert_eq!(results["publish"]["status"], 200, "{results}");
    let (page_pre, page_post) = (allow.record().await, allow.record().await);
    assert_eq!(page_pre.reason, Reason::Preflight, "{page_pre:?}");

    let ca = home.path().join("probe-ca.pem");
    std::fs::write(&ca, &allow.ca_pem).unwrap();
    let flags = ["--transport", "https", "--matrix", "none", "--origin", &origin];
    let out = browser_probe(&allow, &ca, &flags).await;
    let report = probe_report(&out.stdout);
    let base = &report["attempts"][0];
    assert_eq!(base["outcome"]["kind"], "http_ok", "{report}");
    assert_eq!(base["sent"]["cors"]["preflight_status"], 200, "{base}");
    assert_eq!(base["sent"]["cors"]["answer_readable"], true, "{base}");
    // The baseline's preflight and publish, then the documented twin's publish (no Origin).
    let mut recs = [allow.record().await, allow.record().await, allow.record().await];
    recs.sort_by_key(|r| (r.reason != Reason::Preflight, r.origin.is_none()));
    let (probe_pre, probe_post) = (&recs[0], &recs[1]);
    let names =
        |r: &ConnectionRecord| -> Vec<String> { r.headers.iter().map(|(n, _)| n.to_ascii_lowercase()).collect() };
    let value = |r: &ConnectionRecord, name: &str| {
        r.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone())
    };
    assert_eq!(probe_pre.reason, Reason::Preflight, "{probe_pre:?}");
    assert_eq!(names(probe_pre), names(&page_pre), "the preflight's headers in order");
    for h in ["access-control-request-method", "access-control-request-headers", "origin", "sec-fetch-mode", "accept"] {
        assert_eq!(value(probe_pre, h), value(&page_pre, h), "preflight {h}");
    }
    assert!(probe_pre.request.as_deref().is_some_and(|r| r.starts_with("OPTIONS /topics/")), "{probe_pre:?}");
    assert!(probe_post.accepted && probe_post.request.as_deref().is_some_and(|r| r.starts_with("POST /topics/")));
    // The publish: the page's two custom headers where Chromium puts them.
    assert_eq!(names(probe_post), names(&page_post), "the publish's headers in order");
    for h in ["content-type", "origin", "sec-fetch-mode", "sec-fetch-site", "accept-language"] {
        assert_eq!(value(probe_post, h), value(&page_post, h), "publish {h}");
    }
    let places = |r: &ConnectionRecord| r.credentials.iter().map(|c| c.placement).collect::<Vec<_>>();
    assert_eq!(places(probe_post), places(&page_post));

    // No CORS answer (the default, as IoT Core documents none): the browser stops at the preflight.
    let ca_none = home.path().join("none-ca.pem");
    std::fs::write(&ca_none, &none.ca_pem).unwrap();
    let out = browser_probe_exit(&none, &ca_none, &flags).await;
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    let report = probe_report(&out.stdout);
    let base = &report["attempts"][0];
    assert_eq!(base["outcome"]["stage"], "http");
    assert_eq!(base["outcome"]["kind"], "preflight_refused", "{report}");
    assert!(base["outcome"]["detail"]["cors_problem"].as_str().unwrap().contains("400"), "{base}");
    let first = &report["findings"][0];
    assert_eq!((first["id"].as_str(), first["kind"].as_str()), (Some("cors_refused"), Some("cause")), "{report}");
    assert_eq!(first["confidence"], "confirmed");
    assert!(first["next"][0].as_str().unwrap().starts_with("curl -si -X OPTIONS"), "{first}");
    // Its preflight and the documented twin's POST (in either order: they run side by side): the
    // browser's attempt sent no POST.
    let mut recs = [none.record().await, none.record().await];
    recs.sort_by_key(|r| r.reason != Reason::Preflight);
    let [pre, twin] = &recs;
    assert_eq!(pre.reason, Reason::Preflight, "{recs:?}");
    assert!(twin.origin.is_none() && twin.request.as_deref().is_some_and(|r| r.starts_with("POST ")), "{twin:?}");
}

/// What a page must change, named from the browser variants against front doors that accept less than
/// IoT Core documents (`[websocket]` settings): a refused subprotocol (cause, and risk the other way),
/// a filtered Origin (risk), a `//mqtt` URL (risk).
#[tokio::test(flavor = "multi_thread")]
async fn a_browser_probe_names_what_the_page_must_change() {
    let dir = tempfile::tempdir().unwrap();
    let run = |cfg: authprobe::emulator::EmulatorConfig, flags: &'static [&'static str]| {
        let dir = dir.path().to_owned();
        async move {
            let emu = start(cfg).await;
            let ca = dir.join(format!("ca-{}.pem", emu.addr.port()));
            std::fs::write(&ca, &emu.ca_pem).unwrap();
            let out = browser_probe_exit(&emu, &ca, flags).await;
            (out.status.code(), probe_report(&out.stdout))
        }
    };
    let finding = |r: &serde_json::Value, id: &str| -> serde_json::Value {
        r["findings"].as_array().unwrap().iter().find(|f| f["id"] == id).cloned().unwrap_or_default()
    };
    // Only `mqtt` is answered: a page offering `mqttv3.1` (the SDK v2) is dropped.
    let mut only_mqtt = emulator_with(Cors::None);
    only_mqtt.websocket.subprotocols = vec!["mqtt".into()];
    let (code, r) = run(only_mqtt.clone(), &["--ws-protocol", "mqttv3.1"]).await;
    assert_eq!(code, Some(1), "{r}");
    let first = &r["findings"][0];
    assert_eq!(first["id"], "ws_subprotocol_refused", "{r}");
    assert_eq!((first["kind"].as_str(), first["confidence"].as_str()), (Some("cause"), Some("confirmed")));
    assert!(first["fix"].as_str().unwrap().contains("offer mqtt"), "{first}");
    let causes = r["findings"].as_array().unwrap().iter().filter(|f| f["kind"] != "risk").count();
    assert_eq!(causes, 1, "one cause, nothing said of the authorizer: {r}");
    // The same front door, a page offering `mqtt`: it works, and the other subprotocol is a risk.
    // (Exit 1: `ws-protocol-other` is documented to connect and did not.)
    let (code, r) = run(only_mqtt, &["--ws-protocol", "mqtt"]).await;
    assert_eq!(code, Some(1), "{r}");
    assert_eq!(r["attempts"][0]["outcome"]["kind"], "connack_accepted", "{r}");
    assert!(r["findings"].as_array().unwrap().iter().all(|f| f["kind"] == "risk"), "{r}");
    assert_eq!(finding(&r, "ws_subprotocol_refused")["kind"], "risk", "{r}");

    // Origins filtered: the page's origin passes, another page's is refused (full matrix).
    let mut filtered = emulator_with(Cors::None);
    filtered.websocket.origins = vec!["https://app.example.com".into()];
    let (code, r) = run(filtered, &["--origin", "https://app.example.com", "--matrix", "full"]).await;
    assert_eq!(code, Some(0), "{r}");
    assert_eq!(finding(&r, "origin_refused")["kind"], "risk", "{r}");
    // The emulator answers `//mqtt` 404 (IoT Core's answer is undocumented): a risk on this endpoint.
    assert_eq!(finding(&r, "ws_path_wrong")["kind"], "risk", "{r}");
    assert!(finding(&r, "ws_path_wrong")["fix"].as_str().unwrap().contains("wss://HOST/mqtt"));
    // IoT Core's defaults: both subprotocols, any origin — no subprotocol or origin finding.
    let (code, r) = run(emulator_with(Cors::None), &["--matrix", "full"]).await;
    assert_eq!(code, Some(0), "{r}");
    assert!(finding(&r, "ws_subprotocol_refused").is_null() && finding(&r, "origin_refused").is_null(), "{r}");
}

/// A field failure: a page gives mqtt.js its password as an ArrayBuffer. The browser's upgrade
/// succeeds, then no CONNECT is ever sent: mqtt.js 5 closes the socket (older versions waited for
/// their 30 s connect timeout), and the page sees a close with no error. The emulator's record of
/// that connection says what happened: a browser's upgrade (subprotocol, Origin) and not one byte of
/// MQTT. The same page with a string password connects.
#[tokio::test(flavor = "multi_thread")]
async fn a_binary_password_sends_no_connect_and_the_record_says_so() {
    let mut cfg = emulator_with(Cors::None);
    cfg.limits.request_timeout = Duration::from_millis(1_500);
    let mut emu = start(cfg).await;
    let home = home_trusting(&[&emu.ca_pem]);
    let site = TcpListener::bind("127.0.0.1:0").unwrap();
    let origin = format!("http://{}", site.local_addr().unwrap());
    const BINARY_PAGE: &str = r#"<!doctype html><meta charset="utf-8"><script src="/mqtt.min.js"></script>
<script>
const q = new URLSearchParams(location.search);
function attempt(clientId, password) {
  return new Promise(resolve => {
    const r = { connected: false, events: [] }, t0 = Date.now();
    const c = mqtt.connect(`wss://${q.get('emu')}/mqtt`, { protocolVersion: 4, reconnectPeriod: 0, connectTimeout: 4000, clientId,
      username: `?x-amz-customauthorizer-name=${q.get('auth')}&token=${q.get('good')}`, password });
    const done = () => { clearTimeout(t); r.ms = Date.now() - t0; c.end(true); resolve(r); };
    const t = setTimeout(done, 8000);
    c.on('connect', () => { r.connected = true; done(); });
    c.on('error', e => r.events.push('error: ' + e.message));
    c.on('close', () => { r.events.push('close'); done(); });
  });
}
(async () => {
  const results = {
    binary: await attempt('page-binary', new Uint8Array([0x70, 0x77]).buffer),
    string: await attempt('page-string', 'pw'),
  };
  await fetch('/result', { method: 'POST', body: JSON.stringify(results) });
})();
</script>"#;
    let mqtt_js = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/node_modules/mqtt/dist/mqtt.min.js"),
    )
    .expect("mqtt.js: run `npm ci` in tests/browser (.ci/run does)");
    let url = format!("{origin}/?auth={AUTH}&good={GOOD}&emu=localhost:{}", emu.addr.port());
    let assets = vec![("/mqtt.min.js", "text/javascript", mqtt_js)];
    let results = in_chromium(&home, site, &url, BINARY_PAGE, assets).await;
    assert_eq!(results["string"]["connected"], true, "{results}");
    assert_eq!(results["binary"]["connected"], false, "{results}");
    let mut seen = Vec::new();
    record_of(&mut emu, &mut seen, "page-string").await;
    let binary = match seen.iter().find(|r| r.client_id.is_none()) {
        Some(r) => r.clone(),
        None => emu.record().await,
    };
    assert_eq!(binary.transport, Some(authprobe::auth::event::Transport::Wss), "{binary:?}");
    assert_eq!(binary.subprotocol.as_deref(), Some("mqtt"), "{binary:?}");
    assert!(matches!(binary.reason, Reason::ClosedByClient | Reason::RequestTimeout), "{binary:?}");
    assert!(
        binary.detail.contains("without sending a CONNECT") || binary.detail.contains("no byte at all"),
        "{binary:?}"
    );
    assert!(binary.event.is_none() && binary.authorizer.is_none(), "no authorizer ran: {binary:?}");
    assert_eq!(binary.origin.as_deref(), Some(origin.as_str()));
}
