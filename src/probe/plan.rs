//! What to probe, validated before any socket opens: the endpoint, trust, credentials, and one
//! `AttemptSpec` per attempt (the baseline of each transport, exactly as IoT Core documents it).

use crate::auth::credentials::{AUTHORIZER_NAME, Placement, SIGNATURE, encode};
use crate::auth::event::Transport;
use crate::secret::Secret;
use rustls::pki_types::CertificateDer;
use std::time::Duration;

/// Which certificates the probe trusts.
#[derive(Clone, Debug)]
pub enum Trust {
    /// The bundled Mozilla roots (webpki-roots), which include Amazon's.
    Bundled,
    /// Only these roots (`--ca`).
    Roots(Vec<CertificateDer<'static>>),
    /// No verification (`--insecure`); the chain is still recorded.
    Insecure,
}

/// What to check after the connection is accepted.
#[derive(Clone, Debug, Default)]
pub struct Checks {
    /// Publish to this topic after connecting.
    pub publish: Option<String>,
    /// Subscribe to this filter after connecting.
    pub subscribe: Option<String>,
}

impl Checks {
    /// Whether there is no check.
    pub fn is_empty(&self) -> bool {
        self.publish.is_none() && self.subscribe.is_none()
    }
}

/// The credentials a device would send.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    /// The authorizer name sent (`x-amz-customauthorizer-name`); none relies on the default authorizer.
    pub authorizer: Option<String>,
    /// The name the token travels under.
    pub token_key_name: String,
    /// The token.
    pub token: Option<Secret>,
    /// Standard base64; given, or computed from `--signing-key` at plan time.
    pub signature: Option<Secret>,
    /// The MQTT username (custom-auth parameters are appended after a `?`).
    pub username: Option<String>,
    /// The MQTT password.
    pub password: Option<Secret>,
    /// The key behind `--signing-key`, for variants that sign something else.
    pub signer: Option<std::sync::Arc<crate::auth::signature::SigningKey>>,
    /// Where each secret came from (`token from --token-file t.txt`): the report says it, so that a
    /// shared device profile cannot read a secret unseen.
    pub sources: Vec<String>,
}

/// The MQTT protocol version of CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MqttVersion {
    /// MQTT 3.1.1 (protocol level 4).
    V311,
    /// MQTT 5.
    V5,
}

impl MqttVersion {
    /// The protocol level byte (4 or 5).
    pub fn level(self) -> u8 {
        match self {
            Self::V311 => 4,
            Self::V5 => 5,
        }
    }
    /// `3.1.1` or `5`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V311 => "3.1.1",
            Self::V5 => "5",
        }
    }
}

/// A validated probe: everything `authprobe probe` needs, built once by [`PlanBuilder::build`] and
/// only read after. Its parts, each one concern: where the attempts go (`Target`), the device's
/// credentials, what the device sends ([`DeviceSends`]), what the attempts try (`Matrix`), how they
/// reach the endpoint ([`NetPath`]), and the AWS documents the user handed over.
#[derive(Clone, Debug)]
pub struct ProbePlan {
    pub(crate) target: Target,
    pub(crate) credentials: Credentials,
    pub(crate) device: DeviceSends,
    pub(crate) matrix: Matrix,
    pub(crate) network: NetPath,
    /// What the user's AWS documents say (describe-authorizer, keys, domain, endpoint).
    pub(crate) documents: crate::auth::documents::Documents,
    pub(crate) show_secrets: bool,
    /// The device's exact username carries a token other than the one given beside it: the plan
    /// judges the username's (the investigation says so).
    pub(crate) token_from_username: bool,
}

/// IoT Core's time limit for the authorizer function (docs/custom-auth.md §5).
pub const AUTHORIZER_LIMIT: Duration = Duration::from_secs(5);

/// Where the attempts go and whom they trust.
#[derive(Clone, Debug)]
pub(crate) struct Target {
    /// SNI, Host header and certificate name.
    pub(crate) endpoint: String,
    pub(crate) port: u16,
    /// Dial this host (and port) instead of resolving the endpoint.
    pub(crate) connect_to: Option<(String, Option<u16>)>,
    pub(crate) trust: Trust,
    /// The `--ca` file the roots came from, for findings to name.
    pub(crate) ca_file: Option<String>,
    /// The region and account of the resources the checks and findings name (`<account>` when not
    /// known).
    pub(crate) arns: crate::auth::policy::Arns,
}

