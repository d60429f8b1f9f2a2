//! Differential diagnosis of a refusal: for each credential cause, the outcome each attempt would
//! show if that cause were the device's one fault; the observed outcomes and the local checks rule
//! causes out, and what is left, ranked, is the finding — `confirmed` only when one cause is left.

use super::cause::Cause;
use super::facts::{self, Seen};
use super::finding::{Confidence, Context, Evidence, Finding, FindingKind};
use super::local::{CheckId, LocalCheck};
use crate::auth::credentials::Placement;
use crate::auth::event::Transport;
use crate::probe::variant::Variant;
use crate::probe::{AttemptReport, ProbePlan};

/// What an attempt would show under a cause.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Predict {
    Connect,
    Refuse,
    /// The cause does not say (an unknown default authorizer, a policy that pins the client ID, …).
    Either,
}

/// The credential causes, in prior order: the most common first.
pub(crate) const CAUSES: [Cause; 15] = [
    Cause::TokenKeyNameWrong,
    Cause::AuthorizerDenied,
    Cause::SignatureInvalid,
    Cause::AuthorizerUnknown,
    Cause::PolicyConnectDenied,
    Cause::PolicyPublishDenied,
    Cause::SignatureWrongValue,
    Cause::SignatureMissing,
    Cause::LambdaError,
    Cause::LambdaNotInvocable,
    Cause::LambdaTimeout,
    Cause::AuthorizerInactive,
    Cause::AuthorizerMissingNoDefault,
    Cause::TokenMissing,
    Cause::UsernameMalformed,
];

/// The attempt's features the table reads.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Probe {
    pub variant: Variant,
    pub transport: Transport,
    pub placement: Placement,
    /// Sent with the device's own client ID.
    pub exact_id: bool,
}

impl Probe {
    pub(crate) fn of(a: &AttemptReport) -> Self {
        Self { variant: a.variant, transport: a.transport, placement: a.placement, exact_id: a.exact_client_id }
    }
}

/// What the device's settings and the documents say, for the table.
#[derive(Clone, Debug, Default)]
pub(crate) struct Known {
    /// Signing on (`Some(true)`), off, or unknown.
    pub signing: Option<bool>,
    /// The right token key name is known to differ from the one sent beyond letter case.
    pub key_differs_beyond_case: bool,
    /// The device names no authorizer (it relies on the endpoint's default).
    pub no_name_sent: bool,
}

/// How a variant's change relates to a cause: it may repair the fault, certainly repairs it, or
/// leaves the device's (otherwise valid) credentials broken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    /// Keeps the credentials as the baseline sends them.
    Neutral,
    /// Repairs the cause, for certain.
    Repairs,
    /// May repair the cause (we do not know the right value).
    MayRepair,
    /// Breaks otherwise valid credentials.
    Breaks,
    /// Says nothing reliable (undocumented server behaviour).
    Unknowable,
}

fn change(c: Cause, p: Probe, k: &Known) -> Change {
    use Variant::*;
    let signing_drop = match k.signing {
        Some(true) => Change::Breaks,
        Some(false) => Change::Neutral,
        None => Change::Unknowable,
    };
    match p.variant {
        Baseline | ClientIdOther | InQuery | InUsername | HostPort | SdkMetrics | Mqtt5 | Mqtt311 => Change::Neutral,
        // The deviation findings read it; it may differ from the device in several ways at once.
        Documented | Ipv6 | SniNone | SniIp | SniOther | AlpnNone | AlpnX509 | AlpnHttp | AlpnMqtt | HostMissing
        | HostOther | Port8883 | Port8443 | SecondQuestionMark | SignatureRaw | Mqtt5EnhancedAuth => Change::Unknowable,
        // A browser's upgrade varied (subprotocol, path, Origin): a server's answer to each is its
        // own, not the authorizer's.
        WsProtocolOther | PathDoubleSlash | OriginOther => Change::Unknowable,
        TokenKeyCase if p.placement == Placement::Header => Change::Neutral,
        TokenKeyToken | TokenKeyCase => match c {
            Cause::TokenKeyNameWrong => Change::MayRepair,
            _ => Change::Breaks,
        },
        TokenKeyDescribed => match c {
            Cause::TokenKeyNameWrong => Change::Repairs,
            _ => Change::Breaks,
        },
        AuthorizerOmitted => match c {
            Cause::AuthorizerUnknown | Cause::AuthorizerInactive => Change::MayRepair,
            // Omitting the name gets the endpoint's default authorizer, which may be another one:
            // other signing, another token key name, another function. Its verdict says nothing
            // about the named authorizer's.
            _ => Change::Unknowable,
        },
        AuthorizerCase => match c {
            Cause::AuthorizerUnknown => Change::MayRepair,
            _ => Change::Breaks,
        },
        AuthorizerDescribed => match c {
            Cause::AuthorizerUnknown | Cause::AuthorizerMissingNoDefault => Change::Repairs,
            _ => Change::Neutral,
        },
        SignatureMissing | SignatureWrongName | SignatureOtherValue => match c {
            Cause::SignatureMissing | Cause::SignatureInvalid | Cause::SignatureWrongValue => Change::Breaks,
            _ => signing_drop,
        },
    }
}

