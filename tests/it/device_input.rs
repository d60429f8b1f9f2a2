//! Reproducing what a device sends: secrets from files, standard input and the environment (never
//! only the command line), each checked against what the emulator received.

use super::common::*;
use authprobe::emulator::{ConnectionRecord, EmulatorConfig};
use std::io::Write as _;
use std::process::{Command, Stdio};

fn probe_cmd(emu: &Emu, dir: &std::path::Path) -> Command {
    let mut c = probe_cmd_any(emu, dir);
    c.args(["--transport", "mqtt"]);
    c
}

/// The probe aimed at `emu`, one baseline per transport given, JSON out.
fn probe_cmd_any(emu: &Emu, dir: &std::path::Path) -> Command {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &emu.ca_pem).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_authprobe"));
    c.env_clear().env("NO_COLOR", "1");
    c.args(["probe", "--endpoint", ENDPOINT, "--connect-to", &emu.addr.to_string(), "--ca"]).arg(&ca).args([
        "--authorizer",
        AUTH,
        "--matrix",
        "none",
        "--format",
        "json",
    ]);
    c
}

// The probe binary runs while this test blocks on it: the emulator needs a thread of its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_come_from_files_stdin_and_the_environment() {
    let mut emu = start({
        let mut c = config();
        c.authorizers.push(allowing(AUTH));
        c
    })
    .await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    // As `echo` writes it: the line break is not part of the token.
    std::fs::write(&token_file, format!("{GOOD}\n")).unwrap();
    let pw_file = dir.path().join("pw");
    std::fs::write(&pw_file, "pw-from-file").unwrap();
    let out = probe_cmd(&emu, dir.path())
        .arg("--token-file")
        .arg(&token_file)
        .arg("--password-file")
        .arg(&pw_file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let rec = emu.record().await;
    assert_eq!(rec.event_value().unwrap()["token"], GOOD);
    use base64::Engine as _;
    let pw = base64::engine::general_purpose::STANDARD.encode("pw-from-file");
    assert_eq!(rec.event_value().unwrap()["protocolData"]["mqtt"]["password"], pw.as_str());

    let out = probe_cmd(&emu, dir.path()).env("AUTHPROBE_TOKEN", GOOD).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(emu.record().await.event_value().unwrap()["token"], GOOD);

    let mut child = probe_cmd(&emu, dir.path())
        .args(["--token-file", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(GOOD.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(emu.record().await.event_value().unwrap()["token"], GOOD);
}

/// Flags, environment, and what the error must say.
type Case<'a> = (Vec<String>, Vec<(&'a str, &'a str)>, &'a str);

/// An empty secret from any source is bad input: exit 2, named, and nothing is sent.
#[tokio::test]
async fn an_empty_secret_is_an_error_from_every_source() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu_like = Emu::unstarted(listener.local_addr().unwrap());
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "\n").unwrap();
    let cases: Vec<Case<'_>> = vec![
        (vec!["--token".into(), String::new()], vec![], "--token is empty"),
        (vec!["--token-file".into(), empty.to_str().unwrap().into()], vec![], "--token-file"),
        (vec![], vec![("AUTHPROBE_TOKEN", "")], "AUTHPROBE_TOKEN is empty"),
        (vec!["--token".into(), GOOD.into()], vec![("AUTHPROBE_PASSWORD", "")], "AUTHPROBE_PASSWORD is empty"),
        (
            vec!["--token".into(), GOOD.into(), "--signature-file".into(), empty.to_str().unwrap().into()],
            vec![],
            "--signature-file",
        ),
    ];
    for (args, env, needle) in cases {
        let mut c = probe_cmd(&emu_like, dir.path());
        c.args(&args);
        for (k, v) in &env {
            c.env(k, v);
        }
        let out = c.output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?} {env:?}: {stderr}");
        assert!(stderr.contains(needle), "{args:?} {env:?}: `{needle}` not in {stderr}");
    }
    let pending = tokio::time::timeout(std::time::Duration::ZERO, listener.accept()).await;
    assert!(pending.is_err(), "bad input must not connect anywhere");
}

