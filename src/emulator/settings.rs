//! Typed settings for the behaviours docs/custom-auth.md §7 leaves undocumented: the user picks what the emulator does.
//!
//! Each setting reads from and prints as a short word (`close`, `alert:unrecognized_name`,
//! `connack:0x87`, …) so the same spelling works in flags, the TOML config and the log.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub use crate::wire::alert::{ALERTS, Alert};
use crate::wire::mqtt::Code5;
pub use crate::wire::mqtt::Connack;

/// How a connection is refused during the TLS handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsReject {
    /// A fatal alert written before the ServerHello.
    Alert(Alert),
    /// FIN without a word.
    Close,
    /// RST.
    Reset,
    /// Complete the handshake while demanding a client certificate, as the X.509 path does; a client
    /// without one sees `certificate_required` (TLS 1.3) or a handshake failure (TLS 1.2).
    RequireClientCert,
    /// Complete the handshake (the default certificate), then close without reading a request: what
    /// a front door that refuses after TLS rather than during it shows.
    HandshakeThenClose,
}

/// What MQTT 3.1.1 clients see when authentication fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mqtt3Reject {
    /// Close without CONNACK (field reports; the default).
    Close,
    /// CONNACK with this return code (older docs: 5, not authorized).
    Connack(Connack),
}

/// What MQTT 5 clients see when authentication fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mqtt5Reject {
    /// CONNACK with this reason code (0x87 not authorized, the default; or 0x86 bad credentials).
    Connack(Connack),
    /// Close without CONNACK.
    Close,
}

/// What WebSocket clients see when authentication fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WssReject {
    /// Answer the upgrade with 101, then close after the CONNECT (field reports; the default).
    CloseAfterUpgrade,
    /// Refuse the upgrade itself with 403 when the upgrade request carries credentials.
    Forbidden,
}

/// What happens to bytes on the HTTP path (no ALPN) that are not HTTP, e.g. raw MQTT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NonHttp {
    /// `400` with `InvalidRequestException:` (the default).
    BadRequest,
    /// Close without an answer.
    Close,
}

/// How a CORS preflight (`OPTIONS` from a page, before an HTTPS publish with custom headers) is
/// answered. IoT Core's documents do not describe CORS on the data endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cors {
    /// No CORS headers: the preflight gets the answer any non-POST on `/topics/` gets (400), so a
    /// browser never sends the publish (the default: nothing documented allows it).
    None,
    /// The preflight gets 200 allowing the page's origin, `POST` and the headers it asked for, and
    /// the publish's answer allows the origin, so the page can read it.
    Allow,
}

/// What MQTT 3.1.1 clients see when a SUBSCRIBE is not allowed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Subscribe3Deny {
    /// SUBACK with return code 0x80 (the default).
    Failure,
    /// Close the connection.
    Close,
}

/// Every configurable refusal, with the defaults documented in docs/emulate.md.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RejectSettings {
    /// A ClientHello without SNI.
    pub no_sni: TlsReject,
    /// An SNI that is not an endpoint.
    pub unknown_sni: TlsReject,
    /// ALPN `x-amzn-mqtt-ca` (the X.509 path).
    pub x509: TlsReject,
    /// A refused MQTT 3.1.1 CONNECT.
    pub mqtt3: Mqtt3Reject,
    /// A refused MQTT 5 CONNECT.
    pub mqtt5: Mqtt5Reject,
    /// A refused WebSocket connection.
    pub wss: WssReject,
    /// Bytes that are not HTTP on the HTTP path.
    pub non_http: NonHttp,
    /// A SUBSCRIBE that MQTT 3.1.1 clients may not make.
    pub subscribe3: Subscribe3Deny,
    /// A CORS preflight before an HTTPS publish.
    pub cors: Cors,
}

impl Default for RejectSettings {
    fn default() -> Self {
        Self {
            no_sni: TlsReject::Alert(Alert::UNRECOGNIZED_NAME),
            unknown_sni: TlsReject::Alert(Alert::UNRECOGNIZED_NAME),
            x509: TlsReject::RequireClientCert,
            mqtt3: Mqtt3Reject::Close,
            mqtt5: Mqtt5Reject::Connack(Connack::V5(Code5::NotAuthorized)),
            wss: WssReject::CloseAfterUpgrade,
            non_http: NonHttp::BadRequest,
            subscribe3: Subscribe3Deny::Failure,
            cors: Cors::None,
        }
    }
}

fn parse_code(text: &str) -> Option<u8> {
    match text.strip_prefix("0x") {
        Some(hex) => u8::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// Implements `FromStr`, `Display` and serde (as a string) for a setting from one table of spellings.
macro_rules! setting {
    ($ty:ty, $expect:literal, parse: $parse:expr, show: $show:expr) => {
        impl FromStr for $ty {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                let parse: fn(&str) -> Option<$ty> = $parse;
                parse(s.trim()).ok_or_else(|| format!("`{s}` is not one of: {}", $expect))
            }
        }
        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let show: fn(&$ty) -> String = $show;
                f.write_str(&show(self))
            }
        }
        impl Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }
        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

