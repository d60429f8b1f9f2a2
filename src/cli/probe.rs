//! `authprobe probe`: flags become a validated `ProbePlan` (exit 2 on bad input, nothing sent), then
//! one attempt per transport, rendered as text or JSON.

use super::args::*;
use super::device::read_json;
use super::progress::Bars;
use crate::auth::event::Transport;
use crate::auth::policy::Arns;
use crate::probe::plan::{Checks, Credentials, DeviceSends};
use crate::probe::{ProbePlan, Trust};
use crate::report::{Report, text};
use crate::secret::Secret;
use anyhow::bail;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use std::io::{IsTerminal as _, Write as _};
use std::process::ExitCode;
use std::time::Duration;

pub(crate) fn run(mut args: ProbeArgs) -> anyhow::Result<ExitCode> {
    if let Some(path) = args.device.clone() {
        let profile = super::profile::Profile::read(&path)?;
        profile.check_secret_sources(&path, args.allow_device_secrets)?;
        profile.apply(&mut args);
        args.creds.profile = Some(path.display().to_string());
    }
    let plan = plan(&args)?;
    // Before anything is sent: every log line from here on is scrubbed of the run's secrets.
    crate::secret::register_log_secrets(&crate::probe::matrix::run_secrets(&plan));
    let quiet = args.output.quiet;
    check_output(&args)?;
    if let Some(path) = &args.save_device {
        save_device(&args, path, quiet)?;
    }
    let investigation = crate::investigate::Investigation::new(&plan);
    for w in investigation.warnings().iter().filter(|_| !quiet) {
        eprintln!("warning: {w}");
    }
    let specs = crate::probe::matrix::variants(&plan, args.matrix.level());
    let specs: Vec<_> = if args.matrix.same_client_id {
        specs.into_iter().map(|s| crate::probe::AttemptSpec { client_id: plan.device.client_id.clone(), ..s }).collect()
    } else {
        specs
    };
    let rt = super::runtime::runtime()?;
    let bars = Bars::for_output(&args.output);
    let lines = match args.output.format {
        Format::Jsonl => {
            let l = super::jsonl::Lines::new(args.output.label.clone(), crate::probe::matrix::run_secrets(&plan));
            Some(match &args.fleet.output {
                Some(path) => l.appending_to(path)?,
                None => l,
            })
        }
        _ => None,
    };
    let collected = super::jsonl::Collect::default();
    let mut sinks: Vec<&dyn crate::probe::Progress> = vec![&collected];
    sinks.extend(bars.as_ref().map(|b| b as &dyn crate::probe::Progress));
    sinks.extend(lines.as_ref().map(|l| l as &dyn crate::probe::Progress));
    let fanout = super::jsonl::Fanout(sinks);
    let started = std::time::SystemTime::now();
    let jitter = args.fleet.jitter.map(jitter);
    let work = async {
        if let Some(wait) = jitter {
            tokio::time::sleep(wait).await;
        }
        investigation.run(&specs, args.matrix.schedule(), &fanout).await
    };
    let finished = until_interrupted(&rt, work)?;
    let mut report = match finished {
        Some(r) => r,
        None => {
            // Ctrl-C: clear the live lines and report what ran.
            if let Some(b) = &bars {
                b.clear();
            }
            let attempts = collected.0.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
            let unix = |t: std::time::SystemTime| t.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
            let ran = attempts.len();
            let window = (unix(started), unix(std::time::SystemTime::now()));
            let mut r = crate::investigate::Investigation::new(&plan).report(attempts, window);
            r.interrupt(ran, specs.len());
            r
        }
    };
    report.label = args.output.label.clone();
    report.jitter_ms = jitter.map(|d| d.as_millis() as u64);
    if args.fleet.exit_zero {
        report.exit_zero();
    }
    deliver(&report, &args, lines.as_ref())?;
    Ok(ExitCode::from(report.exit_code))
}

/// The report where it was asked for: the HTML page, stdout or `--output`, then the summary line.
fn deliver(report: &Report, args: &ProbeArgs, lines: Option<&super::jsonl::Lines>) -> anyhow::Result<()> {
    if let Some(path) = &args.output.report {
        write_page(path, report)?;
    }
    match (lines, &args.fleet.output) {
        (Some(l), _) => l.summary(report)?,
        (None, Some(path)) => write_output(path, report, &args.output)?,
        (None, None) => render(report, &args.output)?,
    }
    if args.fleet.summary_line {
        let mut out = std::io::stdout().lock();
        writeln!(out, "{}", crate::report::fleet::summary_line(report))?;
        out.flush()?;
    }
    Ok(())
}

