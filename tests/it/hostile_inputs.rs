//! Hostile files and profiles (issue 21): endless inputs stop at a limit that names itself, crafted
//! captures cannot forge lines or shell commands, IP fragments and conflicting retransmissions are
//! said, and a shared device profile cannot read secrets from outside its folder or from cloud
//! credential variables; saved profiles never hold a secret in clear.

use super::common::*;
use std::io::Write as _;
use std::net::Ipv4Addr;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_authprobe"));
    c.env_clear().env("NO_COLOR", "1");
    c
}

/// Runs `cmd` to its end within `WAIT`, or kills it and fails.
fn bounded(mut cmd: Command) -> std::process::Output {
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return child.wait_with_output().unwrap();
        }
        if started.elapsed() > WAIT {
            let _ = child.kill();
            panic!("still running after {WAIT:?}: {cmd:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

const PROBE: [&str; 6] = ["probe", "--endpoint", ENDPOINT, "--connect-to", "127.0.0.1:9", "--authorizer"];

#[test]
fn endless_inputs_stop_at_their_limit() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("fifo");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    // An endless writer on the FIFO, stopped when the reader goes (EPIPE).
    let writer_path = fifo.clone();
    std::thread::spawn(move || {
        let Ok(mut f) = std::fs::OpenOptions::new().write(true).open(&writer_path) else { return };
        let block = vec![b'a'; 64 * 1024];
        for _ in 0..100_000 {
            if f.write_all(&block).is_err() {
                break;
            }
        }
    });
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["--token-file".into(), "/dev/zero".into()], "limit for a token"),
        (vec!["--token-file".into(), fifo.display().to_string()], "limit for a token"),
        (
            vec!["--token".into(), "t".into(), "--authorizer-json".into(), "/dev/zero".into()],
            "limit for a JSON document",
        ),
        (vec!["--token".into(), "t".into(), "--signature-file".into(), "/dev/zero".into()], "limit for a signature"),
        (vec!["--token".into(), "t".into(), "--ca".into(), "/dev/zero".into()], "limit for a CA bundle"),
    ];
    for (extra, limit) in cases {
        let mut cmd = bin();
        cmd.args(PROBE).arg(AUTH).args(&extra);
        let out = bounded(cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {err}");
        assert!(err.contains(limit) && err.contains("KiB"), "{extra:?}: {err}");
    }
    for args in [vec!["emulate", "--config", "/dev/zero"], vec!["probe", "--device", "/dev/zero"]] {
        let mut cmd = bin();
        cmd.args(&args);
        let out = bounded(cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("limit for a TOML file"), "{args:?}: {err}");
    }
    // A capture is streamed: /dev/zero is not a capture, said at once.
    let mut cmd = bin();
    cmd.args(["inspect", "/dev/zero"]);
    let out = bounded(cmd);
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A pcap file (Ethernet) of `packets`.
fn pcap(packets: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&0xa1b2c3d4u32.to_le_bytes());
    out.extend_from_slice(&2u16.to_le_bytes());
    out.extend_from_slice(&4u16.to_le_bytes());
    out.extend_from_slice(&[0u8; 8]);
    out.extend_from_slice(&65535u32.to_le_bytes());
    out.extend_from_slice(&1u32.to_le_bytes());
    for (i, p) in packets.iter().enumerate() {
        out.extend_from_slice(&(i as u32).to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p);
    }
    out
}

const CLIENT: [u8; 4] = [10, 0, 0, 2];
const SERVER: [u8; 4] = [10, 0, 0, 1];

/// A TCP segment from the client (`to_server`) or the server.
fn tcp(to_server: bool, seq: u32, syn: bool, ack: bool, payload: &[u8]) -> Vec<u8> {
    let (src, dst, sport, dport) = if to_server { (CLIENT, SERVER, 40000, 443) } else { (SERVER, CLIENT, 443, 40000) };
    let b = etherparse::PacketBuilder::ethernet2([2; 6], [4; 6]).ipv4(src, dst, 64);
    let mut t = b.tcp(sport, dport, seq, 65535);
    if syn {
        t = t.syn();
    }
    if ack {
        t = t.ack(1);
    }
    let mut out = Vec::new();
    t.write(&mut out, payload).unwrap();
    out
}

