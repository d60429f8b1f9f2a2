//! `authprobe storm` against the emulator with IoT Core's and Lambda's limits switched on: the tool's
//! counts equal the emulator's log, the limit that shaped the storm is named, a better reconnect policy
//! is measured to connect the fleet sooner, `--max-rate` holds, shards merge, and what must be refused
//! is refused with exit 2 before anything is sent.

use super::common::*;
use authprobe::emulator::{ConnectionRecord, Reason};
use std::collections::BTreeMap;
use std::time::Duration;

/// Runs `authprobe storm` (JSON) against `emu` with `extra` flags, off the async threads.
async fn storm(emu: &Emu, ca: &std::path::Path, extra: &[&str]) -> (Option<i32>, serde_json::Value, String) {
    let (connect_to, ca) = (emu.addr.to_string(), ca.to_str().unwrap().to_owned());
    let mut args: Vec<String> = [
        "storm",
        "--endpoint",
        "localhost",
        "--connect-to",
        &connect_to,
        "--ca",
        &ca,
        "--authorizer",
        AUTH,
        "--token",
        GOOD,
        "--format",
        "json",
        "--seed",
        "7",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = tokio::task::spawn_blocking(move || authprobe_bin(&args.iter().map(String::as_str).collect::<Vec<_>>()))
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let report = serde_json::from_str(&stdout).unwrap_or(serde_json::Value::Null);
    (out.status.code(), report, String::from_utf8_lossy(&out.stderr).into_owned() + &stdout)
}

/// The emulator's records of a storm: one per connection that reached it.
async fn records(emu: &mut Emu, n: u64) -> Vec<ConnectionRecord> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(emu.record().await);
    }
    out
}

fn count(recs: &[ConnectionRecord], reason: Reason) -> u64 {
    recs.iter().filter(|r| r.reason == reason).count() as u64
}

fn outcome(report: &serde_json::Value, label: &str) -> u64 {
    report["outcomes"][label].as_u64().unwrap_or(0)
}

async fn emulator(
    tune: impl FnOnce(&mut authprobe::emulator::EmulatorConfig),
) -> (Emu, tempfile::TempDir, std::path::PathBuf) {
    let mut cfg = config();
    cfg.show_secrets = false;
    cfg.authorizers.push(allowing(AUTH));
    tune(&mut cfg);
    let emu = start(cfg).await;
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &emu.ca_pem).unwrap();
    (emu, dir, ca)
}

/// A small authorizer concurrency: the refusals are throttled invocations, as the emulator's log says
/// attempt for attempt; over MQTT 5 (no 0x9F) the finding names the concurrency; the timeline shows the
/// refusals; no token is in the report.
#[tokio::test(flavor = "multi_thread")]
async fn a_storm_against_a_small_authorizer_concurrency_is_shaped_by_it() {
    let (mut emu, _dir, ca) = emulator(|c| {
        c.limits.authorizer_concurrency = Some(8);
        c.latency = Duration::from_millis(50);
    })
    .await;
    let flags = ["--devices", "200", "--mqtt-version", "5", "--min-delay", "300ms", "--max-delay", "1s"];
    let (code, r, all) = storm(&emu, &ca, &flags).await;
    assert_eq!(code, Some(0), "{all}");
    assert_eq!(r["schema"], "authprobe.storm/1");
    assert_eq!(r["connected"], 200, "{all}");
    let recs = records(&mut emu, r["attempted"].as_u64().unwrap()).await;
    assert_eq!(count(&recs, Reason::Accepted), 200);
    let throttled = count(&recs, Reason::FunctionThrottled);
    assert!(throttled > 0, "the concurrency was reached: {all}");
    // The emulator refuses a failing authorizer over MQTT 5 with 0x87: the tool counted each one.
    assert_eq!(outcome(&r, "connack_refused:0x87"), throttled, "{}", r["outcomes"]);
    assert_eq!(r["accepted"], 200);
    assert_eq!(r["refused"].as_u64(), Some(throttled));
    assert_eq!(r["shaped_by"][0]["limit"], "authorizer_concurrency", "{}", r["shaped_by"]);
    let timeline = r["timeline"].as_array().unwrap();
    let sum = |k: &str| timeline.iter().map(|s| s[k].as_u64().unwrap()).sum::<u64>();
    assert_eq!((sum("accepted"), sum("refused")), (200, throttled));
    assert!(r["time_to_connected_ms"]["p100"].as_u64().unwrap() >= r["time_to_connected_ms"]["p50"].as_u64().unwrap());
    assert!(!all.contains(GOOD), "the token is a secret");
}

