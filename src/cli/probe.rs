//! `authprobe probe`: flags become a validated `ProbePlan` (exit 2 on bad input, nothing sent), then
//! one attempt per transport, rendered as text or JSON.

use super::device::{CredentialArgs, read_json};
use crate::auth::event::Transport;
use crate::auth::policy::Arns;
use crate::probe::{ProbePlan, Trust};
use crate::report::{Report, text};
use anyhow::bail;
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
    Jsonl,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
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

/// Output flags shared by `probe` and `demo`.
#[derive(Debug, Args, Clone)]
pub struct OutputArgs {
    /// Report format: text, one JSON document, or JSON Lines (one object per attempt as it ends, then
    /// a summary) for log pipelines.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Show tokens, signatures and passwords instead of `<redacted len=N sha256=…>`.
    #[arg(long)]
    pub show_secrets: bool,
    /// Nothing but the report: no progress, warnings or notes on stderr.
    #[arg(short, long)]
    pub quiet: bool,
    /// Colour: auto (a terminal, unless NO_COLOR is set or TERM=dumb), always, never.
    #[arg(long, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
    /// A label (device, site) carried by every JSON Lines object.
    #[arg(long, value_name = "TEXT")]
    pub label: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FamilyArg {
    Any,
    #[value(name = "4")]
    V4,
    #[value(name = "6")]
    V6,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorArg {
    Auto,
    Always,
    Never,
}

impl OutputArgs {
    /// Whether to colour text written to a stream (see [`super::colour`]).
    pub fn color_for(&self, stream_is_terminal: bool) -> bool {
        super::colour(self.color, stream_is_terminal)
    }
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// The IoT data endpoint (or custom domain): SNI, Host header and certificate name.
    #[arg(long, value_name = "HOST", required_unless_present_any = ["endpoint_json", "domain_json", "device"])]
    pub endpoint: Option<String>,
    /// `aws iot describe-endpoint` output: the endpoint, when --endpoint is not given.
    #[arg(long, value_name = "FILE")]
    pub endpoint_json: Option<PathBuf>,
    /// `aws iot describe-domain-configuration` output: domain name, default authorizer, authentication type.
    #[arg(long, value_name = "FILE")]
    pub domain_json: Option<PathBuf>,
    /// Port (default 443; custom authentication works on 443 only).
    #[arg(long, value_name = "N")]
    pub port: Option<u16>,
    /// Dial this address (and port) instead of resolving HOST, like curl's --connect-to.
    #[arg(long, value_name = "ADDR[:PORT]")]
    pub connect_to: Option<String>,
    /// Go through this proxy: http://[user:pass@]host:port (HTTP CONNECT), socks5:// (the name
    /// resolved here) or socks5h:// (resolved by the proxy). Default: HTTPS_PROXY, then ALL_PROXY
    /// (lower case first), as curl.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// Hosts that bypass the proxy (comma-separated names, domains, IPs, CIDRs; `*` = all); replaces NO_PROXY.
    #[arg(long, value_name = "LIST")]
    pub noproxy: Option<String>,
    /// Answer HOST:PORT with ADDR without asking DNS (repeatable), as curl's --resolve.
    #[arg(long = "resolve", value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<String>,
    /// IPv4 only.
    #[arg(short = '4', long = "ipv4", conflicts_with_all = ["ipv6", "family"])]
    pub ipv4: bool,
    /// IPv6 only.
    #[arg(short = '6', long = "ipv6", conflicts_with = "family")]
    pub ipv6: bool,
    /// IP versions to dial: any (the resolver's order), 4, 6, or both (each baseline over IPv4 and
    /// again over IPv6, to compare).
    #[arg(long, value_enum, value_name = "any|4|6|both")]
    pub family: Option<FamilyArg>,
    /// Transport to try (repeatable, or comma-separated). Default: mqtt, wss and https.
    #[arg(long = "transport", value_enum, value_name = "mqtt|wss|https", value_delimiter = ',')]
    pub transports: Vec<TransportArg>,
    #[command(flatten)]
    pub creds: CredentialArgs,
    /// Topic of the HTTPS publish (default: --publish, else `authprobe/probe`).
    #[arg(long)]
    pub topic: Option<String>,
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
    /// A device profile (TOML): what the device sends and where its secrets are; flags override it.
    #[arg(long, value_name = "FILE")]
    pub device: Option<PathBuf>,
    /// Let a device profile read secrets from anywhere: files outside its own folder, and AWS or
    /// other cloud credential variables (refused by default: a shared profile could send them away).
    #[arg(long)]
    pub allow_device_secrets: bool,
    /// Write this command line's device profile to FILE (secrets as references only), then probe.
    #[arg(long, value_name = "FILE")]
    pub save_device: Option<PathBuf>,
    #[command(flatten)]
    pub sends: SendsArgs,
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

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PlacementArg {
    Username,
    Query,
    Headers,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SignatureEncodingArg {
    /// `+`, `/`, `=` percent-encoded in a username or query (documented).
    Percent,
    /// The base64 as is, even in a username or query.
    Raw,
}

/// What the device sends where it differs from the documented attempt: the baseline becomes the
/// device's attempt, and a `documented` attempt runs beside it.
#[derive(Debug, Args, Clone, Default)]
pub struct SendsArgs {
    /// SNI to send (default: the endpoint).
    #[arg(long, value_name = "NAME", conflicts_with = "no_sni")]
    pub sni: Option<String>,
    /// Send no SNI extension.
    #[arg(long)]
    pub no_sni: bool,
    /// ALPN protocol to offer (repeatable; default: `mqtt` for MQTT over TLS, none otherwise).
    #[arg(long = "alpn", value_name = "PROTO", conflicts_with = "no_alpn")]
    pub alpn: Vec<String>,
    /// Offer no ALPN.
    #[arg(long)]
    pub no_alpn: bool,
    /// Host header of WebSocket and HTTPS requests (default: the endpoint).
    #[arg(long, value_name = "VALUE", conflicts_with = "no_host_header")]
    pub host_header: Option<String>,
    /// Send no Host header.
    #[arg(long)]
    pub no_host_header: bool,
    /// Where the credentials go: username (mqtt, wss), query or headers (wss, https).
    #[arg(long, value_enum)]
    pub placement: Option<PlacementArg>,
    /// How the signature travels in a username or query.
    #[arg(long, value_enum)]
    pub signature_encoding: Option<SignatureEncodingArg>,
    /// The exact CONNECT username the device sends (credentials are not appended to it).
    #[arg(long, value_name = "STRING")]
    pub username_raw: Option<String>,
    /// Sec-WebSocket-Protocol of the upgrade (default `mqtt`).
    #[arg(long, value_name = "VALUE")]
    pub ws_protocol: Option<String>,
    /// CONNECT keep-alive in seconds (default 60).
    #[arg(long, value_name = "SECS")]
    pub keep_alive: Option<u16>,
}

impl SendsArgs {
    /// The device's deviations, checked; nothing is sent on bad input.
    pub fn device(&self, transports: &[Transport]) -> anyhow::Result<crate::probe::plan::DeviceSends> {
        use crate::auth::credentials::Placement;
        let name_ok = |flag: &str, v: &str| -> anyhow::Result<()> {
            if v.is_empty() || v.len() > 253 || v.chars().any(|c| c.is_control() || c == ' ') {
                bail!("{flag} `{}` is not a host name (1 to 253 characters, no spaces)", v.escape_debug());
            }
            Ok(())
        };
        if let Some(s) = &self.sni {
            name_ok("--sni", s)?;
        }
        for a in &self.alpn {
            if a.is_empty() || a.len() > 255 {
                bail!("--alpn `{a}` must be 1 to 255 bytes");
            }
        }
        if let Some(h) = &self.host_header {
            if h.is_empty() || h.chars().any(char::is_control) {
                bail!("--host-header must be a non-empty value without control characters");
            }
        }
        let placement = self.placement.map(|p| match p {
            PlacementArg::Username => Placement::Username,
            PlacementArg::Query => Placement::Query,
            PlacementArg::Headers => Placement::Header,
        });
        if let Some(p) = placement {
            let fits = |t: &Transport| match t {
                Transport::Mqtt => p == Placement::Username,
                Transport::Wss => true,
                Transport::Https => p != Placement::Username,
            };
            if !transports.iter().any(fits) {
                bail!(
                    "--placement {:?}: none of the transports tried can carry credentials there (mqtt: username; https: query or headers)",
                    p
                );
            }
        }
        if let Some(u) = &self.username_raw {
            if u.len() > 65535 {
                bail!("--username-raw is {} bytes; MQTT allows at most 65535", u.len());
            }
        }
        if let Some(p) = &self.ws_protocol {
            if p.is_empty() || p.chars().any(|c| c.is_control()) {
                bail!("--ws-protocol must be a non-empty token");
            }
        }
        Ok(crate::probe::plan::DeviceSends {
            sni: if self.no_sni { Some(None) } else { self.sni.clone().map(Some) },
            alpn: if self.no_alpn {
                Some(Vec::new())
            } else {
                (!self.alpn.is_empty()).then(|| self.alpn.iter().map(|a| a.as_bytes().to_vec()).collect())
            },
            host: if self.no_host_header { Some(None) } else { self.host_header.clone().map(Some) },
            placement,
            signature_raw: self.signature_encoding == Some(SignatureEncodingArg::Raw),
            username_raw: self.username_raw.clone(),
            ws_protocol: self.ws_protocol.clone(),
            keep_alive: self.keep_alive,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum FollowUpArg {
    /// Run them when more than one cause is left and an attempt can split them.
    Auto,
    None,
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
    /// Gap from start to start between MQTT attempts that share a client ID (the mqtt and wss
    /// baselines, the follow-ups, all with --same-client-id), in seconds (IoT Core allows about one
    /// connect per second per client ID).
    #[arg(long, value_name = "SECS", default_value_t = 1.1)]
    pub spacing: f64,
    /// Follow-up attempts that split the causes still open (`none`: only the matrix).
    #[arg(long, value_enum, default_value_t = FollowUpArg::Auto)]
    pub follow_up: FollowUpArg,
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
pub(crate) struct Bars {
    multi: indicatif::MultiProgress,
    running: std::sync::Mutex<Vec<(String, indicatif::ProgressBar)>>,
}

impl Bars {
    /// Progress lines on stderr when it is a terminal (whatever stdout is), unless `-q`.
    pub(crate) fn for_output(output: &OutputArgs) -> Option<Self> {
        (!output.quiet && std::io::stderr().is_terminal()).then(|| Self {
            multi: indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr()),
            running: std::sync::Mutex::new(Vec::new()),
        })
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

pub(crate) fn run(mut args: ProbeArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = args.device.clone() {
        let profile = super::profile::Profile::read(&path)?;
        profile.check_secret_sources(&path, args.allow_device_secrets)?;
        profile.apply(&mut args);
        args.creds.profile = Some(path.display().to_string());
    }
    let plan = plan(&args)?;
    // Before anything is sent: every log line from here on is scrubbed of the run's secrets.
    crate::secret::register_log_secrets(&plan.run_secrets());
    let quiet = args.output.quiet;
    if let Some(path) = &args.save_device {
        let (profile, mut notes) = super::profile::Profile::of(&args);
        notes.extend(profile.outside_notes(path));
        profile.write(path)?;
        for n in notes.iter().filter(|_| !quiet) {
            eprintln!("note: {n}");
        }
    }
    let investigation = crate::investigate::Investigation::new(&plan);
    for w in investigation.warnings().filter(|_| !quiet) {
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
    let lines = (args.output.format == Format::Jsonl)
        .then(|| super::jsonl::Lines::new(args.output.label.clone(), plan.run_secrets()));
    let collected = super::jsonl::Collect::default();
    let mut sinks: Vec<&dyn crate::probe::Progress> = vec![&collected];
    sinks.extend(bars.as_ref().map(|b| b as &dyn crate::probe::Progress));
    sinks.extend(lines.as_ref().map(|l| l as &dyn crate::probe::Progress));
    let fanout = super::jsonl::Fanout(sinks);
    let started = std::time::SystemTime::now();
    let finished = rt.block_on(async {
        tokio::select! {
            r = investigation.run(&specs, args.matrix.schedule(), &fanout) => Some(r),
            _ = tokio::signal::ctrl_c() => None,
        }
    });
    let (report, code) = match finished {
        Some(r) => {
            let code = r.exit_code;
            (r, code)
        }
        None => {
            // Ctrl-C: clear the live lines and report what ran.
            if let Some(b) = &bars {
                let _ = b.multi.clear();
            }
            let attempts = collected.0.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
            let unix = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let ran = attempts.len();
            let window = (unix(started), unix(std::time::SystemTime::now()));
            let mut r = crate::investigate::Investigation::new(&plan).report(attempts, window);
            r.warnings.push(format!(
                "interrupted (Ctrl-C) after {ran} of {} attempts: this report covers only those",
                specs.len()
            ));
            (r, EXIT_INTERRUPTED)
        }
    };
    match &lines {
        Some(l) => l.summary(&report)?,
        None => render(&report, &args.output)?,
    }
    Ok(ExitCode::from(code))
}

/// Exit code of a run stopped with Ctrl-C (the shell's 128 + SIGINT); the partial report is printed.
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// Writes the report to stdout in the chosen format.
pub(crate) fn render(report: &Report, output: &OutputArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match output.format {
        Format::Json => report.write_json(&mut out)?,
        Format::Jsonl => super::jsonl::Lines::new(output.label.clone(), report.secrets.clone()).summary(report)?,
        Format::Text => {
            let color = output.color_for(std::io::stdout().is_terminal());
            text::write(report, text::Style { color }, &mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// `--topic`, `--publish` and `--subscribe` within IoT Core's limits.
fn check_topics(args: &ProbeArgs) -> anyhow::Result<()> {
    for (flag, t) in [
        ("--topic", args.topic.as_ref()),
        ("--publish", args.publish.as_ref()),
        ("--subscribe", args.subscribe.as_ref()),
    ] {
        if t.is_some_and(|t| t.is_empty() || t.len() > 256) {
            bail!("{flag} must be 1 to 256 bytes (IoT Core's limit)");
        }
    }
    if args.publish.as_ref().is_some_and(|t| t.contains('+') || t.contains('#')) {
        bail!("--publish takes a topic, not a filter: `+` and `#` are not allowed");
    }
    Ok(())
}

/// A profile saves the secrets inside a username as placeholders; the replay fills them.
fn fill_usernames(plan: &mut ProbePlan) -> anyhow::Result<()> {
    let (token, signature) = (plan.credentials.token.clone(), plan.credentials.signature.clone());
    if let Some(u) = plan.device.username_raw.take() {
        let u = super::profile::fill_placeholders(&u, token.as_deref(), signature.as_deref(), "username_raw")?;
        plan.device.username_raw = Some(u);
    }
    if let Some(u) = plan.credentials.username.take() {
        let u = super::profile::fill_placeholders(&u, token.as_deref(), signature.as_deref(), "username")?;
        plan.credentials.username = Some(u);
    }
    Ok(())
}

fn described_endpoint(args: &ProbeArgs) -> anyhow::Result<Option<serde_json::Value>> {
    args.endpoint_json.as_ref().map(|p| read_json("--endpoint-json", p)).transpose()
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
    let described = described_endpoint(args)?;
    let name = match &args.endpoint {
        Some(e) => e.clone(),
        None => match from_json("--domain-json", domain, "domainName")? {
            Some(n) => n,
            None => from_json("--endpoint-json", described.as_ref(), "endpointAddress")?
                .ok_or_else(|| anyhow::anyhow!("give --endpoint (or --endpoint-json / --domain-json)"))?,
        },
    };
    let mut name = name.trim().trim_end_matches('.').to_owned();
    // An IPv6 literal as URLs write it: `[::1]` (with a port: `[::1]:8443`).
    if let Some(inner) = name.strip_prefix('[') {
        match inner.split_once(']') {
            Some((ip, "")) if ip.parse::<std::net::Ipv6Addr>().is_ok() => name = ip.to_owned(),
            Some((ip, rest)) if ip.parse::<std::net::Ipv6Addr>().is_ok() => {
                if let Some(port) = rest.strip_prefix(':').filter(|p| p.parse::<u16>().is_ok()) {
                    bail!("--endpoint takes a host name without a port: use --endpoint {ip} --port {port}");
                }
            }
            _ => {}
        }
    }
    if let Some((scheme, rest)) = name.split_once("://") {
        let host = rest.split(['/', ':']).next().unwrap_or_default();
        let transport = match scheme {
            "mqtts" | "ssl" | "tls" => " --transport mqtt",
            "wss" => " --transport wss",
            "https" => " --transport https",
            _ => "",
        };
        bail!("--endpoint takes a host name, not a URL: use --endpoint {host}{transport}");
    }
    if let Some((host, port)) = name.rsplit_once(':').filter(|(h, p)| !h.contains(':') && p.parse::<u16>().is_ok()) {
        bail!("--endpoint takes a host name without a port: use --endpoint {host} --port {port}");
    }
    if rustls::pki_types::ServerName::try_from(name.clone()).is_err() {
        bail!("--endpoint `{name}` is not a host name or IP address");
    }
    Ok(name)
}

/// Validates every flag and file; nothing touches the network.
pub(crate) fn plan(args: &ProbeArgs) -> anyhow::Result<ProbePlan> {
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
    let transports_tried = transports.clone();
    if rustls::pki_types::ServerName::try_from(args.matrix.alt_sni.clone()).is_err() {
        bail!("--alt-sni `{}` is not a host name", args.matrix.alt_sni);
    }
    if !(0.0..=60.0).contains(&args.matrix.spacing) {
        bail!("--spacing must be between 0 and 60 seconds");
    }
    if !(1..=64).contains(&args.matrix.parallel) {
        bail!("--parallel must be between 1 and 64");
    }
    check_topics(args)?;
    if !(args.timeout > 0.0 && args.timeout <= 3600.0) {
        bail!("--timeout must be more than 0 and at most 3600 seconds, got {}", args.timeout);
    }
    if args.port == Some(0) {
        bail!("--port 0 is not a port; custom authentication uses 443");
    }
    if args.topic.as_ref().is_some_and(|t| t.contains('+') || t.contains('#')) {
        bail!("--topic is the HTTPS publish topic: `+` and `#` are not allowed in a topic");
    }
    let trust = match (&args.ca, args.insecure) {
        (_, true) => Trust::Insecure,
        (Some(path), _) => Trust::Roots(read_roots(path)?),
        (None, false) => Trust::Bundled,
    };
    let mut hosts = vec![endpoint.as_str()];
    hosts.extend(connect_to.as_ref().map(|(h, _)| h.as_str()));
    let path = net_path(args, &hosts)?;
    let mut documents = device.documents;
    documents.endpoint_address =
        described_endpoint(args)?.and_then(|v| v.get("endpointAddress").and_then(|e| e.as_str()).map(str::to_owned));
    let topic = args.topic.clone().or_else(|| args.publish.clone()).unwrap_or_else(|| "authprobe/probe".into());
    let mut plan = ProbePlan::new(&endpoint, device.credentials);
    plan.port = args.port.unwrap_or(443);
    plan.ca_file = args.ca.as_ref().filter(|_| !args.insecure).map(|p| p.display().to_string());
    plan.connect_to = connect_to;
    plan.transports = transports;
    plan.client_id = device.client_id;
    plan.mqtt_version = device.mqtt_version;
    plan.topic = topic;
    plan.trust = trust;
    plan.timeout = Duration::from_secs_f64(args.timeout);
    plan.show_secrets = args.output.show_secrets;
    plan.signer = device.signer;
    plan.secret_sources = device.sources;
    plan.alt_sni = args.matrix.alt_sni.clone();
    plan.documents = documents;
    plan.follow_up = args.matrix.follow_up == FollowUpArg::Auto;
    plan.follow_up_spacing = Duration::from_secs_f64(args.matrix.spacing);
    plan.checks = crate::probe::authorize::Checks { publish: args.publish.clone(), subscribe: args.subscribe.clone() };
    plan.device = args.sends.device(&transports_tried)?;
    fill_usernames(&mut plan)?;
    plan.adopt_username_raw();
    plan.path = path;
    plan.arns = match &args.region {
        Some(region) => Arns::new(region, args.account.as_deref().unwrap_or("<account>")),
        None => Arns::for_endpoint(&endpoint, args.account.as_deref()),
    };
    Ok(plan)
}

/// The proxy (flag, else environment, as curl), `--resolve` entries and the address family.
fn net_path(args: &ProbeArgs, hosts: &[&str]) -> anyhow::Result<crate::probe::plan::NetPath> {
    use crate::probe::plan::{Family, NetPath, ResolveOverride};
    if args.noproxy.as_deref().is_some_and(|l| l.trim().is_empty()) {
        bail!("--noproxy is empty: give hosts that bypass the proxy, or `*` for all");
    }
    let choice =
        crate::probe::proxy::choose(hosts, args.proxy.as_deref(), args.noproxy.as_deref(), |v| std::env::var(v).ok())
            .map_err(|e| anyhow::anyhow!(e))?;
    let resolve = args
        .resolve
        .iter()
        .map(|r| ResolveOverride::parse(r))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!(e))?;
    let family = match (args.ipv4, args.ipv6, args.family) {
        (true, _, _) | (_, _, Some(FamilyArg::V4)) => Family::V4,
        (_, true, _) | (_, _, Some(FamilyArg::V6)) => Family::V6,
        (_, _, Some(FamilyArg::Both)) => Family::Both,
        _ => Family::Any,
    };
    Ok(NetPath { proxy: choice.proxy, proxy_bypassed: choice.bypassed, resolve, family })
}

fn read_roots(path: &std::path::Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    let pem = crate::input::read_file(path, crate::input::Kind::CaBundle, "--ca")?;
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
    let bad = || anyhow::anyhow!("--connect-to `{s}` is not ADDR[:PORT], [V6]:PORT or curl's HOST:PORT:ADDR:PORT");
    let port = |p: &str| p.parse::<u16>().map_err(|_| bad());
    // curl's form: the first HOST:PORT names what to replace; ADDR:PORT is where to go.
    if let Some((_, rest)) = curl_form(s) {
        return parse_connect_to(rest);
    }
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

/// Splits curl's `HOST:PORT:ADDR[:PORT]` into `HOST:PORT` and `ADDR[:PORT]` (HOST without brackets,
/// ADDR possibly a bracketed IPv6 address).
fn curl_form(s: &str) -> Option<(&str, &str)> {
    let (host, rest) = s.split_once(':')?;
    let (port, target) = rest.split_once(':')?;
    let plain = !host.is_empty() && !host.contains('[') && port.parse::<u16>().is_ok();
    (plain && !target.is_empty() && target.parse::<std::net::Ipv6Addr>().is_err())
        .then_some((&s[..host.len() + 1 + port.len()], target))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        probe: ProbeArgs,
    }

    fn plan_of(args: &[&str]) -> ProbePlan {
        let argv = ["authprobe", "--endpoint", "abc-ats.iot.eu-west-1.amazonaws.com"].iter().chain(args);
        plan(&Cli::parse_from(argv).probe).unwrap()
    }

    #[test]
    fn publish_topic_is_the_https_topic_unless_topic_is_given() {
        assert_eq!(plan_of(&[]).topic, "authprobe/probe");
        assert_eq!(plan_of(&["--publish", "devices/x/t"]).topic, "devices/x/t");
        assert_eq!(plan_of(&["--publish", "devices/x/t", "--topic", "other/t"]).topic, "other/t");
    }

    fn plan_err(args: &[&str]) -> String {
        let argv = ["authprobe"].iter().chain(args);
        plan(&Cli::parse_from(argv).probe).unwrap_err().to_string()
    }

    #[test]
    fn shell_friendly_forms() {
        assert_eq!(plan_of(&["--transport", "mqtt,wss"]).transports, [Transport::Mqtt, Transport::Wss]);
        assert_eq!(plan_of(&["--mqtt-version", "311"]).mqtt_version, crate::probe::MqttVersion::V311);
        assert_eq!(
            plan_of(&["--connect-to", "x:443:127.0.0.1:8443"]).connect_to,
            Some(("127.0.0.1".into(), Some(8443)))
        );
        let e = plan_err(&["--endpoint", "abc-ats.iot.eu-west-1.amazonaws.com:8443"]);
        assert!(e.contains("--endpoint abc-ats.iot.eu-west-1.amazonaws.com --port 8443"), "{e}");
        let e = plan_err(&["--endpoint", "wss://abc-ats.iot.eu-west-1.amazonaws.com/mqtt"]);
        assert!(e.contains("--endpoint abc-ats.iot.eu-west-1.amazonaws.com --transport wss"), "{e}");
    }

    #[test]
    fn follow_ups_are_on_unless_turned_off() {
        assert!(plan_of(&[]).follow_up);
        assert!(!plan_of(&["--follow-up", "none"]).follow_up);
    }

    #[test]
    fn connect_to_forms() {
        assert_eq!(parse_connect_to("127.0.0.1").unwrap(), ("127.0.0.1".into(), None));
        assert_eq!(parse_connect_to("127.0.0.1:8443").unwrap(), ("127.0.0.1".into(), Some(8443)));
        assert_eq!(parse_connect_to("[::1]:8443").unwrap(), ("::1".into(), Some(8443)));
        assert_eq!(parse_connect_to("::1").unwrap(), ("::1".into(), None));
        assert!(parse_connect_to("h:99999").is_err());
        assert!(parse_connect_to(":1").is_err());
        // curl's form.
        assert_eq!(parse_connect_to("abc.iot:443:127.0.0.1:8443").unwrap(), ("127.0.0.1".into(), Some(8443)));
        assert_eq!(parse_connect_to("abc.iot:443:[::1]:8443").unwrap(), ("::1".into(), Some(8443)));
    }
}
