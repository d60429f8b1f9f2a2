//! A fleet's probes: outputs for collectors (`--output`, `--summary-line`, `--exit-zero`,
//! `--jitter`), every JSON output validated against docs/schema/ with a real validator (Python's
//! jsonschema), and `summarize` counting exactly what was injected.

use super::common::*;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The Python with jsonschema and PyYAML (.ci/run installs them in .venv).
pub fn python() -> PathBuf {
    std::env::var_os("AUTHPROBE_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"))
}

/// Validates each document against `docs/schema/<schema>.schema.json` (the other schema files
/// registered for `$ref`s), with Python's jsonschema; panics naming every violation.
pub fn validate(schema: &str, docs: &[serde_json::Value]) {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("docs.json");
    std::fs::write(&input, serde_json::to_vec(docs).unwrap()).unwrap();
    let script = r#"
import json, sys, pathlib
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
schemas = {p.name: json.loads(p.read_text()) for p in pathlib.Path(sys.argv[1]).glob("*.schema.json")}
registry = Registry().with_resources([(s["$id"], Resource.from_contents(s)) for s in schemas.values()])
validator = Draft202012Validator(schemas[sys.argv[2] + ".schema.json"], registry=registry)
Draft202012Validator.check_schema(schemas[sys.argv[2] + ".schema.json"])
bad = 0
for i, doc in enumerate(json.load(open(sys.argv[3]))):
    for e in validator.iter_errors(doc):
        bad += 1
        print(f"document {i}: {'/'.join(map(str, e.absolute_path))}: {e.message[:300]}")
print(f"validated {i + 1} documents, {bad} violations")
sys.exit(1 if bad else 0)
"#;
    let schemas = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/schema");
    let out = Command::new(python())
        .args(["-c", script])
        .arg(&schemas)
        .arg(schema)
        .arg(&input)
        .output()
        .expect("python with jsonschema (.ci/run installs it in .venv; AUTHPROBE_PYTHON)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{schema}: {text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains(&format!("validated {} documents, 0 violations", docs.len())), "{text}");
}

/// The faults injected, by run number: (verdict, first finding).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Fault {
    None,
    Denied,
    PortClosed,
    OtherCa,
}

impl Fault {
    fn of(i: usize) -> Self {
        match i % 5 {
            0 | 1 => Self::None,
            2 => Self::Denied,
            3 => Self::PortClosed,
            _ => Self::OtherCa,
        }
    }
    fn expected(self) -> (&'static str, &'static str) {
        match self {
            Self::None => ("pass", "none"),
            Self::Denied => ("fail", "refused_unexplained"),
            Self::PortClosed => ("fail", "port_blocked"),
            Self::OtherCa => ("fail", "unreachable_unexplained"),
        }
    }
}

