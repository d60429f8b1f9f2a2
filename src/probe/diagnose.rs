//! Diagnosis: rules that read every outcome together and name the cause. A rule fires only on the
//! evidence that separates its cause from the others; where two causes look the same from the client
//! (an unknown authorizer without a default, an authorizer that denies), the finding says so.

use super::attempt::AttemptReport;
use super::outcome::{Detail, Kind, Stage};
use super::plan::ProbePlan;
use crate::auth::event::Transport;
use serde::Serialize;

/// A close or refusal this long after the request points at the authorizer's 5 s limit.
pub const SLOW_MS: u64 = 4_000;

/// One attempt cited as evidence.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Evidence {
    pub attempt: String,
    pub outcome: String,
}

/// A diagnosis.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct Finding {
    /// Stable identifier, e.g. `sni_required`.
    pub id: &'static str,
    pub title: String,
    pub evidence: Vec<Evidence>,
    pub likely_cause: String,
    pub fix: String,
    /// The troubleshooting step (spec §7) it maps to.
    pub see: &'static str,
}

struct View<'a> {
    attempts: &'a [AttemptReport],
}

impl<'a> View<'a> {
    fn get(&self, t: Transport, variant: &str) -> Option<&'a AttemptReport> {
        self.attempts.iter().find(|a| a.transport == t && a.variant == variant)
    }
    fn baseline(&self, t: Transport) -> Option<&'a AttemptReport> {
        self.get(t, "baseline")
    }
    fn baselines(&self) -> impl Iterator<Item = &'a AttemptReport> + '_ {
        self.attempts.iter().filter(|a| a.variant == "baseline")
    }
}

fn ev(a: &AttemptReport) -> Evidence {
    Evidence { attempt: a.id.clone(), outcome: format!("{}/{}", a.outcome.stage.as_str(), a.outcome.kind.as_str()) }
}

/// The server got the credentials and said no: CONNACK refusal, close after CONNECT, or HTTP 401/403.
pub fn is_auth_refusal(a: &AttemptReport) -> bool {
    match (&a.outcome.kind, &a.outcome.detail) {
        (Kind::ConnackRefused | Kind::ClosedBeforeConnack, _) => true,
        (Kind::HttpRejected | Kind::UpgradeRejected, Detail::Http { status, .. }) => matches!(status, 401 | 403),
        _ => false,
    }
}

/// Milliseconds from request to refusal, where the outcome carries it.
fn refusal_ms(a: &AttemptReport) -> Option<u64> {
    match &a.outcome.detail {
        Detail::ClosedAfter { after_ms, .. } => Some(*after_ms),
        _ if is_auth_refusal(a) || a.succeeded => {
            a.stages.iter().find(|s| matches!(s.stage, Stage::Mqtt | Stage::Http | Stage::Upgrade)).map(|s| s.ms)
        }
        _ => None,
    }
}