/// What the attempts try, and how long each stage may take.
#[derive(Clone, Debug)]
pub(crate) struct Matrix {
    pub(crate) transports: Vec<Transport>,
    /// The HTTPS publish topic.
    pub(crate) topic: String,
    /// Post-connect checks on the mqtt and wss baselines (`--publish`, `--subscribe`).
    pub(crate) checks: Checks,
    /// SNI and Host of the "another name" variants.
    pub(crate) alt_sni: String,
    /// Run follow-up attempts that split the causes left (`--follow-up auto`).
    pub(crate) follow_up: bool,
    /// Gap between attempts that share a client ID (the baselines of several transports, the
    /// follow-ups): IoT Core allows about one connect a second per client ID.
    pub(crate) follow_up_spacing: Duration,
    /// Per-stage timeout.
    pub(crate) timeout: Duration,
    /// How long IoT Core waits for the authorizer function (5 s): refusals near it read as a slow or
    /// timed-out function.
    pub(crate) authorizer_limit: Duration,
}

/// A probe's settings before they are checked: [`ProbePlan::builder`], the setters, then
/// [`PlanBuilder::build`], the one place a plan is validated and made.
#[derive(Clone, Debug)]
pub struct PlanBuilder {
    plan: ProbePlan,
    /// Set with [`PlanBuilder::arns`]; else the endpoint's region, account unknown.
    arns: Option<crate::auth::policy::Arns>,
}

/// A setting a plan cannot be built with, named with the flag that sets it and what to change.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PlanError(String);

impl PlanBuilder {
    /// The endpoint: SNI, Host header and certificate name.
    pub fn endpoint(&mut self, endpoint: &str) -> &mut Self {
        self.plan.target.endpoint = endpoint.to_owned();
        self
    }
    /// The port (custom authentication uses 443).
    pub fn port(&mut self, port: u16) -> &mut Self {
        self.plan.target.port = port;
        self
    }
    /// Dial `host` (and `port`, else the endpoint's) instead of resolving the endpoint.
    pub fn connect_to(&mut self, host: &str, port: Option<u16>) -> &mut Self {
        self.plan.target.connect_to = Some((host.to_owned(), port));
        self
    }
    /// Which certificates to trust.
    pub fn trust(&mut self, trust: Trust) -> &mut Self {
        self.plan.target.trust = trust;
        self
    }
    /// The `--ca` file the roots came from, for findings to name.
    pub fn ca_file(&mut self, path: &str) -> &mut Self {
        self.plan.target.ca_file = Some(path.to_owned());
        self
    }
    /// The region and account the checks and findings name.
    pub fn arns(&mut self, arns: crate::auth::policy::Arns) -> &mut Self {
        self.arns = Some(arns);
        self
    }
    /// The device's credentials, to change one of them.
    pub fn credentials_mut(&mut self) -> &mut Credentials {
        &mut self.plan.credentials
    }
    /// What the device sends, to change one part of it.
    pub fn device_mut(&mut self) -> &mut DeviceSends {
        &mut self.plan.device
    }
    /// What the device sends where it differs from the documented attempt.
    pub fn device(&mut self, device: DeviceSends) -> &mut Self {
        self.plan.device = device;
        self
    }
    /// The device's client ID.
    pub fn client_id(&mut self, client_id: &str) -> &mut Self {
        self.plan.device.client_id = client_id.to_owned();
        self
    }
    /// The MQTT version of CONNECT.
    pub fn mqtt_version(&mut self, version: MqttVersion) -> &mut Self {
        self.plan.device.mqtt_version = version;
        self
    }
    /// The transports to try (none: all three).
    pub fn transports(&mut self, transports: Vec<Transport>) -> &mut Self {
        self.plan.matrix.transports = transports;
        self
    }
    /// The HTTPS publish topic.
    pub fn topic(&mut self, topic: &str) -> &mut Self {
        self.plan.matrix.topic = topic.to_owned();
        self
    }
    /// Post-connect checks on the mqtt and wss baselines, to change one.
    pub fn checks_mut(&mut self) -> &mut Checks {
        &mut self.plan.matrix.checks
    }
    /// Post-connect checks on the mqtt and wss baselines.
    pub fn checks(&mut self, checks: Checks) -> &mut Self {
        self.plan.matrix.checks = checks;
        self
    }
    /// SNI and Host of the "another name" variants.
    pub fn alt_sni(&mut self, name: &str) -> &mut Self {
        self.plan.matrix.alt_sni = name.to_owned();
        self
    }
    /// Whether follow-up attempts run (default: yes).
    pub fn follow_up(&mut self, on: bool) -> &mut Self {
        self.plan.matrix.follow_up = on;
        self
    }
    /// How far apart connects that share a client ID go (default 1.1 s, IoT Core's rate per client ID).
    pub fn follow_up_spacing(&mut self, spacing: Duration) -> &mut Self {
        self.plan.matrix.follow_up_spacing = spacing;
        self
    }
    /// How long each stage may take.
    pub fn timeout(&mut self, timeout: Duration) -> &mut Self {
        self.plan.matrix.timeout = timeout;
        self
    }
    /// How long the front door waits for the authorizer function: IoT Core's 5 s unless a front
    /// door is set up otherwise (the emulator's `time_limit`). Refusals near it read as a slow or
    /// timed-out function.
    pub fn authorizer_limit(&mut self, limit: Duration) -> &mut Self {
        self.plan.matrix.authorizer_limit = limit;
        self
    }
    /// How attempts reach the endpoint: proxy, name overrides, address family.
    pub fn network(&mut self, network: NetPath) -> &mut Self {
        self.plan.network = network;
        self
    }
    /// What the user's AWS documents say, to change one.
    pub fn documents_mut(&mut self) -> &mut crate::auth::documents::Documents {
        &mut self.plan.documents
    }
    /// What the user's AWS documents say.
    pub fn documents(&mut self, documents: crate::auth::documents::Documents) -> &mut Self {
        self.plan.documents = documents;
        self
    }
    /// Show secrets in what the run prints (`--show-secrets`).
    pub fn show_secrets(&mut self, show: bool) -> &mut Self {
        self.plan.show_secrets = show;
        self
    }

