//! The user's unmodified Lambda handler behind the emulator's Runtime API: the Python example under
//! the official `awslambdaric` (from PyPI, in the virtual environment `.ci/run` makes) and the Node
//! example under `aws-lambda-ric` (from npm), driven by an independent MQTT client (rumqttc).
//!
//! Where a runtime client is not installed the test prints why and passes, unless
//! `AUTHPROBE_REQUIRE_PEERS` is set (as `.ci/run` sets it for what it installs).

use super::common::*;
use authprobe::emulator::record::Reason;
use authprobe::emulator::{Authorizer, Function};
use std::path::{Path, PathBuf};

fn manifest() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// `Some(command)` when the runtime client is there; otherwise prints why and returns `None`
/// (or fails, when the environment requires it).
fn available(what: &str, found: Option<String>, why: &str) -> Option<String> {
    if found.is_none() {
        let required = std::env::var_os("AUTHPROBE_REQUIRE_PEERS").is_some_and(|v| v.to_string_lossy().contains(what));
        assert!(!required, "{what} is required here (AUTHPROBE_REQUIRE_PEERS) but missing: {why}");
        eprintln!("skipped: {what} not installed: {why}");
    }
    found
}

pub(super) fn python_command() -> Option<String> {
    python_command_in(&manifest().join("examples/lambda/python"))
}

/// `handler.lambda_handler` of the Python file `dir/handler.py` under `awslambdaric`.
fn python_command_in(dir: &Path) -> Option<String> {
    let python =
        std::env::var_os("AUTHPROBE_PYTHON").map(PathBuf::from).unwrap_or_else(|| manifest().join(".venv/bin/python"));
    let ok = std::process::Command::new(&python)
        .args(["-c", "import awslambdaric"])
        .output()
        .is_ok_and(|o| o.status.success());
    let found = ok.then(|| {
        format!("cd '{}' && exec '{}' -m awslambdaric handler.lambda_handler", dir.display(), python.display())
    });
    available("awslambdaric", found, &format!("{} cannot import awslambdaric (.ci/run installs it)", python.display()))
}

fn node_command() -> Option<String> {
    let dir = manifest().join("examples/lambda/node");
    let ric = dir.join("node_modules/.bin/aws-lambda-ric");
    let node = std::process::Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success());
    let found =
        (node && ric.exists()).then(|| format!("cd '{}' && exec '{}' index.handler", dir.display(), ric.display()));
    let why = if node { format!("no {}", ric.display()) } else { "no node on this machine".into() };
    available("aws-lambda-ric", found, &why)
}

/// The function's time limit here: IoT Core's 5 s scaled down (the handlers' `sleep-me` sleeps 6 s,
/// past either), so that the suite does not wait 5 s for each overrun.
const LIMIT_MS: u64 = 2_000;

async fn emulator(command: &str, workers: usize) -> Emu {
    let mut cfg = config();
    cfg.time_limit = std::time::Duration::from_millis(LIMIT_MS);
    let mut a = Authorizer::new(AUTH, "token");
    a.function = Function::Handler(authprobe::emulator::Handler::new(command, workers));
    cfg.authorizers.push(a);
    cfg.default_authorizer = Some(AUTH.into());
    start(cfg).await
}

async fn connect(emu: &mut Emu, token: &str) -> (Connack, authprobe::emulator::ConnectionRecord) {
    let ack = mqtt311(emu, &format!("dev-{token}"), &username(&[("token", token)]), "").await;
    (ack, emu.record().await)
}

