//! Evaluation of the IoT policy documents an authorizer returns (docs/custom-auth.md §6).
//!
//! Default deny; an Allow grants; an explicit Deny beats any Allow. In resources `*` matches any run of
//! characters (including `/`), `?` exactly one; MQTT `+` and `#` are literal. `${iot:ClientId}` is
//! substituted. Actions compare case-insensitively and may use `*` (`iot:*`).

use serde::Serialize;
use serde_json::Value;

/// A statement's `Effect`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Effect {
    /// `Allow`.
    Allow,
    /// `Deny`.
    Deny,
}

/// One statement of a policy document.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Statement {
    /// Its `Sid`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    /// Its effect.
    pub effect: Effect,
    /// Its `Action` list (wildcards allowed).
    pub actions: Vec<String>,
    /// Its `Resource` list (wildcards and policy variables allowed).
    pub resources: Vec<String>,
}

/// One policy document of an authorizer's answer.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Policy {
    /// Its statements, in order.
    pub statements: Vec<Statement>,
}

/// Which statement decided, by position (0-based) in the list of policies and in the policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatementRef {
    /// The index of the policy document.
    pub policy: usize,
    /// The index of the statement in it.
    pub statement: usize,
    /// The statement's `Sid`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

/// What the policies decide for one action on one resource.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    /// An `Allow` statement matches and no `Deny` does.
    Allowed {
        /// The statement that allows it.
        by: StatementRef,
    },
    /// A `Deny` statement matches (it wins over every `Allow`).
    ExplicitDeny {
        /// The statement that denies it.
        by: StatementRef,
    },
    /// No statement matches: denied by default.
    NotAllowed,
}

impl Decision {
    pub(crate) fn is_allowed(&self) -> bool {
        matches!(self, Self::Allowed { .. })
    }
}

/// Reads one policy document (a JSON object, or a string holding one).
pub fn parse(doc: &Value) -> Result<Policy, String> {
    let owned;
    let doc = match doc {
        Value::String(text) => {
            owned = serde_json::from_str::<Value>(text).map_err(|e| format!("the string is not JSON: {e}"))?;
            &owned
        }
        other => other,
    };
    let obj = doc.as_object().ok_or("a policy document must be a JSON object")?;
    let statements = match obj.get("Statement") {
        Some(Value::Array(list)) => list.iter().collect::<Vec<_>>(),
        Some(single @ Value::Object(_)) => vec![single],
        Some(_) => return Err("`Statement` must be an object or a list of objects".into()),
        None => return Err("the policy has no `Statement`".into()),
    };
    let statements = statements
        .into_iter()
        .enumerate()
        .map(|(i, s)| parse_statement(s).map_err(|e| format!("statement {i}: {e}")))
        .collect::<Result<_, _>>()?;
    Ok(Policy { statements })
}

fn parse_statement(s: &Value) -> Result<Statement, String> {
    let obj = s.as_object().ok_or("a statement must be a JSON object")?;
    let effect = match obj.get("Effect").and_then(Value::as_str) {
        Some("Allow") => Effect::Allow,
        Some("Deny") => Effect::Deny,
        Some(other) => return Err(format!("`Effect` must be \"Allow\" or \"Deny\", not {other:?}")),
        None => return Err("`Effect` is missing".into()),
    };
    Ok(Statement {
        sid: obj.get("Sid").and_then(Value::as_str).map(str::to_owned),
        effect,
        actions: strings(obj.get("Action"), "Action")?,
        resources: strings(obj.get("Resource"), "Resource")?,
    })
}

fn strings(v: Option<&Value>, field: &str) -> Result<Vec<String>, String> {
    match v {
        Some(Value::String(s)) => Ok(vec![s.clone()]),
        Some(Value::Array(list)) => list
            .iter()
            .map(|x| x.as_str().map(str::to_owned).ok_or(format!("`{field}` entries must be strings")))
            .collect(),
        Some(_) => Err(format!("`{field}` must be a string or a list of strings")),
        None => Err(format!("`{field}` is missing (NotAction/NotResource are not supported)")),
    }
}

/// Decides whether `action` on `resource` is allowed for a connection with `client_id`.
pub fn evaluate(policies: &[Policy], action: &str, resource: &str, client_id: &str) -> Decision {
    let mut allowed = None;
    for (p, policy) in policies.iter().enumerate() {
        for (s, st) in policy.statements.iter().enumerate() {
            let action_hit = st.actions.iter().any(|a| glob(&a.to_ascii_lowercase(), &action.to_ascii_lowercase()));
            let resource_hit = st.resources.iter().any(|r| glob(&r.replace("${iot:ClientId}", client_id), resource));
            if !(action_hit && resource_hit) {
                continue;
            }
            let by = StatementRef { policy: p, statement: s, sid: st.sid.clone() };
            match st.effect {
                Effect::Deny => return Decision::ExplicitDeny { by },
                Effect::Allow => {
                    allowed.get_or_insert(by);
                }
            }
        }
    }
    allowed.map_or(Decision::NotAllowed, |by| Decision::Allowed { by })
}

