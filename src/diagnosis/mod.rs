//! Diagnosis: every attempt, every local check and what the user told us, read together into
//! findings from the cause catalogue (docs/causes.md).
//!
//! - `browser`: what a page must change (`--client-type browser`): subprotocol, URL path, Origin, CORS.
//! - `cause`: the catalogue's ids, words and troubleshooting steps.
//! - `finding`: what a finding is (id, kind, confidence, evidence) and what the rules read.
//! - [`local`]: checks of the device's credentials against the AWS documents, before anything is sent.
//! - `facts`: what each attempt shows, reduced to what the rules need.
//! - `differential`: for each credential cause, the outcome each attempt would show; what the
//!   observations leave is the finding, `confirmed` only when one cause is left.
//! - `deviation`: the device's own attempt fails where the documented one connects.
//! - `explain`: each cause in one sentence, with its fix.
//! - `network`: findings for attempts that never reached the credentials.
//! - `risks`: what would break a working device, and post-connect policy findings.
//! - `followup`: the attempts that would split the causes still left.
//! - `next`: the exact next commands.

pub(crate) mod browser;
pub(crate) mod cause;
pub(crate) mod deviation;
pub(crate) mod differential;
pub(crate) mod explain;
pub(crate) mod facts;
pub(crate) mod finding;
pub(crate) mod followup;
pub mod local;
pub(crate) mod network;
pub(crate) mod next;
pub(crate) mod risks;

pub use cause::Cause;
pub use finding::{Confidence, Context, Evidence, Finding, FindingId, FindingKind, See};

/// Every finding, ordered: causes (confirmed, then likely, then possible), then risks.
pub fn diagnose(cx: &Context<'_>) -> Vec<Finding> {
    let (mut out, explained) = browser::findings(cx);
    // What the browser findings explain (a page's refused subprotocol, a publish stopped at its CORS
    // preflight) says nothing about the authorizer: the other rules read the rest.
    let rest: Vec<crate::probe::AttemptReport>;
    let cx_all = cx;
    let cx = &if explained.is_empty() {
        Context { ..*cx }
    } else {
        rest = cx
            .attempts
            .iter()
            .filter(|a| !explained.contains(&a.id) && a.outcome.kind != crate::probe::outcome::Kind::PreflightRefused)
            .cloned()
            .collect();
        Context { attempts: &rest, ..*cx }
    };
    let deviations = deviation::findings(cx);
    let deviated = !deviations.is_empty();
    out.extend(deviations);
    if !deviated {
        out.extend(network::findings(cx));
        out.extend(differential::findings(cx));
    }
    out.extend(risks::findings(cx));
    let cx = cx_all;
    for f in &mut out {
        f.next = next::commands(f, cx);
    }
    out.sort_by_key(|f| (f.kind == FindingKind::Risk, f.confidence, f.kind));
    out
}