/// The outcome `p` would show if `c` were the device's one fault.
pub(crate) fn predict(c: Cause, p: Probe, k: &Known) -> Predict {
    let ch = change(c, p, k);
    if ch == Change::Unknowable {
        return Predict::Either;
    }
    if c == Cause::PolicyConnectDenied {
        return match ch {
            Change::Breaks => Predict::Refuse,
            // HTTPS needs no iot:Connect; another client ID may be allowed.
            _ if p.transport == Transport::Https || !p.exact_id => Predict::Either,
            _ => Predict::Refuse,
        };
    }
    if c == Cause::PolicyPublishDenied {
        // Only the HTTPS publish needs iot:Publish to succeed; an MQTT connect does not.
        return match ch {
            Change::Breaks => Predict::Refuse,
            _ if p.transport == Transport::Https => Predict::Refuse,
            _ if p.exact_id => Predict::Connect,
            _ => Predict::Either,
        };
    }
    if c == Cause::TokenKeyNameWrong && ch == Change::Neutral && p.placement == Placement::Header {
        // Header names are case-insensitive: a key wrong only in letter case passes in a header.
        return if k.key_differs_beyond_case { Predict::Refuse } else { Predict::Either };
    }
    if c == Cause::UsernameMalformed && p.placement != Placement::Username {
        return if p.exact_id || p.transport == Transport::Https { Predict::Connect } else { Predict::Either };
    }
    match ch {
        Change::Neutral | Change::Breaks => Predict::Refuse,
        // A pinned client-ID policy refuses a repaired attempt sent under another client ID.
        Change::Repairs if p.exact_id || p.transport == Transport::Https => Predict::Connect,
        _ => Predict::Either,
    }
}

/// Whether `seen` contradicts `predict`.
pub(crate) fn contradicts(predict: Predict, seen: Seen) -> bool {
    matches!((predict, seen), (Predict::Connect, Seen::Refused) | (Predict::Refuse, Seen::Connected))
}

/// The causes a plan can have at all (no signature sent: it cannot be invalid; and so on).
pub(crate) fn possible(plan: &ProbePlan) -> Vec<Cause> {
    let judged = plan.judged_credentials();
    let c = &judged;
    CAUSES
        .into_iter()
        .filter(|cause| match cause {
            Cause::SignatureMissing => c.signature.is_none(),
            Cause::SignatureInvalid | Cause::SignatureWrongValue => c.signature.is_some(),
            Cause::TokenMissing => c.token.is_none(),
            Cause::AuthorizerUnknown => c.authorizer.is_some(),
            Cause::AuthorizerMissingNoDefault => c.authorizer.is_none(),
            Cause::UsernameMalformed => c.username.as_deref().is_some_and(|u| u.contains('?')),
            // HTTPS needs no iot:Connect; MQTT needs no iot:Publish to connect.
            Cause::PolicyConnectDenied => plan.matrix.transports.iter().any(|t| *t != Transport::Https),
            Cause::PolicyPublishDenied => plan.matrix.transports.contains(&Transport::Https),
            _ => true,
        })
        .collect()
}

/// What the plan and documents say, for [`predict`].
pub(crate) fn known(plan: &ProbePlan) -> Known {
    let docs = &plan.documents;
    let signing = match &docs.authorizer {
        Some(a) => Some(a.signing_keys.is_some()),
        None => (!docs.public_keys.is_empty()).then_some(true),
    };
    let sent = &plan.credentials.token_key_name;
    let described_key = docs.authorizer.as_ref().map(|a| a.token_key_name.as_str());
    Known {
        signing,
        key_differs_beyond_case: described_key.is_some_and(|k| !k.eq_ignore_ascii_case(sent)),
        no_name_sent: plan.judged_credentials().authorizer.is_none(),
    }
}

