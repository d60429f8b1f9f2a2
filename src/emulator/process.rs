//! The authorizer function's processes: how a function fails ([`FunctionError`]), the process groups
//! of commands and handlers (killed whole on timeout and when the emulator stops), and what their
//! output may put in a log.

use std::time::Duration;
use tokio::process::Command;

/// Why the function gave no usable answer.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum FunctionError {
    #[error("no answer within the {0:?} time limit")]
    Timeout(Duration),
    /// Lambda's throttling (429, `TooManyRequestsException`): the function's concurrency is used up.
    #[error("throttled: {0} invocations already running (authorizer_concurrency)")]
    Throttled(usize),
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

/// The command's process group; dropping it kills the whole group. Every live group is also known
/// to [`kill_all_groups`], which the emulator calls when it is told to stop (SIGTERM, SIGINT,
/// SIGHUP), so that no handler or command outlives it.
pub(crate) struct Group(u32);

/// The process groups of the running commands and handlers.
static GROUPS: std::sync::Mutex<Vec<u32>> = std::sync::Mutex::new(Vec::new());

impl Group {
    pub(crate) fn new(pid: u32) -> Self {
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
pub(crate) fn die_with_parent(cmd: &mut Command) {
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