/// `*` matches any run of characters, `?` exactly one; everything else is literal.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        // A `*` in the pattern is always a wildcard, even facing a literal `*` in the text.
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

/// Builds the resource ARNs of docs/custom-auth.md §6 for one region and account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arns {
    /// The region of the resources.
    pub region: String,
    /// The account ID (`<account>` when not known).
    pub account: String,
}

impl Arns {
    /// The ARNs of `region` and `account`.
    pub fn new(region: &str, account: &str) -> Self {
        Self { region: region.to_owned(), account: account.to_owned() }
    }

    /// The ARNs of an endpoint's region (`<region>` when its name does not say), for an account
    /// not known (`<account>`): what the probe names in its findings.
    pub fn for_endpoint(endpoint: &str, account: Option<&str>) -> Self {
        let region = region_of(endpoint).unwrap_or_else(|| "<region>".into());
        Self::new(&region, account.unwrap_or("<account>"))
    }

    fn arn(&self, kind: &str, name: &str) -> String {
        format!("arn:aws:iot:{}:{}:{kind}/{name}", self.region, self.account)
    }
    /// `arn:aws:iot:<region>:<account>:authorizer/<name>`.
    pub fn authorizer(&self, name: &str) -> String {
        self.arn("authorizer", name)
    }
    /// The authorizer's Lambda function (`arn:aws:lambda:…:function:<name>`).
    pub fn lambda_function(&self, name: &str) -> String {
        format!("arn:aws:lambda:{}:{}:function:{name}", self.region, self.account)
    }
    /// `arn:aws:iot:<region>:<account>:client/<client_id>`.
    pub fn client(&self, client_id: &str) -> String {
        self.arn("client", client_id)
    }
    /// `arn:aws:iot:<region>:<account>:topic/<topic>`.
    pub fn topic(&self, topic: &str) -> String {
        self.arn("topic", topic)
    }
    pub(crate) fn topic_filter(&self, filter: &str) -> String {
        self.arn("topicfilter", filter)
    }
}

/// The region in an IoT endpoint's name (`…iot.<region>.amazonaws.com[.cn]`).
pub fn region_of(endpoint: &str) -> Option<String> {
    let rest = endpoint.split_once(".iot.")?.1;
    let region = rest.strip_suffix(".amazonaws.com").or_else(|| rest.strip_suffix(".amazonaws.com.cn"))?;
    (!region.is_empty() && !region.contains('.')).then(|| region.to_owned())
}