/// The result of elimination.
#[derive(Clone, Debug)]
pub(crate) struct Left {
    /// Causes still consistent, most likely first.
    pub causes: Vec<Cause>,
    /// Attempts whose outcome ruled something out or supports what is left.
    pub deciding: Vec<Evidence>,
    /// Some credential attempt connected.
    pub any_connected: bool,
    /// The same credentials, presented the same way, were accepted by one attempt and refused by
    /// another: the refusal is intermittent, and no cause is confirmed.
    pub mixed: Option<Mixed>,
}

/// Identical credentials with different verdicts: the attempts that connected and those refused.
#[derive(Clone, Debug)]
pub(crate) struct Mixed {
    pub connected: Vec<String>,
    pub refused: Vec<String>,
    /// One transport had both verdicts (a retry of the same attempt, say): nothing but an
    /// intermittent failure explains that.
    pub same_transport: bool,
}

/// Causes decided before the function runs, from what the request carries alone: identical
/// credentials always get the same verdict from them, on any transport.
const FRONT_DOOR: [Cause; 10] = [
    Cause::TokenKeyNameWrong,
    Cause::SignatureInvalid,
    Cause::SignatureWrongValue,
    Cause::SignatureMissing,
    Cause::AuthorizerUnknown,
    Cause::AuthorizerInactive,
    Cause::AuthorizerMissingNoDefault,
    Cause::TokenMissing,
    Cause::UsernameMalformed,
    Cause::LambdaNotInvocable,
];

/// Variants that send the device's credentials unchanged, where they put them.
fn unchanged(v: Variant) -> bool {
    matches!(v, Variant::Baseline | Variant::Mqtt5 | Variant::Mqtt311 | Variant::SdkMetrics | Variant::HostPort)
}

/// Attempts that sent the credentials unchanged, in the same place and with the same client ID, yet
/// got different verdicts.
fn mixed(observed: &[(&AttemptReport, Seen)]) -> Option<Mixed> {
    let same = |a: &AttemptReport, b: &AttemptReport| {
        unchanged(a.variant)
            && unchanged(b.variant)
            && a.placement == b.placement
            && a.exact_client_id == b.exact_client_id
            && !facts::mqtt_not_negotiated(a)
            && !facts::mqtt_not_negotiated(b)
    };
    let mut m = Mixed { connected: Vec::new(), refused: Vec::new(), same_transport: false };
    for (a, _) in observed.iter().filter(|(_, s)| *s == Seen::Connected) {
        for (b, _) in observed.iter().filter(|(b, s)| *s == Seen::Refused && same(a, b)) {
            m.same_transport |= a.transport == b.transport;
            if !m.connected.contains(&a.id) {
                m.connected.push(a.id.clone());
            }
            if !m.refused.contains(&b.id) {
                m.refused.push(b.id.clone());
            }
        }
    }
    (!m.connected.is_empty()).then_some(m)
}

/// Eliminates causes with the local checks, the attempts' outcomes and the timing.
pub(crate) fn eliminate(plan: &ProbePlan, local: &[LocalCheck], attempts: &[AttemptReport]) -> Left {
    let k = known(plan);
    let ruled_out: Vec<Cause> = local.iter().filter(|c| c.passed).flat_map(|c| c.rules_out.clone()).collect();
    let mut left: Vec<Cause> = possible(plan).into_iter().filter(|c| !ruled_out.contains(c)).collect();
    let mut deciding = Vec::new();
    let observed: Vec<(&AttemptReport, Seen)> =
        attempts.iter().map(|a| (a, facts::seen(a))).filter(|(_, s)| *s != Seen::Other).collect();
    for (a, seen) in &observed {
        let before = left.len();
        left.retain(|&c| !contradicts(predict(c, Probe::of(a), &k), *seen));
        if left.len() < before || *seen == Seen::Connected {
            deciding.push(Evidence::attempt(a));
        }
    }
    timing(&mut left, attempts, plan);
    let any_connected = observed.iter().any(|(_, s)| *s == Seen::Connected);
    let mixed = mixed(&observed);
    if let Some(m) = &mixed {
        // What the front door decides cannot differ for identical credentials; one transport with
        // both verdicts leaves no deterministic cause at all.
        left.retain(|c| !FRONT_DOOR.contains(c) && !m.same_transport);
        // A function failing some of the time stays a candidate until the device's own attempt,
        // repeated, is refused every time.
        if possible(plan).contains(&Cause::LambdaError)
            && !left.contains(&Cause::LambdaError)
            && (m.same_transport || !retries_refused(attempts))
        {
            left.push(Cause::LambdaError);
        }
    }
    let mut causes = left;
    let probes: Vec<(Probe, Seen)> = observed.iter().map(|(a, s)| (Probe::of(a), *s)).collect();
    rank(&mut causes, &probes, &k);
    Left { causes, deciding, any_connected, mixed }
}

