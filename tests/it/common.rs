//! Shared test fixtures: an in-process emulator on 127.0.0.1:0 and clients that share no code with
//! authprobe's own client side (rumqttc, tokio-tungstenite, hyper, raw rustls, the openssl CLI).

#![allow(dead_code)] // not every test module uses every helper

use authprobe::emulator::{self, Authorizer, ConnectionRecord, EmulatorConfig, Function, Rule};
use base64::Engine as _;
use bytes::BytesMut;
use futures_util::{SinkExt as _, StreamExt as _};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::client::TlsStream;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore, pki_types::ServerName};
use tokio_tungstenite::tungstenite::{self, Message, client::IntoClientRequest as _};

pub const ENDPOINT: &str = "abc123-ats.iot.us-east-1.amazonaws.com";
pub const AUTH: &str = "MyAuthorizer";
pub const GOOD: &str = "good-token";
/// Upper bound on any single wait in tests: a hang fails the test instead of blocking CI.
pub const WAIT: Duration = Duration::from_secs(15);

/// A running in-process emulator.
pub struct Emu {
    pub addr: SocketAddr,
    pub ca_pem: String,
    records: mpsc::UnboundedReceiver<ConnectionRecord>,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for Emu {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Emu {
    /// An address with no emulator behind it (a listener the test holds), for bad-input tests.
    pub fn unstarted(addr: SocketAddr) -> Self {
        let (_tx, records) = mpsc::unbounded_channel();
        Self { addr, ca_pem: String::new(), records, stop: None }
    }

    /// The next finished connection's record.
    pub async fn record(&mut self) -> ConnectionRecord {
        tokio::time::timeout(WAIT, self.records.recv())
            .await
            .expect("a connection record in time")
            .expect("emulator running")
    }
}

/// Default emulator settings for tests: both endpoint names, secrets shown (the event is inspected).
pub fn config() -> EmulatorConfig {
    let mut cfg = EmulatorConfig::new(vec![ENDPOINT.into(), "localhost".into()]).unwrap();
    cfg.show_secrets = true;
    cfg
}

/// An authorizer allowing `GOOD` with `iot:*`, signing disabled.
pub fn allowing(name: &str) -> Authorizer {
    let mut a = Authorizer::new(name, "token");
    a.function = Function::Rules(vec![Rule::allow_all(GOOD)]);
    a
}

pub async fn start(cfg: EmulatorConfig) -> Emu {
    start_at(cfg, "127.0.0.1:0").await
}

/// An emulator whose authorizer `AUTH` allows `GOOD`, and a scratch directory holding its CA as
/// `ca.pem` (for clients that read a file).
pub async fn allowing_emulator_with_ca() -> (Emu, tempfile::TempDir, PathBuf) {
    let mut c = config();
    c.authorizers.push(allowing(AUTH));
    let emu = start(c).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &emu.ca_pem).unwrap();
    (emu, dir, ca)
}

/// The emulator on `bind` (e.g. `[::1]:0`).
pub async fn start_at(mut cfg: EmulatorConfig, bind: &str) -> Emu {
    let (tx, records) = mpsc::unbounded_channel();
    cfg.on_record = Some(Arc::new(move |r: &ConnectionRecord| {
        let _ = tx.send(r.clone());
    }));
    let ca_pem = cfg.identity.ca_pem.clone().unwrap();
    let listener = TcpListener::bind(bind).await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    tokio::spawn(async move {
        emulator::run(listener, cfg, async {
            let _ = stopped.await;
        })
        .await
        .unwrap();
    });
    Emu { addr, ca_pem, records, stop: Some(stop) }
}

pub fn client_config(ca_pem: &str, alpn: &[&[u8]]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for c in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let mut c = ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    c.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(c)
}

use rustls::pki_types::pem::PemObject as _;

/// A raw rustls connection; `sni: None` sends no SNI (the certificate is still checked for localhost).
pub async fn tls(
    addr: SocketAddr,
    sni: Option<&str>,
    alpn: &[&[u8]],
    ca_pem: &str,
) -> std::io::Result<TlsStream<TcpStream>> {
    let mut cfg = (*client_config(ca_pem, alpn)).clone();
    cfg.enable_sni = sni.is_some();
    let name = ServerName::try_from(sni.unwrap_or("localhost").to_owned()).unwrap();
    let tcp = TcpStream::connect(addr).await?;
    tokio::time::timeout(WAIT, tokio_rustls::TlsConnector::from(Arc::new(cfg)).connect(name, tcp))
        .await
        .map_err(|_| std::io::Error::other("TLS handshake timed out"))?
}

/// The rustls error inside an I/O error, if any.
pub fn rustls_error(e: &std::io::Error) -> Option<&rustls::Error> {
    e.get_ref().and_then(|inner| inner.downcast_ref::<rustls::Error>())
}

/// What an MQTT client observed after CONNECT.
#[derive(Debug, PartialEq, Eq)]
pub enum Connack {
    /// A CONNACK with this code (0 = accepted).
    Code(u8),
    /// The connection closed without a CONNACK.
    Closed(String),
}

/// MQTT 3.1.1 over TLS (ALPN `mqtt`, SNI `localhost`) with rumqttc's event loop.
pub async fn mqtt311(emu: &Emu, client_id: &str, username: &str, password: &str) -> Connack {
    use rumqttc::{AsyncClient, ConnectionError, Event, MqttOptions, Packet, TlsConfiguration, Transport};
    let mut opts = MqttOptions::new(client_id, "localhost", emu.addr.port());
    opts.set_credentials(username, password);
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(client_config(&emu.ca_pem, &[b"mqtt"]))));
    let (_client, mut el) = AsyncClient::new(opts, 10);
    match tokio::time::timeout(WAIT, el.poll()).await.expect("rumqttc answered in time") {
        Ok(Event::Incoming(Packet::ConnAck(ack))) => Connack::Code(ack.code as u8),
        Ok(other) => Connack::Closed(format!("unexpected {other:?}")),
        Err(ConnectionError::ConnectionRefused(code)) => Connack::Code(code as u8),
        Err(e) => Connack::Closed(e.to_string()),
    }
}