/// `--output FILE`: its folder must exist (checked before anything is sent: exit 2, not a report
/// lost after the run).
fn check_output(args: &ProbeArgs) -> anyhow::Result<()> {
    let Some(path) = &args.fleet.output else { return Ok(()) };
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(std::path::Path::new("."));
    if !dir.is_dir() {
        anyhow::bail!(
            "--output {}: the folder {} does not exist; create it or write elsewhere",
            path.display(),
            dir.display()
        );
    }
    if path.is_dir() {
        anyhow::bail!("--output {}: is a folder; give a file name in it", path.display());
    }
    Ok(())
}

/// `--jitter`: a uniformly random wait up to `max` seconds (millisecond steps).
fn jitter(max: f64) -> Duration {
    let bytes: [u8; 8] = ring::rand::generate(&ring::rand::SystemRandom::new()).map(|r| r.expose()).unwrap_or_default();
    let max_ms = (max * 1000.0) as u64;
    Duration::from_millis(if max_ms == 0 { 0 } else { u64::from_le_bytes(bytes) % (max_ms + 1) })
}

/// `--output FILE` (json, text): written whole to a temporary file beside it, then renamed, so a
/// collector never reads half a report.
fn write_output(path: &std::path::Path, report: &Report, output: &OutputArgs) -> anyhow::Result<()> {
    let mut body = Vec::new();
    match output.format {
        Format::Json => report.write_json(&mut body)?,
        _ => text::write(report, text::Style { color: output.color_for(false), details: output.details }, &mut body)?,
    }
    // This process's own temporary name: two runs writing the same FILE never share one.
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!(".{}.part", std::process::id()));
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, body)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| anyhow::anyhow!("--output {}: {e}", path.display()))
}

/// `--save-device PATH`: the profile, written, and the notes on what it keeps (unless `-q`).
fn save_device(args: &ProbeArgs, path: &std::path::Path, quiet: bool) -> anyhow::Result<()> {
    let (profile, mut notes) = super::profile::Profile::of(args, path);
    notes.extend(profile.outside_notes(path));
    profile.write(path)?;
    notes.push(format!(
        "device profile written to {}; replay it with `authprobe probe --device {}`",
        path.display(),
        crate::secret::shell_quote(&path.display().to_string())
    ));
    for n in notes.iter().filter(|_| !quiet) {
        eprintln!("note: {n}");
    }
    Ok(())
}

/// Runs `work` to its end, or until Ctrl-C (`None`).
fn until_interrupted<T>(
    rt: &tokio::runtime::Runtime,
    work: impl std::future::Future<Output = T>,
) -> anyhow::Result<Option<T>> {
    rt.block_on(async {
        // The handler is installed before the first attempt starts: `ctrl_c()` would install it only
        // when first polled, and a Ctrl-C that came between an attempt's first packet and that poll
        // killed the process without a report.
        let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
            .map_err(|e| anyhow::anyhow!("cannot watch for Ctrl-C: {e}"))?;
        anyhow::Ok(tokio::select! {
            biased;
            _ = interrupt.recv() => None,
            r = work => Some(r),
        })
    })
}

/// `--report FILE.html`: written whole to a temporary file beside it, then renamed, so that nothing
/// ever reads half a page.
fn write_page(path: &std::path::Path, report: &Report) -> anyhow::Result<()> {
    let tmp = path.with_extension("html.part");
    std::fs::write(&tmp, crate::report::html::page(report))
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| anyhow::anyhow!("--report {}: {e}", path.display()))
}

/// Writes the report to stdout in the chosen format.
pub(crate) fn render(report: &Report, output: &OutputArgs) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    match output.format {
        Format::Json => report.write_json(&mut out)?,
        Format::Jsonl => super::jsonl::Lines::new(output.label.clone(), report.secrets.clone()).summary(report)?,
        Format::Text => {
            let color = output.color_for(std::io::stdout().is_terminal());
            text::write(report, text::Style { color, details: output.details }, &mut out)?;
        }
    }
    out.flush()?;
    Ok(())
}

