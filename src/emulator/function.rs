//! Running the authorizer function: a rule from the config, an external command that reads the event
//! on stdin and prints the response, or the user's Lambda handler behind the Runtime API
//! (`runtime_api`), under IoT Core's time limit.

use super::config::EmulatorConfig;
use super::config::{Answer, Authorizer, Function};
pub(crate) use super::process::FunctionError;
use super::process::{Group, die_with_parent, printable};
use super::runtime_api::Host;
use crate::auth::event::Event;
use serde_json::{Value, json};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::process::Command;

/// Largest response read from a command.
const MAX_OUTPUT: u64 = 1024 * 1024;

/// The authorizers' functions as they run: the handler hosts this emulator started (by authorizer
/// name), and the invocation count `fail_every` reads. Built when the emulator starts, from plain
/// configuration.
pub(crate) struct Functions {
    hosts: Vec<(String, Arc<Host>)>,
    /// Invocations so far, for `fail_every`.
    pub(crate) invocations: AtomicU64,
    /// Per authorizer: invocations running now, and the execution environments made so far (the
    /// most ever running at once), for `authorizer_concurrency` and `cold_start`.
    concurrency: std::sync::Mutex<std::collections::HashMap<String, Environments>>,
}

#[derive(Default)]
struct Environments {
    running: usize,
    made: usize,
}

/// One running invocation's place in its function's concurrency; dropping it frees the place.
struct Slot<'a> {
    functions: &'a Functions,
    name: &'a str,
    /// It runs in an environment made for it: a cold start.
    cold: bool,
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        if let Ok(mut map) = self.functions.concurrency.lock() {
            if let Some(e) = map.get_mut(self.name) {
                e.running = e.running.saturating_sub(1);
            }
        }
    }
}

impl Functions {
    /// A host for each authorizer whose function is a handler, named with the emulator's ARNs.
    pub(crate) fn new(cfg: &EmulatorConfig) -> Self {
        let hosts = cfg
            .authorizers
            .iter()
            .filter_map(|a| match &a.function {
                Function::Handler(h) => {
                    let host = Host::new(&h.command, h.workers);
                    host.set_arn(cfg.arns.lambda_function(&a.name));
                    Some((a.name.clone(), Arc::new(host)))
                }
                _ => None,
            })
            .collect();
        Self { hosts, invocations: AtomicU64::new(0), concurrency: Default::default() }
    }

    /// A place for one invocation of `name`'s function, or `None` when `limit` invocations already
    /// run (Lambda throttles it).
    fn slot<'a>(&'a self, name: &'a str, limit: Option<usize>) -> Option<Slot<'a>> {
        let mut map = self.concurrency.lock().ok()?;
        let e = map.entry(name.to_owned()).or_default();
        if limit.is_some_and(|l| e.running >= l) {
            return None;
        }
        e.running += 1;
        let cold = e.running > e.made;
        e.made = e.made.max(e.running);
        Some(Slot { functions: self, name, cold })
    }

    /// Starts every handler's workers, so that the first connection finds them warm.
    pub(crate) async fn warm(&self) {
        for (_, h) in &self.hosts {
            h.start().await;
        }
    }

    /// Stops every handler (their process groups are killed).
    pub(crate) fn shutdown(&self) {
        for (_, h) in &self.hosts {
            h.shutdown();
        }
    }

    /// Invokes `authorizer`'s function with `event`, after `latency`, all within `limit`; throttled
    /// beyond `concurrency`, and `cold_start` later in each new execution environment.
    pub(crate) async fn invoke(
        &self,
        authorizer: &Authorizer,
        event: &Event,
        secrets: &crate::secret::Scrubber,
        latency: Duration,
        limit: Duration,
        (concurrency, cold_start): (Option<usize>, Duration),
    ) -> Result<Value, FunctionError> {
        let Some(slot) = self.slot(&authorizer.name, concurrency) else {
            return Err(FunctionError::Throttled(concurrency.unwrap_or(0)));
        };
        let latency = if slot.cold { latency + cold_start } else { latency };
        let result = self.run(authorizer, event, secrets, latency, limit).await;
        drop(slot);
        result
    }

    async fn run(
        &self,
        authorizer: &Authorizer,
        event: &Event,
        secrets: &crate::secret::Scrubber,
        latency: Duration,
        limit: Duration,
    ) -> Result<Value, FunctionError> {
        if let Function::Handler(_) = &authorizer.function {
            let Some((_, host)) = self.hosts.iter().find(|(n, _)| *n == authorizer.name) else {
                return Err(FunctionError::Spawn(format!("no handler was started for `{}`", authorizer.name)));
            };
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
            match &authorizer.function {
                Function::Rules(rules) => {
                    Ok(answer(rules.iter().find(|r| r.token.expose() == event.token).map(|r| &r.answer)))
                }
                Function::Command(cmd) => run_command(cmd, event).await,
                Function::Handler(_) => unreachable!("handled above"),
            }
        };
        tokio::time::timeout(limit, work).await.unwrap_or(Err(FunctionError::Timeout(limit)))
    }
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