/// The account's connect rate over MQTT 3.1.1 (a close, as for a failing authorizer) is named as open
/// between the two, with the test that splits them; over MQTT 5 (CONNACK 0x9F) it is named outright.
/// The counts equal the emulator's.
#[tokio::test(flavor = "multi_thread")]
async fn the_accounts_connect_rate_is_named_by_its_answer_or_left_open() {
    let (mut emu, _dir, ca) = emulator(|c| c.limits.connect_rate = Some(60)).await;
    let flags = ["--devices", "150", "--min-delay", "500ms", "--max-delay", "2s"];
    let (code, r, all) = storm(&emu, &ca, &[&flags[..], &["--mqtt-version", "5"]].concat()).await;
    assert_eq!(code, Some(0), "{all}");
    let recs = records(&mut emu, r["attempted"].as_u64().unwrap()).await;
    let over = count(&recs, Reason::AccountRateExceeded);
    assert!(over > 0, "{all}");
    assert_eq!(outcome(&r, "connack_refused:0x9f"), over);
    assert_eq!(r["shaped_by"][0]["limit"], "account_connect_rate", "{}", r["shaped_by"]);
    assert_eq!(r["shaped_by"][0]["confidence"], "confirmed");

    let (code, r, all) = storm(&emu, &ca, &flags).await;
    assert_eq!(code, Some(0), "{all}");
    let recs = records(&mut emu, r["attempted"].as_u64().unwrap()).await;
    assert_eq!(outcome(&r, "closed_before_connack"), count(&recs, Reason::AccountRateExceeded));
    let shape = &r["shaped_by"][0];
    assert_eq!(shape["limit"], "authorizer_concurrency_or_connect_rate", "{}", r["shaped_by"]);
    assert_eq!(shape["confidence"], "possible");
    assert!(shape["summary"].as_str().unwrap().contains("--mqtt-version 5"), "{shape}");
}

/// Full jitter connects the fleet sooner than none against the same concurrency: with no jitter every
/// refused device retries at the same moment and most are refused again.
#[tokio::test(flavor = "multi_thread")]
async fn full_jitter_connects_the_fleet_sooner_than_none() {
    let (_emu, _dir, ca) = emulator(|c| {
        c.limits.authorizer_concurrency = Some(10);
        c.latency = Duration::from_millis(100);
    })
    .await;
    let emu = &_emu;
    let flags = ["--devices", "150", "--min-delay", "300ms", "--max-delay", "600ms", "--duration", "40s"];
    let mut took = BTreeMap::new();
    for jitter in ["none", "full"] {
        let (code, r, all) = storm(emu, &ca, &[&flags[..], &["--jitter", jitter]].concat()).await;
        assert_eq!(code, Some(0), "{jitter}: {all}");
        took.insert(jitter, r["time_to_connected_ms"]["p100"].as_u64().unwrap());
    }
    assert!(took["full"] < took["none"], "full jitter {} ms, none {} ms", took["full"], took["none"]);
}

/// `--max-rate R`: no second holds more than R connect starts (one more at a boundary), and the
/// emulator saw every one of them.
#[tokio::test(flavor = "multi_thread")]
async fn max_rate_holds() {
    let (mut emu, _dir, ca) = emulator(|_| {}).await;
    let (code, r, all) = storm(&emu, &ca, &["--devices", "90", "--max-rate", "40", "--hold", "0"]).await;
    assert_eq!(code, Some(0), "{all}");
    let starts: Vec<u64> = r["raw"]["attempts"].as_array().unwrap().iter().map(|a| a[1].as_u64().unwrap()).collect();
    assert_eq!(starts.len(), 90);
    for (i, s) in starts.iter().enumerate() {
        let in_window = starts[i..].iter().take_while(|t| **t < s + 1000).count();
        assert!(in_window <= 41, "{in_window} connects started within 1 s of {s} ms");
    }
    // 90 connects 25 ms apart: the last starts about 2.2 s in.
    assert!(*starts.last().unwrap() >= 2_100, "{starts:?}");
    assert_eq!(records(&mut emu, 90).await.iter().filter(|r| r.accepted).count(), 90);
}

