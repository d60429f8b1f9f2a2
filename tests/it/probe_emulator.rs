//! The probe against the in-process emulator: every outcome kind the emulator can produce at the
//! tcp, tls, upgrade, mqtt and http stages, and what arrived at the emulator.

use super::common::*;
use authprobe::auth::event::Transport;
use authprobe::emulator::settings::{TlsReject, WssReject};
use authprobe::emulator::{EmulatorConfig, Reason};
use authprobe::probe::outcome::{CloseHow, Detail, Kind, Stage};
use authprobe::probe::plan::{MqttVersion, SignatureForm, Trust};
use authprobe::probe::{AttemptSpec, ProbePlan};
use std::time::Duration;

fn cfg_with(a: authprobe::emulator::Authorizer) -> EmulatorConfig {
    let mut cfg = config();
    cfg.authorizers.push(a);
    cfg
}

fn kind(r: &authprobe::probe::AttemptReport) -> Kind {
    r.outcome.kind
}

#[tokio::test]
async fn baseline_succeeds_on_every_transport_with_a_signed_token() {
    let mut emu = start(cfg_with(signed(AUTH, &[]))).await;
    let mut b = plan_builder(&emu);
    b.credentials_mut().signature = Some(sign(GOOD).into());
    let plan = b.build().unwrap();
    let report = authprobe::investigate::run(&plan, &plan.baseline()).await;
    assert_eq!(report.exit_code, 0);
    let kinds: Vec<Kind> = report.attempts.iter().map(kind).collect();
    assert_eq!(kinds, [Kind::ConnackAccepted, Kind::ConnackAccepted, Kind::HttpOk]);
    // What arrived: SNI, ALPN, placement, a verified signature, the Host header.
    let recs = [emu.record().await, emu.record().await, emu.record().await];
    for (rec, (alpn, placement)) in recs.iter().zip([(Some("mqtt"), "username"), (None, "header"), (None, "header")]) {
        assert_eq!(rec.reason, Reason::Accepted);
        assert_eq!(rec.sni.as_deref(), Some(ENDPOINT));
        assert_eq!(rec.alpn.as_deref(), alpn);
        assert!(matches!(rec.signature, Some(authprobe::auth::signature::Verdict::Verified { .. })));
        for c in &rec.credentials {
            assert_eq!(serde_json::to_value(c.placement).unwrap(), placement);
        }
    }
    assert!(recs[0].credentials.iter().find(|c| c.parameter.ends_with("signature")).unwrap().percent_encoded);
    assert_eq!(recs[1].host.as_deref(), Some(ENDPOINT));
    assert_eq!(recs[2].request.as_deref(), Some("POST /topics/probe/test?qos=1"));
}

#[tokio::test]
async fn no_sni_is_a_tls_alert() {
    let emu = start(cfg_with(allowing(AUTH))).await;
    let plan = probe_plan(&emu);
    let spec = AttemptSpec { sni: None, ..baseline(&plan, Transport::Mqtt) };
    let r = probe(&plan, &spec).await;
    assert_eq!((r.outcome.stage, kind(&r)), (Stage::Tls, Kind::TlsAlert));
    assert_eq!(r.outcome.detail, Detail::Alert { alert: authprobe::wire::alert::Alert::UNRECOGNIZED_NAME, code: 112 });
    assert!(r.advice.likely_cause.contains("no SNI"), "{:?}", r.advice);
}

#[tokio::test]
async fn unknown_sni_closed_with_fin_or_reset() {
    for (how, expect) in [(TlsReject::Close, CloseHow::Eof), (TlsReject::Reset, CloseHow::Reset)] {
        let mut cfg = cfg_with(allowing(AUTH));
        cfg.reject.unknown_sni = how;
        let emu = start(cfg).await;
        let plan = probe_plan(&emu);
        let spec = AttemptSpec { sni: Some("other.example.com".into()), ..baseline(&plan, Transport::Https) };
        let r = probe(&plan, &spec).await;
        assert_eq!(kind(&r), Kind::TlsClosed, "{how}");
        assert_eq!(r.outcome.detail, Detail::Closed { how: expect, bytes_seen: 0 }, "{how}");
    }
}

#[tokio::test]
async fn x509_alpn_is_the_certificate_required_alert() {
    let emu = start(cfg_with(allowing(AUTH))).await;
    let plan = probe_plan(&emu);
    let spec = AttemptSpec { alpn: vec![b"x-amzn-mqtt-ca".to_vec()], ..baseline(&plan, Transport::Mqtt) };
    let r = probe(&plan, &spec).await;
    assert_eq!((r.outcome.stage, kind(&r)), (Stage::Tls, Kind::TlsAlert));
    assert_eq!(
        r.outcome.detail,
        Detail::Alert { alert: authprobe::wire::alert::Alert::CERTIFICATE_REQUIRED, code: 116 }
    );
    assert!(r.advice.likely_cause.contains("X.509 path"));
}

