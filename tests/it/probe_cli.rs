//! The `authprobe` binary: probe exit codes and bad input, signatures equal to openssl's, secrets
//! redacted in text, JSON and `-v` logs, and the demo.

use super::common::*;
use authprobe::auth::signature::SigningKey;
use std::process::Output;

fn authprobe(args: &[&str]) -> Output {
    authprobe_bin(args)
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Probe flags aimed at `emu` (its CA written to `dir`).
fn probe_args(emu: &Emu, dir: &tempfile::TempDir) -> Vec<String> {
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &emu.ca_pem).unwrap();
    [
        "probe",
        "--endpoint",
        ENDPOINT,
        "--connect-to",
        &emu.addr.to_string(),
        "--ca",
        ca.to_str().unwrap(),
        "--authorizer",
        AUTH,
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

fn run(args: &[String]) -> Output {
    authprobe(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

#[test]
fn signing_key_signatures_equal_openssl() {
    let k = keys();
    // PKCS#8 (as genpkey writes it) and PKCS#1 (traditional) forms of the same key.
    let pkcs8 = std::fs::read_to_string(&k.private).unwrap();
    let pkcs1_path = k.dir.path().join("key-pkcs1.pem");
    let status = std::process::Command::new("openssl")
        .args(["rsa", "-traditional", "-in", k.private.to_str().unwrap(), "-out", pkcs1_path.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(status.status.success());
    let pkcs1 = std::fs::read_to_string(&pkcs1_path).unwrap();
    assert!(pkcs1.contains("BEGIN RSA PRIVATE KEY"));
    for token in ["tok", "tok value", "eyJhbGciOiJSUzI1NiJ9.e30"] {
        let expected = sign(token);
        assert_eq!(SigningKey::from_pem(&pkcs8).unwrap().sign(token), expected);
        assert_eq!(SigningKey::from_pem(&pkcs1).unwrap().sign(token), expected);
    }
}

#[tokio::test]
async fn probe_signs_with_signing_key_and_succeeds() {
    let mut cfg = config();
    cfg.authorizers.push(signed(AUTH, &[]));
    let emu = start(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = probe_args(&emu, &dir);
    args.extend(
        ["--token", GOOD, "--signing-key", keys().private.to_str().unwrap(), "--format", "json", "--show-secrets"]
            .map(String::from),
    );
    let out = tokio::task::spawn_blocking(move || run(&args)).await.unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let report = probe_report(stdout.as_bytes());
    let https = report["attempts"].as_array().unwrap().iter().find(|a| a["id"] == "https").unwrap();
    let sig = https["sent"]["credentials"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["parameter"] == "x-amz-customauthorizer-signature")
        .unwrap();
    assert_eq!(sig["value"], sign(GOOD).as_str());
    assert_eq!(report["exit_code"], 0);
    assert_eq!(report["attempts"][0]["outcome"]["kind"], "connack_accepted");
}

#[tokio::test]
async fn failure_exits_1_with_the_reason() {
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    let emu = start(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let mut args = probe_args(&emu, &dir);
    args.extend(["--token", "denied", "--transport", "mqtt"].map(String::from));
    let out = tokio::task::spawn_blocking(move || run(&args)).await.unwrap();
    let (stdout, _) = text(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAIL") && stdout.contains("mqtt/closed_before_connack"), "{stdout}");
    assert!(
        stdout.contains("why") && stdout.contains("next") && stdout.contains("troubleshooting: application and Lambda"),
        "{stdout}"
    );
}

#[tokio::test]
async fn secrets_never_appear_unless_shown() {
    let mut cfg = config();
    cfg.authorizers.push(signed(AUTH, &[]));
    let emu = start(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let token = "tok-SECRET-123";
    let sig = sign(token);
    let password = "pw-SECRET-456";
    let mut base = probe_args(&emu, &dir);
    // The emulator does not limit connects per client ID: no 1.1 s spacing between them.
    base.extend(["--spacing", "0", "--details"].map(String::from));
    base.extend(
        ["--token", token, "--signature", &sig, "--password", password, "--username", "dev", "-v"].map(String::from),
    );
    let secrets = [token.to_owned(), sig.clone(), pct(&sig), password.to_owned()];
    for format in ["text", "json"] {
        let mut args = base.clone();
        args.extend(["--format", format].map(String::from));
        let out = tokio::task::spawn_blocking(move || run(&args)).await.unwrap();
        let (stdout, stderr) = text(&out);
        assert!(stderr.contains("sending CONNECT"), "-v logs are on: {stderr}");
        for s in &secrets {
            assert!(!stdout.contains(s.as_str()), "{format}: secret in stdout: {stdout}");
            assert!(!stderr.contains(s.as_str()), "{format}: secret in -v log: {stderr}");
        }
        assert!(stdout.contains(&authprobe::secret::redact(token)), "{stdout}");
    }
    let mut args = base.clone();
    args.extend(["--format", "json", "--show-secrets"].map(String::from));
    let out = tokio::task::spawn_blocking(move || run(&args)).await.unwrap();
    let (stdout, _) = text(&out);
    assert!(stdout.contains(token) && stdout.contains(password) && stdout.contains(&pct(&sig)), "{stdout}");
}

#[tokio::test]
async fn bad_input_exits_2_and_sends_nothing() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let public = keys().dir.path().join("pub.pem");
    // An MQTT string holds at most 65,535 bytes: a longer username could not be sent.
    let long_username = "u".repeat(40_000);
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["--token", "t", "--username", &long_username], "--username is 40000 bytes"),
        (vec!["--signature", "not base64!"], "--signature"),
        (vec!["--signature", "YW%2BJj"], "percent-encoded"),
        (vec!["--token", "t", "--signing-key", public.to_str().unwrap()], "private key"),
        (vec!["--signing-key", public.to_str().unwrap()], "--token"),
        (vec!["--ca", "/nonexistent/ca.pem"], "/nonexistent/ca.pem"),
        (vec!["--token-key-name", "bad key"], "--token-key-name"),
        (vec!["--connect-to", "host:notaport"], "--connect-to"),
        (vec!["--timeout", "0"], "--timeout"),
        (vec!["--mqtt-version", "4"], "--mqtt-version"),
        (vec!["--ca", "/dev/null", "--insecure"], "--insecure"),
        // Empty values (an unset shell variable) and values that cannot be right.
        (vec!["--authorizer", ""], "--authorizer is empty"),
        (vec!["--client-id", " "], "--client-id is empty"),
        (vec!["--port", "0"], "--port 0"),
        (vec!["--topic", "a/#"], "--topic"),
        (vec!["--timeout", "0"], "more than 0"),
    ];
    for (extra, needle) in cases {
        let mut args = vec!["probe", "--endpoint", ENDPOINT, "--connect-to", &addr];
        args.extend(extra.iter().copied());
        let out = authprobe(&args);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {stdout}{stderr}");
        assert!(stderr.contains(needle), "{extra:?}: `{needle}` not in {stderr}");
    }
    // Endpoints written as URLs or with a port: the error says the flags to use instead.
    for (endpoint, needle) in [
        ("mqtts://x.example.com", "--endpoint x.example.com --transport mqtt"),
        ("x.example.com:8883", "--endpoint x.example.com --port 8883"),
        ("[::1]:8443", "--endpoint ::1 --port 8443"),
    ] {
        let out = authprobe(&["probe", "--endpoint", endpoint, "--connect-to", &addr, "--token", "t"]);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(2), "{endpoint}: {stdout}{stderr}");
        assert!(stderr.contains(needle), "{endpoint}: `{needle}` not in {stderr}");
    }
    // The process has exited: any connection it made would be waiting in the backlog now.
    let pending = tokio::time::timeout(std::time::Duration::ZERO, listener.accept()).await;
    assert!(pending.is_err(), "bad input must not connect anywhere");
}

/// `authprobe … | head`: the reader goes away; the tool stops quietly with 141 (128 + SIGPIPE), as a
/// shell reports for tools that SIGPIPE ends, not "error: Broken pipe" and exit 2 (bad input), nor a
/// panic. The pipe's read end is closed before the tool starts, so every write fails.
#[test]
fn a_closed_stdout_ends_quietly() {
    use std::process::{Command, Stdio};
    for args in [
        &["demo"][..],
        &["completions", "bash"],
        &["man"],
        &["event", "--transport", "mqtt", "--endpoint", "e.example.com", "--token", "t"],
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let out = Command::new(env!("CARGO_BIN_EXE_authprobe"))
            .args(args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(141), "{args:?}: {stderr}");
        assert!(!stderr.contains("error") && !stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Every subcommand's `--help` ends with examples and its exit codes.
#[test]
fn every_subcommand_help_has_examples_and_exit_codes() {
    for sub in ["probe", "demo", "emulate", "sign", "event", "check-response", "check-permission", "inspect"] {
        let out = authprobe(&[sub, "--help"]);
        let (stdout, _) = text(&out);
        assert!(stdout.contains("Examples:\n  ") && stdout.contains("Exit codes:\n  0"), "{sub} --help:\n{stdout}");
    }
}

#[test]
fn demo_findings_name_exactly_the_broken_credentials() {
    let out = authprobe(&["demo"]);
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    for line in [
        "scenario working-device: expected findings [sni_missing, alpn_missing, signature_not_encoded, connect_packet_too_large] — as designed",
        "scenario wrong-token-key-name: expected findings [token_key_name_wrong, connect_packet_too_large] — as designed",
        "scenario denied-token: expected findings [refused_unexplained, connect_packet_too_large] — as designed",
    ] {
        assert!(stdout.contains(line), "{line}: {stdout}");
    }
    assert!(
        stdout.contains(
            "Diagnosis: The token is sent under `deviceToken`, but the authorizer's tokenKeyName is `token`."
        ),
        "{stdout}"
    );
    assert!(!stdout.contains("demo-device-token"), "the demo's token is a secret too");
    let out = authprobe(&["demo", "--format", "json"]);
    let demo: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(demo["as_designed"], true);
    let findings: Vec<Vec<String>> = demo["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            s["report"]["findings"].as_array().unwrap().iter().map(|f| f["id"].as_str().unwrap().to_owned()).collect()
        })
        .collect();
    // A signed token's CONNECT outgrows small embedded buffers: the risk follows the cause.
    assert_eq!(findings[1], ["token_key_name_wrong", "connect_packet_too_large"]);
    assert_eq!(findings[2], ["refused_unexplained", "connect_packet_too_large"]);
    let denied = &demo["scenarios"][2]["report"]["findings"][0];
    assert_eq!(denied["kind"], "unexplained");
    assert_eq!(denied["candidates"][0], "authorizer_denied");
    let key = &demo["scenarios"][1]["report"]["findings"][0];
    assert_eq!((key["kind"].as_str(), key["confidence"].as_str()), (Some("cause"), Some("confirmed")));
    let working = &demo["scenarios"][0]["report"]["attempts"];
    assert!(working.as_array().unwrap().iter().filter(|a| a["variant"] == "baseline").all(|a| a["succeeded"] == true));
}

#[test]
fn completions_man_and_help_fit_the_shell() {
    for shell in ["bash", "zsh", "fish", "powershell"] {
        let out = authprobe(&["completions", shell]);
        assert_eq!(out.status.code(), Some(0), "{shell}");
        assert!(String::from_utf8_lossy(&out.stdout).contains("inspect"), "{shell}: subcommands completed");
    }
    let man = authprobe(&["man"]);
    assert!(String::from_utf8_lossy(&man.stdout).contains(".TH authprobe 1"));
    let help = String::from_utf8_lossy(&authprobe(&["--help"]).stdout).into_owned();
    assert!(help.contains("Examples:") && help.contains("Exit codes:") && help.contains("2  bad input"), "{help}");
}

/// Colour is decided in one place: on a terminal (a pseudo-terminal from util-linux `script`) the
/// demo is coloured, unless TERM=dumb, NO_COLOR or `--color never`; `--color always` colours a pipe.
#[test]
fn colour_follows_the_terminal_term_and_no_color() {
    let on_tty = |env: &[(&str, &str)], flags: &str| {
        let cmd = format!("{} demo {flags}", env!("CARGO_BIN_EXE_authprobe"));
        let out = std::process::Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("util-linux script");
        has_sgr(&String::from_utf8_lossy(&out.stdout))
    };
    assert!(on_tty(&[("TERM", "xterm")], ""), "a terminal gets colour");
    assert!(!on_tty(&[("TERM", "dumb")], ""), "TERM=dumb gets none");
    assert!(!on_tty(&[("TERM", "xterm"), ("NO_COLOR", "1")], ""), "NO_COLOR gets none");
    assert!(!on_tty(&[("TERM", "xterm")], "--color never"), "--color never");
    let piped = std::process::Command::new(env!("CARGO_BIN_EXE_authprobe"))
        .args(["demo", "--color", "always"])
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert!(has_sgr(&String::from_utf8_lossy(&piped.stdout)), "--color always beats NO_COLOR and a pipe");
}

/// Whether `text` holds an SGR (colour) sequence, `ESC [ digits;… m`; progress lines move the
/// cursor with other sequences, which are not colour.
fn has_sgr(text: &str) -> bool {
    text.split("\x1b[").skip(1).any(|rest| {
        let params = rest.chars().take_while(|c| c.is_ascii_digit() || *c == ';').count();
        rest[params..].starts_with('m')
    })
}

/// curl and openssl habits: `-k`, `--cacert`, `--servername`, `-x` mean what they mean there; a
/// flag given twice takes its last value (as wrapper scripts rely on); `--placement header` is one
/// spelling for `probe` and `event` (the older `headers` is still read).
#[test]
fn curl_and_openssl_habits_work() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap().to_string();
    drop(closed);
    let json = |args: &[&str]| {
        let mut all = vec!["probe", "--endpoint", ENDPOINT, "--connect-to", &addr, "--token", "t"];
        all.extend(["--matrix", "none", "--follow-up", "none", "--format", "json", "--timeout", "1"]);
        all.extend(args);
        let out = authprobe(&all);
        let (stdout, stderr) = text(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stdout}{stderr}");
        probe_report(stdout.as_bytes())
    };
    assert_eq!(json(&["-k"])["insecure"], true);
    // `--servername` is `--sni` (which conflicts with `--no-sni`).
    let out =
        authprobe(&["probe", "--endpoint", ENDPOINT, "--token", "t", "--servername", "x.example.com", "--no-sni"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("'--sni <NAME>' cannot be used with '--no-sni'"), "{}", text(&out).1);
    let r = json(&["-x", "http://127.0.0.1:1"]);
    assert_eq!(r["proxy"]["url"], "http://127.0.0.1:1", "{r:#}");
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, authprobe::emulator::certs::Ca::generate("habits CA").unwrap().pem()).unwrap();
    assert_eq!(json(&["--cacert", ca.to_str().unwrap()])["insecure"], false);
    // curl's --key and --cert mean a client certificate: said so, not taken for --token-key-name.
    for flag in ["--key", "--cert"] {
        let out = authprobe(&["probe", "--endpoint", ENDPOINT, "--token", "t", flag, "k.pem"]);
        assert_eq!(out.status.code(), Some(2));
        assert!(
            text(&out).1.contains("no client key or certificate") && !text(&out).1.contains("--token-key-name'"),
            "{}",
            text(&out).1
        );
    }
    // Last one wins, whichever is valid.
    let out = authprobe(&["probe", "--endpoint", ENDPOINT, "--token", "t", "--timeout", "5", "--timeout", "0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("got 0"), "{}", text(&out).1);
    let r = json(&["--timeout", "0", "--timeout", "1", "--transport", "mqtt", "--transport", "wss"]);
    let ids: Vec<&str> = r["attempts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["mqtt", "wss"], "a repeatable flag still adds up");
    // Durations take units.
    assert_eq!(json(&["--timeout", "1500ms", "--spacing", "0s"])["exit_code"], 1);
    let out = authprobe(&["emulate", "--time-limit", "five", "--listen", "127.0.0.1:0"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).1.contains("300ms, 5s, 2m"), "{}", text(&out).1);
    let r = json(&["--transport", "wss", "--placement", "header"]);
    assert_eq!(r["attempts"][0]["placement"], "header", "{r:#}");
    // `--format` wherever output is made: `event --format jsonl` is one line.
    let out = authprobe(&["event", "--transport", "mqtt", "--endpoint", ENDPOINT, "--token", "t", "--format", "jsonl"]);
    assert_eq!((out.status.code(), String::from_utf8_lossy(&out.stdout).lines().count()), (Some(0), 1));
    for spelling in ["header", "headers"] {
        let out = authprobe(&[
            "event",
            "--transport",
            "wss",
            "--endpoint",
            ENDPOINT,
            "--token",
            "t",
            "--placement",
            spelling,
        ]);
        assert_eq!(out.status.code(), Some(0), "{spelling}: {}", text(&out).1);
    }
}

/// `-q` on every subcommand that writes to standard error: only the result is printed.
#[test]
fn quiet_means_quiet_on_every_subcommand() {
    let event = ["event", "--transport", "mqtt", "--endpoint", ENDPOINT, "--token", "t"];
    let loud = authprobe(&event);
    assert!(text(&loud).1.contains("secrets redacted"), "{}", text(&loud).1);
    let mut quiet = event.to_vec();
    quiet.push("-q");
    let out = authprobe(&quiet);
    assert_eq!((out.status.code(), text(&out).1.as_str()), (Some(0), ""), "event -q");
    assert!(text(&out).0.contains("\"token\""), "the event is still printed");
    for args in [
        vec!["sign", "-q", "--token", "t", "--signing-key", keys().private.to_str().unwrap()],
        vec!["check-response", "-q", "/nonexistent.json"],
        vec![
            "check-permission",
            "-q",
            "/nonexistent.json",
            "--authorizer-arn",
            "arn:aws:iot:us-east-1:123456789012:authorizer/A",
        ],
        vec!["inspect", "-q", "/nonexistent.pcap"],
        vec!["demo", "-q", "--help"],
        vec!["emulate", "-q", "--help"],
    ] {
        let out = authprobe(&args);
        assert!(!text(&out).1.contains("unexpected argument"), "{args:?}: {}", text(&out).1);
    }
    // The emulator: only the listening line.
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_authprobe"))
        .args(["emulate", "-q", "--listen", "127.0.0.1:0", "--allow-token", "t"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    std::io::BufRead::read_line(&mut stdout, &mut first).unwrap();
    assert!(first.starts_with("authprobe emulator listening on 127.0.0.1:"), "{first}");
    let _ = std::process::Command::new("kill").args(["-INT", &child.id().to_string()]).status();
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(rest, "", "emulate -q prints only the listening line");
}

/// `probe -h` is a short summary; `--help` groups every flag under headings and has the exit codes;
/// `man --dir` writes a page per subcommand, with hyphenation off so that flags copy as written.
#[test]
fn help_is_short_then_grouped_and_the_manual_has_a_page_per_command() {
    let short = String::from_utf8(authprobe(&["probe", "-h"]).stdout).unwrap();
    assert!(short.lines().count() <= 42, "probe -h is {} lines:\n{short}", short.lines().count());
    assert!(short.contains("--token-file") && short.contains("--endpoint") && !short.contains("--alt-sni"), "{short}");
    let long = String::from_utf8(authprobe(&["probe", "--help"]).stdout).unwrap();
    for heading in
        ["Target:", "Network:", "Credentials:", "What the device sends:", "Matrix:", "Output:", "Exit codes:"]
    {
        assert!(long.lines().any(|l| l == heading), "no `{heading}` in probe --help:\n{long}");
    }
    assert!(long.contains("--alt-sni") && !long.contains("--cacert") && !long.contains("--servername"), "{long}");
    let dir = tempfile::tempdir().unwrap();
    let out = authprobe(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    for page in
        ["authprobe.1", "authprobe-probe.1", "authprobe-emulate.1", "authprobe-explain.1", "authprobe-inspect.1"]
    {
        let roff = std::fs::read_to_string(dir.path().join(page)).unwrap_or_else(|e| panic!("{page}: {e}"));
        let th = roff.lines().position(|l| l.starts_with(".TH ")).expect(".TH");
        assert_eq!(roff.lines().nth(th + 1), Some(".nh"), "{page}: hyphenation on");
    }
    let probe = std::fs::read_to_string(dir.path().join("authprobe-probe.1")).unwrap();
    assert!(probe.contains("authprobe probe") && probe.contains("token\\-file"), "a page for probe's flags");
}

/// The answer first, at a glance: on the demo's three devices a healthy report fits in 25 lines and a
/// failure in 60; `--details` still has every attempt in full.
#[test]
fn the_first_screen_answers() {
    let out = authprobe(&["demo"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let reports: Vec<Vec<&str>> = text
        .split("\n══ ")
        .skip(1)
        .map(|s| {
            let lines: Vec<&str> = s.lines().collect();
            let from = lines.iter().position(|l| l.starts_with("authprobe probe ")).expect("a report");
            let to =
                lines.iter().position(|l| l.contains("expected to succeed did; exit code")).expect("a closing line");
            lines[from..=to].to_vec()
        })
        .collect();
    assert_eq!(reports.len(), 3, "{text}");
    for (i, (report, budget)) in reports.iter().zip([25, 60, 60]).enumerate() {
        assert!(
            report.len() <= budget,
            "device {}: {} lines (budget {budget}):\n{}",
            i + 1,
            report.len(),
            report.join("\n")
        );
        // The verdict is the first line after the header.
        assert!(report[2].starts_with("Diagnosis: "), "{}", report.join("\n"));
    }
    let detailed = String::from_utf8(authprobe(&["demo", "--details"]).stdout).unwrap();
    assert!(detailed.lines().count() > text.lines().count() * 2, "--details shows every attempt");
    assert!(detailed.contains("   sent       ") && !text.contains("   sent       "), "what was sent is a detail");
}

/// `--report FILE.html`: one self-contained page (no script, no external style, font or image) with
/// the verdict, the findings and a timeline bar per attempt stage, secrets redacted; rendered by a
/// real headless Chromium, whose DOM and screenshot are checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_html_report_renders_in_a_real_browser() {
    let (emu, dir, _) = allowing_emulator_with_ca().await;
    let page = dir.path().join("ticket.html");
    let mut args = probe_args(&emu, &dir);
    let token = "html-s3cret-token";
    args.extend(
        ["--token", token, "--spacing", "0", "--format", "json", "--report", page.to_str().unwrap()].map(String::from),
    );
    let out = tokio::task::spawn_blocking(move || run(&args)).await.unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out).1);
    let report = probe_report(&out.stdout);
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(!html.contains(token), "the token is redacted in the page");
    for external in ["<script", "src=", "<link", "url(", "@import"] {
        assert!(!html.contains(external), "an external resource or script: {external}");
    }
    let chromium = |extra: &[&str]| {
        std::process::Command::new("chromium")
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--window-size=1100,1600"])
            .args(extra)
            .arg(format!("file://{}", page.display()))
            .current_dir(dir.path())
            .output()
            .expect("chromium (Debian's `chromium`; .ci/run installs it)")
    };
    let dom = String::from_utf8(chromium(&["--dump-dom"]).stdout).unwrap();
    let first = report["findings"][0]["id"].as_str().unwrap();
    assert!(dom.contains("id=\"verdict\"") && dom.contains(first), "the verdict and {first} in the DOM");
    let stages: usize =
        report["attempts"].as_array().unwrap().iter().map(|a| a["stages"].as_array().unwrap().len()).sum();
    assert_eq!(dom.matches("class=\"stage ").count(), stages, "a bar per attempt stage");
    assert!(dom.contains("id=\"authorizer-limit\""), "the 5 s limit is drawn");
    let shot = dir.path().join("shot.png");
    let _ = chromium(&[&format!("--screenshot={}", shot.display())]);
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "a rendered page, {} bytes", png.len());
}
