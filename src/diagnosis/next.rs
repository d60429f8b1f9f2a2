//! The exact next commands for a finding: AWS CLI calls, authprobe's own checks, and a CloudWatch
//! Logs Insights query limited to this run's client IDs and time window. Placeholders, never secrets.

use super::cause::Cause;
use super::finding::{Context, Finding, FindingId, FindingKind};

/// The commands that test or fix what `f` names; for an unexplained finding, the ones that split its
/// candidates.
pub(crate) fn commands(f: &Finding, cx: &Context<'_>) -> Vec<String> {
    let causes: Vec<Cause> = if f.kind == FindingKind::Unexplained || !f.candidates.is_empty() {
        f.candidates.clone()
    } else {
        f.id.cause().into_iter().collect()
    };
    let mut out: Vec<String> = Vec::new();
    for c in causes {
        for cmd in for_cause(c, cx) {
            if !out.contains(&cmd) {
                out.push(cmd);
            }
        }
    }
    if f.id == FindingId::UnreachableUnexplained {
        out.extend(network(cx));
    }
    if f.kind != FindingKind::Risk && f.id != FindingId::UnreachableUnexplained && !is_network(f.id) {
        out.push(logs_insights(cx));
    }
    // Each command once.
    let mut seen = std::collections::HashSet::new();
    out.retain(|c| seen.insert(c.clone()));
    out
}

/// Where the attempts went: `--connect-to`, a `--resolve` entry for the endpoint, or the endpoint
/// itself; with the port dialled.
fn target(cx: &Context<'_>) -> (String, u16) {
    let (ep, port) = (&cx.plan.target.endpoint, cx.plan.target.port);
    if let Some((host, p)) = &cx.plan.target.connect_to {
        return (host.clone(), p.unwrap_or(port));
    }
    let resolved = cx.plan.network.resolve.iter().find(|r| r.host.eq_ignore_ascii_case(ep) && r.port == port);
    match resolved.and_then(|r| r.addrs.first()) {
        Some(addr) => (addr.to_string(), port),
        None => (ep.clone(), port),
    }
}

fn host_port(host: &str, port: u16) -> String {
    if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") }
}

/// `openssl s_client` along the probe's path: the address it dialled, the endpoint as SNI, through
/// its HTTP proxy (`-proxy`; a SOCKS proxy is named in a comment, as openssl has no SOCKS client).
fn s_client(cx: &Context<'_>, extra: &str) -> String {
    let (host, port) = target(cx);
    let ep = &cx.plan.target.endpoint;
    let (proxy, note) = match &cx.plan.network.proxy {
        Some(p) if p.scheme == crate::probe::proxy::Scheme::Http => {
            (format!(" -proxy {}", host_port(&p.host, p.port)), "")
        }
        Some(_) => (String::new(), " # from a host that reaches the endpoint without the SOCKS proxy"),
        None => (String::new(), ""),
    };
    format!("openssl s_client -connect {} -servername {ep}{proxy}{extra}{note}", host_port(&host, port))
}

/// `nc -vz` to the address the probe dialled, through its proxy when it used one.
fn nc(cx: &Context<'_>) -> String {
    let (host, port) = target(cx);
    let via = match &cx.plan.network.proxy {
        Some(p) => {
            let kind = if p.scheme == crate::probe::proxy::Scheme::Http { "connect" } else { "5" };
            format!("-X {kind} -x {} ", host_port(&p.host, p.port))
        }
        None => String::new(),
    };
    format!("nc -vz {via}{host} {port}")
}

fn is_network(id: FindingId) -> bool {
    id.cause().is_some_and(|c| !c.is_credential())
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
    let arn = cx.plan.target.arns.authorizer(&name(cx));
    format!(
        "aws lambda get-policy --function-name <AUTHORIZER_FUNCTION_ARN> > policy.json && authprobe check-permission policy.json --authorizer-arn {arn}"
    )
}

/// Save test-invoke's output as response.json; check-response says whether it is valid and what its
/// policy allows this client ID.
fn check_response(cx: &Context<'_>) -> String {
    let publish = cx.plan.matrix.checks.publish.as_deref().unwrap_or(&cx.plan.matrix.topic);
    format!("authprobe check-response response.json --client-id {} --publish {publish}", cx.plan.device.client_id)
}

fn for_cause(c: Cause, cx: &Context<'_>) -> Vec<String> {
    use Cause::*;
    let ep = &cx.plan.target.endpoint;
    match c {
        DnsFailed | DnsUnexpected => {
            vec![format!("getent hosts {ep}"), "aws iot describe-endpoint --endpoint-type iot:Data-ATS".into()]
        }
        PortBlocked | WrongPort => vec![nc(cx)],
        TlsIntercepted | SniNotEndpoint | SniMissing => vec![
            s_client(cx, " -alpn mqtt -showcerts </dev/null"),
            "aws iot describe-endpoint --endpoint-type iot:Data-ATS".into(),
        ],
        AlpnMissing | AlpnStripped => vec![s_client(cx, " -alpn mqtt </dev/null 2>/dev/null | grep ALPN")],
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
        // Settings of the device's MQTT client: the finding names them; nothing to run.
        ConnectPacketTooLarge | KeepAliveOutOfRange | ClientIdInvalid | EnhancedAuthUnsupported => Vec::new(),
        ConnectThrottled => vec![logs_insights(cx)],
        // What a page sends: the finding names the change; the browser's own console shows it.
        WsSubprotocolRefused | WsPathWrong | OriginRefused => Vec::new(),
        CorsRefused => vec![preflight(cx)],
    }
}

