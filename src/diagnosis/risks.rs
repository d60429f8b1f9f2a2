//! What would break a working device (risks), and what the returned policy refuses once connected.

use super::cause::Cause;
use super::facts::{self, Seen};
use super::finding::{Confidence, Context, Evidence, Finding, FindingKind};
use crate::auth::event::Transport;
use crate::probe::AttemptReport;
use crate::probe::outcome::{Detail, Kind, Stage};
use crate::probe::variant::Variant;

pub(crate) fn findings(cx: &Context<'_>) -> Vec<Finding> {
    let mut out: Vec<Finding> = policy(cx).into_iter().collect();
    out.extend(https_publish(cx));
    out.extend(variant_risks(cx));
    out.extend(slow(cx));
    out.extend(ip_endpoint(cx));
    out.extend(other_port(cx));
    out.extend(connect_limits(cx));
    out
}

/// CONNECT buffer sizes embedded MQTT clients commonly ship with (bytes).
const CONNECT_BUFFERS: [usize; 4] = [128, 256, 512, 1024];

/// What the device's own MQTT CONNECT meets, flagged from its settings before anything is sent: its
/// size against the fixed CONNECT buffers of embedded clients (a JWT and a 344-character signature
/// overflow them, and the client aborts before sending), its keep-alive against IoT Core's 30-1200 s,
/// its client ID against IoT Core's 128 bytes and reserved `$` prefix.
fn connect_limits(cx: &Context<'_>) -> Vec<Finding> {
    let plan = cx.plan;
    let Some(spec) = plan.baseline().into_iter().find(|s| s.transport != Transport::Https) else { return Vec::new() };
    let params = plan.auth_params(&spec);
    let username = crate::probe::attempt::mqtt_username(plan, &spec, &params);
    let password = plan.credentials_for(&spec).password.clone().unwrap_or_default();
    let keep_alive = plan.device.keep_alive.unwrap_or(crate::probe::mqtt::KEEP_ALIVE);
    let size = crate::probe::mqtt::connect_packet(
        spec.mqtt_version,
        &spec.client_id,
        &username,
        password.expose(),
        keep_alive,
    )
    .len();
    let mut out = Vec::new();
    let over: Vec<String> = CONNECT_BUFFERS.iter().filter(|b| size > **b).map(|b| b.to_string()).collect();
    if !over.is_empty() {
        out.push(risk(
            Cause::ConnectPacketTooLarge,
            format!(
                "The device's MQTT CONNECT is {size} bytes (username {} bytes, password {} bytes): more than the {}-byte CONNECT buffers many embedded MQTT clients ship with; such a client gives up before it sends anything.",
                username.len(),
                password.len(),
                over.join(", ")
            ),
            format!("give the device's MQTT client a network buffer of at least {size} bytes, or shorten the token"),
            Vec::new(),
        ));
    }
    if keep_alive != 0 && !(30..=1200).contains(&keep_alive) {
        let becomes = if keep_alive < 30 { 30 } else { 1200 };
        out.push(risk(
            Cause::KeepAliveOutOfRange,
            format!("The device's keep-alive is {keep_alive} s: IoT Core takes 30 to 1200 s and uses {becomes} s instead, so the device's own idea of when the connection is dead differs from IoT Core's."),
            format!("set the keep-alive between 30 and 1200 s ({becomes} s is what IoT Core will use)"),
            Vec::new(),
        ));
    }
    let id = &plan.device.client_id;
    if id.len() > 128 || id.starts_with('$') {
        let why = if id.len() > 128 {
            format!("is {} bytes; IoT Core allows at most 128", id.len())
        } else {
            "starts with `$`, which IoT Core reserves".into()
        };
        out.push(risk(
            Cause::ClientIdInvalid,
            format!("The device's client ID {why}: IoT Core refuses the connection."),
            "use a client ID of at most 128 bytes that does not start with `$` (and allow it in the policy's iot:Connect)".into(),
            Vec::new(),
        ));
    }
    out
}

fn risk(c: Cause, summary: String, fix: String, ev: Vec<Evidence>) -> Finding {
    Finding::new(c, FindingKind::Risk, Confidence::Confirmed, summary, fix).with_evidence(ev)
}

fn connected_baseline<'a>(cx: &Context<'a>, t: Transport) -> Option<&'a AttemptReport> {
    facts::baselines(cx.attempts).find(|a| a.transport == t && facts::is_connected(a))
}

