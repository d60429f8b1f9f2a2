//! Test areas. `common` starts the in-process emulator and holds the independent clients.

mod browser;
pub mod common;
mod device_input;
mod diagnosis_corpus;
mod echo;
mod emulator_accept;
mod emulator_event;
mod emulator_reject;
mod emulator_robust;
mod emulator_session;
mod emulator_setup;
mod fleet;
mod hostile;
mod hostile_inputs;
mod inspect;
mod lambda_runtime;
mod network;
mod pinned;
mod probe_cli;
mod probe_emulator;
mod probe_matrix;
mod probe_mosquitto;
mod probe_servers;
mod readme;
mod secrets;
mod shape;
mod toolkit;
