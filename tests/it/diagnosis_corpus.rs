//! The scenario corpus: the emulator with one injected fault per scenario, the probe as the
//! misconfigured device (quick matrix, follow-ups on), and the first finding's id, kind, confidence
//! and candidates. No scenario may get a wrong `confirmed` finding.

use super::common::*;
use authprobe::auth::event::Transport;
use authprobe::diagnosis::local::{DescribedAuthorizer, Documents, Domain};
use authprobe::diagnosis::{Confidence, Finding, FindingKind};
use authprobe::emulator::{Answer, Authorizer, EmulatorConfig, Function, Rule};
use authprobe::probe::matrix::{Level, variants};
use authprobe::probe::plan::Sni;
use authprobe::probe::plan::Trust;
use authprobe::probe::{MqttVersion, PlanBuilder, ProbePlan, Schedule};
use authprobe::report::Report;
use std::time::Duration;

use Confidence::{Confirmed, Likely, Possible};
use FindingKind::{Cause, Risk, Unexplained};

/// The authorizer limit of the timing scenarios: IoT Core's 5 s scaled down (the emulator's
/// `time_limit` and the plan's `authorizer_limit` together), so that the suite does not wait 5 s per
/// scenario. The thresholds scale with it (slow from 80 %, timed out from 96 %).
const LIMIT: Duration = Duration::from_secs(2);
/// A function this slow is close to the limit (82 %: the close comes a little later still).
const SLOW: Duration = Duration::from_millis(1_640);
/// A function this slow is past the limit.
const PAST: Duration = Duration::from_millis(2_200);

/// An emulator whose function takes `latency`, under the scaled limit.
fn timed(latency: Duration) -> EmulatorConfig {
    let mut c = cfg(allowing(AUTH));
    c.time_limit = LIMIT;
    c.latency = latency;
    c
}

fn cfg(a: Authorizer) -> EmulatorConfig {
    let mut c = config();
    c.authorizers.push(a);
    c
}

/// What describe-authorizer would print for `a`.
fn described(a: &Authorizer) -> Documents {
    Documents {
        authorizer: Some(DescribedAuthorizer {
            name: a.name.clone(),
            token_key_name: a.token_key_name.clone(),
            active: a.active,
            signing_keys: a.signing.clone(),
        }),
        ..Documents::default()
    }
}

async fn diagnose_plan(plan: ProbePlan) -> Report {
    let specs = variants(&plan, Level::Quick);
    let run = authprobe::investigate::run_with(
        &plan,
        &specs,
        Schedule { parallel: 8, spacing: None },
        &authprobe::probe::Quiet,
    );
    tokio::time::timeout(Duration::from_secs(120), run).await.expect("the probe ends within its timeouts")
}

async fn diagnose(c: EmulatorConfig, tweak: impl FnOnce(&mut PlanBuilder)) -> Report {
    let emu = start(c).await;
    let mut plan = plan_builder(&emu);
    tweak(&mut plan);
    diagnose_plan(plan.build().unwrap()).await
}

fn first(r: &Report) -> &Finding {
    r.findings.first().unwrap_or_else(|| panic!("no finding; attempts: {:#?}", outcomes(r)))
}

fn outcomes(r: &Report) -> Vec<String> {
    r.attempts.iter().map(|a| format!("{} {}/{}", a.id, a.outcome.stage.as_str(), a.outcome.kind.as_str())).collect()
}

/// The first finding is `id` of `kind` with `confidence`; `candidates` (when given) are exactly
/// these, in any order. Every confirmed finding of the report must be one the scenario allows.
#[track_caller]
fn expect(r: &Report, id: &str, kind: FindingKind, confidence: Confidence, candidates: Option<&[&str]>) {
    let f = first(r);
    let ctx = || format!("{f:#?}\n{:#?}", outcomes(r));
    assert_eq!((f.id, f.kind, f.confidence), (self::id(id), kind, confidence), "{}", ctx());
    if let Some(want) = candidates {
        let mut got = f.candidates.clone();
        got.sort_unstable();
        let mut want: Vec<_> = want.iter().map(|c| cause(c)).collect();
        want.sort_unstable();
        assert_eq!(got, want, "{}", ctx());
    }
    for other in r.findings.iter().skip(1).filter(|f| f.kind != Risk) {
        assert_ne!(other.confidence, Confirmed, "a second confirmed cause: {other:#?}");
    }
    assert!(!f.next.is_empty() || kind == Risk, "a finding without next commands: {f:#?}");
}

fn no_cause(r: &Report) {
    assert!(r.findings.iter().all(|f| f.kind == Risk), "{:#?}", r.findings);
    assert_eq!(r.exit_code, 0, "{:#?}", outcomes(r));
}

fn policy(statements: serde_json::Value) -> Function {
    let doc = serde_json::json!({"Version": "2012-10-17", "Statement": statements});
    Function::Rules(vec![Rule {
        token: GOOD.into(),
        answer: Answer::Allow { principal_id: "p".into(), policies: vec![doc] },
    }])
}

const ARN: &str = "arn:aws:iot:us-east-1:123456789012";

// ── A working device ─────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn healthy_device_gets_only_risks() {
    let r = diagnose(cfg(allowing(AUTH)), |_| {}).await;
    no_cause(&r);
    let ids: Vec<&str> = r.findings.iter().map(|f| f.id.as_str()).collect();
    assert!(ids.contains(&"sni_missing") && ids.contains(&"alpn_missing"), "{ids:?}");
}

#[tokio::test]
async fn healthy_signed_device_with_plus_in_signature_risks_raw_encoding() {
    let (token, sig) = token_with_plus_in_signature();
    let a = signed(AUTH, &[&token]);
    let docs = described(&a);
    let r = diagnose(cfg(a), |p| {
        p.credentials_mut().token = Some(token.into());
        p.credentials_mut().signature = Some(sig.into());
        p.documents(docs);
    })
    .await;
    no_cause(&r);
    assert!(r.findings.iter().any(|f| f.id == id("signature_not_encoded") && f.kind == Risk), "{:#?}", r.findings);
    assert!(r.local_checks.iter().all(|c| c.passed), "{:#?}", r.local_checks);
}

