//! The CONNECT reader (the emulator's) on any bytes: never panics, refuses or waits, and never waits on a
//! buffer that already holds more than the largest packet allowed.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;

const MAX: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let mut buf = BytesMut::from(data);
    match authprobe::wire::mqtt::parse_connect(&mut buf, MAX) {
        Ok(None) => assert!(data.len() <= MAX + 5, "waiting for more with {} bytes buffered", data.len()),
        Ok(Some(c)) => assert!(c.version == 4 || c.version == 5),
        Err(_) => {}
    }
    // Every prefix is a prefix: a fixed header that parses keeps parsing as bytes arrive.
    if let Ok(Some((len, _))) = authprobe::wire::mqtt::fixed_header(data) {
        assert!((2..=5).contains(&len));
    }
});