/// 50 probes with 3 labels and 4 faults write into one folder (JSON Lines appended by concurrent
/// runs, some whole JSON reports, one file then gzip-compressed); `summarize` reports exactly the
/// counts injected, and every record is valid against the schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_probes_summarize_to_the_counts_injected() {
    let (emu, scratch, ca) = allowing_emulator_with_ca().await;
    let other = start(config()).await;
    let other_ca = scratch.path().join("other-ca.pem");
    std::fs::write(&other_ca, &other.ca_pem).unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let out = tempfile::tempdir().unwrap();
    let runs: Vec<usize> = (0..50).collect();
    let run = |i: usize| {
        let fault = Fault::of(i);
        let label = format!("site-{}", i % 3);
        let addr = if fault == Fault::PortClosed { closed.to_string() } else { emu.addr.to_string() };
        let mut c = Command::new(env!("CARGO_BIN_EXE_authprobe"));
        c.env_clear().args(["probe", "--endpoint", ENDPOINT, "--connect-to", &addr, "--ca"]);
        c.arg(if fault == Fault::OtherCa { &other_ca } else { &ca });
        let token = if fault == Fault::Denied { "denied-token" } else { GOOD };
        c.args(["--authorizer", AUTH, "--token", token, "--transport", "mqtt", "--matrix", "none", "-q"]);
        c.args(["--client-id", &format!("dev-{i}"), "--label", &label, "--summary-line", "--exit-zero"]);
        if i % 10 == 9 {
            c.args(["--format", "json", "--output"]).arg(out.path().join(format!("run-{i}.json")));
        } else {
            c.args(["--format", "jsonl", "--output"]).arg(out.path().join(format!("{label}.jsonl")));
        }
        let o = c.output().unwrap();
        let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
        assert_eq!(o.status.code(), Some(0), "run {i} ({fault:?}): --exit-zero\n{stdout}");
        let (verdict, cause) = fault.expected();
        let want = format!("authprobe verdict={verdict} cause={cause} ");
        assert_eq!(stdout.lines().count(), 1, "only the summary line on stdout with --output: {stdout}");
        assert!(stdout.starts_with(&want) && stdout.contains(&format!(" label={label} exit=0")), "run {i}: {stdout}");
    };
    // Five runners at once, ten runs each: appends to one file from several processes.
    std::thread::scope(|s| {
        for chunk in runs.chunks(10) {
            s.spawn(|| chunk.iter().for_each(|i| run(*i)));
        }
    });
    // One label's file, gzip-compressed as a log shipper would leave it.
    let plain = out.path().join("site-2.jsonl");
    let mut gz = flate2::write::GzEncoder::new(
        std::fs::File::create(out.path().join("site-2.jsonl.gz")).unwrap(),
        flate2::Compression::default(),
    );
    gz.write_all(&std::fs::read(&plain).unwrap()).unwrap();
    gz.finish().unwrap();
    std::fs::remove_file(&plain).unwrap();

    let s = authprobe_bin(&["summarize", out.path().to_str().unwrap(), "--by", "label", "--format", "json"]);
    assert!(s.status.success(), "{}", String::from_utf8_lossy(&s.stderr));
    let got: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap();
    let count = |f: &dyn Fn(usize) -> bool| runs.iter().filter(|i| f(**i)).count() as u64;
    assert_eq!(got["runs"], 50, "{got:#}");
    assert_eq!(got["bad_lines"], 0, "{got:#}");
    for verdict in ["pass", "fail"] {
        assert_eq!(got["verdicts"][verdict], count(&|i| Fault::of(i).expected().0 == verdict), "{verdict}: {got:#}");
    }
    for cause in ["none", "refused_unexplained", "port_blocked", "unreachable_unexplained"] {
        assert_eq!(got["causes"][cause], count(&|i| Fault::of(i).expected().1 == cause), "{cause}: {got:#}");
    }
    for site in 0..3 {
        let g = &got["groups"][format!("site-{site}")];
        assert_eq!(g["runs"], count(&|i| i % 3 == site), "site-{site}: {got:#}");
        assert_eq!(
            g["verdicts"]["fail"].as_u64().unwrap_or(0),
            count(&|i| i % 3 == site && Fault::of(i).expected().0 == "fail"),
            "site-{site}: {got:#}"
        );
    }
    assert_eq!(got["client_ids"]["port_blocked"].as_array().unwrap().len(), 5, "{got:#}");

    // Every record written is valid against the schema.
    let mut lines = Vec::new();
    let mut reports = Vec::new();
    for entry in std::fs::read_dir(out.path()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.ends_with(".jsonl") {
            let text = std::fs::read_to_string(&path).unwrap();
            lines.extend(text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()));
        } else if name.ends_with(".json") {
            reports.push(serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap());
        }
    }
    assert_eq!(reports.len(), 5);
    assert!(lines.iter().filter(|l| l["type"] == "summary").count() >= 25, "{}", lines.len());
    validate("jsonl", &lines);
    validate("report", &reports);
    drop(other);
}

/// The packaging folder, as files.
fn packaging(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging").join(path)
}

