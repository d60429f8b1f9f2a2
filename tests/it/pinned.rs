//! Pinned reports: the JSON of a few probe runs and a toolkit check, byte for byte, against files in
//! `tests/pinned/`. The JSON is a public contract (docs/causes.md, docs/outcomes.md): a refactor must
//! not change a key, an order or an id. Only what differs from run to run is normalised before the
//! comparison: durations, the emulator's port, trace ids, timestamps and temporary paths.
//!
//! After a deliberate change of the contract, `AUTHPROBE_PIN_WRITE=1 cargo test --test tests pinned`
//! rewrites the files; review their diff like code.

use super::common::*;
use std::path::{Path, PathBuf};

fn pinned_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/pinned")
}

/// `text` with what changes between runs replaced by fixed words.
fn normalise(text: &str, port: Option<u16>, dir: &Path) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        let mut l = line.replace(dir.to_str().unwrap(), "<DIR>");
        if let Some(p) = port {
            l = whole_number(&l, &p.to_string(), "<PORT>");
        }
        let trimmed = l.trim_start();
        let indent = &l[..l.len() - trimmed.len()];
        let key = trimmed.strip_prefix('"').and_then(|r| r.split_once("\": ")).map(|(k, _)| k.to_owned());
        let l = match key.as_deref() {
            Some(k) if k == "ms" || k.ends_with("_ms") => {
                let comma = if trimmed.ends_with(',') { "," } else { "" };
                format!("{indent}\"{k}\": 0{comma}")
            }
            Some("trace_id" | "request_id") => {
                let comma = if trimmed.ends_with(',') { "," } else { "" };
                format!("{indent}\"{}\": \"<ID>\"{comma}", key.unwrap())
            }
            _ => l,
        };
        out.push_str(&millis(&timestamps(&l)));
        out.push('\n');
    }
    out
}

/// `s` with `number` replaced by `by` wherever it stands alone (not inside a longer number or word).
fn whole_number(s: &str, number: &str, by: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(at) = rest.find(number) {
        let before = rest[..at].chars().last().or(out.chars().last());
        let after = rest[at + number.len()..].chars().next();
        let alone = !before.is_some_and(|c| c.is_alphanumeric()) && !after.is_some_and(|c| c.is_alphanumeric());
        out.push_str(&rest[..at]);
        out.push_str(if alone { by } else { number });
        rest = &rest[at + number.len()..];
    }
    out.push_str(rest);
    out
}

/// `s` with every number of milliseconds in prose (`12 ms`) replaced by `<N> ms`.
fn millis(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut digits = String::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            if !digits.is_empty() {
                let prose = rest.starts_with(" ms") && !out.ends_with(|p: char| p.is_alphanumeric() || p == '_');
                out.push_str(if prose { "<N>" } else { &digits });
                digits.clear();
            }
            out.push(c);
        }
        rest = &rest[c.len_utf8()..];
    }
    out.push_str(&digits);
    out
}

/// `s` with every `YYYY-MM-DDTHH:MM:SSZ` replaced by `<TIME>`.
fn timestamps(s: &str) -> String {
    let b = s.as_bytes();
    let shape = b"dddd-dd-ddTdd:dd:ddZ";
    let mut out = String::new();
    let mut i = 0;
    while i < b.len() {
        let fits = b.len() - i >= shape.len()
            && shape
                .iter()
                .zip(&b[i..])
                .all(|(want, got)| if *want == b'd' { got.is_ascii_digit() } else { want == got });
        if fits {
            out.push_str("<TIME>");
            i += shape.len();
        } else {
            let ch = s[i..].chars().next().unwrap();
            out.push(ch);
            i += ch.len_utf8();
        }
    }
    out
}