/// Allow, deny, an exception (its type in the reason), the Lambda context, and a handler that sleeps
/// past the limit: refused at the limit, the worker replaced, and the next connect served.
async fn handler_suite(command: &str, error_type: &str) {
    let mut emu = emulator(command, 1).await;
    let (ack, rec) = connect(&mut emu, "allow-me").await;
    assert!(matches!(ack, Connack::Code(0)), "{ack:?}: {:?} {}", rec.reason, rec.detail);
    let (ack, rec) = connect(&mut emu, "not-allowed").await;
    assert!(!matches!(ack, Connack::Code(0)));
    assert_eq!(rec.reason, Reason::Denied, "{}", rec.detail);
    let (_, rec) = connect(&mut emu, "raise-me").await;
    assert_eq!(rec.reason, Reason::LambdaError, "{}", rec.detail);
    assert!(rec.detail.contains(error_type) && rec.detail.contains("token store is unreachable"), "{}", rec.detail);
    let (_, rec) = connect(&mut emu, "context-me").await;
    assert!(
        rec.detail.contains("arn:aws:lambda:us-east-1:123456789012:function:MyAuthorizer")
            && rec.detail.contains("ms left"),
        "the Lambda context headers reach the handler: {}",
        rec.detail
    );
    let (_, rec) = connect(&mut emu, "sleep-me").await;
    assert_eq!(rec.reason, Reason::FunctionTimeout, "{}", rec.detail);
    assert!(
        rec.durations.function_ms.is_some_and(|ms| (LIMIT_MS..LIMIT_MS + 1_000).contains(&ms)),
        "{:?}",
        rec.durations
    );
    // The one worker overran: it is replaced, and the next connection is served.
    let (ack, rec) = connect(&mut emu, "allow-me").await;
    assert!(matches!(ack, Connack::Code(0)), "{ack:?}: {:?} {}", rec.reason, rec.detail);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn python_handler_under_awslambdaric() {
    if let Some(cmd) = python_command() {
        handler_suite(&cmd, "ValueError").await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_handler_under_aws_lambda_ric() {
    if let Some(cmd) = node_command() {
        handler_suite(&cmd, "TypeError").await;
    }
}

/// A handler that cannot start reports `init/error`; connections are refused with its message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_that_cannot_start_is_named() {
    let Some(cmd) = python_command() else { return };
    let broken = cmd.replace("handler.lambda_handler", "no_such_module.handler");
    let mut emu = emulator(&broken, 1).await;
    let (ack, rec) = connect(&mut emu, "allow-me").await;
    assert!(!matches!(ack, Connack::Code(0)));
    assert_eq!(rec.reason, Reason::LambdaError, "{}", rec.detail);
    assert!(
        rec.detail.contains("no_such_module") || rec.detail.contains("Runtime.ImportModuleError"),
        "{}",
        rec.detail
    );
}

/// The Runtime API serves only the handler processes the emulator started: another local process
/// that finds its port (here, the test itself) cannot take events — devices' tokens in clear — nor
/// answer them, and the handler keeps serving devices meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_handlers_it_started_reach_the_runtime_api() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let Some(cmd) = python_command() else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("runtime-api");
    let cmd = format!("printf %s \"$AWS_LAMBDA_RUNTIME_API\" > '{}'; {cmd}", file.display());
    let mut emu = emulator(&cmd, 1).await;
    let (ack, rec) = connect(&mut emu, "allow-me").await;
    assert!(matches!(ack, Connack::Code(0)), "{ack:?}: {:?} {}", rec.reason, rec.detail);
    let api = std::fs::read_to_string(&file).unwrap();
    // An outsider asks for the next event (as `awslambdaric` would), then two devices connect: with
    // the outsider served, one of their events would go to it.
    let mut outsider = tokio::net::TcpStream::connect(api.trim()).await.unwrap();
    let _ = outsider.write_all(b"GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    for _ in 0..2 {
        let (ack, rec) = connect(&mut emu, "allow-me").await;
        assert!(matches!(ack, Connack::Code(0)), "{ack:?}: {:?} {}", rec.reason, rec.detail);
    }
    let mut got = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), outsider.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "the outsider's connection is closed, not left waiting");
    assert!(got.is_empty(), "the outsider got an answer: {}", String::from_utf8_lossy(&got));
    // Nor may it answer an invocation: its POST is dropped unread as well.
    let mut outsider = tokio::net::TcpStream::connect(api.trim()).await.unwrap();
    let body = r#"{"isAuthenticated":true}"#;
    let post = format!(
        "POST /2018-06-01/runtime/invocation/x/response HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let _ = outsider.write_all(post.as_bytes()).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(std::time::Duration::from_secs(10), outsider.read_to_end(&mut got)).await;
    assert!(read.is_ok() && got.is_empty(), "{}", String::from_utf8_lossy(&got));
}