/// The Greengrass recipe (read with PyYAML, as YAML, not as text): a manifest per architecture
/// (amd64, aarch64, arm with armv7l) naming its own static binary; each Run script, with the
/// Greengrass placeholders substituted as the nucleus does, runs against the emulator through
/// `sh -c` and appends schema-valid JSON Lines under the logs folder, prints the summary line and
/// exits 0 although the device is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_greengrass_recipe_runs_on_each_architecture() {
    let (emu, scratch, ca) = allowing_emulator_with_ca().await;
    let recipe = Command::new(python())
        .args(["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"])
        .arg(packaging("greengrass/recipe.yaml"))
        .output()
        .unwrap();
    assert!(recipe.status.success(), "{}", String::from_utf8_lossy(&recipe.stderr));
    let recipe: serde_json::Value = serde_json::from_slice(&recipe.stdout).unwrap();
    assert_eq!(recipe["RecipeFormatVersion"], "2020-01-25");
    let defaults = &recipe["ComponentConfiguration"]["DefaultConfiguration"];
    let manifests = recipe["Manifests"].as_array().unwrap();
    let platforms: Vec<(String, String)> = manifests
        .iter()
        .map(|m| {
            let p = &m["Platform"];
            (p["architecture"].as_str().unwrap().to_owned(), p["architecture.detail"].as_str().unwrap_or("").to_owned())
        })
        .collect();
    assert_eq!(
        platforms,
        [("amd64".into(), "".into()), ("aarch64".into(), "".into()), ("arm".into(), "armv7l".into())]
    );
    let root = scratch.path().join("greengrass");
    let artifacts = scratch.path().join("artifacts");
    std::fs::create_dir_all(root.join("logs")).unwrap();
    std::fs::create_dir_all(&artifacts).unwrap();
    std::fs::write(scratch.path().join("token"), "denied-token").unwrap();
    for (m, binary) in
        manifests.iter().zip(["authprobe-x86_64-linux", "authprobe-aarch64-linux", "authprobe-armv7-linux"])
    {
        let uri = m["Artifacts"][0]["URI"].as_str().unwrap();
        assert!(uri.ends_with(&format!("/{binary}")), "{uri}");
        // This machine's build stands in for each architecture's static binary.
        let _ = std::fs::remove_file(artifacts.join(binary));
        std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_authprobe"), artifacts.join(binary)).unwrap();
        let config = |key: &str| -> String {
            match key {
                "Endpoint" => ENDPOINT.into(),
                "Authorizer" => AUTH.into(),
                "TokenFile" => scratch.path().join("token").display().to_string(),
                "Jitter" => "100ms".into(),
                "ExtraArgs" => format!("--connect-to {} --ca {}", emu.addr, ca.display()),
                k => defaults[k].as_str().unwrap_or_else(|| panic!("no default for {k}")).to_owned(),
            }
        };
        let install = substitute(m["Lifecycle"]["Install"]["Script"].as_str().unwrap(), &root, &artifacts, &config);
        let ok = Command::new("sh").args(["-c", &install]).status().unwrap();
        assert!(ok.success(), "{install}");
        let run = substitute(m["Lifecycle"]["Run"]["Script"].as_str().unwrap(), &root, &artifacts, &config);
        let out = Command::new("sh").args(["-c", &run]).env_clear().output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{run}\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(stdout.trim_end().lines().last().unwrap().starts_with("authprobe verdict=fail "), "{stdout}");
    }
    let file = root.join("logs/authprobe/authprobe-gw-7.jsonl");
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(&file).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.iter().filter(|l| l["type"] == "summary").count(), 3, "one run per manifest appended");
    assert!(lines.iter().all(|l| l["label"] == "gw-7"));
    validate("jsonl", &lines);
    // What the log manager is told to upload is that file.
    let lm: serde_json::Value =
        serde_json::from_slice(&std::fs::read(packaging("greengrass/log-manager.json")).unwrap()).unwrap();
    let c =
        &lm["logsUploaderConfiguration"]["componentLogsConfigurationMap"][recipe["ComponentName"].as_str().unwrap()];
    assert_eq!(c["logFileDirectoryPath"], "/greengrass/v2/logs/authprobe");
    let re = c["logFileRegex"].as_str().unwrap();
    assert_eq!(re, "authprobe-.*\\.jsonl", "the regex must match {}", file.display());
}

