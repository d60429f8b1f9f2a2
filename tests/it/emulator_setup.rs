//! Setting the emulator up: the example config and authorizer, describe-authorizer JSON, and the
//! `authprobe emulate` binary (bad input, start-up, Ctrl-C).

use super::common::*;
use authprobe::emulator::Reason;
use authprobe::emulator::config::{ConfigFile, authorizer_from_describe_json};
use std::path::Path;
use std::process::Stdio;
use tokio::io::{AsyncBufReadExt as _, BufReader};

fn example(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name)
}

#[tokio::test]
async fn example_config_loads_and_its_rules_apply() {
    let path = example("emulator.toml");
    let file = ConfigFile::parse(&std::fs::read_to_string(&path).unwrap(), &path).unwrap();
    let mut cfg = config();
    file.apply(&mut cfg, path.parent().unwrap()).unwrap();
    cfg.validate().unwrap();
    assert_eq!(cfg.default_authorizer.as_deref(), Some("TokenAuthorizer"));
    let mut emu = start(cfg).await;
    for (token, expect, reason) in [
        ("allow-me", Connack::Code(0), Reason::Accepted),
        ("connect-only", Connack::Code(0), Reason::Accepted),
        ("broken-lambda", Connack::Code(0x87), Reason::InvalidResponse),
        ("other", Connack::Code(0x87), Reason::Denied),
    ] {
        assert_eq!(mqtt5(&emu, "dev", &username(&[("token", token)]), "").await, expect, "{token}");
        assert_eq!(emu.record().await.reason, reason, "{token}");
    }
}

#[tokio::test]
async fn example_authorizer_script_runs_as_the_function() {
    let mut a = authprobe::emulator::Authorizer::new(AUTH, "token");
    a.function = authprobe::emulator::Function::Command(format!("python3 '{}'", example("authorizer.py").display()));
    let mut cfg = config();
    cfg.authorizers.push(a);
    cfg.default_authorizer = Some(AUTH.into());
    let mut emu = start(cfg).await;
    assert_eq!(mqtt311(&emu, "dev-1", &username(&[("token", "allow-me")]), "").await, Connack::Code(0));
    let rec = emu.record().await;
    assert_eq!(rec.reason, Reason::Accepted, "{}", rec.detail);
    assert_eq!(rec.response_value().unwrap()["principalId"], "exampleDevice");
    assert!(matches!(mqtt311(&emu, "dev-1", &username(&[("token", "nope")]), "").await, Connack::Closed(_)));
    assert_eq!(emu.record().await.reason, Reason::Denied);
}

#[test]
fn describe_authorizer_json_is_imported() {
    let pem = &keys().public_pem;
    let json = serde_json::json!({"authorizerDescription": {
        "authorizerName": "Prod", "authorizerArn": "arn:aws:iot:us-east-1:123456789012:authorizer/Prod",
        "tokenKeyName": "deviceToken", "tokenSigningPublicKeys": {"k1": pem, "k2": pem},
        "status": "INACTIVE", "signingDisabled": false
    }});
    let a = authorizer_from_describe_json(&json.to_string(), Path::new("d.json")).unwrap();
    assert_eq!((a.name.as_str(), a.token_key_name.as_str(), a.active), ("Prod", "deviceToken", false));
    assert_eq!(a.signing.unwrap().len(), 2);
    let unsigned = serde_json::json!({"authorizerName": "Open", "signingDisabled": true, "status": "ACTIVE"});
    let a = authorizer_from_describe_json(&unsigned.to_string(), Path::new("d.json")).unwrap();
    assert!(a.signing.is_none() && a.active);
    let err = authorizer_from_describe_json("{\"nope\":1}", Path::new("d.json")).unwrap_err().to_string();
    assert!(err.contains("d.json") && err.contains("authorizerName"), "{err}");
}

fn authprobe() -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_authprobe"));
    c.env_clear().env("NO_COLOR", "1");
    c
}

