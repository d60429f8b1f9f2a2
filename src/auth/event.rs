//! The event IoT Core sends the authorizer function (docs/custom-auth.md §4), built the same way for every transport.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde::Serialize;
use std::collections::BTreeMap;

/// The transports of docs/custom-auth.md §1.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, serde::Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// MQTT over TLS with ALPN `mqtt`.
    Mqtt,
    /// MQTT over WebSockets (`GET /mqtt` upgrade).
    Wss,
    /// HTTPS publish (`POST /topics/<topic>`).
    Https,
}

impl Transport {
    /// The three transports, in the order reports list them.
    pub const ALL: [Self; 3] = [Self::Mqtt, Self::Wss, Self::Https];

    /// `mqtt`, `wss` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mqtt => "mqtt",
            Self::Wss => "wss",
            Self::Https => "https",
        }
    }

    /// The `protocols` list of the event.
    pub fn protocols(self) -> Vec<&'static str> {
        match self {
            Self::Mqtt => vec!["tls", "mqtt"],
            Self::Wss => vec!["tls", "http", "mqtt"],
            Self::Https => vec!["tls", "http"],
        }
    }
}

impl std::fmt::Display for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a connection carried, as the event reports it.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The SNI the client sent.
    pub server_name: Option<String>,
    /// Request headers in arrival order (wss, https).
    pub headers: Vec<(String, String)>,
    /// The URL query without its `?`, when the URL had one (wss, https).
    pub query: Option<String>,
    /// The CONNECT packet (mqtt, wss), when one arrived.
    pub connect: Option<ConnectInfo>,
}

/// The parts of an MQTT CONNECT the event carries.
#[derive(Clone, Default)]
pub struct ConnectInfo {
    /// The CONNECT username.
    pub username: Option<String>,
    /// A secret, which may be binary: `Debug` shows its length only.
    pub password: Option<Vec<u8>>,
    /// The CONNECT client ID.
    pub client_id: String,
}

impl std::fmt::Debug for ConnectInfo {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectInfo")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|p| format!("<redacted len={}>", p.len())))
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// The authorizer function's input.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Event {
    /// The token, as the device sent it.
    pub token: String,
    /// Whether IoT Core verified the token's signature.
    pub signature_verified: bool,
    /// The protocols of the connection (`tls`, `http`, `mqtt`).
    pub protocols: Vec<&'static str>,
    /// What each protocol carried.
    pub protocol_data: ProtocolData,
    /// The connection's id.
    pub connection_metadata: ConnectionMetadata,
}

/// The `protocolData` of the event.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ProtocolData {
    /// The TLS part: the SNI.
    pub tls: TlsData,
    /// The HTTP part (wss, https): headers and query.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http: Option<HttpData>,
    /// The MQTT part (mqtt, wss): username, password, client ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt: Option<MqttData>,
}

/// The TLS part of the event.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TlsData {
    /// The SNI the client sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_name: Option<String>,
}

/// The HTTP part of the event.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct HttpData {
    /// The request headers, by name.
    pub headers: BTreeMap<String, String>,
    /// `?name=value&...` as sent, or empty when the URL had no query.
    pub query_string: String,
}

/// The MQTT part of the event.
#[derive(Clone, Debug, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct MqttData {
    /// The CONNECT username.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// Base64 of the CONNECT password bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Present only when the device sent a client ID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// The `connectionMetadata` of the event.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct ConnectionMetadata {
    /// The connection's UUID.
    pub id: String,
}

impl Event {
    /// Builds the event for one connection attempt.
    pub fn build(transport: Transport, token: &str, signature_verified: bool, seen: &Observed, id: &str) -> Self {
        let http = (transport != Transport::Mqtt).then(|| HttpData {
            headers: seen.headers.iter().cloned().collect(),
            query_string: seen.query.as_ref().map(|q| format!("?{q}")).unwrap_or_default(),
        });
        let mqtt = match (transport, &seen.connect) {
            (Transport::Https, _) | (_, None) => None,
            (_, Some(c)) => Some(MqttData {
                username: c.username.clone(),
                password: c.password.as_ref().map(|p| STANDARD.encode(p)),
                client_id: (!c.client_id.is_empty()).then(|| c.client_id.clone()),
            }),
        };
        Self {
            token: token.to_owned(),
            signature_verified,
            protocols: transport.protocols(),
            protocol_data: ProtocolData { tls: TlsData { server_name: seen.server_name.clone() }, http, mqtt },
            connection_metadata: ConnectionMetadata { id: id.to_owned() },
        }
    }
}

/// A random (version 4) UUID, as IoT Core gives each connection.
pub fn new_uuid() -> String {
    let mut b = [0u8; 16];
    // SystemRandom only fails when the OS has no randomness; a zero UUID is still well-formed then.
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuid_has_version_and_variant() {
        let id = new_uuid();
        assert_eq!(id.len(), 36);
        assert_eq!(&id[14..15], "4");
        assert!(matches!(&id[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(id, new_uuid());
    }

    #[test]
    fn mqtt_event_has_no_http_and_omits_absent_client_id() {
        let seen = Observed {
            server_name: Some("e".into()),
            connect: Some(ConnectInfo {
                username: Some("u?token=t".into()),
                password: Some(b"pw".to_vec()),
                client_id: String::new(),
            }),
            ..Observed::default()
        };
        let v = serde_json::to_value(Event::build(Transport::Mqtt, "t", false, &seen, "id")).unwrap();
        assert_eq!(v["protocols"], serde_json::json!(["tls", "mqtt"]));
        assert!(v["protocolData"].get("http").is_none());
        assert_eq!(v["protocolData"]["mqtt"]["password"], "cHc=");
        assert!(v["protocolData"]["mqtt"].get("clientId").is_none());
    }
}
