//! Each cause in one sentence a field engineer can read out on a call, and its fix, in the words of
//! this device's settings (names, client ID, endpoint; never secrets).

use super::cause::Cause;
use super::finding::{Confidence, Context, Finding, FindingId, FindingKind};
use crate::probe::AttemptReport;

/// A finding for `cause`; `detail` (a local check's words) replaces the generic summary's tail.
pub(crate) fn finding(
    cause: Cause,
    kind: FindingKind,
    confidence: Confidence,
    detail: String,
    cx: &Context<'_>,
) -> Finding {
    let (summary, fix) = words(cause, cx);
    // A local check's words say it for this device; the generic sentence otherwise.
    let summary = if detail.is_empty() { summary } else { capitalised(&detail) };
    let hedge = match confidence {
        Confidence::Confirmed => "",
        Confidence::Likely => "Likely: ",
        Confidence::Possible => "Possibly: ",
    };
    Finding::new(cause, kind, confidence, format!("{hedge}{summary}."), fix)
}

/// Where an unexplained finding's summary starts listing its candidates in words (the text report
/// shows their ids instead, unless `--details`).
pub(crate) const ONE_OF: &str = "; from this device the cause is one of: ";

/// The refusal the evidence leaves more than one cause for.
pub(crate) fn unexplained(left: &[Cause], refused: &[&AttemptReport], cx: &Context<'_>) -> Finding {
    let transports: Vec<String> = refused.iter().map(|a| a.transport.to_string()).collect();
    if left.is_empty()
        && let Some(f) = client_id_in_use(refused, cx)
    {
        return f;
    }
    let summary = if left.is_empty() {
        format!(
            "IoT Core refuses these credentials over {}, and the attempts contradict every single cause: more than one thing is wrong, or the fault is intermittent",
            transports.join(", ")
        )
    } else {
        format!(
            "IoT Core reads these credentials and refuses them over {}{ONE_OF}{}",
            transports.join(", "),
            left.iter().map(|c| c.what()).collect::<Vec<_>>().join("; ")
        )
    };
    let _ = cx;
    Finding {
        id: FindingId::RefusedUnexplained,
        kind: FindingKind::Unexplained,
        confidence: Confidence::Possible,
        summary: format!("{summary}."),
        candidates: left.to_vec(),
        evidence: Vec::new(),
        fix: "run the next commands: each one rules candidates out; fix the one they leave".into(),
        next: Vec::new(),
        see: super::finding::See {
            step: crate::auth::troubleshooting::Step::LambdaAndApplication,
            url: super::cause::TROUBLESHOOTING_URL,
        },
    }
}

/// The same credentials under the same client ID refused on one MQTT transport and accepted on
/// another: the refusal is not about the credentials. IoT Core takes one connect a second per client
/// ID and drops the older connection of a client ID, so another client using it (the device itself,
/// still retrying; another run) explains it.
pub(crate) fn client_id_in_use(refused: &[&AttemptReport], cx: &Context<'_>) -> Option<Finding> {
    use crate::auth::event::Transport;
    let mqtt = |a: &AttemptReport| a.transport != Transport::Https && a.exact_client_id;
    let r = refused.iter().find(|a| mqtt(a))?;
    let ok = super::facts::baselines(cx.attempts).find(|a| mqtt(a) && super::facts::is_connected(a))?;
    let id = &cx.plan.device.client_id;
    Some(Finding {
        id: FindingId::RefusedUnexplained,
        kind: FindingKind::Unexplained,
        confidence: Confidence::Possible,
        summary: format!(
            "The same credentials and client ID `{id}` were refused over {} and accepted over {}: the refusal is not about the credentials. IoT Core takes one connect a second per client ID and closes the older connection of a client ID, so another client using `{id}` at the same time (the device itself, still retrying, or another run) explains it.",
            r.transport, ok.transport
        ),
        candidates: Vec::new(),
        evidence: vec![super::finding::Evidence::attempt(r), super::finding::Evidence::attempt(ok)],
        fix: format!("run again with the device switched off, or with another --client-id than `{id}`"),
        next: Vec::new(),
        see: super::finding::See {
            step: crate::auth::troubleshooting::Step::LambdaAndApplication,
            url: super::cause::TROUBLESHOOTING_URL,
        },
    })
}

/// The cause in one sentence, and its fix.
fn words(cause: Cause, cx: &Context<'_>) -> (String, String) {
    sent_words(cause, cx).unwrap_or_else(|| function_words(cause, cx))
}

