//! The emulator's validated configuration, and the readers that build it from a TOML file and from the
//! JSON `aws iot describe-authorizer` prints. Nothing here opens a socket.

use super::certs::Identity;
use super::record::RecordSink;
use super::settings::RejectSettings;
use crate::auth::policy::{self, Arns};
use crate::auth::signature::{KeyError, PublicKey};
use serde::Deserialize;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Endpoint names served when none are given.
pub const DEFAULT_ENDPOINTS: [&str; 2] = ["abc123-ats.iot.us-east-1.amazonaws.com", "localhost"];
/// IoT Core's limit for the authorizer function (docs/custom-auth.md §5).
pub const DEFAULT_TIME_LIMIT: Duration = Duration::from_secs(5);

/// Everything the emulator needs to serve; built and checked before any socket opens.
#[derive(Clone)]
pub struct EmulatorConfig {
    /// SNI names accepted as this account's endpoints (compared case-insensitively).
    pub endpoints: Vec<String>,
    /// The region and account of the resources (policies, the Lambda ARN).
    pub arns: Arns,
    /// The account's custom authorizers.
    pub authorizers: Vec<Authorizer>,
    /// The authorizer run when a connection names none.
    pub default_authorizer: Option<String>,
    /// When false, a name in the request is ignored and the default authorizer runs.
    pub allow_authorizer_override: bool,
    /// The function's time limit (5 s in IoT Core).
    pub time_limit: Duration,
    /// Latency added before every function invocation.
    pub latency: Duration,
    /// Whether a raw `+` in a query or username decodes to a space (docs/custom-auth.md §2: unknown).
    pub plus_as_space: bool,
    /// Simulate a middlebox on the path that strips ALPN (the emulator then sees none).
    pub strip_alpn: bool,
    /// An intermittent function: every `n`th invocation fails with a Lambda error (the 1st, the
    /// `n+1`th, …), whatever the token; the others run as configured.
    pub fail_every: Option<u32>,
    /// How each kind of refusal looks to the client (the undocumented choices).
    pub reject: RejectSettings,
    /// What the WebSocket upgrade accepts (the front door of a page's connection).
    pub websocket: WebSocketSettings,
    /// Bounds on what one peer may cost.
    pub limits: Limits,
    /// The certificate chain and key served.
    pub identity: Identity,
    /// Log tokens, signatures and passwords as they are instead of redacted.
    pub show_secrets: bool,
    /// Receives one record per connection (the binary writes them as JSON lines; tests inspect them).
    pub on_record: Option<RecordSink>,
}

/// What the WebSocket upgrade accepts. IoT Core documents neither a subprotocol list nor an Origin
/// check; the defaults accept both subprotocols MQTT clients offer and any origin. Narrower settings
/// stand in for what may sit in front of an endpoint (a custom domain's gateway, a proxy).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebSocketSettings {
    /// The subprotocols answered, in preference order; an upgrade that offers only others is
    /// answered 101 without `Sec-WebSocket-Protocol` (what a server that does not know it does:
    /// a browser then fails the connection before sending anything).
    pub subprotocols: Vec<String>,
    /// The origins accepted (`Origin` exactly); empty: any. An upgrade from another origin is
    /// answered 403, reason `origin_refused`; one without `Origin` (not a browser) always passes.
    pub origins: Vec<String>,
}

impl Default for WebSocketSettings {
    fn default() -> Self {
        Self { subprotocols: vec!["mqtt".into(), "mqttv3.1".into()], origins: Vec::new() }
    }
}