/// Runs the binary with bad input: exit code 2 and every `needles` in stderr.
fn fails_with(args: &[&str], needles: &[&str]) {
    let out = authprobe().args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    for n in needles {
        assert!(stderr.contains(n), "{args:?}: `{n}` not in: {stderr}");
    }
    assert!(out.stdout.is_empty(), "nothing is served on bad input");
}

#[test]
fn bad_emulator_input_exits_2_naming_the_input_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let private = keys().private.to_str().unwrap().to_owned();
    fails_with(
        &["emulate", "--listen", "127.0.0.1:0", "--public-key", &private],
        &["--public-key", "private key", "-pubout"],
    );
    fails_with(&["emulate", "--public-key", "/nonexistent.pem"], &["/nonexistent.pem"]);
    fails_with(&["emulate", "--listen", "127.0.0.1:0", "--endpoint", ""], &["--endpoint is empty"]);
    fails_with(&["emulate", "--listen", "127.0.0.1:0", "--allow-token", ""], &["--allow-token is empty"]);
    // A certificate with a key that is not its own: refused before the banner says "listening".
    let (cert, other_key) = (dir.path().join("c.pem"), dir.path().join("k2.pem"));
    let ok = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-keyout"])
        .arg(dir.path().join("k1.pem"))
        .arg("-out")
        .arg(&cert)
        .output()
        .unwrap();
    assert!(ok.status.success());
    std::fs::write(&other_key, std::fs::read(&keys().private).unwrap()).unwrap();
    fails_with(
        &["emulate", "--listen", "127.0.0.1:0", "--cert", cert.to_str().unwrap(), "--key", other_key.to_str().unwrap()],
        &["--cert", "--key", "belongs to the certificate"],
    );
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "endpoints = 3\n").unwrap();
    fails_with(&["emulate", "--config", bad.to_str().unwrap()], &["bad.toml", "endpoints"]);
    let unknown = dir.path().join("unknown.toml");
    std::fs::write(&unknown, "[reject]\nmqtt5 = \"connack:0x01\"\n").unwrap();
    fails_with(&["emulate", "--config", unknown.to_str().unwrap()], &["unknown.toml", "connack:0x87"]);
    fails_with(&["emulate", "--default-authorizer", "Nope"], &["default_authorizer", "Nope"]);
    fails_with(&["emulate", "--listen", "not-an-address"], &["--listen"]);
}

#[tokio::test]
async fn emulate_binary_serves_and_stops_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let log = dir.path().join("log.jsonl");
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_authprobe"))
        .args(["emulate", "--listen", "127.0.0.1:0", "--allow-token", GOOD, "--default-authorizer", "MyAuthorizer"])
        .arg("--write-ca")
        .arg(&ca)
        .arg("--log-json")
        .arg(&log)
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, lines.next_line()).await.unwrap().unwrap().unwrap();
    let addr: std::net::SocketAddr = first.rsplit(' ').next().unwrap().parse().unwrap();
    let mut banner = vec![first];
    while let Some(l) = tokio::time::timeout(WAIT, lines.next_line()).await.unwrap().unwrap() {
        let done = l.contains("Ctrl-C");
        banner.push(l);
        if done {
            break;
        }
    }
    let banner = banner.join("\n");
    assert!(banner.contains(&ca.display().to_string()) && banner.contains("MyAuthorizer [default]"), "{banner}");
    let ca_pem = std::fs::read_to_string(&ca).unwrap();
    let mut s = tls(addr, Some(ENDPOINT), &[b"mqtt"], &ca_pem).await.expect("the written CA verifies the served chain");
    {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        s.write_all(&connect_packet("cli", Some(&username(&[("token", GOOD)])), "")).await.unwrap();
        let mut ack = [0u8; 4];
        s.read_exact(&mut ack).await.unwrap();
        assert_eq!(ack, [0x20, 2, 0, 0]);
    }
    drop(s);
    // The connection's log line on stderr means its record is written.
    let mut errs = BufReader::new(child.stderr.take().unwrap()).lines();
    loop {
        let line =
            tokio::time::timeout(WAIT, errs.next_line()).await.unwrap().unwrap().expect("a log line per connection");
        if line.contains("-> accepted") {
            break;
        }
    }
    let pid = child.id().unwrap().to_string();
    assert!(std::process::Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let status = tokio::time::timeout(WAIT, child.wait()).await.expect("stops on Ctrl-C").unwrap();
    assert!(status.success(), "{status}");
    let rest = tokio::time::timeout(WAIT, lines.next_line()).await.unwrap().unwrap();
    assert_eq!(rest.as_deref(), Some("stopped"));
    // One JSON line for the connection, token redacted.
    let logged = std::fs::read_to_string(&log).unwrap();
    let rec: serde_json::Value = serde_json::from_str(logged.lines().next().unwrap()).unwrap();
    assert_eq!(
        (rec["reason"].as_str(), rec["transport"].as_str(), rec["accepted"].as_bool()),
        (Some("accepted"), Some("mqtt"), Some(true))
    );
    assert!(!logged.contains(GOOD), "{logged}");
}

