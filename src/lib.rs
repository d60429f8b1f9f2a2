//! authprobe: find where and why AWS IoT Core custom-authorizer connections fail.
//!
//! Map of the crate, in layers: each module imports only from the layers below it (checked by
//! `tests/it/shape.rs`; docs/library.md has the table).
//! - [`secret`]: the [`secret::Secret`] type (redacted whatever prints it), redaction of secrets inside
//!   text, escaping of untrusted text for logs.
//! - `input`: files and standard input read with a size limit per kind of input.
//! - [`auth`]: the custom-auth rules shared by emulator and probe — credential placement, token
//!   signatures, the authorizer event and response, policy evaluation and ARNs, the Lambda invoke
//!   permission, the AWS documents a user hands over.
//! - [`wire`]: what both speak on the wire and neither owns: TLS alerts, the MQTT channel, CONNECT
//!   parsing and typed CONNACK codes.
//! - [`probe`]: crafted attempts stage by stage and their classification (docs/outcomes.md), the
//!   variant matrix. [`emulator`]: a local IoT Core custom-auth front door. Neither imports the other.
//! - [`diagnosis`]: the cause catalogue (docs/causes.md), local checks, findings and follow-ups.
//! - [`report`]: the probe's report and its text renderer (JSON is its `Serialize`);
//!   [`inspect`]: what a device's packet capture shows.
//! - [`investigate`]: one probe run — local checks, attempts, follow-ups, diagnosis, report.
//! - `demo`: the emulator probed as three devices (`authprobe demo`).
//! - [`cli`]: command-line flags turned into validated settings; the binary calls [`cli::main`].

#![warn(missing_docs)]

pub mod auth;
pub mod cli;
pub(crate) mod demo;
pub mod diagnosis;
pub mod emulator;
pub(crate) mod input;
pub mod inspect;
pub mod investigate;
pub mod probe;
pub mod report;
pub mod secret;
pub mod storm;
pub mod wire;

/// The parsers the fuzz targets (`fuzz/`) drive, which are not otherwise part of the library's API.
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::emulator::fuzzing::{content_length, parse_head};
    pub use crate::probe::fuzzing::{Observation, TlsError, classify, exchange, parse_response_head, websocket_config};
}
