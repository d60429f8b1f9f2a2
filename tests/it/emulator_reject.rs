//! Every refusal the emulator models, as the client observes it, with the recorded reason.

use super::common::*;
use authprobe::emulator::settings::{Mqtt5Reject, TlsReject, WssReject};
use authprobe::emulator::{Answer, Function, Reason, Rule};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_rustls::rustls::{AlertDescription, Error as TlsError};

fn user_for(token: &str) -> String {
    username(&[("x-amz-customauthorizer-name", AUTH), ("token", token)])
}

async fn emu_with(a: authprobe::emulator::Authorizer) -> Emu {
    let mut cfg = config();
    cfg.authorizers.push(a);
    start(cfg).await
}

fn is_closed(c: &Connack) -> bool {
    matches!(c, Connack::Closed(_))
}

#[tokio::test]
async fn no_sni_gets_the_configured_alert() {
    let mut emu = emu_with(allowing(AUTH)).await;
    let err = tls(emu.addr, None, &[b"mqtt"], &emu.ca_pem).await.unwrap_err();
    assert_eq!(rustls_error(&err), Some(&TlsError::AlertReceived(AlertDescription::UnrecognisedName)), "{err}");
    assert_eq!(emu.record().await.reason, Reason::NoSni);
}

#[tokio::test]
async fn unknown_sni_gets_the_configured_alert_or_reset() {
    let mut emu = emu_with(allowing(AUTH)).await;
    let err = tls(emu.addr, Some("other.example.com"), &[b"mqtt"], &emu.ca_pem).await.unwrap_err();
    assert_eq!(rustls_error(&err), Some(&TlsError::AlertReceived(AlertDescription::UnrecognisedName)));
    assert_eq!(emu.record().await.reason, Reason::UnknownSni);

    let mut cfg = config();
    cfg.reject.unknown_sni = TlsReject::Reset;
    let mut emu = start(cfg).await;
    let err = tls(emu.addr, Some("other.example.com"), &[b"mqtt"], &emu.ca_pem).await.unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    assert_eq!(emu.record().await.answer.map(|a| a.to_string()).as_deref(), Some("reset"));
}

#[tokio::test]
async fn x509_alpn_demands_a_client_certificate_and_runs_no_authorizer() {
    let mut emu = emu_with(allowing(AUTH)).await;
    // TLS 1.3: the client finishes first; the server's refusal arrives on the first read.
    let outcome = match tls(emu.addr, Some(ENDPOINT), &[b"x-amzn-mqtt-ca"], &emu.ca_pem).await {
        Err(e) => e,
        Ok(mut s) => {
            let _ = s.write_all(&connect_packet("x", Some(&user_for(GOOD)), "")).await;
            let mut b = [0u8; 16];
            s.read(&mut b).await.expect_err("no CONNACK on the X.509 path")
        }
    };
    assert_eq!(
        rustls_error(&outcome),
        Some(&TlsError::AlertReceived(AlertDescription::CertificateRequired)),
        "{outcome}"
    );
    let rec = emu.record().await;
    assert_eq!((rec.reason, rec.authorizer), (Reason::X509Path, None));
}

#[tokio::test]
async fn unknown_authorizer_without_a_default_closes_mqtt311() {
    let mut emu = emu_with(allowing(AUTH)).await;
    let user = username(&[("x-amz-customauthorizer-name", "Nope"), ("token", GOOD)]);
    assert!(is_closed(&mqtt311(&emu, "d", &user, "").await));
    assert_eq!(emu.record().await.reason, Reason::UnknownAuthorizer);
    // No name at all and no default: no authorizer runs.
    assert!(is_closed(&mqtt311(&emu, "d", &username(&[("token", GOOD)]), "").await));
    assert_eq!(emu.record().await.reason, Reason::NoAuthorizer);
}

#[tokio::test]
async fn unknown_authorizer_is_refused_even_with_a_default() {
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    cfg.default_authorizer = Some(AUTH.into());
    let mut emu = start(cfg).await;
    // Names are case-sensitive: a different case is another, unknown authorizer.
    let user = username(&[("x-amz-customauthorizer-name", "myauthorizer"), ("token", GOOD)]);
    assert_eq!(mqtt5(&emu, "d", &user, "").await, Connack::Code(0x87));
    assert_eq!(emu.record().await.reason, Reason::UnknownAuthorizer);
}

#[tokio::test]
async fn missing_signature_is_refused_before_the_function() {
    let mut emu = emu_with(signed(AUTH, &[])).await;
    assert_eq!(mqtt5(&emu, "d", &user_for(GOOD), "").await, Connack::Code(0x87));
    let rec = emu.record().await;
    assert_eq!(rec.reason, Reason::SignatureMissing);
    assert!(rec.event.is_none() && rec.response.is_none(), "the function must not run");
}