    /// The plan, once every setting is checked; the device's exact username lends the credentials
    /// it carries to what is judged.
    pub fn build(&self) -> Result<ProbePlan, PlanError> {
        let mut plan = self.plan.clone();
        plan.target.arns =
            self.arns.clone().unwrap_or_else(|| crate::auth::policy::Arns::for_endpoint(&plan.target.endpoint, None));
        let bad = |why: String| Err(PlanError(why));
        let t = &plan.target;
        if rustls::pki_types::ServerName::try_from(t.endpoint.clone()).is_err() {
            return bad(format!("--endpoint `{}` is not a host name or IP address", t.endpoint));
        }
        if t.port == 0 {
            return bad("--port 0 is not a port; custom authentication uses 443".into());
        }
        let m = &plan.matrix;
        if m.timeout.is_zero() || m.timeout > Duration::from_secs(3600) {
            return bad(format!(
                "--timeout must be more than 0 and at most 3600 seconds, got {}",
                m.timeout.as_secs_f64()
            ));
        }
        if !(Duration::from_millis(100)..=Duration::from_secs(60)).contains(&m.authorizer_limit) {
            return bad("the authorizer limit must be between 100 ms and 60 s".into());
        }
        if m.follow_up_spacing > Duration::from_secs(60) {
            return bad("--spacing must be between 0 and 60 seconds".into());
        }
        if rustls::pki_types::ServerName::try_from(m.alt_sni.clone()).is_err() {
            return bad(format!("--alt-sni `{}` is not a host name", m.alt_sni));
        }
        check_topics(&m.topic, &m.checks).map_err(PlanError)?;
        if m.transports.is_empty() {
            plan.matrix.transports = Transport::ALL.to_vec();
        }
        plan.matrix.transports.dedup();
        plan.adopt_username_raw();
        Ok(plan)
    }
}

/// The HTTPS publish topic and the post-connect checks' topics within IoT Core's limits.
fn check_topics(topic: &str, checks: &Checks) -> Result<(), String> {
    for (flag, t) in [
        ("--publish", checks.publish.as_deref()),
        ("--subscribe", checks.subscribe.as_deref()),
        ("--topic", Some(topic)),
    ] {
        if t.is_some_and(|t| t.is_empty() || t.len() > 256) {
            return Err(format!("{flag} must be 1 to 256 bytes (IoT Core's limit)"));
        }
    }
    if checks.publish.as_ref().is_some_and(|t| t.contains('+') || t.contains('#')) {
        return Err("--publish takes a topic, not a filter: `+` and `#` are not allowed".into());
    }
    if topic.contains('+') || topic.contains('#') {
        return Err("--topic is the HTTPS publish topic: `+` and `#` are not allowed in a topic".into());
    }
    Ok(())
}

