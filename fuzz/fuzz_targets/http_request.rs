//! The emulator's HTTP request head parser and the checks made on it (Content-Length, credentials).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some(req)) = authprobe::fuzzing::parse_head(data) {
        let _ = authprobe::fuzzing::content_length(&req);
        let q = req.query.clone().unwrap_or_default();
        let params = authprobe::auth::credentials::parse_query(&q, true);
        let _ = params.len();
    }
});
