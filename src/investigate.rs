//! One probe run, start to finish: the local checks on the user's AWS documents, the attempts, the
//! follow-ups the diagnosis asks for, the diagnosis, and the report. The probe sends and classifies,
//! the diagnosis reads, the report renders; this is where they meet.

use crate::diagnosis::local::LocalCheck;
use crate::diagnosis::{self, Context};
use crate::probe::{self, AttemptReport, AttemptSpec, ProbePlan, Progress, Quiet, Schedule};
use crate::report::Report;

/// A run of `plan`, with its local checks done (before anything is sent).
pub struct Investigation<'a> {
    /// The plan run.
    pub plan: &'a ProbePlan,
    /// Its local checks.
    pub local: Vec<LocalCheck>,
}

impl<'a> Investigation<'a> {
    /// The run of `plan`, with its local checks done.
    pub fn new(plan: &'a ProbePlan) -> Self {
        Self { plan, local: diagnosis::local::for_plan(plan) }
    }

    /// What to warn about before anything is sent: what the plan's settings imply and the failed
    /// local checks.
    pub fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.plan.token_from_username {
            out.push(format!(
                "the username carries its own token under `{}`: the diagnosis judges that one, not --token's",
                self.plan.credentials.token_key_name
            ));
        }
        out.extend(self.local.iter().filter(|c| !c.passed).map(|c| c.detail.clone()));
        out
    }

    /// Runs `specs` as scheduled, then the follow-ups the diagnosis asks for (unless the plan turns
    /// them off); the report keeps their order.
    pub async fn run(self, specs: &[AttemptSpec], schedule: Schedule, progress: &dyn Progress) -> Report {
        let plan = self.plan;
        let started = unix_now();
        let mut attempts = probe::run_attempts(plan, specs, schedule, progress).await;
        if plan.matrix.follow_up {
            let more = diagnosis::followup::plan(plan, &self.local, &attempts);
            if !more.is_empty() {
                // The baseline used the device's client ID moments ago: space every connect that reuses it.
                tokio::time::sleep(plan.matrix.follow_up_spacing).await;
                let spaced = Schedule { parallel: 1, spacing: Some(plan.matrix.follow_up_spacing) };
                attempts.extend(probe::run_attempts(plan, &more, spaced, progress).await);
            }
        }
        self.report(attempts, (started, unix_now()))
    }

    /// The report of `attempts`, diagnosed; `window` is when they ran (Unix seconds).
    pub fn report(self, attempts: Vec<AttemptReport>, window: (u64, u64)) -> Report {
        let findings =
            diagnosis::diagnose(&Context { attempts: &attempts, plan: self.plan, local: &self.local, window });
        let warnings = self.warnings();
        Report::new(self.plan, warnings, self.local, attempts, findings)
    }
}

/// Runs `specs` one after another and gathers the report.
pub async fn run(plan: &ProbePlan, specs: &[AttemptSpec]) -> Report {
    run_with(plan, specs, Schedule::SEQUENTIAL, &Quiet).await
}

/// Runs `specs` as scheduled, with the follow-ups and the diagnosis, into the report.
pub async fn run_with(plan: &ProbePlan, specs: &[AttemptSpec], schedule: Schedule, progress: &dyn Progress) -> Report {
    Investigation::new(plan).run(specs, schedule, progress).await
}

/// Now, in Unix seconds.
pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