/// How attempts reach the endpoint (`--proxy` and the proxy variables, `--resolve`, `-4`/`-6`).
#[derive(Clone, Debug, Default)]
pub struct NetPath {
    /// The proxy every attempt goes through.
    pub proxy: Option<super::proxy::Proxy>,
    /// Why a configured proxy is not used (the host matches `NO_PROXY` / `--noproxy`).
    pub proxy_bypassed: Option<String>,
    /// `--resolve HOST:PORT:ADDR[,ADDR…]`, as curl has it.
    pub resolve: Vec<ResolveOverride>,
    /// Which IP versions to dial.
    pub family: Family,
}

/// One `--resolve` entry: `host:port` answers these addresses, without asking DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveOverride {
    /// The host name (lower case).
    pub host: String,
    /// The port.
    pub port: u16,
    /// The addresses it answers.
    pub addrs: Vec<std::net::IpAddr>,
}

impl ResolveOverride {
    /// Parses curl's `HOST:PORT:ADDR[,ADDR]…` (IPv6 addresses may be bracketed).
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "--resolve `{s}`: {why}; expected HOST:PORT:ADDR, e.g. abc-ats.iot.eu-west-1.amazonaws.com:443:192.0.2.10"
            )
        };
        let mut parts = s.splitn(3, ':');
        let host = parts.next().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?;
        let port =
            parts.next().and_then(|p| p.parse::<u16>().ok()).filter(|p| *p != 0).ok_or_else(|| bad("bad port"))?;
        let addrs = parts.next().filter(|a| !a.is_empty()).ok_or_else(|| bad("no address"))?;
        let addrs = addrs
            .split(',')
            .map(|a| a.trim().trim_start_matches('[').trim_end_matches(']').parse::<std::net::IpAddr>())
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(&format!("an address does not parse ({e})")))?;
        Ok(Self { host: host.to_ascii_lowercase(), port, addrs })
    }
}

/// Which IP versions an attempt may dial.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    /// Every answer, in the resolver's order.
    #[default]
    Any,
    /// IPv4 only (`-4`).
    #[serde(rename = "ipv4")]
    V4,
    /// IPv6 only (`-6`).
    #[serde(rename = "ipv6")]
    V6,
    /// Each baseline over IPv4 and again over IPv6 (`--family both`), to compare.
    Both,
}

impl Family {
    /// Whether `ip` may be dialled.
    pub fn allows(self, ip: std::net::IpAddr) -> bool {
        match self {
            Self::Any | Self::Both => true,
            Self::V4 => ip.is_ipv4(),
            Self::V6 => ip.is_ipv6(),
        }
    }
}

/// The SNI a device sends.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Sni {
    /// The endpoint's name, as IoT Core documents it.
    #[default]
    Documented,
    /// No SNI extension (`--no-sni`).
    Omitted,
    /// This name (`--sni`).
    Name(String),
}

/// The Host header a device sends (wss, https).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum HostHeader {
    /// The endpoint's name, as IoT Core documents it.
    #[default]
    Documented,
    /// No Host header (`--no-host-header`).
    Omitted,
    /// This value (`--host-header`).
    Value(String),
}

/// What the device sends: its client ID and MQTT version, and where its attempt differs from the
/// documented one (the defaults are the documented form).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceSends {
    /// The client ID.
    pub client_id: String,
    /// The MQTT version.
    pub mqtt_version: MqttVersion,
    /// The SNI.
    pub sni: Sni,
    /// The ALPN list offered, on every transport (`Some(vec![])`: none).
    pub alpn: Option<Vec<Vec<u8>>>,
    /// The Host header (wss, https).
    pub host: HostHeader,
    /// Where the credentials go, on the transports that allow it.
    pub placement: Option<Placement>,
    /// The signature's base64 as is, even in a username or query.
    pub signature_raw: bool,
    /// The exact CONNECT username (credentials are not appended to it).
    pub username_raw: Option<String>,
    /// `Sec-WebSocket-Protocol` of the upgrade (default `mqtt`).
    pub ws_protocol: Option<String>,
    /// CONNECT keep-alive in seconds (default 60).
    pub keep_alive: Option<u16>,
    /// The page's origin when the client is a browser (`--client-type browser`): every WebSocket
    /// upgrade is then a browser's — its headers in its order, with this `Origin`.
    pub origin: Option<String>,
}