#[tokio::test]
async fn slow_but_accepting_authorizer_is_a_risk() {
    let r = diagnose(timed(SLOW), |p| {
        p.transports(vec![Transport::Mqtt]).authorizer_limit(LIMIT);
    })
    .await;
    no_cause(&r);
    assert!(r.findings.iter().any(|f| f.id == id("lambda_slow")), "{:#?}", r.findings);
}

#[tokio::test]
async fn port_other_than_443_that_works_through_connect_to_is_a_risk() {
    let r = diagnose(cfg(allowing(AUTH)), |p| {
        p.port(8883);
    })
    .await;
    no_cause(&r);
    let f = r.findings.iter().find(|f| f.id == id("wrong_port")).unwrap_or_else(|| panic!("{:#?}", r.findings));
    assert_eq!((f.kind, f.confidence), (Risk, Confirmed));
    assert!(f.summary.contains("port 8883"), "{}", f.summary);
}

// ── The network and TLS ──────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn port_blocked() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let r = diagnose_plan(probe_plan_at(addr, &config().identity.ca_pem.unwrap())).await;
    expect(&r, "port_blocked", Cause, Confirmed, None);
    assert!(first(&r).summary.contains(&addr.to_string()), "{}", first(&r).summary);
}

#[tokio::test]
async fn dns_failed() {
    let emu = start(cfg(allowing(AUTH))).await;
    let mut b = plan_builder(&emu);
    b.connect_to("no-such-host.invalid", Some(emu.addr.port()));
    let plan = b.build().unwrap();
    let r = diagnose_plan(plan).await;
    expect(&r, "dns_failed", Cause, Confirmed, None);
}

#[tokio::test]
async fn tls_intercepted() {
    let emu = start(cfg(allowing(AUTH))).await;
    let mut b = plan_builder(&emu);
    let other = authprobe::emulator::certs::Ca::generate("Amazon Root CA 1 (stand-in)").unwrap();
    b.trust(Trust::Roots(vec![other.der()]));
    let plan = b.build().unwrap();
    let r = diagnose_plan(plan).await;
    expect(&r, "tls_intercepted", Cause, Confirmed, None);
    assert!(first(&r).summary.contains("authprobe emulator CA"), "{}", first(&r).summary);
}

#[tokio::test]
async fn ip_literal_endpoint_sends_no_sni() {
    let r = diagnose(cfg(allowing(AUTH)), |p| {
        p.endpoint("127.0.0.1");
        p.trust(Trust::Insecure);
    })
    .await;
    expect(&r, "sni_missing", Cause, Confirmed, None);
    assert!(r.attempts.iter().all(|a| a.sent.sni.is_none()), "an IP is never sent as SNI");
}

/// A device that sends no SNI fails on every transport for the same reason: one finding naming all
/// three, not three copies.
#[tokio::test]
async fn device_without_sni_fails_every_transport_in_one_finding() {
    let r = diagnose(cfg(allowing(AUTH)), |p| {
        p.device_mut().sni = Sni::Omitted;
    })
    .await;
    expect(&r, "sni_missing", Cause, Confirmed, None);
    assert_eq!(r.findings.iter().filter(|f| f.id == id("sni_missing")).count(), 1, "{:#?}", r.findings);
    let f = first(&r);
    assert!(f.summary.starts_with("The device's attempts over mqtt, wss, https fail"), "{}", f.summary);
    assert_eq!(f.evidence.len(), 6, "each transport's device attempt and documented attempt: {:#?}", f.evidence);
}

#[tokio::test]
async fn sni_not_an_endpoint_of_the_account() {
    let r = diagnose(cfg(allowing(AUTH)), |p| {
        p.endpoint("wrong-ats.iot.us-east-1.amazonaws.com");
        p.trust(Trust::Insecure);
    })
    .await;
    expect(&r, "sni_not_endpoint", Cause, Likely, Some(&["sni_not_endpoint", "tls_intercepted"]));
}

#[tokio::test]
async fn alpn_stripped_on_the_path() {
    let mut c = cfg(allowing(AUTH));
    c.strip_alpn = true;
    let r = diagnose(c, |_| {}).await;
    expect(&r, "alpn_stripped", Cause, Confirmed, None);
}

#[tokio::test]
async fn nothing_reachable_variants_are_not_called_expected_failures() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let r = diagnose_plan(probe_plan_at(addr, &config().identity.ca_pem.unwrap())).await;
    let mut text = Vec::new();
    let details = authprobe::report::text::Style { details: true, ..Default::default() };
    authprobe::report::text::write(&r, details, &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("not reached (tcp_refused)"), "{text}");
    assert!(!text.contains("failed as expected"), "{text}");
}

// ── Token key name ───────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn token_key_name_wrong_found_on_the_wire() {
    let r = diagnose(cfg(allowing(AUTH)), |p| {
        p.credentials_mut().token_key_name = "deviceToken".into();
    })
    .await;
    expect(&r, "token_key_name_wrong", Cause, Confirmed, None);
}

#[tokio::test]
async fn token_key_name_wrong_from_describe_json_and_confirmed_by_a_follow_up() {
    let a = allowing(AUTH);
    let docs = described(&a);
    let r = diagnose(cfg(a), |p| {
        p.credentials_mut().token_key_name = "deviceToken".into();
        p.documents(docs);
    })
    .await;
    expect(&r, "token_key_name_wrong", Cause, Confirmed, None);
    let follow = r.attempts.iter().find(|a| a.id == "follow-up/mqtt/token-key-described").expect("a follow-up");
    assert!(follow.succeeded && follow.exact_client_id);
}

#[tokio::test]
async fn token_key_name_wrong_behind_a_policy_pinned_to_the_client_id() {
    let mut a = allowing(AUTH);
    a.function = policy(serde_json::json!([
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": format!("{ARN}:client/probe-test")},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:Subscribe", "iot:Receive"], "Resource": "*"}
    ]));
    let r = diagnose(cfg(a), |p| {
        p.credentials_mut().token_key_name = "deviceToken".into();
    })
    .await;
    expect(&r, "token_key_name_wrong", Cause, Confirmed, None);
    assert!(r.attempts.iter().any(|a| a.follow_up.is_some() && a.succeeded), "{:#?}", outcomes(&r));
}