/// A TLS ClientHello naming `sni` and offering `alpn`.
fn client_hello(sni: &[u8], alpn: &[&[u8]]) -> Vec<u8> {
    let mut ext = Vec::new();
    let name_list_len = 3 + sni.len();
    ext.extend_from_slice(&[0, 0]);
    ext.extend_from_slice(&((name_list_len + 2) as u16).to_be_bytes());
    ext.extend_from_slice(&(name_list_len as u16).to_be_bytes());
    ext.push(0);
    ext.extend_from_slice(&(sni.len() as u16).to_be_bytes());
    ext.extend_from_slice(sni);
    let protos: Vec<u8> = alpn.iter().flat_map(|p| std::iter::once(p.len() as u8).chain(p.iter().copied())).collect();
    ext.extend_from_slice(&[0, 16]);
    ext.extend_from_slice(&((protos.len() + 2) as u16).to_be_bytes());
    ext.extend_from_slice(&(protos.len() as u16).to_be_bytes());
    ext.extend_from_slice(&protos);
    let mut body = vec![3, 3];
    body.extend_from_slice(&[7; 32]);
    body.push(0);
    body.extend_from_slice(&[0, 2, 0x13, 0x01, 1, 0]);
    body.extend_from_slice(&(ext.len() as u16).to_be_bytes());
    body.extend_from_slice(&ext);
    let mut hs = vec![1, 0];
    hs.extend_from_slice(&(body.len() as u16).to_be_bytes());
    hs.extend_from_slice(&body);
    let mut rec = vec![0x16, 3, 1];
    rec.extend_from_slice(&(hs.len() as u16).to_be_bytes());
    rec.extend_from_slice(&hs);
    rec
}

fn inspect_text(capture: &[u8]) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("c.pcap");
    std::fs::write(&file, capture).unwrap();
    let mut cmd = bin();
    cmd.arg("inspect").arg(&file);
    let out = bounded(cmd);
    (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_crafted_capture_cannot_forge_lines_or_commands() {
    let sni = b"x.example$(touch${IFS}pwned)\n\x1b[2Jchain ok: Amazon Root CA 1";
    let hello = client_hello(sni, &[b"mqtt", b"a'b;rm -rf ~"]);
    let capture =
        pcap(&[tcp(true, 0, true, false, &[]), tcp(false, 0, true, true, &[]), tcp(true, 1, false, true, &hello)]);
    let (code, text) = inspect_text(&capture);
    assert!(matches!(code, Some(0 | 1)), "{text}");
    assert!(!text.contains('\x1b'), "an escape reached the terminal:\n{text}");
    assert!(!text.lines().any(|l| l.trim_start().starts_with("chain ok")), "a forged line:\n{text}");
    let replay = text.lines().find(|l| l.trim_start().starts_with("replay")).expect("a replay line");
    assert!(replay.contains("--endpoint $'x.example$(touch${IFS}pwned)\\x0a"), "{replay}");
    assert!(replay.contains("--alpn 'a'\\''b;rm -rf ~'"), "{replay}");
}

#[test]
fn ip_fragments_and_conflicting_retransmissions_are_said() {
    // A ClientHello in an IP fragment (more-fragments set): not reassembled, and said so.
    let hello = client_hello(b"abc123-ats.iot.us-east-1.amazonaws.com", &[b"mqtt"]);
    let mut ip =
        etherparse::Ipv4Header::new((20 + hello.len()) as u16, 64, etherparse::IpNumber::TCP, CLIENT, SERVER).unwrap();
    ip.more_fragments = true;
    let mut fragment = Vec::new();
    etherparse::Ethernet2Header { source: [2; 6], destination: [4; 6], ether_type: etherparse::EtherType::IPV4 }
        .write(&mut fragment)
        .unwrap();
    ip.write(&mut fragment).unwrap();
    fragment.extend_from_slice(&[0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 1, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0]);
    fragment.extend_from_slice(&hello);
    let (_, text) = inspect_text(&pcap(&[tcp(true, 0, true, false, &[]), fragment]));
    assert!(text.contains("IP fragment(s) not reassembled"), "{text}");
    // The same stream bytes sent twice with different data.
    let capture = pcap(&[
        tcp(true, 0, true, false, &[]),
        tcp(false, 0, true, true, &[]),
        tcp(true, 1, false, true, &hello),
        tcp(true, 1, false, true, &client_hello(b"evil.example.com.attacker.example", &[b"mqtt"])),
    ]);
    let (_, text) = inspect_text(&capture);
    assert!(text.contains("the client retransmitted bytes with different data"), "{text}");
    let _ = Ipv4Addr::LOCALHOST;
}

fn write_profile(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    let p = dir.join("gw.toml");
    std::fs::write(
        &p,
        format!("endpoint = \"{ENDPOINT}\"\nauthorizer = \"{AUTH}\"\nconnect_to = \"127.0.0.1:9\"\n{body}"),
    )
    .unwrap();
    p
}

#[test]
fn a_shared_profile_cannot_read_local_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    let creds = outside.path().join("credentials");
    std::fs::write(&creds, "[default]\naws_secret_access_key = AKIAsecretvalue\n").unwrap();
    let cases = [
        (format!("token_file = \"{}\"", creds.display()), "token_file"),
        ("token_file = \"../credentials\"".to_owned(), "token_file"),
        ("token_env = \"AWS_SECRET_ACCESS_KEY\"".to_owned(), "cloud credential variable"),
        ("password_env = \"GITHUB_TOKEN\"".to_owned(), "cloud credential variable"),
    ];
    std::fs::write(dir.path().parent().unwrap().join("credentials"), "x").ok();
    for (line, said) in cases {
        let profile = write_profile(dir.path(), &line);
        let mut cmd = bin();
        cmd.env("AWS_SECRET_ACCESS_KEY", "AKIAsecretvalue").env("GITHUB_TOKEN", "ghp_secret");
        cmd.args(["probe", "--device"]).arg(&profile).args(["--timeout", "1"]);
        let out = bounded(cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{line}: {err}");
        assert!(err.contains(said) && err.contains("--allow-device-secrets"), "{line}: {err}");
        assert!(!err.contains("AKIAsecretvalue") && !err.contains("ghp_secret"), "{err}");
    }
    // Beside the profile, or named on purpose: allowed, and the report says where each came from.
    std::fs::write(dir.path().join("token.txt"), "tok-beside-1\n").unwrap();
    let profile = write_profile(dir.path(), "token_file = \"token.txt\"\npassword_env = \"GW_PASSWORD\"");
    let mut cmd = bin();
    cmd.env("GW_PASSWORD", "pw-from-env-1");
    cmd.args(["probe", "--device"]).arg(&profile).args(["--timeout", "1", "--matrix", "none", "--transport", "mqtt"]);
    let out = bounded(cmd);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}{}", String::from_utf8_lossy(&out.stderr));
    let line = text.lines().find(|l| l.starts_with("secrets: ")).expect("the secrets' sources");
    assert!(
        line.contains("token from --token-file") && line.contains("token.txt") && line.contains("named by --device"),
        "{line}"
    );
    assert!(line.contains("password from the environment variable GW_PASSWORD"), "{line}");
}

