//! `authprobe emulate`: flags and files become an `EmulatorConfig`; then serve until Ctrl-C.

use crate::emulator::config::{self, ConfigFile, DEFAULT_ENDPOINTS, EmulatorConfig};
use crate::emulator::{Authorizer, Function, Rule, certs::Identity};
use anyhow::{Context as _, bail};
use clap::Args;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Debug, Args)]
pub(crate) struct EmulateArgs {
    /// Print only the listening line; log connections only with -v.
    #[arg(short, long)]
    pub quiet: bool,
    /// Address and port to serve on.
    #[arg(long, value_name = "ADDR:PORT", default_value = "127.0.0.1:8443")]
    pub listen: SocketAddr,
    /// An endpoint name accepted as SNI (repeatable). Default: abc123-ats.iot.us-east-1.amazonaws.com and localhost.
    #[arg(long = "endpoint", value_name = "NAME")]
    pub endpoints: Vec<String>,
    /// Name of the authorizer set up by these flags (default `MyAuthorizer`).
    #[arg(long, value_name = "NAME")]
    pub authorizer: Option<String>,
    /// Token key name of that authorizer (default `token`).
    #[arg(long, value_name = "KEY")]
    pub token_key_name: Option<String>,
    /// A token-signing public key, SubjectPublicKeyInfo PEM file (repeatable). None: signing disabled.
    #[arg(long = "public-key", value_name = "PEM")]
    pub public_keys: Vec<PathBuf>,
    /// Take the authorizer (name, token key name, keys, status) from `aws iot describe-authorizer` JSON.
    #[arg(long, value_name = "FILE")]
    pub authorizer_json: Option<PathBuf>,
    /// The authorizer used when a connection names none.
    #[arg(long, value_name = "NAME")]
    pub default_authorizer: Option<String>,
    /// The authorizer function: a shell command that reads the event JSON on stdin and prints the response JSON.
    #[arg(long, value_name = "CMD", conflicts_with = "allow_tokens")]
    pub authorizer_command: Option<String>,
    /// The authorizer function: your unmodified Lambda handler, started by this command under a runtime
    /// interface client (e.g. `python3 -m awslambdaric app.handler`, `npx aws-lambda-ric index.handler`,
    /// or a binary built with a Lambda runtime), behind a Lambda Runtime API on loopback.
    #[arg(long, value_name = "CMD", conflicts_with_all = ["allow_tokens", "authorizer_command"])]
    pub authorizer_handler: Option<String>,
    /// Warm handler workers (concurrent invocations) for --authorizer-handler.
    #[arg(long, value_name = "N", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub authorizer_workers: u16,
    /// A token the built-in function allows with an `iot:*` policy (repeatable); every other token is denied.
    #[arg(long = "allow-token", value_name = "TOKEN")]
    pub allow_tokens: Vec<String>,
    /// Latency added before every function invocation, in milliseconds (or with a unit: 300ms, 2s).
    #[arg(long, value_name = "MS", value_parser = super::args::millis)]
    pub authorizer_latency: Option<u64>,
    /// The function's time limit in milliseconds (IoT Core: 5000; or with a unit: 5s).
    #[arg(long, value_name = "MS", value_parser = super::args::millis)]
    pub time_limit: Option<u64>,
    /// The account's connect rate: CONNECTs per second beyond it are refused (IoT Core: 500). Off by default.
    #[arg(long, value_name = "PER_SEC", value_parser = clap::value_parser!(u32).range(1..))]
    pub connect_rate: Option<u32>,
    /// The authorizer function's concurrency (Lambda reserved concurrency): invocations beyond it are
    /// throttled and the connection refused as for a failing function. Off by default.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub authorizer_concurrency: Option<u32>,
    /// Added to the first invocation in each new concurrent execution environment (a Lambda cold
    /// start), in milliseconds (or with a unit: 800ms, 6s).
    #[arg(long, value_name = "MS", value_parser = super::args::millis)]
    pub cold_start: Option<u64>,
    /// Write the generated CA certificate (PEM) here, for clients to trust.
    #[arg(long, value_name = "FILE")]
    pub write_ca: Option<PathBuf>,
    /// Key type of the generated chain: rsa (as IoT Core's ATS endpoints; TLS 1.2 ECDHE-RSA clients
    /// connect) or ecdsa.
    #[arg(long, value_enum, default_value_t = KeyTypeArg::Rsa)]
    pub key_type: KeyTypeArg,
    /// Serve this certificate chain (PEM) instead of generating one; needs --key.
    #[arg(long, value_name = "PEM", requires = "key")]
    pub cert: Option<PathBuf>,
    /// Private key (PEM) for --cert.
    #[arg(long, value_name = "PEM", requires = "cert")]
    pub key: Option<PathBuf>,
    /// TOML config file (authorizers, rules, refusal styles, timeouts); flags override it.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Append one JSON line per connection to this file.
    #[arg(long, value_name = "FILE")]
    pub log_json: Option<PathBuf>,
    /// Show tokens, signatures and passwords in logs instead of redacting them.
    #[arg(long)]
    pub show_secrets: bool,
}