/// MQTT 5 over TLS with rumqttc's v5 event loop.
pub async fn mqtt5(emu: &Emu, client_id: &str, username: &str, password: &str) -> Connack {
    use rumqttc::v5::mqttbytes::v5::{ConnectReturnCode, Packet};
    use rumqttc::v5::{AsyncClient, ConnectionError, Event, MqttOptions};
    use rumqttc::{TlsConfiguration, Transport};
    let mut opts = MqttOptions::new(client_id, "localhost", emu.addr.port());
    opts.set_credentials(username, password);
    opts.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(client_config(&emu.ca_pem, &[b"mqtt"]))));
    let (_client, mut el) = AsyncClient::new(opts, 10);
    let code = |c: ConnectReturnCode| match c {
        ConnectReturnCode::Success => 0,
        ConnectReturnCode::NotAuthorized => 0x87,
        ConnectReturnCode::BadUserNamePassword => 0x86,
        other => panic!("unexpected reason code {other:?}"),
    };
    match tokio::time::timeout(WAIT, el.poll()).await.expect("rumqttc answered in time") {
        Ok(Event::Incoming(Packet::ConnAck(ack))) => Connack::Code(code(ack.code)),
        Ok(other) => Connack::Closed(format!("unexpected {other:?}")),
        Err(ConnectionError::ConnectionRefused(c)) => Connack::Code(code(c)),
        Err(e) => Connack::Closed(e.to_string()),
    }
}

/// An MQTT 3.1.1 CONNECT packet, encoded with rumqttc's codec.
pub fn connect_packet(client_id: &str, username: Option<&str>, password: &str) -> Vec<u8> {
    let mut c = rumqttc::mqttbytes::v4::Connect::new(client_id);
    c.keep_alive = 30;
    if let Some(u) = username {
        c.login = Some(rumqttc::mqttbytes::v4::Login::new(u, password));
    }
    let mut buf = BytesMut::new();
    c.write(&mut buf).unwrap();
    buf.to_vec()
}

/// What a WebSocket client observed.
#[derive(Debug, PartialEq, Eq)]
pub enum Wss {
    /// The upgrade was refused with this status and body.
    Refused(u16, String),
    /// Upgraded; then a CONNACK with this code.
    Connack(u8),
    /// Upgraded; then closed without a CONNACK.
    ClosedAfterUpgrade,
}