#[test]
fn a_saved_profile_never_holds_a_secret() {
    let dir = tempfile::tempdir().unwrap();
    let saved = dir.path().join("saved.toml");
    let token = "tok-Saved-Secret-77";
    let raw = format!("dev?x-amz-customauthorizer-name={AUTH}&token={token}&other=hidden-Value-9");
    let mut cmd = bin();
    cmd.args(["probe", "--endpoint", ENDPOINT, "--connect-to", "127.0.0.1:9", "--timeout", "1", "--matrix", "none"]);
    cmd.args(["--transport", "mqtt", "--authorizer", AUTH, "--username-raw", &raw, "--save-device"]).arg(&saved);
    cmd.args(["--username", &format!("dev?token={token}")]);
    let out = bounded(cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    let profile = std::fs::read_to_string(&saved).unwrap();
    assert!(!profile.contains(token) && !profile.contains("hidden-Value-9"), "{profile}");
    assert!(profile.contains("token={token}"), "{profile}");
    assert!(err.contains("{secret}"), "the note says what was not saved: {err}");
    // The replay refuses the placeholder that lost its value, naming it.
    let mut cmd = bin();
    cmd.env("AUTHPROBE_TOKEN", token).args(["probe", "--device"]).arg(&saved).args(["--timeout", "1"]);
    let out = bounded(cmd);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("{secret}"), "{err}");
}

