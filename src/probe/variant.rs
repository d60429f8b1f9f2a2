//! Variant ids as a typed enum: diagnosis rules match on these, so a renamed variant is a compile
//! error, not a rule that silently stops firing. They serialise to the strings of `--format json`.

use super::outcome::Stage;
use crate::auth::event::Transport;
use serde::Serialize;

/// What an attempt changes from the documented baseline.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Variant {
    Baseline,
    /// The documented attempt, run beside a device baseline that deviates from it.
    Documented,
    SniNone,
    SniIp,
    SniOther,
    AlpnNone,
    AlpnX509,
    AlpnHttp,
    AlpnMqtt,
    HostMissing,
    HostOther,
    HostPort,
    #[serde(rename = "port-8883")]
    Port8883,
    #[serde(rename = "port-8443")]
    Port8443,
    InUsername,
    InQuery,
    /// The baseline with another client ID: splits a policy that pins iot:Connect to one client ID.
    ClientIdOther,
    TokenKeyToken,
    TokenKeyCase,
    /// The token under the describe-authorizer `tokenKeyName` (follow-up).
    TokenKeyDescribed,
    SignatureRaw,
    SignatureMissing,
    SignatureWrongName,
    SignatureOtherValue,
    AuthorizerOmitted,
    AuthorizerCase,
    /// The authorizer name exactly as describe-authorizer prints it (follow-up).
    AuthorizerDescribed,
    SdkMetrics,
    SecondQuestionMark,
    Mqtt5,
    Mqtt311,
    /// MQTT 5 with an Authentication Method property (enhanced authentication, e.g. SCRAM), which
    /// IoT Core does not support.
    #[serde(rename = "mqtt5-enhanced-auth")]
    Mqtt5EnhancedAuth,
    /// The baseline over IPv6 (`--family both`; the baseline goes over IPv4).
    Ipv6,
    /// A browser's upgrade with the other subprotocol browser clients offer (`mqtt` ↔ `mqttv3.1`).
    WsProtocolOther,
    /// A browser's upgrade to `//mqtt` (a page's `wss://host//mqtt` URL).
    PathDoubleSlash,
    /// A browser's upgrade from another page's `Origin`.
    OriginOther,
}

impl Variant {
    pub fn as_str(self) -> String {
        serde_json::to_value(self).ok().and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default()
    }

    /// The stage this variant changes: an attempt that stopped earlier never tested it.
    pub fn varies(self, transport: Transport) -> Stage {
        use Variant::*;
        match self {
            Documented | Ipv6 => Stage::Resolve,
            WsProtocolOther | PathDoubleSlash | OriginOther => Stage::Upgrade,
            Port8883 | Port8443 => Stage::Tcp,
            SniNone | SniIp | SniOther | AlpnNone | AlpnX509 | AlpnHttp | AlpnMqtt => Stage::Tls,
            HostMissing | HostOther | HostPort if transport == Transport::Wss => Stage::Upgrade,
            _ => credential_stage(transport),
        }
    }

    /// Whether the variant changes only the credentials (or how they travel), so that its outcome
    /// speaks about the authorizer rather than about TLS or the network.
    pub fn is_credential(self) -> bool {
        self.varies(Transport::Mqtt) == Stage::Mqtt
    }
}

/// Where a transport's credentials are first read: the CONNECT (mqtt), the upgrade request (wss),
/// the POST (https).
pub(crate) fn credential_stage(t: Transport) -> Stage {
    match t {
        Transport::Mqtt => Stage::Mqtt,
        Transport::Wss => Stage::Upgrade,
        Transport::Https => Stage::Http,
    }
}

impl std::fmt::Display for Variant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_keep_their_wire_names() {
        assert_eq!(Variant::Port8883.as_str(), "port-8883");
        assert_eq!(Variant::SecondQuestionMark.as_str(), "second-question-mark");
        assert_eq!(Variant::Mqtt5.as_str(), "mqtt5");
        assert_eq!(Variant::Mqtt311.as_str(), "mqtt311");
        assert_eq!(Variant::TokenKeyToken.as_str(), "token-key-token");
    }

    #[test]
    fn stages_varied() {
        assert_eq!(Variant::SniNone.varies(Transport::Https), Stage::Tls);
        assert_eq!(Variant::HostMissing.varies(Transport::Https), Stage::Http);
        assert_eq!(Variant::HostMissing.varies(Transport::Wss), Stage::Upgrade);
        assert_eq!(Variant::TokenKeyCase.varies(Transport::Wss), Stage::Upgrade);
        assert!(Variant::SignatureRaw.is_credential());
        assert!(!Variant::AlpnNone.is_credential());
        assert!(!Variant::WsProtocolOther.is_credential() && !Variant::OriginOther.is_credential());
        assert_eq!(Variant::PathDoubleSlash.as_str(), "path-double-slash");
    }
}