#[tokio::test]
async fn bad_signature_over_wss_is_101_then_close() {
    let mut emu = emu_with(signed(AUTH, &[])).await;
    let headers =
        [("x-amz-customauthorizer-name", AUTH), ("x-amz-customauthorizer-signature", &*sign("other")), ("token", GOOD)];
    assert_eq!(wss(&emu, "/mqtt", &headers, connect_packet("d", None, "")).await, Wss::ClosedAfterUpgrade);
    assert_eq!(emu.record().await.reason, Reason::SignatureInvalid);
}

#[tokio::test]
async fn bad_signature_over_wss_can_be_403() {
    let mut cfg = config();
    cfg.authorizers.push(signed(AUTH, &[]));
    cfg.reject.wss = WssReject::Forbidden;
    let mut emu = start(cfg).await;
    let headers =
        [("x-amz-customauthorizer-name", AUTH), ("x-amz-customauthorizer-signature", &*sign("other")), ("token", GOOD)];
    match wss(&emu, "/mqtt", &headers, connect_packet("d", None, "")).await {
        Wss::Refused(403, body) => assert!(body.contains("Forbidden"), "{body}"),
        other => panic!("expected 403, got {other:?}"),
    }
    assert_eq!(emu.record().await.reason, Reason::SignatureInvalid);
}

#[tokio::test]
async fn signature_must_be_percent_encoded_in_the_username() {
    let (token, sig) = token_with_plus_in_signature();
    let mut emu = emu_with(signed(AUTH, &[&token])).await;
    let with = |s: &str| {
        username(&[("x-amz-customauthorizer-name", AUTH), ("x-amz-customauthorizer-signature", s), ("token", &token)])
    };
    assert_eq!(mqtt311(&emu, "enc", &with(&pct(&sig)), "").await, Connack::Code(0));
    assert_eq!(emu.record().await.reason, Reason::Accepted);
    // Raw: `+` reads as a space, so the signature no longer decodes.
    assert!(is_closed(&mqtt311(&emu, "raw", &with(&sig), "").await));
    let rec = emu.record().await;
    assert_eq!(rec.reason, Reason::SignatureInvalid);
    assert!(rec.credentials.iter().any(|c| c.parameter.ends_with("signature") && !c.percent_encoded));
}

#[tokio::test]
async fn raw_signature_passes_when_plus_is_not_a_space() {
    let (token, sig) = token_with_plus_in_signature();
    let mut cfg = config();
    cfg.authorizers.push(signed(AUTH, &[&token]));
    cfg.plus_as_space = false;
    let mut emu = start(cfg).await;
    let user = username(&[
        ("x-amz-customauthorizer-name", AUTH),
        ("x-amz-customauthorizer-signature", &sig),
        ("token", &token),
    ]);
    assert_eq!(mqtt311(&emu, "raw", &user, "").await, Connack::Code(0));
    assert_eq!(emu.record().await.reason, Reason::Accepted);
}

#[tokio::test]
async fn token_under_the_wrong_key_name() {
    let mut a = allowing(AUTH);
    a.token_key_name = "deviceToken".into();
    let mut emu = emu_with(a).await;
    assert!(is_closed(&mqtt311(&emu, "d", &user_for(GOOD), "").await));
    let rec = emu.record().await;
    assert_eq!(rec.reason, Reason::TokenMissing);
    assert!(rec.detail.contains("deviceToken"), "{}", rec.detail);
}

#[tokio::test]
async fn authorizer_denies_over_https_is_403() {
    let mut emu = emu_with(allowing(AUTH)).await;
    let headers = [("x-amz-customauthorizer-name", AUTH), ("token", "bad-token")];
    let a = https(&emu, "POST", "/topics/t?qos=1", &headers, "x").await;
    assert_eq!((a.status, a.error_type.as_deref()), (403, Some("ForbiddenException:")));
    assert_eq!(a.body["message"], "Forbidden");
    assert_eq!(emu.record().await.reason, Reason::Denied);
}

#[tokio::test]
async fn mqtt311_refusal_can_be_connack_5() {
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    cfg.reject.mqtt3 = "connack:5".parse().unwrap();
    let mut emu = start(cfg).await;
    assert_eq!(mqtt311(&emu, "d", &user_for("bad"), "").await, Connack::Code(5));
    assert_eq!(emu.record().await.answer.map(|a| a.to_string()).as_deref(), Some("connack:0x05"));
}

#[tokio::test]
async fn mqtt5_refusal_can_be_0x86_or_close() {
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    cfg.reject.mqtt5 = "connack:0x86".parse().unwrap();
    let emu = start(cfg.clone()).await;
    assert_eq!(mqtt5(&emu, "d", &user_for("bad"), "").await, Connack::Code(0x86));
    cfg.reject.mqtt5 = Mqtt5Reject::Close;
    let emu = start(cfg).await;
    assert!(is_closed(&mqtt5(&emu, "d", &user_for("bad"), "").await));
}

