//! Command-line interface: flags become validated settings before anything touches the network.
//!
//! Exit codes (docs/outcomes.md): 0 success, 1 a check failed, 2 bad input (nothing was sent).

pub(crate) mod args;
pub(crate) mod demo;
pub(crate) mod device;
pub(crate) mod emulate;
pub(crate) mod explain;
pub(crate) mod inspect;
pub(crate) mod jsonl;
pub(crate) mod probe;
pub(crate) mod profile;
pub(crate) mod progress;
pub(crate) mod runtime;
pub(crate) mod storm;
pub(crate) mod summarize;
pub(crate) mod toolkit;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

const AFTER_HELP: &str = "\
Examples:
  authprobe demo
  authprobe probe --endpoint abc123-ats.iot.eu-west-1.amazonaws.com --authorizer MyAuthorizer --token-file token.txt
  authprobe probe --device gw-17.toml --format jsonl --label site-3 | jq .
  authprobe inspect device.pcap
  authprobe emulate --allow-token test-token --write-ca ca.pem

Exit codes:
  0  every attempt expected to succeed did (or the check passed)
  1  at least one failed; the report says where and why
  2  bad input (a flag, a file, a setting); nothing was sent
  130  interrupted (Ctrl-C); the attempts that ran are reported
  141  stdout was closed by its reader (`| head`); the rest is not printed

Findings and cause ids: docs/causes.md; outcomes: docs/outcomes.md (in the source repository).";

/// `probe -h`: the two commands a field engineer starts from (`--help` has more, and the exit codes).
const PROBE_SHORT_HELP: &str = "\
Examples:
  authprobe probe --endpoint abc123-ats.iot.eu-west-1.amazonaws.com --authorizer MyAuthorizer --token-file token.txt
  authprobe probe --device gw-17.toml
(`--help`: every flag, grouped, and the exit codes)";

const PROBE_HELP: &str = "\
Examples:
  authprobe probe --endpoint abc123-ats.iot.eu-west-1.amazonaws.com --authorizer MyAuthorizer --token-file token.txt
  AUTHPROBE_TOKEN=... authprobe probe --endpoint-json endpoint.json --authorizer-json authorizer.json --publish dev/t
  authprobe probe --device gw-17.toml --proxy http://proxy.corp:3128 --format jsonl --label site-3
  authprobe probe --endpoint abc123-ats.iot.eu-west-1.amazonaws.com --no-sni --alpn mqtt --token-file token.txt --matrix none

Exit codes:
  0  every attempt expected to succeed did
  1  at least one failed; the report says where and why
  2  bad input (a flag, a file, a setting); nothing was sent
  130  interrupted (Ctrl-C); the attempts that ran are reported
  141  stdout was closed by its reader (`| head`)";

const EMULATE_HELP: &str = "\
Examples:
  authprobe emulate --allow-token test-token --write-ca ca.pem
  authprobe emulate --authorizer-json authorizer.json --authorizer-handler 'python3 -m awslambdaric app.handler'
  authprobe emulate --config examples/emulator.toml --log-json connections.jsonl

Exit codes:
  0  stopped (Ctrl-C)
  2  bad input (a flag, a file, a setting); nothing was served";

const TOOLKIT_HELP: &str = "\
Examples:
  authprobe sign --token-file token.txt --signing-key key.pem --format raw
  authprobe sign --verify --token-file token.txt --signature-file sig.txt --public-key pub.pem
  authprobe event --transport mqtt --endpoint abc123-ats.iot.eu-west-1.amazonaws.com --authorizer A --token-file token.txt
  authprobe check-response response.json --client-id sensor-1 --publish dev/t
  aws lambda get-policy --function-name ARN > policy.json && authprobe check-permission policy.json --authorizer-arn ARN

Exit codes:
  0  done (the signature verifies, the response allows what was asked, IoT Core may invoke the function)
  1  the check failed; the output says why
  2  bad input (a flag, a file); nothing was done";

const INSPECT_HELP: &str = "\
Examples:
  tcpdump -i any -w device.pcap 'tcp port 443'   # on the gateway, while the device tries to connect
  authprobe inspect device.pcap
  authprobe inspect device.pcapng --format json | jq '.connections[].findings'

Exit codes:
  0  no connection in the capture shows a cause
  1  a connection shows a cause; the report says which
  2  the file is not a pcap or pcapng capture";