#[tokio::test]
async fn pinned_policy_without_follow_ups_stays_open() {
    let mut a = allowing(AUTH);
    a.function = policy(serde_json::json!([
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": format!("{ARN}:client/probe-test")},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"}
    ]));
    let r = diagnose(cfg(a), |p| {
        p.credentials_mut().token_key_name = "deviceToken".into();
        p.follow_up(false);
    })
    .await;
    let f = first(&r);
    assert_eq!((f.id, f.kind), (id("refused_unexplained"), Unexplained), "{f:#?}");
    assert!(f.candidates.contains(&cause("token_key_name_wrong")), "{:?}", f.candidates);
}

#[tokio::test]
async fn token_missing() {
    let r = diagnose(cfg(allowing(AUTH)), |p| p.credentials_mut().token = None).await;
    expect(&r, "token_missing", Cause, Confirmed, None);
}

// ── Authorizer name ──────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn authorizer_unknown_when_the_default_accepts() {
    let mut c = cfg(allowing(AUTH));
    c.default_authorizer = Some(AUTH.into());
    let r = diagnose(c, |p| {
        p.credentials_mut().authorizer = Some("MyAuthoriser".into());
    })
    .await;
    expect(&r, "authorizer_unknown", Cause, Likely, None);
    // The default authorizer may be another one (other signing, key name, function): what it
    // accepts leaves the named authorizer's own faults as candidates, after the name.
    let f = first(&r);
    assert_eq!(&f.candidates[..2], [cause("authorizer_unknown"), cause("authorizer_inactive")], "{f:#?}");
    assert!(f.candidates.contains(&cause("token_key_name_wrong")), "{f:#?}");
}

#[tokio::test]
async fn authorizer_unknown_by_letter_case_on_the_wire() {
    let r = diagnose(cfg(allowing("PRODAUTH")), |p| {
        p.credentials_mut().authorizer = Some("prodauth".into());
    })
    .await;
    expect(&r, "authorizer_unknown", Cause, Confirmed, None);
}

#[tokio::test]
async fn authorizer_unknown_by_letter_case_from_describe_json() {
    let a = allowing(AUTH);
    let docs = described(&a);
    let r = diagnose(cfg(a), |p| {
        p.credentials_mut().authorizer = Some("myAuthorizer".into());
        p.documents(docs);
    })
    .await;
    expect(&r, "authorizer_unknown", Cause, Confirmed, None);
}

#[tokio::test]
async fn authorizer_unknown_without_default_or_documents_is_open() {
    let r = diagnose(cfg(allowing(AUTH)), |p| {
        p.credentials_mut().authorizer = Some("NoSuchAuthorizer".into());
    })
    .await;
    let f = first(&r);
    assert_eq!((f.id, f.kind, f.confidence), (id("refused_unexplained"), Unexplained, Possible), "{f:#?}");
    for c in ["authorizer_unknown", "authorizer_denied", "token_key_name_wrong", "lambda_error"] {
        assert!(f.candidates.contains(&cause(c)), "{c} missing from {:?}", f.candidates);
    }
    assert!(f.next.iter().any(|n| n.starts_with("aws iot test-invoke-authorizer --authorizer-name NoSuchAuthorizer")));
    assert!(f.next.iter().any(|n| n.contains("AWSIotLogsV2") && n.contains("\"probe-test\"")), "{:?}", f.next);
}

#[tokio::test]
async fn no_authorizer_name_and_no_default_from_the_domain_configuration() {
    let r = diagnose(cfg(allowing(AUTH)), |p| {
        p.credentials_mut().authorizer = None;
        p.documents_mut().domain = Some(Domain { authentication_type: "CUSTOM_AUTH".into(), ..Domain::default() });
    })
    .await;
    expect(&r, "authorizer_missing_no_default", Cause, Confirmed, None);
}

#[tokio::test]
async fn no_authorizer_name_split_by_the_described_name() {
    let a = allowing(AUTH);
    let docs = described(&a);
    let r = diagnose(cfg(a), |p| {
        p.credentials_mut().authorizer = None;
        p.documents(docs);
    })
    .await;
    expect(&r, "authorizer_missing_no_default", Cause, Confirmed, None);
    assert!(r.attempts.iter().any(|a| a.id == "follow-up/mqtt/authorizer-described" && a.succeeded));
}

#[tokio::test]
async fn authorizer_inactive() {
    let mut a = allowing(AUTH);
    a.active = false;
    let docs = described(&a);
    let r = diagnose(cfg(a), |p| {
        p.documents(docs);
    })
    .await;
    expect(&r, "authorizer_inactive", Cause, Confirmed, None);
}

// ── Signature ────────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn signature_missing_with_signing_on() {
    let a = signed(AUTH, &[]);
    let docs = described(&a);
    let r = diagnose(cfg(a), |p| {
        p.documents(docs);
    })
    .await;
    expect(&r, "signature_missing", Cause, Confirmed, None);
}

#[tokio::test]
async fn signature_missing_without_documents_is_a_candidate() {
    let r = diagnose(cfg(signed(AUTH, &[])), |_| {}).await;
    let f = first(&r);
    assert_eq!((f.id, f.kind), (id("refused_unexplained"), Unexplained), "{f:#?}");
    assert!(f.candidates.contains(&cause("signature_missing")), "{:?}", f.candidates);
}

#[tokio::test]
async fn signature_made_with_another_key_or_over_another_token() {
    let a = signed(AUTH, &[]);
    let docs = described(&a);
    let r = diagnose(cfg(a), |p| {
        p.credentials_mut().signature = Some(sign("some-other-token").into());
        p.documents(docs);
    })
    .await;
    expect(&r, "signature_invalid", Cause, Confirmed, None);
}

#[tokio::test]
async fn signature_over_the_token_and_a_newline() {
    let a = signed(AUTH, &[]);
    let docs = described(&a);
    let r = diagnose(cfg(a), |p| {
        p.credentials_mut().signature = Some(sign(&format!("{GOOD}\n")).into());
        p.documents(docs);
    })
    .await;
    expect(&r, "signature_wrong_value", Cause, Confirmed, None);
    assert!(first(&r).summary.contains("newline"), "{}", first(&r).summary);
}