/// A variant that got as far as the stage it changes and failed, while its transport's baseline
/// connected: a device that did the same would break.
fn variant_risks(cx: &Context<'_>) -> Vec<Finding> {
    let rules: [(&[Variant], Cause, &str, &str); 6] = [
        (
            &[Variant::Mqtt5EnhancedAuth],
            Cause::EnhancedAuthUnsupported,
            "MQTT 5 enhanced authentication (an Authentication Method such as SCRAM) is refused: a device whose client offers it would fail; custom authentication travels in the username and password",
            "turn enhanced authentication off in the device's MQTT 5 client; send the token in the username (or password) as custom authentication expects",
        ),
        (
            &[Variant::SniNone, Variant::SniIp],
            Cause::SniMissing,
            "Connections without SNI are refused: a device that connects by IP address or with an old TLS stack would fail",
            "make the device send SNI = the endpoint name (connect by name, not by IP)",
        ),
        (
            &[Variant::AlpnNone],
            Cause::AlpnMissing,
            "MQTT over TLS on 443 without ALPN `mqtt` is refused: a device whose TLS stack sends no ALPN would fail",
            "offer ALPN `mqtt` for MQTT over TLS on port 443",
        ),
        (
            &[Variant::SignatureRaw],
            Cause::SignatureNotEncoded,
            "The signature must be percent-encoded: sent raw in the username or query it is refused (a raw `+` reads as a space)",
            "percent-encode the signature (`+` → %2B, `/` → %2F, `=` → %3D) in the MQTT username or URL",
        ),
        (
            &[Variant::SecondQuestionMark],
            Cause::UsernameMalformed,
            "A second `?` in the MQTT username (SDK metrics appended with `?`) hides the custom-auth parameters",
            "join every parameter after the first `?` with `&`",
        ),
        (
            &[Variant::HostMissing, Variant::HostOther],
            Cause::HostHeaderWrong,
            "A WebSocket or HTTPS request without the endpoint as Host header is refused",
            "send Host: <endpoint>",
        ),
    ];
    let mut out = Vec::new();
    for (variants, cause, summary, fix) in rules {
        let mut ev = Vec::new();
        for a in cx.attempts.iter().filter(|a| variants.contains(&a.variant) && a.follow_up.is_none()) {
            let Some(base) = connected_baseline(cx, a.transport) else { continue };
            if !a.succeeded && facts::reached(a) && a.outcome.stage != Stage::Authorize {
                ev.extend([Evidence::attempt(base), Evidence::attempt(a)]);
            }
        }
        ev.dedup();
        if !ev.is_empty() {
            out.push(risk(cause, format!("{summary}."), fix.into(), ev));
        }
    }
    out
}

/// A post-connect check the policy refused: names the permission and the resource.
fn policy(cx: &Context<'_>) -> Option<Finding> {
    let (a, check) = cx.attempts.iter().find_map(|a| a.checks.iter().find(|c| !c.success).map(|c| (a, c)))?;
    let (action, resource) = match &check.detail {
        Detail::Ack { action, resource, .. } | Detail::Check { action, resource, .. } => {
            (action.clone(), resource.clone())
        }
        _ => return None,
    };
    let (cause, action) = match check.kind {
        Kind::MessageMissing => (Cause::PolicyReceiveDenied, "iot:Receive".to_owned()),
        Kind::SubscribeRefused | Kind::ClosedAfterSubscribe => (Cause::PolicySubscribeDenied, action),
        _ => (Cause::PolicyPublishDenied, action),
    };
    let (how, confidence) = match (&check.kind, &check.detail) {
        (Kind::PublishRefused | Kind::SubscribeRefused, Detail::Ack { code, reason, .. }) => {
            (format!("the server answered {reason} (0x{code:02x})"), Confidence::Confirmed)
        }
        (Kind::MessageMissing, _) => {
            ("the message did not come back on the subscription".to_owned(), Confidence::Likely)
        }
        _ => (
            "the server closed the connection after the request (MQTT 3.1.1 has no negative acknowledgement)"
                .to_owned(),
            Confidence::Likely,
        ),
    };
    let hedge = if confidence == Confidence::Likely { "Likely: " } else { "" };
    Some(
        Finding::new(
            cause,
            FindingKind::Cause,
            confidence,
            format!("{hedge}The connection is authorized, but the returned policy does not allow {action} on {resource}: {how}."),
            format!("return a policy with an Allow for {action} on {resource} (test it with `authprobe check-response`)"),
        )
        .with_evidence(vec![Evidence::Attempt { attempt: a.id.clone(), outcome: format!("{}/{}", check.stage.as_str(), check.kind.as_str()) }]),
    )
}

