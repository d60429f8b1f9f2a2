//! `authprobe inspect` on any bytes: a capture that is not one is refused, a broken one is read as
//! far as it goes, and nothing panics.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(report) = authprobe::inspect::inspect("fuzz", data) {
        let mut out = Vec::new();
        let _ = authprobe::inspect::write_text(&report, &mut out);
        let _ = serde_json::to_string(&report);
    }
});
