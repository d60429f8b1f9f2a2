//! Which limit shaped a storm, read from the attempts alone (what a fleet's devices can see): the
//! answer's own words where it has them (MQTT 5's "connection rate exceeded"), else the pattern —
//! refusals that come only with many CONNECTs in flight (the authorizer's concurrency), only in the
//! busiest seconds (a connect rate), only on a device's quick retry (one connect a second per client
//! ID), or about 5 s after the CONNECT (the authorizer's time limit).

use super::report::{Attempt, Raw, Second, Setup, Shape};

/// An answer this long after the CONNECT is IoT Core's authorizer time limit running out.
const TIMEOUT_MS: u32 = 4_800;

fn shape(limit: &str, confidence: &str, summary: String) -> Shape {
    Shape { limit: limit.to_owned(), confidence: confidence.to_owned(), summary }
}

/// The outcome label of `a`.
fn label<'a>(raw: &'a Raw, a: &Attempt) -> &'a str {
    raw.outcomes.get(usize::from(a.outcome)).map_or("", String::as_str)
}

/// The limits that shaped the storm, most telling first.
pub(crate) fn shapes(
    raw: &Raw,
    is_ok: &dyn Fn(&Attempt) -> bool,
    timeline: &[Second],
    setup: &Setup,
    times: &[u64],
) -> Vec<Shape> {
    let label = |a: &Attempt| label(raw, a);
    let (ok, not_ok): (Vec<&Attempt>, Vec<&Attempt>) = raw.attempts.iter().partition(|a| is_ok(a));
    // Failures before any CONNECT: the endpoint's (or this machine's) connections, not the authorizer.
    // (Attempts the storm's end cut off say nothing of the endpoint.)
    let (refused, early): (Vec<&Attempt>, Vec<&Attempt>) =
        not_ok.into_iter().filter(|a| label(a) != super::report::INTERRUPTED).partition(|a| a.in_flight > 0);
    let mut out = Vec::new();
    if !early.is_empty() {
        let mut kinds: Vec<&str> = early.iter().map(|a| label(a)).collect();
        kinds.sort_unstable();
        kinds.dedup();
        out.push(shape(
            "connections",
            "confirmed",
            format!(
                "{} attempts failed before sending a CONNECT ({}): the endpoint (or a proxy, or this machine's \
                 open-file limit) refused connections, not the authorizer",
                early.len(),
                kinds.join(", ")
            ),
        ));
    }
    if refused.is_empty() {
        if out.is_empty() {
            let took = times.last().map_or("-".to_owned(), |t| format!("{:.1} s", *t as f64 / 1000.0));
            let peak = timeline.iter().map(|s| s.accepted).max().unwrap_or(0);
            out.push(shape(
                "none",
                "confirmed",
                format!(
                    "no limit was reached: every attempt was accepted ({} devices in {took}; at most {peak} a second)",
                    times.len()
                ),
            ));
        }
        return out;
    }
    let per_id = client_id_rate(&raw.attempts, is_ok);
    out.extend(per_id.clone());
    out.extend(explicit(&refused, raw, per_id.is_some()));
    out.extend(timeouts(&refused));
    // What the answers do not name: the load's pattern (quick retries aside when they are the cause).
    let fast: Vec<&Attempt> = refused
        .iter()
        .copied()
        .filter(|a| a.latency_ms < TIMEOUT_MS && !label(a).ends_with("0x9f"))
        .filter(|a| per_id.is_none() || !quick(a))
        .collect();
    if !fast.is_empty() {
        out.push(load(&fast, &ok, setup));
    }
    out
}

/// A retry less than a second after the device's previous connect.
fn quick(a: &Attempt) -> bool {
    a.gap_ms.is_some_and(|g| g < 1_000)
}

/// One connect a second per client ID: quick retries (that sent a CONNECT) are nearly all refused,
/// and spaced attempts far less often.
fn client_id_rate(attempts: &[Attempt], is_ok: &dyn Fn(&Attempt) -> bool) -> Option<Shape> {
    let sent = attempts.iter().filter(|a| a.in_flight > 0);
    let (mut q, mut q_ref, mut s, mut s_ref) = (0usize, 0usize, 0usize, 0usize);
    for a in sent {
        let refused = usize::from(!is_ok(a));
        if quick(a) {
            (q, q_ref) = (q + 1, q_ref + refused);
        } else {
            (s, s_ref) = (s + 1, s_ref + refused);
        }
    }
    let quick_share = q_ref as f64 / q.max(1) as f64;
    let spaced_share = s_ref as f64 / s.max(1) as f64;
    (q >= 5 && quick_share >= 0.9 && spaced_share <= quick_share / 2.0).then(|| {
        shape(
            "client_id_rate",
            "likely",
            format!(
                "{q_ref} of {q} retries less than 1 s after the device's previous connect were refused, against {s_ref} \
                 of {s} spaced ones: IoT Core allows one CONNECT a second per client ID; make the reconnect delay 1 s or more"
            ),
        )
    })
}