/// The page's CORS preflight with curl: the answer's `access-control-allow-*` headers decide.
fn preflight(cx: &Context<'_>) -> String {
    use crate::secret::shell_quote as q;
    let seen = cx.attempts.iter().find_map(|a| a.sent.cors.as_ref());
    let origin = seen.map_or("http://localhost", |c| c.origin.as_str());
    let requested = seen.map(|c| c.requested_headers.join(",")).unwrap_or_default();
    let topic = cx.plan.matrix.topic.split('/').map(crate::auth::credentials::encode).collect::<Vec<_>>().join("/");
    format!(
        "curl -si -X OPTIONS {} -H {} -H 'Access-Control-Request-Method: POST' -H {} | grep -i '^HTTP\\|^access-control'",
        q(&format!("https://{}/topics/{topic}", cx.plan.target.endpoint)),
        q(&format!("Origin: {origin}")),
        q(&format!("Access-Control-Request-Headers: {requested}")),
    )
}

fn network(cx: &Context<'_>) -> Vec<String> {
    vec![nc(cx), s_client(cx, " -alpn mqtt -showcerts </dev/null")]
}

/// A Logs Insights query on AWSIotLogsV2 for the client IDs this run used, in its time window.
pub(crate) fn logs_insights(cx: &Context<'_>) -> String {
    let mut ids: Vec<&str> = cx.attempts.iter().filter_map(|a| a.sent.client_id.as_deref()).collect();
    if ids.is_empty() {
        ids.push(&cx.plan.device.client_id);
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

    use crate::diagnosis::{Confidence, Finding};
    use crate::probe::plan::NetPath;
    use crate::probe::{Credentials, ProbePlan};

    fn next_for(cause: Cause, plan: &ProbePlan) -> Vec<String> {
        let cx = Context { attempts: &[], plan, local: &[], window: (0, 0) };
        let f = Finding::new(cause, FindingKind::Cause, Confidence::Likely, String::new(), String::new());
        commands(&f, &cx)
    }

    const EP: &str = "abc123-ats.iot.us-east-1.amazonaws.com";

    #[test]
    fn commands_take_the_path_the_probe_took() {
        let mut b = ProbePlan::builder(EP, Credentials::default());
        let plan = b.build().unwrap();
        let direct = next_for(Cause::TlsIntercepted, &plan);
        assert!(direct[0].starts_with(&format!("openssl s_client -connect {EP}:443 -servername {EP} ")), "{direct:?}");
        let plan = b.clone().connect_to("192.0.2.7", Some(8443)).build().unwrap();
        let to = next_for(Cause::TlsIntercepted, &plan);
        assert!(to[0].starts_with(&format!("openssl s_client -connect 192.0.2.7:8443 -servername {EP} ")), "{to:?}");
        assert_eq!(next_for(Cause::PortBlocked, &plan), ["nc -vz 192.0.2.7 8443"]);
        let resolve = vec![crate::probe::plan::ResolveOverride::parse(&format!("{EP}:443:2001:db8::1")).unwrap()];
        let plan = b.network(NetPath { resolve, ..NetPath::default() }).build().unwrap();
        let resolved = next_for(Cause::AlpnStripped, &plan);
        assert!(resolved[0].starts_with("openssl s_client -connect [2001:db8::1]:443 "), "{resolved:?}");
        let proxy =
            crate::probe::proxy::Proxy::parse("http://proxy.example:3128", crate::probe::proxy::ProxySource::Flag);
        let plan = b.network(NetPath { proxy: Some(proxy.unwrap()), ..NetPath::default() }).build().unwrap();
        let proxied = next_for(Cause::TlsIntercepted, &plan);
        assert!(proxied[0].contains(" -proxy proxy.example:3128"), "{proxied:?}");
        assert_eq!(next_for(Cause::PortBlocked, &plan), [format!("nc -vz -X connect -x proxy.example:3128 {EP} 443")]);
    }

    #[test]
    fn each_command_once() {
        let plan = ProbePlan::builder(EP, Credentials::default()).build().unwrap();
        let cx = Context { attempts: &[], plan: &plan, local: &[], window: (0, 0) };
        let mut f = Finding::new(
            Cause::TlsIntercepted,
            FindingKind::Unexplained,
            Confidence::Possible,
            String::new(),
            String::new(),
        );
        f.id = FindingId::UnreachableUnexplained;
        f.candidates = vec![Cause::TlsIntercepted, Cause::SniNotEndpoint, Cause::ProxyFailed];
        let cmds = commands(&f, &cx);
        let mut unique = cmds.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), cmds.len(), "{cmds:?}");
    }

    #[test]
    fn iso8601_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_795_737_599), "2026-11-26T23:59:59Z");
    }
}
