//! From a device network: the probe through real proxies started here on loopback (tinyproxy and
//! squid for HTTP CONNECT, with and without proxy authentication; microsocks for SOCKS5), a second CA
//! standing in for a TLS-inspecting firewall, a plain-HTTP captive portal, and DNS answers from the
//! system resolver, `--resolve` and IPv6 on ::1.
//!
//! tinyproxy, squid and microsocks cannot be told to bind port 0 and report it, so each gets a port
//! the kernel just handed out (bound to 0, then released); readiness is their own "listening" log
//! line (tinyproxy, squid) or a bounded connect poll (microsocks logs nothing).

use super::common::*;
use serde_json::Value;
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

/// A daemon killed when the test ends, whatever happens.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-CONT", &self.0.id().to_string()]).status();
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `cmd` and waits (bounded by WAIT) for a line of its output containing `ready`.
fn spawn_until(cmd: &mut Command, ready: &str) -> Daemon {
    let mut child =
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("installed by .ci/run (see its list)");
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        let ready = ready.to_owned();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if line.contains(&ready) {
                    let _ = tx.send(());
                }
            }
        });
    }
    rx.recv_timeout(WAIT).unwrap_or_else(|_| panic!("`{ready}` within {WAIT:?}"));
    Daemon(child)
}

/// A port the kernel just handed out, released for a daemon that cannot bind port 0.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Waits until `port` accepts a connection: bounded in count and time.
fn wait_listening(port: u16) {
    let until = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < until, "port {port} listening within {WAIT:?}");
        std::thread::yield_now();
    }
}

/// `authprobe probe --format json` (mqtt baseline only unless `args` say otherwise), in a clean
/// environment plus `env`. Returns the exit code, the report and stdout+stderr.
fn probe(dir: &Path, emu: &Emu, args: &[&str], env: &[(&str, &str)]) -> (Option<i32>, Value, String) {
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &emu.ca_pem).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_authprobe"));
    cmd.args(["probe", "--endpoint", ENDPOINT, "--authorizer", AUTH, "--token", GOOD, "--format", "json"])
        .args(["--matrix", "none", "--follow-up", "none"])
        .args(if args.contains(&"--timeout") { &[][..] } else { &["--timeout", "3"][..] })
        .args(args.iter().filter(|a| **a != "--bundled-roots"))
        .env_clear()
        .env("NO_COLOR", "1")
        .envs(env.iter().copied());
    if !args.contains(&"--insecure") && !args.contains(&"--bundled-roots") {
        cmd.arg("--ca").arg(&ca);
    }
    let cmd = cmd.args(if args.contains(&"--transport") { &[][..] } else { &["--transport", "mqtt"][..] });
    let out = cmd.output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    let report = probe_report(&out.stdout);
    (out.status.code(), report, text)
}

fn outcome(r: &Value, attempt: &str) -> String {
    let a = r["attempts"].as_array().unwrap().iter().find(|a| a["id"] == attempt).unwrap_or_else(|| panic!("{r:#}"));
    format!("{}/{}", a["outcome"]["stage"].as_str().unwrap(), a["outcome"]["kind"].as_str().unwrap())
}

fn finding<'a>(r: &'a Value, id: &str) -> Option<&'a Value> {
    r["findings"].as_array().unwrap().iter().find(|f| f["id"] == id)
}

fn first_finding(r: &Value) -> (String, String, String) {
    let f = &r["findings"][0];
    let s = |k: &str| f[k].as_str().unwrap_or_default().to_owned();
    (s("id"), s("confidence"), s("summary"))
}

async fn emulator() -> Emu {
    let mut c = config();
    c.show_secrets = false;
    c.authorizers.push(allowing(AUTH));
    start(c).await
}