/// The recipe variables the nucleus substitutes, for a core device whose thing is `gw-7`.
fn substitute(script: &str, root: &Path, artifacts: &Path, config: &dyn Fn(&str) -> String) -> String {
    let mut s = script
        .replace("{kernel:rootPath}", &root.display().to_string())
        .replace("{artifacts:path}", &artifacts.display().to_string())
        .replace("{iot:thingName}", "gw-7");
    while let Some(at) = s.find("{configuration:/") {
        let end = at + s[at..].find('}').unwrap();
        let key = s[at + "{configuration:/".len()..end].to_owned();
        s.replace_range(at..=end, &config(&key));
    }
    assert!(!s.contains('{'), "a placeholder left: {s}");
    s
}

/// The AWS IoT Device Client's `runCommand`: the command split at commas, `\,` standing for a comma
/// inside an argument.
fn device_client_split(command: &str) -> Vec<String> {
    let mut args = vec![String::new()];
    let mut chars = command.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&',') => {
                chars.next();
                args.last_mut().unwrap().push(',');
            }
            ',' => args.push(String::new()),
            c => args.last_mut().unwrap().push(c),
        }
    }
    args
}

/// The IoT job document and the AWS-Run-Command parameters: each command, split as the Device Client
/// splits it (a label with an escaped comma stays one argument), runs against the emulator; the last
/// 1,024 characters of its stdout (what the job execution's statusDetails keeps) hold the summary
/// line, and it exits 0 although the device is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_iot_job_commands_run_as_the_device_client_splits_them() {
    let (emu, scratch, ca) = allowing_emulator_with_ca().await;
    std::fs::write(scratch.path().join("token"), "denied-token").unwrap();
    let doc: serde_json::Value =
        serde_json::from_slice(&std::fs::read(packaging("iot-jobs/job-document.json")).unwrap()).unwrap();
    assert_eq!((doc["version"].as_str(), doc["includeStdOut"].as_bool()), (Some("1.0"), Some(true)));
    let step = &doc["steps"][0]["action"];
    assert_eq!(step["type"], "runCommand");
    let params: serde_json::Value =
        serde_json::from_slice(&std::fs::read(packaging("iot-jobs/run-command-parameters.json")).unwrap()).unwrap();
    assert!(params["runAsUser"].is_string());
    let config: serde_json::Value =
        serde_json::from_slice(&std::fs::read(packaging("iot-jobs/job-config.json")).unwrap()).unwrap();
    assert!(config["jobExecutionsRolloutConfig"]["maximumPerMinute"].as_u64().unwrap() <= 100);
    assert!(config["timeoutConfig"]["inProgressTimeoutInMinutes"].as_u64().is_some());
    for (name, command) in [
        ("job document", step["input"]["command"].as_str().unwrap()),
        ("AWS-Run-Command", params["command"].as_str().unwrap()),
    ] {
        let mut args = device_client_split(command);
        assert_eq!(args[0], "/usr/local/bin/authprobe", "{name}");
        if name == "job document" {
            assert!(args.iter().any(|a| a == "site-3, hall B"), "{name}: the escaped comma: {args:?}");
        }
        // Aimed at the emulator: this machine's binary, the test's files, the emulator's address.
        args[0] = env!("CARGO_BIN_EXE_authprobe").into();
        for a in args.iter_mut() {
            *a = a
                .replace("/etc/authprobe/token", &scratch.path().join("token").display().to_string())
                .replace("/var/log/authprobe", &scratch.path().display().to_string())
                .replace("60s", "50ms");
        }
        args.retain(|a| a != "--signature-file" && a != "/etc/authprobe/signature");
        args.extend(["--connect-to".into(), emu.addr.to_string(), "--ca".into(), ca.display().to_string()]);
        let out = Command::new(&args[0]).args(&args[1..]).env_clear().output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{name}: {args:?}\n{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.stderr.is_empty(), "{name}: stderr (the Device Client fails a step on stderr lines)");
        let kept: String = stdout.chars().rev().take(1024).collect::<Vec<_>>().into_iter().rev().collect();
        assert!(kept.contains("authprobe verdict=fail cause="), "{name}: {kept}");
    }
}
