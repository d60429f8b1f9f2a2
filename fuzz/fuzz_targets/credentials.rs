//! The username and query readers: any text splits, decodes and finds parameters without panicking,
//! and the username split keeps every byte.
#![no_main]

use authprobe::auth::credentials::{Sources, parse_query, split_username};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (user, query) = split_username(text);
    assert_eq!(user.len() + query.map_or(0, |q| q.len() + 1), text.len());
    for plus in [false, true] {
        let sources = Sources {
            headers: vec![("token".into(), text.into())],
            query: parse_query(text, plus),
            username: parse_query(query.unwrap_or_default(), plus),
        };
        for name in ["token", "x-amz-customauthorizer-name", "x-amz-customauthorizer-signature"] {
            let _ = sources.find(name);
        }
    }
});