const SUMMARIZE_HELP: &str = "\
Examples:
  authprobe summarize /var/log/authprobe/                  # every file below, .gz too
  authprobe summarize results/*.jsonl --by label --examples 10
  aws s3 cp s3://bucket/authprobe/site-3.jsonl.gz - | authprobe summarize - --format json

Reads the summary record of each run (probe --format jsonl) and whole reports (--format json);
attempt and finding records are counted, bad lines named by file and line (never fatal).
See docs/fleet.md.

Exit codes:
  0  the summary was printed
  2  an input does not exist or cannot be listed";

const STORM_HELP: &str = "\
Examples:
  authprobe emulate --allow-token tok --authorizer-concurrency 20 --authorizer-latency 100ms --write-ca ca.pem &
  authprobe storm --endpoint localhost --connect-to 127.0.0.1:8443 --ca ca.pem --authorizer MyAuthorizer \\
      --devices 300 --token tok --jitter full --max-delay 5s
  authprobe storm --endpoint abc123-ats.iot.eu-west-1.amazonaws.com --authorizer MyAuthorizer \\
      --identities devices.jsonl --max-rate 20 --until-connected 99 --shard 3/10 --output shard-3.json
  authprobe storm --merge shard-*.json

Off loopback --max-rate is required (above 50 only with --allow-high-rate), and the plan is printed
before anything is sent. Ctrl-C stops at once and reports what ran. See docs/storm.md.

Exit codes:
  0  the --until-connected share of the devices connected
  1  it did not (the report says what shaped the storm)
  2  bad input (a flag, a file, a non-loopback target without --max-rate); nothing was sent";

const EXPLAIN_HELP: &str = "\
Examples:
  authprobe explain token_key_name_wrong
  authprobe explain --list

Exit codes:
  0  the entry was printed
  2  not a finding id (the closest ids are named)";

const DEMO_HELP: &str = "\
Examples:
  authprobe demo
  authprobe demo --format json | jq '.scenarios[].report.findings[].id'

Exit codes:
  0  every scenario got exactly its expected findings
  1  a scenario did not";

/// Find where and why AWS IoT Core custom-authorizer connections fail.
#[derive(Debug, Parser)]
#[command(name = "authprobe", version, about, propagate_version = true, after_help = AFTER_HELP)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log detail on stderr (-v debug, -vv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Probe an endpoint with crafted custom-auth attempts and say where and why each one fails.
    #[command(after_help = PROBE_SHORT_HELP, after_long_help = PROBE_HELP, args_override_self = true)]
    Probe(Box<args::ProbeArgs>),
    /// Run the emulator on loopback and probe it with good and broken credentials (no AWS account needed).
    #[command(after_help = DEMO_HELP, args_override_self = true)]
    Demo(demo::DemoArgs),
    /// Run a local IoT Core custom-auth endpoint (MQTT over TLS, MQTT over WebSocket, HTTPS).
    #[command(after_help = EMULATE_HELP, args_override_self = true)]
    Emulate(Box<emulate::EmulateArgs>),
    /// Sign a token (RSA SHA-256, base64), or verify a signature with public keys.
    #[command(after_help = TOOLKIT_HELP, args_override_self = true)]
    Sign(toolkit::SignArgs),
    /// Print the event IoT Core would send the authorizer for an attempt.
    #[command(after_help = TOOLKIT_HELP, args_override_self = true)]
    Event(Box<toolkit::EventArgs>),
    /// Validate an authorizer response and evaluate its policies for the intended actions.
    #[command(after_help = TOOLKIT_HELP, args_override_self = true)]
    CheckResponse(toolkit::CheckResponseArgs),
    /// Check that the Lambda's resource policy lets IoT Core invoke it for an authorizer.
    #[command(after_help = TOOLKIT_HELP, args_override_self = true)]
    CheckPermission(toolkit::CheckPermissionArgs),
    /// Print a cause catalogue entry (what it means, the troubleshooting step, how it is found).
    #[command(after_help = EXPLAIN_HELP, args_override_self = true)]
    Explain(explain::ExplainArgs),
    /// Read a device's packet capture (pcap/pcapng): what it sent, how the server answered, and why.
    #[command(after_help = INSPECT_HELP, args_override_self = true)]
    Inspect(inspect::InspectArgs),
    /// Reconnect N simulated devices at once with custom auth: what a fleet's reconnect does to the authorizer.
    #[command(after_help = STORM_HELP, args_override_self = true)]
    Storm(Box<storm::StormArgs>),
    /// Count a fleet's probe results (JSON Lines, reports, .gz, folders) by verdict and first finding.
    #[command(after_help = SUMMARIZE_HELP, args_override_self = true)]
    Summarize(summarize::SummarizeArgs),
    /// Print a shell completion script: `authprobe completions bash > /etc/bash_completion.d/authprobe`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `authprobe man > authprobe.1`, or with `--dir D` write
    /// `authprobe.1` and one page per subcommand (`authprobe-probe.1`, …) there.
    Man {
        /// Write the pages into this folder instead of printing the main one.
        #[arg(long, value_name = "DIR")]
        dir: Option<std::path::PathBuf>,
    },
}

/// Exit code for bad input: nothing was sent.
pub(crate) const EXIT_USAGE: u8 = 2;

/// Runs the command line of this process.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // The emulator logs each connection at info; the probe and demo keep stderr quiet unless -v.
    init_logging(cli.verbose, !matches!(&cli.command, Command::Emulate(a) if !a.quiet));
    let result = match cli.command {
        Command::Probe(args) => probe::run(*args),
        Command::Demo(args) => demo::run(args),
        Command::Emulate(args) => emulate::run(*args),
        Command::Sign(args) => toolkit::sign(args),
        Command::Event(args) => toolkit::event(*args),
        Command::CheckResponse(args) => toolkit::check_response(args),
        Command::CheckPermission(args) => toolkit::check_permission(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Explain(args) => explain::run(args),
        Command::Summarize(args) => summarize::run(args),
        Command::Storm(args) => storm::run(*args),
        Command::Completions { shell } => {
            let mut cmd = <Cli as clap::CommandFactory>::command();
            // Into memory first: clap_complete panics on a failed write (a closed pipe).
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cmd, "authprobe", &mut script);
            std::io::Write::write_all(&mut std::io::stdout(), &script).map(|()| ExitCode::SUCCESS).map_err(Into::into)
        }
        Command::Man { dir } => man(dir.as_deref()),
    };
    match result {
        Ok(code) => code,
        // The reader of stdout went away (`| head`): stop quietly, as a tool killed by SIGPIPE would.
        Err(e) if is_broken_pipe(&e) => ExitCode::from(EXIT_BROKEN_PIPE),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_USAGE)
        }
    }
}

/// The manual: the main page on stdout, or every page into `dir`. Hyphenation is off (`.nh`) and
/// lines are not justified, so that a flag or an example copied from the page is what was written.
fn man(dir: Option<&std::path::Path>) -> anyhow::Result<ExitCode> {
    let render = |cmd: clap::Command| -> std::io::Result<Vec<u8>> {
        let mut page = Vec::new();
        clap_mangen::Man::new(cmd).render(&mut page)?;
        // After the title (`.TH`) line: no hyphenation, left-aligned.
        let at = page
            .windows(4)
            .position(|w| w == b".TH ")
            .and_then(|th| page[th..].iter().position(|b| *b == b'\n').map(|nl| th + nl + 1))
            .unwrap_or(0);
        page.splice(at..at, b".nh\n.ad l\n".iter().copied());
        Ok(page)
    };
    let root = <Cli as clap::CommandFactory>::command();
    let Some(dir) = dir else {
        std::io::Write::write_all(&mut std::io::stdout(), &render(root)?)?;
        return Ok(ExitCode::SUCCESS);
    };
    std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("--dir {}: {e}", dir.display()))?;
    let mut written = vec![dir.join("authprobe.1")];
    std::fs::write(&written[0], render(root.clone())?)?;
    for sub in root.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("authprobe-{}", sub.get_name());
        let path = dir.join(format!("{name}.1"));
        std::fs::write(
            &path,
            render(
                sub.clone()
                    .display_name(&name)
                    .bin_name(format!("authprobe {}", sub.get_name()))
                    .version(env!("CARGO_PKG_VERSION")),
            )?,
        )?;
        written.push(path);
    }
    for p in &written {
        println!("{}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// 128 + SIGPIPE, what a shell reports for a tool that SIGPIPE ended.
const EXIT_BROKEN_PIPE: u8 = 141;

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    let broken = std::io::ErrorKind::BrokenPipe;
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == broken)
            || c.downcast_ref::<serde_json::Error>().is_some_and(|j| j.io_error_kind() == Some(broken))
    })
}

fn init_logging(verbose: u8, quiet: bool) {
    let level = match verbose {
        0 if quiet => tracing::Level::WARN,
        0 => tracing::Level::INFO,
        1 => tracing::Level::DEBUG,
        _ => tracing::Level::TRACE,
    };
    // Every log line is scrubbed of the run's secrets and escaped (crate::secret::LogWriter): no
    // colour codes, so that every control character in a line is one a peer sent, shown escaped.
    let _ = tracing_subscriber::fmt()
        .with_writer(crate::secret::LogWriter::default)
        .with_max_level(level)
        .with_ansi(false)
        .with_target(false)
        .try_init();
}