/// Two shards run as a runner would start them, then merge: one report of all devices.
#[tokio::test(flavor = "multi_thread")]
async fn shards_merge_into_one_report() {
    let (emu, dir, ca) = emulator(|_| {}).await;
    let mut files = Vec::new();
    for k in ["1/2", "2/2"] {
        let out = dir.path().join(format!("shard-{}.json", &k[..1]));
        let (code, r, all) =
            storm(&emu, &ca, &["--devices", "30", "--shard", k, "--hold", "0", "--output", out.to_str().unwrap()])
                .await;
        assert_eq!(code, Some(0), "{all}");
        assert_eq!(r["setup"]["devices"], 15);
        files.push(out.to_str().unwrap().to_owned());
    }
    let mut args = vec!["storm", "--merge"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["--format", "json"]);
    let out = authprobe_bin(&args);
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    let merged: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((merged["setup"]["devices"].as_u64(), merged["connected"].as_u64()), (Some(30), Some(30)));
    assert_eq!(merged["setup"]["shards"], serde_json::json!([[1, 2], [2, 2]]));
    assert_eq!(merged["ended"], "merged");
    let devices: std::collections::BTreeSet<u64> =
        merged["raw"]["attempts"].as_array().unwrap().iter().map(|a| a[0].as_u64().unwrap()).collect();
    assert_eq!(devices.len(), 30, "every device once: {devices:?}");
}

