//! One connection attempt: resolve → tcp → tls → (mqtt | upgrade → mqtt | http), every stage timed,
//! what was sent recorded (secrets redacted), the stop point classified.

use super::advice::{Advice, advise};
use super::classify::{Observation, classify};
use super::outcome::{Kind, Outcome, Stage};
use super::plan::{AttemptSpec, Expect, ProbePlan, SDK_METRICS, Trust, UsernameForm};
use super::sent::{Resolver, Sent, SentCredential, SentProxy};
use super::turn::Turn;
use super::{authorize, https, mqtt, proxy, resolve, tcp, tls, websocket};
use crate::auth::credentials::{Placement, encode, join_query, username_with};
use crate::auth::event::Transport;
use crate::secret::Scrubber;
use crate::wire::mqtt::{Bytes, Frames};
use serde::Serialize;
use tokio::time::Instant;

/// How long a stage took.
#[derive(Clone, Debug, Serialize)]
pub struct StageTime {
    /// The stage.
    pub stage: Stage,
    /// Its duration in milliseconds.
    pub ms: u64,
}

/// The result of one attempt.
#[derive(Clone, Debug, Serialize)]
pub struct AttemptReport {
    /// The attempt's id (`mqtt`, `wss/host-missing`, …).
    pub id: String,
    /// What it changes from the baseline.
    pub variant: super::variant::Variant,
    /// Why this follow-up ran (only on follow-up attempts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub follow_up: Option<String>,
    /// Sent with the device's own client ID (`--client-id`), not a per-variant one.
    pub exact_client_id: bool,
    /// Where the custom-auth parameters went.
    pub placement: Placement,
    /// The credentials this attempt sent instead of the plan's (secrets: never serialised).
    #[serde(skip)]
    pub credentials: Option<super::plan::Credentials>,
    /// The change, in words.
    pub description: String,
    /// mqtt, wss or https.
    pub transport: Transport,
    /// What IoT Core is documented to do with this attempt.
    pub expect: Expect,
    /// Whether it reached its transport's success.
    pub succeeded: bool,
    /// The result differs from the documented one.
    pub surprising: bool,
    /// What it sent.
    pub sent: Sent,
    /// Each stage it went through and how long it took.
    pub stages: Vec<StageTime>,
    /// Where it stopped, and the evidence.
    pub outcome: Outcome,
    /// Post-connect checks (stage `authorize`), in order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<Outcome>,
    /// What the outcome means and what to check next.
    pub advice: Advice,
    /// When its CONNECT went out (when it started, if it sent none; Unix milliseconds), for the
    /// intervals between connects of one client ID.
    #[serde(skip)]
    pub connect_unix_ms: u64,
}

/// Runs one attempt; never fails (every failure is an outcome).
pub async fn run(plan: &ProbePlan, spec: &AttemptSpec) -> AttemptReport {
    run_in_turn(plan, spec, &mut Turn::free()).await
}

/// Runs one attempt whose CONNECT waits for `turn` (attempts sharing a client ID).
pub(crate) async fn run_in_turn(plan: &ProbePlan, spec: &AttemptSpec, turn: &mut Turn) -> AttemptReport {
    let scrub = plan.secrets(spec);
    let mut trace = Trace {
        sent: Sent::default(),
        stages: Vec::new(),
        deadline: Instant::now() + plan.matrix.timeout,
        connect_unix_ms: unix_ms(),
        checks: Vec::new(),
    };
    trace.sent.insecure = matches!(plan.target.trust, Trust::Insecure);
    // What the peer sent is scrubbed before it is classified and shown: a server may echo anything.
    let obs = attempt(plan, spec, &scrub, &mut trace, turn).await.scrubbed(&scrub);
    let checks = std::mem::take(&mut trace.checks);
    let connected = classify(&obs);
    // With checks, the attempt ends at the first failing one (or the last, when all pass).
    let outcome = match checks.iter().find(|c| !c.success).or(checks.last()) {
        Some(c) if connected.success => c.clone(),
        _ => connected,
    };
    tracing::debug!(attempt = %spec.id, stage = outcome.stage.as_str(), kind = %outcome.kind.as_str(), "outcome");
    let advice = advise(&outcome, spec, plan, &trace.sent);
    let surprising = match spec.expect {
        Expect::Pass => !outcome.success,
        Expect::Fail => outcome.success,
        Expect::Unknown => false,
    };
    AttemptReport {
        id: spec.id.clone(),
        variant: spec.variant,
        follow_up: spec.follow_up.clone(),
        exact_client_id: spec.client_id == plan.device.client_id,
        placement: spec.placement,
        credentials: spec.credentials.clone(),
        description: spec.description.clone(),
        transport: spec.transport,
        expect: spec.expect,
        succeeded: outcome.success,
        surprising,
        sent: trace.sent,
        stages: trace.stages,
        outcome,
        checks,
        advice,
        connect_unix_ms: trace.connect_unix_ms,
    }
}

