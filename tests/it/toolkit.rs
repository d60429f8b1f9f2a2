//! The authorizer toolkit: `sign` (equal to and verified by openssl), `event` (equal to what the
//! emulator's function receives), `check-response`, `check-permission`, the probe's AWS documents,
//! and the post-connect checks end to end.

use super::common::*;
use authprobe::auth::event::{Event, Transport};
use authprobe::emulator::{Answer, Function, Rule};
use authprobe::probe::outcome::{Detail, Kind};
use authprobe::probe::plan::MqttVersion;
use std::process::Output;

fn authprobe(args: &[&str]) -> Output {
    authprobe_bin(args)
}

fn out(o: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
}

fn openssl(args: &[&str]) -> Output {
    std::process::Command::new("openssl").args(args).output().unwrap()
}

#[test]
fn sign_equals_openssl_and_openssl_verifies_it() {
    let k = keys();
    let key = k.private.to_str().unwrap();
    let o = authprobe(&["sign", "--signing-key", key, "--token", "tok value", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let sig = v["signature"].as_str().unwrap();
    assert_eq!(sig, sign("tok value"));
    assert_eq!(v["percent_encoded"], pct(sig).as_str());
    // openssl dgst -verify accepts it.
    use base64::Engine as _;
    let dir = tempfile::tempdir().unwrap();
    let (tok, sigf, pubf) = (dir.path().join("t"), dir.path().join("s"), dir.path().join("p.pem"));
    std::fs::write(&tok, "tok value").unwrap();
    std::fs::write(&sigf, base64::engine::general_purpose::STANDARD.decode(sig).unwrap()).unwrap();
    std::fs::write(&pubf, &k.public_pem).unwrap();
    let v = openssl(&[
        "dgst",
        "-sha256",
        "-verify",
        pubf.to_str().unwrap(),
        "-signature",
        sigf.to_str().unwrap(),
        tok.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&v.stdout).contains("Verified OK"), "{:?}", v);
    // The signature is what `sign` makes: printed as is, bare with --format raw (for `SIG=$(…)`).
    let o = authprobe(&["sign", "--signing-key", key, "--token", "tok value", "--format", "raw"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("{sig}\n"));
    assert!(o.stderr.is_empty(), "{}", out(&o));
    let o = authprobe(&["sign", "--signing-key", key, "--token", "tok value", "--format", "raw", "--percent-encode"]);
    assert_eq!(String::from_utf8_lossy(&o.stdout), format!("{}\n", pct(sig)));
    let o = authprobe(&["sign", "--signing-key", key, "--token", "tok value"]);
    assert!(String::from_utf8_lossy(&o.stdout).contains(sig), "{}", out(&o));
}

/// `sign` takes the token (and `--verify` the signature) off the command line too: a file, standard
/// input or AUTHPROBE_TOKEN / AUTHPROBE_SIGNATURE; an empty one is exit 2 naming its source.
#[test]
fn sign_reads_secrets_from_files_stdin_and_environment() {
    let key = keys().private.to_str().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("token");
    std::fs::write(&tok, "tok value\n").unwrap();
    let tok = tok.to_str().unwrap();
    let raw = |cmd: &mut std::process::Command| cmd.output().unwrap();
    let bin = || {
        let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_authprobe"));
        c.env_clear();
        c
    };
    let from_file = raw(bin().args(["sign", "--signing-key", key, "--token-file", tok, "--format", "raw"]));
    assert_eq!(String::from_utf8_lossy(&from_file.stdout), format!("{}\n", sign("tok value")));
    let from_env =
        raw(bin().args(["sign", "--signing-key", key, "--format", "raw"]).env("AUTHPROBE_TOKEN", "tok value"));
    assert_eq!(from_env.stdout, from_file.stdout);
    let sig = dir.path().join("sig");
    std::fs::write(&sig, &from_file.stdout).unwrap();
    let pubf = dir.path().join("p.pem");
    std::fs::write(&pubf, &keys().public_pem).unwrap();
    let mut verify = bin();
    verify.args([
        "sign",
        "--verify",
        "--token-file",
        tok,
        "--signature-file",
        "-",
        "--public-key",
        pubf.to_str().unwrap(),
    ]);
    let verified = verify.stdin(std::fs::File::open(&sig).unwrap()).output().unwrap();
    assert_eq!(verified.status.code(), Some(0), "{}", out(&verified));
    let empty = dir.path().join("empty");
    std::fs::write(&empty, "").unwrap();
    let o = raw(bin().args(["sign", "--signing-key", key, "--token-file", empty.to_str().unwrap()]));
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("--token-file") && out(&o).contains("is empty"), "{}", out(&o));
    let o = raw(bin().args(["sign", "--signing-key", key]));
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("AUTHPROBE_TOKEN"), "{}", out(&o));
    let o = raw(bin().args(["sign", "--verify", "--token", "t", "--public-key", pubf.to_str().unwrap()]));
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("--signature-file"), "{}", out(&o));
}