setting!(TlsReject, "alert:<name> (e.g. alert:unrecognized_name), close, reset, client-cert, handshake-then-close",
parse: |s| match s {
    "close" => Some(TlsReject::Close),
    "handshake-then-close" => Some(TlsReject::HandshakeThenClose),
    "reset" => Some(TlsReject::Reset),
    "client-cert" => Some(TlsReject::RequireClientCert),
    _ => s.strip_prefix("alert:").and_then(Alert::from_name).map(TlsReject::Alert),
},
show: |v| match v {
    TlsReject::Alert(a) => format!("alert:{}", a.name()),
    TlsReject::Close => "close".into(),
    TlsReject::Reset => "reset".into(),
    TlsReject::RequireClientCert => "client-cert".into(),
    TlsReject::HandshakeThenClose => "handshake-then-close".into(),
});

setting!(Mqtt3Reject, "close, connack:<1-5>",
parse: |s| match s {
    "close" => Some(Mqtt3Reject::Close),
    _ => s.strip_prefix("connack:").and_then(parse_code).filter(|c| *c != 0).and_then(Connack::v311).map(Mqtt3Reject::Connack),
},
show: |v| match v {
    Mqtt3Reject::Close => "close".into(),
    Mqtt3Reject::Connack(c) => format!("connack:{}", c.value()),
});

setting!(Mqtt5Reject, "connack:0x87, connack:0x86 (any MQTT 5 CONNACK reason code >= 0x80), close",
parse: |s| match s {
    "close" => Some(Mqtt5Reject::Close),
    _ => s.strip_prefix("connack:").and_then(parse_code).filter(|c| *c >= 0x80).and_then(Connack::v5).map(Mqtt5Reject::Connack),
},
show: |v| match v {
    Mqtt5Reject::Close => "close".into(),
    Mqtt5Reject::Connack(c) => format!("connack:0x{:02x}", c.value()),
});

setting!(WssReject, "close-after-101, 403",
parse: |s| match s {
    "close-after-101" => Some(WssReject::CloseAfterUpgrade),
    "403" => Some(WssReject::Forbidden),
    _ => None,
},
show: |v| match v {
    WssReject::CloseAfterUpgrade => "close-after-101".into(),
    WssReject::Forbidden => "403".into(),
});

setting!(Cors, "none, allow",
    parse: |s| match s {
        "none" => Some(Cors::None),
        "allow" => Some(Cors::Allow),
        _ => None,
    },
    show: |c| match c {
        Cors::None => "none".into(),
        Cors::Allow => "allow".into(),
    }
);

setting!(NonHttp, "400, close",
parse: |s| match s {
    "400" => Some(NonHttp::BadRequest),
    "close" => Some(NonHttp::Close),
    _ => None,
},
show: |v| match v {
    NonHttp::BadRequest => "400".into(),
    NonHttp::Close => "close".into(),
});

setting!(Subscribe3Deny, "suback:0x80, close",
parse: |s| match s {
    "suback:0x80" => Some(Subscribe3Deny::Failure),
    "close" => Some(Subscribe3Deny::Close),
    _ => None,
},
show: |v| match v {
    Subscribe3Deny::Failure => "suback:0x80".into(),
    Subscribe3Deny::Close => "close".into(),
});

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_round_trip_through_text() {
        for s in ["alert:unrecognized_name", "alert:handshake_failure", "close", "reset", "client-cert"] {
            assert_eq!(s.parse::<TlsReject>().unwrap().to_string(), s);
        }
        assert_eq!("alert:112".parse::<TlsReject>().unwrap(), TlsReject::Alert(Alert(112)));
        assert_eq!("connack:5".parse::<Mqtt3Reject>().unwrap(), Mqtt3Reject::Connack(Connack::v311(5).unwrap()));
        assert_eq!("connack:5".parse::<Mqtt3Reject>().unwrap().to_string(), "connack:5");
        assert!("connack:6".parse::<Mqtt3Reject>().is_err());
        assert_eq!("connack:0x86".parse::<Mqtt5Reject>().unwrap().to_string(), "connack:0x86");
        assert!("connack:0".parse::<Mqtt5Reject>().is_err());
        // Only the reason codes MQTT 5 defines for CONNACK: one it does not would go out as another.
        assert!("connack:0x8b".parse::<Mqtt5Reject>().is_err());
        assert!("alert:nonsense".parse::<TlsReject>().unwrap_err().contains("alert:<name>"));
        assert_eq!("allow".parse::<Cors>().unwrap(), Cors::Allow);
        assert_eq!(Cors::None.to_string(), "none");
    }
}
