//! What probe and emulator both speak on the wire and neither owns: TLS alert names ([`alert`]) and
//! the MQTT channel over TLS or WebSocket ([`mqtt`]).

pub mod alert;
pub mod mqtt;
