//! A storm as validated: the devices, where to connect, the reconnect policy, the end and the rate.

use super::policy::Policy;
use crate::auth::event::Transport;
use crate::probe::plan::{MqttVersion, Trust};
use crate::secret::Secret;
use std::net::SocketAddr;
use std::time::Duration;

/// One simulated device.
#[derive(Clone, Debug)]
pub struct Identity {
    /// Its index among all the storm's devices (before sharding).
    pub index: usize,
    /// Its MQTT client ID.
    pub client_id: String,
    /// Its token.
    pub token: Secret,
    /// Its token's signature (base64), when the authorizer signs.
    pub signature: Option<Secret>,
    /// The whole CONNECT username instead of the built one.
    pub username_raw: Option<Secret>,
    /// Its CONNECT password.
    pub password: Option<Secret>,
}

/// Where the credentials go on wss (MQTT over TLS: always the username).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// In upgrade request headers (documented).
    Header,
    /// In the upgrade URL's query string.
    Query,
    /// In the CONNECT username.
    Username,
}

/// A storm, validated.
#[derive(Debug)]
pub struct StormPlan {
    /// The endpoint as named (SNI and Host).
    pub server_name: String,
    /// Where to connect.
    pub addrs: Vec<SocketAddr>,
    /// `mqtt` or `wss`.
    pub transport: Transport,
    /// The CONNECT's MQTT version.
    pub mqtt_version: MqttVersion,
    /// The authorizer name sent (none: the default authorizer).
    pub authorizer: Option<String>,
    /// The authorizer's token key name.
    pub token_key_name: String,
    /// Where the credentials go on wss.
    pub placement: Placement,
    /// This shard's devices.
    pub identities: Vec<Identity>,
    /// All devices of the storm (every shard).
    pub devices_total: usize,
    /// The reconnect policy.
    pub policy: Policy,
    /// The devices' first attempts are spread evenly over this.
    pub ramp: Duration,
    /// How long a connected device stays (`None`: until the storm ends).
    pub hold: Option<Duration>,
    /// The storm ends when this share (percent) of this shard's devices has connected…
    pub until_connected: f64,
    /// …or after this long.
    pub duration: Duration,
    /// Connects per second at most (this shard's share).
    pub max_rate: Option<f64>,
    /// Each attempt's deadline (TCP to CONNACK).
    pub timeout: Duration,
    /// The CONNECT keep-alive (s); held connections ping within it.
    pub keep_alive: u16,
    /// How the server certificate is checked.
    pub trust: Trust,
    /// The jitter's seed.
    pub seed: u64,
    /// `(k, n)`: this is the k-th of n shards.
    pub shard: (u32, u32),
}
