//! The probe's reading of an upgrade or publish answer: the response head, then its classification.
#![no_main]

use authprobe::fuzzing::{Observation, classify};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(Some((status, headers, len))) = authprobe::fuzzing::parse_response_head(data) {
        assert!(len <= data.len());
        let body = data[len..].to_vec();
        let o = classify(&Observation::UpgradeResponse { status, headers: headers.clone(), body: body.clone() });
        let _ = serde_json::to_string(&o);
        let o = classify(&Observation::HttpResponse { status, headers, body });
        let _ = serde_json::to_string(&o);
    }
});
