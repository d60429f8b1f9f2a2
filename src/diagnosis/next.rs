//! The exact next commands for a finding: AWS CLI calls, authprobe's own checks, and a CloudWatch
//! Logs Insights query limited to this run's client IDs and time window. Placeholders, never secrets.

use super::cause::Cause;
use super::{Context, Finding, FindingKind};

/// The commands that test or fix what `f` names; for an unexplained finding, the ones that split its
/// candidates.
pub(crate) fn commands(f: &Finding, cx: &Context<'_>) -> Vec<String> {
    let causes: Vec<Cause> = if f.kind == FindingKind::Unexplained || !f.candidates.is_empty() {
        f.candidates.iter().filter_map(|id| Cause::from_id(id)).collect()
    } else {
        Cause::from_id(f.id).into_iter().collect()
    };
    let mut out: Vec<String> = Vec::new();
    for c in causes {
        for cmd in for_cause(c, cx) {
            if !out.contains(&cmd) {
                out.push(cmd);
            }
        }
    }
    if f.id == "unreachable_unexplained" {
        out.extend(network(cx));
    }
    if f.kind != FindingKind::Risk && f.id != "unreachable_unexplained" && !is_network(f.id) {
        out.push(logs_insights(cx));
    }
    out
}

fn is_network(id: &str) -> bool {
    Cause::from_id(id).is_some_and(|c| !c.is_credential())
}

fn name(cx: &Context<'_>) -> String {
    cx.plan.credentials.authorizer.clone().unwrap_or_else(|| "<AUTHORIZER_NAME>".into())
}

fn test_invoke(cx: &Context<'_>) -> String {
    let sig = if cx.plan.credentials.signature.is_some() { " --token-signature \"$SIGNATURE\"" } else { "" };
    format!("aws iot test-invoke-authorizer --authorizer-name {} --token \"$TOKEN\"{sig}", name(cx))
}

fn describe(cx: &Context<'_>) -> String {
    format!("aws iot describe-authorizer --authorizer-name {}", name(cx))
}

fn permission(cx: &Context<'_>) -> String {
    let arn = cx.plan.arns.authorizer(&name(cx));
    format!(
        "aws lambda get-policy --function-name <AUTHORIZER_FUNCTION_ARN> > policy.json && authprobe check-permission policy.json --authorizer-arn {arn}"
    )
}

/// Save test-invoke's output as response.json; check-response says whether it is valid and what its
/// policy allows this client ID.
fn check_response(cx: &Context<'_>) -> String {
    let publish = cx.plan.checks.publish.as_deref().unwrap_or(&cx.plan.topic);
    format!("authprobe check-response response.json --client-id {} --publish {publish}", cx.plan.client_id)
}

fn for_cause(c: Cause, cx: &Context<'_>) -> Vec<String> {
    use Cause::*;
    let ep = &cx.plan.endpoint;
    match c {
        DnsFailed | DnsUnexpected => {
            vec![format!("getent hosts {ep}"), "aws iot describe-endpoint --endpoint-type iot:Data-ATS".into()]
        }
        PortBlocked | WrongPort => vec![format!("nc -vz {ep} 443")],
        TlsIntercepted | SniNotEndpoint | SniMissing => vec![
            format!("openssl s_client -connect {ep}:443 -servername {ep} -alpn mqtt -showcerts </dev/null"),
            "aws iot describe-endpoint --endpoint-type iot:Data-ATS".into(),
        ],
        AlpnMissing | AlpnStripped => vec![format!(
            "openssl s_client -connect {ep}:443 -servername {ep} -alpn mqtt </dev/null 2>/dev/null | grep ALPN"
        )],
        AuthorizerUnknown | AuthorizerMissingNoDefault | AuthorizerInactive => {
            vec!["aws iot list-authorizers".into(), describe(cx), "aws iot describe-default-authorizer".into()]
        }
        TokenMissing | TokenKeyNameWrong | SignatureMissing => vec![describe(cx)],
        SignatureInvalid | SignatureWrongValue | SignatureNotEncoded => vec![
            format!("{} --query authorizerDescription > authorizer.json", describe(cx)),
            "authprobe sign --verify --token \"$TOKEN\" --signature \"$SIGNATURE\" --authorizer-json authorizer.json"
                .into(),
        ],
        LambdaNotInvocable => vec![permission(cx)],
        LambdaError | AuthorizerDenied => vec![test_invoke(cx), check_response(cx)],
        LambdaTimeout | LambdaSlow => vec![
            test_invoke(cx),
            "aws logs tail /aws/lambda/<AUTHORIZER_FUNCTION> --since 15m (look at Duration)".into(),
        ],
        PolicyConnectDenied | PolicyPublishDenied | PolicySubscribeDenied | PolicyReceiveDenied => {
            vec![test_invoke(cx), check_response(cx)]
        }
        UsernameMalformed | HostHeaderWrong | ProxyFailed => Vec::new(),
    }
}

fn network(cx: &Context<'_>) -> Vec<String> {
    let ep = &cx.plan.endpoint;
    vec![
        format!("nc -vz {ep} 443"),
        format!("openssl s_client -connect {ep}:443 -servername {ep} -alpn mqtt -showcerts </dev/null"),
    ]
}

/// A Logs Insights query on AWSIotLogsV2 for the client IDs this run used, in its time window.
pub(crate) fn logs_insights(cx: &Context<'_>) -> String {
    let mut ids: Vec<&str> = cx.attempts.iter().filter_map(|a| a.sent.client_id.as_deref()).collect();
    if ids.is_empty() {
        ids.push(&cx.plan.client_id);
    }
    ids.sort_unstable();
    ids.dedup();
    let list = ids.iter().map(|i| format!("\"{i}\"")).collect::<Vec<_>>().join(", ");
    let (from, to) = (cx.window.0.saturating_sub(60), cx.window.1 + 60);
    format!(
        "CloudWatch Logs Insights, log group AWSIotLogsV2, {} to {}: fields @timestamp, clientId, eventType, status, reason, details | filter clientId in [{list}] | filter status = \"Failure\" | sort @timestamp desc",
        iso8601(from),
        iso8601(to)
    )
}

/// Unix seconds as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, proleptic Gregorian).
pub(crate) fn iso8601(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_795_737_599), "2026-11-26T23:59:59Z");
    }
}