/// Whether one transport gave identical credentials both verdicts: refusals come and go.
pub(crate) fn comes_and_goes(attempts: &[AttemptReport]) -> bool {
    let observed: Vec<(&AttemptReport, Seen)> =
        attempts.iter().map(|a| (a, facts::seen(a))).filter(|(_, s)| *s != Seen::Other).collect();
    mixed(&observed).is_some_and(|m| m.same_transport)
}

/// How often the refused baseline is repeated, when other attempts contradict it, before its
/// refusal counts as one that holds: a function failing about half the time passes one retry in two.
pub(crate) const RETRIES: usize = 2;

/// The device's attempt was repeated at least [`RETRIES`] times and refused every
/// time.
pub(crate) fn retries_refused(attempts: &[AttemptReport]) -> bool {
    let retries: Vec<Seen> = attempts
        .iter()
        .filter(|a| a.variant == Variant::Baseline && a.follow_up.is_some())
        .map(facts::seen)
        .filter(|s| *s != Seen::Other)
        .collect();
    retries.len() >= RETRIES && retries.iter().all(|s| *s == Seen::Refused)
}

/// A refusal about 5 s after the request on every baseline is a timeout, and nothing else; a faster
/// refusal rules a timeout out.
fn timing(left: &mut Vec<Cause>, attempts: &[AttemptReport], plan: &ProbePlan) {
    let times: Vec<u64> =
        facts::baselines(attempts).filter(|a| facts::is_auth_refusal(a)).filter_map(facts::answer_ms).collect();
    if times.is_empty() {
        left.retain(|&c| c != Cause::LambdaTimeout);
    } else if times.iter().all(|&ms| ms >= plan.timeout_ms()) {
        left.retain(|&c| c == Cause::LambdaTimeout);
    } else {
        left.retain(|&c| c != Cause::LambdaTimeout);
    }
}

/// Most likely first: causes that a connected attempt may have repaired lead; then the prior order,
/// each variant that might have repaired a cause and was refused anyway moving it two places down
/// (weak evidence: `token-key-token` repairs a wrong key name only when the right one is `token`).
pub(crate) fn rank(causes: &mut [Cause], observed: &[(Probe, Seen)], k: &Known) {
    let support = |c: Cause| support(c, observed, k);
    let against = |c: Cause| {
        let mut variants: Vec<Variant> = Vec::new();
        for (a, _) in observed.iter().filter(|(a, s)| *s == Seen::Refused && change(c, *a, k) == Change::MayRepair) {
            if !variants.contains(&a.variant) {
                variants.push(a.variant);
            }
        }
        variants.len()
    };
    // A device that names no authorizer most often meets an endpoint without a default one.
    let prior = |c: Cause| match c {
        Cause::AuthorizerMissingNoDefault if k.no_name_sent => 0,
        _ => CAUSES.iter().position(|x| *x == c).map_or(usize::MAX, |p| p + 1),
    };
    // HTTPS publish needs no iot:Connect: through over HTTPS and refused over MQTT is the catalogue's
    // signature of a policy without iot:Connect (a token key wrong only in letter case is rarer).
    let https_through = observed.iter().any(|(a, s)| a.transport == Transport::Https && *s == Seen::Connected);
    let lead = |c: Cause| https_through && c == Cause::PolicyConnectDenied;
    causes.sort_by_key(|&c| (!lead(c), std::cmp::Reverse(support(c)), prior(c) + 2 * against(c), prior(c)));
}

/// Connected attempts that may have repaired `c` (a variant that says nothing about it does not
/// count).
pub(crate) fn support(c: Cause, observed: &[(Probe, Seen)], k: &Known) -> usize {
    observed
        .iter()
        .filter(|(a, s)| {
            *s == Seen::Connected && predict(c, *a, k) != Predict::Refuse && change(c, *a, k) != Change::Unknowable
        })
        .count()
}