/// Now, in Unix milliseconds.
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

struct Trace {
    sent: Sent,
    stages: Vec<StageTime>,
    /// When `--timeout` runs out for this attempt (moved on by the time it waits for its turn).
    deadline: Instant,
    /// When its CONNECT went out (when it started, if it sent none).
    connect_unix_ms: u64,
    /// The post-connect checks' outcomes.
    checks: Vec<Outcome>,
}

impl Trace {
    fn time(&mut self, stage: Stage, since: Instant) {
        self.stages.push(StageTime { stage, ms: since.elapsed().as_millis() as u64 });
    }

    /// What is left of the attempt's `--timeout`.
    fn left(&self) -> std::time::Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// Waits for the turn to send the CONNECT; the wait does not count against the timeout.
    async fn take_turn(&mut self, turn: &mut Turn) {
        let before = turn.waited;
        turn.connect().await;
        self.deadline += turn.waited - before;
        self.connect_unix_ms = unix_ms();
    }
}

async fn attempt(
    plan: &ProbePlan,
    spec: &AttemptSpec,
    scrub: &Scrubber,
    t: &mut Trace,
    turn: &mut Turn,
) -> Observation {
    let tcp = match reach(plan, spec, t).await {
        Ok(tcp) => tcp,
        Err(o) => return o,
    };
    // TLS never sends an IP literal as SNI: record what went on the wire.
    t.sent.sni = spec.sni.clone().filter(|s| s.parse::<std::net::IpAddr>().is_err());
    t.sent.alpn_offered = spec.alpn.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    let start = Instant::now();
    let shaken =
        tls::handshake(tcp, &plan.target.endpoint, spec.sni.as_deref(), &spec.alpn, &plan.target.trust, t.left()).await;
    t.time(Stage::Tls, start);
    let (stream, info) = match shaken {
        Ok(s) => s,
        Err(o) => return o,
    };
    tracing::debug!(attempt = %spec.id, version = ?info.version, alpn = ?info.alpn, "tls established");
    t.sent.tls = Some(info);
    let params = plan.auth_params(spec);
    t.sent.credentials = params
        .iter()
        .map(|(k, v)| SentCredential {
            parameter: k.clone(),
            placement: spec.placement,
            encoding: if v.contains('%') { "percent-encoded" } else { "as-is" },
            value: scrub.scrub(v),
        })
        .collect();
    match spec.transport {
        Transport::Mqtt => over_tls(plan, spec, stream, &params, scrub, t, turn).await,
        Transport::Wss => over_websocket(plan, spec, stream, &params, scrub, t, turn).await,
        Transport::Https => publish(plan, spec, stream, &params, scrub, t).await,
    }
}

/// The TCP connection to the endpoint: its name resolved (or the proxy's), dialled, and tunnelled
/// through the proxy if there is one.
async fn reach(plan: &ProbePlan, spec: &AttemptSpec, t: &mut Trace) -> Result<tokio::net::TcpStream, Observation> {
    let (host, port) = match &plan.target.connect_to {
        Some((h, p)) => (h.as_str(), p.unwrap_or(spec.port)),
        None => (plan.target.endpoint.as_str(), spec.port),
    };
    let path = &plan.network;
    let proxy = path.proxy.as_ref();
    t.sent.family = spec.family;
    let start = Instant::now();
    // The endpoint's own name, unless the proxy resolves it.
    let mut target = Vec::new();
    if proxy.is_none_or(|p| !p.resolves_name()) {
        match resolve::resolve(host, port, &path.resolve, spec.family, t.left()).await {
            Ok((answers, usable)) => {
                t.sent.dns = Some(answers);
                target = usable;
            }
            Err(o) => {
                t.time(Stage::Resolve, start);
                return Err(o);
            }
        }
    }
    let addrs = match proxy {
        None => target.clone(),
        Some(p) => {
            t.sent.proxy = Some(SentProxy {
                url: p.display(plan.show_secrets),
                source: p.source,
                resolves: if p.resolves_name() { Resolver::Proxy } else { Resolver::Local },
                target: match target.first() {
                    Some(a) if !p.resolves_name() => a.to_string(),
                    _ => format!("{host}:{port}"),
                },
            });
            match resolve::resolve(&p.host, p.port, &path.resolve, super::plan::Family::Any, t.left()).await {
                Ok((_, usable)) => usable,
                Err(o) => {
                    t.time(Stage::Resolve, start);
                    return Err(o);
                }
            }
        }
    };
    t.time(Stage::Resolve, start);
    t.sent.resolved = addrs.iter().map(ToString::to_string).collect();
    let start = Instant::now();
    let dialled = tcp::dial(&addrs, t.left()).await;
    t.time(Stage::Tcp, start);
    let (mut tcp, addr) = dialled?;
    t.sent.address = Some(addr.to_string());
    if let Some(p) = proxy {
        let start = Instant::now();
        let tunnel = proxy::tunnel(tcp, p, host, port, target.first().copied(), t.left()).await;
        t.time(Stage::Proxy, start);
        tcp = tunnel?;
    }
    tracing::debug!(attempt = %spec.id, %addr, "tcp connected");
    Ok(tcp)
}