impl Default for DeviceSends {
    fn default() -> Self {
        Self {
            client_id: "authprobe".into(),
            mqtt_version: MqttVersion::V311,
            sni: Sni::Documented,
            alpn: None,
            host: HostHeader::Documented,
            placement: None,
            signature_raw: false,
            username_raw: None,
            ws_protocol: None,
            keep_alive: None,
            origin: None,
        }
    }
}

impl DeviceSends {
    /// Whether the device's attempt differs from the documented one in what it puts on the wire.
    pub fn deviates(&self) -> bool {
        self.sni != Sni::Documented
            || self.alpn.is_some()
            || self.host != HostHeader::Documented
            || self.placement.is_some()
            || self.signature_raw
            || self.username_raw.is_some()
            || self.ws_protocol.is_some()
            || self.origin.is_some()
    }

    /// The placement on transport `t`: the device's where `t` allows it, else the documented one.
    pub fn placement_for(&self, t: Transport) -> Placement {
        let documented = if t == Transport::Mqtt { Placement::Username } else { Placement::Header };
        match (self.placement, t) {
            (Some(p), Transport::Wss) => p,
            (Some(p @ (Placement::Query | Placement::Header)), Transport::Https) => p,
            _ => documented,
        }
    }
}

pub use crate::auth::policy::region_of;

/// How the signature travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureForm {
    /// Percent-encoded in a username or query; as is in a header (the documented form).
    Documented,
    /// Base64 as is, even inside a username or query (`+`, `/`, `=` unencoded).
    Raw,
    /// Not sent.
    Missing,
    /// Sent under a wrong parameter name.
    WrongName,
    /// A valid signature over something other than the token (needs `--signing-key`).
    OverOtherValue,
}

/// Parameter name of the `WrongName` signature variant.
pub const WRONG_SIGNATURE_NAME: &str = "x-amz-customauthorizer-token-signature";

/// How the MQTT username is assembled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UsernameForm {
    /// `<user>?<custom-auth params>` (docs/custom-auth.md §2).
    Plain,
    /// SDK metrics appended with `&`, as current SDKs do.
    SdkMetrics,
    /// SDK metrics appended with a second `?` — the bug real SDKs shipped.
    SecondQuestionMark,
}

/// SDK metrics as the AWS IoT Device SDK v2 for Python appends them.
pub const SDK_METRICS: &str =
    "SDK=IoTDeviceSDK/Python&Platform=Linux&Metadata=(CRTVersion=0.36.1;IoTSDKVersion=1.31.0)";

/// The result IoT Core is documented to give an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Expect {
    /// IoT Core is documented to accept it.
    Pass,
    /// IoT Core is documented to refuse it.
    Fail,
    /// Undocumented (docs/custom-auth.md §7 "unknown"), or it depends on the account (a default authorizer).
    Unknown,
}

/// One connection attempt.
#[derive(Clone, Debug)]
pub struct AttemptSpec {
    /// Stable identifier, e.g. `mqtt`, `wss/host-missing`.
    pub id: String,
    /// What the attempt changes from the documented baseline.
    pub variant: super::variant::Variant,
    /// Why a follow-up attempt runs (`None` for the matrix's attempts).
    pub follow_up: Option<String>,
    /// What the variant changes, in words.
    pub description: String,
    /// mqtt, wss or https.
    pub transport: Transport,
    /// SNI sent (`None`: no SNI extension).
    pub sni: Option<String>,
    /// The ALPN protocols offered.
    pub alpn: Vec<Vec<u8>>,
    /// Host header (wss, https).
    pub host: Option<String>,
    /// The port dialled.
    pub port: u16,
    /// Where the custom-auth parameters go.
    pub placement: Placement,
    /// How the signature travels.
    pub signature: SignatureForm,
    /// How the MQTT username is assembled.
    pub username_form: UsernameForm,
    /// The MQTT version of CONNECT.
    pub mqtt_version: MqttVersion,
    /// The client ID of CONNECT.
    pub client_id: String,
    /// The result IoT Core is documented to give.
    pub expect: Expect,
    /// Credentials for this attempt instead of the plan's (e.g. a deliberately wrong token key name).
    pub credentials: Option<Credentials>,
    /// The exact CONNECT username (`--username-raw`), on the attempts that keep the device's credentials.
    pub username_raw: Option<String>,
    /// The device's `Sec-WebSocket-Protocol` (`None`: `mqtt`).
    pub ws_protocol: Option<String>,
    /// The upgrade's path (`None`: `/mqtt`).
    pub ws_path: Option<String>,
    /// A browser's page origin: the upgrade is a browser's, with this `Origin` (`--client-type browser`).
    pub origin: Option<String>,
    /// The IP versions this attempt may dial.
    pub family: Family,
}