#[tokio::test]
async fn signature_with_sha512_instead_of_sha256() {
    let k = keys();
    let input = k.dir.path().join("sha512-input");
    std::fs::write(&input, GOOD).unwrap();
    let raw = openssl(&["dgst", "-sha512", "-sign", k.private.to_str().unwrap(), input.to_str().unwrap()]);
    use base64::Engine as _;
    let sig = base64::engine::general_purpose::STANDARD.encode(raw);
    let a = signed(AUTH, &[]);
    let mut docs = described(&a);
    docs.public_keys = a.signing.clone().unwrap();
    docs.authorizer = None; // only --public-key
    let r = diagnose(cfg(a), |p| {
        p.credentials_mut().signature = Some(sig.into());
        p.documents(docs);
    })
    .await;
    expect(&r, "signature_wrong_value", Cause, Confirmed, None);
    assert!(first(&r).summary.contains("SHA-512"), "{}", first(&r).summary);
}

// ── The Lambda ───────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn lambda_timeout() {
    let r = diagnose(timed(PAST), |p| {
        p.transports(vec![Transport::Mqtt, Transport::Https]).authorizer_limit(LIMIT);
        p.timeout(Duration::from_secs(8));
    })
    .await;
    expect(&r, "lambda_timeout", Cause, Confirmed, None);
}

/// A probe --timeout shorter than IoT Core's 5 s: the CONNECT goes out and nothing comes back in
/// time. Not "the path refused the credentials": a slow or timed-out authorizer, and a longer
/// --timeout tells which.
#[tokio::test]
async fn timeout_shorter_than_the_authorizer_limit_is_an_open_lambda_question() {
    let r = diagnose(timed(PAST), |p| {
        p.transports(vec![Transport::Mqtt]).authorizer_limit(LIMIT);
        p.timeout(Duration::from_millis(800));
    })
    .await;
    expect(&r, "lambda_timeout", Cause, Likely, Some(&["lambda_timeout", "lambda_slow"]));
    // Twice the limit: 4 s for a 2 s limit (10 s for IoT Core's 5 s).
    assert!(first(&r).fix.contains("--timeout 4 "), "{:#?}", first(&r));
}

#[tokio::test]
async fn slow_authorizer_that_denies_is_not_a_timeout() {
    let r = diagnose(timed(SLOW), |p| {
        p.credentials_mut().token = Some("denied-token".into());
        p.transports(vec![Transport::Mqtt, Transport::Https]).authorizer_limit(LIMIT);
    })
    .await;
    let f = first(&r);
    assert_eq!(f.id, id("refused_unexplained"), "{f:#?}");
    assert!(!f.candidates.contains(&cause("lambda_timeout")), "{:?}", f.candidates);
    assert!(r.findings.iter().any(|f| f.id == id("lambda_slow")), "{:#?}", r.findings);
}

#[tokio::test]
async fn lambda_returns_an_invalid_response() {
    let mut a = allowing(AUTH);
    a.function =
        Function::Rules(vec![Rule { token: GOOD.into(), answer: Answer::Respond(serde_json::json!({"ok": 1})) }]);
    let docs = described(&a);
    let r = diagnose(cfg(a), |p| {
        p.documents(docs);
    })
    .await;
    expect(
        &r,
        "refused_unexplained",
        Unexplained,
        Possible,
        Some(&["authorizer_denied", "policy_connect_denied", "lambda_error", "lambda_not_invocable"]),
    );
}

#[tokio::test]
async fn authorizer_denies_with_documents() {
    let a = allowing(AUTH);
    let docs = described(&a);
    let r = diagnose(cfg(a), |p| {
        p.credentials_mut().token = Some("denied-token".into());
        p.documents(docs);
    })
    .await;
    expect(
        &r,
        "refused_unexplained",
        Unexplained,
        Possible,
        Some(&["authorizer_denied", "policy_connect_denied", "lambda_error", "lambda_not_invocable"]),
    );
    assert_eq!(first(&r).candidates[0], cause("authorizer_denied"));
}

#[tokio::test]
async fn authorizer_denies_over_mqtt5_and_wss_403() {
    let mut c = cfg(allowing(AUTH));
    c.reject.wss = authprobe::emulator::settings::WssReject::Forbidden;
    let a = allowing(AUTH);
    let docs = described(&a);
    let r = diagnose(c, |p| {
        p.credentials_mut().token = Some("denied-token".into());
        p.mqtt_version(MqttVersion::V5);
        p.documents(docs);
    })
    .await;
    let f = first(&r);
    assert_eq!((f.id, f.kind), (id("refused_unexplained"), Unexplained), "{f:#?}");
    assert_eq!(f.candidates[0], cause("authorizer_denied"));
}

#[tokio::test]
async fn mqtt311_connack_5_refusal_reads_like_a_close() {
    let mut c = cfg(allowing(AUTH));
    c.reject.mqtt3 = "connack:5".parse().unwrap();
    let r = diagnose(c, |p| {
        p.credentials_mut().token_key_name = "deviceToken".into();
    })
    .await;
    expect(&r, "token_key_name_wrong", Cause, Confirmed, None);
}

// ── The policy ───────────────────────────────────────────────────────────────────────────────────

#[tokio::test]
async fn policy_without_iot_connect_for_this_client_id() {
    let mut a = allowing(AUTH);
    a.function = policy(serde_json::json!([
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": format!("{ARN}:client/someone-else")},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"}
    ]));
    let r = diagnose(cfg(a), |_| {}).await;
    // wss (refused) and https (accepted) send the token in the same header: a wrong token key name
    // cannot tell them apart, and the device's attempt, repeated twice, is refused every time.
    expect(&r, "policy_connect_denied", Cause, Confirmed, None);
    assert!(first(&r).summary.contains("`probe-test`"), "{}", first(&r).summary);
}

#[tokio::test]
async fn policy_without_iot_connect_confirmed_with_documents() {
    let mut a = allowing(AUTH);
    a.function = policy(serde_json::json!([
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": format!("{ARN}:client/someone-else")},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": "*"}
    ]));
    let docs = described(&a);
    let r = diagnose(cfg(a), |p| {
        p.documents(docs);
    })
    .await;
    expect(&r, "policy_connect_denied", Cause, Confirmed, None);
}