#[test]
fn verify_names_the_key_and_fails_with_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let pubf = dir.path().join("p.pem");
    std::fs::write(&pubf, &keys().public_pem).unwrap();
    let describe = dir.path().join("d.json");
    let json = serde_json::json!({"authorizerDescription": {"authorizerName": "A", "tokenKeyName": "token", "status": "ACTIVE",
        "signingDisabled": false, "tokenSigningPublicKeys": {"prodKey": keys().public_pem}}});
    std::fs::write(&describe, json.to_string()).unwrap();
    let sig = sign("t1");
    let o = authprobe(&[
        "sign",
        "--verify",
        "--token",
        "t1",
        "--signature",
        &pct(&sig),
        "--authorizer-json",
        describe.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(out(&o).contains("key `prodKey`"), "{}", out(&o));
    let o = authprobe(&[
        "sign",
        "--verify",
        "--token",
        "other",
        "--signature",
        &sig,
        "--public-key",
        pubf.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("NOT verified"));
}

/// Signing-key mix-ups name what signing needs, not what verification needs.
#[test]
fn signing_key_mix_ups_say_what_signing_needs() {
    let dir = tempfile::tempdir().unwrap();
    let not_pem = dir.path().join("bad.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let o = authprobe(&["sign", "--token", "t", "--signing-key", not_pem.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("BEGIN PRIVATE KEY") && !out(&o).contains("BEGIN PUBLIC KEY"), "{}", out(&o));
    let cert = authprobe::emulator::certs::Ca::generate("a CA").unwrap().pem();
    let cert_file = dir.path().join("ca.pem");
    std::fs::write(&cert_file, cert).unwrap();
    let o = authprobe(&["sign", "--token", "t", "--signing-key", cert_file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("signing needs the private key"), "{}", out(&o));
}

#[test]
fn an_empty_token_is_not_signed() {
    let o = authprobe(&["sign", "--token", "", "--signing-key", keys().private.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("--token is empty"), "{}", out(&o));
}

/// Signature forensics: a signature over the token plus a newline (the `echo` mistake) is named.
#[test]
fn verify_says_what_a_wrong_signature_signs() {
    let dir = tempfile::tempdir().unwrap();
    let pubf = dir.path().join("p.pem");
    std::fs::write(&pubf, &keys().public_pem).unwrap();
    let sig = sign("t1\n");
    let o =
        authprobe(&["sign", "--verify", "--token", "t1", "--signature", &sig, "--public-key", pubf.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    assert!(out(&o).contains("over the token followed by a newline"), "{}", out(&o));
    let o = authprobe(&[
        "sign",
        "--verify",
        "--token",
        "t1",
        "--signature",
        &sig,
        "--public-key",
        pubf.to_str().unwrap(),
        "--format",
        "json",
    ]);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["signed_instead"]["scheme"], "RSA PKCS#1 v1.5 with SHA-256");
    // A signature over something else entirely: no false explanation.
    let o = authprobe(&[
        "sign",
        "--verify",
        "--token",
        "t1",
        "--signature",
        &sign("zz"),
        "--public-key",
        pubf.to_str().unwrap(),
    ]);
    assert!(out(&o).contains("NOT verified by any of 1 key(s)"), "{}", out(&o));
}

#[test]
fn key_mix_ups_get_clear_errors_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let p = |n: &str| dir.path().join(n).to_str().unwrap().to_owned();
    assert!(
        openssl(&["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:1024", "-out", &p("small.pem")])
            .status
            .success()
    );
    assert!(openssl(&["pkey", "-in", &p("small.pem"), "-pubout", "-out", &p("small-pub.pem")]).status.success());
    assert!(
        openssl(&["rsa", "-in", keys().private.to_str().unwrap(), "-RSAPublicKey_out", "-out", &p("pkcs1-pub.pem")])
            .status
            .success()
    );
    std::fs::write(p("pub.pem"), &keys().public_pem).unwrap();
    let private = keys().private.to_str().unwrap().to_owned();
    for (args, needle) in [
        (vec!["sign", "--token", "t", "--signing-key", &p("small.pem")], "2048"),
        (vec!["sign", "--token", "t", "--signing-key", &p("pub.pem")], "private key"),
        (
            vec!["sign", "--verify", "--token", "t", "--signature", "YWJj", "--public-key", &p("small-pub.pem")],
            "1024 bits",
        ),
        (
            vec!["sign", "--verify", "--token", "t", "--signature", "YWJj", "--public-key", &p("pkcs1-pub.pem")],
            "-RSAPublicKey_in",
        ),
        (vec!["sign", "--verify", "--token", "t", "--signature", "YWJj", "--public-key", &private], "-pubout"),
    ] {
        let o = authprobe(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", out(&o));
        assert!(out(&o).contains(needle), "{args:?}: `{needle}` not in {}", out(&o));
    }
}

/// The event `authprobe event` prints equals what the emulator hands its function for the same attempt.
#[tokio::test]
async fn event_equals_what_the_function_receives() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("event.json");
    let mut a = signed(AUTH, &[]);
    a.function = Function::Command(format!("cat > '{}'; echo '{{\"isAuthenticated\":false}}'", file.display()));
    let mut cfg = config();
    cfg.authorizers.push(a);
    let emu = start(cfg).await;
    let mut b = plan_builder(&emu);
    b.credentials_mut().signature = Some(sign(GOOD).into());
    b.credentials_mut().username = Some("dev".into());
    b.credentials_mut().password = Some("pw".into());
    let plan = b.build().unwrap();
    for t in Transport::ALL {
        let spec = baseline(&plan, t);
        probe(&plan, &spec).await;
        let mut received: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        let key = received["protocolData"]["http"]["headers"]["Sec-WebSocket-Key"].as_str().unwrap_or("").to_owned();
        let seen = authprobe::probe::attempt::observed(&plan, &spec, &key);
        let mut built = serde_json::to_value(Event::build(t, GOOD, true, &seen, "id")).unwrap();
        received["connectionMetadata"]["id"] = "id".into();
        built["connectionMetadata"]["id"] = "id".into();
        assert_eq!(built, received, "{t}");
    }
    // The CLI prints that event (secrets shown on request).
    let o = authprobe(&[
        "event",
        "--transport",
        "mqtt",
        "--endpoint",
        ENDPOINT,
        "--authorizer",
        AUTH,
        "--token",
        GOOD,
        "--client-id",
        "c1",
        "--show-secrets",
    ]);
    let ev: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ev["protocolData"]["mqtt"]["username"], format!("?x-amz-customauthorizer-name={AUTH}&token={GOOD}"));
    assert_eq!((ev["token"].as_str(), ev["protocolData"]["tls"]["serverName"].as_str()), (Some(GOOD), Some(ENDPOINT)));
    let o = authprobe(&["event", "--transport", "https", "--endpoint", ENDPOINT, "--token", GOOD]);
    assert!(!String::from_utf8_lossy(&o.stdout).contains(GOOD), "redacted without --show-secrets");
}

fn write(dir: &tempfile::TempDir, name: &str, v: &serde_json::Value) -> String {
    let p = dir.path().join(name);
    std::fs::write(&p, v.to_string()).unwrap();
    p.to_str().unwrap().to_owned()
}

#[test]
fn check_response_exit_codes_and_arns() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(
        &dir,
        "good.json",
        &serde_json::json!({
            "isAuthenticated": true, "principalId": "dev1", "disconnectAfterInSeconds": 3600, "refreshAfterInSeconds": 300,
            "policyDocuments": [{"Version": "2012-10-17", "Statement": [
                {"Sid": "conn", "Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:eu-west-1:111122223333:client/${iot:ClientId}"},
                {"Sid": "pub", "Effect": "Allow", "Action": "iot:Publish", "Resource": "arn:aws:iot:eu-west-1:111122223333:topic/dev/*"},
                {"Sid": "nope", "Effect": "Deny", "Action": "iot:Publish", "Resource": "arn:aws:iot:eu-west-1:111122223333:topic/dev/secret"}]}]
        }),
    );
    let o = authprobe(&["check-response", &good, "--client-id", "d1", "--publish", "dev/a/b"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    assert!(
        out(&o).contains("eu-west-1, account 111122223333 (from the policy's ARNs)") && out(&o).contains("(Sid pub)"),
        "{}",
        out(&o)
    );
    let o =
        authprobe(&["check-response", &good, "--publish", "dev/secret", "--subscribe", "dev/#", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["actions"][0]["decision"], "explicit_deny");
    assert_eq!(v["actions"][0]["by"]["sid"], "nope");
    assert_eq!(v["actions"][1]["decision"], "not_allowed");
    // --region/--account fill the ARNs; here they do not match the policy's account.
    let o = authprobe(&[
        "check-response",
        &good,
        "--client-id",
        "d1",
        "--region",
        "eu-west-1",
        "--account",
        "999999999999",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let bad = write(&dir, "bad.json", &serde_json::json!({"isAuthenticated": "yes", "principalId": "a b"}));
    let o = authprobe(&["check-response", &bad]);
    assert_eq!(o.status.code(), Some(1));
    assert!(out(&o).contains("isAuthenticated.boolean") && out(&o).contains("principalId.pattern"), "{}", out(&o));
    let o = authprobe(&["check-response", "/nonexistent.json"]);
    assert_eq!(o.status.code(), Some(2));
    std::fs::write(dir.path().join("junk.json"), "{not json").unwrap();
    let o = authprobe(&["check-response", dir.path().join("junk.json").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", out(&o));
}

#[test]
fn check_permission_exit_codes() {
    let dir = tempfile::tempdir().unwrap();
    let arn = "arn:aws:iot:eu-west-1:111122223333:authorizer/MyAuthorizer";
    let stmt = serde_json::json!({"Sid": "iot", "Effect": "Allow", "Principal": {"Service": "iot.amazonaws.com"}, "Action": "lambda:InvokeFunction",
        "Resource": "arn:aws:lambda:eu-west-1:111122223333:function:auth",
        "Condition": {"ArnLike": {"AWS:SourceArn": arn}, "StringEquals": {"AWS:SourceAccount": "111122223333"}}});
    let get_policy = write(
        &dir,
        "p.json",
        &serde_json::json!({"Policy": serde_json::json!({"Version": "2012-10-17", "Statement": [stmt]}).to_string(), "RevisionId": "r"}),
    );
    let o = authprobe(&["check-permission", &get_policy, "--authorizer-arn", arn]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let o = authprobe(&[
        "check-permission",
        &get_policy,
        "--authorizer",
        "Other",
        "--region",
        "eu-west-1",
        "--account",
        "111122223333",
        "--format",
        "json",
    ]);
    assert_eq!(o.status.code(), Some(1), "{}", out(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["statements"][0]["problems"][0].as_str().unwrap().contains("AWS:SourceArn"));
    let o = authprobe(&["check-permission", &get_policy, "--authorizer-arn", "not-an-arn"]);
    assert_eq!(o.status.code(), Some(2));
}

fn connect_but_not_publish() -> authprobe::emulator::Authorizer {
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iot:Connect", "iot:Subscribe", "iot:Receive"], "Resource": "*"}
    ]});
    let mut a = allowing(AUTH);
    a.function = Function::Rules(vec![Rule {
        token: GOOD.into(),
        answer: Answer::Allow { principal_id: "p".into(), policies: vec![policy] },
    }]);
    a
}

#[tokio::test]
async fn publish_not_allowed_end_to_end() {
    let mut cfg = config();
    cfg.authorizers.push(connect_but_not_publish());
    let emu = start(cfg).await;
    let mut b = plan_builder(&emu);
    b.transports(vec![Transport::Mqtt, Transport::Wss]);
    b.checks_mut().publish = Some("dev/telemetry".into());
    for (version, kind) in [(MqttVersion::V311, Kind::ClosedAfterPublish), (MqttVersion::V5, Kind::PublishRefused)] {
        let plan = b.mqtt_version(version).build().unwrap();
        let report = authprobe::investigate::run(&plan, &plan.baseline()).await;
        let a = &report.attempts[0];
        assert_eq!(a.outcome.kind, kind, "{version:?}: {:?}", a.checks);
        assert_eq!(report.attempts[1].outcome.kind, kind, "wss {version:?}: {:?}", report.attempts[1].checks);
        if kind == Kind::PublishRefused {
            assert!(matches!(&a.outcome.detail, Detail::Ack { code: 0x87, .. }), "{:?}", a.outcome.detail);
        }
        let f = report.findings.iter().find(|f| f.id == id("policy_publish_denied")).expect("a finding");
        assert!(
            f.summary.contains("iot:Publish on arn:aws:iot:us-east-1:123456789012:topic/dev/telemetry"),
            "{}",
            f.summary
        );
        assert_eq!(report.exit_code, 1);
    }
}

#[tokio::test]
async fn allowed_round_trip_end_to_end() {
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    let emu = start(cfg).await;
    let mut b = plan_builder(&emu);
    b.transports(vec![Transport::Mqtt, Transport::Wss]);
    b.checks_mut().subscribe = Some("dev/+".into());
    b.checks_mut().publish = Some("dev/echo".into());
    for version in [MqttVersion::V311, MqttVersion::V5] {
        let plan = b.mqtt_version(version).build().unwrap();
        let report = authprobe::investigate::run(&plan, &plan.baseline()).await;
        for a in &report.attempts {
            let kinds: Vec<Kind> = a.checks.iter().map(|c| c.kind).collect();
            assert_eq!(
                kinds,
                [Kind::SubscribeAccepted, Kind::PublishAccepted, Kind::MessageReceived],
                "{} {version:?}",
                a.id
            );
        }
        assert_eq!(report.exit_code, 0);
    }
}

#[test]
fn probe_reads_aws_documents_and_warns_before_sending() {
    let dir = tempfile::tempdir().unwrap();
    let describe = write(
        &dir,
        "a.json",
        &serde_json::json!({"authorizerDescription": {"authorizerName": "Prod", "tokenKeyName": "deviceToken",
        "status": "INACTIVE", "signingDisabled": false, "tokenSigningPublicKeys": {"k": keys().public_pem}}}),
    );
    let endpoint =
        write(&dir, "e.json", &serde_json::json!({"endpointAddress": "abc123-ats.iot.eu-west-1.amazonaws.com"}));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    drop(listener);
    let o = authprobe(&[
        "probe",
        "--endpoint-json",
        &endpoint,
        "--authorizer-json",
        &describe,
        "--token",
        "t",
        "--signature",
        &sign("other"),
        "--connect-to",
        &addr,
        "--matrix",
        "none",
        "--transport",
        "mqtt",
        "--format",
        "json",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("warning: authorizer `Prod` is INACTIVE"), "{stderr}");
    assert!(
        stderr.contains("warning: the signature does not verify with any of the authorizer's 1 key(s)"),
        "{stderr}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["endpoint"], "abc123-ats.iot.eu-west-1.amazonaws.com");
    assert_eq!(v["warnings"].as_array().unwrap().len(), 2);
    // The authorizer name and token key name come from the document.
    let o = authprobe(&[
        "event",
        "--transport",
        "mqtt",
        "--endpoint",
        ENDPOINT,
        "--authorizer-json",
        &describe,
        "--token",
        "t",
        "--show-secrets",
    ]);
    let ev: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(ev["protocolData"]["mqtt"]["username"], "?x-amz-customauthorizer-name=Prod&deviceToken=t");
    let domain = write(
        &dir,
        "d.json",
        &serde_json::json!({"domainName": "iot.example.com", "authenticationType": "AWS_X509",
        "authorizerConfig": {"defaultAuthorizerName": "Prod", "allowAuthorizerOverride": false}}),
    );
    let o = authprobe(&[
        "probe",
        "--domain-json",
        &domain,
        "--authorizer",
        "Other",
        "--connect-to",
        &addr,
        "--matrix",
        "none",
        "--transport",
        "mqtt",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(stderr.contains("authenticationType is AWS_X509") && stderr.contains("`Other` is ignored"), "{stderr}");
}

/// A key in the wrong format gets an error that names the format found and the openssl command that
/// converts it, exit 2: DER, encrypted PKCS#8, encrypted traditional PEM, an EC key, a certificate,
/// or a public key where the private key is expected (and the converse).
#[test]
fn key_format_errors_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let at = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    let private = keys().private.to_str().unwrap().to_owned();
    openssl(&["pkey", "-in", &private, "-outform", "DER", "-out", &at("k.der")]);
    openssl(&["pkey", "-in", &private, "-pubout", "-outform", "DER", "-out", &at("p.der")]);
    openssl(&["pkcs8", "-topk8", "-in", &private, "-out", &at("enc8.pem"), "-passout", "pass:x"]);
    openssl(&["rsa", "-in", &private, "-traditional", "-aes256", "-out", &at("legacy.pem"), "-passout", "pass:x"]);
    openssl(&["ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", &at("ec.pem")]);
    openssl(&["req", "-x509", "-key", &private, "-subj", "/CN=x", "-days", "1", "-out", &at("cert.pem")]);
    std::fs::write(at("pub.pem"), &keys().public_pem).unwrap();
    for (file, says) in [
        ("k.der", "`openssl pkey -inform DER -in KEY -out key.pem`"),
        ("enc8.pem", "`openssl pkcs8 -in KEY -out key.pem`"),
        ("legacy.pem", "`openssl pkey -in KEY -out key.pem`"),
        ("ec.pem", "elliptic-curve key"),
        ("cert.pem", "this is a certificate"),
        ("pub.pem", "this is a public key"),
    ] {
        let o = authprobe(&["sign", "--token", "t", "--signing-key", &at(file)]);
        assert_eq!(o.status.code(), Some(2), "{file}: {}", out(&o));
        assert!(
            out(&o).contains(&format!("--signing-key {}", at(file))) && out(&o).contains(says),
            "{file}: {}",
            out(&o)
        );
    }
    for (file, says) in [
        ("p.der", "`openssl pkey -pubin -inform DER -in KEY -out pub.pem`"),
        ("cert.pem", "`openssl x509 -in CERT -pubkey -noout`"),
    ] {
        let o = authprobe(&["sign", "--verify", "--token", "t", "--signature", "YWJj", "--public-key", &at(file)]);
        assert_eq!(o.status.code(), Some(2), "{file}: {}", out(&o));
        assert!(out(&o).contains(says), "{file}: {}", out(&o));
    }
}

/// `authprobe explain`: the catalogue entry on a machine without the repository; an unknown id exits
/// 2 naming the closest ids; `--list` lists every cause.
#[test]
fn explain_prints_a_catalogue_entry() {
    let o = authprobe(&["explain", "token_key_name_wrong"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let text = out(&o);
    assert!(text.starts_with("token_key_name_wrong: the token travels under a name other than"), "{text}");
    assert!(text.contains("step:       application: token key name") && text.contains("found by:"), "{text}");
    let o = authprobe(&["explain", "refused_unexplained"]);
    assert_eq!(o.status.code(), Some(0), "{}", out(&o));
    let o = authprobe(&["explain", "sni_mising"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(out(&o).contains("did you mean sni_missing"), "{}", out(&o));
    let o = authprobe(&["explain", "--list"]);
    let listed = String::from_utf8_lossy(&o.stdout).lines().count();
    assert_eq!(listed, authprobe::diagnosis::Cause::ALL.len());
}