impl ProbePlan {
    /// The device's exact username (`--username-raw`) carries its own credentials: the diagnosis, the
    /// local checks and the variants use those — the token, signature and authorizer name IoT Core
    /// reads from it, percent-decoded — not values given beside it or made by this tool.
    /// The credentials the device sends, as IoT Core reads them: the plan's, with a token, signature
    /// or authorizer name found in the query of `--username` (or `--username-raw`) in place of
    /// missing ones. For judging what is sent (local checks, the causes possible), never for
    /// building what is sent.
    pub fn judged_credentials(&self) -> Credentials {
        use crate::auth::credentials::{AUTHORIZER_NAME, SIGNATURE, parse_query, split_username};
        let mut c = self.credentials.clone();
        let username = self.device.username_raw.as_ref().or(self.credentials.username.as_ref());
        let Some(query) = username.and_then(|u| split_username(u).1) else { return c };
        let params = parse_query(query, false);
        let find = |name: &str| params.iter().find(|p| p.name == name).map(|p| Secret::new(p.value.clone()));
        c.token = c.token.or_else(|| find(&c.token_key_name));
        c.signature = c.signature.or_else(|| find(SIGNATURE));
        c.authorizer = c.authorizer.or_else(|| find(AUTHORIZER_NAME).map(|a| a.expose().to_owned()));
        c
    }

    /// Takes the token, signature and authorizer name the device's exact username carries in place
    /// of those given beside it (what IoT Core reads is what the device sends).
    fn adopt_username_raw(&mut self) {
        use crate::auth::credentials::{AUTHORIZER_NAME, SIGNATURE, parse_query, split_username};
        let Some(raw) = self.device.username_raw.clone().filter(|u| u.contains('?')) else { return };
        let (_, query) = split_username(&raw);
        let params = parse_query(query.unwrap_or_default(), false);
        let find = |name: &str| params.iter().find(|p| p.name == name).map(|p| p.value.clone());
        let c = &mut self.credentials;
        if let Some(token) = find(&c.token_key_name).map(Secret::new) {
            self.token_from_username = c.token.as_ref().is_some_and(|t| *t != token);
            c.token = Some(token);
        }
        if let Some(signature) = find(SIGNATURE) {
            c.signature = Some(Secret::new(signature));
        }
        if c.authorizer.is_none() {
            c.authorizer = find(AUTHORIZER_NAME);
        }
    }

    /// A plan for `endpoint` with these credentials, every other setting at its default until set:
    /// port 443, all transports, client ID `authprobe`, MQTT 3.1.1, the bundled roots, 10 s per stage,
    /// secrets redacted, follow-ups on and spaced 1.1 s, the documented attempt.
    pub fn builder(endpoint: &str, credentials: Credentials) -> PlanBuilder {
        PlanBuilder {
            plan: Self {
                target: Target {
                    endpoint: endpoint.to_owned(),
                    port: 443,
                    connect_to: None,
                    trust: Trust::Bundled,
                    ca_file: None,
                    arns: crate::auth::policy::Arns::for_endpoint(endpoint, None),
                },
                credentials,
                device: DeviceSends::default(),
                matrix: Matrix {
                    transports: Transport::ALL.to_vec(),
                    topic: "authprobe/probe".into(),
                    checks: Checks::default(),
                    alt_sni: "example.com".into(),
                    follow_up: true,
                    follow_up_spacing: Duration::from_millis(1_100),
                    timeout: Duration::from_secs(10),
                    authorizer_limit: AUTHORIZER_LIMIT,
                },
                network: NetPath::default(),
                documents: Default::default(),
                show_secrets: false,
                token_from_username: false,
            },
            arns: None,
        }
    }

    /// The endpoint (SNI, Host header and certificate name).
    pub fn endpoint(&self) -> &str {
        &self.target.endpoint
    }

