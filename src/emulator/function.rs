//! Running the authorizer function: a rule from the config, an external command that reads the event
//! on stdin and prints the response, or the user's Lambda handler behind the Runtime API
//! (`runtime_api`), under IoT Core's time limit.

use super::config::{Answer, Function};
use crate::auth::event::Event;
use serde_json::{Value, json};
use std::process::Stdio;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::Command;

/// Largest response read from a command.
const MAX_OUTPUT: u64 = 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FunctionError {
    #[error("no answer within the {0:?} time limit")]
    Timeout(Duration),
    #[error("the command could not start: {0}")]
    Spawn(String),
    #[error("the command exited with {status}{}", if stderr.is_empty() { String::new() } else { format!(": {stderr}") })]
    Crashed { status: String, stderr: String },
    #[error("the output is not JSON: {0}")]
    NotJson(String),
    #[error("the output is larger than {0} bytes")]
    TooLarge(u64),
    /// The handler (Runtime API) reported an error: what Lambda returns as `FunctionError`.
    #[error("the function returned an error: {error_type}: {message}")]
    Handler { error_type: String, message: String },
}

/// Invokes `function` with `event`, after `latency`, all within `limit`.
pub(crate) async fn invoke(
    function: &Function,
    event: &Event,
    secrets: &crate::secret::Scrubber,
    latency: Duration,
    limit: Duration,
) -> Result<Value, FunctionError> {
    if let Function::Handler(host) = function {
        // The host keeps the limit itself: it knows which worker overran and replaces it.
        if !latency.is_zero() {
            tokio::time::sleep(latency.min(limit)).await;
        }
        return host.invoke(event, secrets, limit.saturating_sub(latency)).await.map_err(|e| match e {
            FunctionError::Timeout(_) => FunctionError::Timeout(limit),
            e => e,
        });
    }
    let work = async {
        // A zero sleep still waits for the timer's next tick (a millisecond): skip it.
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        match function {
            Function::Rules(rules) => Ok(answer(rules.iter().find(|r| r.token == event.token).map(|r| &r.answer))),
            Function::Command(cmd) => run_command(cmd, event).await,
            Function::Handler(_) => unreachable!("handled above"),
        }
    };
    tokio::time::timeout(limit, work).await.unwrap_or(Err(FunctionError::Timeout(limit)))
}

fn answer(rule: Option<&Answer>) -> Value {
    match rule {
        Some(Answer::Allow { principal_id, policies }) => json!({
            "isAuthenticated": true,
            "principalId": principal_id,
            "disconnectAfterInSeconds": 86400,
            "refreshAfterInSeconds": 300,
            "policyDocuments": policies,
        }),
        Some(Answer::Respond(v)) => v.clone(),
        Some(Answer::Deny) | None => json!({
            "isAuthenticated": false,
            "principalId": "denied",
            "disconnectAfterInSeconds": 86400,
            "refreshAfterInSeconds": 300,
            "policyDocuments": [],
        }),
    }
}

async fn run_command(cmd: &str, event: &Event) -> Result<Value, FunctionError> {
    let mut command = Command::new("sh");
    die_with_parent(&mut command);
    let mut child = command
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group, so that a timeout (or the emulator stopping) kills the command's
        // children too, not only `sh`.
        .process_group(0)
        .spawn()
        .map_err(|e| FunctionError::Spawn(e.to_string()))?;
    let _group = child.id().map(Group::new);
    let input = serde_json::to_vec(event).unwrap_or_default();
    if let Some(mut stdin) = child.stdin.take() {
        // A command that ignores its input may exit before reading it: that is not an error.
        let _ = stdin.write_all(&input).await;
    }
    let mut out = Vec::new();
    let mut err = Vec::new();
    let (stdout, stderr) = (child.stdout.take(), child.stderr.take());
    let read_out = async {
        if let Some(s) = stdout {
            // One byte over the cap tells "too large" from "exactly at the cap".
            let _ = s.take(MAX_OUTPUT + 1).read_to_end(&mut out).await;
        }
    };
    let read_err = async {
        if let Some(s) = stderr {
            let _ = s.take(4096).read_to_end(&mut err).await;
        }
    };
    tokio::join!(read_out, read_err);
    if out.len() as u64 > MAX_OUTPUT {
        return Err(FunctionError::TooLarge(MAX_OUTPUT));
    }
    let status = child.wait().await.map_err(|e| FunctionError::Spawn(e.to_string()))?;
    if !status.success() {
        return Err(FunctionError::Crashed { status: status.to_string(), stderr: printable(&err, 300) });
    }
    serde_json::from_slice(&out).map_err(|e| FunctionError::NotJson(e.to_string()))
}

/// The command's process group; dropping it kills the whole group. Every live group is also known
/// to [`kill_all_groups`], which the emulator calls when it is told to stop (SIGTERM, SIGINT,
/// SIGHUP), so that no handler or command outlives it.
pub(super) struct Group(u32);

/// The process groups of the running commands and handlers.
static GROUPS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

impl Group {
    pub(super) fn new(pid: u32) -> Self {
        if let Ok(mut g) = GROUPS.lock() {
            g.push(pid);
        }
        Self(pid)
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        if let Ok(mut g) = GROUPS.lock() {
            g.retain(|&p| p != self.0);
        }
        kill_group(self.0);
    }
}

fn kill_group(pid: u32) {
    if let Ok(pgid) = i32::try_from(pid) {
        // SAFETY: killpg only sends a signal; the group id is the child's pid, which leads its
        // own group (`process_group(0)`). A group that already exited gives ESRCH, ignored.
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
}

/// Kills every authorizer command and handler process group still running.
pub fn kill_all_groups() {
    let groups = GROUPS.lock().map(|mut g| std::mem::take(&mut *g)).unwrap_or_default();
    for pid in groups {
        kill_group(pid);
    }
}

/// Asks the kernel to kill the child when the emulator's thread that started it dies (the emulator
/// killed with SIGKILL cannot clean up): the child's direct process at least never outlives it.
pub(super) fn die_with_parent(cmd: &mut Command) {
    // SAFETY: prctl(PR_SET_PDEATHSIG) is async-signal-safe and touches only the child's own state.
    unsafe {
        cmd.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
}

/// Text for a log: lossy UTF-8, control characters (NUL, newlines, escapes) escaped, at most `max`
/// characters.
pub(crate) fn printable(bytes: &[u8], max: usize) -> String {
    crate::secret::escape(String::from_utf8_lossy(bytes).trim()).chars().take(max).collect()
}