fn command(cmd: &str) -> authprobe::emulator::Authorizer {
    let mut a = allowing(AUTH);
    a.function = Function::Command(cmd.into());
    a
}

#[tokio::test]
async fn invalid_response_fails_authentication() {
    // principalId with characters IoT Core refuses, and no policyDocuments.
    let mut emu =
        emu_with(command(r#"cat >/dev/null; echo '{"isAuthenticated": true, "principalId": "user?x=1"}'"#)).await;
    assert_eq!(mqtt5(&emu, "d", &user_for(GOOD), "").await, Connack::Code(0x87));
    let rec = emu.record().await;
    assert_eq!(rec.reason, Reason::InvalidResponse);
    assert!(
        rec.detail.contains("principalId.pattern") && rec.detail.contains("policyDocuments.array"),
        "{}",
        rec.detail
    );
}

#[tokio::test]
async fn function_over_the_time_limit_fails() {
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    cfg.time_limit = std::time::Duration::from_millis(200);
    cfg.latency = std::time::Duration::from_millis(2_000);
    let mut emu = start(cfg).await;
    assert!(is_closed(&mqtt311(&emu, "d", &user_for(GOOD), "").await));
    let rec = emu.record().await;
    assert_eq!(rec.reason, Reason::FunctionTimeout);
    assert!(rec.durations.function_ms.unwrap() < 2_000);
}

#[tokio::test]
async fn crashing_command_fails_authentication() {
    let mut emu = emu_with(command("echo boom >&2; exit 3")).await;
    assert!(is_closed(&mqtt311(&emu, "d", &user_for(GOOD), "").await));
    let rec = emu.record().await;
    assert_eq!(rec.reason, Reason::FunctionFailed);
    assert!(rec.detail.contains("boom") && rec.detail.contains('3'), "{}", rec.detail);
}

#[tokio::test]
async fn policy_without_connect_for_this_client_id() {
    let policy = serde_json::json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:us-east-1:123456789012:client/other-device"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Subscribe"], "Resource": "*"}
    ]});
    let mut a = allowing(AUTH);
    a.function = Function::Rules(vec![Rule {
        token: GOOD.into(),
        answer: Answer::Allow { principal_id: "p1".into(), policies: vec![policy] },
    }]);
    let mut emu = emu_with(a).await;
    assert_eq!(mqtt5(&emu, "my-device", &user_for(GOOD), "").await, Connack::Code(0x87));
    let rec = emu.record().await;
    assert_eq!(rec.reason, Reason::ConnectNotAllowed);
    assert!(rec.detail.contains("client/my-device"), "{}", rec.detail);
    // The same policy lets the named client in.
    assert_eq!(mqtt5(&emu, "other-device", &user_for(GOOD), "").await, Connack::Code(0));
}

#[tokio::test]
async fn inactive_authorizer_is_refused() {
    let mut a = allowing(AUTH);
    a.active = false;
    let mut emu = emu_with(a).await;
    let headers = [("x-amz-customauthorizer-name", AUTH), ("token", GOOD)];
    assert_eq!(https(&emu, "POST", "/topics/t", &headers, "").await.status, 403);
    assert_eq!(emu.record().await.reason, Reason::AuthorizerInactive);
}

#[tokio::test]
async fn unknown_paths_and_bad_requests_get_aws_shaped_errors() {
    let mut emu = emu_with(allowing(AUTH)).await;
    let a = https(&emu, "GET", "/nothing", &[], "").await;
    assert_eq!((a.status, a.error_type.as_deref()), (404, Some("ResourceNotFoundException:")));
    assert!(a.body["traceId"].is_string());
    assert_eq!(emu.record().await.reason, Reason::NotFound);
    let a = https(&emu, "POST", "/topics/t?qos=2", &[], "").await;
    assert_eq!((a.status, a.error_type.as_deref()), (400, Some("InvalidRequestException:")));
}

#[tokio::test]
async fn upgrade_time_authorization_runs_the_function_once() {
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls");
    let allow = r#"{"isAuthenticated":true,"principalId":"p","policyDocuments":[{"Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}]}"#;
    let mut cfg = config();
    cfg.authorizers.push(command(&format!("cat >/dev/null; echo call >> '{}'; echo '{allow}'", calls.display())));
    cfg.reject.wss = WssReject::Forbidden;
    let mut emu = start(cfg).await;
    let headers = [("x-amz-customauthorizer-name", AUTH), ("token", GOOD)];
    assert_eq!(wss(&emu, "/mqtt", &headers, connect_packet("once", None, "")).await, Wss::Connack(0));
    assert_eq!(emu.record().await.reason, Reason::Accepted);
    assert_eq!(std::fs::read_to_string(&calls).unwrap().lines().count(), 1);
}
