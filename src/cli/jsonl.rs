//! `--format jsonl`: one JSON object per attempt as it ends, then one summary object, each stamped
//! with the time, the tool's version, the host name and `--label`, for the log pipelines a fleet
//! already runs (CloudWatch Logs agent, Fluent Bit, Vector, `jq`).

use crate::probe::{AttemptReport, AttemptSpec, Progress};
use crate::report::Report;
use serde_json::{Value, json};
use std::io::Write as _;

/// Writes the JSON Lines to stdout.
pub(crate) struct Lines {
    label: Option<String>,
    host: String,
    /// The run's secrets: every line is scrubbed with them (what a peer echoed included).
    secrets: crate::secret::Scrubber,
}

impl Lines {
    pub(crate) fn new(label: Option<String>, secrets: crate::secret::Scrubber) -> Self {
        Self { label, host: host_name(), secrets }
    }

    fn stamp(&self, kind: &str, mut v: Value) -> Value {
        if let Value::Object(m) = &mut v {
            m.insert("type".into(), kind.into());
            m.insert("timestamp".into(), now().into());
            m.insert("tool".into(), "authprobe".into());
            m.insert("version".into(), env!("CARGO_PKG_VERSION").into());
            m.insert("host".into(), self.host.clone().into());
            if let Some(l) = &self.label {
                m.insert("label".into(), l.clone().into());
            }
        }
        v
    }

    fn write(&self, v: &Value) -> std::io::Result<()> {
        let text = crate::secret::scrub_json_text(&serde_json::to_string(v)?, &self.secrets);
        let mut out = std::io::stdout().lock();
        writeln!(out, "{text}")?;
        out.flush()
    }

    /// The closing object: the run's findings, local checks and exit code.
    pub(crate) fn summary(&self, r: &Report) -> std::io::Result<()> {
        let mut v = json!({
            "endpoint": r.endpoint,
            "port": r.port,
            "attempts": r.attempts.len(),
            "warnings": r.warnings,
            "local_checks": r.local_checks,
            "findings": r.findings,
            "exit_code": r.exit_code,
        });
        if r.interrupted {
            v["interrupted"] = Value::Bool(true);
        }
        self.write(&self.stamp("summary", v))
    }
}

impl Progress for Lines {
    fn finished(&self, report: &AttemptReport) {
        let v = serde_json::to_value(report).unwrap_or(Value::Null);
        let _ = self.write(&self.stamp("attempt", v));
    }
}

/// Progress to several sinks (the live lines on stderr, the JSON Lines on stdout, the collector).
pub(crate) struct Fanout<'a>(pub Vec<&'a dyn Progress>);

impl Progress for Fanout<'_> {
    fn started(&self, spec: &AttemptSpec) {
        for p in &self.0 {
            p.started(spec);
        }
    }
    fn finished(&self, report: &AttemptReport) {
        for p in &self.0 {
            p.finished(report);
        }
    }
}

/// Keeps every finished attempt, for a partial report when the run is interrupted.
#[derive(Default)]
pub(crate) struct Collect(pub std::sync::Mutex<Vec<AttemptReport>>);

impl Progress for Collect {
    fn finished(&self, report: &AttemptReport) {
        if let Ok(mut v) = self.0.lock() {
            v.push(report.clone());
        }
    }
}

/// This machine's name, as `hostname` prints it.
fn host_name() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer it is given.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return String::new();
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

/// Now, as ISO 8601 with milliseconds (UTC).
fn now() -> String {
    let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let secs = crate::diagnosis::next::iso8601(d.as_secs());
    format!("{}.{:03}Z", secs.trim_end_matches('Z'), d.subsec_millis())
}