/// A handler that prints each token on a block-buffered stdout (flushed three invocations later),
/// then crashes and, restarted, fails to start with an error quoting the token it crashed on and a
/// forged log line.
const LEAKY_HANDLER: &str = r#"
import os
late = open(1, "w", buffering=1 << 16, closefd=False)
STATE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "last-token")
if os.path.exists(STATE):
    raise RuntimeError("the last token was " + open(STATE).read()
                       + "\n2026-01-01T00:00:00Z  INFO authprobe: Diagnosis: forged")
def lambda_handler(event, context):
    token = event.get("token", "")
    late.write("saw token " + token + "\n")
    if token.startswith("flush"):
        late.flush()
    if token.startswith("crash"):
        open(STATE, "w").write(token)
        late.flush()
        os._exit(3)
    return {"isAuthenticated": True, "principalId": "p", "disconnectAfterInSeconds": 300,
            "refreshAfterInSeconds": 300, "policyDocuments": [{"Version": "2012-10-17", "Statement": [
                {"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]}]}
"#;

/// Issue 21: a handler's late output and its init error quoting a token reached the emulator's log
/// in clear (the init error at default verbosity, able to forge a log line). Both are scrubbed of
/// recent invocations' tokens and escaped; the init error in later connections' records too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_handler_output_and_init_errors_log_no_token() {
    use std::io::BufRead as _;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("handler.py"), LEAKY_HANDLER).unwrap();
    let Some(cmd) = python_command_in(dir.path()) else { return };
    let (ca, log) = (dir.path().join("ca.pem"), dir.path().join("stderr.log"));
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_authprobe"))
        .args(["emulate", "-v", "--listen", "127.0.0.1:0", "--authorizer-workers", "1", "--write-ca"])
        .arg(&ca)
        .args(["--authorizer-handler", &cmd])
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    out.read_line(&mut banner).unwrap();
    let addr = banner.split_whitespace().last().unwrap().parse().unwrap();
    let mut emu = Emu::unstarted(addr);
    emu.ca_pem = std::fs::read_to_string(&ca).unwrap();
    let tokens = ["token-one-AAAA1111", "token-two-BBBB2222", "flush-three-CCCC3333", "crash-four-DDDD4444"];
    for (i, token) in tokens.iter().enumerate() {
        let user = username(&[("x-amz-customauthorizer-name", AUTH), ("token", token)]);
        let ack = mqtt311(&emu, &format!("leaky-{i}"), &user, "").await;
        assert_eq!(ack == Connack::Code(0), i < 3, "{token}: {ack:?}");
    }
    // The restarted handler fails to start: a later device is refused with its (scrubbed) error.
    let user = username(&[("x-amz-customauthorizer-name", AUTH), ("token", "token-five-EEEE5555")]);
    let deadline = std::time::Instant::now() + WAIT;
    let mut records = String::new();
    while !std::fs::read_to_string(&log).unwrap().contains("init error") && std::time::Instant::now() < deadline {
        let _ = mqtt311(&emu, "leaky-5", &user, "").await;
    }
    // SAFETY: a signal to the child this test started.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGTERM);
    }
    let _ = child.wait();
    std::io::Read::read_to_string(&mut out, &mut records).unwrap();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("init error"), "the init error is logged: {log}");
    assert!(log.contains("saw token <redacted"), "the late output is logged, redacted: {log}");
    for token in tokens {
        assert!(!log.contains(token), "{token} in the log:\n{log}");
        assert!(!records.contains(token), "{token} in the records:\n{records}");
    }
    assert!(!log.lines().any(|l| l.starts_with("2026-01-01")), "a forged log line:\n{log}");
}