    /// The device's client ID.
    pub fn client_id(&self) -> &str {
        &self.device.client_id
    }

    /// A refusal or success this long after the request (ms) is close to the authorizer limit: 80 %.
    pub(crate) fn slow_ms(&self) -> u64 {
        self.limit_ms() * 4 / 5
    }

    /// A refusal this long after the request (ms) means the front door gave up on the authorizer: the
    /// limit less 4 % for clocks (a client cannot see a timeout earlier than the limit).
    pub(crate) fn timeout_ms(&self) -> u64 {
        self.limit_ms() * 24 / 25
    }

    fn limit_ms(&self) -> u64 {
        u64::try_from(self.matrix.authorizer_limit.as_millis()).unwrap_or(u64::MAX)
    }

    /// The authorizer limit in words: `5 s`, `500 ms`.
    pub(crate) fn limit_text(&self) -> String {
        let ms = self.limit_ms();
        if ms % 1000 == 0 { format!("{} s", ms / 1000) } else { format!("{ms} ms") }
    }

    /// The gap between connects that share a client ID.
    pub fn follow_up_spacing(&self) -> Duration {
        self.matrix.follow_up_spacing
    }

    /// One baseline attempt per requested transport: what the device sends (`DeviceSends`), which is
    /// the documented attempt unless the device deviates.
    pub fn baseline(&self) -> Vec<AttemptSpec> {
        let d = &self.device;
        self.documented()
            .into_iter()
            .map(|mut s| {
                let t = s.transport;
                match &d.sni {
                    Sni::Documented => {}
                    Sni::Omitted => s.sni = None,
                    Sni::Name(name) => s.sni = Some(name.clone()),
                }
                if let Some(alpn) = &d.alpn {
                    s.alpn = alpn.clone();
                }
                match (&d.host, t != Transport::Mqtt) {
                    (HostHeader::Omitted, true) => s.host = None,
                    (HostHeader::Value(v), true) => s.host = Some(v.clone()),
                    _ => {}
                }
                s.placement = d.placement_for(t);
                if d.signature_raw {
                    s.signature = SignatureForm::Raw;
                }
                if t != Transport::Https {
                    s.username_raw = d.username_raw.clone();
                }
                s.ws_protocol = d.ws_protocol.clone();
                if t != Transport::Mqtt {
                    s.origin = d.origin.clone();
                }
                if d.deviates() {
                    s.description = "as the device sends it".into();
                }
                s
            })
            .collect()
    }

    /// One attempt per requested transport exactly as IoT Core documents it.
    pub fn documented(&self) -> Vec<AttemptSpec> {
        self.matrix
            .transports
            .iter()
            .map(|&t| AttemptSpec {
                id: t.as_str().to_owned(),
                variant: super::variant::Variant::Baseline,
                follow_up: None,
                description: "as IoT Core documents it".into(),
                transport: t,
                sni: Some(self.target.endpoint.clone()),
                alpn: if t == Transport::Mqtt { vec![b"mqtt".to_vec()] } else { Vec::new() },
                host: (t != Transport::Mqtt).then(|| self.target.endpoint.clone()),
                port: self.target.port,
                placement: if t == Transport::Mqtt { Placement::Username } else { Placement::Header },
                signature: SignatureForm::Documented,
                username_form: UsernameForm::Plain,
                mqtt_version: self.device.mqtt_version,
                client_id: self.device.client_id.clone(),
                expect: Expect::Pass,
                credentials: None,
                username_raw: None,
                ws_protocol: None,
                ws_path: None,
                origin: None,
                // With `--family both` the baselines go over IPv4; their `ipv6` twins over IPv6.
                family: match self.network.family {
                    Family::Both => Family::V4,
                    f => f,
                },
            })
            .collect()
    }

