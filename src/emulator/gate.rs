//! The custom-auth decision, as IoT Core makes it: pick the authorizer, check the signature, run the
//! function, validate its answer. Transport code turns the result into CONNACKs, 101s and 403s.

use super::config::EmulatorConfig;
use super::ctx::Ctx;
use super::process::FunctionError;
use super::record::{ConnectionRecord, CredentialSeen, Reason};
use crate::auth::credentials::{AUTHORIZER_NAME, SIGNATURE, Sources};
use crate::auth::event::{Event, Observed, Transport};
use crate::auth::policy::{self, Policy};
use crate::auth::response;
use crate::auth::signature;
use crate::secret::Scrubber;
use std::time::Instant;

/// What a successful authentication grants.
#[derive(Clone, Debug)]
pub(crate) struct Granted {
    pub principal_id: Option<String>,
    pub policies: Vec<Policy>,
    /// `disconnectAfterInSeconds`: how long the connection may last.
    pub disconnect_after: Option<u64>,
    /// `refreshAfterInSeconds`: when the function is asked again.
    pub refresh_after: Option<u64>,
}

impl Granted {
    /// Whether the policies allow `action` on `resource` for this client.
    pub(crate) fn allows(&self, action: &str, resource: &str, client_id: &str) -> policy::Decision {
        policy::evaluate(&self.policies, action, resource, client_id)
    }

    /// The policy check of every transport, written once: `action` on `resource` for `client_id`
    /// (empty over HTTPS, which has none), or the refusal with `reason` naming the decision.
    pub(crate) fn permit(&self, action: &str, resource: &str, client_id: &str, reason: Reason) -> Result<(), Refusal> {
        match self.allows(action, resource, client_id) {
            d if d.is_allowed() => Ok(()),
            d => Err(refuse(
                reason,
                format!("{action} on {resource}: {}", serde_json::to_string(&d).unwrap_or_default()),
            )),
        }
    }
}

/// A refusal with its reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Refusal {
    pub reason: Reason,
    pub detail: String,
}

fn refuse(reason: Reason, detail: impl Into<String>) -> Refusal {
    Refusal { reason, detail: detail.into() }
}

/// Authenticates one connection. Fills the record's authorizer, credentials, signature, event, response
/// and function time; secrets in them are scrubbed unless the config shows secrets.
pub(crate) async fn authorize(
    ctx: &Ctx,
    transport: Transport,
    seen: &Observed,
    sources: &Sources,
    scrub: &Scrubber,
    rec: &mut ConnectionRecord,
) -> Result<Granted, Refusal> {
    rec.authenticating();
    let cfg = &ctx.config;
    let named = sources.find(AUTHORIZER_NAME);
    let chosen = match (&named, cfg.allow_authorizer_override) {
        (Some(n), true) => Some(n.value.clone()),
        _ => cfg.default_authorizer.clone(),
    };
    let Some(name) = chosen else {
        return Err(refuse(Reason::NoAuthorizer, "no authorizer named and no default authorizer"));
    };
    rec.authorizer = Some(name.clone());
    let authorizer = cfg.authorizer(&name).ok_or_else(|| {
        refuse(Reason::UnknownAuthorizer, format!("no authorizer named `{name}` (names are case-sensitive)"))
    })?;
    let token = sources.find(&authorizer.token_key_name);
    let signature = sources.find(SIGNATURE);
    record_credentials(rec, &authorizer.token_key_name, [&named, &token, &signature]);
    if !authorizer.active {
        return Err(refuse(Reason::AuthorizerInactive, format!("authorizer `{name}` is INACTIVE")));
    }
    let Some(token) = token else {
        return Err(refuse(
            Reason::TokenMissing,
            format!("no `{}` parameter (the token key name of `{name}`)", authorizer.token_key_name),
        ));
    };
    let verdict = match &authorizer.signing {
        None => signature::Verdict::NotChecked,
        Some(keys) => signature::verify(keys, &token.value, signature.as_ref().map(|s| s.value.as_str())),
    };
    rec.signature = Some(verdict.clone());
    signature_refusal(&verdict)?;
    let verified = matches!(verdict, signature::Verdict::Verified { .. });
    let event = Event::build(transport, &token.value, verified, seen, &rec.id);
    // Kept as JSON text, scrubbed once where the record is logged (no tree per connection).
    rec.event = serde_json::to_string(&event).ok().and_then(super::record::raw);
    let started = Instant::now();
    intermittent(ctx, rec)?;
    let lambda = (cfg.limits.authorizer_concurrency, cfg.limits.cold_start);
    let answer = ctx.functions.invoke(authorizer, &event, scrub, cfg.latency, cfg.time_limit, lambda).await;
    rec.durations.function_ms = Some(started.elapsed().as_millis() as u64);
    let answer = answer.map_err(|e| match e {
        FunctionError::Timeout(_) => refuse(Reason::FunctionTimeout, e.to_string()),
        FunctionError::Throttled(_) => refuse(Reason::FunctionThrottled, e.to_string()),
        FunctionError::Handler { .. } => refuse(Reason::LambdaError, scrub.scrub(&e.to_string())),
        // The command's stderr may echo the event (a traceback): scrub it like everything logged.
        _ => refuse(Reason::FunctionFailed, scrub.scrub(&e.to_string())),
    })?;
    rec.response = super::record::raw(bounded(answer.to_string(), scrub));
    let valid = response::validate(&answer).map_err(|violations| {
        let list: Vec<String> = violations.iter().map(|v| format!("{}: {}", v.rule, scrub.scrub(&v.message))).collect();
        refuse(Reason::InvalidResponse, list.join("; "))
    })?;
    if !valid.is_authenticated {
        return Err(refuse(Reason::Denied, "the function answered isAuthenticated: false"));
    }
    Ok(Granted {
        principal_id: valid.principal_id,
        policies: valid.policies,
        disconnect_after: valid.disconnect_after_seconds,
        refresh_after: valid.refresh_after_seconds,
    })
}