#[tokio::test]
async fn https_publish_refused_on_a_topic_the_policy_does_not_allow() {
    let mut a = allowing(AUTH);
    a.function = policy(serde_json::json!([
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": format!("{ARN}:topic/devices/x/t")}
    ]));
    let r = diagnose(cfg(a), |_| {}).await;
    expect(&r, "policy_publish_denied", Cause, Likely, None);
    assert!(first(&r).summary.contains("probe/test"), "{}", first(&r).summary);
}

#[tokio::test]
async fn publish_refused_by_puback() {
    let mut a = allowing(AUTH);
    a.function = policy(serde_json::json!([
        {"Effect": "Allow", "Action": ["iot:Connect", "iot:Subscribe", "iot:Receive"], "Resource": "*"},
        {"Effect": "Allow", "Action": "iot:Publish", "Resource": format!("{ARN}:topic/devices/x/t")}
    ]));
    let r = diagnose(cfg(a), |p| {
        p.mqtt_version(MqttVersion::V5);
        p.checks_mut().publish = Some("devices/y/t".into());
        p.transports(vec![Transport::Mqtt]);
    })
    .await;
    expect(&r, "policy_publish_denied", Cause, Confirmed, None);
}

#[tokio::test]
async fn subscribe_refused_by_suback() {
    let mut a = allowing(AUTH);
    a.function = policy(serde_json::json!([
        {"Effect": "Allow", "Action": ["iot:Connect", "iot:Publish", "iot:Receive"], "Resource": "*"}
    ]));
    let r = diagnose(cfg(a), |p| {
        p.mqtt_version(MqttVersion::V5);
        p.checks_mut().subscribe = Some("devices/#".into());
        p.transports(vec![Transport::Mqtt]);
    })
    .await;
    expect(&r, "policy_subscribe_denied", Cause, Confirmed, None);
}

#[tokio::test]
async fn receive_not_allowed() {
    let mut a = allowing(AUTH);
    a.function = policy(serde_json::json!([
        {"Effect": "Allow", "Action": ["iot:Connect", "iot:Publish", "iot:Subscribe"], "Resource": "*"}
    ]));
    let r = diagnose(cfg(a), |p| {
        p.mqtt_version(MqttVersion::V5);
        p.checks_mut().publish = Some("devices/x/t".into());
        p.checks_mut().subscribe = Some("devices/x/t".into());
        p.transports(vec![Transport::Mqtt]);
        p.timeout(Duration::from_secs(2));
    })
    .await;
    expect(&r, "policy_receive_denied", Cause, Likely, None);
}

/// The full matrix on a working device: the documented refusals become risks, never causes.
#[tokio::test]
async fn full_matrix_on_a_working_device_names_risks_only() {
    let emu = start(cfg(allowing(AUTH))).await;
    let plan = probe_plan(&emu);
    let specs = variants(&plan, Level::Full);
    let run = authprobe::investigate::run_with(
        &plan,
        &specs,
        Schedule { parallel: 8, spacing: None },
        &authprobe::probe::Quiet,
    );
    let r = tokio::time::timeout(Duration::from_secs(120), run).await.unwrap();
    no_cause(&r);
    let ids: Vec<&str> = r.findings.iter().map(|f| f.id.as_str()).collect();
    for id in ["sni_missing", "alpn_missing", "username_malformed", "host_header_wrong"] {
        assert!(ids.contains(&id), "{id} missing from {ids:?}");
    }
}

/// HTTPS alone: a 403 may be the publish policy, never iot:Connect.
#[tokio::test]
async fn https_only_refusal_keeps_the_publish_policy_open() {
    let r = diagnose(cfg(allowing(AUTH)), |p| {
        p.credentials_mut().token = Some("denied-token".into());
        p.transports(vec![Transport::Https]);
    })
    .await;
    let f = first(&r);
    assert_eq!((f.id, f.kind), (id("refused_unexplained"), Unexplained), "{f:#?}");
    assert!(f.candidates.contains(&cause("policy_publish_denied")), "{:?}", f.candidates);
    assert!(!f.candidates.contains(&cause("policy_connect_denied")), "{:?}", f.candidates);
}

/// The device itself (or another run) connects with the device's client ID just before the probe,
/// against an emulator with IoT Core's one connect a second per client ID: the mqtt baseline is
/// refused, and the wss baseline, 1.1 s later, is accepted with the same credentials.
async fn another_client_first(follow_up: bool) -> Report {
    let mut c = cfg(allowing(AUTH));
    c.limits.connect_interval = Some(Duration::from_millis(1_000));
    let emu = start(c).await;
    let mut b = plan_builder(&emu);
    b.transports(vec![Transport::Mqtt, Transport::Wss]);
    b.follow_up(follow_up);
    b.follow_up_spacing(Duration::from_millis(1_100));
    let plan = b.build().unwrap();
    let specs = plan.baseline();
    let device = authprobe::probe::attempt::run(&plan, &specs[0]).await;
    assert!(device.succeeded, "{:?}", device.outcome);
    let schedule = Schedule { parallel: 8, spacing: None };
    authprobe::investigate::run_with(&plan, &specs, schedule, &authprobe::probe::Quiet).await
}

/// Not a credential cause: the retry follow-up connects, and the finding says so and how to rerun.
#[tokio::test]
async fn another_client_on_the_same_client_id_is_not_blamed_on_the_credentials() {
    let r = another_client_first(true).await;
    // A function failing some of the time stays a candidate: only its logs tell it apart.
    expect(&r, "refused_unexplained", Unexplained, Possible, Some(&["connect_throttled", "lambda_error"]));
    let f = first(&r);
    assert!(f.summary.contains("not about the credentials") && f.fix.contains("--client-id"), "{f:#?}");
    let retry = r.attempts.iter().find(|a| a.id == "follow-up/mqtt/baseline").expect("a retry follow-up");
    assert!(retry.succeeded, "{:?}", retry.outcome);
}