/// MQTT over WebSocket with tokio-tungstenite: upgrade `target` (path and query) with `headers`,
/// send `connect` in one binary frame, read the answer.
pub async fn wss(emu: &Emu, target: &str, headers: &[(&str, &str)], connect: Vec<u8>) -> Wss {
    let tls = tls(emu.addr, Some(ENDPOINT), &[], &emu.ca_pem).await.unwrap();
    let mut req = format!("wss://{ENDPOINT}{target}").into_client_request().unwrap();
    req.headers_mut().insert("sec-websocket-protocol", "mqtt".parse().unwrap());
    for (n, v) in headers {
        req.headers_mut().append(tungstenite::http::HeaderName::from_bytes(n.as_bytes()).unwrap(), v.parse().unwrap());
    }
    let (mut ws, _resp) = match tokio::time::timeout(WAIT, tokio_tungstenite::client_async(req, tls)).await.unwrap() {
        Ok(ok) => ok,
        Err(tungstenite::Error::Http(resp)) => {
            let body = resp.body().as_ref().map(|b| String::from_utf8_lossy(b).into_owned()).unwrap_or_default();
            return Wss::Refused(resp.status().as_u16(), body);
        }
        Err(e) => panic!("WebSocket handshake failed: {e}"),
    };
    ws.send(Message::binary(connect)).await.unwrap();
    loop {
        match tokio::time::timeout(WAIT, ws.next()).await.expect("an answer in time") {
            Some(Ok(Message::Binary(b))) => {
                assert_eq!(b[0], 0x20, "expected a CONNACK, got {b:?}");
                return Wss::Connack(b[3]);
            }
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            _ => return Wss::ClosedAfterUpgrade,
        }
    }
}

/// An HTTP response as hyper saw it.
#[derive(Debug)]
pub struct HttpAnswer {
    pub status: u16,
    pub error_type: Option<String>,
    pub body: serde_json::Value,
}

/// An HTTPS request with hyper's HTTP/1 client connection (no ALPN).
pub async fn https(emu: &Emu, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> HttpAnswer {
    use http_body_util::BodyExt as _;
    let tls = tls(emu.addr, Some(ENDPOINT), &[], &emu.ca_pem).await.unwrap();
    let (mut sender, conn) = hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls)).await.unwrap();
    tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(target).header("host", ENDPOINT);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let req = req.body(http_body_util::Full::new(bytes::Bytes::from(body.to_owned()))).unwrap();
    let resp = tokio::time::timeout(WAIT, sender.send_request(req)).await.unwrap().unwrap();
    let status = resp.status().as_u16();
    let error_type = resp.headers().get("x-amzn-ErrorType").map(|v| v.to_str().unwrap().to_owned());
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    HttpAnswer { status, error_type, body: serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null) }
}

/// An RSA 2048 key pair made by the openssl CLI, shared by every test of this run.
pub struct Keys {
    pub dir: tempfile::TempDir,
    pub private: PathBuf,
    pub public_pem: String,
}

pub fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let private = dir.path().join("key.pem");
        let public = dir.path().join("pub.pem");
        openssl(&[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            private.to_str().unwrap(),
        ]);
        openssl(&["pkey", "-in", private.to_str().unwrap(), "-pubout", "-out", public.to_str().unwrap()]);
        let public_pem = std::fs::read_to_string(&public).unwrap();
        Keys { dir, private, public_pem }
    })
}

pub fn openssl(args: &[&str]) -> Vec<u8> {
    let out =
        std::process::Command::new("openssl").args(args).output().expect("openssl is installed (.ci/run installs it)");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    out.stdout
}

/// `openssl dgst -sha256 -sign key.pem` over `token`, base64.
pub fn sign(token: &str) -> String {
    let k = keys();
    static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let input = k.dir.path().join(format!("token-{n}"));
    std::fs::write(&input, token).unwrap();
    let sig = openssl(&["dgst", "-sha256", "-sign", k.private.to_str().unwrap(), input.to_str().unwrap()]);
    base64::engine::general_purpose::STANDARD.encode(sig)
}

/// A token whose signature contains `+` (so raw and percent-encoded forms differ in meaning).
pub fn token_with_plus_in_signature() -> (String, String) {
    (0..64)
        .map(|i| format!("tok-{i}"))
        .map(|t| {
            let s = sign(&t);
            (t, s)
        })
        .find(|(_, s)| s.contains('+'))
        .expect("a signature with '+' among 64 tokens")
}

/// Percent-encodes `+`, `/` and `=` as the SDKs do.
pub fn pct(sig: &str) -> String {
    sig.replace('+', "%2B").replace('/', "%2F").replace('=', "%3D")
}

/// An authorizer with signing on (the test key) allowing `token` (and GOOD).
pub fn signed(name: &str, tokens: &[&str]) -> Authorizer {
    let mut a = allowing(name);
    a.signing = Some(vec![authprobe::auth::signature::PublicKey::from_pem("key1", &keys().public_pem).unwrap()]);
    let mut rules: Vec<Rule> = tokens.iter().map(|t| Rule::allow_all(t)).collect();
    rules.push(Rule::allow_all(GOOD));
    a.function = Function::Rules(rules);
    a
}

