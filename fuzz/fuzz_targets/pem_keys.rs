//! PEM keys as users hand them over: public keys for verification, private keys for signing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(k) = authprobe::auth::signature::PublicKey::from_pem("k", text) {
        let _ = k.verifies("token", b"sig");
    }
    if let Ok(k) = authprobe::auth::signature::SigningKey::from_pem(text) {
        let _ = k.sign("token");
    }
});