fn check(name: &str, got: &str) {
    let path = pinned_dir().join(format!("{name}.json"));
    if std::env::var_os("AUTHPROBE_PIN_WRITE").is_some() {
        std::fs::create_dir_all(pinned_dir()).unwrap();
        std::fs::write(&path, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    if want != got {
        let first = want
            .lines()
            .zip(got.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(want.lines().count().min(got.lines().count()));
        panic!(
            "{name}: the JSON differs from {} from line {}:\n  pinned: {:?}\n  now:    {:?}",
            path.display(),
            first + 1,
            want.lines().nth(first),
            got.lines().nth(first)
        );
    }
}

/// Runs `authprobe probe` against `emu` with `extra` flags and returns its normalised JSON.
async fn probe_json(emu: &Emu, dir: &tempfile::TempDir, extra: &[&str]) -> String {
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &emu.ca_pem).unwrap();
    let trust = if emu.ca_pem.is_empty() { vec!["--insecure"] } else { vec!["--ca", ca.to_str().unwrap()] };
    let mut args: Vec<String> = [
        "probe",
        "--endpoint",
        ENDPOINT,
        "--connect-to",
        &emu.addr.to_string(),
        "--client-id",
        "pinned-device",
        "--format",
        "json",
        // The emulator does not limit connects per client ID: no 1.1 s spacing between them.
        "--spacing",
        "0",
    ]
    .map(String::from)
    .to_vec();
    args.extend(trust.iter().map(|s| (*s).to_owned()));
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let out = tokio::task::spawn_blocking(move || authprobe_bin(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    normalise(&stdout, Some(emu.addr.port()), dir.path())
}

#[tokio::test]
async fn a_healthy_device_report_is_pinned() {
    let (emu, dir, _) = allowing_emulator_with_ca().await;
    let got = probe_json(&emu, &dir, &["--authorizer", AUTH, "--token", GOOD]).await;
    check("healthy", &got);
}

#[tokio::test]
async fn a_denied_device_report_is_pinned() {
    let (emu, dir, _) = allowing_emulator_with_ca().await;
    let got = probe_json(&emu, &dir, &["--authorizer", AUTH, "--token", "not-the-token"]).await;
    check("denied", &got);
}

#[tokio::test]
async fn a_local_check_and_its_confirmed_cause_are_pinned() {
    let (emu, dir, _) = allowing_emulator_with_ca().await;
    let describe = dir.path().join("authorizer.json");
    let json = serde_json::json!({"authorizerDescription": {"authorizerName": AUTH, "tokenKeyName": "token",
        "status": "ACTIVE", "signingDisabled": true}});
    std::fs::write(&describe, json.to_string()).unwrap();
    let got = probe_json(
        &emu,
        &dir,
        &["--authorizer-json", describe.to_str().unwrap(), "--token-key-name", "deviceToken", "--token", GOOD],
    )
    .await;
    check("token_key_name_wrong", &got);
}

#[tokio::test]
async fn an_unreachable_endpoint_report_is_pinned() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let emu = Emu::unstarted(addr);
    let dir = tempfile::tempdir().unwrap();
    let got = probe_json(&emu, &dir, &["--authorizer", AUTH, "--token", GOOD, "--timeout", "2"]).await;
    check("port_refused", &got);
}

#[test]
fn a_check_response_report_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let response = dir.path().join("response.json");
    let json = serde_json::json!({
        "isAuthenticated": true,
        "principalId": "device1",
        "disconnectAfterInSeconds": 3600,
        "refreshAfterInSeconds": 300,
        "policyDocuments": [{"Version": "2012-10-17", "Statement": [
            {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:us-east-1:123456789012:client/device1"},
            {"Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:us-east-1:123456789012:topic/other"}
        ]}]
    });
    std::fs::write(&response, json.to_string()).unwrap();
    let out = authprobe_bin(&[
        "check-response",
        response.to_str().unwrap(),
        "--client-id",
        "device1",
        "--publish",
        "telemetry/device1",
        "--format",
        "json",
    ]);
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(matches!(out.status.code(), Some(0 | 1)), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    check("check_response", &normalise(&stdout, None, dir.path()));
}
