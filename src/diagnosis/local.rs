//! Local checks: what the AWS documents the user handed over say about the device's credentials, run
//! before anything is sent. Each check rules causes out, or implicates one, as evidence for the
//! diagnosis.

use super::cause::Cause;
pub use crate::auth::documents::{DescribedAuthorizer, Documents, Domain};
use crate::auth::signature::{self, PublicKey, Verdict};
use crate::probe::{Credentials, ProbePlan};
use crate::secret::Secret;
use serde::Serialize;

/// Which local check: ids are stable (the report's `local_checks[].check`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CheckId {
    /// The endpoint's port is 443, the only one custom authentication uses.
    Port443,
    /// The endpoint is a name, not an address (SNI needs a name).
    EndpointIsAName,
    /// The endpoint is an ATS endpoint, not the legacy VeriSign one.
    EndpointAts,
    /// The endpoint is the one describe-endpoint (or the domain) names.
    EndpointDescribed,
    /// A token (or a username or password carrying one) is given.
    TokenPresent,
    /// The authorizer name sent is the described authorizer's.
    AuthorizerName,
    /// The authorizer is ACTIVE.
    AuthorizerStatus,
    /// The token goes under the authorizer's token key name.
    TokenKeyName,
    /// The domain configuration allows custom authentication.
    DomainAuthenticationType,
    /// The domain's default authorizer, for devices that name none.
    DefaultAuthorizer,
    /// Whether the authorizer verifies token signatures.
    Signing,
    /// A signature is sent where signing is enabled.
    SignaturePresent,
    /// The signature verifies with one of the authorizer's keys.
    SignatureVerifies,
    /// What IoT Core reads from the device's exact username.
    UsernameRaw,
}

impl CheckId {
    /// Every check.
    pub const ALL: [Self; 14] = [
        Self::Port443,
        Self::EndpointIsAName,
        Self::EndpointAts,
        Self::EndpointDescribed,
        Self::TokenPresent,
        Self::AuthorizerName,
        Self::AuthorizerStatus,
        Self::TokenKeyName,
        Self::DomainAuthenticationType,
        Self::DefaultAuthorizer,
        Self::Signing,
        Self::SignaturePresent,
        Self::SignatureVerifies,
        Self::UsernameRaw,
    ];

    /// The id as reports print it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Port443 => "port_443",
            Self::EndpointIsAName => "endpoint_is_a_name",
            Self::EndpointAts => "endpoint_ats",
            Self::EndpointDescribed => "endpoint_described",
            Self::TokenPresent => "token_present",
            Self::AuthorizerName => "authorizer_name",
            Self::AuthorizerStatus => "authorizer_status",
            Self::TokenKeyName => "token_key_name",
            Self::DomainAuthenticationType => "domain_authentication_type",
            Self::DefaultAuthorizer => "default_authorizer",
            Self::Signing => "signing",
            Self::SignaturePresent => "signature_present",
            Self::SignatureVerifies => "signature_verifies",
            Self::UsernameRaw => "username_raw",
        }
    }
}

impl std::fmt::Display for CheckId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for CheckId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One local check and what it means for the diagnosis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LocalCheck {
    /// Which check.
    pub check: CheckId,
    /// Whether it passed.
    pub passed: bool,
    /// What it found, in words (secrets redacted).
    pub detail: String,
    /// The cause a failed check establishes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub implicates: Option<Cause>,
    /// Causes this check excludes.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub rules_out: Vec<Cause>,
}

fn pass(check: CheckId, detail: String, rules_out: &[Cause]) -> LocalCheck {
    LocalCheck { check, passed: true, detail, implicates: None, rules_out: rules_out.to_vec() }
}

fn fail(check: CheckId, detail: String, implicates: Option<Cause>) -> LocalCheck {
    LocalCheck { check, passed: false, detail, implicates, rules_out: Vec::new() }
}

const SIGNATURE_CAUSES: [Cause; 4] =
    [Cause::SignatureMissing, Cause::SignatureInvalid, Cause::SignatureWrongValue, Cause::SignatureNotEncoded];

/// The local checks of `plan`: its documents against its credentials (and the device's exact
/// username), with secrets redacted in what they quote.
pub fn for_plan(plan: &ProbePlan) -> Vec<LocalCheck> {
    let judged = plan.judged_credentials();
    let mut local = checks(&plan.documents, &judged, &plan.target.endpoint, plan.target.port);
    if let Some(raw) = &plan.device.username_raw {
        local.push(username_raw(raw, &judged));
    }
    // A check may quote what the device sends (its username): secrets redacted like everywhere.
    if let Some(spec) = plan.baseline().first() {
        let scrub = plan.secrets(spec);
        for c in &mut local {
            c.detail = scrub.scrub(&c.detail);
        }
    }
    local
}

