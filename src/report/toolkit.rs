//! Text of the toolkit commands (`sign`, `sign --verify`, `check-response`, `check-permission`): what
//! they found, in the words a person reads. JSON is each result's `Serialize`.

use crate::auth::permission::{AuthorizerArn, PermissionReport};
use crate::auth::policy::Decision;
use crate::auth::response::ResponseCheck;
use crate::auth::signature::{Forensic, PublicKey, Verdict};
use std::io::{self, Write};

/// A signature `sign` made: as is, and percent-encoded for a username or query.
pub(crate) fn sign(out: &mut dyn Write, signature: &str, encoded: &str) -> io::Result<()> {
    writeln!(out, "signature (base64):                         {signature}")?;
    writeln!(out, "percent-encoded (for a username or query):  {encoded}")
}

/// Whether a signature verifies over the token; when it does not, what it verifies over instead.
pub(crate) fn verify(
    out: &mut dyn Write,
    verdict: &Verdict,
    forensic: Option<&Forensic>,
    keys: &[PublicKey],
) -> io::Result<()> {
    if let Some(f) = forensic {
        return writeln!(
            out,
            "NOT verified over the token: it is an {} signature over {} (key `{}`); IoT Core verifies RSA PKCS#1 v1.5 with SHA-256 over the token bytes only",
            f.scheme, f.signed, f.key
        );
    }
    match verdict {
        Verdict::Verified { key } => writeln!(out, "verified: key `{key}` signed this token"),
        Verdict::NotBase64 => writeln!(out, "NOT verified: the signature is not standard base64"),
        _ => writeln!(
            out,
            "NOT verified by any of {} key(s): {}",
            keys.len(),
            keys.iter().map(|k| k.name.as_str()).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// What IoT Core makes of an authorizer's response (`file` names it), and what its policies allow.
pub(crate) fn check_response(out: &mut dyn Write, file: &str, r: &ResponseCheck) -> io::Result<()> {
    match (r.valid, r.is_authenticated) {
        (true, Some(true)) => writeln!(out, "{file}: valid response, isAuthenticated true")?,
        (true, _) => writeln!(out, "{file}: valid response, but isAuthenticated is false: the connection is refused")?,
        (false, _) => {
            writeln!(out, "{file}: INVALID response — IoT Core fails the connection:")?;
            for v in &r.violations {
                writeln!(out, "  ✗ {}: {}", v.rule, v.message)?;
            }
        }
    }
    if !r.actions.is_empty() {
        let source = match r.arns_from {
            "flags" => "from --region/--account",
            "policy" => "from the policy's ARNs",
            _ => "unknown: pass --region and --account",
        };
        writeln!(out, "resources in region {}, account {} ({source}):", r.region, r.account)?;
        for a in &r.actions {
            let d = match &a.decision {
                Decision::Allowed { by } => {
                    format!("allowed       by policy {} statement {}{}", by.policy, by.statement, sid(&by.sid))
                }
                Decision::ExplicitDeny { by } => {
                    format!("EXPLICIT DENY by policy {} statement {}{}", by.policy, by.statement, sid(&by.sid))
                }
                Decision::NotAllowed => "NOT ALLOWED   (no Allow statement matches)".to_owned(),
            };
            writeln!(out, "  {:<14} {}  {d}", a.action, a.resource)?;
        }
    }
    writeln!(out, "{}", if r.ok { "result: ok" } else { "result: NOT ok" })
}

fn sid(s: &Option<String>) -> String {
    s.as_ref().map(|s| format!(" (Sid {s})")).unwrap_or_default()
}

/// Whether IoT Core may invoke the authorizer's function, and the fix when it may not.
pub(crate) fn check_permission(out: &mut dyn Write, r: &PermissionReport, arn: &AuthorizerArn) -> io::Result<()> {
    if r.invoke_permitted {
        writeln!(
            out,
            "IoT Core may invoke the function for {} (statement {}).",
            r.authorizer_arn,
            r.permitted_by.as_deref().unwrap_or("?")
        )?;
    } else if let Some(d) = &r.denied_by {
        writeln!(out, "IoT Core may NOT invoke the function for {}: statement {d} denies it.", r.authorizer_arn)?;
    } else {
        writeln!(out, "IoT Core may NOT invoke the function for {}: no statement allows it.", r.authorizer_arn)?;
        writeln!(
            out,
            "  needed: principal iot.amazonaws.com, action lambda:InvokeFunction, AWS:SourceArn {}, AWS:SourceAccount {}",
            arn.arn, arn.account
        )?;
        writeln!(
            out,
            "  fix:    aws lambda add-permission --function-name <fn> --principal iot.amazonaws.com --action lambda:InvokeFunction \\"
        )?;
        writeln!(
            out,
            "            --statement-id iot-{} --source-arn {} --source-account {}",
            arn.name, arn.arn, arn.account
        )?;
    }
    for s in &r.statements {
        for p in &s.problems {
            writeln!(out, "  statement {} ({}): {p}", s.sid.as_deref().unwrap_or("(no Sid)"), s.effect)?;
        }
    }
    for n in &r.notes {
        writeln!(out, "  note: {n}")?;
    }
    Ok(())
}