/// HTTPS publish refused while MQTT connects with the same credentials: the publish policy, not
/// authentication.
fn https_publish(cx: &Context<'_>) -> Option<Finding> {
    let https =
        facts::baselines(cx.attempts).find(|a| a.transport == Transport::Https && facts::seen(a) == Seen::Refused)?;
    let mqtt = [Transport::Mqtt, Transport::Wss].iter().find_map(|&t| connected_baseline(cx, t))?;
    let topic = &cx.plan.matrix.topic;
    let resource = cx.plan.target.arns.topic(topic);
    let mqtt_refused_same = cx.attempts.iter().flat_map(|a| &a.checks).any(|c| {
        c.kind == Kind::PublishRefused && matches!(&c.detail, Detail::Ack { resource: r, .. } if *r == resource)
    });
    // With refusals that come and go for identical credentials, the HTTPS refusal may be one more.
    let intermittent = super::differential::comes_and_goes(cx.attempts);
    let (confidence, hedge) = match (mqtt_refused_same, intermittent) {
        (true, _) => (Confidence::Confirmed, ""),
        (false, false) => (Confidence::Likely, "Likely: "),
        (false, true) => (Confidence::Possible, "Possibly: "),
    };
    Some(
        Finding::new(
            Cause::PolicyPublishDenied,
            FindingKind::Cause,
            confidence,
            format!("{hedge}The credentials are accepted ({} connects), but the HTTPS publish to `{topic}` is refused: the returned policy does not allow iot:Publish on {resource}.", mqtt.transport),
            format!("allow iot:Publish on {resource} in the returned policy, or publish over HTTPS to a topic it allows (--topic)"),
        )
        .with_evidence(vec![Evidence::attempt(mqtt), Evidence::attempt(https)]),
    )
}

/// A success, or a refusal that is not a timeout, 4 s or more after the request.
fn slow(cx: &Context<'_>) -> Option<Finding> {
    let slow: Vec<(&AttemptReport, u64)> = cx
        .attempts
        .iter()
        .filter(|a| facts::seen(a) != Seen::Other)
        .filter_map(|a| {
            facts::answer_ms(a)
                .filter(|ms| {
                    (cx.plan.slow_ms()..cx.plan.timeout_ms()).contains(ms)
                        || (facts::is_connected(a) && *ms >= cx.plan.slow_ms())
                })
                .map(|ms| (a, ms))
        })
        .collect();
    let worst = slow.iter().map(|(_, ms)| *ms).max()?;
    Some(risk(
        Cause::LambdaSlow,
        format!(
            "The authorizer answers close to IoT Core's {limit} limit (up to {worst} ms after the request); past {limit} the connection fails.",
            limit = cx.plan.limit_text()
        ),
        format!(
            "cut the Lambda's duration well below {}: more memory, provisioned concurrency, no slow calls on the auth path",
            cx.plan.limit_text()
        ),
        slow.iter().map(|(a, _)| Evidence::attempt(a)).collect(),
    ))
}

/// An IP endpoint that connects here (an emulator, a proxy) would send no SNI to IoT Core.
fn ip_endpoint(cx: &Context<'_>) -> Option<Finding> {
    let check = cx.local.iter().find(|c| !c.passed && c.implicates == Some(Cause::SniMissing))?;
    let base = facts::baselines(cx.attempts).find(|a| facts::is_connected(a))?;
    Some(risk(
        Cause::SniMissing,
        format!("No SNI was sent: {}.", check.detail),
        "connect by the endpoint's name, so that TLS sends it as SNI".into(),
        vec![Evidence::check(check), Evidence::attempt(base)],
    ))
}

/// A port other than 443 that connects here (an emulator, `--connect-to`, a forwarding proxy):
/// IoT Core itself runs custom authentication on 443 only, so the device would fail there.
fn other_port(cx: &Context<'_>) -> Option<Finding> {
    let check = cx.local.iter().find(|c| !c.passed && c.implicates == Some(Cause::WrongPort))?;
    let base = facts::baselines(cx.attempts).find(|a| facts::is_connected(a))?;
    Some(risk(
        Cause::WrongPort,
        format!(
            "Custom authentication on port {} worked here only because this path accepts it (--connect-to, an emulator, a forwarding proxy): IoT Core runs it on port 443 only, so the device would fail there.",
            cx.plan.target.port
        ),
        "connect on port 443 (MQTT over TLS with ALPN `mqtt`, WebSocket or HTTPS)".into(),
        vec![Evidence::check(check), Evidence::attempt(base)],
    ))
}