/// Bounds on what one peer may cost.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// ClientHello plus TLS handshake.
    pub handshake_timeout: Duration,
    /// The first request or CONNECT after the handshake.
    pub request_timeout: Duration,
    /// Largest MQTT packet, WebSocket message or HTTP body accepted (IoT: 128 KiB).
    pub max_packet: usize,
    /// Connections served at once (fewer if the open-file limit leaves less room); at the limit the
    /// oldest connection not yet authenticated is shed for a new one.
    pub max_connections: usize,
    /// Bytes all connections together may hold before authenticating, beyond the first 8 KiB of
    /// each; over it the oldest holder is shed.
    pub pre_auth_bytes: usize,
    /// Keep-alives below this are raised to it (IoT Core: 30 s); the session ends after 1.5× the
    /// keep-alive without a packet.
    pub min_keep_alive: Duration,
    /// Caps every connection's lifetime below `disconnectAfterInSeconds` (which IoT Core requires to
    /// be at least 300): for trying a device's reconnect logic without waiting five minutes.
    pub max_connect_time: Option<Duration>,
    /// Caps `refreshAfterInSeconds` (at least 300 at IoT Core) likewise, to see a refresh happen.
    pub max_refresh: Option<Duration>,
    /// IoT Core's connect rate per client ID ("Connect requests per second per client ID": 1): a
    /// CONNECT sooner than this after the last one for the same client ID is refused. Off by default.
    pub connect_interval: Option<Duration>,
    /// IoT Core's account-wide connect rate ("Connect requests per second per account": 500 by
    /// default): CONNECTs beyond it in any second are refused. Off by default.
    pub connect_rate: Option<u32>,
    /// Concurrent invocations of each authorizer's function (a Lambda reserved-concurrency stand-in):
    /// an invocation beyond it is throttled, and the connection refused as for a failing function.
    /// Off by default.
    pub authorizer_concurrency: Option<usize>,
    /// Added to the first invocation in each new concurrent execution environment (a Lambda cold
    /// start): the environments are as many as the most invocations ever in flight at once.
    pub cold_start: Duration,
}

/// IoT Core's default account connect rate, where `connect_rate` is turned on without a value.
pub const DEFAULT_CONNECT_RATE: u32 = 500;

impl Default for Limits {
    fn default() -> Self {
        Self {
            handshake_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(10),
            max_packet: 128 * 1024,
            max_connections: 4096,
            pre_auth_bytes: 16 * 1024 * 1024,
            min_keep_alive: Duration::from_secs(30),
            max_connect_time: None,
            max_refresh: None,
            connect_interval: None,
            connect_rate: None,
            authorizer_concurrency: None,
            cold_start: Duration::ZERO,
        }
    }
}

impl EmulatorConfig {
    /// Default settings with certificates generated for `endpoints`, and no authorizer.
    pub fn new(endpoints: Vec<String>) -> Result<Self, rcgen::Error> {
        let identity = Identity::generate(&endpoints)?;
        Ok(Self {
            endpoints,
            arns: Arns { region: "us-east-1".into(), account: "123456789012".into() },
            authorizers: Vec::new(),
            default_authorizer: None,
            allow_authorizer_override: true,
            time_limit: DEFAULT_TIME_LIMIT,
            latency: Duration::ZERO,
            plus_as_space: true,
            strip_alpn: false,
            fail_every: None,
            reject: RejectSettings::default(),
            websocket: WebSocketSettings::default(),
            limits: Limits::default(),
            identity,
            show_secrets: false,
            on_record: None,
        })
    }

    /// The authorizer named `name`.
    pub fn authorizer(&self, name: &str) -> Option<&Authorizer> {
        self.authorizers.iter().find(|a| a.name == name)
    }

    /// Checks cross-references (the default authorizer exists, names are unique).
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (i, a) in self.authorizers.iter().enumerate() {
            if self.authorizers[..i].iter().any(|b| b.name == a.name) {
                return Err(ConfigError::invalid("authorizers", format!("authorizer `{}` is defined twice", a.name)));
            }
            if !is_token_key_name(&a.token_key_name) {
                return Err(ConfigError::invalid(
                    "token_key_name",
                    format!("`{}` must match [a-zA-Z0-9_-]{{1,128}}", a.token_key_name),
                ));
            }
        }
        if let Some(d) = &self.default_authorizer {
            if self.authorizer(d).is_none() {
                return Err(ConfigError::invalid(
                    "default_authorizer",
                    format!("`{d}` is not one of the configured authorizers; add it or fix the name"),
                ));
            }
        }
        if self.endpoints.is_empty() {
            return Err(ConfigError::invalid("endpoints", "at least one endpoint name is needed".into()));
        }
        Ok(())
    }
}

