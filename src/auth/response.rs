//! Validation of the authorizer function's answer (spec §5). Anything invalid fails the connection.

use super::policy::{self, Policy};
use serde::Serialize;
use serde_json::Value;

/// Upper bounds of spec §5.
pub const MAX_POLICIES: usize = 10;
pub const MAX_POLICY_CHARS: usize = 2048;
pub const SESSION_SECONDS: std::ops::RangeInclusive<u64> = 300..=86400;

/// One broken rule, named so a user can look it up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    pub rule: &'static str,
    pub message: String,
}

/// A response that passed validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuthResponse {
    pub is_authenticated: bool,
    pub principal_id: Option<String>,
    pub policies: Vec<Policy>,
    pub disconnect_after_seconds: Option<u64>,
    pub refresh_after_seconds: Option<u64>,
}

/// Checks a response; `principalId` and `policyDocuments` are required when `isAuthenticated` is true,
/// and checked when present otherwise.
pub fn validate(v: &Value) -> Result<AuthResponse, Vec<Violation>> {
    let mut bad = Vec::new();
    let mut fail = |rule, message: String| bad.push(Violation { rule, message });
    let Some(obj) = v.as_object() else {
        return Err(vec![Violation { rule: "response.object", message: "the response must be a JSON object".into() }]);
    };
    let is_authenticated = match obj.get("isAuthenticated") {
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            fail("isAuthenticated.boolean", format!("`isAuthenticated` must be true or false, not {other}"));
            false
        }
        None => {
            fail("isAuthenticated.boolean", "`isAuthenticated` is missing".into());
            false
        }
    };
    let principal_id = match obj.get("principalId") {
        Some(Value::String(p)) if is_principal_id(p) => Some(p.clone()),
        Some(other) => {
            fail("principalId.pattern", format!("`principalId` must match [a-zA-Z0-9]{{1,128}}, got {other}"));
            None
        }
        None if is_authenticated => {
            fail("principalId.pattern", "`principalId` is missing".into());
            None
        }
        None => None,
    };
    let policies = match obj.get("policyDocuments") {
        Some(Value::Array(docs)) => check_policies(docs, &mut fail),
        Some(_) => {
            fail("policyDocuments.array", "`policyDocuments` must be a list".into());
            Vec::new()
        }
        None if is_authenticated => {
            fail("policyDocuments.array", "`policyDocuments` is missing".into());
            Vec::new()
        }
        None => Vec::new(),
    };
    let disconnect = seconds(obj.get("disconnectAfterInSeconds"), "disconnectAfterInSeconds", &mut fail);
    let refresh = seconds(obj.get("refreshAfterInSeconds"), "refreshAfterInSeconds", &mut fail);
    if !bad.is_empty() {
        return Err(bad);
    }
    Ok(AuthResponse {
        is_authenticated,
        principal_id,
        policies,
        disconnect_after_seconds: disconnect,
        refresh_after_seconds: refresh,
    })
}

fn is_principal_id(p: &str) -> bool {
    (1..=128).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric())
}

fn check_policies(docs: &[Value], fail: &mut impl FnMut(&'static str, String)) -> Vec<Policy> {
    if docs.len() > MAX_POLICIES {
        fail("policyDocuments.count", format!("{} policy documents; at most {MAX_POLICIES} are allowed", docs.len()));
    }
    let mut out = Vec::new();
    for (i, doc) in docs.iter().enumerate() {
        let chars = match doc {
            Value::String(s) => s.chars().count(),
            other => other.to_string().chars().count(),
        };
        if chars > MAX_POLICY_CHARS {
            fail(
                "policyDocuments.size",
                format!("policy document {i} has {chars} characters; at most {MAX_POLICY_CHARS}"),
            );
        }
        match policy::parse(doc) {
            Ok(p) => out.push(p),
            Err(e) => fail("policyDocuments.policy", format!("policy document {i}: {e}")),
        }
    }
    out
}

fn seconds(v: Option<&Value>, field: &'static str, fail: &mut impl FnMut(&'static str, String)) -> Option<u64> {
    let rule =
        if field.starts_with("disconnect") { "disconnectAfterInSeconds.range" } else { "refreshAfterInSeconds.range" };
    match v {
        None => None,
        Some(x) => match x.as_u64().filter(|n| SESSION_SECONDS.contains(n)) {
            Some(n) => Some(n),
            None => {
                fail(rule, format!("`{field}` must be a whole number from 300 to 86400, got {x}"));
                None
            }
        },
    }
}