pub(crate) fn run(args: EmulateArgs) -> anyhow::Result<ExitCode> {
    raise_fd_limit();
    let file = match &args.config {
        Some(path) => {
            let text = crate::input::read_text(path, crate::input::Kind::Config, "--config")?;
            Some(ConfigFile::parse(&text, path)?)
        }
        None => None,
    };
    let listen = match file.as_ref().and_then(|f| f.listen.as_deref()) {
        Some(l) if args.listen == default_listen() => {
            l.parse().with_context(|| format!("`listen = \"{l}\"` in the config file is not ADDR:PORT"))?
        }
        _ => args.listen,
    };
    let config = build_config(&args, file)?;
    let rt = super::runtime::runtime()?;
    rt.block_on(serve(listen, config, &args))
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 8443))
}

/// Flags and the config file, merged and checked (flags win).
pub(crate) fn build_config(args: &EmulateArgs, file: Option<ConfigFile>) -> anyhow::Result<EmulatorConfig> {
    if args.endpoints.iter().any(|e| e.trim().is_empty()) {
        bail!("--endpoint is empty (an unset variable?): give a name, or leave --endpoint out");
    }
    if args.allow_tokens.iter().any(String::is_empty) {
        bail!("--allow-token is empty (an unset variable?): give the token to allow");
    }
    let endpoints = if !args.endpoints.is_empty() {
        args.endpoints.clone()
    } else if let Some(e) = file.as_ref().and_then(|f| f.endpoints.clone()) {
        e
    } else {
        DEFAULT_ENDPOINTS.iter().map(|s| (*s).to_owned()).collect()
    };
    let mut cfg = EmulatorConfig::new(endpoints).context("generating the emulator's certificates")?;
    if args.key_type == KeyTypeArg::Rsa && args.cert.is_none() {
        let kind = crate::emulator::certs::KeyType::Rsa;
        cfg.identity =
            Identity::generate_with(&cfg.endpoints, kind).context("generating the emulator's RSA certificates")?;
    }
    let base = args.config.as_deref().and_then(Path::parent).unwrap_or(Path::new(".")).to_path_buf();
    let mut tls_files = args.cert.clone().zip(args.key.clone());
    if let Some(f) = file {
        if tls_files.is_none() {
            tls_files = f.tls.as_ref().map(|t| (base.join(&t.cert), base.join(&t.key)));
        }
        f.apply(&mut cfg, &base)?;
    }
    if let Some((cert, key)) = tls_files {
        let read = |p: &Path| crate::input::read_file(p, crate::input::Kind::Key, "a TLS certificate or key");
        cfg.identity = Identity::from_pem(&read(&cert)?, &read(&key)?)
            .map_err(|e| anyhow::anyhow!("--cert {} / --key {}: {e}", cert.display(), key.display()))?;
    }
    if let Some(a) = flag_authorizer(args, cfg.authorizers.is_empty())? {
        cfg.authorizers.retain(|x| x.name != a.name);
        cfg.authorizers.push(a);
    }
    if let Some(d) = &args.default_authorizer {
        cfg.default_authorizer = Some(d.clone());
    }
    if let Some(ms) = args.authorizer_latency {
        cfg.latency = Duration::from_millis(ms);
    }
    if let Some(rate) = args.connect_rate {
        cfg.limits.connect_rate = Some(rate);
    }
    if let Some(n) = args.authorizer_concurrency {
        cfg.limits.authorizer_concurrency = Some(n as usize);
    }
    if let Some(ms) = args.cold_start {
        cfg.limits.cold_start = Duration::from_millis(ms);
    }
    if let Some(ms) = args.time_limit {
        cfg.time_limit = Duration::from_millis(ms);
    }
    cfg.show_secrets = args.show_secrets;
    cfg.validate()?;
    Ok(cfg)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum KeyTypeArg {
    Rsa,
    Ecdsa,
}

/// The authorizer described by flags, if any flag describes one (or none is configured at all).
fn flag_authorizer(args: &EmulateArgs, none_configured: bool) -> anyhow::Result<Option<Authorizer>> {
    let any_flag = args.authorizer.is_some()
        || args.authorizer_json.is_some()
        || args.token_key_name.is_some()
        || !args.public_keys.is_empty()
        || args.authorizer_command.is_some()
        || args.authorizer_handler.is_some()
        || !args.allow_tokens.is_empty();
    if !any_flag && !none_configured {
        return Ok(None);
    }
    let mut a = match &args.authorizer_json {
        Some(path) => {
            let text = crate::input::read_text(path, crate::input::Kind::Document, "--authorizer-json")?;
            config::authorizer_from_describe_json(&text, path)?
        }
        None => Authorizer::new("MyAuthorizer", "token"),
    };
    if let Some(n) = &args.authorizer {
        a.name = n.clone();
    }
    if let Some(k) = &args.token_key_name {
        a.token_key_name = k.clone();
    }
    if !args.public_keys.is_empty() {
        let mut keys = Vec::new();
        for (i, path) in args.public_keys.iter().enumerate() {
            let bytes = crate::input::read_file(path, crate::input::Kind::Key, "--public-key")?;
            let name = format!("key{}", i + 1);
            keys.push(
                crate::auth::signature::PublicKey::from_bytes(&name, &bytes)
                    .with_context(|| format!("--public-key {}", path.display()))?,
            );
        }
        a.signing = Some(keys);
    }
    if let Some(cmd) = &args.authorizer_command {
        if cmd.trim().is_empty() {
            bail!("--authorizer-command is empty: give the command that runs your authorizer");
        }
        a.function = Function::Command(cmd.clone());
    } else if let Some(cmd) = &args.authorizer_handler {
        if cmd.trim().is_empty() {
            bail!(
                "--authorizer-handler is empty: give the command that starts your handler, e.g. `python3 -m awslambdaric app.handler`"
            );
        }
        a.function = Function::Handler(crate::emulator::Handler::new(cmd, usize::from(args.authorizer_workers)));
    } else if !args.allow_tokens.is_empty() {
        a.function = Function::Rules(args.allow_tokens.iter().map(|t| Rule::allow_all(t)).collect());
    }
    Ok(Some(a))
}

async fn serve(listen: SocketAddr, mut cfg: EmulatorConfig, args: &EmulateArgs) -> anyhow::Result<ExitCode> {
    let listener = crate::emulator::listen(listen).with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr()?;
    if let Some(path) = &args.write_ca {
        let Some(pem) = &cfg.identity.ca_pem else {
            bail!("--write-ca: there is no generated CA when --cert is given; clients trust your own CA");
        };
        std::fs::write(path, pem).with_context(|| format!("cannot write --write-ca {}", path.display()))?;
    }
    if let Some(path) = &args.log_json {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .with_context(|| format!("cannot open --log-json {}", path.display()))?;
        let file = Arc::new(Mutex::new(file));
        cfg.on_record = Some(Arc::new(move |rec| {
            if let (Ok(mut f), Ok(line)) = (file.lock(), serde_json::to_string(rec)) {
                let _ = writeln!(f, "{line}");
            }
        }));
    }
    // A certificate and key that do not belong together fail here, before the banner says "listening".
    crate::emulator::check_tls(&cfg).map_err(|e| match (&args.cert, &args.key) {
        (Some(c), Some(k)) => anyhow::anyhow!(
            "--cert {} and --key {} cannot serve TLS together ({e}): give the key that belongs to the certificate",
            c.display(),
            k.display()
        ),
        _ => anyhow::anyhow!("the emulator's TLS setup failed: {e}"),
    })?;
    // Signals stop the emulator from the moment it says it listens.
    let stop = stop_signal();
    let banner = startup_text(addr, &cfg, args.write_ca.as_deref());
    match banner.lines().next().filter(|_| args.quiet) {
        Some(first) => println!("{first}"),
        None => print!("{banner}"),
    }
    let _ = std::io::stdout().flush();
    // On a worker thread, not the thread that blocks on the runtime: accepting there and handing
    // each connection to a worker cost a cross-thread wake-up per connect (measured with perf).
    let server = tokio::spawn(crate::emulator::run(listener, cfg, stop));
    let stopped = server.await.context("the emulator stopped unexpectedly");
    // Handlers and authorizer commands go with the emulator, whatever stopped it.
    crate::emulator::kill_all_groups();
    stopped??;
    if !args.quiet {
        println!("stopped");
    }
    Ok(ExitCode::SUCCESS)
}

/// The soft limit on open files raised to the hard one: each held connection is a descriptor, and
/// the default soft limit (often 1,024) would let a few idle connections lock good clients out.
fn raise_fd_limit() {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit read and write the struct given, nothing else.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur < lim.rlim_max {
            lim.rlim_cur = lim.rlim_max;
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                tracing::warn!("could not raise the open-file limit to {}", lim.rlim_max);
            }
        }
    }
}