#[tokio::test]
async fn untrusted_chain_is_reported_with_its_issuer() {
    let emu = start(cfg_with(allowing(AUTH))).await;
    let mut b = plan_builder(&emu);
    b.trust(Trust::Bundled);
    let plan = b.build().unwrap();
    let r = probe(&plan, &baseline(&plan, Transport::Mqtt)).await;
    assert_eq!(kind(&r), Kind::TlsCertUntrusted);
    let Detail::Cert { chain, name_checked, .. } = &r.outcome.detail else { panic!("{:?}", r.outcome) };
    assert_eq!(name_checked, ENDPOINT);
    assert!(chain[0].dns_names.contains(&ENDPOINT.to_owned()));
    assert!(chain.last().unwrap().issuer.contains("authprobe emulator CA"));
    assert!(r.advice.likely_cause.contains("intercepts TLS"), "{:?}", r.advice);
}

#[tokio::test]
async fn insecure_is_marked_on_the_attempt() {
    let emu = start(cfg_with(allowing(AUTH))).await;
    let mut b = plan_builder(&emu);
    b.trust(Trust::Insecure);
    let plan = b.build().unwrap();
    let r = probe(&plan, &baseline(&plan, Transport::Mqtt)).await;
    assert_eq!(kind(&r), Kind::ConnackAccepted);
    assert!(r.sent.insecure);
}

#[tokio::test]
async fn upgrade_rejected_with_the_aws_error() {
    let mut cfg = cfg_with(signed(AUTH, &[]));
    cfg.reject.wss = WssReject::Forbidden;
    let emu = start(cfg).await;
    let plan = probe_plan(&emu); // no signature
    let r = probe(&plan, &baseline(&plan, Transport::Wss)).await;
    assert_eq!((r.outcome.stage, kind(&r)), (Stage::Upgrade, Kind::UpgradeRejected));
    let Detail::Http { status, error_type, message, trace_id, .. } = &r.outcome.detail else { panic!() };
    assert_eq!(
        (*status, error_type.as_deref(), message.as_deref()),
        (403, Some("ForbiddenException:"), Some("Forbidden"))
    );
    assert!(trace_id.is_some());
}

#[tokio::test]
async fn wss_with_alpn_mqtt_gets_no_upgrade() {
    let emu = start(cfg_with(allowing(AUTH))).await;
    let plan = probe_plan(&emu);
    let spec = AttemptSpec { alpn: vec![b"mqtt".to_vec()], ..baseline(&plan, Transport::Wss) };
    let r = probe(&plan, &spec).await;
    assert_eq!((r.outcome.stage, kind(&r)), (Stage::Upgrade, Kind::UpgradeClosed));
}

#[tokio::test]
async fn wss_refusal_is_101_then_closed_before_connack() {
    let emu = start(cfg_with(allowing(AUTH))).await;
    let mut b = plan_builder(&emu);
    b.credentials_mut().token = Some("denied".into());
    let plan = b.build().unwrap();
    let r = probe(&plan, &baseline(&plan, Transport::Wss)).await;
    assert_eq!((r.outcome.stage, kind(&r)), (Stage::Mqtt, Kind::ClosedBeforeConnack));
    assert!(r.stages.iter().any(|s| s.stage == Stage::Upgrade));
}

#[tokio::test]
async fn connack_outcomes() {
    let mut cfg = cfg_with(allowing(AUTH));
    cfg.reject.mqtt3 = "connack:5".parse().unwrap();
    let emu = start(cfg).await;
    let mut b = plan_builder(&emu);
    let plan = b.build().unwrap();
    let r = probe(&plan, &baseline(&plan, Transport::Mqtt)).await;
    assert_eq!(kind(&r), Kind::ConnackAccepted);
    b.credentials_mut().token = Some("denied".into());
    let plan = b.build().unwrap();
    let r = probe(&plan, &baseline(&plan, Transport::Mqtt)).await;
    assert_eq!(kind(&r), Kind::ConnackRefused);
    assert_eq!(
        r.outcome.detail,
        Detail::Connack { code: 5, reason: "not_authorized".into(), session_present: false, reason_string: None }
    );
    let v5 = AttemptSpec { mqtt_version: MqttVersion::V5, ..baseline(&plan, Transport::Mqtt) };
    let r = probe(&plan, &v5).await;
    assert_eq!(
        r.outcome.detail,
        Detail::Connack { code: 0x87, reason: "not_authorized".into(), session_present: false, reason_string: None }
    );
}