/// Without the retry (`--follow-up none`) nothing is confirmed: a token key wrong only in letter case
/// (headers ignore case) is left, but so is another client on the client ID, which no table covers.
#[tokio::test]
async fn a_refusal_no_retry_has_checked_is_not_confirmed() {
    let r = another_client_first(false).await;
    assert!(r.findings.iter().all(|f| f.confidence != Confirmed || f.kind == Risk), "{:#?}", r.findings);
}

// ── Round 3: front doors that make other documented choices (issue 22) ───────────────────────────

/// Miss 1: ALPN stripped on the path and a server that closes raw MQTT bytes without a word (no
/// HTTP 400): the negotiated ALPN decides, whatever the server does next.
#[tokio::test]
async fn alpn_stripped_and_the_server_closes_silently() {
    let mut c = cfg(allowing(AUTH));
    c.strip_alpn = true;
    c.reject.non_http = authprobe::emulator::settings::NonHttp::Close;
    let r = diagnose(c, |_| {}).await;
    expect(&r, "alpn_stripped", Cause, Confirmed, None);
}

async fn diagnose_in_order(c: EmulatorConfig) -> Report {
    let emu = start(c).await;
    let plan = probe_plan(&emu);
    let specs = variants(&plan, Level::Quick);
    let run = authprobe::investigate::run_with(
        &plan,
        &specs,
        Schedule { parallel: 1, spacing: None },
        &authprobe::probe::Quiet,
    );
    tokio::time::timeout(Duration::from_secs(120), run).await.expect("the probe ends within its timeouts")
}

/// Miss 2: an intermittent authorizer (every other invocation fails), attempts one at a time: mqtt
/// refused, wss accepted, https refused with the same header. Mixed verdicts for identical
/// credentials are an intermittent refusal (`lambda_error`, likely), never a confirmed credential
/// fault.
#[tokio::test]
async fn intermittent_authorizer_is_never_a_confirmed_credential_fault() {
    let mut c = cfg(allowing(AUTH));
    c.fail_every = Some(2);
    let r = diagnose_in_order(c).await;
    let f = first(&r);
    assert_eq!((f.id, f.kind, f.confidence), (id("lambda_error"), Cause, Likely), "{f:#?}\n{:#?}", outcomes(&r));
    assert!(f.summary.contains("intermittent"), "{}", f.summary);
    assert!(r.findings.iter().all(|f| f.confidence != Confirmed || f.kind == Risk), "{:#?}", r.findings);
    // The HTTPS refusal may be one more of the intermittent ones: a publish policy only possibly.
    assert!(
        r.findings.iter().filter(|f| f.id == id("policy_publish_denied")).all(|f| f.confidence == Possible),
        "{:#?}",
        r.findings
    );
}

/// Miss 2 again, attempts in parallel (the failing invocations fall anywhere), and every third
/// failing: whatever the pattern, no credential fault is confirmed.
#[tokio::test]
async fn intermittent_authorizer_in_any_order_confirms_nothing() {
    for n in [2, 3] {
        let mut c = cfg(allowing(AUTH));
        c.fail_every = Some(n);
        let r = diagnose(c, |_| {}).await;
        for f in r.findings.iter().filter(|f| f.kind != Risk) {
            assert_ne!(f.confidence, Confirmed, "fail_every {n}: {f:#?}\n{:#?}", outcomes(&r));
        }
    }
}

/// Miss 4: the server completes the handshake with a chain this probe trusts, for another name (SNI
/// the account's endpoint). Nothing refused the handshake: something else answers there.
#[tokio::test]
async fn a_trusted_certificate_for_another_name_is_not_a_refused_handshake() {
    let mut c = cfg(allowing(AUTH));
    c.identity = authprobe::emulator::certs::Identity::generate(&["other.example.com".into()]).unwrap();
    let r = diagnose(c, |_| {}).await;
    expect(&r, "tls_intercepted", Cause, Likely, Some(&["tls_intercepted", "dns_unexpected", "sni_not_endpoint"]));
    let f = first(&r);
    assert!(f.summary.contains("other.example.com") && f.summary.contains("not refused"), "{}", f.summary);
}

/// Miss 6: a `--ca` file that is not the server's CA, for a name where no Amazon chain is expected:
/// the finding names the file and the issuer presented, and the report prints the chain.
#[tokio::test]
async fn a_wrong_ca_file_is_named_with_the_issuer_presented() {
    let emu = start(cfg(allowing(AUTH))).await;
    let mut b = plan_builder(&emu);
    b.endpoint("localhost");
    let other = authprobe::emulator::certs::Ca::generate("Some Other CA").unwrap();
    b.trust(Trust::Roots(vec![other.der()]));
    b.ca_file("wrong-ca.pem");
    let plan = b.build().unwrap();
    let r = diagnose_plan(plan).await;
    expect(&r, "unreachable_unexplained", Unexplained, Possible, Some(&["tls_intercepted"]));
    let f = first(&r);
    assert!(f.summary.contains("wrong-ca.pem") && f.summary.contains("authprobe emulator CA"), "{}", f.summary);
    let mut text = Vec::new();
    authprobe::report::text::write(&r, authprobe::report::text::Style::default(), &mut text).unwrap();
    let text = String::from_utf8(text).unwrap();
    assert!(text.contains("chain") && text.contains("issued by"), "the chain is printed:\n{text}");
}

/// Miss 6 again, for an IoT Core endpoint name: interception or the wrong file, both said, the
/// file named; never a confirmed interception on the word of a --ca file.
#[tokio::test]
async fn a_ca_file_that_does_not_hold_the_chain_is_not_a_confirmed_interception() {
    let emu = start(cfg(allowing(AUTH))).await;
    let mut b = plan_builder(&emu);
    let other = authprobe::emulator::certs::Ca::generate("Some Other CA").unwrap();
    b.trust(Trust::Roots(vec![other.der()]));
    b.ca_file("device-ca.pem");
    let plan = b.build().unwrap();
    let r = diagnose_plan(plan).await;
    expect(&r, "tls_intercepted", Cause, Likely, Some(&["tls_intercepted"]));
    assert!(first(&r).summary.contains("device-ca.pem"), "{}", first(&r).summary);
}

