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
    /// The account's CONNECTs, for `limits.connect_rate`.
    pub(crate) connect_bucket: Bucket,
}

/// A token bucket of one second's capacity: at most `rate` CONNECTs in any second, refilled
/// continuously (a burst of `rate`, then `rate` a second).
#[derive(Debug, Default)]
pub(crate) struct Bucket(Mutex<Option<(f64, Instant)>>);

impl Bucket {
    /// Takes one token if there is one.
    pub(crate) fn take(&self, rate: u32) -> bool {
        let Ok(mut b) = self.0.lock() else { return true };
        let now = Instant::now();
        let rate = f64::from(rate);
        let (tokens, then) = b.unwrap_or((rate, now));
        let tokens = (tokens + now.duration_since(then).as_secs_f64() * rate).min(rate);
        let (left, taken) = if tokens >= 1.0 { (tokens - 1.0, true) } else { (tokens, false) };
        *b = Some((left, now));
        taken
    }
}

impl Ctx {
    pub(crate) fn new(config: EmulatorConfig, servers: ServerConfigs, functions: Functions) -> Self {
        Self {
            config,
            servers,
            functions,
            sessions: Registry::default(),
            last_connect: Mutex::default(),
            connect_bucket: Bucket::default(),
        }
    }
}
