//! `authprobe probe`: flags become a validated `ProbePlan` (exit 2 on bad input, nothing sent), then
//! one attempt per transport, rendered as text or JSON.

use crate::auth::event::Transport;
use crate::auth::signature::SigningKey;
use crate::probe::{Credentials, MqttVersion, ProbePlan, Trust};
use crate::report::{Report, text};
use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use std::io::{IsTerminal as _, Write as _};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum TransportArg {
    Mqtt,
    Wss,
    Https,
}

impl From<TransportArg> for Transport {
    fn from(t: TransportArg) -> Self {
        match t {
            TransportArg::Mqtt => Self::Mqtt,
            TransportArg::Wss => Self::Wss,
            TransportArg::Https => Self::Https,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MqttVersionArg {
    #[value(name = "3.1.1")]
    V311,
    #[value(name = "5")]
    V5,
}

/// Output flags shared by `probe` and `demo`.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Report format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Show tokens, signatures and passwords instead of `<redacted len=N sha256=…>`.
    #[arg(long)]
    pub show_secrets: bool,
}

/// The credentials a device sends (shared by `probe` and `event`).
#[derive(Debug, Args, Clone)]
pub struct CredentialArgs {
    /// The authorizer's name (x-amz-customauthorizer-name). Omit to use the endpoint's default authorizer.
    #[arg(long, value_name = "NAME")]
    pub authorizer: Option<String>,
    /// The authorizer's token key name (default: from --authorizer-json, else `token`).
    #[arg(long, value_name = "KEY")]
    pub token_key_name: Option<String>,
    /// `aws iot describe-authorizer` output: name, token key name, signing keys and status.
    #[arg(long, value_name = "FILE")]
    pub authorizer_json: Option<PathBuf>,
    /// The token.
    #[arg(long, value_name = "VALUE")]
    pub token: Option<String>,
    /// The token's signature, standard base64 (sent percent-encoded where needed).
    #[arg(long, value_name = "B64", conflicts_with = "signing_key")]
    pub signature: Option<String>,
    /// Sign the token with this RSA private key (PKCS#1 or PKCS#8 PEM).
    #[arg(long, value_name = "PEM")]
    pub signing_key: Option<PathBuf>,
    /// MQTT username (custom-auth parameters are appended after `?`).
    #[arg(long)]
    pub username: Option<String>,
    /// MQTT password.
    #[arg(long)]
    pub password: Option<String>,
    /// MQTT client ID. Default: authprobe-<random>.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    #[arg(long, value_enum, default_value_t = MqttVersionArg::V311)]
    pub mqtt_version: MqttVersionArg,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The IoT data endpoint (or custom domain): SNI, Host header and certificate name.
    #[arg(long, value_name = "HOST", required_unless_present_any = ["endpoint_json", "domain_json"])]
    pub endpoint: Option<String>,
    /// `aws iot describe-endpoint` output: the endpoint, when --endpoint is not given.
    #[arg(long, value_name = "FILE")]
    pub endpoint_json: Option<PathBuf>,
    /// `aws iot describe-domain-configuration` output: domain name, default authorizer, authentication type.
    #[arg(long, value_name = "FILE")]
    pub domain_json: Option<PathBuf>,
    #[arg(long, value_name = "N", default_value_t = 443)]
    pub port: u16,
    /// Dial this address (and port) instead of resolving HOST, like curl's --connect-to.
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub connect_to: Option<String>,
    /// Transport to try (repeatable). Default: mqtt, wss and https.
    #[arg(long = "transport", value_enum, value_name = "mqtt|wss|https")]
    pub transports: Vec<TransportArg>,
    #[command(flatten)]
    pub creds: CredentialArgs,
    /// Topic of the HTTPS publish.
    #[arg(long, default_value = "authprobe/probe")]
    pub topic: String,
    /// After CONNACK, publish to this topic (QoS 1) and report PUBACK or the close (stage authorize).
    #[arg(long, value_name = "TOPIC")]
    pub publish: Option<String>,
    /// After CONNACK, subscribe to this filter and report SUBACK (and whether --publish comes back).
    #[arg(long, value_name = "FILTER")]
    pub subscribe: Option<String>,
    /// Region for resource ARNs in reports (default: from the endpoint name).
    #[arg(long)]
    pub region: Option<String>,
    /// Account for resource ARNs in reports.
    #[arg(long)]
    pub account: Option<String>,
    /// Trust only the certificates in this PEM file instead of the bundled (Amazon/Mozilla) roots.
    #[arg(long, value_name = "PEM", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Do not verify server certificates (every attempt's report says so).
    #[arg(long)]
    pub insecure: bool,
    /// Timeout of each stage, in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 10.0)]
    pub timeout: f64,
    #[command(flatten)]
    pub matrix: MatrixArgs,
    #[command(flatten)]
    pub output: OutputArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MatrixArg {
    /// One baseline attempt per transport.
    None,
    /// The baseline plus the deviations that separate the common causes.
    Quick,
    /// Every deviation.
    Full,
}

/// Which variants to run and how.
#[derive(Debug, Args, Clone)]
pub struct MatrixArgs {
    /// Variants to run per transport.
    #[arg(long, value_enum, default_value_t = MatrixArg::Quick)]
    pub matrix: MatrixArg,
    /// Attempts in flight at once.
    #[arg(long, value_name = "N", default_value_t = 16)]
    pub parallel: usize,
    /// Use --client-id for every attempt (default: `<client-id>-<transport>-<variant>`); attempts then run one at a time.
    #[arg(long)]
    pub same_client_id: bool,
    /// Gap between attempts with --same-client-id, in seconds (IoT Core allows about one connect per second per client ID).
    #[arg(long, value_name = "SECS", default_value_t = 1.1)]
    pub spacing: f64,
    /// The "another name" used by the SNI and Host variants.
    #[arg(long, value_name = "NAME", default_value = "example.com")]
    pub alt_sni: String,
}

impl MatrixArgs {
    pub fn level(&self) -> crate::probe::matrix::Level {
        match self.matrix {
            MatrixArg::None => crate::probe::matrix::Level::None,
            MatrixArg::Quick => crate::probe::matrix::Level::Quick,
            MatrixArg::Full => crate::probe::matrix::Level::Full,
        }
    }

    pub fn schedule(&self) -> crate::probe::Schedule {
        crate::probe::Schedule {
            parallel: if self.same_client_id { 1 } else { self.parallel.max(1) },
            spacing: self.same_client_id.then(|| Duration::from_secs_f64(self.spacing)),
        }
    }
}

/// One live line per running attempt, on a terminal only.
pub struct Bars {
    multi: indicatif::MultiProgress,
    running: std::sync::Mutex<Vec<(String, indicatif::ProgressBar)>>,
}

impl Bars {
    /// Progress lines when stdout is a terminal and the format is text; `None` otherwise.
    pub fn for_output(output: &OutputArgs) -> Option<Self> {
        (output.format == Format::Text && std::io::stdout().is_terminal())
            .then(|| Self { multi: indicatif::MultiProgress::new(), running: std::sync::Mutex::new(Vec::new()) })
    }
}

impl crate::probe::Progress for Bars {
    fn started(&self, spec: &crate::probe::AttemptSpec) {
        let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
        bar.set_message(format!("{:<28} {}", spec.id, spec.description));
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut r) = self.running.lock() {
            r.push((spec.id.clone(), bar));
        }
    }

    fn finished(&self, report: &crate::probe::AttemptReport) {
        if let Ok(mut r) = self.running.lock() {
            if let Some(i) = r.iter().position(|(id, _)| *id == report.id) {
                let (_, bar) = r.remove(i);
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
    }
}

pub fn run(args: ProbeArgs) -> anyhow::Result<ExitCode> {
    let plan = plan(&args)?;
    for w in &plan.warnings {
        eprintln!("warning: {w}");
    }
    let specs = crate::probe::matrix::variants(&plan, args.matrix.level());
    let specs: Vec<_> = if args.matrix.same_client_id {
        specs.into_iter().map(|s| crate::probe::AttemptSpec { client_id: plan.client_id.clone(), ..s }).collect()
    } else {
        specs
    };
    let rt = super::runtime()?;
    let bars = Bars::for_output(&args.output);
    let progress: &dyn crate::probe::Progress = match &bars {
        Some(b) => b,
        None => &crate::probe::Quiet,
    };
    let report = rt.block_on(crate::probe::run_with(&plan, &specs, args.matrix.schedule(), progress));
    render(&report, &args.output)?;
    Ok(ExitCode::from(report.exit_code))
}

/// Writes the report to stdout in the chosen format.
pub fn render(report: &Report, output: &OutputArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match output.format {
        Format::Json => report.write_json(&mut out)?,
        Format::Text => {
            let color = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            text::write(report, text::Style { color }, &mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// Validates every flag and file; nothing touches the network.
/// A device's validated credentials (shared by `probe` and `event`).
pub struct Device {
    pub credentials: Credentials,
    pub client_id: String,
    pub mqtt_version: MqttVersion,
    pub signer: Option<std::sync::Arc<SigningKey>>,
    /// Problems found in the AWS documents before anything is sent.
    pub warnings: Vec<String>,
    /// --authorizer-json describes the authorizer that will be named.
    pub authorizer_confirmed: bool,
}

fn read_json(flag: &str, path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {flag} {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{flag} {}: not JSON", path.display()))
}

impl CredentialArgs {
    /// Checks every credential flag and file; nothing touches the network.
    pub fn device(&self, domain: Option<&serde_json::Value>) -> anyhow::Result<Device> {
        let mut warnings = Vec::new();
        let described = match &self.authorizer_json {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --authorizer-json {}", path.display()))?;
                Some(crate::emulator::config::authorizer_from_describe_json(&text, path)?)
            }
            None => None,
        };
        let authorizer = self.authorizer.clone().or_else(|| described.as_ref().map(|a| a.name.clone()));
        let token_key_name = self
            .token_key_name
            .clone()
            .or_else(|| described.as_ref().map(|a| a.token_key_name.clone()))
            .unwrap_or_else(|| "token".into());
        if !is_token_key_name(&token_key_name) {
            bail!("--token-key-name `{token_key_name}` must match [a-zA-Z0-9_-]{{1,128}}");
        }
        if let Some(t) = &self.token {
            if t.is_empty() || t.len() > 6144 {
                bail!("--token must be 1 to 6144 characters (IoT Core's limit), got {}", t.len());
            }
        }
        let mut signer = None;
        let signature = match (&self.signature, &self.signing_key) {
            (Some(s), _) => Some(check_signature(s)?),
            (None, Some(path)) => {
                let Some(token) = &self.token else { bail!("--signing-key signs the token: give --token too") };
                let pem = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --signing-key {}", path.display()))?;
                let key = SigningKey::from_pem(&pem).with_context(|| format!("--signing-key {}", path.display()))?;
                let sig = key.sign(token);
                signer = Some(std::sync::Arc::new(key));
                Some(sig)
            }
            (None, None) => None,
        };
        if let Some(a) = &described {
            if !a.active {
                warnings.push(format!("authorizer `{}` is INACTIVE: IoT Core will not run it", a.name));
            }
            if self.authorizer.as_ref().is_some_and(|n| *n != a.name) {
                warnings.push(format!(
                    "--authorizer `{}` differs from --authorizer-json's `{}`",
                    self.authorizer.as_deref().unwrap_or(""),
                    a.name
                ));
            }
            match (&a.signing, &signature, &self.token) {
                (Some(_), None, _) => {
                    warnings.push("the authorizer has signing enabled but no signature will be sent".into())
                }
                (Some(keys), Some(sig), Some(token)) => match crate::auth::signature::verify(keys, token, Some(sig)) {
                    crate::auth::signature::Verdict::Verified { key } => {
                        tracing::debug!("signature verifies with key {key}")
                    }
                    _ => warnings.push(format!(
                        "the signature does not verify with any of the authorizer's {} key(s)",
                        keys.len()
                    )),
                },
                _ => {}
            }
        }
        if let Some(d) = domain {
            domain_warnings(d, authorizer.as_deref(), &mut warnings);
        }
        let authorizer_confirmed = described.as_ref().is_some_and(|a| authorizer.as_deref() == Some(a.name.as_str()));
        let client_id =
            self.client_id.clone().unwrap_or_else(|| format!("authprobe-{}", &crate::auth::event::new_uuid()[..8]));
        if client_id.len() > 128 {
            bail!("--client-id is {} bytes; IoT Core allows at most 128", client_id.len());
        }
        Ok(Device {
            credentials: Credentials {
                authorizer,
                token_key_name,
                token: self.token.clone(),
                signature,
                username: self.username.clone(),
                password: self.password.clone(),
            },
            client_id,
            mqtt_version: match self.mqtt_version {
                MqttVersionArg::V311 => MqttVersion::V311,
                MqttVersionArg::V5 => MqttVersion::V5,
            },
            signer,
            warnings,
            authorizer_confirmed,
        })
    }
}

/// What a domain configuration says about custom auth for this device.
fn domain_warnings(d: &serde_json::Value, authorizer: Option<&str>, warnings: &mut Vec<String>) {
    let auth_type = d.get("authenticationType").and_then(|v| v.as_str()).unwrap_or("DEFAULT");
    if !matches!(auth_type, "CUSTOM_AUTH" | "CUSTOM_AUTH_X509" | "DEFAULT") {
        warnings
            .push(format!("the domain's authenticationType is {auth_type}: custom authentication is not used there"));
    }
    let cfg = d.get("authorizerConfig");
    let default = cfg.and_then(|c| c.get("defaultAuthorizerName")).and_then(|v| v.as_str());
    let override_ok = cfg.and_then(|c| c.get("allowAuthorizerOverride")).and_then(|v| v.as_bool()).unwrap_or(false);
    match (authorizer, default) {
        (None, None) => {
            warnings.push("no authorizer is named and the domain has no default authorizer: none will run".into())
        }
        (Some(a), Some(d)) if !override_ok && a != d => warnings.push(format!(
            "the domain does not allow authorizer override: `{a}` is ignored and the default `{d}` runs"
        )),
        _ => {}
    }
}

/// The endpoint: --endpoint, else the domain configuration's name, else describe-endpoint's address.
fn endpoint(args: &ProbeArgs, domain: Option<&serde_json::Value>) -> anyhow::Result<String> {
    let from_json = |flag: &str, v: Option<&serde_json::Value>, key: &str| -> anyhow::Result<Option<String>> {
        match v {
            None => Ok(None),
            Some(v) => v
                .get(key)
                .and_then(|e| e.as_str())
                .map(|s| Some(s.to_owned()))
                .ok_or_else(|| anyhow::anyhow!("{flag}: no `{key}` in the document")),
        }
    };
    let described = match &args.endpoint_json {
        Some(p) => Some(read_json("--endpoint-json", p)?),
        None => None,
    };
    let name = match &args.endpoint {
        Some(e) => e.clone(),
        None => match from_json("--domain-json", domain, "domainName")? {
            Some(n) => n,
            None => from_json("--endpoint-json", described.as_ref(), "endpointAddress")?
                .ok_or_else(|| anyhow::anyhow!("give --endpoint (or --endpoint-json / --domain-json)"))?,
        },
    };
    let name = name.trim().trim_end_matches('.').to_owned();
    if rustls::pki_types::ServerName::try_from(name.clone()).is_err() {
        bail!("--endpoint `{name}` is not a host name or IP address");
    }
    Ok(name)
}

/// Validates every flag and file; nothing touches the network.
pub fn plan(args: &ProbeArgs) -> anyhow::Result<ProbePlan> {
    let domain = match &args.domain_json {
        Some(p) => Some(read_json("--domain-json", p)?),
        None => None,
    };
    let endpoint = endpoint(args, domain.as_ref())?;
    let connect_to = args.connect_to.as_deref().map(parse_connect_to).transpose()?;
    let mut transports: Vec<Transport> = args.transports.iter().map(|&t| t.into()).collect();
    transports.dedup();
    if transports.is_empty() {
        transports = Transport::ALL.to_vec();
    }
    let device = args.creds.device(domain.as_ref())?;
    if rustls::pki_types::ServerName::try_from(args.matrix.alt_sni.clone()).is_err() {
        bail!("--alt-sni `{}` is not a host name", args.matrix.alt_sni);
    }
    if !(0.0..=60.0).contains(&args.matrix.spacing) {
        bail!("--spacing must be between 0 and 60 seconds");
    }
    if !(1..=64).contains(&args.matrix.parallel) {
        bail!("--parallel must be between 1 and 64");
    }
    for (flag, t) in
        [("--topic", Some(&args.topic)), ("--publish", args.publish.as_ref()), ("--subscribe", args.subscribe.as_ref())]
    {
        if t.is_some_and(|t| t.is_empty() || t.len() > 256) {
            bail!("{flag} must be 1 to 256 bytes (IoT Core's limit)");
        }
    }
    if args.publish.as_ref().is_some_and(|t| t.contains('+') || t.contains('#')) {
        bail!("--publish takes a topic, not a filter: `+` and `#` are not allowed");
    }
    if !(args.timeout > 0.0 && args.timeout <= 3600.0) {
        bail!("--timeout must be between 0 and 3600 seconds, got {}", args.timeout);
    }
    let trust = match (&args.ca, args.insecure) {
        (_, true) => Trust::Insecure,
        (Some(path), _) => Trust::Roots(read_roots(path)?),
        (None, false) => Trust::Bundled,
    };
    let endpoint_name = endpoint.clone();
    Ok(ProbePlan {
        endpoint,
        port: args.port,
        connect_to,
        transports,
        credentials: device.credentials,
        client_id: device.client_id,
        mqtt_version: device.mqtt_version,
        topic: args.topic.clone(),
        trust,
        timeout: Duration::from_secs_f64(args.timeout),
        show_secrets: args.output.show_secrets,
        signer: device.signer,
        alt_sni: args.matrix.alt_sni.clone(),
        warnings: device.warnings,
        authorizer_confirmed: device.authorizer_confirmed,
        checks: crate::probe::authorize::Checks { publish: args.publish.clone(), subscribe: args.subscribe.clone() },
        arn_base: format!(
            "arn:aws:iot:{}:{}",
            args.region
                .clone()
                .or_else(|| crate::probe::plan::region_of(&endpoint_name))
                .unwrap_or_else(|| "<region>".into()),
            args.account.as_deref().unwrap_or("<account>")
        ),
    })
}

fn is_token_key_name(k: &str) -> bool {
    (1..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A signature must be standard base64 (`[A-Za-z0-9+/]+={0,2}`, 1–2560 characters).
fn check_signature(s: &str) -> anyhow::Result<String> {
    let s = s.trim();
    if s.contains('%') {
        bail!("--signature looks percent-encoded; give the plain base64 (authprobe encodes it where needed)");
    }
    if s.contains('-') || s.contains('_') {
        bail!("--signature is base64url (a JWT signature?); convert `-`→`+` and `_`→`/` and add `=` padding");
    }
    use base64::Engine as _;
    if s.is_empty() || s.len() > 2560 || base64::engine::general_purpose::STANDARD.decode(s).is_err() {
        bail!("--signature is not standard base64 of 1 to 2560 characters");
    }
    Ok(s.to_owned())
}

fn read_roots(path: &std::path::Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = std::fs::read(path).with_context(|| format!("cannot read --ca {}", path.display()))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<_, _>>()
        .map_err(|e| anyhow::anyhow!("--ca {}: not PEM certificates ({e})", path.display()))?;
    if certs.is_empty() {
        bail!("--ca {}: no `BEGIN CERTIFICATE` block found", path.display());
    }
    let mut roots = rustls::RootCertStore::empty();
    for c in &certs {
        roots.add(c.clone()).map_err(|e| anyhow::anyhow!("--ca {}: unusable certificate ({e})", path.display()))?;
    }
    Ok(certs)
}

/// `ADDR`, `ADDR:PORT`, `[V6]` or `[V6]:PORT`.
fn parse_connect_to(s: &str) -> anyhow::Result<(String, Option<u16>)> {
    let bad = || anyhow::anyhow!("--connect-to `{s}` is not ADDR[:PORT] (IPv6 as [ADDR]:PORT)");
    let port = |p: &str| p.parse::<u16>().map_err(|_| bad());
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((host.to_owned(), Some(port(p)?))),
            None if after.is_empty() => Ok((host.to_owned(), None)),
            None => Err(bad()),
        };
    }
    match s.matches(':').count() {
        0 if !s.is_empty() => Ok((s.to_owned(), None)),
        1 => {
            let (h, p) = s.split_once(':').ok_or_else(bad)?;
            if h.is_empty() { Err(bad()) } else { Ok((h.to_owned(), Some(port(p)?))) }
        }
        // A bare IPv6 address.
        _ if s.parse::<std::net::Ipv6Addr>().is_ok() => Ok((s.to_owned(), None)),
        _ => Err(bad()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_to_forms() {
        assert_eq!(parse_connect_to("127.0.0.1").unwrap(), ("127.0.0.1".into(), None));
        assert_eq!(parse_connect_to("127.0.0.1:8443").unwrap(), ("127.0.0.1".into(), Some(8443)));
        assert_eq!(parse_connect_to("[::1]:8443").unwrap(), ("::1".into(), Some(8443)));
        assert_eq!(parse_connect_to("::1").unwrap(), ("::1".into(), None));
        assert!(parse_connect_to("h:99999").is_err());
        assert!(parse_connect_to(":1").is_err());
    }

    #[test]
    fn signatures_are_checked() {
        assert!(check_signature("abc+/=").is_err(), "not valid base64 length");
        assert!(check_signature("YWJj").is_ok());
        assert!(check_signature("YW%2BJj").unwrap_err().to_string().contains("percent-encoded"));
        assert!(check_signature("YW-J_j").unwrap_err().to_string().contains("base64url"));
    }
}