/// The refusal a signature verdict makes, if any.
fn signature_refusal(verdict: &signature::Verdict) -> Result<(), Refusal> {
    match verdict {
        signature::Verdict::Missing => {
            Err(refuse(Reason::SignatureMissing, "signing is enabled and no signature was sent"))
        }
        signature::Verdict::NotBase64 => {
            Err(refuse(Reason::SignatureInvalid, "the signature is not valid base64 (a raw `+` reads as a space)"))
        }
        signature::Verdict::Invalid => {
            Err(refuse(Reason::SignatureInvalid, "no public key of the authorizer verifies the signature"))
        }
        _ => Ok(()),
    }
}

/// `fail_every`: this invocation is one of those that fail.
fn intermittent(ctx: &Ctx, rec: &mut ConnectionRecord) -> Result<(), Refusal> {
    let Some(n) = ctx.config.fail_every.filter(|n| *n > 0) else { return Ok(()) };
    if ctx.functions.invocations.fetch_add(1, std::sync::atomic::Ordering::SeqCst) % u64::from(n) != 0 {
        return Ok(());
    }
    rec.durations.function_ms = Some(0);
    Err(refuse(Reason::LambdaError, format!("Intermittent: the function fails every {n}th invocation (fail_every)")))
}

/// Parameter and header names whose values are never secret; every other value a device sends is
/// treated as one, whatever its name (a token under a wrong key name, a signature under a wrong
/// parameter name, parameters hidden behind a second `?`).
const NOT_SECRET: [&str; 31] = [
    AUTHORIZER_NAME,
    "sdk",
    "version",
    "platform",
    "metadata",
    "qos",
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
    "content-type",
    "content-length",
    "user-agent",
    "accept",
    // What every browser sends: never a credential.
    "origin",
    "pragma",
    "cache-control",
    "accept-encoding",
    "accept-language",
    // A page's CORS preflight, and the fetch metadata and client hints browsers add. (Not
    // `referer`: a page's URL may carry a token in its query.)
    "access-control-request-method",
    "access-control-request-headers",
    "sec-fetch-mode",
    "sec-fetch-site",
    "sec-fetch-dest",
    "sec-ch-ua",
    "sec-ch-ua-mobile",
    "sec-ch-ua-platform",
    "priority",
];

/// Values under an unknown name shorter than this are not taken for secrets (`qos=1`, `x=y`).
const MIN_GUESSED_SECRET: usize = 3;

