//! Validation of the authorizer function's answer (docs/custom-auth.md §5). Anything invalid fails the connection.

use super::policy::{self, Policy};
use serde::Serialize;
use serde_json::Value;

/// Upper bounds of docs/custom-auth.md §5.
pub const MAX_POLICIES: usize = 10;
pub(crate) const MAX_POLICY_CHARS: usize = 2048;
pub(crate) const SESSION_SECONDS: std::ops::RangeInclusive<u64> = 300..=86400;

/// One broken rule, named so a user can look it up.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// The rule broken (`policyDocuments`, `disconnectAfterInSeconds`, …).
    pub rule: &'static str,
    /// What is wrong, in words.
    pub message: String,
}

/// A response that passed validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuthResponse {
    /// `isAuthenticated`.
    pub is_authenticated: bool,
    /// `principalId`.
    pub principal_id: Option<String>,
    /// `policyDocuments`, parsed.
    pub policies: Vec<Policy>,
    /// `disconnectAfterInSeconds`.
    pub disconnect_after_seconds: Option<u64>,
    /// `refreshAfterInSeconds`.
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ok_response() -> Value {
        json!({
            "isAuthenticated": true,
            "principalId": "device42",
            "disconnectAfterInSeconds": 3600,
            "refreshAfterInSeconds": 300,
            "policyDocuments": [{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Connect", "Resource": "*"}]}]
        })
    }

    fn with(k: &str, v: Value) -> Value {
        let mut r = ok_response();
        r[k] = v;
        r
    }

    fn without(k: &str) -> Value {
        let mut r = ok_response();
        r.as_object_mut().unwrap().remove(k);
        r
    }

    #[test]
    fn a_valid_response_passes() {
        let r = validate(&ok_response()).unwrap();
        assert!(r.is_authenticated);
        assert_eq!(r.policies.len(), 1);
        // Policies given as JSON strings are accepted too.
        let s =
            with("policyDocuments", json!([r#"{"Statement":[{"Effect":"Allow","Action":"iot:*","Resource":"*"}]}"#]));
        assert!(validate(&s).is_ok());
    }

    #[test]
    fn each_rule_has_a_failing_example_that_names_it() {
        let big_policy = json!({"Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": (0..300).map(|i| format!("arn:aws:iot:us-east-1:123456789012:topic/t{i}")).collect::<Vec<_>>()}]});
        let doc = ok_response()["policyDocuments"][0].clone();
        let cases: Vec<(Value, &str)> = vec![
            (json!([1, 2]), "response.object"),
            (with("isAuthenticated", json!("true")), "isAuthenticated.boolean"),
            (without("isAuthenticated"), "isAuthenticated.boolean"),
            (with("principalId", json!("user?x=1")), "principalId.pattern"),
            (with("principalId", json!("a".repeat(129))), "principalId.pattern"),
            (without("principalId"), "principalId.pattern"),
            (with("policyDocuments", json!({"Statement": []})), "policyDocuments.array"),
            (without("policyDocuments"), "policyDocuments.array"),
            (with("policyDocuments", Value::Array(vec![doc; 11])), "policyDocuments.count"),
            (with("policyDocuments", json!([big_policy])), "policyDocuments.size"),
            (with("policyDocuments", json!([{"Version": "2012-10-17"}])), "policyDocuments.policy"),
            (with("policyDocuments", json!(["not json"])), "policyDocuments.policy"),
            (with("disconnectAfterInSeconds", json!(60)), "disconnectAfterInSeconds.range"),
            (with("disconnectAfterInSeconds", json!(90000)), "disconnectAfterInSeconds.range"),
            (with("refreshAfterInSeconds", json!(299)), "refreshAfterInSeconds.range"),
            (with("refreshAfterInSeconds", json!("300")), "refreshAfterInSeconds.range"),
        ];
        for (response, rule) in cases {
            let errs = validate(&response).expect_err(rule);
            assert!(errs.iter().any(|v| v.rule == rule), "{rule}: {errs:?}");
        }
    }

    #[test]
    fn a_denial_needs_no_principal_or_policies() {
        assert!(!validate(&json!({"isAuthenticated": false})).unwrap().is_authenticated);
    }
}

/// What a device intends to do with the connection the response grants.
#[derive(Clone, Debug, Default)]
pub struct Intended {
    /// The client ID that connects.
    pub client_id: Option<String>,
    /// Topics it publishes to.
    pub publish: Vec<String>,
    /// Topic filters it subscribes to.
    pub subscribe: Vec<String>,
    /// Topics it receives from.
    pub receive: Vec<String>,
    /// The region of the resources (default from the policies or `us-east-1`).
    pub region: Option<String>,
    /// The account ID (default from the policies).
    pub account: Option<String>,
}

/// One intended action and the policies' decision on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ActionCheck {
    /// `iot:Connect`, `iot:Publish`, `iot:Subscribe` or `iot:Receive`.
    pub action: &'static str,
    /// The resource ARN checked.
    pub resource: String,
    /// What the policies decide.
    #[serde(flatten)]
    pub decision: policy::Decision,
}

/// The result of `check-response`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResponseCheck {
    /// Whether the response has the shape IoT Core requires.
    pub valid: bool,
    /// What makes it invalid.
    pub violations: Vec<Violation>,
    /// Its `isAuthenticated`, if it parsed.
    pub is_authenticated: Option<bool>,
    /// The region the resources were checked in.
    pub region: String,
    /// The account they were checked in.
    pub account: String,
    /// Where region and account came from: `flags`, `policy` (its ARNs) or `unknown`.
    pub arns_from: &'static str,
    /// Each intended action and the decision on it.
    pub actions: Vec<ActionCheck>,
    /// Valid, authenticated, and every intended action allowed.
    pub ok: bool,
}