/// MQTT 5 CONNACK 0x9F ("connection rate exceeded"): the account's rate (on a quick retry, the client
/// ID's, when that pattern was found).
fn explicit(refused: &[&Attempt], raw: &Raw, per_id: bool) -> Vec<Shape> {
    let label = |a: &Attempt| label(raw, a);
    let mut out = Vec::new();
    // Quick retries' 0x9F are the client ID's when that pattern was found, else the account's too.
    let account = refused.iter().filter(|a| label(a).ends_with("0x9f") && !(per_id && quick(a))).count();
    if account > 0 {
        out.push(shape(
            "account_connect_rate",
            "confirmed",
            format!(
                "{account} refusals were MQTT 5 CONNACK 0x9F (connection rate exceeded): the account's connect rate \
                 (IoT Core: 500 a second by default; a quota you can raise)"
            ),
        ));
    }
    out
}

/// Refusals about 5 s after the CONNECT: the authorizer did not answer in time.
fn timeouts(refused: &[&Attempt]) -> Option<Shape> {
    let slow = refused.iter().filter(|a| a.latency_ms >= TIMEOUT_MS).count();
    (slow * 10 >= refused.len() && slow > 0).then(|| {
        shape(
            "authorizer_timeout",
            "likely",
            format!(
                "{slow} of {} refusals came 4.8 s or more after the CONNECT: the authorizer did not answer within IoT \
                 Core's 5 s (cold starts, or a function slowed by the load)",
                refused.len()
            ),
        )
    })
}

/// Fast refusals that no answer explains. If the refused devices connected later (the refusals
/// follow the load), it is the authorizer's concurrency or a connect rate: over MQTT 5 a rate refusal
/// would have said so (CONNACK 0x9F), so it is the concurrency; over MQTT 3.1.1 both close the same
/// way, and the finding says which test splits them. If they did not, it is not the load.
fn load(fast: &[&Attempt], ok: &[&Attempt], setup: &Setup) -> Shape {
    let n = fast.len();
    let connected: std::collections::HashSet<u32> = ok.iter().map(|a| a.device).collect();
    let mut refused: Vec<u32> = fast.iter().map(|a| a.device).collect();
    refused.sort_unstable();
    refused.dedup();
    let later = refused.iter().filter(|d| connected.contains(d)).count();
    if later * 5 < refused.len() * 4 {
        return shape(
            "not_load",
            "likely",
            format!(
                "{n} refusals, and {} of the {} refused devices never connected while others did: the authorizer \
                 refuses those devices' credentials, whatever the load (probe one with `authprobe probe`)",
                refused.len() - later,
                refused.len()
            ),
        );
    }
    let busiest = most_per_second(ok);
    let cap = setup.max_rate.map(|r| format!(", --max-rate {r}")).unwrap_or_default();
    if setup.mqtt_version == "5" {
        return shape(
            "authorizer_concurrency",
            "likely",
            format!(
                "{n} refusals came fast and without CONNACK 0x9F (which a connect-rate refusal carries), and {later} of \
                 the {} refused devices connected on a later try: the authorizer's concurrency (a Lambda's reserved or \
                 account concurrency) ran out; invocations beyond it are throttled and IoT Core refuses the connection",
                refused.len()
            ),
        );
    }
    shape(
        "authorizer_concurrency_or_connect_rate",
        "possible",
        format!(
            "{n} refusals came fast under load ({later} of the {} refused devices connected on a later try; at most \
             {busiest} accepted a second{cap}): the authorizer's concurrency ran out, or a connect rate limit was hit. \
             MQTT 3.1.1 closes the connection for both: run the storm again with --mqtt-version 5 (a connect-rate \
             refusal is CONNACK 0x9F), or compare the authorizer's Throttles metric in CloudWatch (a rate refusal never \
             invokes it)",
            refused.len()
        ),
    )
}

/// The most connects accepted in one second (by when their CONNACK came).
fn most_per_second(ok: &[&Attempt]) -> usize {
    let mut ends: Vec<u32> = ok.iter().map(|a| a.sent_ms.saturating_add(a.latency_ms)).collect();
    ends.sort_unstable();
    ends.iter()
        .enumerate()
        .map(|(i, e)| i + 1 - ends.partition_point(|x| x.saturating_add(1_000) <= *e))
        .max()
        .unwrap_or(0)
}
