//! authprobe: find where and why AWS IoT Core custom-authorizer connections fail.
//!
//! Map of the crate:
//! - [`auth`]: the custom-auth rules shared by emulator and probe — credential placement, token
//!   signatures, the authorizer event and response, policy evaluation, the Lambda invoke permission.
//! - [`emulator`]: a local IoT Core custom-auth front door (`authprobe emulate`).
//! - [`inspect`]: what a device's packet capture shows (`authprobe inspect`).
//! - [`probe`]: crafted attempts stage by stage, their classification, the variant matrix (`authprobe probe`).
//! - [`diagnosis`]: the cause catalogue, local checks, differential diagnosis and follow-ups.
//! - [`report`]: the probe's report and its text renderer (JSON is its `Serialize`).
//! - [`demo`]: the emulator probed as three devices (`authprobe demo`).
//! - [`secret`]: redaction of tokens, signatures and passwords.
//! - [`cli`]: command-line flags turned into validated settings; the binary calls [`cli::main`].

pub mod auth;
pub mod cli;
pub mod demo;
pub mod diagnosis;
pub mod emulator;
pub mod inspect;
pub mod probe;
pub mod report;
pub mod secret;
