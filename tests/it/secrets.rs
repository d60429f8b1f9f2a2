//! No secret leaks: every subcommand, with and without `-v`, in every output format, against the
//! emulator binary with the full matrix — the token, password and signature appear nowhere (raw,
//! percent-encoded or base64) in stdout, stderr or the emulator's log.

use super::common::*;
use base64::Engine as _;
use std::io::{BufRead as _, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const TOKEN: &str = "tok-Secret-1";
const PASSWORD: &str = "pw-Secret-2";

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_authprobe"));
    c.env_clear().env("NO_COLOR", "1");
    c
}

/// Every form a secret may take on the wire or in a log.
fn forms(secret: &str) -> Vec<String> {
    let b64 = base64::engine::general_purpose::STANDARD.encode(secret);
    vec![secret.to_owned(), authprobe::auth::credentials::encode(secret), pct(secret), b64]
}

#[track_caller]
fn assert_clean(what: &str, text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!text.contains(s.as_str()), "{what}: a secret ({s}) leaked:\n{text}");
    }
}

/// The emulator binary on 127.0.0.1:0 with a JSON log; its address, read from its first line.
struct Emulator {
    child: Child,
    /// The emulator's stderr, read as it comes (an unread pipe would fill and stall its log).
    stderr: Option<std::thread::JoinHandle<String>>,
    addr: String,
    log: std::path::PathBuf,
    ca: std::path::PathBuf,
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn emulator(dir: &std::path::Path, public_key: &std::path::Path) -> Emulator {
    let log = dir.join("emulator.jsonl");
    let ca = dir.join("ca.pem");
    let mut child = bin()
        .args(["-v", "emulate", "--listen", "127.0.0.1:0", "--allow-token", TOKEN, "--public-key"])
        .arg(public_key)
        .arg("--log-json")
        .arg(&log)
        .arg("--write-ca")
        .arg(&ca)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = child.stderr.take().unwrap();
    let stderr = Some(std::thread::spawn(move || {
        let mut all = String::new();
        let _ = std::io::Read::read_to_string(&mut err, &mut all);
        all
    }));
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut first = String::new();
        let _ = BufReader::new(stdout).read_line(&mut first);
        let _ = tx.send(first);
    });
    let first = rx.recv_timeout(WAIT).expect("the emulator prints its address");
    let addr = first.split_whitespace().find(|w| w.starts_with("127.0.0.1:")).expect("an address").to_owned();
    Emulator { child, stderr, addr, log, ca }
}

/// Redaction is a property of the type: a plan's `Debug` (a panic message, a `{:?}` in a log) shows
/// no token, signature, password or proxy password, whatever a writer does with it.
#[test]
fn a_plans_debug_holds_no_secret() {
    use authprobe::probe::plan::NetPath;
    use authprobe::probe::{Proxy, ProxySource};
    let credentials = authprobe::probe::Credentials {
        authorizer: Some(AUTH.into()),
        token_key_name: "token".into(),
        token: Some("tok-s3cr3t-1".into()),
        signature: Some("c2lnLXMzY3IzdC0y".into()),
        username: Some("device".into()),
        password: Some("pw-s3cr3t-3".into()),
        ..Default::default()
    };
    let proxy = Proxy::parse("http://user:proxy-s3cr3t-4@127.0.0.1:3128", ProxySource::Flag).unwrap();
    let plan = authprobe::probe::ProbePlan::builder(ENDPOINT, credentials)
        .network(NetPath { proxy: Some(proxy), ..NetPath::default() })
        .build()
        .unwrap();
    let shown = format!("{plan:?} {plan:#?}");
    for secret in ["tok-s3cr3t-1", "c2lnLXMzY3IzdC0y", "pw-s3cr3t-3", "proxy-s3cr3t-4"] {
        assert!(!shown.contains(secret), "{secret} in {shown}");
    }
    assert!(shown.contains("<redacted len=12"), "{shown}");
}