/// Every check the documents allow, in order.
pub fn checks(docs: &Documents, creds: &Credentials, endpoint: &str, port: u16) -> Vec<LocalCheck> {
    let mut out = Vec::new();
    if port != 443 {
        out.push(fail(
            CheckId::Port443,
            format!("port {port}: IoT Core runs custom authentication on port 443 only"),
            Some(Cause::WrongPort),
        ));
    }
    out.extend(endpoint_checks(docs, endpoint));
    if creds.token.is_none() && creds.username.is_none() && creds.password.is_none() {
        out.push(fail(
            CheckId::TokenPresent,
            "no token is given (--token): the authorizer gets none".into(),
            Some(Cause::TokenMissing),
        ));
    }
    if let Some(a) = &docs.authorizer {
        out.push(authorizer_name(a, creds.authorizer.as_deref(), docs.domain.as_ref()));
        out.push(if a.active {
            pass(CheckId::AuthorizerStatus, format!("authorizer `{}` is ACTIVE", a.name), &[Cause::AuthorizerInactive])
        } else {
            fail(
                CheckId::AuthorizerStatus,
                format!("authorizer `{}` is INACTIVE: IoT Core will not run it", a.name),
                Some(Cause::AuthorizerInactive),
            )
        });
        out.push(token_key_name(a, &creds.token_key_name));
    }
    if let Some(d) = &docs.domain {
        out.extend(domain_checks(d, creds.authorizer.as_deref()));
    }
    out.extend(signature_checks(docs, creds));
    out
}

/// What IoT Core reads from the device's exact username (`--username-raw`): the parameters after the
/// last `?`, percent-decoded.
pub fn username_raw(raw: &str, creds: &Credentials) -> LocalCheck {
    use crate::auth::credentials::{AUTHORIZER_NAME, SIGNATURE, parse_query, split_username};
    let (user, query) = split_username(raw);
    let params = parse_query(query.unwrap_or_default(), false);
    let find = |name: &str| params.iter().find(|p| p.name == name);
    let mut read = Vec::new();
    match find(AUTHORIZER_NAME) {
        Some(p) => read.push(format!("authorizer `{}`", crate::secret::escape(&p.value))),
        None => read.push("no authorizer name (the default authorizer runs)".into()),
    }
    let token = find(&creds.token_key_name);
    read.push(match token {
        Some(_) => format!("a token under `{}`", creds.token_key_name),
        None => format!("no token under `{}`", creds.token_key_name),
    });
    read.push(if find(SIGNATURE).is_some() { "a signature".into() } else { "no signature".into() });
    let others: Vec<&str> = params
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| *n != AUTHORIZER_NAME && *n != SIGNATURE && *n != creds.token_key_name)
        .collect();
    if !others.is_empty() {
        read.push(format!("other parameters {}", others.join(", ")));
    }
    let hidden = user.contains('?');
    if hidden {
        read.push(format!("and it ignores `{}` before the last `?`", crate::secret::escape(user)));
    }
    let detail = format!("IoT Core reads from the username: {}", read.join(", "));
    if hidden || token.is_none() {
        fail(CheckId::UsernameRaw, detail, hidden.then_some(Cause::UsernameMalformed))
    } else {
        pass(CheckId::UsernameRaw, detail, &[Cause::UsernameMalformed])
    }
}

fn endpoint_checks(docs: &Documents, endpoint: &str) -> Vec<LocalCheck> {
    let mut out = Vec::new();
    if endpoint.parse::<std::net::IpAddr>().is_ok() {
        out.push(fail(
            CheckId::EndpointIsAName,
            format!("the endpoint {endpoint} is an IP address: TLS sends no SNI for an IP, and IoT Core needs SNI to pick the account's endpoint"),
            Some(Cause::SniMissing),
        ));
    }
    if crate::auth::endpoint::is_legacy(endpoint) {
        out.push(fail(
            CheckId::EndpointAts,
            format!("{endpoint} is the legacy iot:Data endpoint: its certificate chain is VeriSign's (Symantec), not Amazon's, and devices that trust only Amazon Root CA reject it; use the iot:Data-ATS endpoint (`aws iot describe-endpoint --endpoint-type iot:Data-ATS`)"),
            None,
        ));
    }
    let described = [docs.endpoint_address.as_deref(), docs.domain.as_ref().and_then(|d| d.name.as_deref())];
    let known: Vec<&str> = described.into_iter().flatten().collect();
    if !known.is_empty() {
        out.push(if known.iter().any(|k| k.eq_ignore_ascii_case(endpoint)) {
            pass(
                CheckId::EndpointDescribed,
                format!("the endpoint {endpoint} is the one the AWS documents name"),
                &[Cause::SniNotEndpoint],
            )
        } else {
            fail(
                CheckId::EndpointDescribed,
                format!("the endpoint {endpoint} is not the one the AWS documents name ({})", known.join(", ")),
                Some(Cause::SniNotEndpoint),
            )
        });
    }
    out
}

