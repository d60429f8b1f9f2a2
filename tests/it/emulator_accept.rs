//! Accepted connections over every transport and credential placement.

use super::common::*;
use authprobe::auth::credentials::Placement;
use authprobe::emulator::Reason;

#[tokio::test]
async fn mqtt311_over_tls_is_accepted() {
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    let mut emu = start(cfg).await;
    let user = username(&[("x-amz-customauthorizer-name", AUTH), ("token", GOOD)]);
    assert_eq!(mqtt311(&emu, "dev-1", &user, "").await, Connack::Code(0));
    let rec = emu.record().await;
    assert_eq!((rec.reason, rec.mqtt_version, rec.alpn.as_deref()), (Reason::Accepted, Some(4), Some("mqtt")));
}

#[tokio::test]
async fn mqtt5_over_tls_is_accepted_with_a_signed_token() {
    let mut cfg = config();
    cfg.authorizers.push(signed(AUTH, &[]));
    let mut emu = start(cfg).await;
    let sig = pct(&sign(GOOD));
    let user =
        username(&[("x-amz-customauthorizer-name", AUTH), ("x-amz-customauthorizer-signature", &sig), ("token", GOOD)]);
    assert_eq!(mqtt5(&emu, "dev-5", &user, "pw").await, Connack::Code(0));
    let rec = emu.record().await;
    assert_eq!((rec.reason, rec.mqtt_version), (Reason::Accepted, Some(5)));
    assert!(matches!(rec.signature, Some(authprobe::auth::signature::Verdict::Verified { .. })));
}

#[tokio::test]
async fn default_authorizer_runs_when_none_is_named() {
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    cfg.default_authorizer = Some(AUTH.into());
    let mut emu = start(cfg).await;
    assert_eq!(mqtt311(&emu, "dev-d", &username(&[("token", GOOD)]), "").await, Connack::Code(0));
    assert_eq!(emu.record().await.authorizer.as_deref(), Some(AUTH));
}

#[tokio::test]
async fn wss_with_credentials_in_headers() {
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    let mut emu = start(cfg).await;
    let headers = [("X-Amz-CustomAuthorizer-Name", AUTH), ("token", GOOD)];
    assert_eq!(wss(&emu, "/mqtt", &headers, connect_packet("dev-h", None, "")).await, Wss::Connack(0));
    let rec = emu.record().await;
    assert_eq!(rec.reason, Reason::Accepted);
    assert!(rec.credentials.iter().all(|c| c.placement == Placement::Header));
}

#[tokio::test]
async fn wss_with_credentials_in_the_url_query() {
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    let mut emu = start(cfg).await;
    let target = format!("/mqtt?x-amz-customauthorizer-name={AUTH}&token={GOOD}");
    assert_eq!(wss(&emu, &target, &[], connect_packet("dev-q", None, "")).await, Wss::Connack(0));
    let rec = emu.record().await;
    assert!(rec.credentials.iter().all(|c| c.placement == Placement::Query), "{:?}", rec.credentials);
}

#[tokio::test]
async fn wss_with_credentials_in_the_connect_username() {
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    let mut emu = start(cfg).await;
    let user = username(&[("x-amz-customauthorizer-name", AUTH), ("token", GOOD)]);
    assert_eq!(wss(&emu, "/mqtt", &[], connect_packet("dev-u", Some(&user), "")).await, Wss::Connack(0));
    let rec = emu.record().await;
    assert!(rec.credentials.iter().all(|c| c.placement == Placement::Username));
}

#[tokio::test]
async fn https_publish_with_headers() {
    let mut cfg = config();
    cfg.authorizers.push(allowing(AUTH));
    let mut emu = start(cfg).await;
    let headers = [("x-amz-customauthorizer-name", AUTH), ("token", GOOD)];
    let a = https(&emu, "POST", "/topics/dev/telemetry?qos=1", &headers, "{\"t\":1}").await;
    assert_eq!(a.status, 200);
    assert_eq!(a.body["message"], "OK");
    assert!(a.body["traceId"].as_str().is_some_and(|t| !t.is_empty()));
    assert_eq!(emu.record().await.reason, Reason::Accepted);
}

#[tokio::test]
async fn https_publish_with_the_url_query() {
    let mut cfg = config();
    cfg.authorizers.push(signed(AUTH, &[]));
    let mut emu = start(cfg).await;
    let target = format!(
        "/topics/dev/telemetry?qos=0&x-amz-customauthorizer-name={AUTH}&x-amz-customauthorizer-signature={}&token={GOOD}",
        pct(&sign(GOOD))
    );
    let a = https(&emu, "POST", &target, &[], "hello").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let rec = emu.record().await;
    assert!(rec.credentials.iter().all(|c| c.placement == Placement::Query));
}

#[tokio::test]
async fn python_sdk_username_with_metrics_is_parsed() {
    let mut cfg = config();
    cfg.authorizers.push(signed(AUTH, &["tok value"]));
    let mut emu = start(cfg).await;
    // As the AWS IoT Device SDK v2 for Python sends it: `+` and `=` percent-encoded, `/` raw.
    let sig = sign("tok value").replace('+', "%2B").replace('=', "%3D");
    let user = format!(
        "user?x-amz-customauthorizer-name={AUTH}&x-amz-customauthorizer-signature={sig}&token=tok value\
         &SDK=IoTDeviceSDK/Python&Platform=Unix\
         &Metadata=(CRTVersion=0.36.1;IoTSDKVersion=1.31.0;IoTSDKFeature=F/3,G/A;IoTSDKMetricsVersion=1)"
    );
    assert_eq!(mqtt311(&emu, "py-dev", &user, "").await, Connack::Code(0));
    let rec = emu.record().await;
    assert_eq!(rec.reason, Reason::Accepted, "{}", rec.detail);
    assert_eq!(rec.event_value().unwrap()["token"], "tok value");
    assert_eq!(rec.event_value().unwrap()["protocolData"]["mqtt"]["username"], user.as_str());
}
