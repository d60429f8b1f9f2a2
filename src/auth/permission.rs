//! May IoT Core invoke the authorizer's Lambda function? Reads the function's resource-based policy
//! (`aws lambda get-policy` output, whose `Policy` is a JSON string, or the bare policy) and checks it
//! against docs/custom-auth.md §5: principal `iot.amazonaws.com`, action `lambda:InvokeFunction`, and conditions
//! `AWS:SourceArn` = the authorizer ARN and `AWS:SourceAccount` = its account.

use super::policy::glob;
use serde::Serialize;
use serde_json::Value;

/// An authorizer ARN, `arn:aws:iot:<region>:<account>:authorizer/<name>`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct AuthorizerArn {
    /// The whole ARN.
    pub arn: String,
    /// Its region.
    pub region: String,
    /// Its account ID.
    pub account: String,
    /// The authorizer's name.
    pub name: String,
}

impl AuthorizerArn {
    /// Parses `arn:aws:iot:<region>:<account>:authorizer/<name>`.
    pub fn parse(arn: &str) -> Result<Self, String> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        match parts.as_slice() {
            ["arn", _partition, "iot", region, account, resource] if resource.starts_with("authorizer/") => Ok(Self {
                arn: arn.to_owned(),
                region: (*region).to_owned(),
                account: (*account).to_owned(),
                name: resource["authorizer/".len()..].to_owned(),
            }),
            _ => Err(format!("`{arn}` is not an authorizer ARN (arn:aws:iot:<region>:<account>:authorizer/<name>)")),
        }
    }
}

/// What one statement lacks for IoT Core to use it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct StatementCheck {
    /// The statement's `Sid`, if any.
    pub sid: Option<String>,
    /// `Allow` or `Deny`.
    pub effect: String,
    /// Empty when the statement lets IoT Core invoke the function for this authorizer.
    pub problems: Vec<String>,
}

/// The verdict on a function policy.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PermissionReport {
    /// The authorizer ARN checked against.
    pub authorizer_arn: String,
    /// IoT Core may invoke the function for this authorizer.
    pub invoke_permitted: bool,
    /// The statement that permits it, if any.
    pub permitted_by: Option<String>,
    /// A Deny statement that blocks it, if any.
    pub denied_by: Option<String>,
    /// Each statement of the resource policy, with what it allows.
    pub statements: Vec<StatementCheck>,
    /// Advice that does not change the verdict (e.g. missing conditions).
    pub notes: Vec<String>,
}

/// Reads `get-policy` output or a bare policy document.
pub fn read_policy(text: &str) -> Result<Value, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    match v.get("Policy") {
        Some(Value::String(inner)) => {
            serde_json::from_str(inner).map_err(|e| format!("`Policy` is not a JSON document: {e}"))
        }
        Some(other) if other.is_object() => Ok(other.clone()),
        Some(_) => Err("`Policy` must be a JSON string (as `aws lambda get-policy` prints it)".into()),
        None if v.get("Statement").is_some() => Ok(v),
        None => {
            Err("neither `aws lambda get-policy` output (with `Policy`) nor a policy document (with `Statement`)"
                .into())
        }
    }
}