/// MQTT over TLS: CONNECT → CONNACK, then the post-connect checks on the baseline.
async fn over_tls(
    plan: &ProbePlan,
    spec: &AttemptSpec,
    mut stream: tls::Stream,
    params: &[(String, String)],
    scrub: &Scrubber,
    t: &mut Trace,
    turn: &mut Turn,
) -> Observation {
    let connect = connect_for(plan, spec, params, scrub, t);
    t.take_turn(turn).await;
    let start = Instant::now();
    let ch = &mut Bytes(&mut stream);
    let obs = mqtt::exchange(ch, spec.mqtt_version, &connect, t.left()).await;
    t.time(Stage::Mqtt, start);
    if classify(&obs).kind == Kind::ConnackAccepted {
        if spec.variant == super::variant::Variant::Baseline && !plan.matrix.checks.is_empty() {
            let start = Instant::now();
            t.checks =
                authorize::run(ch, spec.mqtt_version, &plan.matrix.checks, &plan.target.arns, plan.matrix.timeout)
                    .await;
            t.time(Stage::Authorize, start);
        }
        goodbye(&mut stream).await;
    }
    obs
}

/// MQTT over WebSocket: upgrade → CONNECT in a binary frame → CONNACK, then the checks.
async fn over_websocket(
    plan: &ProbePlan,
    spec: &AttemptSpec,
    stream: tls::Stream,
    params: &[(String, String)],
    scrub: &Scrubber,
    t: &mut Trace,
    turn: &mut Turn,
) -> Observation {
    let (target, headers) = http_parts(spec.ws_path.clone().unwrap_or_else(|| "/mqtt".to_owned()), spec, params);
    t.sent.request = Some(scrub.scrub(&format!("GET {target}")));
    t.sent.host_header = spec.host.clone();
    let protocol = spec.ws_protocol.as_deref().unwrap_or(websocket::PROTOCOL);
    t.sent.ws_protocol = Some(protocol.to_owned());
    let start = Instant::now();
    let origin = spec.origin.as_deref();
    let upgraded =
        websocket::upgrade(stream, &target, spec.host.as_deref(), protocol, &headers, origin, t.left()).await;
    t.time(Stage::Upgrade, start);
    let ch = &mut match upgraded {
        // A text frame from the server counts as data: its bytes are classified like any reply.
        Ok(ws) => Frames::new(ws, true),
        Err(o) => return o,
    };
    let connect = connect_for(plan, spec, params, scrub, t);
    t.take_turn(turn).await;
    let start = Instant::now();
    let obs = mqtt::exchange(ch, spec.mqtt_version, &connect, t.left()).await;
    t.time(Stage::Mqtt, start);
    if classify(&obs).kind == Kind::ConnackAccepted
        && spec.variant == super::variant::Variant::Baseline
        && !plan.matrix.checks.is_empty()
    {
        let start = Instant::now();
        t.checks =
            authorize::run(ch, spec.mqtt_version, &plan.matrix.checks, &plan.target.arns, plan.matrix.timeout).await;
        t.time(Stage::Authorize, start);
    }
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), ch.ws.close(None)).await;
    obs
}