/// Ctrl-C, SIGTERM (`kill`, `timeout`, systemd's stop) or SIGHUP (the terminal closed). The handlers
/// are installed here, at once — not when the future is first polled, after the handlers started —
/// so a signal that comes as soon as the banner is out stops the emulator the same way.
fn stop_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{Signal, SignalKind, signal};
    async fn next(s: &mut Option<Signal>) {
        match s {
            Some(s) => {
                s.recv().await;
            }
            None => std::future::pending().await,
        }
    }
    let [mut int, mut term, mut hup] =
        [SignalKind::interrupt(), SignalKind::terminate(), SignalKind::hangup()].map(|k| signal(k).ok());
    async move {
        tokio::select! {
            () = next(&mut int) => {}
            () = next(&mut term) => {}
            () = next(&mut hup) => {}
        }
    }
}

fn startup_text(addr: SocketAddr, cfg: &EmulatorConfig, ca: Option<&Path>) -> String {
    let mut s = format!("authprobe emulator listening on {addr}\n");
    s += &format!("  endpoints (SNI): {}\n", cfg.endpoints.join(", "));
    s += &match (ca, &cfg.identity.ca_pem) {
        (Some(p), _) => format!("  CA certificate:  {} (clients must trust it)\n", p.display()),
        (None, Some(_)) => "  CA certificate:  not written; pass --write-ca FILE for clients to trust it\n".into(),
        (None, None) => "  certificate:     from --cert/--key\n".into(),
    };
    for a in &cfg.authorizers {
        let signing = match &a.signing {
            None => "signing disabled".to_owned(),
            Some(k) => format!("signing with {} key(s)", k.len()),
        };
        let function = match &a.function {
            Function::Command(c) => format!("command `{c}`"),
            Function::Handler(h) => format!("handler `{}` ({} warm worker(s), Runtime API)", h.command, h.workers),
            Function::Rules(r) if r.is_empty() => "no allowed tokens: every token is denied".into(),
            Function::Rules(r) => format!("{} rule(s)", r.len()),
        };
        let default = if cfg.default_authorizer.as_deref() == Some(&a.name) { " [default]" } else { "" };
        let status = if a.active { "" } else { " INACTIVE" };
        s += &format!(
            "  authorizer {}{default}{status}: token key `{}`, {signing}, {function}\n",
            a.name, a.token_key_name
        );
    }
    if cfg.default_authorizer.is_none() {
        s += "  no default authorizer: connections must name one (x-amz-customauthorizer-name)\n";
    }
    s += &format!(
        "  function time limit {} ms, added latency {} ms\n",
        cfg.time_limit.as_millis(),
        cfg.latency.as_millis()
    );
    let l = &cfg.limits;
    if l.connect_rate.is_some() || l.authorizer_concurrency.is_some() || !l.cold_start.is_zero() {
        let show = |v: Option<String>| v.unwrap_or_else(|| "off".into());
        s += &format!(
            "  limits: account connect rate {}/s, function concurrency {}, cold start {} ms\n",
            show(l.connect_rate.map(|r| r.to_string())),
            show(l.authorizer_concurrency.map(|c| c.to_string())),
            l.cold_start.as_millis()
        );
    }
    s += "  Ctrl-C stops it\n";
    s
}