/// Off loopback without `--max-rate`, above the cap without `--allow-high-rate`, a bad identities
/// line, no devices: exit 2, the reason named, nothing sent (the target is a documentation address).
#[test]
fn what_is_not_safe_or_not_valid_is_refused_before_anything_is_sent() {
    let base = ["storm", "--endpoint", "abc123-ats.iot.eu-west-1.amazonaws.com", "--connect-to", "192.0.2.1:443"];
    let run = |extra: &[&str]| {
        let out = authprobe_bin(&[&base[..], extra].concat());
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (code, err) = run(&["--devices", "10", "--token", "t"]);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("needs --max-rate"), "{err}");
    let (code, err) = run(&["--devices", "10", "--token", "t", "--max-rate", "500"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--allow-high-rate"), "{err}");
    let (code, err) = run(&["--max-rate", "5"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("--devices N with --token"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let ids = dir.path().join("ids.jsonl");
    std::fs::write(
        &ids,
        "{\"client_id\": \"a\", \"token\": \"secret-one\"}\n{\"client_id\": \"b\", \"tokn\": \"secret-two\"}\n",
    )
    .unwrap();
    let (code, err) = run(&["--identities", ids.to_str().unwrap(), "--max-rate", "5"]);
    assert_eq!(code, Some(2));
    assert!(err.contains("line 2") && !err.contains("secret-two"), "{err}");
    for bad in [["--shard", "3/2"], ["--until-connected", "0"], ["--min-delay", "40s"]] {
        let (code, err) = run(&[&["--devices", "3", "--token", "t", "--max-rate", "5"][..], &bad[..]].concat());
        assert_eq!(code, Some(2), "{bad:?}: {err}");
    }
}

/// The limits hold for the user's unmodified handler behind the Runtime API too (the Python example
/// under `awslambdaric`, two workers, concurrency 2): invocations beyond it are throttled, and the
/// storm's counts equal the emulator's log.
#[tokio::test(flavor = "multi_thread")]
async fn a_real_handler_is_throttled_at_its_concurrency() {
    let Some(command) = super::lambda_runtime::python_command() else { return };
    let (mut emu, _dir, ca) = emulator(|c| {
        let mut a = authprobe::emulator::Authorizer::new(AUTH, "token");
        a.function = authprobe::emulator::Function::Handler(authprobe::emulator::Handler::new(&command, 2));
        c.authorizers = vec![a];
        c.limits.authorizer_concurrency = Some(2);
        c.latency = Duration::from_millis(30);
    })
    .await;
    // The example handler allows `allow-me` (the helper's --token comes first; this one wins).
    let flags = ["--devices", "30", "--token", "allow-me", "--mqtt-version", "5", "--max-delay", "1s"];
    let (code, r, all) = storm(&emu, &ca, &flags).await;
    assert_eq!(code, Some(0), "{all}");
    let recs = records(&mut emu, r["attempted"].as_u64().unwrap()).await;
    assert_eq!(count(&recs, Reason::Accepted), 30, "{all}");
    let throttled = count(&recs, Reason::FunctionThrottled);
    assert!(throttled > 0, "{all}");
    assert_eq!(outcome(&r, "connack_refused:0x87"), throttled);
}

/// Over MQTT over WebSockets (credentials in the upgrade's headers, the documented form), every
/// device connects and the emulator saw each as wss.
#[tokio::test(flavor = "multi_thread")]
async fn a_storm_over_websockets() {
    let (mut emu, _dir, ca) = emulator(|_| {}).await;
    let (code, r, all) = storm(&emu, &ca, &["--devices", "20", "--transport", "wss", "--hold", "0"]).await;
    assert_eq!(code, Some(0), "{all}");
    assert_eq!((r["connected"].as_u64(), r["setup"]["transport"].as_str()), (Some(20), Some("wss")));
    let recs = records(&mut emu, 20).await;
    assert!(recs.iter().all(|r| r.accepted && r.transport == Some(authprobe::auth::event::Transport::Wss)), "{recs:?}");
    assert!(
        recs.iter()
            .all(|r| r.credentials.iter().any(|c| c.placement == authprobe::auth::credentials::Placement::Header))
    );
}

/// Ctrl-C stops the storm at once and reports what ran: a fleet the authorizer refuses (a wrong
/// token) is retried until SIGINT; the report says `interrupted`, names the refusals as not the
/// load's, and the exit code is 1 (the share did not connect).
#[tokio::test(flavor = "multi_thread")]
async fn ctrl_c_reports_what_ran() {
    let (mut emu, _dir, ca) = emulator(|_| {}).await;
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_authprobe"))
        .args(["storm", "--endpoint", "localhost", "--connect-to", &emu.addr.to_string(), "--ca"])
        .arg(&ca)
        .args(["--authorizer", AUTH, "--token", "wrong-token", "--devices", "5", "--min-delay", "100ms"])
        .args(["--max-delay", "200ms", "--duration", "60s", "--format", "json"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Once the emulator has refused a few, interrupt.
    for _ in 0..10 {
        assert_eq!(emu.record().await.reason, Reason::Denied);
    }
    let started = std::time::Instant::now();
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(child.id() as i32, libc::SIGINT);
    }
    let out = tokio::task::spawn_blocking(move || child.wait_with_output()).await.unwrap().unwrap();
    assert!(started.elapsed() < Duration::from_secs(10), "stopped at once");
    assert_eq!(out.status.code(), Some(1));
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["ended"], "interrupted");
    assert_eq!(r["connected"], 0);
    assert!(r["attempted"].as_u64().unwrap() >= 10, "{r}");
    assert_eq!(r["shaped_by"][0]["limit"], "not_load", "{}", r["shaped_by"]);
    // Every attempt it counted the emulator logged (one cut off mid-way, counted `interrupted`, may
    // have been denied there, or closed in its handshake or before its CONNECT).
    let rest = records(&mut emu, r["attempted"].as_u64().unwrap() - 10).await;
    assert!(!rest.iter().any(|r| r.accepted), "{rest:?}");
    let denied = count(&rest, Reason::Denied) + 10;
    assert!(outcome(&r, "closed_before_connack") <= denied, "{}", r["outcomes"]);
}