/// A profile saves the secrets inside a username as placeholders; the replay fills them.
fn fill_usernames(credentials: &mut Credentials, device: &mut DeviceSends) -> anyhow::Result<()> {
    let (token, signature) = (credentials.token.clone(), credentials.signature.clone());
    if let Some(u) = device.username_raw.take() {
        let u = super::profile::fill_placeholders(
            &u,
            token.as_ref().map(Secret::expose),
            signature.as_ref().map(Secret::expose),
            "username_raw",
        )?;
        device.username_raw = Some(u);
    }
    if let Some(u) = credentials.username.take() {
        let u = super::profile::fill_placeholders(
            &u,
            token.as_ref().map(Secret::expose),
            signature.as_ref().map(Secret::expose),
            "username",
        )?;
        credentials.username = Some(u);
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

/// Validates every flag and file and builds the plan (the one place a probe's plan is made from
/// flags and a device profile); nothing touches the network.
pub(crate) fn plan(args: &ProbeArgs) -> anyhow::Result<ProbePlan> {
    let domain = match &args.domain_json {
        Some(p) => Some(read_json("--domain-json", p)?),
        None => None,
    };
    let endpoint = endpoint(args, domain.as_ref())?;
    let connect_to = args.connect_to.as_deref().map(parse_connect_to).transpose()?;
    let mut transports: Vec<Transport> = args.transports.iter().map(|&t| t.into()).collect();
    if transports.is_empty() && args.sends.client_type == Some(super::args::ClientTypeArg::Browser) {
        // A page speaks MQTT only over WebSockets.
        transports.push(Transport::Wss);
    }
    let mut device = args.creds.device(domain.as_ref())?;
    if args.matrix.parallel.is_some_and(|n| !(1..=64).contains(&n)) {
        bail!("--parallel must be between 1 and 64");
    }
    let seconds = |flag: &str, s: f64| {
        Duration::try_from_secs_f64(s).map_err(|_| match flag {
            "--timeout" => anyhow::anyhow!("--timeout must be more than 0 and at most 3600 seconds, got {s}"),
            _ => anyhow::anyhow!("--spacing must be between 0 and 60 seconds"),
        })
    };
    let (timeout, spacing) = (seconds("--timeout", args.timeout)?, seconds("--spacing", args.matrix.spacing)?);
    let trust = match (&args.ca, args.insecure) {
        (_, true) => Trust::Insecure,
        (Some(path), _) => Trust::Roots(read_roots(path)?),
        (None, false) => Trust::Bundled,
    };
    let mut hosts = vec![endpoint.as_str()];
    hosts.extend(connect_to.as_ref().map(|(h, _)| h.as_str()));
    let network = net_path(args, &hosts)?;
    let mut documents = std::mem::take(&mut device.documents);
    documents.endpoint_address =
        described_endpoint(args)?.and_then(|v| v.get("endpointAddress").and_then(|e| e.as_str()).map(str::to_owned));
    let mut sends = args.sends.device(if transports.is_empty() { &Transport::ALL } else { &transports })?;
    sends.client_id = device.client_id;
    sends.mqtt_version = device.mqtt_version;
    fill_usernames(&mut device.credentials, &mut sends)?;
    let mut b = ProbePlan::builder(&endpoint, device.credentials);
    b.port(args.port.unwrap_or(443))
        .trust(trust)
        .transports(transports)
        .topic(args.topic.as_deref().or(args.publish.as_deref()).unwrap_or("authprobe/probe"))
        .timeout(timeout)
        .show_secrets(args.output.show_secrets)
        .alt_sni(&args.matrix.alt_sni)
        .documents(documents)
        .follow_up(args.matrix.follow_up == FollowUpArg::Auto)
        .follow_up_spacing(spacing)
        .checks(Checks { publish: args.publish.clone(), subscribe: args.subscribe.clone() })
        .device(sends)
        .network(network);
    if let Some((host, port)) = &connect_to {
        b.connect_to(host, *port);
    }
    if let Some(ca) = args.ca.as_ref().filter(|_| !args.insecure) {
        b.ca_file(&ca.display().to_string());
    }
    if let Some(region) = &args.region {
        b.arns(Arns::new(region, args.account.as_deref().unwrap_or("<account>")));
    } else if let Some(account) = &args.account {
        b.arns(Arns::for_endpoint(&endpoint, Some(account)));
    }
    Ok(b.build()?)
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

pub(crate) fn read_roots(path: &std::path::Path) -> anyhow::Result<Vec<CertificateDer<'static>>> {
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
pub(crate) fn parse_connect_to(s: &str) -> anyhow::Result<(String, Option<u16>)> {
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
        assert_eq!(plan_of(&[]).matrix.topic, "authprobe/probe");
        assert_eq!(plan_of(&["--publish", "devices/x/t"]).matrix.topic, "devices/x/t");
        assert_eq!(plan_of(&["--publish", "devices/x/t", "--topic", "other/t"]).matrix.topic, "other/t");
    }

    fn plan_err(args: &[&str]) -> String {
        let argv = ["authprobe"].iter().chain(args);
        plan(&Cli::parse_from(argv).probe).unwrap_err().to_string()
    }

    #[test]
    fn a_browser_probe_is_what_a_page_can_send() {
        use crate::auth::credentials::Placement;
        let p = plan_of(&["--client-type", "browser", "--token", "t", "--authorizer", "A"]);
        assert_eq!(p.matrix.transports, [Transport::Wss], "a page speaks MQTT over WebSockets only");
        assert_eq!(p.device.origin.as_deref(), Some("http://localhost"));
        assert_eq!(p.device.alpn, Some(vec![b"http/1.1".to_vec()]), "Chromium's offer on a WebSocket");
        assert_eq!(p.device.placement, Some(Placement::Username));
        let p =
            plan_of(&["--client-type", "browser", "--placement", "query", "--origin", "https://app.example.com:8443"]);
        assert_eq!(p.device.placement, Some(Placement::Query));
        assert_eq!(p.device.origin.as_deref(), Some("https://app.example.com:8443"));
        let host = ["--endpoint", "abc-ats.iot.eu-west-1.amazonaws.com"];
        let err = |extra: &[&str]| plan_err(&[&host[..], extra].concat());
        assert!(err(&["--client-type", "browser", "--transport", "mqtt"]).contains("cannot open MQTT over TLS"));
        assert!(err(&["--client-type", "browser", "--placement", "header"]).contains("cannot set headers"));
        let both = ["--client-type", "browser", "--transport", "wss,https", "--placement", "header"];
        assert!(err(&both).contains("cannot set headers"));
        // A page's HTTPS publish: credentials in fetch's headers by default, or in the URL.
        let p = plan_of(&["--client-type", "browser", "--transport", "https", "--token", "t", "--authorizer", "A"]);
        assert_eq!(p.matrix.transports, [Transport::Https]);
        assert_eq!(p.device.placement_for(Transport::Https), Placement::Header);
        assert_eq!(p.device.origin.as_deref(), Some("http://localhost"));
        let p = plan_of(&["--client-type", "browser", "--transport", "https", "--placement", "header"]);
        assert_eq!(p.device.placement_for(Transport::Https), Placement::Header);
        let p = plan_of(&["--client-type", "browser", "--transport", "wss,https", "--token", "t", "--authorizer", "A"]);
        assert_eq!(p.device.placement_for(Transport::Wss), Placement::Username);
        assert_eq!(p.device.placement_for(Transport::Https), Placement::Header);
        assert!(err(&["--origin", "https://a.example"]).contains("add --client-type browser"));
        for bad in ["app.example.com", "https://a.example/page", "https://", "https://a b"] {
            assert!(err(&["--client-type", "browser", "--origin", bad]).contains("is not an origin"), "{bad}");
        }
    }

    #[test]
    fn shell_friendly_forms() {
        assert_eq!(plan_of(&["--transport", "mqtt,wss"]).matrix.transports, [Transport::Mqtt, Transport::Wss]);
        assert_eq!(plan_of(&["--mqtt-version", "311"]).device.mqtt_version, crate::probe::MqttVersion::V311);
        assert_eq!(
            plan_of(&["--connect-to", "x:443:127.0.0.1:8443"]).target.connect_to,
            Some(("127.0.0.1".into(), Some(8443)))
        );
        let e = plan_err(&["--endpoint", "abc-ats.iot.eu-west-1.amazonaws.com:8443"]);
        assert!(e.contains("--endpoint abc-ats.iot.eu-west-1.amazonaws.com --port 8443"), "{e}");
        let e = plan_err(&["--endpoint", "wss://abc-ats.iot.eu-west-1.amazonaws.com/mqtt"]);
        assert!(e.contains("--endpoint abc-ats.iot.eu-west-1.amazonaws.com --transport wss"), "{e}");
    }

    #[test]
    fn follow_ups_are_on_unless_turned_off() {
        assert!(plan_of(&[]).matrix.follow_up);
        assert!(!plan_of(&["--follow-up", "none"]).matrix.follow_up);
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
