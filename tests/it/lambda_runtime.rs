//! The user's unmodified Lambda handler behind the emulator's Runtime API: the Python example under
//! the official `awslambdaric` (from PyPI, in the virtual environment `.ci/run` makes) and the Node
//! example under `aws-lambda-ric` (from npm), driven by an independent MQTT client (rumqttc).
//!
//! Where a runtime client is not installed the test prints why and passes, unless
//! `AUTHPROBE_REQUIRE_PEERS` is set (as `.ci/run` sets it for what it installs).

use super::common::*;
use authprobe::emulator::record::Reason;
use authprobe::emulator::runtime_api::Host;
use authprobe::emulator::{Authorizer, Function};
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

fn python_command() -> Option<String> {
    let python =
        std::env::var_os("AUTHPROBE_PYTHON").map(PathBuf::from).unwrap_or_else(|| manifest().join(".venv/bin/python"));
    let ok = std::process::Command::new(&python)
        .args(["-c", "import awslambdaric"])
        .output()
        .is_ok_and(|o| o.status.success());
    let dir = manifest().join("examples/lambda/python");
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

async fn emulator(command: &str, workers: usize) -> Emu {
    let mut cfg = config();
    let mut a = Authorizer::new(AUTH, "token");
    a.function = Function::Handler(Arc::new(Host::new(command, workers)));
    cfg.authorizers.push(a);
    cfg.default_authorizer = Some(AUTH.into());
    start(cfg).await
}

async fn connect(emu: &mut Emu, token: &str) -> (Connack, authprobe::emulator::ConnectionRecord) {
    let ack = mqtt311(emu, &format!("dev-{token}"), &username(&[("token", token)]), "").await;
    (ack, emu.record().await)
}

/// Allow, deny, an exception (its type in the reason), the Lambda context, and a handler that sleeps
/// past 5 s: refused at the limit, the worker replaced, and the next connect served.
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
    assert!(rec.durations.function_ms.is_some_and(|ms| (5_000..6_000).contains(&ms)), "{:?}", rec.durations);
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