/// Runs every rule.
pub fn diagnose(attempts: &[AttemptReport], plan: &ProbePlan) -> Vec<Finding> {
    let v = View { attempts };
    let rules: [fn(&View<'_>, &ProbePlan) -> Option<Finding>; 11] = [
        action_not_allowed,
        port_blocked,
        tls_intercepted,
        sni_required,
        alpn_stripped,
        wrong_token_key_name,
        signature_not_encoded,
        authorizer_name,
        connect_not_allowed,
        refused_everywhere,
        authorizer_slow,
    ];
    rules.iter().filter_map(|rule| rule(&v, plan)).collect()
}

/// A post-connect check the policy refused: names the permission and the resource.
fn action_not_allowed(v: &View<'_>, _plan: &ProbePlan) -> Option<Finding> {
    let (a, check) = v.attempts.iter().find_map(|a| {
        a.checks
            .iter()
            .find(|c| {
                matches!(
                    c.kind,
                    Kind::PublishRefused
                        | Kind::SubscribeRefused
                        | Kind::ClosedAfterPublish
                        | Kind::ClosedAfterSubscribe
                        | Kind::MessageMissing
                )
            })
            .map(|c| (a, c))
    })?;
    let (action, resource) = match &check.detail {
        Detail::Ack { action, resource, .. } | Detail::Check { action, resource, .. } => {
            (action.clone(), resource.clone())
        }
        _ => return None,
    };
    let (id, action) = match check.kind {
        Kind::MessageMissing => ("receive_not_allowed", "iot:Receive".to_owned()),
        Kind::SubscribeRefused | Kind::ClosedAfterSubscribe => ("subscribe_not_allowed", action),
        _ => ("publish_not_allowed", action),
    };
    let how = match check.kind {
        Kind::ClosedAfterPublish | Kind::ClosedAfterSubscribe => {
            "the server closed the connection after the request (MQTT 3.1.1 has no negative acknowledgement)".to_owned()
        }
        Kind::MessageMissing => "the message did not come back on the subscription".to_owned(),
        _ => match &check.detail {
            Detail::Ack { code, reason, .. } => format!("the server answered {reason} (0x{code:02x})"),
            _ => String::new(),
        },
    };
    Some(Finding {
        id,
        title: format!("The returned policy does not allow {action} on {resource}"),
        evidence: vec![Evidence {
            attempt: a.id.clone(),
            outcome: format!("{}/{}", check.stage.as_str(), check.kind.as_str()),
        }],
        likely_cause: format!("the connection is authorized, but {how}: the policy lacks {action} on {resource}"),
        fix: format!(
            "return a policy with an Allow for {action} on {resource} (test it with `authprobe check-response`)"
        ),
        see: "§7 publish/subscribe not allowed",
    })
}

fn port_blocked(v: &View<'_>, plan: &ProbePlan) -> Option<Finding> {
    let all_tcp = !v.attempts.is_empty() && v.attempts.iter().all(|a| a.outcome.stage == Stage::Tcp);
    all_tcp.then(|| Finding {
        id: "port_blocked",
        title: format!("No TCP connection to {} on port {} from this network", plan.endpoint, plan.port),
        evidence: v.baselines().map(ev).collect(),
        likely_cause: "a firewall blocks outbound port 443 (or the route/proxy requirement is missing)".into(),
        fix: "allow outbound TCP 443 to the IoT data endpoint; custom authentication works on 443 only".into(),
        see: "§1 ports (443 only)",
    })
}

fn tls_intercepted(v: &View<'_>, _plan: &ProbePlan) -> Option<Finding> {
    let hits: Vec<&AttemptReport> = v
        .attempts
        .iter()
        .filter(|a| match &a.outcome.detail {
            Detail::Cert { chain, .. } if a.outcome.kind == Kind::TlsCertUntrusted => {
                !chain.iter().any(|c| c.issuer.contains("Amazon") || c.issuer.contains("Starfield"))
            }
            _ => false,
        })
        .collect();
    let issuer = hits.first().and_then(|a| match &a.outcome.detail {
        Detail::Cert { chain, .. } => chain.last().map(|c| c.issuer.clone()),
        _ => None,
    })?;
    Some(Finding {
        id: "tls_intercepted",
        title: format!("TLS is intercepted on this network: the certificate is issued by {issuer}, not Amazon"),
        evidence: hits.iter().map(|a| ev(a)).collect(),
        likely_cause:
            "a proxy or firewall inspects TLS and presents its own certificate; devices that pin Amazon's roots fail"
                .into(),
        fix: "exempt the IoT endpoint from TLS inspection (devices cannot complete custom auth through it)".into(),
        see: "§1 endpoints (ATS: Amazon Root CA)",
    })
}

fn sni_required(v: &View<'_>, _plan: &ProbePlan) -> Option<Finding> {
    let mut evidence = Vec::new();
    for t in Transport::ALL {
        let Some(base) = v.baseline(t).filter(|b| b.succeeded) else { continue };
        for variant in ["sni-none", "sni-ip"] {
            if let Some(a) = v.get(t, variant).filter(|a| !a.succeeded && a.outcome.stage == Stage::Tls) {
                evidence.extend([ev(base), ev(a)]);
            }
        }
    }
    (!evidence.is_empty()).then(|| Finding {
        id: "sni_required",
        title: "Connections without SNI are refused".into(),
        evidence,
        likely_cause:
            "the device's TLS stack sends no SNI (common when connecting by IP address, or with old TLS libraries)"
                .into(),
        fix: "make the device send SNI = the endpoint name (and connect by name, not by IP)".into(),
        see: "§7 no SNI / SNI not an endpoint",
    })
}

fn alpn_stripped(v: &View<'_>, _plan: &ProbePlan) -> Option<Finding> {
    let mqtt = v.baseline(Transport::Mqtt)?;
    let others_pass = [Transport::Wss, Transport::Https].iter().filter_map(|&t| v.baseline(t)).all(|a| a.succeeded)
        && v.baselines().count() > 1;
    let negotiated = mqtt.sent.tls.as_ref().and_then(|t| t.alpn.clone());
    let mqtt_failed_unauthenticated = !mqtt.succeeded && !is_auth_refusal(mqtt) && mqtt.outcome.stage >= Stage::Mqtt;
    (others_pass && mqtt_failed_unauthenticated && negotiated.as_deref() != Some("mqtt")).then(|| {
        let mut evidence = vec![ev(mqtt)];
        evidence.extend(v.attempts.iter().filter(|a| a.transport == Transport::Mqtt && a.variant.starts_with("alpn")).map(ev));
        evidence.extend([Transport::Wss, Transport::Https].iter().filter_map(|&t| v.baseline(t)).map(ev));
        Finding {
            id: "alpn_stripped",
            title: "ALPN `mqtt` does not reach IoT Core from this network: MQTT over TLS fails while WebSocket and HTTPS work".into(),
            evidence,
            likely_cause: format!(
                "ALPN `mqtt` was offered but {}; without it IoT Core treats port 443 as HTTPS, so a middlebox on the path strips or blocks ALPN",
                negotiated.map_or("none was negotiated".into(), |n| format!("`{n}` was negotiated"))
            ),
            fix: "use MQTT over WebSockets from this network, or have the middlebox pass ALPN through".into(),
            see: "§7 443 without ALPN, raw MQTT bytes",
        }
    })
}

fn wrong_token_key_name(v: &View<'_>, plan: &ProbePlan) -> Option<Finding> {
    let (base, winner) = Transport::ALL.iter().find_map(|&t| {
        let base = v.baseline(t).filter(|b| !b.succeeded && is_auth_refusal(b))?;
        let win = ["token-key-token", "token-key-case"].iter().find_map(|n| v.get(t, n).filter(|a| a.succeeded))?;
        Some((base, win))
    })?;
    let used = match winner.variant.as_str() {
        "token-key-token" => "token".to_owned(),
        _ => {
            let k = &plan.credentials.token_key_name;
            if k.to_ascii_uppercase() == *k { k.to_ascii_lowercase() } else { k.to_ascii_uppercase() }
        }
    };
    Some(Finding {
        id: "wrong_token_key_name",
        title: format!(
            "Wrong token key name: the authorizer reads the token under `{used}`, not `{}`",
            plan.credentials.token_key_name
        ),
        evidence: vec![ev(base), ev(winner)],
        likely_cause: "the device sends the token under a name other than the authorizer's tokenKeyName".into(),
        fix: format!("send the token as `{used}=<token>` (check `tokenKeyName` in `aws iot describe-authorizer`)"),
        see: "§7 unknown authorizer / signature / Lambda rows (token key name)",
    })
}

fn signature_not_encoded(v: &View<'_>, _plan: &ProbePlan) -> Option<Finding> {
    let (base, raw) = Transport::ALL.iter().find_map(|&t| {
        let base = v.baseline(t).filter(|b| b.succeeded)?;
        let raw = v.get(t, "signature-raw").filter(|a| !a.succeeded)?;
        Some((base, raw))
    })?;
    Some(Finding {
        id: "signature_not_url_encoded",
        title: "The signature must be percent-encoded: the raw base64 form is refused".into(),
        evidence: vec![ev(base), ev(raw)],
        likely_cause: "in a username or query string a raw `+` reads as a space (and `/`, `=` are reserved), so an unencoded signature no longer verifies".into(),
        fix: "percent-encode the signature (`+` → %2B, `/` → %2F, `=` → %3D) before putting it in the MQTT username or URL".into(),
        see: "§7 signature missing/invalid with signing on",
    })
}

fn authorizer_name(v: &View<'_>, plan: &ProbePlan) -> Option<Finding> {
    let name = plan.credentials.authorizer.as_deref()?;
    let (base, winner) = Transport::ALL.iter().find_map(|&t| {
        let base = v.baseline(t).filter(|b| !b.succeeded && is_auth_refusal(b))?;
        let win = ["authorizer-case", "authorizer-omitted"].iter().find_map(|n| v.get(t, n).filter(|a| a.succeeded))?;
        Some((base, win))
    })?;
    let (title, fix) = if winner.variant == "authorizer-case" {
        (
            format!("Authorizer `{name}` is unknown: names are case-sensitive, and the name in another case works"),
            "send the authorizer name exactly as `aws iot list-authorizers` prints it".to_owned(),
        )
    } else {
        (
            format!(
                "Authorizer `{name}` is unknown to this endpoint; without a name, the default authorizer accepts these credentials"
            ),
            format!(
                "fix the name (`aws iot describe-authorizer --authorizer-name {name}`), or send none and rely on the default"
            ),
        )
    };
    Some(Finding {
        id: "authorizer_unknown",
        title,
        evidence: vec![ev(base), ev(winner)],
        likely_cause: "the x-amz-customauthorizer-name the device sends names no authorizer of this account".into(),
        fix,
        see: "§7 unknown authorizer and no default",
    })
}

fn connect_not_allowed(v: &View<'_>, plan: &ProbePlan) -> Option<Finding> {
    let https = v.baseline(Transport::Https).filter(|a| a.succeeded)?;
    let refused: Vec<&AttemptReport> = [Transport::Mqtt, Transport::Wss]
        .iter()
        .filter_map(|&t| v.baseline(t))
        .filter(|a| is_auth_refusal(a))
        .collect();
    if refused.is_empty() {
        return None;
    }
    let mut evidence: Vec<Evidence> = refused.iter().map(|a| ev(a)).collect();
    evidence.push(ev(https));
    Some(Finding {
        id: "connect_not_allowed",
        title: format!("The authorizer accepts these credentials, but MQTT connections with client ID `{}` are refused", plan.client_id),
        evidence,
        likely_cause: format!(
            "the returned policy does not allow iot:Connect on client/{} (HTTPS publish needs no iot:Connect, and it worked)",
            plan.client_id
        ),
        fix: "allow iot:Connect on arn:aws:iot:<region>:<account>:client/${iot:ClientId} (or this client ID) in the policy the authorizer returns".into(),
        see: "§7 isAuthenticated false / no iot:Connect",
    })
}

fn refused_everywhere(v: &View<'_>, plan: &ProbePlan) -> Option<Finding> {
    let baselines: Vec<&AttemptReport> = v.baselines().collect();
    let all_refused = !baselines.is_empty() && baselines.iter().all(|a| is_auth_refusal(a));
    let any_success = v.attempts.iter().any(|a| a.succeeded);
    let name = plan.credentials.authorizer.as_deref().unwrap_or("<no name>");
    // Only describe-authorizer output rules out "unknown authorizer": from a device both look the same.
    let likely_cause = if plan.authorizer_confirmed {
        format!(
            "authorizer `{name}` exists (per --authorizer-json) and refuses: it denies this token (isAuthenticated false), fails, times out, or IoT Core may not invoke its Lambda"
        )
    } else {
        format!(
            "the authorizer denies this token (isAuthenticated false, or a Lambda error or missing invoke permission), or `{name}` is not an authorizer of this account and the endpoint has no default — the two look the same from a device"
        )
    };
    (all_refused && !any_success).then(|| Finding {
        id: "refused_everywhere",
        title: "The credentials reach IoT Core and are refused on every transport".into(),
        evidence: baselines.iter().map(|a| ev(a)).collect(),
        likely_cause,
        fix: "run `aws iot test-invoke-authorizer` with this token; `aws iot describe-authorizer` confirms the name; the Lambda's CloudWatch logs show whether it ran; `authprobe check-permission` checks its invoke permission".into(),
        see: "§7 unknown authorizer / Lambda / isAuthenticated false rows",
    })
}

fn authorizer_slow(v: &View<'_>, _plan: &ProbePlan) -> Option<Finding> {
    let slow: Vec<(&AttemptReport, u64)> = v
        .attempts
        .iter()
        .filter(|a| a.outcome.stage >= Stage::Mqtt && (is_auth_refusal(a) || a.succeeded))
        .filter_map(|a| refusal_ms(a).filter(|ms| *ms >= SLOW_MS).map(|ms| (a, ms)))
        .collect();
    let worst = slow.iter().map(|(_, ms)| *ms).max()?;
    Some(Finding {
        id: "authorizer_slow",
        title: format!("The authorizer answers close to IoT Core's 5 s limit (up to {worst} ms)"),
        evidence: slow.iter().map(|(a, _)| ev(a)).collect(),
        likely_cause: "the authorizer Lambda is slow (cold starts, network calls); past 5 s IoT Core fails the connection".into(),
        fix: "cut the Lambda's duration well below 5 s: more memory, provisioned concurrency, no slow calls on the auth path".into(),
        see: "§7 Lambda over 5 s",
    })
}
