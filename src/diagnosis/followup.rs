//! The follow-up round: when more than one cause is left and an attempt can split them, run it.
//! Follow-ups use the device's own client ID (a policy may pin iot:Connect to it), one at a time
//! with the spacing IoT Core needs between connects of one client ID.

use super::cause::Cause;
use super::differential::{self, Predict, Probe, RETRIES};
use super::facts::{self, Seen};
use super::local::LocalCheck;
use crate::auth::event::Transport;
use crate::probe::matrix::derive;
use crate::probe::plan::{AttemptSpec, Credentials, Expect};
use crate::probe::variant::Variant;
use crate::probe::{AttemptReport, ProbePlan};

/// At most this many follow-ups per run (two retries of the refused baseline, then up to four that
/// split causes).
pub(crate) const MAX: usize = 6;

/// The follow-up attempts worth running after `attempts`, in order.
pub(crate) fn plan(plan: &ProbePlan, local: &[LocalCheck], attempts: &[AttemptReport]) -> Vec<AttemptSpec> {
    let Some(base) = refused_baseline(attempts) else { return Vec::new() };
    let Some(base_spec) = plan.baseline().into_iter().find(|s| s.transport == base.transport) else {
        return Vec::new();
    };
    let left = differential::eliminate(plan, local, attempts).causes;
    let established: Vec<Cause> = differential::established(local).iter().map(|(c, _, _)| *c).collect();
    let k = differential::known(plan);
    let mut out = Vec::new();
    // Refused with the device's client ID while something else got through: the device's attempt
    // once more, spaced, tells a transient refusal (another client on the same client ID, a throttled
    // connect) from one that holds, before any cause is called confirmed.
    let through = attempts.iter().any(|a| a.follow_up.is_none() && facts::is_connected(a));
    if base.exact_client_id && through {
        for n in 1..=RETRIES {
            let mut s = base_spec.clone();
            s.id = format!(
                "follow-up/{}/baseline{}",
                base.transport,
                if n == 1 { String::new() } else { format!("-{n}") }
            );
            s.follow_up = Some(format!(
                "connects if the refusal was transient (another client on client ID {}, a throttled connect, a function that fails some of the time); refused again if it holds",
                plan.device.client_id
            ));
            out.push(s);
        }
    }
    for (v, creds) in candidates(plan, attempts, base.transport) {
        let probe = Probe { variant: v, transport: base.transport, placement: base.placement, exact_id: true };
        let splits = splits(&left, probe, &k);
        let confirms = established.iter().any(|c| differential::predict(*c, probe, &k) == Predict::Connect);
        if !(splits || confirms) || out.len() >= MAX {
            continue;
        }
        let mut s = derive(plan, &base_spec, v, &describe(v), Expect::Unknown);
        s.id = format!("follow-up/{}/{v}", base.transport);
        s.client_id = plan.device.client_id.clone();
        s.credentials = creds;
        s.follow_up = Some(reason(&left, probe, &k, confirms));
        out.push(s);
    }
    out
}

/// The first baseline refused on its credentials (MQTT first: it carries the client ID).
fn refused_baseline(attempts: &[AttemptReport]) -> Option<&AttemptReport> {
    let mut refused: Vec<&AttemptReport> =
        facts::baselines(attempts).filter(|a| facts::seen(a) == Seen::Refused).collect();
    refused.sort_by_key(|a| a.transport != Transport::Mqtt);
    refused.into_iter().next()
}

/// Variants worth repeating with the device's client ID, with their credentials.
fn candidates(plan: &ProbePlan, attempts: &[AttemptReport], t: Transport) -> Vec<(Variant, Option<Credentials>)> {
    let c = &plan.credentials;
    let mut out = Vec::new();
    if let Some(a) = &plan.documents.authorizer {
        if a.token_key_name != c.token_key_name && c.token.is_some() {
            out.push((
                Variant::TokenKeyDescribed,
                Some(Credentials { token_key_name: a.token_key_name.clone(), ..c.clone() }),
            ));
        }
        if c.authorizer.as_deref() != Some(a.name.as_str()) && a.active {
            out.push((
                Variant::AuthorizerDescribed,
                Some(Credentials { authorizer: Some(a.name.clone()), ..c.clone() }),
            ));
        }
    }
    // The matrix's credential variants that got an answer under another client ID: with the device's
    // own, a refusal may turn out a pinned policy's, and a success rules that policy out.
    for a in attempts.iter().filter(|a| a.transport == t && !a.exact_client_id && a.follow_up.is_none()) {
        let repeat = matches!(
            a.variant,
            Variant::TokenKeyToken | Variant::TokenKeyCase | Variant::AuthorizerOmitted | Variant::AuthorizerCase
        );
        if repeat && facts::seen(a) != Seen::Other {
            out.push((a.variant, a.credentials.clone()));
        }
    }
    out
}

/// Whether the outcome of `p` would rule out some of `left` whichever way it goes.
fn splits(left: &[Cause], p: Probe, k: &differential::Known) -> bool {
    let predictions: Vec<Predict> = left.iter().map(|c| differential::predict(*c, p, k)).collect();
    predictions.contains(&Predict::Refuse) && predictions.iter().any(|p| *p != Predict::Refuse)
}

fn reason(left: &[Cause], p: Probe, k: &differential::Known, confirms: bool) -> String {
    let of = |want: Predict| -> Vec<Cause> {
        left.iter().copied().filter(|c| differential::predict(*c, p, k) == want).collect()
    };
    let (connect, may, refuse) = (of(Predict::Connect), of(Predict::Either), of(Predict::Refuse));
    if confirms && refuse.is_empty() {
        return "confirms on the wire what the AWS documents say".into();
    }
    let ids = |v: &[Cause]| v.iter().map(|c| c.id()).collect::<Vec<_>>().join(", ");
    let mut parts = Vec::new();
    if !connect.is_empty() {
        parts.push(format!("connects if the cause is {}", ids(&connect)));
    }
    if !may.is_empty() {
        // `token-key-token` repairs a wrong key name only if the right one is `token`.
        parts.push(format!("may connect if it is {}", ids(&may)));
    }
    parts.push(format!("refused if it is {}", ids(&refuse)));
    parts.join("; ")
}

fn describe(v: Variant) -> String {
    match v {
        Variant::TokenKeyDescribed => {
            "the token under the describe-authorizer tokenKeyName, with the device's client ID".into()
        }
        Variant::AuthorizerDescribed => {
            "the authorizer name as describe-authorizer prints it, with the device's client ID".into()
        }
        other => format!("{other} again, with the device's client ID"),
    }
}
