//! What to probe, validated before any socket opens: the endpoint, trust, credentials, and one
//! `AttemptSpec` per attempt (the baseline of each transport, exactly as IoT Core documents it).

use crate::auth::credentials::{AUTHORIZER_NAME, Placement, SIGNATURE, encode};
use crate::auth::event::Transport;
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
    pub publish: Option<String>,
    pub subscribe: Option<String>,
}

impl Checks {
    pub fn is_empty(&self) -> bool {
        self.publish.is_none() && self.subscribe.is_none()
    }
}

/// The credentials a device would send.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub authorizer: Option<String>,
    pub token_key_name: String,
    pub token: Option<String>,
    /// Standard base64; given, or computed from `--signing-key` at plan time.
    pub signature: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The MQTT protocol version of CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MqttVersion {
    V311,
    V5,
}

impl MqttVersion {
    pub fn level(self) -> u8 {
        match self {
            Self::V311 => 4,
            Self::V5 => 5,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V311 => "3.1.1",
            Self::V5 => "5",
        }
    }
}

/// A validated probe: everything `authprobe probe` needs.
#[derive(Clone, Debug)]
pub struct ProbePlan {
    /// SNI, Host header and certificate name.
    pub endpoint: String,
    pub port: u16,
    /// Dial this host (and port) instead of resolving the endpoint.
    pub connect_to: Option<(String, Option<u16>)>,
    pub transports: Vec<Transport>,
    pub credentials: Credentials,
    pub client_id: String,
    pub mqtt_version: MqttVersion,
    pub topic: String,
    pub trust: Trust,
    /// Per-stage timeout.
    pub timeout: Duration,
    pub show_secrets: bool,
    /// The key behind `--signing-key`, for variants that sign something else.
    pub signer: Option<std::sync::Arc<crate::auth::signature::SigningKey>>,
    /// SNI and Host of the "another name" variants.
    pub alt_sni: String,
    /// Problems with the settings found before anything was sent (the failed local checks are
    /// added to these by the diagnosis, `diagnosis::local::for_plan`).
    /// Where each secret came from (`token from --token-file t.txt`): the report says it, so that a
    /// shared device profile cannot read a secret unseen.
    pub secret_sources: Vec<String>,
    pub warnings: Vec<String>,
    /// What the user's AWS documents say (describe-authorizer, keys, domain, endpoint).
    pub documents: crate::auth::documents::Documents,
    /// Run follow-up attempts that split the causes left (`--follow-up auto`).
    pub follow_up: bool,
    /// Gap between attempts that share a client ID (the baselines of several transports, the
    /// follow-ups): IoT Core allows about one connect a second per client ID.
    pub follow_up_spacing: Duration,
    /// Post-connect checks on the mqtt and wss baselines (`--publish`, `--subscribe`).
    pub checks: Checks,
    /// The region and account of the resources the checks and findings name (`<account>` when not
    /// known).
    pub arns: crate::auth::policy::Arns,
    /// What the device sends where it differs from the documented attempt (`--sni`, `--alpn`, …).
    pub device: DeviceSends,
    /// How attempts reach the endpoint: proxy, name overrides, address family.
    pub path: NetPath,
    /// The `--ca` file the roots came from, for findings to name.
    pub ca_file: Option<String>,
}

/// How attempts reach the endpoint (`--proxy` and the proxy variables, `--resolve`, `-4`/`-6`).
#[derive(Clone, Debug, Default)]
pub struct NetPath {
    pub proxy: Option<super::proxy::Proxy>,
    /// Why a configured proxy is not used (the host matches `NO_PROXY` / `--noproxy`).
    pub proxy_bypassed: Option<String>,
    /// `--resolve HOST:PORT:ADDR[,ADDR…]`, as curl has it.
    pub resolve: Vec<ResolveOverride>,
    pub family: Family,
}

/// One `--resolve` entry: `host:port` answers these addresses, without asking DNS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResolveOverride {
    pub host: String,
    pub port: u16,
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
    pub fn allows(self, ip: std::net::IpAddr) -> bool {
        match self {
            Self::Any | Self::Both => true,
            Self::V4 => ip.is_ipv4(),
            Self::V6 => ip.is_ipv6(),
        }
    }
}