/// Runs the probe binary with `args` against a fresh emulator (`cfg`), and returns its JSON report
/// and the emulator's records of the device's attempt and of the documented one.
async fn knobs(
    cfg: &EmulatorConfig,
    dir: &std::path::Path,
    args: &[&str],
) -> (serde_json::Value, ConnectionRecord, ConnectionRecord) {
    let mut emu = start(cfg.clone()).await;
    let out =
        probe_cmd_any(&emu, dir).args(["--follow-up", "none", "--client-id", "knob"]).args(args).output().unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    let report = probe_report(&out.stdout);
    let ids: Vec<&str> = report["attempts"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 2, "the device's attempt and the documented one: {ids:?}");
    let (mut device, mut documented) = (None, None);
    let mut seen = Vec::new();
    for _ in 0..2 {
        let r = emu.record().await;
        seen.push(format!("{:?} {:?} {:?}", r.client_id, r.host, r.reason));
        // The documented attempt runs as `<client-id>-<transport>-documented`, and with the endpoint as Host.
        let is_documented = r.client_id.as_deref().is_some_and(|c| c.ends_with("-documented"))
            || (r.client_id.is_none() && r.host.as_deref() == Some(ENDPOINT) && args.contains(&"--no-host-header"));
        if is_documented { documented = Some(r) } else { device = Some(r) }
    }
    let device = device.unwrap_or_else(|| panic!("{args:?}: no device record in {seen:?}"));
    let documented = documented.unwrap_or_else(|| panic!("{args:?}: no documented record in {seen:?}"));
    (report, device, documented)
}

fn go(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// Every knob puts on the wire what it says, as the emulator saw it; the documented attempt runs
/// beside the device's, and the report's `sent` and first finding say the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_knob_is_what_the_emulator_receives() {
    let (token, sig) = token_with_plus_in_signature();
    let mut c = config();
    c.authorizers.push(signed(AUTH, &[&token]));
    c.reject.no_sni = authprobe::emulator::settings::TlsReject::Close;
    let dir = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| -> Vec<String> {
        ["--token", token.as_str(), "--signature", sig.as_str()].iter().chain(extra).map(|s| (*s).to_owned()).collect()
    };

    // SNI: another name, then none.
    let (r, device, documented) =
        knobs(&c, dir.path(), &go(&run(&["--transport", "mqtt", "--sni", "localhost"]))).await;
    assert_eq!(device.sni.as_deref(), Some("localhost"));
    assert_eq!(documented.sni.as_deref(), Some(ENDPOINT));
    assert_eq!(r["attempts"][0]["sent"]["sni"], "localhost");
    assert_eq!(r["attempts"][1]["variant"], "documented");
    let (r, device, _) = knobs(&c, dir.path(), &go(&run(&["--transport", "mqtt", "--no-sni"]))).await;
    assert_eq!(device.sni, None);
    assert_eq!(r["attempts"][0]["sent"]["sni"], serde_json::Value::Null);
    let first = &r["findings"][0];
    assert_eq!(
        (first["id"].as_str(), first["confidence"].as_str()),
        (Some("sni_missing"), Some("confirmed")),
        "{first}"
    );

    // ALPN: a list, then none.
    let (_, device, _) =
        knobs(&c, dir.path(), &go(&run(&["--transport", "mqtt", "--alpn", "x-amzn-mqtt-ca", "--alpn", "mqtt"]))).await;
    assert_eq!(device.alpn_offered, ["x-amzn-mqtt-ca", "mqtt"]);
    let (r, device, _) = knobs(&c, dir.path(), &go(&run(&["--transport", "mqtt", "--no-alpn"]))).await;
    assert!(device.alpn_offered.is_empty());
    assert_eq!(r["findings"][0]["id"], "alpn_missing", "{}", r["findings"]);

    // Host header, placement, WebSocket protocol.
    let wss = run(&[
        "--transport",
        "wss",
        "--host-header",
        "other.example.com",
        "--placement",
        "query",
        "--ws-protocol",
        "mqttv3.1",
    ]);
    let (r, device, _) = knobs(&c, dir.path(), &go(&wss)).await;
    assert_eq!(device.host.as_deref(), Some("other.example.com"), "{device:?}");
    assert!(
        device.credentials.iter().all(|c| serde_json::to_value(c.placement).unwrap() == "query"),
        "{:?}",
        device.credentials
    );
    assert!(device.headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("sec-websocket-protocol") && v == "mqttv3.1"));
    assert_eq!(r["attempts"][0]["sent"]["ws_protocol"], "mqttv3.1");
    let (_, device, _) =
        knobs(&c, dir.path(), &go(&run(&["--transport", "https", "--no-host-header", "--placement", "query"]))).await;
    assert_eq!(device.host, None);
    assert!(device.credentials.iter().all(|c| serde_json::to_value(c.placement).unwrap() == "query"));

    // Signature encoding: raw in the username.
    let (r, device, _) =
        knobs(&c, dir.path(), &go(&run(&["--transport", "mqtt", "--signature-encoding", "raw"]))).await;
    let user = device.username.as_deref().unwrap();
    assert!(user.contains(&format!("x-amz-customauthorizer-signature={sig}")), "{user}");
    assert!(
        !device.credentials.iter().find(|c| c.parameter == "x-amz-customauthorizer-signature").unwrap().percent_encoded
    );
    assert_eq!(r["findings"][0]["id"], "signature_not_encoded", "{}", r["findings"]);
    // A page that leaves its signature raw in the username (--client-type browser: wss, Origin).
    let (r, device, _) =
        knobs(&c, dir.path(), &go(&run(&["--client-type", "browser", "--signature-encoding", "raw"]))).await;
    assert_eq!(device.origin.as_deref(), Some("http://localhost"), "a browser's upgrade");
    let user = device.username.as_deref().unwrap();
    assert!(user.contains(&format!("x-amz-customauthorizer-signature={sig}")), "{user}");
    assert_eq!(r["findings"][0]["id"], "signature_not_encoded", "{}", r["findings"]);

    // The exact username, and the keep-alive.
    let raw = format!("dev?x-amz-customauthorizer-name={AUTH}&token={token}?SDK=C&Version=1");
    let args = run(&["--transport", "mqtt", "--username-raw", &raw, "--keep-alive", "45"]);
    let (r, device, _) = knobs(&c, dir.path(), &go(&args)).await;
    assert_eq!(device.username.as_deref(), Some(raw.as_str()));
    assert_eq!(r["attempts"][0]["sent"]["keep_alive"], 45);
    assert_eq!(r["findings"][0]["id"], "username_malformed", "{}", r["findings"]);
    // What IoT Core reads from it, shown before anything is sent.
    let check = r["local_checks"].as_array().unwrap().iter().find(|c| c["check"] == "username_raw").unwrap();
    let detail = check["detail"].as_str().unwrap();
    assert!(detail.contains("no token under `token`") && detail.contains("other parameters SDK, Version"), "{detail}");
    assert_eq!(check["passed"], false);
}