/// A policy allowing every IoT action on every resource.
pub fn allow_all() -> Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{ "Action": "iot:*", "Effect": "Allow", "Resource": "*" }]
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const A: &str = "arn:aws:iot:us-east-1:123456789012";

    fn policies(docs: &[serde_json::Value]) -> Vec<Policy> {
        docs.iter().map(|d| parse(d).unwrap()).collect()
    }

    fn decide(docs: &[serde_json::Value], action: &str, resource: &str) -> Decision {
        evaluate(&policies(docs), action, resource, "dev-1")
    }

    #[test]
    fn table_from_the_iot_policy_documentation() {
        let allow_foo = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "iot:Publish", "Resource": format!("{A}:topic/foo/*")}]});
        let deny_secret = json!({"Statement": {"Effect": "Deny", "Action": "iot:Publish", "Resource": format!("{A}:topic/foo/secret")}});
        let literal_plus = json!({"Statement": [{"Effect": "Allow", "Action": "iot:Subscribe", "Resource": format!("{A}:topicfilter/foo/+")}]});
        let by_client = json!({"Statement": [{"Effect": "Allow", "Action": ["iot:Connect"], "Resource": [format!("{A}:client/${{iot:ClientId}}")]}]});
        let everything = json!({"Statement": [{"Effect": "Allow", "Action": "iot:*", "Resource": "*"}]});
        let one_char = json!({"Statement": [{"Effect": "Allow", "Action": "iot:Receive", "Resource": format!("{A}:topic/room?")}]});
        let both = [allow_foo.clone(), deny_secret.clone()];
        let empty = [json!({"Statement": []})];
        let cases: Vec<(&[serde_json::Value], &str, String, &str)> = vec![
            // `*` spans levels.
            (std::slice::from_ref(&allow_foo), "iot:Publish", format!("{A}:topic/foo/bar/baz"), "allowed"),
            (std::slice::from_ref(&allow_foo), "iot:Publish", format!("{A}:topic/food"), "not_allowed"),
            // Actions compare case-insensitively; other actions are not covered.
            (std::slice::from_ref(&allow_foo), "iot:publish", format!("{A}:topic/foo/x"), "allowed"),
            (std::slice::from_ref(&allow_foo), "iot:Subscribe", format!("{A}:topic/foo/x"), "not_allowed"),
            // An explicit Deny beats any Allow, whichever document holds it.
            (&both, "iot:Publish", format!("{A}:topic/foo/secret"), "explicit_deny"),
            (&both, "iot:Publish", format!("{A}:topic/foo/open"), "allowed"),
            // MQTT wildcards are literal characters in resources.
            (std::slice::from_ref(&literal_plus), "iot:Subscribe", format!("{A}:topicfilter/foo/+"), "allowed"),
            (std::slice::from_ref(&literal_plus), "iot:Subscribe", format!("{A}:topicfilter/foo/bar"), "not_allowed"),
            // ${iot:ClientId} is the connecting client's ID; Action and Resource as lists.
            (std::slice::from_ref(&by_client), "iot:Connect", format!("{A}:client/dev-1"), "allowed"),
            (std::slice::from_ref(&by_client), "iot:Connect", format!("{A}:client/dev-2"), "not_allowed"),
            // iot:* covers every IoT action.
            (std::slice::from_ref(&everything), "iot:RetainPublish", format!("{A}:topic/x"), "allowed"),
            // `?` is exactly one character.
            (std::slice::from_ref(&one_char), "iot:Receive", format!("{A}:topic/room1"), "allowed"),
            (std::slice::from_ref(&one_char), "iot:Receive", format!("{A}:topic/room12"), "not_allowed"),
            // No statement at all: not allowed (default deny).
            (&empty, "iot:Connect", format!("{A}:client/dev-1"), "not_allowed"),
        ];
        for (docs, action, resource, expect) in cases {
            let got = decide(docs, action, &resource);
            let name = serde_json::to_value(&got).unwrap()["decision"].as_str().unwrap().to_owned();
            assert_eq!(name, expect, "{action} on {resource}");
        }
    }

    #[test]
    fn the_deciding_statement_is_named() {
        let docs = [json!({"Statement": [
            {"Sid": "a", "Effect": "Allow", "Action": "iot:Publish", "Resource": "*"},
            {"Sid": "no", "Effect": "Deny", "Action": "iot:Publish", "Resource": "*/blocked"}
        ]})];
        assert_eq!(
            decide(&docs, "iot:Publish", "t/blocked"),
            Decision::ExplicitDeny { by: StatementRef { policy: 0, statement: 1, sid: Some("no".into()) } }
        );
        assert_eq!(
            decide(&docs, "iot:Publish", "t/ok"),
            Decision::Allowed { by: StatementRef { policy: 0, statement: 0, sid: Some("a".into()) } }
        );
    }

    #[test]
    fn policy_strings_are_parsed_and_bad_shapes_named() {
        let text =
            json!(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"iot:Connect","Resource":"*"}]}"#);
        assert_eq!(parse(&text).unwrap().statements.len(), 1);
        assert!(
            parse(&json!({"Statement": [{"Effect": "allow", "Action": "x", "Resource": "*"}]}))
                .unwrap_err()
                .contains("Effect")
        );
        assert!(parse(&json!({"Statement": [{"Effect": "Allow", "Resource": "*"}]})).unwrap_err().contains("Action"));
        assert!(parse(&json!({"Version": "2012-10-17"})).unwrap_err().contains("Statement"));
    }

    #[test]
    fn glob_matches() {
        assert!(glob("*", ""));
        assert!(glob("a*c", "abbbc"));
        assert!(glob("a*c*e", "axxcxxe"));
        assert!(!glob("a*c", "abd"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(glob("*", "*b"), "a wildcard facing a literal `*`");
        assert!(glob("a*", "a*foo"));
    }

    /// The reference: a plain recursive matcher, obviously right and exponential.
    fn reference(p: &[char], t: &[char]) -> bool {
        match (p.first(), t.first()) {
            (None, _) => t.is_empty(),
            (Some('*'), _) => reference(&p[1..], t) || (!t.is_empty() && reference(p, &t[1..])),
            (Some(_), None) => false,
            (Some('?'), Some(_)) => reference(&p[1..], &t[1..]),
            (Some(a), Some(b)) => a == b && reference(&p[1..], &t[1..]),
        }
    }

    /// Every pattern and text of up to 5 characters over `a b * ?` agrees with the reference.
    #[test]
    fn glob_agrees_with_the_reference_exhaustively() {
        let alphabet = ['a', 'b', '*', '?'];
        let all = |n: usize| -> Vec<Vec<char>> {
            let mut out = vec![vec![]];
            let mut level = vec![vec![]];
            for _ in 0..n {
                level = level
                    .iter()
                    .flat_map(|w: &Vec<char>| alphabet.iter().map(move |c| [w.clone(), vec![*c]].concat()))
                    .collect();
                out.extend(level.clone());
            }
            out
        };
        let words = all(5);
        for p in &words {
            for t in words.iter().filter(|t| t.len() <= 4) {
                let (ps, ts): (String, String) = (p.iter().collect(), t.iter().collect());
                assert_eq!(glob(&ps, &ts), reference(p, t), "glob({ps:?}, {ts:?})");
            }
        }
    }
}