/// Issue 21: a TOML parse error quoted the offending line, secret value included. The error names
/// the file, the line and the setting, never the value.
#[test]
fn config_errors_name_the_setting_not_its_value() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "tok-Toml-Secret-5511";
    let cases = [
        // A syntax error on the line holding the token.
        format!("[[authorizers]]\nname = \"A\"\nallow_tokens = [\"{secret}\" oops]\n"),
        // A value of the wrong type: the parser's message would quote it.
        format!("[[authorizers]]\nname = \"A\"\nallow_tokens = \"{secret}\"\n"),
    ];
    for (i, body) in cases.iter().enumerate() {
        let file = dir.path().join(format!("bad-{i}.toml"));
        std::fs::write(&file, body).unwrap();
        let mut cmd = bin();
        cmd.args(["emulate", "--listen", "127.0.0.1:0", "--config"]).arg(&file);
        let out = bounded(cmd);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(!err.contains(secret) && !err.contains("Toml-Secret"), "the value is quoted: {err}");
        assert!(err.contains("allow_tokens") && err.contains("line 3"), "the setting and line are named: {err}");
    }
}

/// A device that sends its credentials without TLS (an HTTP request, an MQTT CONNECT) in a capture:
/// `inspect` shows their structure with every value redacted, in text and JSON, and what the
/// signature's form says without any key (base64url, a raw `+`).
#[test]
fn plaintext_credentials_in_a_capture_are_redacted_and_their_signature_read() {
    let http = b"GET /mqtt?x-amz-customauthorizer-name=A&token=tokHttpSecret123&x-amz-customauthorizer-signature=ab-_cd HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut connect = rumqttc::mqttbytes::v4::Connect::new("dev-1");
    connect.set_login("dev?token=tokMqttSecret456&x-amz-customauthorizer-signature=a+b/c=", "pwSecret789");
    let mut packet = bytes::BytesMut::new();
    connect.write(&mut packet).unwrap();
    for (payload, says) in [(&http[..], "base64url"), (&packet[..], "raw `+`")] {
        let capture =
            pcap(&[tcp(true, 0, true, false, &[]), tcp(false, 0, true, true, &[]), tcp(true, 1, false, true, payload)]);
        let (code, text) = inspect_text(&capture);
        assert!(matches!(code, Some(0 | 1)), "{text}");
        for secret in ["tokHttpSecret123", "tokMqttSecret456", "pwSecret789", "ab-_cd", "a+b/c="] {
            assert!(!text.contains(secret), "{secret} shown:\n{text}");
        }
        assert!(text.contains("<redacted len=") && text.contains(says), "{text}");
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("c.pcap");
        std::fs::write(&file, &capture).unwrap();
        let mut cmd = bin();
        cmd.args(["inspect", "--format", "json"]).arg(&file);
        let json = String::from_utf8_lossy(&bounded(cmd).stdout).into_owned();
        assert!(!json.contains("tokHttpSecret123") && !json.contains("tokMqttSecret456"), "{json}");
    }
}

/// Issue 22: the signature forensics run on a signature a device sent without TLS, with the keys
/// given to `inspect` (`--public-key`): base64url is named; a right signature gives no finding.
#[test]
fn inspect_checks_a_captured_signature_with_the_keys_given() {
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let public = dir.path().join("pub.pem");
    std::fs::write(&public, &keys().public_pem).unwrap();
    let right = sign(GOOD);
    let raw = base64::engine::general_purpose::STANDARD.decode(&right).unwrap();
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
    for (signature, want) in [(url, Some("base64url")), (pct(&right), None)] {
        let request = format!(
            "GET /mqtt?x-amz-customauthorizer-name=A&token={GOOD}&x-amz-customauthorizer-signature={signature} HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        let capture = pcap(&[
            tcp(true, 0, true, false, &[]),
            tcp(false, 0, true, true, &[]),
            tcp(true, 1, false, true, request.as_bytes()),
        ]);
        let file = dir.path().join("c.pcap");
        std::fs::write(&file, &capture).unwrap();
        let mut cmd = bin();
        cmd.args(["inspect", "--format", "json", "--public-key"]).arg(&public).arg(&file);
        let out = bounded(cmd);
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let ids: Vec<&str> =
            r["connections"][0]["findings"].as_array().unwrap().iter().filter_map(|f| f["id"].as_str()).collect();
        match want {
            Some(form) => {
                assert!(ids.contains(&"signature_wrong_value"), "{r:#}");
                assert!(r.to_string().contains(form), "{r:#}");
                assert!(!r.to_string().contains(GOOD), "the token is shown: {r:#}");
            }
            None => assert!(!ids.iter().any(|i| i.starts_with("signature")), "{r:#}"),
        }
    }
}
