//! Reproducing what a device sends: secrets from files, standard input and the environment (never
//! only the command line), each checked against what the emulator received.

use super::common::*;
use std::io::Write as _;
use std::process::{Command, Stdio};

fn probe_cmd(emu: &Emu, dir: &std::path::Path) -> Command {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &emu.ca_pem).unwrap();
    let mut c = Command::new(env!("CARGO_BIN_EXE_authprobe"));
    c.env_clear().env("NO_COLOR", "1");
    c.args(["probe", "--endpoint", ENDPOINT, "--connect-to", &emu.addr.to_string(), "--ca"]).arg(&ca).args([
        "--authorizer",
        AUTH,
        "--matrix",
        "none",
        "--transport",
        "mqtt",
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
    assert_eq!(rec.event.as_ref().unwrap()["token"], GOOD);
    use base64::Engine as _;
    let pw = base64::engine::general_purpose::STANDARD.encode("pw-from-file");
    assert_eq!(rec.event.as_ref().unwrap()["protocolData"]["mqtt"]["password"], pw.as_str());

    let out = probe_cmd(&emu, dir.path()).env("AUTHPROBE_TOKEN", GOOD).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(emu.record().await.event.unwrap()["token"], GOOD);

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
    assert_eq!(emu.record().await.event.unwrap()["token"], GOOD);
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