fn connect_to(emu: &Emu) -> String {
    emu.addr.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tinyproxy_connect_authentication_refusal_and_timeout() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let conf = dir.path().join("tinyproxy.conf");
    std::fs::write(
        &conf,
        format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nAllow 127.0.0.1\nBasicAuth alice s3cret-pw\nConnectPort {}\nLogLevel Info\n",
            emu.addr.port()
        ),
    )
    .unwrap();
    let tinyproxy = spawn_until(Command::new("tinyproxy").arg("-d").arg("-c").arg(&conf), "listening on fd");
    let to = connect_to(&emu);
    let url = |auth: &str| format!("http://{auth}127.0.0.1:{port}");

    // No credentials: 407; wrong ones: tinyproxy answers 401. Both are proxy_auth_required.
    let (code, r, _) = probe(dir.path(), &emu, &["--connect-to", &to, "--proxy", &url("")], &[]);
    assert_eq!(code, Some(1));
    assert_eq!(outcome(&r, "mqtt"), "proxy/proxy_auth_required");
    assert!(r["attempts"][0]["outcome"]["detail"]["status_line"].as_str().unwrap().contains("407"), "{r:#}");
    let (id, confidence, summary) = first_finding(&r);
    assert_eq!((id.as_str(), confidence.as_str()), ("proxy_failed", "confirmed"), "{summary}");
    assert!(summary.contains("wants credentials") && summary.contains("--proxy"), "{summary}");

    let (_, r, text) = probe(dir.path(), &emu, &["--connect-to", &to, "--proxy", &url("alice:wrong-pw@")], &[]);
    assert_eq!(outcome(&r, "mqtt"), "proxy/proxy_auth_required");
    assert!(r["attempts"][0]["outcome"]["detail"]["status_line"].as_str().unwrap().contains("401"), "{r:#}");
    assert!(first_finding(&r).2.contains("refuses the credentials"), "{r:#}");
    assert!(!text.contains("wrong-pw"), "the proxy password is a secret:\n{text}");

    // The right credentials, from HTTPS_PROXY: every transport through the tunnel.
    let good = url("alice:s3cret-pw@");
    let (code, r, text) =
        probe(dir.path(), &emu, &["--connect-to", &to, "--transport", "mqtt,wss,https"], &[("HTTPS_PROXY", &good)]);
    assert_eq!(code, Some(0), "{r:#}");
    for t in ["mqtt", "wss", "https"] {
        assert!(matches!(outcome(&r, t).as_str(), "mqtt/connack_accepted" | "http/http_ok"), "{t}: {r:#}");
    }
    assert_eq!(r["proxy"]["source"], "HTTPS_PROXY");
    assert_eq!(r["proxy"]["url"], format!("http://alice:<redacted>@127.0.0.1:{port}"));
    assert!(!text.contains("s3cret-pw"), "the proxy password is a secret:\n{text}");
    let (_, r, text) = probe(
        dir.path(),
        &emu,
        &["--connect-to", &to, "--show-secrets"],
        &[("https_proxy", &good), ("HTTPS_PROXY", "http://127.0.0.1:1")],
    );
    assert_eq!(r["proxy"]["source"], "https_proxy", "lower case first, as curl: {r:#}");
    assert!(text.contains("s3cret-pw"), "--show-secrets shows it");

    // NO_PROXY naming the host: no proxy, and the report says why.
    let (code, r, _) =
        probe(dir.path(), &emu, &["--connect-to", &to], &[("HTTPS_PROXY", &url("")), ("NO_PROXY", "127.0.0.0/8")]);
    assert_eq!(code, Some(0), "{r:#}");
    assert!(r["proxy"].is_null() && r["proxy_bypassed"].as_str().unwrap().contains("NO_PROXY"), "{r:#}");

    // A port the proxy does not CONNECT to: refused, with its status line.
    let closed = format!("127.0.0.1:{}", free_port());
    let (_, r, _) = probe(dir.path(), &emu, &["--connect-to", &closed, "--proxy", &good], &[]);
    assert_eq!(outcome(&r, "mqtt"), "proxy/proxy_refused");
    assert!(r["attempts"][0]["outcome"]["detail"]["status_line"].as_str().unwrap().contains("403"), "{r:#}");
    assert!(first_finding(&r).2.contains("refuses the tunnel"), "{r:#}");

    // The README's transcript (a wrong password in HTTPS_PROXY) is this proxy's real answer.
    let (script, shown) = super::readme::transcript(&super::readme::block_after("wrong password in `HTTPS_PROXY`:"));
    let script = script.replace("127.0.0.1:3128", &format!("127.0.0.1:{port}")).replace("127.0.0.1:18443", &to);
    super::readme::assert_shown(&shown, &super::readme::run(&script, dir.path()));

    // A proxy that accepts TCP but never answers (stopped): proxy_timeout within --timeout.
    let pid = tinyproxy.0.id().to_string();
    assert!(Command::new("kill").args(["-STOP", &pid]).status().unwrap().success());
    let (_, r, _) = probe(dir.path(), &emu, &["--connect-to", &to, "--proxy", &good, "--timeout", "1"], &[]);
    assert_eq!(outcome(&r, "mqtt"), "proxy/proxy_timeout");
    assert_eq!(first_finding(&r).0, "proxy_failed");
    drop(tinyproxy);

    // Nothing listens at the proxy's address: the finding blames the proxy, not port 443.
    let (_, r, _) = probe(dir.path(), &emu, &["--connect-to", &to, "--proxy", &url("")], &[]);
    assert_eq!(outcome(&r, "mqtt"), "tcp/tcp_refused");
    let (id, _, summary) = first_finding(&r);
    assert_eq!(id, "proxy_failed", "{summary}");
    assert!(summary.contains("cannot be reached"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn squid_basic_ncsa_auth_answers_407() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let hash = Command::new("openssl").args(["passwd", "-apr1", "s3cret-pw"]).output().unwrap();
    std::fs::write(d.join("passwd"), format!("alice:{}", String::from_utf8_lossy(&hash.stdout))).unwrap();
    let port = free_port();
    let conf = d.join("squid.conf");
    std::fs::write(
        &conf,
        format!(
            "http_port 127.0.0.1:{port}\npid_filename {dir}/squid.pid\ncache deny all\naccess_log none\n\
             cache_log /dev/stderr\ncache_store_log none\ncoredump_dir {dir}\n\
             auth_param basic program /usr/lib/squid/basic_ncsa_auth {dir}/passwd\n\
             acl authed proxy_auth REQUIRED\nacl SSL_ports port {emu_port}\nacl CONNECT method CONNECT\n\
             http_access deny CONNECT !SSL_ports\nhttp_access allow authed\nhttp_access deny all\n\
             shutdown_lifetime 0 seconds\n",
            dir = d.display(),
            emu_port = emu.addr.port()
        ),
    )
    .unwrap();
    let _squid = spawn_until(Command::new("squid").args(["-N", "-d1", "-f"]).arg(&conf), "Accepting HTTP Socket");
    let to = connect_to(&emu);
    for (auth, expected) in [
        ("", "proxy/proxy_auth_required"),
        ("alice:wrong-pw@", "proxy/proxy_auth_required"),
        ("alice:s3cret-pw@", "mqtt/connack_accepted"),
    ] {
        let (_, r, _) =
            probe(d, &emu, &["--connect-to", &to, "--proxy", &format!("http://{auth}127.0.0.1:{port}")], &[]);
        assert_eq!(outcome(&r, "mqtt"), expected, "{auth}: {r:#}");
        if expected.starts_with("proxy") {
            let status = r["attempts"][0]["outcome"]["detail"]["status_line"].as_str().unwrap();
            assert!(status.contains("407"), "squid answers 407 to missing and wrong credentials: {status}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn microsocks_socks5_and_socks5h() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let (open, authed) = (free_port(), free_port());
    let quiet = |args: &[&str]| {
        Daemon(Command::new("microsocks").args(args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap())
    };
    let _a = quiet(&["-i", "127.0.0.1", "-p", &open.to_string()]);
    let _b = quiet(&["-i", "127.0.0.1", "-p", &authed.to_string(), "-u", "alice", "-P", "s3cret-pw"]);
    wait_listening(open);
    wait_listening(authed);
    let to = connect_to(&emu);
    for (url, expected, resolves) in [
        (format!("socks5://127.0.0.1:{open}"), "mqtt/connack_accepted", "local"),
        (format!("socks5h://127.0.0.1:{open}"), "mqtt/connack_accepted", "proxy"),
        (format!("socks5h://127.0.0.1:{authed}"), "proxy/proxy_auth_required", "proxy"),
        (format!("socks5://alice:wrong-pw@127.0.0.1:{authed}"), "proxy/proxy_auth_required", "local"),
        (format!("socks5h://alice:s3cret-pw@127.0.0.1:{authed}"), "mqtt/connack_accepted", "proxy"),
    ] {
        let (_, r, text) = probe(dir.path(), &emu, &["--connect-to", &to], &[("ALL_PROXY", &url)]);
        assert_eq!(outcome(&r, "mqtt"), expected, "{url}: {r:#}");
        assert_eq!(r["attempts"][0]["sent"]["proxy"]["resolves"], resolves, "{url}");
        assert_eq!(r["proxy"]["source"], "ALL_PROXY");
        assert!(!text.contains("s3cret-pw") && !text.contains("wrong-pw"), "{text}");
        if expected.starts_with("proxy") {
            assert_eq!(first_finding(&r).0, "proxy_failed");
        }
    }
    // A name that does not resolve: socks5:// resolves it here, so it is this network's DNS (not the
    // proxy, which was never asked); socks5h:// hands it to the proxy, which cannot open the tunnel.
    let nowhere = format!("no-such-host.invalid:{}", emu.addr.port());
    let (_, r, _) =
        probe(dir.path(), &emu, &["--connect-to", &nowhere], &[("ALL_PROXY", &format!("socks5://127.0.0.1:{open}"))]);
    let (id, confidence, summary) = first_finding(&r);
    assert_eq!((id.as_str(), confidence.as_str()), ("dns_failed", "confirmed"), "{r:#}");
    assert!(summary.starts_with("no-such-host.invalid, dialled instead of"), "{summary}");
    assert!(r["findings"][0]["fix"].as_str().unwrap().contains("socks5h://"), "{r:#}");
    let (_, r, _) =
        probe(dir.path(), &emu, &["--connect-to", &nowhere], &[("ALL_PROXY", &format!("socks5h://127.0.0.1:{open}"))]);
    assert_eq!(outcome(&r, "mqtt").split('/').next(), Some("proxy"), "{r:#}");
    assert_eq!(first_finding(&r).0, "proxy_failed", "{r:#}");
}

/// A TLS-inspecting firewall re-signs the endpoint's name with its own CA. With `--insecure` the probe
/// gets through and still says that a device would not; with the bundled roots it is refused; with
/// the emulator's own CA given by `--ca` (the demo's case) there is no interception finding.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn interception_is_named_by_its_issuer() {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CommonName, "Corp Inspection CA");
    ca.distinguished_name.push(DnType::OrganizationName, "Example Corp");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec![ENDPOINT.to_owned()]).unwrap();
    leaf.distinguished_name = rcgen::DistinguishedName::new();
    leaf.distinguished_name.push(DnType::CommonName, ENDPOINT);
    let leaf = leaf.signed_by(&leaf_key, &issuer).unwrap();
    let mut c = config();
    c.show_secrets = false;
    let mut a = allowing(AUTH);
    // The README's transcript sends the token `good`.
    a.function = authprobe::emulator::Function::Rules(vec![
        authprobe::emulator::Rule::allow_all(GOOD),
        authprobe::emulator::Rule::allow_all("good"),
    ]);
    c.authorizers.push(a);
    c.identity = authprobe::emulator::certs::Identity::from_pem(
        format!("{}{}", leaf.pem(), ca_cert.pem()).as_bytes(),
        leaf_key.serialize_pem().as_bytes(),
    )
    .unwrap();
    c.identity.ca_pem = Some(ca_cert.pem());
    let inspected = start(c).await;
    let dir = tempfile::tempdir().unwrap();
    let to = connect_to(&inspected);

    let (code, r, _) = probe(dir.path(), &inspected, &["--connect-to", &to, "--insecure"], &[]);
    assert_eq!(outcome(&r, "mqtt"), "mqtt/connack_accepted");
    assert_eq!(r["attempts"][0]["sent"]["tls"]["amazon_roots"], false);
    let (id, confidence, summary) = first_finding(&r);
    assert_eq!((id.as_str(), confidence.as_str()), ("tls_intercepted", "confirmed"), "{r:#}");
    assert!(summary.contains("Corp Inspection CA") && summary.contains("--insecure"), "{summary}");
    assert_eq!(code, Some(0), "the attempts themselves succeeded");

    let (code, r, _) = probe(dir.path(), &inspected, &["--connect-to", &to, "--bundled-roots"], &[]);
    assert_eq!(code, Some(1));
    assert_eq!(outcome(&r, "mqtt"), "tls/tls_cert_untrusted");
    let (id, confidence, summary) = first_finding(&r);
    assert_eq!((id.as_str(), confidence.as_str()), ("tls_intercepted", "confirmed"), "{r:#}");
    assert!(summary.contains("Corp Inspection CA"), "{summary}");

    // The README's transcript is this interception's real output.
    let (script, shown) = super::readme::transcript(&super::readme::block_after("probed with `--insecure`:"));
    let output = super::readme::run(&script.replace("127.0.0.1:18444", &to), dir.path());
    super::readme::assert_shown(&shown, &output);
    let chain: Vec<String> =
        super::readme::block_after("and in the attempt, with `--details`").lines().map(Into::into).collect();
    let detailed = super::readme::run(
        &script.replace("127.0.0.1:18444", &to).replace("--matrix none", "--matrix none --details"),
        dir.path(),
    );
    super::readme::assert_shown(&chain, &detailed);

    // Trusting the emulator's CA on purpose is not an interception.
    let emu = emulator().await;
    let (code, r, _) = probe(dir.path(), &emu, &["--connect-to", &connect_to(&emu)], &[]);
    assert_eq!(code, Some(0));
    assert!(finding(&r, "tls_intercepted").is_none(), "{r:#}");
}

/// A captive portal answers port 443 in plain HTTP.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_captive_portal_is_not_tls() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let portal = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = portal.local_addr().unwrap();
    tokio::spawn(async move {
        for _ in 0..4 {
            let Ok((mut s, _)) = portal.accept().await else { return };
            let mut buf = [0u8; 512];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 302 Found\r\nLocation: http://portal.example/login\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let emu = Emu::unstarted(addr);
    let (code, r, _) = probe(dir.path(), &emu, &["--connect-to", &addr.to_string(), "--insecure"], &[]);
    assert_eq!(code, Some(1));
    assert_eq!(outcome(&r, "mqtt"), "tls/tls_not_tls");
    let first = r["attempts"][0]["outcome"]["detail"]["first_bytes"].as_str().unwrap();
    assert!(first.contains("HTTP/1.1 302"), "{first}");
    let (_, _, summary) = first_finding(&r);
    assert!(summary.contains("does not speak TLS") && summary.contains("HTTP/1.1 302"), "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_answers_resolve_overrides_and_address_families() {
    let emu = emulator().await;
    let dir = tempfile::tempdir().unwrap();
    let port = emu.addr.port().to_string();

    // The system resolver's answer for `localhost` (an endpoint name of the emulator): recorded, and
    // flagged as no place for a public IoT endpoint.
    let mut c = config();
    c.show_secrets = false;
    c.authorizers.push(allowing(AUTH));
    let (code, r) = {
        let args = ["--port", port.as_str()];
        let ca = dir.path().join("ca.pem");
        std::fs::write(&ca, &emu.ca_pem).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_authprobe"))
            .args(["probe", "--endpoint", "localhost", "--authorizer", AUTH, "--token", GOOD, "--format", "json"])
            .args(["--matrix", "none", "--transport", "mqtt", "--ca"])
            .arg(&ca)
            .args(args)
            .env_clear()
            .output()
            .unwrap();
        (out.status.code(), probe_report(&out.stdout))
    };
    assert_eq!(code, Some(0), "{r:#}");
    let dns = &r["attempts"][0]["sent"]["dns"];
    assert_eq!(dns["source"], "dns");
    assert!(dns["answers"].as_array().unwrap().iter().any(|a| a == "127.0.0.1"), "{dns}");
    let f = finding(&r, "dns_unexpected").unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(f["kind"], "risk");
    assert!(f["summary"].as_str().unwrap().contains("127.0.0.1 (loopback)"), "{f}");

    // --resolve answers without DNS, and is not second-guessed.
    let resolve = format!("{ENDPOINT}:{port}:127.0.0.1");
    let (code, r, _) = probe(dir.path(), &emu, &["--port", &port, "--resolve", &resolve], &[]);
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(r["attempts"][0]["sent"]["dns"]["source"], "--resolve");
    assert_eq!(r["attempts"][0]["sent"]["address"], format!("127.0.0.1:{port}"));
    assert!(finding(&r, "dns_unexpected").is_none());

    // -6 with only an IPv4 answer: resolve fails, naming what was answered.
    let (_, r, _) = probe(dir.path(), &emu, &["--port", &port, "--resolve", &resolve, "-6"], &[]);
    assert_eq!(outcome(&r, "mqtt"), "resolve/dns_failed");
    let error = r["attempts"][0]["outcome"]["detail"]["error"].as_str().unwrap();
    assert!(error.contains("no IPv6 (AAAA) answer") && error.contains("127.0.0.1"), "{error}");

    // --family both: the IPv4 baseline connects, its IPv6 twin finds nothing on ::1 at that port.
    let both = format!("{ENDPOINT}:{port}:127.0.0.1,::1");
    let (_, r, _) = probe(dir.path(), &emu, &["--port", &port, "--resolve", &both, "--family", "both"], &[]);
    assert_eq!(outcome(&r, "mqtt"), "mqtt/connack_accepted");
    assert_eq!(outcome(&r, "mqtt/ipv6"), "tcp/tcp_refused");
    let f = finding(&r, "port_blocked").unwrap_or_else(|| panic!("{r:#}"));
    assert_eq!(f["kind"], "risk");
    assert!(f["summary"].as_str().unwrap().contains("IPv6"), "{f}");

    // IPv6 on ::1: an emulator there, reached with -6.
    let v6 = start_at(c, "[::1]:0").await;
    let p6 = v6.addr.port().to_string();
    let resolve6 = format!("{ENDPOINT}:{p6}:::1");
    let (code, r, _) = probe(dir.path(), &v6, &["--port", &p6, "--resolve", &resolve6, "-6"], &[]);
    assert_eq!(code, Some(0), "{r:#}");
    assert_eq!(r["attempts"][0]["sent"]["address"], format!("[::1]:{p6}"));
    assert_eq!(r["attempts"][0]["sent"]["family"], "ipv6");
}