/// `--save-device` then `--device` sends the same bytes, and no secret value lands in the profile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_saved_device_profile_replays_the_same_attempt() {
    let mut c = config();
    c.authorizers.push(signed(AUTH, &[GOOD]));
    let mut emu = start(c).await;
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, GOOD).unwrap();
    let profile = dir.path().join("device.toml");
    let key = keys().private.to_str().unwrap().to_owned();
    let knob_args = [
        "--transport",
        "wss",
        "--placement",
        "query",
        "--host-header",
        "h.example.com",
        "--ws-protocol",
        "mqtt",
        "--client-id",
        "dev-7",
        "--username",
        "dev-7",
        "--signing-key",
        &key,
        "--keep-alive",
        "33",
    ];
    let save = probe_cmd_any(&emu, dir.path())
        .args(knob_args)
        .arg("--token-file")
        .arg(&token_file)
        .args(["--password", "pw-by-value", "--follow-up", "none", "--save-device"])
        .arg(&profile)
        .output()
        .unwrap();
    assert!(matches!(save.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&save.stderr));
    assert!(String::from_utf8_lossy(&save.stderr).contains("password given on the command line is not saved"));
    let text = std::fs::read_to_string(&profile).unwrap();
    assert!(!text.contains(GOOD) && !text.contains("pw-by-value") && !text.contains(&sign(GOOD)), "{text}");
    assert!(text.contains("token_file") && text.contains("signing_key"), "{text}");
    let saved: Vec<_> = [emu.record().await, emu.record().await]
        .into_iter()
        .filter(|r| r.client_id.as_deref() == Some("dev-7"))
        .collect();

    assert!(text.contains("connect_to") && text.contains("ca ="), "where it dials and what it trusts: {text}");
    // The profile alone: endpoint, --connect-to, --ca and the authorizer come from it.
    let replay = Command::new(env!("CARGO_BIN_EXE_authprobe"))
        .env_clear()
        .args(["probe", "--device"])
        .arg(&profile)
        // The key was saved outside the profile's folder: reading it is asked for.
        .args([
            "--allow-device-secrets",
            "--password",
            "pw-by-value",
            "--follow-up",
            "none",
            "--matrix",
            "none",
            "--format",
            "json",
        ])
        .output()
        .unwrap();
    assert!(matches!(replay.status.code(), Some(0 | 1)), "{}", String::from_utf8_lossy(&replay.stderr));
    let replayed: Vec<_> = [emu.record().await, emu.record().await]
        .into_iter()
        .filter(|r| r.client_id.as_deref() == Some("dev-7"))
        .collect();
    let (a, b) = (&saved[0], &replayed[0]);
    assert_eq!((&a.sni, &a.alpn_offered, &a.host, &a.request), (&b.sni, &b.alpn_offered, &b.host, &b.request));
    // Everything but the WebSocket key, which is random per connection.
    let stable =
        |h: &[(String, String)]| h.iter().filter(|(n, _)| n != "Sec-WebSocket-Key").cloned().collect::<Vec<_>>();
    assert_eq!(stable(&a.headers), stable(&b.headers));
    assert_eq!(
        (&a.username, &a.event_value().map(|e| e["token"].clone())),
        (&b.username, &b.event_value().map(|e| e["token"].clone()))
    );
    assert_eq!(b.host.as_deref(), Some("h.example.com"));
}