/// How a device's attempt differs from the documented one; `None` everywhere is the documented form.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceSends {
    /// `Some(None)`: no SNI; `Some(Some(name))`: that name.
    pub sni: Option<Option<String>>,
    /// The ALPN list offered, on every transport (`Some(vec![])`: none).
    pub alpn: Option<Vec<Vec<u8>>>,
    /// `Some(None)`: no Host header; `Some(Some(value))`: that value (wss, https).
    pub host: Option<Option<String>>,
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
}

impl DeviceSends {
    /// Whether the device's attempt differs from the documented one in what it puts on the wire.
    pub fn deviates(&self) -> bool {
        self.sni.is_some()
            || self.alpn.is_some()
            || self.host.is_some()
            || self.placement.is_some()
            || self.signature_raw
            || self.username_raw.is_some()
            || self.ws_protocol.is_some()
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
    Pass,
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
    pub transport: Transport,
    /// SNI sent (`None`: no SNI extension).
    pub sni: Option<String>,
    pub alpn: Vec<Vec<u8>>,
    /// Host header (wss, https).
    pub host: Option<String>,
    pub port: u16,
    /// Where the custom-auth parameters go.
    pub placement: Placement,
    pub signature: SignatureForm,
    pub username_form: UsernameForm,
    pub mqtt_version: MqttVersion,
    pub client_id: String,
    /// The result IoT Core is documented to give.
    pub expect: Expect,
    /// Credentials for this attempt instead of the plan's (e.g. a deliberately wrong token key name).
    pub credentials: Option<Credentials>,
    /// The exact CONNECT username (`--username-raw`), on the attempts that keep the device's credentials.
    pub username_raw: Option<String>,
    /// The device's `Sec-WebSocket-Protocol` (`None`: `mqtt`).
    pub ws_protocol: Option<String>,
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
        let find = |name: &str| params.iter().find(|p| p.name == name).map(|p| p.value.clone());
        c.token = c.token.or_else(|| find(&c.token_key_name));
        c.signature = c.signature.or_else(|| find(SIGNATURE));
        c.authorizer = c.authorizer.or_else(|| find(AUTHORIZER_NAME));
        c
    }

    pub fn adopt_username_raw(&mut self) {
        use crate::auth::credentials::{AUTHORIZER_NAME, SIGNATURE, parse_query, split_username};
        let Some(raw) = self.device.username_raw.clone().filter(|u| u.contains('?')) else { return };
        let (_, query) = split_username(&raw);
        let params = parse_query(query.unwrap_or_default(), false);
        let find = |name: &str| params.iter().find(|p| p.name == name).map(|p| p.value.clone());
        let c = &mut self.credentials;
        if let Some(token) = find(&c.token_key_name) {
            if c.token.as_ref().is_some_and(|t| *t != token) {
                self.warnings.push(format!(
                    "the username carries its own token under `{}`: the diagnosis judges that one, not --token's",
                    c.token_key_name
                ));
            }
            c.token = Some(token);
        }
        if let Some(signature) = find(SIGNATURE) {
            c.signature = Some(signature);
        }
        if c.authorizer.is_none() {
            c.authorizer = find(AUTHORIZER_NAME);
        }
    }