/// Username of spec §2 with the given parameters.
pub fn username(params: &[(&str, &str)]) -> String {
    let q: Vec<String> = params.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("?{}", q.join("&"))
}

/// A probe plan aimed at the emulator: endpoint ENDPOINT dialled at its address, its CA trusted,
/// authorizer AUTH with token GOOD, 5 s per stage.
pub fn probe_plan(emu: &Emu) -> authprobe::probe::ProbePlan {
    plan_builder(emu).build().unwrap()
}

/// The settings of [`probe_plan`], to change some before building.
pub fn plan_builder(emu: &Emu) -> authprobe::probe::PlanBuilder {
    plan_builder_at(emu.addr, &emu.ca_pem)
}

pub fn probe_plan_at(addr: SocketAddr, ca_pem: &str) -> authprobe::probe::ProbePlan {
    plan_builder_at(addr, ca_pem).build().unwrap()
}

/// A plan for the emulator at `addr` whose CA is `ca_pem`: authorizer `AUTH`, token `GOOD`.
pub fn plan_builder_at(addr: SocketAddr, ca_pem: &str) -> authprobe::probe::PlanBuilder {
    use authprobe::probe::{Credentials, ProbePlan, Trust};
    let roots = rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()).map(Result::unwrap).collect();
    let credentials = Credentials {
        authorizer: Some(AUTH.into()),
        token_key_name: "token".into(),
        token: Some(GOOD.into()),
        ..Credentials::default()
    };
    let mut b = ProbePlan::builder(ENDPOINT, credentials);
    b.connect_to(&addr.ip().to_string(), Some(addr.port()))
        .client_id("probe-test")
        .topic("probe/test")
        .trust(Trust::Roots(roots))
        .timeout(Duration::from_secs(5))
        // The emulator does not limit connects per client ID.
        .follow_up_spacing(Duration::from_millis(20))
        .arns(authprobe::auth::policy::Arns::new("us-east-1", "123456789012"));
    b
}

/// The baseline attempt of one transport.
pub fn baseline(
    plan: &authprobe::probe::ProbePlan,
    t: authprobe::auth::event::Transport,
) -> authprobe::probe::AttemptSpec {
    plan.baseline().into_iter().find(|s| s.transport == t).unwrap()
}

/// Runs one attempt, bounded so a hang fails the test.
pub async fn probe(
    plan: &authprobe::probe::ProbePlan,
    spec: &authprobe::probe::AttemptSpec,
) -> authprobe::probe::AttemptReport {
    tokio::time::timeout(Duration::from_secs(60), authprobe::probe::attempt::run(plan, spec))
        .await
        .expect("the attempt ends within its timeouts")
}

/// Runs the real binary with a scrubbed environment. A probe's JSON or JSON Lines on stdout is
/// validated against docs/schema/ (Python's jsonschema) before it is handed back.
pub fn authprobe_bin(args: &[&str]) -> std::process::Output {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_authprobe"))
        .args(args)
        .env_clear()
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let format = args.windows(2).find(|w| w[0] == "--format").map(|w| w[1]);
    let exit = out.status.code();
    if args.first() == Some(&"probe") && matches!(exit, Some(0 | 1 | 130)) && !args.contains(&"--output") {
        let text = String::from_utf8_lossy(&out.stdout);
        match format {
            Some("json") => super::fleet::validate("report", &[serde_json::from_str(&text).expect("a JSON report")]),
            Some("jsonl") => {
                let lines: Vec<serde_json::Value> =
                    text.lines().map(|l| serde_json::from_str(l).expect("a JSON Lines record")).collect();
                super::fleet::validate("jsonl", &lines);
            }
            _ => {}
        }
    }
    out
}

/// A probe's `--format json` report from its stdout, validated against docs/schema/.
pub fn probe_report(stdout: &[u8]) -> serde_json::Value {
    let report: serde_json::Value = serde_json::from_slice(stdout)
        .unwrap_or_else(|e| panic!("a JSON report ({e}):\n{}", String::from_utf8_lossy(stdout)));
    super::fleet::validate("report", std::slice::from_ref(&report));
    report
}

/// The finding id a report prints, typed (`docs/causes.md` lists them).
pub fn id(s: &str) -> authprobe::diagnosis::FindingId {
    s.parse().unwrap_or_else(|e| panic!("{e}"))
}

/// The cause a report names as a candidate, typed.
pub fn cause(s: &str) -> authprobe::diagnosis::Cause {
    authprobe::diagnosis::Cause::from_id(s).unwrap_or_else(|| panic!("`{s}` is not a cause id"))
}