/// HTTPS: `POST /topics/<topic>?qos=1` → status. A page's publish (`--client-type browser`) is
/// preceded by the CORS preflight its custom headers make the browser send; the browser sends the
/// POST only if the preflight's answer lets it, on a new connection (the emulator and many servers
/// close after each answer; a browser reconnects as this does).
async fn publish(
    plan: &ProbePlan,
    spec: &AttemptSpec,
    stream: tls::Stream,
    params: &[(String, String)],
    scrub: &Scrubber,
    t: &mut Trace,
) -> Observation {
    let path = format!("/topics/{}?qos=1", encode_topic(&plan.matrix.topic));
    let (target, headers) = http_parts(path, spec, params);
    t.sent.request = Some(scrub.scrub(&format!("POST {target}")));
    t.sent.host_header = spec.host.clone();
    let Some(origin) = spec.origin.as_deref() else {
        let start = Instant::now();
        let obs = https::publish(stream, &target, spec.host.as_deref(), &headers, https::BODY, t.left()).await;
        t.time(Stage::Http, start);
        return obs;
    };
    let host = spec.host.as_deref();
    let post = https::browser_headers(host, &headers, https::BODY, origin);
    // What the page itself set (the browser adds the rest): its custom headers and the body's type.
    let mut page_set = headers.clone();
    page_set.push(("content-type".to_owned(), super::cors::CONTENT_TYPE.to_owned()));
    let requested = super::cors::requested_headers(&page_set);
    let mut cors =
        super::cors::CorsSeen { origin: origin.to_owned(), requested_headers: requested.clone(), ..Default::default() };
    let mut stream = Some(stream);
    if !requested.is_empty() {
        let start = Instant::now();
        let pre = https::preflight_headers(host, origin, &requested);
        let tls = stream.take().expect("the first connection");
        let answer = https::request(tls, "OPTIONS", &target, &pre, "", true, t.left()).await;
        t.time(Stage::Http, start);
        let answer = match answer {
            Ok(a) => a,
            Err(o) => {
                t.sent.cors = Some(cors);
                return o;
            }
        };
        cors.preflight_status = Some(answer.status);
        if let Err(problem) = super::cors::judge_preflight(answer.status, &answer.headers, origin, &requested) {
            cors.preflight_refused = Some(problem.clone());
            t.sent.cors = Some(cors);
            return Observation::PreflightRefused { status: answer.status, problem };
        }
    }
    t.sent.cors = Some(cors.clone());
    let tls = match stream {
        Some(s) => s,
        None => match reconnect(plan, spec, t).await {
            Ok(s) => s,
            Err(o) => return o,
        },
    };
    let start = Instant::now();
    let answer = https::request(tls, "POST", &target, &post, https::BODY, true, t.left()).await;
    t.time(Stage::Http, start);
    if let Ok(a) = &answer {
        cors.answer_readable = Some(super::cors::cors_check(&a.headers, origin).is_ok());
    }
    t.sent.cors = Some(cors);
    https::answered(answer)
}

/// A second connection for the same attempt (a page's publish after its preflight): resolved,
/// dialled and shaken hands as the first, within what is left of the attempt's `--timeout`.
async fn reconnect(plan: &ProbePlan, spec: &AttemptSpec, t: &mut Trace) -> Result<tls::Stream, Observation> {
    let tcp = reach(plan, spec, t).await?;
    let start = Instant::now();
    let shaken =
        tls::handshake(tcp, &plan.target.endpoint, spec.sni.as_deref(), &spec.alpn, &plan.target.trust, t.left()).await;
    t.time(Stage::Tls, start);
    shaken.map(|(s, _)| s)
}

/// The CONNECT username of this attempt: credentials in it when the spec places them there.
pub fn mqtt_username(plan: &ProbePlan, spec: &AttemptSpec, params: &[(String, String)]) -> String {
    if let Some(raw) = &spec.username_raw {
        return raw.clone();
    }
    let user = plan.credentials_for(spec).username.clone().unwrap_or_default();
    let username = if spec.placement == Placement::Username { username_with(&user, params) } else { user };
    match spec.username_form {
        UsernameForm::Plain => username,
        UsernameForm::SdkMetrics => username_with(&username, &[]) + &metrics_join(&username, '&'),
        UsernameForm::SecondQuestionMark => username + &metrics_join("", '?'),
    }
}

