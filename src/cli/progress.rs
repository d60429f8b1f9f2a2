//! Live progress on a terminal: one spinner per running attempt.

use super::args::OutputArgs;
use std::io::IsTerminal as _;
use std::time::Duration;

/// One live line per running attempt, on a terminal only.
pub(crate) struct Bars {
    multi: indicatif::MultiProgress,
    running: std::sync::Mutex<Vec<(String, indicatif::ProgressBar)>>,
}

impl Bars {
    /// Progress lines on stderr when it is a terminal (whatever stdout is), unless `-q`.
    pub(crate) fn for_output(output: &OutputArgs) -> Option<Self> {
        (!output.quiet && std::io::stderr().is_terminal()).then(|| Self {
            multi: indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr()),
            running: std::sync::Mutex::new(Vec::new()),
        })
    }
}

impl Bars {
    /// Clears the live lines (on Ctrl-C, before the report).
    pub(crate) fn clear(&self) {
        let _ = self.multi.clear();
    }
}

impl crate::probe::Progress for Bars {
    fn started(&self, spec: &crate::probe::AttemptSpec) {
        let bar = self.multi.add(indicatif::ProgressBar::new_spinner());
        bar.set_message(format!("{:<28} {}", spec.id, spec.description));
        bar.enable_steady_tick(Duration::from_millis(120));
        if let Ok(mut r) = self.running.lock() {
            r.push((spec.id.clone(), bar));
        }
    }

    fn finished(&self, report: &crate::probe::AttemptReport) {
        if let Ok(mut r) = self.running.lock() {
            if let Some(i) = r.iter().position(|(id, _)| *id == report.id) {
                let (_, bar) = r.remove(i);
                bar.finish_and_clear();
                self.multi.remove(&bar);
            }
        }
    }
}