    /// A plan for `endpoint` with these credentials and every other setting at its default: port 443,
    /// all transports, client ID `authprobe`, MQTT 3.1.1, the bundled roots, 10 s per stage, secrets
    /// redacted, follow-ups on and spaced 1.1 s, the documented attempt.
    pub fn new(endpoint: &str, credentials: Credentials) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            port: 443,
            connect_to: None,
            transports: Transport::ALL.to_vec(),
            credentials,
            client_id: "authprobe".into(),
            mqtt_version: MqttVersion::V311,
            topic: "authprobe/probe".into(),
            trust: Trust::Bundled,
            timeout: Duration::from_secs(10),
            show_secrets: false,
            signer: None,
            alt_sni: "example.com".into(),
            secret_sources: Vec::new(),
            warnings: Vec::new(),
            documents: Default::default(),
            follow_up: true,
            follow_up_spacing: Duration::from_millis(1_100),
            checks: Default::default(),
            arns: crate::auth::policy::Arns::for_endpoint(endpoint, None),
            device: DeviceSends::default(),
            path: NetPath::default(),
            ca_file: None,
        }
    }

    /// One baseline attempt per requested transport: what the device sends (`DeviceSends`), which is
    /// the documented attempt unless the device deviates.
    pub fn baseline(&self) -> Vec<AttemptSpec> {
        let d = &self.device;
        self.documented()
            .into_iter()
            .map(|mut s| {
                let t = s.transport;
                if let Some(sni) = &d.sni {
                    s.sni = sni.clone();
                }
                if let Some(alpn) = &d.alpn {
                    s.alpn = alpn.clone();
                }
                if let (Some(host), true) = (&d.host, t != Transport::Mqtt) {
                    s.host = host.clone();
                }
                s.placement = d.placement_for(t);
                if d.signature_raw {
                    s.signature = SignatureForm::Raw;
                }
                if t != Transport::Https {
                    s.username_raw = d.username_raw.clone();
                }
                s.ws_protocol = d.ws_protocol.clone();
                if d.deviates() {
                    s.description = "as the device sends it".into();
                }
                s
            })
            .collect()
    }

    /// One attempt per requested transport exactly as IoT Core documents it.
    pub fn documented(&self) -> Vec<AttemptSpec> {
        self.transports
            .iter()
            .map(|&t| AttemptSpec {
                id: t.as_str().to_owned(),
                variant: super::variant::Variant::Baseline,
                follow_up: None,
                description: "as IoT Core documents it".into(),
                transport: t,
                sni: Some(self.endpoint.clone()),
                alpn: if t == Transport::Mqtt { vec![b"mqtt".to_vec()] } else { Vec::new() },
                host: (t != Transport::Mqtt).then(|| self.endpoint.clone()),
                port: self.port,
                placement: if t == Transport::Mqtt { Placement::Username } else { Placement::Header },
                signature: SignatureForm::Documented,
                username_form: UsernameForm::Plain,
                mqtt_version: self.mqtt_version,
                client_id: self.client_id.clone(),
                expect: Expect::Pass,
                credentials: None,
                username_raw: None,
                ws_protocol: None,
                // With `--family both` the baselines go over IPv4; their `ipv6` twins over IPv6.
                family: match self.path.family {
                    Family::Both => Family::V4,
                    f => f,
                },
            })
            .collect()
    }

    /// The custom-auth parameters in their wire form for `placement` (percent-encoded in queries).
    pub fn auth_params(&self, spec: &AttemptSpec) -> Vec<(String, String)> {
        let c = self.credentials_for(spec);
        let in_query = spec.placement != Placement::Header;
        let enc = |v: &str| if in_query { encode(v) } else { v.to_owned() };
        let mut out = Vec::new();
        if let Some(a) = &c.authorizer {
            out.push((AUTHORIZER_NAME.to_owned(), enc(a)));
        }
        if let Some(s) = &c.signature {
            match spec.signature {
                SignatureForm::Documented => out.push((SIGNATURE.to_owned(), enc(s))),
                SignatureForm::Raw => out.push((SIGNATURE.to_owned(), s.clone())),
                SignatureForm::Missing => {}
                SignatureForm::WrongName => out.push((WRONG_SIGNATURE_NAME.to_owned(), enc(s))),
                SignatureForm::OverOtherValue => {
                    let other =
                        self.signer.as_ref().map(|k| k.sign(&format!("{}\n", c.token.as_deref().unwrap_or_default())));
                    out.push((SIGNATURE.to_owned(), enc(other.as_deref().unwrap_or(s))));
                }
            }
        }
        if let Some(t) = &c.token {
            out.push((c.token_key_name.clone(), enc(t)));
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
                s.add_all_forms(v);
            }
            if let Some(u) = &c.username {
                add_username_secrets(&mut s, u);
            }
        }
        for raw in [&self.device.username_raw, &spec.username_raw].into_iter().flatten() {
            add_username_secrets(&mut s, raw);
        }
        if let Some(p) = self.path.proxy.as_ref() {
            if let Some(pw) = &p.password {
                s.add_basic_credential(p.user.as_deref().unwrap_or_default(), pw);
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