/// The refusal findings: what the documents establish first, then what the attempts leave.
pub(crate) fn findings(cx: &Context<'_>) -> Vec<Finding> {
    let refused: Vec<&AttemptReport> = facts::baselines(cx.attempts).filter(|a| facts::is_auth_refusal(a)).collect();
    let mqtt_through = facts::baselines(cx.attempts).any(|a| a.transport != Transport::Https && facts::is_connected(a));
    // Only HTTPS refused while MQTT connects: the publish policy (risks::https_publish says so).
    if refused.is_empty() || (mqtt_through && refused.iter().all(|a| a.transport == Transport::Https)) {
        return Vec::new();
    }
    if let Some(f) = throttled(&refused, cx) {
        return vec![f];
    }
    let left = eliminate(cx.plan, cx.local, cx.attempts);
    let base_evidence: Vec<Evidence> = refused.iter().map(|a| Evidence::attempt(a)).collect();
    let established = established(cx.local);
    if !established.is_empty() {
        return established
            .into_iter()
            .map(|(cause, check, trusted)| {
                let confirmed = trusted && (left.causes.contains(&cause) || !left.any_connected);
                let mut evidence = vec![Evidence::check(check)];
                evidence.extend(base_evidence.clone());
                evidence.extend(left.deciding.iter().filter(|e| !evidence.contains(e)).cloned().collect::<Vec<_>>());
                let confidence = if confirmed { Confidence::Confirmed } else { Confidence::Likely };
                super::explain::finding(cause, FindingKind::Cause, confidence, check.detail.clone(), cx)
                    .with_evidence(evidence)
            })
            .collect();
    }
    let mut evidence = base_evidence;
    evidence.extend(left.deciding.iter().filter(|e| !evidence.contains(e)).cloned().collect::<Vec<_>>());
    if let Some(m) = left.mixed.as_ref().filter(|m| m.same_transport || left.causes == [Cause::LambdaError]) {
        return vec![intermittent(m, &left.causes, &refused, cx).with_evidence(evidence)];
    }
    match left.causes.as_slice() {
        [only] => {
            let confidence = if held(*only, cx) { Confidence::Confirmed } else { Confidence::Likely };
            vec![
                super::explain::finding(*only, FindingKind::Cause, confidence, String::new(), cx)
                    .with_evidence(evidence),
            ]
        }
        [first, ..] if left.any_connected && (left.causes.len() <= 3 || leads(&left.causes, cx)) => {
            let mut f = super::explain::finding(*first, FindingKind::Cause, Confidence::Likely, String::new(), cx)
                .with_evidence(evidence);
            f.candidates = left.causes.clone();
            vec![f]
        }
        _ => vec![super::explain::unexplained(&left.causes, &refused, cx).with_evidence(evidence)],
    }
}

/// MQTT 5's reason code 0x9F (connection rate exceeded) on the device's attempt: IoT Core's one
/// CONNECT a second per client ID. The interval since the run's previous CONNECT with that client ID
/// is measured; none in the run means another client (or the device itself) connected just before.
fn throttled(refused: &[&AttemptReport], cx: &Context<'_>) -> Option<Finding> {
    use crate::probe::outcome::Detail;
    let a = refused.iter().find(|a| matches!(a.outcome.detail, Detail::Connack { code: 0x9F, .. }))?;
    let id = a.sent.client_id.clone().unwrap_or_else(|| cx.plan.device.client_id.clone());
    let previous = cx
        .attempts
        .iter()
        .filter(|b| b.sent.client_id.as_deref() == Some(id.as_str()) && b.connect_unix_ms < a.connect_unix_ms)
        .map(|b| b.connect_unix_ms)
        .max();
    let when = match previous {
        Some(t) => format!("{} ms after this run's previous CONNECT with that client ID", a.connect_unix_ms - t),
        None => "with no earlier CONNECT of this run for it: another client (or the device itself) connected with it less than a second before".into(),
    };
    let detail = format!(
        "IoT Core answered the {} CONNECT for client ID `{id}` with 0x9F (connection rate exceeded), {when}; it takes one CONNECT a second per client ID",
        a.transport
    );
    let mut f = super::explain::finding(Cause::ConnectThrottled, FindingKind::Cause, Confidence::Likely, detail, cx);
    f.candidates = vec![Cause::ConnectThrottled];
    f.fix = format!(
        "space reconnects of client ID `{id}` at least a second apart (back off, with jitter), and make sure no other client uses it"
    );
    Some(f.with_evidence(vec![Evidence::attempt(a)]))
}