fn is_token_key_name(k: &str) -> bool {
    (1..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// One custom authorizer.
#[derive(Clone, Debug)]
pub struct Authorizer {
    /// Its name (case-sensitive).
    pub name: String,
    /// The parameter or header name the token travels under.
    pub token_key_name: String,
    /// ACTIVE (true) or INACTIVE.
    pub active: bool,
    /// `None`: signing disabled. `Some(keys)`: a signature must verify with one of the keys.
    pub signing: Option<Vec<PublicKey>>,
    /// Where its function's answer comes from.
    pub function: Function,
}

impl Authorizer {
    /// An active authorizer with signing disabled whose function denies every token.
    pub fn new(name: &str, token_key_name: &str) -> Self {
        Self {
            name: name.into(),
            token_key_name: token_key_name.into(),
            active: true,
            signing: None,
            function: Function::Rules(Vec::new()),
        }
    }
}

/// Where the authorizer function's answer comes from.
#[derive(Clone, Debug)]
pub enum Function {
    /// Rules matched by token; a token no rule names is denied.
    Rules(Vec<Rule>),
    /// A shell command that reads the event JSON on stdin and prints the response JSON.
    Command(String),
    /// The user's Lambda handler, started under a runtime interface client, behind the Runtime API.
    Handler(Handler),
}

/// The user's Lambda handler: the command that starts it under a runtime interface client, and how
/// many warm workers run it (its concurrency). The emulator starts them when it starts serving.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handler {
    /// The command that starts the handler under a runtime interface client.
    pub command: String,
    /// Warm workers (concurrent invocations).
    pub workers: usize,
}

impl Handler {
    /// `command` with `workers` warm workers (at least one).
    pub fn new(command: &str, workers: usize) -> Self {
        Self { command: command.to_owned(), workers: workers.max(1) }
    }
}

/// A token and the answer the built-in function gives it.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The token this rule answers (shown redacted, like every secret).
    pub token: crate::secret::Secret,
    /// The function's answer to the token.
    pub answer: Answer,
}

/// What the built-in function answers.
#[derive(Clone, Debug)]
pub enum Answer {
    /// `isAuthenticated: true` with these policies.
    Allow {
        /// The `principalId` returned.
        principal_id: String,
        /// The `policyDocuments` returned.
        policies: Vec<Value>,
    },
    /// `isAuthenticated: false`.
    Deny,
    /// Return this JSON verbatim (to emulate a broken function).
    Respond(Value),
}

impl Rule {
    /// The built-in rule of `--allow-token`: allow `iot:*` on everything.
    pub fn allow_all(token: &str) -> Self {
        Self {
            token: token.into(),
            answer: Answer::Allow { principal_id: "authprobe".into(), policies: vec![policy::allow_all()] },
        }
    }
}

/// A bad configuration, naming the input and what to change.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A file could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why it could not be read.
        source: std::io::Error,
    },
    /// The TOML config does not parse (the line and setting, never a value).
    #[error("{path} is not valid TOML for the emulator: {message}")]
    Toml {
        /// The file.
        path: PathBuf,
        /// Where and what (never a value: it may be a secret).
        message: String,
    },
    /// A file over its size limit or not text.
    #[error(transparent)]
    Input(#[from] crate::input::InputError),
    /// A describe-authorizer JSON that does not parse.
    #[error(transparent)]
    Document(#[from] crate::auth::documents::DocumentError),
    /// A public key that does not parse.
    #[error("public key `{name}` ({origin}): {source}")]
    Key {
        /// The key's name.
        name: String,
        /// Where it came from (a file, inline PEM).
        origin: String,
        /// Why it does not parse.
        source: KeyError,
    },
    /// A setting with a value the emulator cannot use.
    #[error("setting `{field}`: {message}")]
    Invalid {
        /// The setting.
        field: String,
        /// What is wrong and what to change.
        message: String,
    },
}

impl ConfigError {
    /// A bad value of setting `field`.
    pub fn invalid(field: &str, message: String) -> Self {
        Self::Invalid { field: field.into(), message }
    }
}

/// A TOML error as its message and where it is (line and column), without the snippet of the line
/// that the parser's own text quotes: that line may hold a token or a password.
pub(crate) fn toml_error(e: &toml::de::Error, text: &str) -> String {
    // A message may quote a value (`invalid type: string "…"`): the value is left out.
    let mut message = String::new();
    let mut quoted = false;
    for c in e.message().trim().chars() {
        if c == '"' {
            if !quoted {
                message.push_str("\"…");
            } else {
                message.push('"');
            }
            quoted = !quoted;
        } else if !quoted {
            message.push(c);
        }
    }
    let message = crate::secret::escape(&message);
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            // The setting's name (never its value) says which line is meant.
            let whole = text.lines().nth(line - 1).unwrap_or_default();
            let key = whole.split_once('=').map(|(k, _)| crate::secret::escape(k.trim())).filter(|k| !k.is_empty());
            match key {
                Some(k) => format!("line {line}, column {column} (`{k}`): {message}"),
                None => format!("line {line}, column {column}: {message}"),
            }
        }
        None => message,
    }
}