fn strings(v: Option<&Value>) -> Vec<String> {
    match v {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(|x| x.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

/// Condition values for `key` (case-insensitive) under the operators that compare ARNs or strings.
fn condition(stmt: &Value, key: &str) -> Option<(String, Vec<String>)> {
    let conds = stmt.get("Condition")?.as_object()?;
    conds.iter().find_map(|(op, m)| {
        let m = m.as_object()?;
        m.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| (op.clone(), strings(Some(v))))
    })
}

fn condition_holds(op: &str, values: &[String], actual: &str) -> bool {
    let like = op.contains("Like");
    values.iter().any(|v| if like { glob(v, actual) } else { v == actual })
}

/// Checks the policy for `arn`.
pub fn check(policy: &Value, arn: &AuthorizerArn) -> PermissionReport {
    let statements: Vec<&Value> = match policy.get("Statement") {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(one @ Value::Object(_)) => vec![one],
        _ => Vec::new(),
    };
    let mut checks = Vec::new();
    let (mut permitted_by, mut denied_by, mut notes) = (None, None, Vec::new());
    for stmt in statements {
        let sid = stmt.get("Sid").and_then(Value::as_str).map(str::to_owned);
        let effect = stmt.get("Effect").and_then(Value::as_str).unwrap_or("").to_owned();
        let mut problems = Vec::new();
        let principals = match stmt.get("Principal") {
            Some(Value::String(s)) => vec![s.clone()],
            Some(p) => strings(p.get("Service")),
            None => Vec::new(),
        };
        if !principals.iter().any(|p| p == "iot.amazonaws.com" || p == "*") {
            problems.push(format!("principal is {principals:?}, not the service iot.amazonaws.com"));
        }
        let actions = strings(stmt.get("Action"));
        if !actions.iter().any(|a| glob(&a.to_ascii_lowercase(), "lambda:invokefunction")) {
            problems.push(format!("action is {actions:?}, not lambda:InvokeFunction"));
        }
        match condition(stmt, "AWS:SourceArn") {
            Some((op, values)) if !condition_holds(&op, &values, &arn.arn) => {
                problems.push(format!("condition {op} AWS:SourceArn is {values:?}, which does not match {}", arn.arn));
            }
            None if effect == "Allow" && problems.is_empty() => {
                notes.push(format!(
                    "statement {}: no AWS:SourceArn condition; any authorizer may invoke the function",
                    sid.as_deref().unwrap_or("-")
                ));
            }
            _ => {}
        }
        if let Some((op, values)) = condition(stmt, "AWS:SourceAccount") {
            if !condition_holds(&op, &values, &arn.account) {
                problems.push(format!("condition {op} AWS:SourceAccount is {values:?}, not {}", arn.account));
            }
        }
        if problems.is_empty() {
            let name = sid.clone().unwrap_or_else(|| "(no Sid)".into());
            match effect.as_str() {
                "Deny" => denied_by = denied_by.or(Some(name)),
                "Allow" => permitted_by = permitted_by.or(Some(name)),
                other => problems.push(format!("Effect is {other:?}")),
            }
        }
        checks.push(StatementCheck { sid, effect, problems });
    }
    PermissionReport {
        authorizer_arn: arn.arn.clone(),
        invoke_permitted: permitted_by.is_some() && denied_by.is_none(),
        permitted_by,
        denied_by,
        statements: checks,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ARN: &str = "arn:aws:iot:eu-west-1:111122223333:authorizer/MyAuthorizer";

    fn statement(principal: &str, action: &str, source_arn: &str, account: &str) -> Value {
        json!({"Sid": "iot", "Effect": "Allow", "Principal": {"Service": principal}, "Action": action,
               "Resource": "arn:aws:lambda:eu-west-1:111122223333:function:auth",
               "Condition": {"ArnLike": {"AWS:SourceArn": source_arn}, "StringEquals": {"AWS:SourceAccount": account}}})
    }

    fn verdict(stmt: Value) -> PermissionReport {
        let get_policy =
            json!({"Policy": json!({"Version": "2012-10-17", "Statement": [stmt]}).to_string(), "RevisionId": "r"});
        check(&read_policy(&get_policy.to_string()).unwrap(), &AuthorizerArn::parse(ARN).unwrap())
    }

    #[test]
    fn a_correct_statement_permits() {
        let r = verdict(statement("iot.amazonaws.com", "lambda:InvokeFunction", ARN, "111122223333"));
        assert!(r.invoke_permitted, "{r:?}");
        assert_eq!(r.permitted_by.as_deref(), Some("iot"));
        let r = verdict(statement(
            "iot.amazonaws.com",
            "lambda:*",
            "arn:aws:iot:eu-west-1:111122223333:authorizer/*",
            "111122223333",
        ));
        assert!(r.invoke_permitted);
    }

    #[test]
    fn each_wrong_part_is_named() {
        for (stmt, needle) in [
            (statement("lambda.amazonaws.com", "lambda:InvokeFunction", ARN, "111122223333"), "principal"),
            (statement("iot.amazonaws.com", "lambda:GetFunction", ARN, "111122223333"), "action"),
            (
                statement(
                    "iot.amazonaws.com",
                    "lambda:InvokeFunction",
                    "arn:aws:iot:eu-west-1:111122223333:authorizer/Other",
                    "111122223333",
                ),
                "AWS:SourceArn",
            ),
            (statement("iot.amazonaws.com", "lambda:InvokeFunction", ARN, "999999999999"), "AWS:SourceAccount"),
        ] {
            let r = verdict(stmt);
            assert!(!r.invoke_permitted, "{needle}");
            assert!(
                r.statements[0].problems.iter().any(|p| p.contains(needle)),
                "{needle}: {:?}",
                r.statements[0].problems
            );
        }
    }

    #[test]
    fn inputs_are_read_or_refused_clearly() {
        assert!(read_policy("{\"Statement\": []}").is_ok());
        assert!(read_policy("{\"Policy\": 3}").unwrap_err().contains("JSON string"));
        assert!(read_policy("{}").unwrap_err().contains("get-policy"));
        assert!(AuthorizerArn::parse("arn:aws:iot:eu-west-1:1:thing/x").is_err());
    }
}