/// Whether the first cause alone (with its siblings) is supported by an attempt that connected when
/// it repaired that cause: it leads the others, which stay candidates.
fn leads(causes: &[Cause], cx: &Context<'_>) -> bool {
    let k = known(cx.plan);
    let observed: Vec<(Probe, Seen)> =
        cx.attempts.iter().map(|a| (Probe::of(a), facts::seen(a))).filter(|(_, s)| *s != Seen::Other).collect();
    let first = causes.first().map_or(0, |c| support(*c, &observed, &k));
    first > 0 && causes.iter().filter(|c| support(**c, &observed, &k) == first).count() <= 3
}

/// Identical credentials accepted and refused: an intermittent refusal, most often the function
/// failing (or timing out) some of the time; never confirmed — the refused attempts, repeated, tell.
fn intermittent(m: &Mixed, left: &[Cause], refused: &[&AttemptReport], cx: &Context<'_>) -> Finding {
    // Refused at first, then accepted every time it was repeated: another client on the device's
    // client ID, or IoT Core's connect rate, explains that as well as the function does. A refusal
    // that comes back after an acceptance does not go with either.
    let retry_refused = cx
        .attempts
        .iter()
        .any(|a| a.variant == Variant::Baseline && a.follow_up.is_some() && facts::seen(a) == Seen::Refused);
    if let Some(mut f) = super::explain::client_id_in_use(refused, cx).filter(|_| !retry_refused) {
        f.summary = format!(
            "{} Or the authorizer's function fails some of the time (a Lambda error): its CloudWatch logs tell.",
            f.summary.trim_end()
        );
        f.candidates = vec![Cause::ConnectThrottled, Cause::LambdaError];
        return f;
    }
    let detail = format!(
        "the same credentials, sent the same way, were accepted ({}) and refused ({}): the refusal is intermittent — the authorizer's function fails or times out some of the time, or decides differently for the same token{}",
        m.connected.join(", "),
        m.refused.join(", "),
        if m.same_transport { "" } else { " (or by transport)" }
    );
    let mut f = super::explain::finding(Cause::LambdaError, FindingKind::Cause, Confidence::Likely, detail, cx);
    f.candidates = left.to_vec();
    if !f.candidates.contains(&Cause::LambdaError) {
        f.candidates.insert(0, Cause::LambdaError);
    }
    f
}

/// With something through, a refusal is a cause only once it is seen to hold: a refused retry
/// follow-up rules out a transient one (another client on the client ID, a throttled connect), and so
/// does a repair of `cause` that connects with the device's own client ID.
fn held(cause: Cause, cx: &Context<'_>) -> bool {
    let k = known(cx.plan);
    let observed = || cx.attempts.iter().map(|a| (a, facts::seen(a))).filter(|(_, s)| *s != Seen::Other);
    let any_connected = observed().any(|(_, s)| s == Seen::Connected);
    // Every retry of the device's attempt refused, and at least two of them: one refusal in a row
    // is what a function failing half the time gives as often as not.
    let retry_refused = retries_refused(cx.attempts);
    let repaired = observed().any(|(a, s)| {
        s == Seen::Connected
            && a.exact_client_id
            && matches!(change(cause, Probe::of(a), &k), Change::Repairs | Change::MayRepair)
    });
    !any_connected || retry_refused || repaired
}

/// Credential causes a failed local check establishes: (cause, the check, whether the document can
/// be trusted for this device — a describe-authorizer JSON of another authorizer cannot).
pub(crate) fn established(local: &[LocalCheck]) -> Vec<(Cause, &LocalCheck, bool)> {
    let foreign_doc = local.iter().any(|c| c.check == CheckId::AuthorizerName && !c.passed && c.implicates.is_none());
    local
        .iter()
        .filter(|c| !c.passed)
        .filter_map(|c| c.implicates.filter(|i| i.is_credential()).map(|i| (i, c)))
        .map(|(i, c)| {
            (
                i,
                c,
                !(foreign_doc
                    && matches!(
                        c.check,
                        CheckId::TokenKeyName
                            | CheckId::AuthorizerStatus
                            | CheckId::SignaturePresent
                            | CheckId::SignatureVerifies
                    )),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests;