/// Validates a response and evaluates its policies for every intended action.
pub fn check(v: &Value, intended: &Intended) -> ResponseCheck {
    let validated = validate(v);
    let policies: Vec<Policy> = match &validated {
        Ok(r) => r.policies.clone(),
        // Evaluate what can be read even when the response as a whole is invalid.
        Err(_) => v
            .get("policyDocuments")
            .and_then(Value::as_array)
            .map(|d| d.iter().filter_map(|p| policy::parse(p).ok()).collect())
            .unwrap_or_default(),
    };
    let (from_policy_region, from_policy_account) = arn_parts(&policies);
    let (region, account, arns_from) =
        match (&intended.region, &intended.account, from_policy_region, from_policy_account) {
            (Some(r), Some(a), _, _) => (r.clone(), a.clone(), "flags"),
            (r, a, Some(pr), Some(pa)) => (r.clone().unwrap_or(pr), a.clone().unwrap_or(pa), "policy"),
            (r, a, _, _) => (
                r.clone().unwrap_or_else(|| "unknown-region".into()),
                a.clone().unwrap_or_else(|| "unknown-account".into()),
                "unknown",
            ),
        };
    let arns = policy::Arns { region: region.clone(), account: account.clone() };
    let client = intended.client_id.clone().unwrap_or_default();
    let mut wanted: Vec<(&'static str, String)> = Vec::new();
    if let Some(id) = &intended.client_id {
        wanted.push(("iot:Connect", arns.client(id)));
    }
    wanted.extend(intended.publish.iter().map(|t| ("iot:Publish", arns.topic(t))));
    wanted.extend(intended.subscribe.iter().map(|f| ("iot:Subscribe", arns.topic_filter(f))));
    wanted.extend(intended.receive.iter().map(|t| ("iot:Receive", arns.topic(t))));
    let actions: Vec<ActionCheck> = wanted
        .into_iter()
        .map(|(action, resource)| ActionCheck {
            decision: policy::evaluate(&policies, action, &resource, &client),
            action,
            resource,
        })
        .collect();
    let (valid, violations, is_authenticated) = match validated {
        Ok(r) => (true, Vec::new(), Some(r.is_authenticated)),
        Err(v) => (false, v, None),
    };
    let ok = valid && is_authenticated == Some(true) && actions.iter().all(|a| a.decision.is_allowed());
    ResponseCheck { valid, violations, is_authenticated, region, account, arns_from, actions, ok }
}

/// Region and account of the first IoT ARN in the policies' resources.
fn arn_parts(policies: &[Policy]) -> (Option<String>, Option<String>) {
    policies
        .iter()
        .flat_map(|p| &p.statements)
        .flat_map(|s| &s.resources)
        .find_map(|r| {
            let parts: Vec<&str> = r.splitn(6, ':').collect();
            match parts.as_slice() {
                ["arn", _, "iot", region, account, _] if !region.contains('*') && !account.contains('*') => {
                    Some((Some((*region).to_owned()), Some((*account).to_owned())))
                }
                _ => None,
            }
        })
        .unwrap_or((None, None))
}
