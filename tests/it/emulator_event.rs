//! The event the authorizer function receives, checked field by field against spec §4 for each
//! transport — as captured by an external command from its stdin.

use super::common::*;
use authprobe::emulator::{Function, Reason};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const ALLOW: &str = r#"{"isAuthenticated":true,"principalId":"p1","disconnectAfterInSeconds":3600,"refreshAfterInSeconds":600,"policyDocuments":[{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}]}"#;

/// An emulator whose signed authorizer runs a command that saves its stdin and allows.
async fn capturing() -> (Emu, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("event.json");
    let mut a = signed(AUTH, &[]);
    a.function = Function::Command(format!("cat > '{}'; echo '{ALLOW}'", file.display()));
    let mut cfg = config();
    cfg.authorizers.push(a);
    (start(cfg).await, dir)
}

fn captured(dir: &tempfile::TempDir) -> Value {
    serde_json::from_slice(&std::fs::read(dir.path().join("event.json")).unwrap()).unwrap()
}

/// A header of the event, by case-insensitive name (names keep the case they arrived in).
fn header<'a>(http: &'a Value, name: &str) -> &'a str {
    let map = http["headers"].as_object().unwrap();
    map.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).and_then(|(_, v)| v.as_str()).unwrap_or_default()
}

fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.chars()
            .enumerate()
            .all(|(i, c)| if [8, 13, 18, 23].contains(&i) { c == '-' } else { c.is_ascii_hexdigit() })
}

#[tokio::test]
async fn mqtt_event() {
    let (mut emu, dir) = capturing().await;
    let sig = pct(&sign(GOOD));
    let user = format!("dev?x-amz-customauthorizer-name={AUTH}&token={GOOD}&x-amz-customauthorizer-signature={sig}");
    let mut s = tls(emu.addr, Some(ENDPOINT), &[b"mqtt"], &emu.ca_pem).await.unwrap();
    s.write_all(&connect_packet("client-7", Some(&user), "p@ss")).await.unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).await.unwrap();
    assert_eq!(ack, [0x20, 2, 0, 0]);
    drop(s);
    let rec = emu.record().await;
    let e = captured(&dir);
    assert_eq!(
        e,
        json!({
            "token": GOOD,
            "signatureVerified": true,
            "protocols": ["tls", "mqtt"],
            "protocolData": {
                "tls": {"serverName": ENDPOINT},
                "mqtt": {"username": user, "password": "cEBzcw==", "clientId": "client-7"}
            },
            "connectionMetadata": {"id": rec.id}
        })
    );
    assert!(is_uuid(&rec.id));
}

#[tokio::test]
async fn mqtt_event_omits_client_id_when_none_was_sent() {
    let (mut emu, dir) = capturing().await;
    let user = format!(
        "?x-amz-customauthorizer-name={AUTH}&token={GOOD}&x-amz-customauthorizer-signature={}",
        pct(&sign(GOOD))
    );
    let mut s = tls(emu.addr, Some(ENDPOINT), &[b"mqtt"], &emu.ca_pem).await.unwrap();
    s.write_all(&connect_packet("", Some(&user), "")).await.unwrap();
    let mut ack = [0u8; 4];
    s.read_exact(&mut ack).await.unwrap();
    drop(s);
    emu.record().await;
    let mqtt = &captured(&dir)["protocolData"]["mqtt"];
    assert!(mqtt.get("clientId").is_none(), "{mqtt}");
    assert!(mqtt.get("password").is_none(), "{mqtt}");
}

#[tokio::test]
async fn wss_event() {
    let (mut emu, dir) = capturing().await;
    let sig = sign(GOOD);
    let headers = [("x-amz-customauthorizer-name", AUTH), ("x-amz-customauthorizer-signature", sig.as_str())];
    let target = format!("/mqtt?token={GOOD}");
    assert_eq!(
        wss(&emu, &target, &headers, connect_packet("ws-client", Some("plain-user"), "pw")).await,
        Wss::Connack(0)
    );
    let rec = emu.record().await;
    let e = captured(&dir);
    assert_eq!(e["token"], GOOD);
    assert_eq!(e["signatureVerified"], true);
    assert_eq!(e["protocols"], json!(["tls", "http", "mqtt"]));
    assert_eq!(e["protocolData"]["tls"], json!({"serverName": ENDPOINT}));
    let http = &e["protocolData"]["http"];
    assert_eq!(http["queryString"], format!("?token={GOOD}"));
    assert_eq!(header(http, "x-amz-customauthorizer-name"), AUTH);
    assert_eq!(header(http, "x-amz-customauthorizer-signature"), sig.as_str());
    assert_eq!(header(http, "host"), ENDPOINT);
    assert_eq!(header(http, "sec-websocket-protocol"), "mqtt");
    assert_eq!(
        e["protocolData"]["mqtt"],
        json!({"username": "plain-user", "password": "cHc=", "clientId": "ws-client"})
    );
    assert_eq!(e["connectionMetadata"]["id"], rec.id.as_str());
}

