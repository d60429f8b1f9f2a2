//! What probe and emulator both speak on the wire and neither owns: TLS alert names ([`alert`]), the
//! MQTT channel over TLS or WebSocket and the CONNECT/CONNACK packets ([`mqtt`]).

pub mod alert;
pub mod mqtt;

/// The first 16 bytes of `bytes` in hex, for saying what arrived instead of what was expected.
pub fn hex_prefix(bytes: &[u8]) -> String {
    bytes.iter().take(16).map(|b| format!("{b:02x}")).collect::<Vec<_>>().join(" ")
}