/// A scrubber that knows every secret this connection carried: values under any configured token key
/// name (or `token`) and the signature, every other parameter or header value not known to be public,
/// the password in raw and base64 form. A connection carrying more values than a scrubber holds
/// ([`Scrubber::MAX_FORMS`]) gets one that redacts free text whole; usernames, queries and headers
/// are redacted value by value where they are recorded ([`redact_query`]), whatever their number.
pub(crate) fn scrubber(cfg: &EmulatorConfig, seen: &Observed, sources: &Sources) -> Scrubber {
    let mut scrub = Scrubber::new(cfg.show_secrets);
    if cfg.show_secrets {
        return scrub;
    }
    let mut names: Vec<&str> = cfg.authorizers.iter().map(|a| a.token_key_name.as_str()).collect();
    names.extend(["token", SIGNATURE]);
    for (value, raw) in sources.values_of(&names) {
        scrub.add(value);
        scrub.add_form(value, raw);
    }
    for (name, value) in &seen.headers {
        if guessed(name, value) {
            scrub.add(value);
        }
    }
    if let Some(p) = seen.connect.as_ref().and_then(|c| c.password.as_ref()) {
        use base64::Engine as _;
        let text = String::from_utf8_lossy(p);
        scrub.add(&text);
        scrub.add_form(&text, &base64::engine::general_purpose::STANDARD.encode(p));
    }
    let username = seen.connect.as_ref().and_then(|c| c.username.as_deref()).unwrap_or_default();
    // Every `name=value` after the first `?`, split at `?` and `&` alike: what IoT Core ignores
    // (behind a second `?`) is still the device's secret.
    let in_username = username.split_once('?').map_or("", |(_, q)| q);
    let in_query = seen.query.as_deref().unwrap_or_default();
    for pair in in_username.split(['?', '&']).chain(in_query.split('&')) {
        let Some((name, raw)) = pair.split_once('=') else { continue };
        let value = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
        if guessed(name, &value) {
            scrub.add(&value);
            scrub.add_form(&value, raw);
            if value.contains(' ') {
                scrub.add_form(&value, &value.replace(' ', "+"));
            }
        }
    }
    scrub
}

/// Whether a value under `name` is taken for a secret.
fn guessed(name: &str, value: &str) -> bool {
    !NOT_SECRET.iter().any(|n| n.eq_ignore_ascii_case(name)) && value.len() >= MIN_GUESSED_SECRET
}

/// A header value as recorded: whole when its name is public, else redacted whole (a secret under a
/// name nobody expected is still a secret), then scrubbed of the connection's other secrets.
pub(crate) fn redact_header(name: &str, value: &str, scrub: &Scrubber) -> String {
    if !scrub.shows() && guessed(name, value) { crate::secret::redact(value) } else { scrub.scrub(value) }
}

/// A username or request target as recorded: the value of every `name=value` after the first `?`
/// that is not known to be public replaced by its redacted form, in one pass, then scrubbed of the
/// connection's other secrets.
pub(crate) fn redact_query(text: &str, scrub: &Scrubber) -> String {
    if scrub.shows() {
        return text.to_owned();
    }
    let Some((head, query)) = text.split_once('?') else {
        return scrub.scrub(text);
    };
    let mut out = String::with_capacity(text.len());
    out.push_str(head);
    out.push('?');
    let mut rest = query;
    loop {
        let end = rest.find(['?', '&']).unwrap_or(rest.len());
        let pair = &rest[..end];
        match pair.split_once('=') {
            Some((name, raw)) => {
                let value = percent_encoding::percent_decode_str(raw).decode_utf8_lossy();
                out.push_str(name);
                out.push('=');
                if guessed(name, &value) {
                    out.push_str(&crate::secret::redact(&value));
                } else {
                    out.push_str(raw);
                }
            }
            None => out.push_str(pair),
        }
        let Some(sep) = rest[end..].chars().next() else { break };
        out.push(sep);
        rest = &rest[end + 1..];
    }
    // The part before the `?` (a client name, a path) may still hold a secret the device misplaced.
    let head_len = head.len() + 1;
    let scrubbed_head = scrub.scrub(head);
    if scrubbed_head == head { out } else { format!("{scrubbed_head}?{}", &out[head_len..]) }
}

fn record_credentials(
    rec: &mut ConnectionRecord,
    token_key: &str,
    found: [&Option<crate::auth::credentials::Found>; 3],
) {
    let names = [AUTHORIZER_NAME, token_key, SIGNATURE];
    rec.credentials = names
        .iter()
        .zip(found)
        .filter_map(|(name, f)| {
            f.as_ref().map(|f| CredentialSeen {
                parameter: (*name).to_owned(),
                placement: f.placement,
                percent_encoded: f.raw.contains('%'),
            })
        })
        .collect();
}

/// Largest function response kept whole in a connection record.
const MAX_RECORDED_RESPONSE: usize = 16 * 1024;

/// The response as recorded: whole when small, else its size and the start of its text.
fn bounded(text: String, scrub: &Scrubber) -> String {
    if text.len() <= MAX_RECORDED_RESPONSE {
        return text;
    }
    // The start of the text becomes a string value: scrubbed here, where its secrets still read
    // as they were sent (inside the new string they would be escaped once more).
    let head: String = text.chars().take(1024).collect();
    serde_json::json!({"truncated": true, "bytes": text.len(), "start": scrub.scrub(&head)}).to_string()
}