/// The generated chain is RSA by default, as IoT Core's ATS endpoints: a TLS 1.2-only client limited
/// to ECDHE-RSA-AES128-GCM-SHA256 (openssl s_client) connects and verifies it; with `--key-type ecdsa`
/// that client finds no common suite.
#[test]
fn rsa_chain_by_default_serves_tls12_ecdhe_rsa_clients() {
    use std::io::BufRead as _;
    let handshake = |key_type: &[&str]| {
        let dir = tempfile::tempdir().unwrap();
        let ca = dir.path().join("ca.pem");
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_authprobe"))
            .args(["emulate", "--listen", "127.0.0.1:0", "--allow-token", GOOD, "--write-ca"])
            .arg(&ca)
            .args(key_type)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        let addr = first.rsplit(' ').next().unwrap().to_owned();
        // The banner ends with the Ctrl-C line: the CA file is written by then.
        for line in lines.by_ref().take(20) {
            if line.unwrap().contains("Ctrl-C") {
                break;
            }
        }
        let out = std::process::Command::new("openssl")
            .args(["s_client", "-connect", &addr, "-servername", ENDPOINT, "-tls1_2"])
            .args(["-cipher", "ECDHE-RSA-AES128-GCM-SHA256", "-alpn", "mqtt", "-CAfile"])
            .arg(&ca)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let _ = child.kill();
        let _ = child.wait();
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
    };
    let rsa = handshake(&[]);
    assert!(rsa.contains("Cipher is ECDHE-RSA-AES128-GCM-SHA256"), "{rsa}");
    assert!(rsa.contains("Verify return code: 0 (ok)"), "{rsa}");
    let ecdsa = handshake(&["--key-type", "ecdsa"]);
    assert!(!ecdsa.contains("Cipher is ECDHE-RSA"), "{ecdsa}");
}

/// The emulator listens with a backlog of 1024 (capped by the kernel's somaxconn), as `ss` reports it.
#[tokio::test]
async fn listen_backlog_is_1024() {
    let listener = authprobe::emulator::listen("127.0.0.1:0".parse().unwrap()).unwrap();
    let port = listener.local_addr().unwrap().port();
    let out = std::process::Command::new("ss").args(["-ltnH", &format!("sport = :{port}")]).output().unwrap();
    let line = String::from_utf8_lossy(&out.stdout).into_owned();
    let backlog: u32 = line.split_whitespace().nth(2).and_then(|b| b.parse().ok()).unwrap_or_else(|| panic!("{line}"));
    let somaxconn: u32 = std::fs::read_to_string("/proc/sys/net/core/somaxconn")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(4096);
    assert_eq!(backlog, 1024.min(somaxconn), "{line}");
}