/// A profile with an unknown key, or a secret's value instead of a reference, is refused (exit 2).
#[test]
fn a_bad_profile_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("bad.toml");
    std::fs::write(&p, "endpoint = \"x.example.com\"\ntoken = \"a-secret\"\n").unwrap();
    let out = authprobe_bin(&["probe", "--device", p.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.toml") && stderr.contains("token"), "{stderr}");
}

/// `--format jsonl`: one object per attempt as it ends, then a summary; every object stamped with
/// time, version, host and `--label`. `--color always|never` and `-q` as documented.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jsonl_colour_and_quiet_fit_pipelines() {
    let (emu, _dir, ca) = allowing_emulator_with_ca().await;
    let bare = || {
        let mut c = Command::new(env!("CARGO_BIN_EXE_authprobe"));
        c.env_clear().env("NO_COLOR", "");
        c.args(["probe", "--endpoint", ENDPOINT, "--connect-to", &emu.addr.to_string(), "--ca"]).arg(&ca);
        c.args(["--authorizer", AUTH, "--token", GOOD, "--transport", "mqtt"]);
        c
    };
    let out = bare().args(["--format", "jsonl", "--label", "site-3"]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    super::fleet::validate("jsonl", &lines);
    let of = |t: &str| lines.iter().filter(|l| l["type"] == t).count();
    assert!(of("attempt") >= 5, "{lines:?}");
    assert_eq!(of("summary"), 1);
    // A finding line per finding (the risks of a healthy device), ranked, before the summary.
    assert_eq!(of("finding"), lines.last().unwrap()["findings"].as_array().unwrap().len(), "{lines:?}");
    assert_eq!(lines.last().unwrap()["type"], "summary");
    assert_eq!(lines.last().unwrap()["verdict"], "pass");
    assert_eq!(lines.last().unwrap()["exit_code"], 0);
    for l in &lines {
        assert_eq!(l["label"], "site-3");
        assert_eq!(l["version"], env!("CARGO_PKG_VERSION"));
        assert!(l["timestamp"].as_str().unwrap().ends_with('Z') && l["host"].is_string(), "{l}");
    }
    // Colour only when asked (stdout is not a terminal here), and -q keeps stderr empty.
    let colour = |mode: &str| bare().args(["--matrix", "none", "--color", mode]).output().unwrap();
    assert!(String::from_utf8_lossy(&colour("always").stdout).contains("\u{1b}["));
    assert!(!String::from_utf8_lossy(&colour("never").stdout).contains("\u{1b}["));
    let quiet = bare().args(["--matrix", "none", "--port", "8443", "-q"]).output().unwrap();
    assert!(quiet.stderr.is_empty(), "{}", String::from_utf8_lossy(&quiet.stderr));
    let loud = bare().args(["--matrix", "none", "--port", "8443"]).output().unwrap();
    assert!(String::from_utf8_lossy(&loud.stderr).contains("warning: port 8443"));
}

/// Ctrl-C during a matrix: the attempts that ran are reported, marked interrupted in every format,
/// with exit code 130 in the report as in the process, and no verdict that claims success.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_prints_a_partial_report() {
    use std::io::Read as _;
    for format in ["jsonl", "json", "text"] {
        // An emulator per run: no record of the previous run's connections can be taken for this one's.
        let mut c = config();
        c.authorizers.push(allowing(AUTH));
        c.latency = std::time::Duration::from_secs(8);
        let mut emu = start(c).await;
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &emu.ca_pem).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_authprobe"))
            .env_clear()
            .args(["probe", "--endpoint", ENDPOINT, "--connect-to", &emu.addr.to_string(), "--ca"])
            .arg(&ca)
            .args(["--authorizer", AUTH, "--token", GOOD, "--transport", "mqtt", "--format", format])
            .args(["--timeout", "20", "--spacing", "0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // The attempts that fail at TLS end at once (the emulator records them); the others wait for
        // the slow authorizer.
        let _ = emu.record().await;
        let _ = Command::new("kill").args(["-INT", &child.id().to_string()]).status();
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        assert_eq!(child.wait().unwrap().code(), Some(130), "{format}");
        assert!(out.contains("interrupted (Ctrl-C) after"), "{format}: {out}");
        assert!(!out.contains("expected to succeed did"), "{format}: a verdict after Ctrl-C: {out}");
        match format {
            "text" => assert!(out.contains("no verdict; exit code 130"), "{out}"),
            "json" => {
                let v: serde_json::Value = serde_json::from_str(&out).unwrap();
                assert_eq!((v["exit_code"].as_u64(), v["interrupted"].as_bool()), (Some(130), Some(true)), "{out}");
            }
            _ => {
                let summary = out.lines().find(|l| l.contains("\"type\":\"summary\"")).expect("a summary after Ctrl-C");
                let v: serde_json::Value = serde_json::from_str(summary).unwrap();
                assert_eq!((v["exit_code"].as_u64(), v["interrupted"].as_bool()), (Some(130), Some(true)), "{summary}");
            }
        }
    }
}

/// `--save-device` keeps every flag that changes what is sent or where (proxy without its password,
/// public keys, timeout, MQTT version, keep-alive), writes paths relative to the profile so that its
/// folder can be copied to a gateway, and says where it wrote; a replay whose token variable is not
/// set names the variable and the profile.
#[test]
fn a_saved_profile_is_complete_and_portable() {
    let dir = tempfile::tempdir().unwrap();
    let site = dir.path().join("site");
    std::fs::create_dir(&site).unwrap();
    std::fs::write(site.join("token"), GOOD).unwrap();
    std::fs::write(site.join("pub.pem"), &keys().public_pem).unwrap();
    let profile = site.join("gw-17.toml");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://alice:proxy-pw-9@{}", closed.local_addr().unwrap());
    drop(closed);
    let save = Command::new(env!("CARGO_BIN_EXE_authprobe"))
        .env_clear()
        .current_dir(dir.path())
        .args(["probe", "--endpoint", ENDPOINT, "--authorizer", AUTH, "--token-file", "site/token"])
        .args(["--public-key", "site/pub.pem", "--proxy", &proxy, "--timeout", "3", "--mqtt-version", "5"])
        .args(["--keep-alive", "40", "--matrix", "none", "--follow-up", "none", "--save-device", "site/gw-17.toml"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&save.stderr);
    assert!(stderr.contains("device profile written to site/gw-17.toml"), "{stderr}");
    assert!(stderr.contains("proxy password is not saved"), "{stderr}");
    let text = std::fs::read_to_string(&profile).unwrap();
    assert!(!text.contains("proxy-pw-9") && !text.contains(GOOD), "{text}");
    for want in [
        "token_file = \"token\"",
        "public_keys = [\"pub.pem\"]",
        "timeout = 3.0",
        "mqtt_version = \"5\"",
        "keep_alive = 40",
        "proxy = \"http://alice@127.0.0.1:",
    ] {
        assert!(text.contains(want), "{want} missing from:\n{text}");
    }
    // Copied elsewhere, the folder still works: its paths are its own.
    let moved = dir.path().join("gateway");
    std::fs::create_dir(&moved).unwrap();
    for f in ["token", "pub.pem", "gw-17.toml"] {
        std::fs::copy(site.join(f), moved.join(f)).unwrap();
    }
    let replay = authprobe_bin(&["probe", "--device", moved.join("gw-17.toml").to_str().unwrap(), "--format", "json"]);
    let stdout = String::from_utf8_lossy(&replay.stdout);
    assert_eq!(replay.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&replay.stderr));
    let r: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert!(r["proxy"]["url"].as_str().unwrap().starts_with("http://alice@127.0.0.1:"), "{}", r["proxy"]);
    assert!(r["secret_sources"][0].as_str().unwrap().contains("gateway/token"), "{}", r["secret_sources"]);
    // A token variable the profile names but the shell does not set.
    let by_env = dir.path().join("env.toml");
    std::fs::write(&by_env, format!("endpoint = \"{ENDPOINT}\"\nauthorizer = \"{AUTH}\"\ntoken_env = \"GW_TOKEN\"\n"))
        .unwrap();
    let out = authprobe_bin(&["probe", "--device", by_env.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("GW_TOKEN") && stderr.contains("env.toml") && !stderr.contains("--signing-key"),
        "{stderr}"
    );
}
