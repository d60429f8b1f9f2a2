//! Evaluation of the IoT policy documents an authorizer returns (spec §6).
//!
//! Default deny; an Allow grants; an explicit Deny beats any Allow. In resources `*` matches any run of
//! characters (including `/`), `?` exactly one; MQTT `+` and `#` are literal. `${iot:ClientId}` is
//! substituted. Actions compare case-insensitively and may use `*` (`iot:*`).

use serde::Serialize;
use serde_json::Value;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Effect {
    Allow,
    Deny,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Statement {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    pub effect: Effect,
    pub actions: Vec<String>,
    pub resources: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Policy {
    pub statements: Vec<Statement>,
}

/// Which statement decided, by position (0-based) in the list of policies and in the policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatementRef {
    pub policy: usize,
    pub statement: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum Decision {
    Allowed { by: StatementRef },
    ExplicitDeny { by: StatementRef },
    NotAllowed,
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
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
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
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

/// Builds the resource ARNs of spec §6 for one region and account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Arns {
    pub region: String,
    pub account: String,
}

impl Arns {
    fn arn(&self, kind: &str, name: &str) -> String {
        format!("arn:aws:iot:{}:{}:{kind}/{name}", self.region, self.account)
    }
    pub fn client(&self, client_id: &str) -> String {
        self.arn("client", client_id)
    }
    pub fn topic(&self, topic: &str) -> String {
        self.arn("topic", topic)
    }
    pub fn topic_filter(&self, filter: &str) -> String {
        self.arn("topicfilter", filter)
    }
}

/// A policy allowing every IoT action on every resource.
pub fn allow_all() -> Value {
    serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [{ "Action": "iot:*", "Effect": "Allow", "Resource": "*" }]
    })
}