#[test]
fn no_subcommand_leaks_a_secret_in_any_output() {
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("pub.pem");
    std::fs::write(&public, &keys().public_pem).unwrap();
    let signature = sign(TOKEN);
    let mut secrets = forms(TOKEN);
    secrets.extend(forms(PASSWORD));
    secrets.extend([signature.clone(), pct(&signature), authprobe::auth::credentials::encode(&signature)]);
    let mut emu = emulator(dir.path(), &public);
    let private = keys().private.to_str().unwrap().to_owned();
    let ca = emu.ca.to_str().unwrap().to_owned();
    let creds = [
        "--authorizer",
        "MyAuthorizer",
        "--token",
        TOKEN,
        "--password",
        PASSWORD,
        "--username",
        "dev",
        "--client-id",
        "leak-test",
    ];
    let mut runs: Vec<Vec<String>> = Vec::new();
    for format in ["text", "json"] {
        for verbose in [false, true] {
            let mut probe: Vec<&str> = Vec::new();
            if verbose {
                probe.push("-v");
            }
            probe.extend(["probe", "--endpoint", "abc123-ats.iot.us-east-1.amazonaws.com", "--connect-to", &emu.addr]);
            // The emulator does not limit connects per client ID: no 1.1 s spacing between them.
            probe.extend(["--ca", &ca, "--matrix", "full", "--format", format, "--timeout", "5", "--spacing", "0"]);
            probe.extend(creds);
            // A wrong token key name and the key, so that the variants put the secrets everywhere.
            let mut with_sig = probe.clone();
            with_sig.extend(["--signature", &signature, "--token-key-name", "deviceToken"]);
            runs.push(with_sig.iter().map(|s| (*s).to_owned()).collect());
            if format == "json" {
                // JSON Lines: each attempt as it ends, then the summary.
                let jsonl: Vec<String> =
                    with_sig.iter().map(|s| if *s == "json" { "jsonl".to_owned() } else { (*s).to_owned() }).collect();
                runs.push(jsonl);
            }
            // The device's exact username, quoting the token (and the documented attempt beside it).
            let raw = format!("dev?x-amz-customauthorizer-name=MyAuthorizer&token={TOKEN}?SDK=C");
            let mut with_raw = probe.clone();
            with_raw.extend(["--username-raw", &raw, "--no-sni", "--transport", "mqtt"]);
            runs.push(with_raw.iter().map(|s| (*s).to_owned()).collect());
            let mut with_key = probe.clone();
            with_key.extend(["--signing-key", &private, "--public-key", public.to_str().unwrap()]);
            runs.push(with_key.iter().map(|s| (*s).to_owned()).collect());
            let v: &[&str] = if verbose { &["-v"] } else { &[] };
            let tail = |args: &[&str]| v.iter().chain(args).map(|s| (*s).to_owned()).collect::<Vec<_>>();
            runs.push(tail(&["sign", "--token", TOKEN, "--signing-key", &private, "--format", format]));
            runs.push(tail(&[
                "sign",
                "--verify",
                "--token",
                TOKEN,
                "--signature",
                &signature,
                "--public-key",
                public.to_str().unwrap(),
                "--format",
                format,
            ]));
            for transport in ["mqtt", "wss", "https"] {
                let mut ev =
                    vec!["event", "--transport", transport, "--endpoint", "abc123-ats.iot.us-east-1.amazonaws.com"];
                ev.extend(creds);
                ev.extend(["--signature", &signature]);
                runs.push(tail(&ev));
            }
        }
    }
    // `sign` prints the signature it makes (its product); it must not print the token or password.
    let without_signature: Vec<String> = forms(TOKEN).into_iter().chain(forms(PASSWORD)).collect();
    for args in &runs {
        let out = bin().args(args).output().unwrap();
        let what = args.join(" ");
        let signs = args.iter().any(|a| a == "sign") && !args.iter().any(|a| a == "--verify");
        let secrets = if signs { &without_signature } else { &secrets };
        let code = out.status.code();
        assert!(matches!(code, Some(0 | 1)), "{what}: exit {code:?}: {}", String::from_utf8_lossy(&out.stderr));
        assert_clean(&format!("stdout of {what}"), &String::from_utf8_lossy(&out.stdout), secrets);
        assert_clean(&format!("stderr of {what}"), &String::from_utf8_lossy(&out.stderr), secrets);
    }
    // Secrets from the environment and files (never on the command line), and a proxy password: the
    // scrubber knows them wherever they came from. The proxy is unreachable (port 1), the rest is the
    // emulator with the quick matrix, in every format.
    let sig_file = dir.path().join("signature.txt");
    std::fs::write(&sig_file, format!("{signature}\n")).unwrap();
    let proxy_pw = "proxy-Secret-3";
    let mut with_proxy = secrets.clone();
    with_proxy.extend(forms(proxy_pw));
    for format in ["text", "json", "jsonl"] {
        for proxy in [None, Some(format!("http://alice:{proxy_pw}@127.0.0.1:1"))] {
            let mut cmd = bin();
            cmd.env("AUTHPROBE_TOKEN", TOKEN).env("AUTHPROBE_PASSWORD", PASSWORD);
            cmd.args([
                "-v",
                "probe",
                "--endpoint",
                "abc123-ats.iot.us-east-1.amazonaws.com",
                "--connect-to",
                &emu.addr,
            ]);
            cmd.args([
                "--ca",
                &ca,
                "--format",
                format,
                "--timeout",
                "5",
                "--spacing",
                "0",
                "--authorizer",
                "MyAuthorizer",
            ]);
            cmd.args(["--username", "dev", "--token-key-name", "deviceToken", "--signature-file"]).arg(&sig_file);
            if let Some(p) = &proxy {
                cmd.args(["--proxy", p]);
            }
            let out = cmd.output().unwrap();
            let what = format!("probe with secrets from the environment, --format {format}, proxy {}", proxy.is_some());
            assert!(matches!(out.status.code(), Some(0 | 1)), "{what}: {}", String::from_utf8_lossy(&out.stderr));
            assert_clean(&format!("stdout of {what}"), &String::from_utf8_lossy(&out.stdout), &with_proxy);
            assert_clean(&format!("stderr of {what}"), &String::from_utf8_lossy(&out.stderr), &with_proxy);
        }
    }
    // A username with the token inside, saved as a device profile and replayed from it: the profile
    // holds a placeholder, and neither run shows the token (issue 21).
    let saved = dir.path().join("device.toml");
    for (format, replay) in [("text", false), ("json", true)] {
        let mut cmd = bin();
        cmd.env("AUTHPROBE_TOKEN", TOKEN);
        cmd.args(["-v", "probe"]);
        if replay {
            cmd.arg("--device").arg(&saved);
        } else {
            cmd.args(["--endpoint", "abc123-ats.iot.us-east-1.amazonaws.com", "--connect-to", &emu.addr, "--ca", &ca]);
            cmd.args(["--authorizer", "MyAuthorizer", "--username", &format!("dev?token={TOKEN}")]);
            cmd.args(["--transport", "mqtt", "--save-device"]).arg(&saved);
        }
        cmd.args(["--format", format, "--timeout", "5", "--spacing", "0"]);
        let out = cmd.output().unwrap();
        let what = format!("probe --username with the token inside, replay {replay}");
        assert!(matches!(out.status.code(), Some(0 | 1)), "{what}: {}", String::from_utf8_lossy(&out.stderr));
        assert_clean(&format!("stdout of {what}"), &String::from_utf8_lossy(&out.stdout), &secrets);
        assert_clean(&format!("stderr of {what}"), &String::from_utf8_lossy(&out.stderr), &secrets);
        assert_clean("the saved device profile", &std::fs::read_to_string(&saved).unwrap(), &secrets);
    }
    // Servers and proxies that echo the request back (URL, headers, CONNECT bytes, the proxy's
    // credential): `echo.rs`; profiles that try to read local secrets: `hostile_inputs.rs`.

    // The emulator's own stderr (-v) and JSON log, after it stops.
    let _ = emu.child.kill();
    let _ = emu.child.wait();
    let stderr = emu.stderr.take().map(|t| t.join().unwrap()).unwrap_or_default();
    assert!(stderr.lines().count() > 50, "the emulator's -v log was read: {} lines", stderr.lines().count());
    let log = std::fs::read_to_string(&emu.log).unwrap();
    assert!(log.lines().count() > 50, "the full matrix reached the emulator: {} records", log.lines().count());
    assert_clean("the emulator's JSON log", &log, &secrets);
    assert_clean("the emulator's stderr", &stderr, &secrets);
    let _ = Duration::ZERO;
}