#[tokio::test]
async fn https_event() {
    let (mut emu, dir) = capturing().await;
    let sig = sign(GOOD);
    let headers =
        [("X-Amz-CustomAuthorizer-Name", AUTH), ("X-Amz-CustomAuthorizer-Signature", sig.as_str()), ("token", GOOD)];
    let a = https(&emu, "POST", "/topics/a/b?qos=1", &headers, "{}").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let rec = emu.record().await;
    assert_eq!(rec.reason, Reason::Accepted);
    let e = captured(&dir);
    assert_eq!(e["protocols"], json!(["tls", "http"]));
    assert!(e["protocolData"].get("mqtt").is_none());
    assert_eq!(e["protocolData"]["http"]["queryString"], "?qos=1");
    assert_eq!(header(&e["protocolData"]["http"], "x-amz-customauthorizer-name"), AUTH);
    assert_eq!(header(&e["protocolData"]["http"], "token"), GOOD);
    assert_eq!(e["signatureVerified"], true);
    assert_eq!(e["connectionMetadata"]["id"], rec.id.as_str());
}

#[tokio::test]
async fn signature_verified_is_false_when_signing_is_disabled() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("event.json");
    let mut a = allowing(AUTH);
    a.function = Function::Command(format!("cat > '{}'; echo '{ALLOW}'", file.display()));
    let mut cfg = config();
    cfg.authorizers.push(a);
    let mut emu = start(cfg).await;
    let user = username(&[("x-amz-customauthorizer-name", AUTH), ("token", GOOD)]);
    assert_eq!(mqtt311(&emu, "d", &user, "").await, Connack::Code(0));
    emu.record().await;
    assert_eq!(captured(&dir)["signatureVerified"], false);
}

#[tokio::test]
async fn secrets_are_redacted_in_records_unless_shown() {
    let mut cfg = config();
    cfg.authorizers.push(signed(AUTH, &[]));
    cfg.show_secrets = false;
    let mut emu = start(cfg).await;
    let sig = sign(GOOD);
    let user = username(&[
        ("x-amz-customauthorizer-name", AUTH),
        ("x-amz-customauthorizer-signature", &pct(&sig)),
        ("token", GOOD),
    ]);
    assert_eq!(mqtt311(&emu, "d", &user, "secret-password").await, Connack::Code(0));
    let text = serde_json::to_string(&emu.record().await).unwrap();
    for secret in [GOOD, sig.as_str(), pct(&sig).as_str(), "secret-password", "c2VjcmV0LXBhc3N3b3Jk"] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
    assert!(text.contains("<redacted len=10 sha256="), "{text}");
}

#[tokio::test]
async fn secrets_echoed_by_the_function_are_redacted_too() {
    let token = "tok-ECHOED-789";
    let mut cfg = config();
    cfg.show_secrets = false;
    let mut crashing = allowing(AUTH);
    // A traceback that prints the token, then a crash; and a response that echoes it back.
    crashing.function = Function::Command(format!("cat >/dev/null; echo 'KeyError: {token}' >&2; exit 1"));
    cfg.authorizers.push(crashing);
    let mut echoing = allowing("Echo");
    echoing.function =
        Function::Command(format!(r#"cat >/dev/null; echo '{{"isAuthenticated": false, "context": "{token}"}}'"#));
    cfg.authorizers.push(echoing);
    let mut emu = start(cfg).await;
    for name in [AUTH, "Echo"] {
        let user = username(&[("x-amz-customauthorizer-name", name), ("token", token)]);
        assert!(matches!(mqtt311(&emu, "d", &user, "").await, Connack::Closed(_)));
        let rec = emu.record().await;
        let text = serde_json::to_string(&rec).unwrap();
        assert!(!text.contains(token), "{name}: token leaked: {text}");
        assert!(text.contains("<redacted len=14"), "{name}: {text}");
    }
}
