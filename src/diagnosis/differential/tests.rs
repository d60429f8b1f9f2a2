//! The diagnosis tables without sockets: predictions per cause and variant, and elimination.

use super::*;

fn probe(variant: Variant, exact_id: bool) -> Probe {
    Probe { variant, transport: Transport::Mqtt, placement: Placement::Username, exact_id }
}

fn https() -> Probe {
    Probe { variant: Variant::Baseline, transport: Transport::Https, placement: Placement::Header, exact_id: true }
}

#[test]
fn a_fault_that_a_variant_does_not_touch_refuses_it() {
    let k = Known::default();
    for c in [Cause::AuthorizerDenied, Cause::LambdaError, Cause::LambdaNotInvocable, Cause::SignatureInvalid] {
        assert_eq!(predict(c, probe(Variant::Baseline, true), &k), Predict::Refuse, "{c}");
        assert_eq!(predict(c, probe(Variant::ClientIdOther, false), &k), Predict::Refuse, "{c}");
        assert_eq!(predict(c, probe(Variant::TokenKeyToken, false), &k), Predict::Refuse, "{c}");
        assert_eq!(predict(c, https(), &k), Predict::Refuse, "{c}");
    }
}

#[test]
fn a_repair_connects_only_under_the_devices_client_id() {
    let k = Known::default();
    let c = Cause::TokenKeyNameWrong;
    assert_eq!(predict(c, probe(Variant::TokenKeyDescribed, true), &k), Predict::Connect);
    // A policy may pin iot:Connect to the device's client ID.
    assert_eq!(predict(c, probe(Variant::TokenKeyDescribed, false), &k), Predict::Either);
    // `token` may or may not be the right key.
    assert_eq!(predict(c, probe(Variant::TokenKeyToken, true), &k), Predict::Either);
}

#[test]
fn policy_connect_denied_lets_https_and_other_client_ids_through() {
    let k = Known::default();
    let c = Cause::PolicyConnectDenied;
    assert_eq!(predict(c, https(), &k), Predict::Either);
    assert_eq!(predict(c, probe(Variant::ClientIdOther, false), &k), Predict::Either);
    assert_eq!(predict(c, probe(Variant::Baseline, true), &k), Predict::Refuse);
    assert_eq!(predict(c, probe(Variant::AuthorizerCase, false), &k), Predict::Refuse);
}

#[test]
fn header_token_keys_are_case_insensitive() {
    let mut k = Known::default();
    let wss =
        Probe { variant: Variant::Baseline, transport: Transport::Wss, placement: Placement::Header, exact_id: true };
    assert_eq!(predict(Cause::TokenKeyNameWrong, wss, &k), Predict::Either);
    k.key_differs_beyond_case = true;
    assert_eq!(predict(Cause::TokenKeyNameWrong, wss, &k), Predict::Refuse);
}

#[test]
fn dropping_the_signature_depends_on_signing() {
    let on = Known { signing: Some(true), ..Known::default() };
    let off = Known { signing: Some(false), ..Known::default() };
    let p = probe(Variant::SignatureMissing, false);
    assert_eq!(predict(Cause::AuthorizerDenied, p, &on), Predict::Refuse);
    assert_eq!(predict(Cause::AuthorizerDenied, p, &off), Predict::Refuse);
    assert_eq!(predict(Cause::AuthorizerDenied, p, &Known::default()), Predict::Either);
    assert_eq!(predict(Cause::SignatureInvalid, p, &Known::default()), Predict::Refuse);
}

#[test]
fn omitting_the_name_may_repair_only_an_authorizer_fault() {
    let k = Known::default();
    let p = probe(Variant::AuthorizerOmitted, false);
    assert_eq!(predict(Cause::AuthorizerUnknown, p, &k), Predict::Either);
    assert_eq!(predict(Cause::AuthorizerInactive, p, &k), Predict::Either);
    // The default authorizer may be another one: its verdict says nothing of the named one's faults.
    assert_eq!(predict(Cause::TokenKeyNameWrong, p, &k), Predict::Either);
    assert_eq!(predict(Cause::SignatureMissing, p, &k), Predict::Either);
}

#[test]
fn undocumented_variants_say_nothing() {
    let k = Known::default();
    for v in
        [Variant::SniNone, Variant::AlpnNone, Variant::SecondQuestionMark, Variant::SignatureRaw, Variant::HostMissing]
    {
        for c in CAUSES {
            assert_eq!(predict(c, probe(v, false), &k), Predict::Either, "{c} {v}");
        }
    }
}