fn authorizer_name(a: &DescribedAuthorizer, sent: Option<&str>, domain: Option<&Domain>) -> LocalCheck {
    match sent {
        Some(s) if s == a.name => pass(
            CheckId::AuthorizerName,
            format!("the authorizer name sent, `{s}`, is the described authorizer's"),
            &[Cause::AuthorizerUnknown, Cause::AuthorizerMissingNoDefault],
        ),
        Some(s) if s.eq_ignore_ascii_case(&a.name) => fail(
            CheckId::AuthorizerName,
            format!(
                "the authorizer name sent, `{s}`, differs from `{}` in letter case; names are case-sensitive",
                a.name
            ),
            Some(Cause::AuthorizerUnknown),
        ),
        Some(s) => fail(
            CheckId::AuthorizerName,
            format!("--authorizer `{s}` differs from --authorizer-json's `{}`", a.name),
            None,
        ),
        None if domain.and_then(|d| d.default_authorizer.as_deref()) == Some(a.name.as_str()) => pass(
            CheckId::AuthorizerName,
            format!("no name is sent; the domain's default authorizer is `{}`", a.name),
            &[Cause::AuthorizerUnknown, Cause::AuthorizerMissingNoDefault],
        ),
        None => pass(
            CheckId::AuthorizerName,
            "no authorizer name is sent: the endpoint's default authorizer runs".into(),
            &[Cause::AuthorizerUnknown],
        ),
    }
}

fn token_key_name(a: &DescribedAuthorizer, sent: &str) -> LocalCheck {
    if sent == a.token_key_name {
        pass(
            CheckId::TokenKeyName,
            format!("the token is sent under `{sent}`, the authorizer's tokenKeyName"),
            &[Cause::TokenKeyNameWrong],
        )
    } else {
        fail(
            CheckId::TokenKeyName,
            format!("the token is sent under `{sent}`, but the authorizer's tokenKeyName is `{}`", a.token_key_name),
            Some(Cause::TokenKeyNameWrong),
        )
    }
}

fn domain_checks(d: &Domain, sent: Option<&str>) -> Vec<LocalCheck> {
    let mut out = Vec::new();
    if !matches!(d.authentication_type.as_str(), "CUSTOM_AUTH" | "CUSTOM_AUTH_X509" | "DEFAULT") {
        out.push(fail(
            CheckId::DomainAuthenticationType,
            format!(
                "the domain's authenticationType is {}: custom authentication is not used there",
                d.authentication_type
            ),
            Some(Cause::SniNotEndpoint),
        ));
    }
    match (sent, d.default_authorizer.as_deref()) {
        (None, None) => out.push(fail(
            CheckId::DefaultAuthorizer,
            "no authorizer is named and the domain has no default authorizer: none will run".into(),
            Some(Cause::AuthorizerMissingNoDefault),
        )),
        (None, Some(def)) => out.push(pass(
            CheckId::DefaultAuthorizer,
            format!("no name is sent; the domain's default authorizer `{def}` runs"),
            &[Cause::AuthorizerMissingNoDefault, Cause::AuthorizerUnknown],
        )),
        (Some(a), Some(def)) if !d.allow_override && a != def => out.push(fail(
            CheckId::DefaultAuthorizer,
            format!("the domain does not allow authorizer override: `{a}` is ignored and the default `{def}` runs"),
            None,
        )),
        _ => {}
    }
    out
}

fn signature_checks(docs: &Documents, creds: &Credentials) -> Vec<LocalCheck> {
    let (keys, signing) = docs.keys();
    match (signing, creds.signature.as_ref().map(Secret::expose)) {
        (Some(false), _) => {
            let name = docs.authorizer.as_ref().map_or("", |a| a.name.as_str());
            vec![pass(
                CheckId::Signing,
                format!("signing is disabled for `{name}`: no signature is checked"),
                &SIGNATURE_CAUSES,
            )]
        }
        (Some(true), None) => vec![fail(
            CheckId::SignaturePresent,
            "the authorizer has signing enabled but no signature will be sent".into(),
            Some(Cause::SignatureMissing),
        )],
        (Some(true), Some(sig)) => {
            let present = pass(
                CheckId::SignaturePresent,
                "a signature is sent, as signing requires".into(),
                &[Cause::SignatureMissing],
            );
            let token = creds.token.as_ref().map_or("", Secret::expose);
            vec![present, verification(&keys, token, sig, creds)]
        }
        (None, _) => Vec::new(),
    }
}

fn verification(keys: &[PublicKey], token: &str, sig: &str, creds: &Credentials) -> LocalCheck {
    match signature::verify(keys, token, Some(sig)) {
        Verdict::Verified { key } => pass(
            CheckId::SignatureVerifies,
            format!("the signature verifies over the token with key `{key}`"),
            &[Cause::SignatureInvalid, Cause::SignatureWrongValue, Cause::SignatureMissing],
        ),
        _ => match signature::forensics(keys, token, sig, creds.username.as_deref()) {
            Some(f) => fail(
                CheckId::SignatureVerifies,
                format!(
                    "the signature does not verify over the token; it is an {} signature over {} (key `{}`)",
                    f.scheme, f.signed, f.key
                ),
                Some(Cause::SignatureWrongValue),
            ),
            None => fail(
                CheckId::SignatureVerifies,
                format!("the signature does not verify with any of the authorizer's {} key(s)", keys.len()),
                Some(Cause::SignatureInvalid),
            ),
        },
    }
}