/// A file a setting names (a key, a describe-authorizer JSON), at most a document's size.
fn read(path: &Path) -> Result<String, ConfigError> {
    Ok(crate::input::read_text(path, crate::input::Kind::Document, "a file named in the configuration")?)
}

/// Reads a public key given inline as PEM or as a file path (relative to `base`).
pub(crate) fn load_public_key(name: &str, pem_or_path: &str, base: &Path) -> Result<PublicKey, ConfigError> {
    let (pem, origin) = if pem_or_path.trim_start().starts_with("-----BEGIN") {
        (pem_or_path.to_owned(), "inline PEM".to_owned())
    } else {
        let path = base.join(pem_or_path);
        (read(&path)?, path.display().to_string())
    };
    PublicKey::from_pem(name, &pem).map_err(|source| ConfigError::Key { name: name.into(), origin, source })
}

/// The authorizer `aws iot describe-authorizer` describes (read by [`crate::auth::documents`]).
pub fn authorizer_from_describe_json(text: &str, path: &Path) -> Result<Authorizer, ConfigError> {
    let d = crate::auth::documents::DescribedAuthorizer::from_describe_json(text, path)?;
    let mut a = Authorizer::new(&d.name, &d.token_key_name);
    a.active = d.active;
    a.signing = d.signing_keys;
    Ok(a)
}

