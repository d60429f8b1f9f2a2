//! Running the authorizer function: a rule from the config, or an external command that reads the event
//! on stdin and prints the response, under IoT Core's time limit.

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
}

/// Invokes `function` with `event`, after `latency`, all within `limit`.
pub async fn invoke(
    function: &Function,
    event: &Event,
    latency: Duration,
    limit: Duration,
) -> Result<Value, FunctionError> {
    let work = async {
        tokio::time::sleep(latency).await;
        match function {
            Function::Rules(rules) => Ok(answer(rules.iter().find(|r| r.token == event.token).map(|r| &r.answer))),
            Function::Command(cmd) => run_command(cmd, event).await,
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
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(cmd)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| FunctionError::Spawn(e.to_string()))?;
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
            let _ = s.take(MAX_OUTPUT).read_to_end(&mut out).await;
        }
    };
    let read_err = async {
        if let Some(s) = stderr {
            let _ = s.take(4096).read_to_end(&mut err).await;
        }
    };
    tokio::join!(read_out, read_err);
    let status = child.wait().await.map_err(|e| FunctionError::Spawn(e.to_string()))?;
    if !status.success() {
        return Err(FunctionError::Crashed {
            status: status.to_string(),
            stderr: String::from_utf8_lossy(&err).trim().chars().take(300).collect(),
        });
    }
    serde_json::from_slice(&out).map_err(|e| FunctionError::NotJson(e.to_string()))
}