#[tokio::test]
async fn mqtt311_refusal_is_a_close_timed_from_connect() {
    let emu = start(cfg_with(allowing(AUTH))).await;
    let plan = probe_plan(&emu);
    let spec = AttemptSpec { signature: SignatureForm::Missing, ..baseline(&plan, Transport::Mqtt) };
    let mut b = plan_builder(&emu);
    b.credentials_mut().token_key_name = "deviceToken".into();
    let plan = b.build().unwrap();
    let r = probe(&plan, &spec).await;
    assert_eq!(kind(&r), Kind::ClosedBeforeConnack);
    assert!(
        matches!(r.outcome.detail, Detail::ClosedAfter { how: CloseHow::CloseNotify, .. }),
        "{:?}",
        r.outcome.detail
    );
}

#[tokio::test]
async fn slow_authorizer_is_a_connack_timeout() {
    let mut cfg = cfg_with(allowing(AUTH));
    cfg.latency = Duration::from_secs(20);
    cfg.time_limit = Duration::from_secs(30);
    let emu = start(cfg).await;
    let mut b = plan_builder(&emu);
    b.timeout(Duration::from_millis(300));
    let plan = b.build().unwrap();
    let r = probe(&plan, &baseline(&plan, Transport::Mqtt)).await;
    assert_eq!(kind(&r), Kind::ConnackTimeout);
    let r = probe(&plan, &baseline(&plan, Transport::Https)).await;
    assert_eq!(kind(&r), Kind::HttpTimeout);
}

#[tokio::test]
async fn raw_mqtt_without_alpn_is_an_mqtt_protocol_error() {
    let emu = start(cfg_with(allowing(AUTH))).await;
    let plan = probe_plan(&emu);
    let spec = AttemptSpec { alpn: vec![], ..baseline(&plan, Transport::Mqtt) };
    let r = probe(&plan, &spec).await;
    assert_eq!(kind(&r), Kind::MqttProtocolError);
    assert!(r.advice.likely_cause.contains("ALPN `mqtt` was not negotiated"), "{:?}", r.advice);
}

#[tokio::test]
async fn http_outcomes() {
    let emu = start(cfg_with(allowing(AUTH))).await;
    let mut b = plan_builder(&emu);
    let plan = b.build().unwrap();
    let r = probe(&plan, &baseline(&plan, Transport::Https)).await;
    assert_eq!(kind(&r), Kind::HttpOk);
    // HTTPS with ALPN mqtt lands on the MQTT path, which closes on a non-CONNECT.
    let spec = AttemptSpec { alpn: vec![b"mqtt".to_vec()], ..baseline(&plan, Transport::Https) };
    assert_eq!(kind(&probe(&plan, &spec).await), Kind::HttpClosed);
    b.credentials_mut().token = Some("denied".into());
    let plan = b.build().unwrap();
    let r = probe(&plan, &baseline(&plan, Transport::Https)).await;
    assert_eq!(kind(&r), Kind::HttpRejected);
    assert!(matches!(&r.outcome.detail, Detail::Http { status: 403, .. }));
}

#[tokio::test]
async fn nothing_listening_is_tcp_refused() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let plan: ProbePlan = probe_plan_at(addr, &config().identity.ca_pem.unwrap());
    let r = probe(&plan, &baseline(&plan, Transport::Mqtt)).await;
    assert_eq!((r.outcome.stage, kind(&r)), (Stage::Tcp, Kind::TcpRefused));
}

/// The baselines of several transports share the device's client ID. IoT Core (and the emulator)
/// keep one connection per client ID: run at once, the second took the first over mid-check, which
/// read as `closed_after_publish` and a confident, wrong `policy_publish_denied`. They now run one
/// after another; five runs in a row, as the takeover was a race (about one run in two before).
#[tokio::test]
async fn baselines_sharing_a_client_id_do_not_take_each_other_over() {
    let emu = start(cfg_with(allowing(AUTH))).await;
    let mut b = plan_builder(&emu);
    b.transports(vec![Transport::Mqtt, Transport::Wss]);
    b.checks(authprobe::probe::Checks { publish: Some("probe/test".into()), subscribe: Some("probe/#".into()) });
    let plan = b.build().unwrap();
    let specs = plan.baseline();
    assert!(specs.iter().all(|s| s.client_id == plan.client_id()), "the baselines use the device's client ID");
    for run in 0..5 {
        let schedule = authprobe::probe::Schedule { parallel: 8, spacing: None };
        let report = authprobe::investigate::run_with(&plan, &specs, schedule, &authprobe::probe::Quiet).await;
        let kinds: Vec<Kind> = report.attempts.iter().map(kind).collect();
        assert_eq!(kinds, [Kind::MessageReceived, Kind::MessageReceived], "run {run}");
        assert!(
            report.findings.is_empty(),
            "run {run}: {:?}",
            report.findings.iter().map(|f| f.id).collect::<Vec<_>>()
        );
    }
}