#[test]
fn only_observations_against_a_definite_prediction_rule_out() {
    assert!(contradicts(Predict::Refuse, Seen::Connected));
    assert!(contradicts(Predict::Connect, Seen::Refused));
    assert!(!contradicts(Predict::Either, Seen::Connected));
    assert!(!contradicts(Predict::Refuse, Seen::Refused));
    assert!(!contradicts(Predict::Connect, Seen::Other));
}

/// Elimination over a table of (attempt, what it showed): the causes left for a wrong token key
/// name when `token-key-token` connects under another client ID.
#[test]
fn a_connected_repair_leaves_its_cause_and_a_pinned_policy() {
    let k = Known::default();
    let observed = [
        (probe(Variant::Baseline, true), Seen::Refused),
        (https(), Seen::Refused),
        (probe(Variant::TokenKeyToken, false), Seen::Connected),
        (probe(Variant::ClientIdOther, false), Seen::Refused),
    ];
    let left: Vec<Cause> =
        CAUSES.into_iter().filter(|&c| observed.iter().all(|(p, s)| !contradicts(predict(c, *p, &k), *s))).collect();
    assert_eq!(left, [Cause::TokenKeyNameWrong]);
}

#[test]
fn https_through_and_mqtt_refused_points_at_iot_connect() {
    let k = Known { key_differs_beyond_case: true, ..Known::default() };
    let observed = [(probe(Variant::Baseline, true), Seen::Refused), (https(), Seen::Connected)];
    let left: Vec<Cause> =
        CAUSES.into_iter().filter(|&c| observed.iter().all(|(p, s)| !contradicts(predict(c, *p, &k), *s))).collect();
    // A malformed username also spares HTTPS (its credentials travel in headers).
    assert_eq!(left, [Cause::PolicyConnectDenied, Cause::UsernameMalformed]);
}

#[test]
fn nothing_connected_leaves_every_credential_cause() {
    let k = Known::default();
    let observed = [(probe(Variant::Baseline, true), Seen::Refused), (https(), Seen::Refused)];
    let left: Vec<Cause> =
        CAUSES.into_iter().filter(|&c| observed.iter().all(|(p, s)| !contradicts(predict(c, *p, &k), *s))).collect();
    // All but a malformed username (HTTPS, in headers, would pass) and a publish policy (MQTT would
    // connect).
    assert_eq!(left.len(), CAUSES.len() - 2);
    assert!(!left.contains(&Cause::UsernameMalformed) && !left.contains(&Cause::PolicyPublishDenied));
}

/// A variant that might have repaired a cause and was refused anyway counts against that cause:
/// with nothing connected, a wrong key name no longer leads once `token-key-token` is refused; a
/// weak demotion, so a rare cause stays behind a common one.
#[test]
fn a_refused_possible_repair_ranks_its_cause_lower() {
    let k = Known::default();
    let observed = [
        (probe(Variant::Baseline, true), Seen::Refused),
        (https(), Seen::Refused),
        (probe(Variant::TokenKeyToken, true), Seen::Refused),
        (probe(Variant::AuthorizerCase, true), Seen::Refused),
    ];
    let mut left = vec![
        Cause::TokenKeyNameWrong,
        Cause::AuthorizerDenied,
        Cause::AuthorizerUnknown,
        Cause::PolicyConnectDenied,
        Cause::AuthorizerInactive,
    ];
    rank(&mut left, &observed, &k);
    assert_eq!(
        left,
        [
            Cause::AuthorizerDenied,
            Cause::TokenKeyNameWrong,
            Cause::PolicyConnectDenied,
            Cause::AuthorizerUnknown,
            Cause::AuthorizerInactive
        ]
    );
    // Without those attempts, the prior order stands.
    let mut left = vec![Cause::LambdaError, Cause::AuthorizerDenied, Cause::TokenKeyNameWrong];
    rank(&mut left, &observed[..2], &k);
    assert_eq!(left, [Cause::TokenKeyNameWrong, Cause::AuthorizerDenied, Cause::LambdaError]);
}

#[test]
fn no_authorizer_name_puts_a_missing_default_first() {
    let observed = [(probe(Variant::Baseline, true), Seen::Refused), (https(), Seen::Refused)];
    let mut left = vec![Cause::AuthorizerDenied, Cause::TokenKeyNameWrong, Cause::AuthorizerMissingNoDefault];
    rank(&mut left, &observed, &Known { no_name_sent: true, ..Known::default() });
    assert_eq!(left[0], Cause::AuthorizerMissingNoDefault);
    let mut left = vec![Cause::AuthorizerDenied, Cause::TokenKeyNameWrong, Cause::AuthorizerMissingNoDefault];
    rank(&mut left, &observed, &Known::default());
    assert_eq!(left[2], Cause::AuthorizerMissingNoDefault);
}