/// Miss 7: `--insecure` against a server whose chain is not Amazon's, with an authorizer that times
/// out: the timeout is the cause; the chain is a risk below it.
#[tokio::test]
async fn insecure_reports_the_chain_as_a_risk_below_the_cause() {
    let r = diagnose(timed(PAST), |p| {
        p.transports(vec![Transport::Mqtt, Transport::Https]).authorizer_limit(LIMIT);
        p.trust(Trust::Insecure);
        p.timeout(Duration::from_secs(8));
    })
    .await;
    let f = first(&r);
    assert_eq!((f.id, f.kind), (id("lambda_timeout"), Cause), "{f:#?}\n{:#?}", outcomes(&r));
    let tls = r.findings.iter().find(|f| f.id == id("tls_intercepted")).expect("the chain is still reported");
    assert_eq!(tls.kind, Risk, "{tls:#?}");
}

/// Miss 5: the named authorizer signs, the device sends no signature, no describe-authorizer JSON,
/// and the endpoint's default authorizer (another one, without signing) accepts the same token when
/// the name is left out. `signature_missing` stays a candidate, and `next` says how to settle it.
#[tokio::test]
async fn signature_missing_stays_a_candidate_when_another_default_accepts() {
    let mut c = cfg(signed(AUTH, &[]));
    c.authorizers.push(allowing("OpenDefault"));
    c.default_authorizer = Some("OpenDefault".into());
    let r = diagnose(c, |_| {}).await;
    let f = first(&r);
    assert_ne!(f.confidence, Confirmed, "{f:#?}\n{:#?}", outcomes(&r));
    assert!(f.candidates.contains(&cause("signature_missing")), "{f:#?}");
    assert!(f.next.iter().any(|n| n.contains("describe-authorizer")), "{:?}", f.next);
}

/// A device's exact username carrying a base64url (JWT-style) signature of its token.
fn base64url_username() -> String {
    use base64::Engine as _;
    let sig = base64::engine::general_purpose::STANDARD.decode(sign(GOOD)).unwrap();
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(sig);
    format!("dev?x-amz-customauthorizer-name={AUTH}&token={GOOD}&x-amz-customauthorizer-signature={url}")
}

/// Miss 3: `--username-raw` with a base64url signature, the authorizer described: the signature the
/// device sends is the one checked, and the forensics say it is right but base64url.
#[tokio::test]
async fn signature_inside_the_exact_username_is_the_one_checked() {
    let a = signed(AUTH, &[]);
    let docs = described(&a);
    let r = diagnose(cfg(a), |p| {
        p.credentials_mut().token = None;
        p.device_mut().username_raw = Some(base64url_username());
        p.transports(vec![Transport::Mqtt]);
        p.documents(docs);
    })
    .await;
    expect(&r, "signature_wrong_value", Cause, Confirmed, None);
    assert!(first(&r).summary.contains("base64url"), "{}", first(&r).summary);
}

/// Miss 3 without documents: never a confirmed `username_malformed` (the username has one `?` and
/// parses); the signature causes stay candidates.
#[tokio::test]
async fn signature_inside_the_exact_username_without_documents_is_not_a_malformed_username() {
    let r = diagnose(cfg(signed(AUTH, &[])), |p| {
        p.credentials_mut().token = None;
        p.device_mut().username_raw = Some(base64url_username());
        p.transports(vec![Transport::Mqtt]);
    })
    .await;
    let f = first(&r);
    assert_ne!((f.id, f.confidence), (id("username_malformed"), Confirmed), "{f:#?}\n{:#?}", outcomes(&r));
    assert_ne!(f.confidence, Confirmed, "{f:#?}\n{:#?}", outcomes(&r));
    assert!(f.candidates.contains(&cause("signature_invalid")) || f.id == id("signature_invalid"), "{f:#?}");
}

// ── Round 3: what the device's own CONNECT meets (new causes) ───────────────────────────────────

fn risk_named<'a>(r: &'a Report, id: &str) -> &'a Finding {
    r.findings.iter().find(|f| f.id == self::id(id)).unwrap_or_else(|| panic!("no {id}: {:#?}", r.findings))
}

/// A JWT-sized token and a signature make a CONNECT larger than the 128-1024-byte buffers embedded
/// clients ship with: a risk naming the size and the limits it exceeds, though this probe connects.
#[tokio::test]
async fn connect_packet_too_large_for_embedded_buffers() {
    let token = format!("eyJhbGciOiJSUzI1NiJ9.{}.sig", "x".repeat(700));
    let mut a = Authorizer::new(AUTH, "token");
    a.function = Function::Rules(vec![Rule::allow_all(&token)]);
    let r = diagnose(cfg(a), |p| {
        p.credentials_mut().token = Some(token.clone().into());
    })
    .await;
    no_cause(&r);
    let f = risk_named(&r, "connect_packet_too_large");
    assert_eq!(f.kind, Risk);
    assert!(f.summary.contains("128, 256, 512") && !f.summary.contains("1024"), "{}", f.summary);
}

/// A keep-alive below IoT Core's 30 s: a risk saying what IoT Core uses instead.
#[tokio::test]
async fn keep_alive_out_of_range_is_flagged_before_sending() {
    let r = diagnose(cfg(allowing(AUTH)), |p| {
        p.device_mut().keep_alive = Some(15);
    })
    .await;
    let f = risk_named(&r, "keep_alive_out_of_range");
    assert!(f.summary.contains("15 s") && f.summary.contains("30 s"), "{}", f.summary);
}

/// A client ID IoT Core reserves (`$` prefix) is flagged from the settings.
#[tokio::test]
async fn client_id_with_a_dollar_prefix_is_flagged() {
    let r = diagnose(cfg(allowing(AUTH)), |p| {
        p.client_id("$device-1");
    })
    .await;
    let f = risk_named(&r, "client_id_invalid");
    assert!(f.summary.contains("`$`"), "{}", f.summary);
}

// ── Round 3: MQTT 5 refusals and two faults at once ─────────────────────────────────────────────

/// A wrong token key name over MQTT 5 (CONNACK 0x87 instead of a close): the same finding.
#[tokio::test]
async fn token_key_name_wrong_over_mqtt5() {
    let r = diagnose(cfg(allowing(AUTH)), |p| {
        p.credentials_mut().token_key_name = "deviceToken".into();
        p.mqtt_version(MqttVersion::V5);
    })
    .await;
    expect(&r, "token_key_name_wrong", Cause, Confirmed, None);
}

