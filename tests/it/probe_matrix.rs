//! The variant matrix: what every variant put on the wire, as the emulator saw it. (Its diagnosis is
//! tested by the scenario corpus, `diagnosis_corpus`.)

use super::common::*;
use authprobe::auth::event::Transport;
use authprobe::emulator::EmulatorConfig;
use authprobe::probe::matrix::{Level, variants};

fn cfg(a: authprobe::emulator::Authorizer) -> EmulatorConfig {
    let mut c = config();
    c.authorizers.push(a);
    c
}

/// Each variant of the full matrix, run alone, and the emulator's record of what arrived.
#[tokio::test]
async fn every_variant_puts_what_it_says_on_the_wire() {
    let (token, sig) = token_with_plus_in_signature();
    let mut c = cfg(signed(AUTH, &[&token]));
    c.default_authorizer = Some(AUTH.into());
    let mut emu = start(c).await;
    let mut b = plan_builder(&emu);
    b.credentials_mut().token = Some(token.clone().into());
    b.credentials_mut().signature = Some(sig.clone().into());
    b.credentials_mut().username = Some("dev".into());
    b.alt_sni("other.example.com");
    let key = std::fs::read_to_string(&keys().private).unwrap();
    b.credentials_mut().signer =
        Some(std::sync::Arc::new(authprobe::auth::signature::SigningKey::from_pem(&key).unwrap()));
    let plan = b.build().unwrap();
    let specs = variants(&plan, Level::Full);
    let names: Vec<&str> = specs.iter().map(|s| s.id.as_str()).collect();
    for expected in [
        "mqtt/sni-ip",
        "mqtt/alpn-x509",
        "wss/alpn-mqtt",
        "https/host-missing",
        "wss/in-query",
        "mqtt/signature-other-value",
        "mqtt/second-question-mark",
        "wss/mqtt5",
    ] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    for spec in &specs {
        let r = probe(&plan, spec).await;
        let rec = emu.record().await;
        let id = spec.id.as_str();
        // SNI and ALPN as offered.
        let sni_sent = spec.sni.as_deref().filter(|s| s.parse::<std::net::IpAddr>().is_err());
        assert_eq!(rec.sni.as_deref(), sni_sent, "{id}");
        let alpn: Vec<String> = spec.alpn.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
        assert_eq!(rec.alpn_offered, alpn, "{id}");
        if rec.sni.is_none() || rec.alpn_offered.iter().any(|a| a == "x-amzn-mqtt-ca") {
            assert!(!r.succeeded, "{id}");
            continue;
        }
        if spec.transport != Transport::Mqtt && rec.request.is_some() {
            assert_eq!(rec.host, spec.host, "{id}: Host header");
        }
        let check = |param: &str| {
            rec.credentials.iter().find(|c| c.parameter == param).map(|c| (c.placement, c.percent_encoded))
        };
        match spec.variant.as_str().as_str() {
            "baseline" if spec.transport == Transport::Mqtt => {
                let user = rec.username.as_deref().unwrap();
                assert!(
                    user.starts_with("dev?x-amz-customauthorizer-name=MyAuthorizer&x-amz-customauthorizer-signature="),
                    "{user}"
                );
                assert!(user.ends_with(&format!("&token={token}")), "{user}");
                assert_eq!(user.matches('?').count(), 1);
                assert_eq!(check("x-amz-customauthorizer-signature").map(|c| c.1), Some(true), "{id}");
            }
            "baseline" => {
                let placement = check("token").unwrap().0;
                assert_eq!(serde_json::to_value(placement).unwrap(), "header", "{id}");
                for (name, value) in [
                    ("x-amz-customauthorizer-name", AUTH),
                    ("x-amz-customauthorizer-signature", &sig),
                    ("token", &token),
                ] {
                    assert!(
                        rec.headers.iter().any(|(n, v)| n == name && v == value),
                        "{id}: {name} in {:?}",
                        rec.headers
                    );
                }
            }
            "in-query" => assert_eq!(serde_json::to_value(check("token").unwrap().0).unwrap(), "query", "{id}"),
            "in-username" => assert_eq!(serde_json::to_value(check("token").unwrap().0).unwrap(), "username", "{id}"),
            "signature-raw" => {
                let user = rec.username.as_deref().unwrap();
                assert!(user.contains(&format!("x-amz-customauthorizer-signature={sig}")), "{id}: {user}");
            }
            "signature-missing" => assert!(check("x-amz-customauthorizer-signature").is_none(), "{id}"),
            "signature-wrong-name" => {
                assert!(check("x-amz-customauthorizer-signature").is_none(), "{id}");
                let in_username =
                    rec.username.as_deref().is_some_and(|u| u.contains("x-amz-customauthorizer-token-signature="));
                let in_headers = rec.headers.iter().any(|(n, _)| n == "x-amz-customauthorizer-token-signature");
                assert!(in_username || in_headers, "{id}");
            }
            "signature-other-value" => {
                assert!(check("x-amz-customauthorizer-signature").is_some(), "{id}");
                let sent = rec.username.clone().unwrap_or_default() + &format!("{:?}", rec.headers);
                assert!(!sent.contains(&authprobe::auth::credentials::encode(&sig)) && !sent.contains(&sig), "{id}");
            }
            "token-key-case" if spec.transport == Transport::Mqtt => {
                assert!(rec.username.as_deref().unwrap().contains(&format!("&TOKEN={token}")), "{id}");
            }
            "token-key-case" => assert!(rec.headers.iter().any(|(n, v)| n == "TOKEN" && *v == token), "{id}"),
            "authorizer-omitted" => assert!(check("x-amz-customauthorizer-name").is_none(), "{id}"),
            "authorizer-case" => assert_eq!(rec.authorizer.as_deref(), Some("MYAUTHORIZER"), "{id}"),
            "sdk-metrics" => {
                let user = rec.username.as_deref().unwrap();
                assert!(
                    user.ends_with(
                        "&SDK=IoTDeviceSDK/Python&Platform=Linux&Metadata=(CRTVersion=0.36.1;IoTSDKVersion=1.31.0)"
                    ),
                    "{user}"
                );
                assert_eq!(user.matches('?').count(), 1);
            }
            "second-question-mark" => assert_eq!(rec.username.as_deref().unwrap().matches('?').count(), 2, "{id}"),
            "mqtt5" => assert_eq!(rec.mqtt_version, Some(5), "{id}"),
            "host-port" => assert_eq!(rec.host.as_deref(), Some(&*format!("{ENDPOINT}:443")), "{id}"),
            _ => {}
        }
        // Where IoT Core's answer is documented, the emulator gives it.
        assert!(!r.surprising, "{id}: {:?} {:?}", r.expect, r.outcome);
    }
}
