//! Benchmark: `authprobe summarize` over 1,000,000 JSON Lines records, side by side with `jq` doing
//! the same grouping (runs by verdict, by first finding and by label) in one run.
//!
//! The records are what `probe --format jsonl` writes for a fleet: per run, its attempt records,
//! its finding records and its summary (taken from a real run against the emulator's shapes, with
//! labels, client IDs, verdicts and causes varied). Both tools read the same file from the page
//! cache (one warm-up read first); wall time and peak RSS (`wait4`'s `ru_maxrss`) are the medians of
//! `--rounds` interleaved runs.
//!
//! Run: `cargo run --release --example bench_summarize -- [--records N] [--rounds R]` (needs `jq`).

use std::io::Write as _;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CAUSES: [&str; 5] = ["none", "token_key_name_wrong", "authorizer_denied", "port_blocked", "tls_intercepted"];

fn main() {
    let mut records = 1_000_000usize;
    let mut rounds = 3usize;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--records" => records = args.next().and_then(|v| v.parse().ok()).expect("--records N"),
            "--rounds" => rounds = args.next().and_then(|v| v.parse().ok()).expect("--rounds R"),
            other => panic!("unknown argument {other}"),
        }
    }
    let bin = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/release/authprobe");
    assert!(bin.exists(), "build it first: cargo build --release");
    let dir = tempfile::tempdir().expect("a scratch folder");
    let file = dir.path().join("fleet.jsonl");
    let (bytes, runs) = write_records(&file, records);
    println!("{records} records ({runs} runs), {:.1} MB; {rounds} interleaved rounds", bytes as f64 / 1e6);
    let jq_program = r#"reduce (inputs | select(.type == "summary")) as $r ({runs: 0};
        .runs += 1 | .verdicts[$r.verdict] += 1 | .causes[$r.cause] += 1 | .by[$r.label // "(none)"] += 1)"#;
    let ours = |file: &std::path::Path| {
        let mut c = Command::new(&bin);
        c.args(["summarize", "--by", "label", "--format", "json"]).arg(file);
        c
    };
    let theirs = |file: &std::path::Path| {
        let mut c = Command::new("jq");
        c.args(["-n", jq_program]).arg(file);
        c
    };
    // Same answer first (runs and verdict counts).
    let a: serde_json::Value = serde_json::from_slice(&ours(&file).output().expect("summarize").stdout).unwrap();
    let b: serde_json::Value = serde_json::from_slice(&theirs(&file).output().expect("jq").stdout).unwrap();
    assert_eq!(a["runs"], b["runs"], "the two disagree on the runs");
    assert_eq!(a["verdicts"], b["verdicts"], "the two disagree on the verdicts");
    let (mut t_ours, mut t_jq, mut rss_ours, mut rss_jq) = (vec![], vec![], vec![], vec![]);
    for _ in 0..rounds {
        let (t, rss) = measure(ours(&file));
        t_ours.push(t);
        rss_ours.push(rss);
        let (t, rss) = measure(theirs(&file));
        t_jq.push(t);
        rss_jq.push(rss);
    }
    let (to, tj) = (median(&mut t_ours), median(&mut t_jq));
    let (ro, rj) = (median(&mut rss_ours), median(&mut rss_jq));
    println!("tool          wall (median)   peak RSS");
    println!("summarize     {:>10.3} s   {:>7.1} MiB", to.as_secs_f64(), ro as f64 / 1024.0);
    println!("jq            {:>10.3} s   {:>7.1} MiB", tj.as_secs_f64(), rj as f64 / 1024.0);
    println!("summarize is {:.1}x jq's speed", tj.as_secs_f64() / to.as_secs_f64());
}

/// Writes `n` records: per run 3 attempts, 0–2 findings and a summary. Returns (bytes, runs).
fn write_records(path: &std::path::Path, n: usize) -> (u64, usize) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let (mut written, mut runs, mut i) = (0u64, 0usize, 0usize);
    let stamp = r#""schema":"authprobe.jsonl/1","timestamp":"2026-12-02T10:00:00.000Z","tool":"authprobe","version":"0.1.0","host":"gw""#;
    while i < n {
        let run = runs;
        runs += 1;
        let label = format!("site-{}", run % 97);
        let cause = CAUSES[run % CAUSES.len()];
        let verdict = if cause == "none" { "pass" } else { "fail" };
        let mut lines = Vec::new();
        for t in ["mqtt", "wss", "https"] {
            lines.push(format!(
                r#"{{{stamp},"type":"attempt","label":"{label}","id":"{t}","transport":"{t}","expect":"pass","succeeded":{},"sent":{{"address":"203.0.113.7:443","sni":"abc123-ats.iot.us-east-1.amazonaws.com","alpn_offered":["mqtt"],"client_id":"dev-{run}","credentials":[{{"parameter":"token","placement":"username","value":"<redacted len=12 sha256=1f2e3d4c>"}}]}},"stages":[{{"stage":"resolve","ms":1}},{{"stage":"tcp","ms":12}},{{"stage":"tls","ms":48}},{{"stage":"mqtt","ms":61}}],"outcome":{{"stage":"mqtt","kind":"closed_before_connack","success":false,"detail":{{"how":"eof","after_ms":60}}}}}}"#,
                verdict == "pass"
            ));
        }
        if cause != "none" {
            lines.push(format!(
                r#"{{{stamp},"type":"finding","label":"{label}","rank":1,"client_id":"dev-{run}","endpoint":"abc123-ats.iot.us-east-1.amazonaws.com","id":"{cause}","kind":"cause","confidence":"likely","summary":"the server closed the connection after CONNECT","evidence":[{{"attempt":"mqtt","outcome":"mqtt/closed_before_connack"}}],"fix":"send the token under the authorizer's token key name","next":["aws iot describe-authorizer --authorizer-name <NAME>"],"see":{{"step":"application: token key name","url":"https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth-troubleshooting.html"}}}}"#
            ));
        }
        lines.push(format!(
            r#"{{{stamp},"type":"summary","label":"{label}","verdict":"{verdict}","cause":"{cause}","confidence":"likely","endpoint":"abc123-ats.iot.us-east-1.amazonaws.com","port":443,"client_id":"dev-{run}","attempts":3,"expected_ok":0,"expected":3,"warnings":[],"local_checks":[],"findings":[],"exit_code":{}}}"#,
            if verdict == "pass" { 0 } else { 1 }
        ));
        for l in lines {
            if i == n {
                break;
            }
            writeln!(out, "{l}").expect("write");
            written += l.len() as u64 + 1;
            i += 1;
        }
    }
    out.flush().expect("flush");
    (written, runs)
}

/// Wall time and peak RSS (KiB) of one run of `cmd`, its output discarded.
// The child is reaped by `wait4` (which also reports its peak RSS), not by `Child::wait`.
#[allow(clippy::zombie_processes)]
fn measure(mut cmd: Command) -> (Duration, u64) {
    let started = Instant::now();
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("spawn");
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to fill.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: waits for our own child, writing into the two locals.
    let pid = unsafe { libc::wait4(child.id() as libc::pid_t, &mut status, 0, &mut usage) };
    assert!(pid > 0, "wait4 failed");
    (started.elapsed(), usage.ru_maxrss as u64)
}

fn median<T: Copy + Ord>(v: &mut [T]) -> T {
    v.sort();
    v[v.len() / 2]
}