/// The TOML config file, as written by users (docs/emulate.md, "Config file").
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub(crate) listen: Option<String>,
    pub(crate) endpoints: Option<Vec<String>>,
    pub(crate) region: Option<String>,
    pub(crate) account: Option<String>,
    pub(crate) default_authorizer: Option<String>,
    pub(crate) allow_authorizer_override: Option<bool>,
    pub(crate) time_limit_ms: Option<u64>,
    pub(crate) latency_ms: Option<u64>,
    pub(crate) plus_as_space: Option<bool>,
    pub(crate) strip_alpn: Option<bool>,
    pub(crate) fail_every: Option<u32>,
    pub(crate) handshake_timeout_ms: Option<u64>,
    pub(crate) request_timeout_ms: Option<u64>,
    pub(crate) min_keep_alive_ms: Option<u64>,
    pub(crate) max_connect_time_ms: Option<u64>,
    pub(crate) max_refresh_ms: Option<u64>,
    pub(crate) connect_interval_ms: Option<u64>,
    pub(crate) connect_rate: Option<u32>,
    pub(crate) authorizer_concurrency: Option<usize>,
    pub(crate) cold_start_ms: Option<u64>,
    pub(crate) max_connections: Option<usize>,
    pub(crate) pre_auth_kib: Option<usize>,
    pub(crate) tls: Option<TlsFiles>,
    #[serde(default)]
    pub(crate) reject: RejectFile,
    pub(crate) websocket: Option<WebSocketFile>,
    #[serde(default)]
    pub(crate) authorizers: Vec<AuthorizerFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TlsFiles {
    pub(crate) cert: PathBuf,
    pub(crate) key: PathBuf,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebSocketFile {
    pub(crate) subprotocols: Option<Vec<String>>,
    pub(crate) origins: Option<Vec<String>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RejectFile {
    pub(crate) no_sni: Option<super::settings::TlsReject>,
    pub(crate) unknown_sni: Option<super::settings::TlsReject>,
    pub(crate) x509: Option<super::settings::TlsReject>,
    pub(crate) mqtt3: Option<super::settings::Mqtt3Reject>,
    pub(crate) mqtt5: Option<super::settings::Mqtt5Reject>,
    pub(crate) wss: Option<super::settings::WssReject>,
    pub(crate) non_http: Option<super::settings::NonHttp>,
    pub(crate) subscribe3: Option<super::settings::Subscribe3Deny>,
    pub(crate) cors: Option<super::settings::Cors>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuthorizerFile {
    pub(crate) name: Option<String>,
    pub(crate) describe_json: Option<PathBuf>,
    pub(crate) token_key_name: Option<String>,
    pub(crate) status: Option<String>,
    /// Key name → PEM text or path.
    pub(crate) public_keys: Option<std::collections::BTreeMap<String, String>>,
    pub(crate) command: Option<String>,
    /// The handler command behind the Runtime API (see `--authorizer-handler`), and its workers.
    pub(crate) handler: Option<String>,
    pub(crate) workers: Option<usize>,
    #[serde(default)]
    pub(crate) allow_tokens: Vec<String>,
    #[serde(default)]
    pub(crate) rules: Vec<RuleFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RuleFile {
    pub(crate) token: String,
    /// `allow`, `deny` or `respond`.
    pub(crate) effect: String,
    pub(crate) principal_id: Option<String>,
    /// Policy documents as JSON text.
    #[serde(default)]
    pub(crate) policies: Vec<String>,
    /// With `respond`: the JSON to return verbatim.
    pub(crate) response: Option<String>,
}

impl ConfigFile {
    /// Parses the TOML config file at `path` (errors name the line and the setting, never a value).
    pub fn parse(text: &str, path: &Path) -> Result<Self, ConfigError> {
        toml::from_str(text).map_err(|e| ConfigError::Toml { path: path.into(), message: toml_error(&e, text) })
    }

    /// Applies the file to `config`; relative paths are resolved against `base` (the file's folder).
    pub fn apply(self, config: &mut EmulatorConfig, base: &Path) -> Result<(), ConfigError> {
        let r = &mut config.reject;
        let f = self.reject;
        macro_rules! set { ($($x:ident),*) => { $( if let Some(v) = f.$x { r.$x = v; } )* } }
        set!(no_sni, unknown_sni, x509, mqtt3, mqtt5, wss, non_http, subscribe3, cors);
        if let Some(ws) = self.websocket {
            if let Some(list) = ws.subprotocols {
                if list.is_empty() || list.iter().any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_graphic())) {
                    return Err(ConfigError::invalid(
                        "websocket.subprotocols",
                        "give one or more tokens, e.g. [\"mqtt\", \"mqttv3.1\"]".into(),
                    ));
                }
                config.websocket.subprotocols = list;
            }
            if let Some(list) = ws.origins {
                config.websocket.origins = list;
            }
        }
        if let Some(v) = self.region {
            config.arns.region = v;
        }
        if let Some(v) = self.account {
            config.arns.account = v;
        }
        config.default_authorizer = self.default_authorizer.or(config.default_authorizer.take());
        config.allow_authorizer_override = self.allow_authorizer_override.unwrap_or(config.allow_authorizer_override);
        let ms = Duration::from_millis;
        config.time_limit = self.time_limit_ms.map_or(config.time_limit, ms);
        config.latency = self.latency_ms.map_or(config.latency, ms);
        config.plus_as_space = self.plus_as_space.unwrap_or(config.plus_as_space);
        config.strip_alpn = self.strip_alpn.unwrap_or(config.strip_alpn);
        config.fail_every = self.fail_every.filter(|n| *n > 0).or(config.fail_every);
        config.limits.handshake_timeout = self.handshake_timeout_ms.map_or(config.limits.handshake_timeout, ms);
        config.limits.request_timeout = self.request_timeout_ms.map_or(config.limits.request_timeout, ms);
        config.limits.min_keep_alive = self.min_keep_alive_ms.map_or(config.limits.min_keep_alive, ms);
        config.limits.max_connect_time = self.max_connect_time_ms.map(ms).or(config.limits.max_connect_time);
        config.limits.max_refresh = self.max_refresh_ms.map(ms).or(config.limits.max_refresh);
        config.limits.connect_interval = self.connect_interval_ms.map(ms).or(config.limits.connect_interval);
        if self.connect_rate == Some(0) || self.authorizer_concurrency == Some(0) {
            return Err(ConfigError::invalid(
                "connect_rate / authorizer_concurrency",
                "must be at least 1 (leave it out to turn the limit off)".into(),
            ));
        }
        config.limits.connect_rate = self.connect_rate.or(config.limits.connect_rate);
        config.limits.authorizer_concurrency = self.authorizer_concurrency.or(config.limits.authorizer_concurrency);
        config.limits.cold_start = self.cold_start_ms.map_or(config.limits.cold_start, ms);
        config.limits.max_connections = self.max_connections.unwrap_or(config.limits.max_connections).max(1);
        config.limits.pre_auth_bytes =
            self.pre_auth_kib.map_or(config.limits.pre_auth_bytes, |k| k.saturating_mul(1024));
        for a in self.authorizers {
            config.authorizers.push(a.build(base)?);
        }
        Ok(())
    }
}

impl AuthorizerFile {
    fn build(self, base: &Path) -> Result<Authorizer, ConfigError> {
        let mut a = match &self.describe_json {
            Some(p) => {
                let path = base.join(p);
                authorizer_from_describe_json(&read(&path)?, &path)?
            }
            None => {
                let name = self.name.as_deref().ok_or_else(|| {
                    ConfigError::invalid(
                        "authorizers.name",
                        "each [[authorizers]] needs `name` or `describe_json`".into(),
                    )
                })?;
                Authorizer::new(name, "token")
            }
        };
        if let Some(n) = self.name {
            a.name = n;
        }
        if let Some(k) = self.token_key_name {
            a.token_key_name = k;
        }
        if let Some(s) = self.status {
            a.active = match s.to_ascii_uppercase().as_str() {
                "ACTIVE" => true,
                "INACTIVE" => false,
                _ => return Err(ConfigError::invalid("authorizers.status", format!("`{s}`: use ACTIVE or INACTIVE"))),
            };
        }
        if let Some(keys) = self.public_keys {
            let keys: Result<Vec<_>, _> = keys.iter().map(|(n, v)| load_public_key(n, v, base)).collect();
            a.signing = Some(keys?).filter(|k| !k.is_empty());
        }
        a.function = match self.command {
            Some(_) if !self.rules.is_empty() || !self.allow_tokens.is_empty() => {
                return Err(ConfigError::invalid(
                    "authorizers.command",
                    format!("authorizer `{}` has both `command` and rules; keep one", a.name),
                ));
            }
            Some(_) if self.handler.is_some() => {
                return Err(ConfigError::invalid(
                    "authorizers.handler",
                    format!("authorizer `{}` has both `command` and `handler`; keep one", a.name),
                ));
            }
            Some(cmd) => Function::Command(cmd),
            None if self.handler.is_some() => {
                let cmd = self.handler.unwrap_or_default();
                if cmd.trim().is_empty() {
                    return Err(ConfigError::invalid(
                        "authorizers.handler",
                        "empty: give the command that starts your handler".into(),
                    ));
                }
                Function::Handler(Handler::new(&cmd, self.workers.unwrap_or(4).clamp(1, 256)))
            }
            None => {
                let mut rules: Vec<Rule> = self.allow_tokens.iter().map(|t| Rule::allow_all(t)).collect();
                for r in self.rules {
                    rules.push(r.build()?);
                }
                Function::Rules(rules)
            }
        };
        Ok(a)
    }
}

impl RuleFile {
    fn build(self) -> Result<Rule, ConfigError> {
        let json = |field: &str, text: &str| {
            serde_json::from_str::<Value>(text).map_err(|e| {
                ConfigError::invalid(
                    field,
                    format!("not JSON ({e}) in rule for token {}", crate::secret::redact(&self.token)),
                )
            })
        };
        let answer = match self.effect.as_str() {
            "allow" => Answer::Allow {
                principal_id: self.principal_id.clone().unwrap_or_else(|| "authprobe".into()),
                policies: if self.policies.is_empty() {
                    vec![policy::allow_all()]
                } else {
                    self.policies.iter().map(|p| json("rules.policies", p)).collect::<Result<_, _>>()?
                },
            },
            "deny" => Answer::Deny,
            "respond" => Answer::Respond(json(
                "rules.response",
                self.response.as_deref().ok_or_else(|| {
                    ConfigError::invalid("rules.response", "`effect = \"respond\"` needs `response`".into())
                })?,
            )?),
            other => {
                return Err(ConfigError::invalid("rules.effect", format!("`{other}`: use allow, deny or respond")));
            }
        };
        Ok(Rule { token: self.token.into(), answer })
    }
}
