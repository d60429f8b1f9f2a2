//! What probe and emulator both speak on the wire and neither owns: TLS alert names ([`alert`]).

pub mod alert;