/// Causes in what the device sends: names, token, signature, username.
fn sent_words(cause: Cause, cx: &Context<'_>) -> Option<(String, String)> {
    let plan = cx.plan;
    let c = &plan.credentials;
    let name = c.authorizer.as_deref().unwrap_or("(none sent)");
    let key = &c.token_key_name;
    let described_key = plan.documents.authorizer.as_ref().map(|a| a.token_key_name.as_str());
    use Cause::*;
    Some(match cause {
        TokenKeyNameWrong => (
            format!("The token is sent under the wrong key name (`{key}`)"),
            match described_key.filter(|k| *k != key) {
                Some(k) => format!("send the token as `{k}=<token>`, the authorizer's tokenKeyName"),
                None => "send the token under the authorizer's tokenKeyName (`aws iot describe-authorizer` prints it)".into(),
            },
        ),
        AuthorizerUnknown => (
            format!("The authorizer name `{name}` is not an authorizer of this account (names are case-sensitive)"),
            "send the name exactly as `aws iot list-authorizers` prints it, or send none and rely on the default authorizer".into(),
        ),
        AuthorizerMissingNoDefault => (
            "No authorizer name is sent and the endpoint has no default authorizer, so none runs".into(),
            "send x-amz-customauthorizer-name, or set a default authorizer on the domain configuration".into(),
        ),
        AuthorizerInactive => (
            format!("The authorizer `{name}` is INACTIVE, so IoT Core does not run it"),
            format!("aws iot update-authorizer --authorizer-name {name} --status ACTIVE"),
        ),
        TokenMissing => ("No token is sent".into(), "send the token under the authorizer's tokenKeyName".into()),
        SignatureMissing => (
            "The authorizer has signing enabled and the device sends no signature, so IoT Core refuses before the Lambda runs".into(),
            "send x-amz-customauthorizer-signature (base64 RSA-SHA256 of the token, percent-encoded in a username or query), or use an authorizer with signing disabled".into(),
        ),
        SignatureInvalid => (
            "The token signature does not verify with the authorizer's public keys, so IoT Core refuses before the Lambda runs".into(),
            "sign the token with the private key whose public key is in tokenSigningPublicKeys (`authprobe sign --verify` checks it)".into(),
        ),
        SignatureWrongValue => (
            "The signature is made over something other than the token".into(),
            "sign exactly the token bytes with RSA PKCS#1 v1.5 and SHA-256: `printf %s \"$TOKEN\" | openssl dgst -sha256 -sign key.pem | openssl base64 -A`".into(),
        ),
        SignatureNotEncoded => (
            "The signature must be percent-encoded in a username or query: sent raw, its `+` reads as a space".into(),
            "percent-encode the signature (`+` → %2B, `/` → %2F, `=` → %3D) in the MQTT username or URL".into(),
        ),
        UsernameMalformed => (
            "The MQTT username does not parse as IoT Core reads it (a second `?`: only what follows the last `?` is read)".into(),
            "join every parameter after the first `?` with `&` (SDK metrics included)".into(),
        ),
        _ => return None,
    })
}

/// Causes behind the credentials: the function, its answer, its policy.
fn function_words(cause: Cause, cx: &Context<'_>) -> (String, String) {
    let plan = cx.plan;
    let id = &plan.device.client_id;
    let limit = plan.limit_text();
    use Cause::*;
    match cause {
        LambdaNotInvocable => (
            "IoT Core may not be allowed to invoke the authorizer's Lambda function".into(),
            "add a resource policy: `aws lambda add-permission --function-name <FUNCTION> --principal iot.amazonaws.com --action lambda:InvokeFunction --statement-id iot-authorizer --source-arn <AUTHORIZER_ARN>`".into(),
        ),
        LambdaError => (
            "The authorizer's Lambda function may fail or return an invalid response".into(),
            "read the function's CloudWatch logs; check its output with `authprobe check-response`".into(),
        ),
        LambdaTimeout => (
            format!("The authorizer's Lambda function does not answer within IoT Core's {limit} limit: the refusal comes about {limit} after the request on every transport"),
            format!("make the function answer well under {limit}: more memory, provisioned concurrency, no slow calls on the auth path"),
        ),
        LambdaSlow => (
            format!("The authorizer answers close to IoT Core's {limit} limit; past it the connection fails"),
            format!("cut the function's duration well below {limit} (cold starts, network calls)"),
        ),
        AuthorizerDenied => (
            "The authorizer's function answers isAuthenticated false for this token".into(),
            "fix the token, or the function's rule that rejects it".into(),
        ),
        PolicyConnectDenied => (
            format!("The authorizer accepts the credentials, but the policy it returns does not allow iot:Connect for client ID `{id}`"),
            "allow iot:Connect on arn:aws:iot:<region>:<account>:client/${iot:ClientId} (or this client ID) in the returned policy".into(),
        ),
        PolicyPublishDenied => (
            format!("The returned policy may not allow iot:Publish on the HTTPS topic `{}`", plan.matrix.topic),
            format!("allow iot:Publish on {} in the returned policy", plan.target.arns.topic(&plan.matrix.topic)),
        ),
        other => (capitalised(other.what()), String::new()),
    }
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map_or_else(String::new, |f| f.to_uppercase().collect::<String>() + c.as_str())
}