/// MQTT 5 clients that are closed without a CONNACK (the emulator's `mqtt5 = close`), an authorizer
/// that denies: never a confirmed credential fault without the documents.
#[tokio::test]
async fn denial_over_mqtt5_closed_without_connack() {
    let mut c = cfg(allowing(AUTH));
    c.reject.mqtt5 = authprobe::emulator::settings::Mqtt5Reject::Close;
    let r = diagnose(c, |p| {
        p.credentials_mut().token = Some("denied-token".into());
        p.mqtt_version(MqttVersion::V5);
    })
    .await;
    let f = first(&r);
    assert_eq!((f.id, f.kind), (id("refused_unexplained"), Unexplained), "{f:#?}\n{:#?}", outcomes(&r));
    assert!(f.candidates.contains(&cause("authorizer_denied")), "{f:#?}");
}

/// Two faults: ALPN stripped on the path (met first, by MQTT over TLS) and a token the authorizer
/// denies (met by WebSocket and HTTPS). The first finding is the path's; the denial is reported too.
#[tokio::test]
async fn two_faults_alpn_stripped_and_a_denied_token() {
    let mut c = cfg(allowing(AUTH));
    c.strip_alpn = true;
    let r = diagnose(c, |p| {
        p.credentials_mut().token = Some("denied-token".into());
    })
    .await;
    expect(&r, "alpn_stripped", Cause, Confirmed, None);
    let second = r.findings.iter().skip(1).find(|f| f.kind != Risk).expect("the second fault is reported");
    assert!(
        second.id == id("refused_unexplained") && second.candidates.contains(&cause("authorizer_denied")),
        "{second:#?}"
    );
}

/// Two faults: a wrong token key name and ALPN stripped; the path first, then the refusal that
/// WebSocket and HTTPS meet, the key name leading its candidates (the MQTT variants that would
/// settle it cannot get through the path).
#[tokio::test]
async fn two_faults_alpn_stripped_and_a_wrong_token_key_name() {
    let mut c = cfg(allowing(AUTH));
    c.strip_alpn = true;
    let r = diagnose(c, |p| {
        p.credentials_mut().token_key_name = "deviceToken".into();
    })
    .await;
    expect(&r, "alpn_stripped", Cause, Confirmed, None);
    let second = r.findings.iter().skip(1).find(|f| f.kind != Risk).expect("the second fault is reported");
    assert_eq!(second.candidates.first(), Some(&cause("token_key_name_wrong")), "{second:#?}");
}

/// A front door that completes the handshake without SNI, then closes (instead of an alert): the
/// device that sends no SNI is still `sni_missing`, not a credential fault.
#[tokio::test]
async fn no_sni_handshake_completed_then_closed() {
    let mut c = cfg(allowing(AUTH));
    c.reject.no_sni = authprobe::emulator::settings::TlsReject::HandshakeThenClose;
    let r = diagnose(c, |p| {
        p.device_mut().sni = Sni::Omitted;
    })
    .await;
    expect(&r, "sni_missing", Cause, Confirmed, None);
}

/// The device connects just before the probe, over MQTT 5, against IoT Core's one connect a second
/// per client ID: the CONNACK says 0x9F (connection rate exceeded). `connect_throttled`, likely,
/// saying no CONNECT of this run came before it (another client, or the device itself, did).
#[tokio::test]
async fn connect_throttled_over_mqtt5() {
    let mut c = cfg(allowing(AUTH));
    c.limits.connect_interval = Some(Duration::from_millis(1_000));
    let emu = start(c).await;
    let mut b = plan_builder(&emu);
    b.transports(vec![Transport::Mqtt]);
    b.mqtt_version(MqttVersion::V5);
    let plan = b.build().unwrap();
    let specs = plan.baseline();
    let device = authprobe::probe::attempt::run(&plan, &specs[0]).await;
    assert!(device.succeeded, "{:?}", device.outcome);
    let r = authprobe::investigate::run_with(
        &plan,
        &specs,
        Schedule { parallel: 1, spacing: None },
        &authprobe::probe::Quiet,
    )
    .await;
    expect(&r, "connect_throttled", Cause, Likely, Some(&["connect_throttled"]));
    assert!(
        first(&r).summary.contains("0x9F") && first(&r).summary.contains("no earlier CONNECT"),
        "{}",
        first(&r).summary
    );
}

/// A device on MQTT 5: the enhanced-authentication variant (an Authentication Method, as SCRAM
/// clients send) is refused while the baseline connects: a risk naming it.
#[tokio::test]
async fn enhanced_auth_is_a_risk_over_mqtt5() {
    let r = diagnose(cfg(allowing(AUTH)), |p| {
        p.mqtt_version(MqttVersion::V5);
    })
    .await;
    no_cause(&r);
    let f = risk_named(&r, "enhanced_auth_unsupported");
    assert_eq!(f.kind, Risk);
    let a = r.attempts.iter().find(|a| a.id == "mqtt/mqtt5-enhanced-auth").expect("the variant ran");
    assert_eq!(format!("{}/{}", a.outcome.stage.as_str(), a.outcome.kind.as_str()), "mqtt/connack_refused");
}

/// Miss 3 for `--username` with the token and a base64url signature in its query (no --token, no
/// --signature): the local checks judge what the username carries.
#[tokio::test]
async fn signature_inside_a_username_query_is_the_one_checked() {
    let a = signed(AUTH, &[]);
    let docs = described(&a);
    let raw = base64url_username();
    let query = raw.split_once('?').unwrap().1.replace(&format!("x-amz-customauthorizer-name={AUTH}&"), "");
    let r = diagnose(cfg(a), |p| {
        p.credentials_mut().token = None;
        p.credentials_mut().username = Some(format!("dev?{query}"));
        p.transports(vec![Transport::Mqtt]);
        p.documents(docs);
    })
    .await;
    expect(&r, "signature_wrong_value", Cause, Confirmed, None);
    assert!(first(&r).summary.contains("base64url"), "{}", first(&r).summary);
}
