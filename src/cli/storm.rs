//! `authprobe storm`: the command line of [`crate::storm`] — the devices (templates or an identities
//! file), the reconnect policy, the end, the safety rules (a rate cap off loopback; the plan printed
//! before anything is sent), shards and their merge.

use super::device::MqttVersionArg;
use crate::auth::event::Transport;
use crate::probe::plan::{MqttVersion, Trust};
use crate::secret::Secret;
use crate::storm::{Backoff, Identity, Jitter, Placement, Policy, StormPlan, StormReport};
use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

/// Above this many connects a second off loopback, `--allow-high-rate` must say it is meant.
const RATE_CAP: f64 = 50.0;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum StormTransport {
    Mqtt,
    Wss,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum StormFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct StormArgs {
    /// The endpoint (SNI and Host): your ATS endpoint, or `localhost` for `authprobe emulate`.
    #[arg(long, value_name = "NAME", required_unless_present = "merge")]
    pub endpoint: Option<String>,
    /// Connect here instead of the endpoint's address (ADDR[:PORT]).
    #[arg(long, value_name = "ADDR:PORT")]
    pub connect_to: Option<String>,
    /// The port (custom authentication: 443).
    #[arg(long, default_value_t = 443)]
    pub port: u16,
    /// Trust only these CA certificates (PEM), e.g. the emulator's `--write-ca` file.
    #[arg(long, value_name = "PEM")]
    pub ca: Option<PathBuf>,
    /// Do not verify the server certificate.
    #[arg(long)]
    pub insecure: bool,
    /// MQTT over TLS (ALPN `mqtt`) or MQTT over WebSockets.
    #[arg(long, value_enum, default_value = "mqtt")]
    pub transport: StormTransport,
    /// The CONNECT's MQTT version.
    #[arg(long, value_enum, default_value = "3.1.1")]
    pub mqtt_version: MqttVersionArg,
    /// The authorizer name sent (none: the endpoint's default authorizer).
    #[arg(long, value_name = "NAME")]
    pub authorizer: Option<String>,
    /// The authorizer's token key name.
    #[arg(long, value_name = "KEY", default_value = "token")]
    pub token_key_name: String,
    /// Where the credentials go on wss: headers (documented), query, username. MQTT over TLS: the username.
    #[arg(long, value_enum)]
    pub placement: Option<StormPlacement>,
    /// How many devices (with the templates).
    #[arg(long, value_name = "N")]
    pub devices: Option<usize>,
    /// Client ID template: `{i}` is the device's index (0 to N-1).
    #[arg(long, value_name = "TEMPLATE", default_value = "storm-{i}")]
    pub client_id: String,
    /// Token template (`{i}` as above), e.g. `tok-{i}`.
    #[arg(long, value_name = "TEMPLATE")]
    pub token: Option<String>,
    /// Sign each device's token with this RSA private key (PEM): a signing authorizer's signature.
    #[arg(long, value_name = "PEM")]
    pub signing_key: Option<PathBuf>,
    /// The CONNECT password of every device.
    #[arg(long, value_name = "PASSWORD")]
    pub password: Option<String>,
    /// The devices from a JSON Lines file: `{"client_id", "token", "signature"?, "username_raw"?, "password"?}` per line.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["devices", "token"])]
    pub identities: Option<PathBuf>,
    /// The reconnect delay: exponential (doubling from --min-delay to --max-delay) or fixed (--min-delay).
    #[arg(long, value_enum, default_value = "exponential")]
    pub backoff: BackoffArg,
    /// Jitter on each delay, as the AWS SDKs name it: none, full, equal, decorrelated.
    #[arg(long, value_enum, default_value = "full")]
    pub jitter: JitterArg,
    /// The first reconnect delay (1s, 500ms; a bare number is milliseconds).
    #[arg(long, value_name = "DURATION", default_value = "1s", value_parser = super::args::millis)]
    pub min_delay: u64,
    /// The largest reconnect delay.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = super::args::millis)]
    pub max_delay: u64,
    /// Spread the devices' first attempts evenly over this (0: all at once, as after an outage).
    #[arg(long, value_name = "DURATION", default_value = "0", value_parser = super::args::millis)]
    pub ramp: u64,
    /// How long a connected device stays connected (default: until the storm ends).
    #[arg(long, value_name = "DURATION", value_parser = super::args::millis)]
    pub hold: Option<u64>,
    /// End when this percentage of the devices has connected (1–100).
    #[arg(long, value_name = "PCT", default_value_t = 100.0)]
    pub until_connected: f64,
    /// End after this long at most.
    #[arg(long, value_name = "DURATION", default_value = "60s", value_parser = super::args::millis)]
    pub duration: u64,
    /// At most this many connects a second (required off loopback; this shard's share is R/N).
    #[arg(long, value_name = "PER_SEC")]
    pub max_rate: Option<f64>,
    /// Allow --max-rate above 50 off loopback.
    #[arg(long)]
    pub allow_high_rate: bool,
    /// Each attempt's deadline, TCP to CONNACK.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = super::args::millis)]
    pub timeout: u64,
    /// The CONNECT keep-alive in seconds (IoT Core: 30–1200); held connections ping within it.
    #[arg(long, value_name = "SECS", default_value_t = 60)]
    pub keep_alive: u16,
    /// The jitter's seed, to run the same storm again (default: random; the report does not need it).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run the K-th of N deterministic slices of the devices and of the rate (1/4 … 4/4).
    #[arg(long, value_name = "K/N")]
    pub shard: Option<String>,
    /// text or json.
    #[arg(long, value_enum, default_value = "text")]
    pub format: StormFormat,
    /// Also write the JSON report here (temporary file, then renamed).
    #[arg(long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Merge shards' JSON reports into one (runs no storm).
    #[arg(long, value_name = "FILE", num_args = 1..)]
    pub merge: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum StormPlacement {
    Header,
    Query,
    Username,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum BackoffArg {
    Exponential,
    Fixed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum JitterArg {
    None,
    Full,
    Equal,
    Decorrelated,
}

/// `K/N` with 1 ≤ K ≤ N.
fn shard(s: Option<&str>) -> anyhow::Result<(u32, u32)> {
    let Some(s) = s else { return Ok((1, 1)) };
    let bad = || anyhow::anyhow!("--shard `{}` is not K/N with 1 <= K <= N (e.g. 3/10)", s.escape_debug());
    let (k, n) = s.split_once('/').ok_or_else(bad)?;
    let (k, n): (u32, u32) = (k.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if k == 0 || n == 0 || k > n {
        return Err(bad());
    }
    Ok((k, n))
}

/// The devices: from the identities file, or the templates; this shard's slice (index mod N = K-1).
fn identities(args: &StormArgs, (k, n): (u32, u32)) -> anyhow::Result<(Vec<Identity>, usize)> {
    let signer = match &args.signing_key {
        Some(p) => {
            let pem = crate::input::read_file(p, crate::input::Kind::Key, "--signing-key")?;
            let pem =
                String::from_utf8(pem).map_err(|_| anyhow::anyhow!("--signing-key {}: not PEM text", p.display()))?;
            Some(
                crate::auth::signature::SigningKey::from_pem(&pem)
                    .map_err(|e| anyhow::anyhow!("--signing-key {}: {e}", p.display()))?,
            )
        }
        None => None,
    };
    let all = match &args.identities {
        Some(path) => read_identities(path)?,
        None => {
            let (Some(count), Some(token)) = (args.devices, &args.token) else {
                bail!(
                    "give the devices: --devices N with --token TEMPLATE (e.g. --token 'tok-{{i}}'), or --identities FILE"
                );
            };
            if count == 0 || count > 1_000_000 {
                bail!("--devices {count}: give 1 to 1,000,000 (more: run shards, --shard K/N)");
            }
            let fill = |t: &str, i: usize| t.replace("{i}", &i.to_string());
            (0..count)
                .map(|i| Identity {
                    index: i,
                    client_id: fill(&args.client_id, i),
                    token: Secret::new(fill(token, i)),
                    signature: None,
                    username_raw: None,
                    password: None,
                })
                .collect()
        }
    };
    let total = all.len();
    let mut mine: Vec<Identity> = all.into_iter().filter(|id| id.index % n as usize == (k - 1) as usize).collect();
    for id in &mut mine {
        if let (Some(key), None) = (&signer, &id.signature) {
            id.signature = Some(Secret::new(key.sign(id.token.expose())));
        }
        if id.password.is_none() {
            id.password = args.password.clone().map(Secret::new);
        }
        if id.client_id.is_empty() || id.client_id.len() > 128 {
            bail!("device {}: client ID of {} bytes; IoT Core takes 1 to 128", id.index, id.client_id.len());
        }
    }
    Ok((mine, total))
}

/// `--identities FILE`: one JSON object per line (blank lines skipped); a bad line is named.
fn read_identities(path: &std::path::Path) -> anyhow::Result<Vec<Identity>> {
    let bytes = crate::input::read_file(path, crate::input::Kind::Identities, "--identities")?;
    let text =
        String::from_utf8(bytes).map_err(|_| anyhow::anyhow!("--identities {}: not UTF-8 text", path.display()))?;
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        // Where a line is wrong, never what it holds (a token).
        let bad = |why: &str| {
            anyhow::anyhow!(
                "--identities {} line {}: {why}; each line is {{\"client_id\": …, \"token\": …}} (optional: \
                 signature, username_raw, password)",
                path.display(),
                n + 1
            )
        };
        let v: serde_json::Value = serde_json::from_str(line)
            .map_err(|e| bad(&format!("not JSON (column {}: {:?})", e.column(), e.classify())))?;
        let fields = v.as_object().ok_or_else(|| bad("not a JSON object"))?;
        const KNOWN: [&str; 5] = ["client_id", "token", "signature", "username_raw", "password"];
        if let Some(k) = fields.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(bad(&format!("unknown field `{}`", k.escape_debug())));
        }
        let text = |k: &str| match &v[k] {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::String(s) => Ok(Some(s.clone())),
            _ => Err(bad(&format!("`{k}` is not text"))),
        };
        let client_id = text("client_id")?.ok_or_else(|| bad("no `client_id`"))?;
        let token = text("token")?.ok_or_else(|| bad("no `token`"))?;
        out.push(Identity {
            index: out.len(),
            client_id,
            token: Secret::new(token),
            signature: text("signature")?.map(Secret::new),
            username_raw: text("username_raw")?.map(Secret::new),
            password: text("password")?.map(Secret::new),
        });
    }
    if out.is_empty() {
        bail!("--identities {}: no identities in it", path.display());
    }
    Ok(out)
}

/// The plan: every input checked, the target resolved; nothing sent.
fn plan(args: &StormArgs) -> anyhow::Result<StormPlan> {
    let endpoint = args.endpoint.clone().unwrap_or_default();
    if endpoint.is_empty() || endpoint.len() > 253 || endpoint.chars().any(|c| c.is_whitespace() || c.is_control()) {
        bail!("--endpoint `{}` is not a host name", endpoint.escape_debug());
    }
    let shard = shard(args.shard.as_deref())?;
    let (identities, devices_total) = identities(args, shard)?;
    if !(args.until_connected > 0.0 && args.until_connected <= 100.0) {
        bail!("--until-connected {}: give a percentage above 0, at most 100", args.until_connected);
    }
    if args.min_delay > args.max_delay {
        bail!("--min-delay ({} ms) is above --max-delay ({} ms)", args.min_delay, args.max_delay);
    }
    if args.duration == 0 || args.timeout == 0 {
        bail!("--duration and --timeout must be above 0");
    }
    if args.keep_alive == 0 {
        bail!("--keep-alive 0 turns keep-alive off, which IoT Core raises to 30 s: give 30 to 1200");
    }
    let (transport, placement) = transport(args)?;
    let trust = match (&args.ca, args.insecure) {
        (Some(_), true) => bail!("--ca and --insecure: give one"),
        (Some(path), false) => Trust::Roots(super::probe::read_roots(path)?),
        (None, true) => Trust::Insecure,
        (None, false) => Trust::Bundled,
    };
    let (host, port) = match &args.connect_to {
        Some(c) => {
            let (h, p) = super::probe::parse_connect_to(c)?;
            (h, p.unwrap_or(args.port))
        }
        None => (endpoint.clone(), args.port),
    };
    let addrs: Vec<std::net::SocketAddr> = std::net::ToSocketAddrs::to_socket_addrs(&(host.as_str(), port))
        .with_context(|| format!("{host} does not resolve"))?
        .collect();
    let loopback = !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback());
    let max_rate = rate(args, loopback, &host)?;
    Ok(StormPlan {
        server_name: endpoint,
        addrs,
        transport,
        mqtt_version: match args.mqtt_version {
            MqttVersionArg::V311 => MqttVersion::V311,
            MqttVersionArg::V5 => MqttVersion::V5,
        },
        authorizer: args.authorizer.clone(),
        token_key_name: args.token_key_name.clone(),
        placement,
        identities,
        devices_total,
        policy: policy(args),
        ramp: Duration::from_millis(args.ramp),
        hold: args.hold.map(Duration::from_millis),
        until_connected: args.until_connected,
        duration: Duration::from_millis(args.duration),
        max_rate: max_rate.map(|r| r / f64::from(shard.1)),
        timeout: Duration::from_millis(args.timeout),
        keep_alive: args.keep_alive,
        trust,
        seed: args.seed.unwrap_or_else(seed),
        shard,
    })
}

/// The transport, and where its credentials go.
fn transport(args: &StormArgs) -> anyhow::Result<(Transport, Placement)> {
    let transport = match args.transport {
        StormTransport::Mqtt => Transport::Mqtt,
        StormTransport::Wss => Transport::Wss,
    };
    let placement = match (transport, args.placement) {
        (Transport::Mqtt, None | Some(StormPlacement::Username)) => Placement::Username,
        (Transport::Mqtt, Some(p)) => {
            bail!("--placement {p:?}: MQTT over TLS carries credentials in the username only")
        }
        (_, None | Some(StormPlacement::Header)) => Placement::Header,
        (_, Some(StormPlacement::Query)) => Placement::Query,
        (_, Some(StormPlacement::Username)) => Placement::Username,
    };
    Ok((transport, placement))
}

/// The reconnect policy of the flags.
fn policy(args: &StormArgs) -> Policy {
    Policy {
        backoff: match args.backoff {
            BackoffArg::Exponential => Backoff::Exponential,
            BackoffArg::Fixed => Backoff::Fixed,
        },
        jitter: match args.jitter {
            JitterArg::None => Jitter::None,
            JitterArg::Full => Jitter::Full,
            JitterArg::Equal => Jitter::Equal,
            JitterArg::Decorrelated => Jitter::Decorrelated,
        },
        min_delay: Duration::from_millis(args.min_delay),
        max_delay: Duration::from_millis(args.max_delay),
    }
}

/// `--max-rate`: required off loopback, and above [`RATE_CAP`] only with `--allow-high-rate`.
fn rate(args: &StormArgs, loopback: bool, host: &str) -> anyhow::Result<Option<f64>> {
    if let Some(r) = args.max_rate {
        if !(r.is_finite() && r > 0.0) {
            bail!("--max-rate {r}: give connects per second above 0");
        }
    }
    match (args.max_rate, loopback) {
        (None, false) => bail!(
            "{host} is not loopback: a storm against it needs --max-rate (connects per second; start low, at most \
             {RATE_CAP} without --allow-high-rate). Every connect invokes the authorizer and counts against the \
             account's limits"
        ),
        (Some(r), false) if r > RATE_CAP && !args.allow_high_rate => {
            bail!(
                "--max-rate {r} is above {RATE_CAP} connects a second against {host}: add --allow-high-rate if that is meant"
            )
        }
        (r, _) => Ok(r),
    }
}

/// A random seed for the jitter.
fn seed() -> u64 {
    let bytes: [u8; 8] = ring::rand::generate(&ring::rand::SystemRandom::new()).map(|r| r.expose()).unwrap_or_default();
    u64::from_le_bytes(bytes)
}

pub(crate) fn run(args: StormArgs) -> anyhow::Result<ExitCode> {
    if !args.merge.is_empty() {
        let reports = args
            .merge
            .iter()
            .map(|p| {
                let text = crate::input::read_file(p, crate::input::Kind::Identities, "--merge")?;
                serde_json::from_slice::<serde_json::Value>(&text)
                    .map_err(|e| e.to_string())
                    .and_then(|v| crate::storm::report::Shard::from_json(&v))
                    .map_err(|e| anyhow::anyhow!("--merge {}: not a storm report ({e})", p.display()))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        let merged = StormReport::merge(reports)?;
        return print(&merged, &args);
    }
    let plan = Arc::new(plan(&args)?);
    // What is about to happen, before anything is sent.
    let rate = plan
        .max_rate
        .map_or("as fast as the endpoint answers (loopback)".to_owned(), |r| format!("at most {r:.1} connects/s"));
    let bound = plan
        .max_rate
        .map(|r| format!(", at most {:.0} connects in all", r * plan.duration.as_secs_f64()))
        .unwrap_or_default();
    eprintln!(
        "storm: {} devices (shard {}/{}) over {} to {} ({}), {rate}{bound}; ends at {}% connected or after {:.0} s",
        plan.identities.len(),
        plan.shard.0,
        plan.shard.1,
        plan.transport.as_str(),
        plan.server_name,
        plan.addrs.first().map(ToString::to_string).unwrap_or_default(),
        plan.until_connected,
        plan.duration.as_secs_f64()
    );
    let rt = super::runtime::runtime()?;
    let report = rt.block_on(async {
        let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|e| anyhow::anyhow!("cannot watch for Ctrl-C: {e}"))?;
        crate::storm::run(plan.clone(), async move {
            interrupt.recv().await;
        })
        .await
    })?;
    print(&report, &args)
}

/// Prints the report (and writes `--output`); exit 0 when the share connected, else 1.
fn print(report: &StormReport, args: &StormArgs) -> anyhow::Result<ExitCode> {
    let json = serde_json::to_string(report)?;
    if let Some(path) = &args.output {
        let tmp = path.with_extension(format!("{}.part", std::process::id()));
        std::fs::write(&tmp, &json)
            .and_then(|()| std::fs::rename(&tmp, path))
            .map_err(|e| anyhow::anyhow!("--output {}: {e}", path.display()))?;
    }
    let mut out = std::io::stdout().lock();
    match args.format {
        StormFormat::Json => writeln!(out, "{json}")?,
        StormFormat::Text => crate::storm::text::write(report, &mut out)?,
    }
    out.flush()?;
    let need = (report.setup.until_connected_pct / 100.0 * report.setup.devices as f64).ceil() as usize;
    Ok(if report.connected >= need.max(1) { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