/// What IoT Core would see of this attempt, for the authorizer event (`authprobe event`).
pub fn observed(plan: &ProbePlan, spec: &AttemptSpec, websocket_key: &str) -> crate::auth::event::Observed {
    use crate::auth::event::{ConnectInfo, Observed};
    let params = plan.auth_params(spec);
    let connect = || {
        let password = plan.credentials_for(spec).password.clone().filter(|p| !p.is_empty());
        let username = mqtt_username(plan, spec, &params);
        Some(ConnectInfo {
            username: (!username.is_empty()).then_some(username),
            password: password.map(|p| p.expose().as_bytes().to_vec()),
            client_id: spec.client_id.clone(),
        })
    };
    let (target, headers) = match spec.transport {
        Transport::Mqtt => {
            return Observed { server_name: spec.sni.clone(), connect: connect(), ..Observed::default() };
        }
        Transport::Wss => {
            let (target, extra) = http_parts(spec.ws_path.clone().unwrap_or_else(|| "/mqtt".to_owned()), spec, &params);
            let protocol = spec.ws_protocol.as_deref().unwrap_or(websocket::PROTOCOL);
            let origin = spec.origin.as_deref();
            (target, websocket::headers(spec.host.as_deref(), websocket_key, protocol, &extra, origin))
        }
        Transport::Https => {
            let (target, extra) =
                http_parts(format!("/topics/{}?qos=1", encode_topic(&plan.matrix.topic)), spec, &params);
            let headers = match spec.origin.as_deref() {
                Some(origin) => https::browser_headers(spec.host.as_deref(), &extra, https::BODY, origin),
                None => https::headers(spec.host.as_deref(), &extra, https::BODY),
            };
            (target, headers)
        }
    };
    Observed {
        server_name: spec.sni.clone(),
        headers,
        query: target.split_once('?').map(|(_, q)| q.to_owned()),
        connect: if spec.transport == Transport::Wss { connect() } else { None },
    }
}

/// The CONNECT for this attempt.
fn connect_for(
    plan: &ProbePlan,
    spec: &AttemptSpec,
    params: &[(String, String)],
    scrub: &Scrubber,
    t: &mut Trace,
) -> Vec<u8> {
    let c = plan.credentials_for(spec);
    let username = mqtt_username(plan, spec, params);
    let password = c.password.clone().unwrap_or_default();
    t.sent.username = (!username.is_empty()).then(|| scrub.scrub(&username));
    t.sent.password = (!password.is_empty()).then(|| scrub.value(password.expose()));
    t.sent.client_id = Some(spec.client_id.clone());
    tracing::debug!(attempt = %spec.id, username = %scrub.scrub(&username), client_id = %spec.client_id, "sending CONNECT");
    t.sent.mqtt_version = Some(spec.mqtt_version.as_str());
    let keep_alive = plan.device.keep_alive.unwrap_or(mqtt::KEEP_ALIVE);
    t.sent.keep_alive = Some(keep_alive);
    if spec.variant == super::variant::Variant::Mqtt5EnhancedAuth {
        return mqtt::connect_packet_with_auth_method(
            &spec.client_id,
            &username,
            password.expose(),
            keep_alive,
            "SCRAM-SHA-256",
        );
    }
    mqtt::connect_packet(spec.mqtt_version, &spec.client_id, &username, password.expose(), keep_alive)
}

/// The SDK metrics suffix: joined with `&` after an existing query (or `?` if none), or with `sep`.
fn metrics_join(username: &str, sep: char) -> String {
    let sep = if sep == '&' && !username.contains('?') { '?' } else { sep };
    format!("{sep}{SDK_METRICS}")
}

/// The request target and headers: credentials in the query or in headers, as the spec places them.
fn http_parts(path: String, spec: &AttemptSpec, params: &[(String, String)]) -> (String, Vec<(String, String)>) {
    match spec.placement {
        Placement::Query if !params.is_empty() => {
            let sep = if path.contains('?') { '&' } else { '?' };
            (format!("{path}{sep}{}", join_query(params)), Vec::new())
        }
        Placement::Header => (path, params.to_vec()),
        _ => (path, Vec::new()),
    }
}

/// Topic levels are kept; each level is percent-encoded.
fn encode_topic(topic: &str) -> String {
    topic.split('/').map(encode).collect::<Vec<_>>().join("/")
}

/// After an accepted CONNACK: DISCONNECT and close, briefly.
async fn goodbye(stream: &mut tls::Stream) {
    use tokio::io::AsyncWriteExt as _;
    // MQTT 3.1.1's DISCONNECT; in MQTT 5 the same two bytes are a normal disconnection (reason 0).
    let mut disconnect = bytes::BytesMut::new();
    let _logged = crate::wire::mqtt::encode(&mut disconnect, |o| rumqttc::mqttbytes::v4::Disconnect.write(o));
    let _ = tokio::time::timeout(std::time::Duration::from_secs(1), async {
        let _ = stream.write_all(&disconnect).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
