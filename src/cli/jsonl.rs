//! `--format jsonl`: one JSON object per attempt as it ends, then one summary object, each stamped
//! with the time, the tool's version, the host name and `--label`, for the log pipelines a fleet
//! already runs (CloudWatch Logs agent, Fluent Bit, Vector, `jq`).

use crate::probe::{AttemptReport, AttemptSpec, Progress};
use crate::report::Report;
use serde_json::{Value, json};
use std::io::Write as _;

/// Writes the JSON Lines to stdout, or appends them to a file (`--output`).
pub(crate) struct Lines {
    label: Option<String>,
    host: String,
    /// The run's secrets: every line is scrubbed with them (what a peer echoed included).
    secrets: crate::secret::Scrubber,
    /// `--output FILE`: opened for appending; each line goes out in one write, so that runs
    /// appending to the same file never interleave inside a line.
    file: Option<std::sync::Mutex<std::fs::File>>,
}

impl Lines {
    pub(crate) fn new(label: Option<String>, secrets: crate::secret::Scrubber) -> Self {
        Self { label, host: host_name(), secrets, file: None }
    }

    /// The lines are appended to `path` (created if missing) instead of written to stdout.
    pub(crate) fn appending_to(mut self, path: &std::path::Path) -> anyhow::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| anyhow::anyhow!("--output {}: {e}", path.display()))?;
        self.file = Some(std::sync::Mutex::new(file));
        Ok(self)
    }

    fn stamp(&self, kind: &str, mut v: Value) -> Value {
        if let Value::Object(m) = &mut v {
            m.insert("schema".into(), crate::report::JSONL_SCHEMA.into());
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
        let mut line = crate::secret::scrub_json_text(&serde_json::to_string(v)?, &self.secrets);
        line.push('\n');
        match &self.file {
            Some(f) => {
                let mut f = f.lock().map_err(|_| std::io::Error::other("the output file's lock was poisoned"))?;
                f.write_all(line.as_bytes())
            }
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(line.as_bytes())?;
                out.flush()
            }
        }
    }

    /// One object per finding (`rank` 1 first), then the closing object: the verdict and first
    /// finding at the top level (for a log query), the run's findings, local checks and exit code.
    pub(crate) fn summary(&self, r: &Report) -> std::io::Result<()> {
        for (i, f) in r.findings.iter().enumerate() {
            let mut v = serde_json::to_value(f).unwrap_or(Value::Null);
            if let Value::Object(m) = &mut v {
                m.insert("rank".into(), (i + 1).into());
                m.insert("client_id".into(), r.client_id.clone().into());
                m.insert("endpoint".into(), r.endpoint.clone().into());
            }
            self.write(&self.stamp("finding", v))?;
        }
        let cause = r.cause();
        let (ok, expected) = r.expected_ok();
        let mut v = json!({
            "verdict": r.verdict,
            "cause": cause.map_or("none", |f| f.id.as_str()),
            "confidence": cause.map(|f| f.confidence),
            "endpoint": r.endpoint,
            "port": r.port,
            "client_id": r.client_id,
            "attempts": r.attempts.len(),
            "expected_ok": ok,
            "expected": expected,
            "warnings": r.warnings,
            "local_checks": r.local_checks,
            "findings": r.findings,
            "exit_code": r.exit_code,
        });
        if r.interrupted {
            v["interrupted"] = Value::Bool(true);
        }
        if let Some(ms) = r.jitter_ms {
            v["jitter_ms"] = ms.into();
        }
        if r.exit_zero {
            v["exit_zero"] = Value::Bool(true);
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
