//! What every connection of one running emulator shares: its configuration, TLS settings, the
//! authorizers' running functions, and the live sessions by client ID.

use super::config::EmulatorConfig;
use super::function::Functions;
use super::tls::ServerConfigs;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

/// Live sessions by client ID, each with the signal that ends it when another connection takes its
/// client ID over (IoT Core, like MQTT brokers, keeps one connection per client ID and drops the
/// older: "Connection is being terminated because of a duplicate client ID", MQTT 5 0x8E).
pub(crate) type Registry = std::sync::Mutex<std::collections::HashMap<String, (u64, tokio::sync::oneshot::Sender<()>)>>;

/// What every connection shares.
pub(crate) struct Ctx {
    pub(crate) config: EmulatorConfig,
    pub(crate) servers: ServerConfigs,
    /// The authorizers' functions as they run (handler workers, the invocation count).
    pub(crate) functions: Functions,
    /// Live MQTT sessions by client ID: a new connection with the same client ID takes over.
    pub(crate) sessions: Registry,
    /// When each client ID last connected, for `limits.connect_interval`.
    pub(crate) last_connect: Mutex<HashMap<String, Instant>>,
}

impl Ctx {
    pub(crate) fn new(config: EmulatorConfig, servers: ServerConfigs, functions: Functions) -> Self {
        Self { config, servers, functions, sessions: Registry::default(), last_connect: Mutex::default() }
    }
}