    /// The custom-auth parameters in their wire form for `placement` (percent-encoded in queries):
    /// the one place the probe's token and signature are exposed, to be sent.
    pub fn auth_params(&self, spec: &AttemptSpec) -> Vec<(String, String)> {
        let c = self.credentials_for(spec);
        let in_query = spec.placement != Placement::Header;
        let enc = |v: &str| if in_query { encode(v) } else { v.to_owned() };
        let mut out = Vec::new();
        if let Some(a) = &c.authorizer {
            out.push((AUTHORIZER_NAME.to_owned(), enc(a)));
        }
        if let Some(s) = c.signature.as_ref().map(Secret::expose) {
            match spec.signature {
                SignatureForm::Documented => out.push((SIGNATURE.to_owned(), enc(s))),
                SignatureForm::Raw => out.push((SIGNATURE.to_owned(), s.to_owned())),
                SignatureForm::Missing => {}
                SignatureForm::WrongName => out.push((WRONG_SIGNATURE_NAME.to_owned(), enc(s))),
                SignatureForm::OverOtherValue => {
                    let token = c.token.as_ref().map_or("", Secret::expose);
                    let other = self.credentials.signer.as_ref().map(|k| k.sign(&format!("{token}\n")));
                    out.push((SIGNATURE.to_owned(), enc(other.as_deref().unwrap_or(s))));
                }
            }
        }
        if let Some(t) = &c.token {
            out.push((c.token_key_name.clone(), enc(t.expose())));
        }
        out
    }

    /// The credentials an attempt sends.
    pub fn credentials_for<'a>(&'a self, spec: &'a AttemptSpec) -> &'a Credentials {
        spec.credentials.as_ref().unwrap_or(&self.credentials)
    }

    /// Every secret this attempt sends, for redaction: each in every encoding it may travel in or
    /// come back in (an echoing server, a proxy's block page quoting the URL, a Basic credential).
    pub fn secrets(&self, spec: &AttemptSpec) -> crate::secret::Scrubber {
        let mut s = crate::secret::Scrubber::new(self.show_secrets);
        for c in [&self.credentials, self.credentials_for(spec)] {
            for v in [&c.token, &c.signature, &c.password].into_iter().flatten() {
                s.add_all_forms(v.expose());
            }
            if let Some(u) = &c.username {
                add_username_secrets(&mut s, u);
            }
        }
        for raw in [&self.device.username_raw, &spec.username_raw].into_iter().flatten() {
            add_username_secrets(&mut s, raw);
        }
        if let Some(p) = self.network.proxy.as_ref() {
            if let Some(pw) = &p.password {
                s.add_basic_credential(p.user.as_deref().unwrap_or_default(), pw.expose());
            }
        }
        s
    }
}

/// The values inside a device's own username (`--username-raw`, `--username`): every `name=value`
/// after the first `?` whose name is not the authorizer's (a token under any key name, a signature),
/// as sent and decoded.
fn add_username_secrets(s: &mut crate::secret::Scrubber, username: &str) {
    let Some((_, query)) = username.split_once('?') else { return };
    for pair in query.split(['?', '&']) {
        let Some((name, raw)) = pair.split_once('=') else { continue };
        if name.eq_ignore_ascii_case(crate::auth::credentials::AUTHORIZER_NAME) || raw.len() < 3 {
            continue;
        }
        let value = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        s.add_all_forms(&value);
        s.add_form(&value, raw);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timing_thresholds_follow_the_authorizer_limit() {
        let plan =
            ProbePlan::builder("abc123-ats.iot.us-east-1.amazonaws.com", Credentials::default()).build().unwrap();
        // IoT Core's 5 s: slow from 4 s, timed out from 4.8 s.
        assert_eq!((plan.slow_ms(), plan.timeout_ms(), plan.limit_text().as_str()), (4_000, 4_800, "5 s"));
        let mut b = ProbePlan::builder("abc123-ats.iot.us-east-1.amazonaws.com", Credentials::default());
        let plan = b.authorizer_limit(Duration::from_millis(1_500)).build().unwrap();
        assert_eq!((plan.slow_ms(), plan.timeout_ms(), plan.limit_text().as_str()), (1_200, 1_440, "1500 ms"));
        assert!(b.authorizer_limit(Duration::from_millis(10)).build().is_err());
    }

    #[test]
    fn a_plan_is_checked_when_it_is_built() {
        let b = || ProbePlan::builder("abc123-ats.iot.us-east-1.amazonaws.com", Credentials::default());
        assert!(b().port(0).build().unwrap_err().to_string().contains("--port 0"));
        assert!(b().timeout(Duration::ZERO).build().unwrap_err().to_string().contains("--timeout"));
        assert!(b().topic("a/#").build().unwrap_err().to_string().contains("--topic"));
        assert!(b().endpoint("not a host").build().unwrap_err().to_string().contains("--endpoint"));
        assert_eq!(b().transports(Vec::new()).build().unwrap().matrix.transports, Transport::ALL);
    }
}
