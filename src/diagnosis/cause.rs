//! The cause catalogue (docs/causes.md): every cause a finding may name, its stable id, and the step
//! of AWS's "Troubleshooting your authorizers" page it maps to.

use serde::Serialize;

use crate::auth::troubleshooting::Step;
pub(crate) use crate::auth::troubleshooting::TROUBLESHOOTING_URL;

/// A cause. Ids are stable: new ones may be added, none is renamed or reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// The endpoint name does not resolve from this network.
    DnsFailed,
    /// The endpoint resolves to an unexpected (loopback, private or link-local) address.
    DnsUnexpected,
    /// TCP to the endpoint's port is refused, reset or times out.
    PortBlocked,
    /// The proxy refuses, needs credentials, or cannot reach the endpoint.
    ProxyFailed,
    /// Something on the path presents its own certificate chain.
    TlsIntercepted,
    /// No SNI is sent.
    SniMissing,
    /// The SNI is not an endpoint of the account.
    SniNotEndpoint,
    /// MQTT over TLS on 443 without ALPN `mqtt`.
    AlpnMissing,
    /// The network removes ALPN, so MQTT over TLS fails while WebSocket and HTTPS work.
    AlpnStripped,
    /// The Host header is missing or names another host.
    HostHeaderWrong,
    /// Custom authentication on a port other than 443.
    WrongPort,
    /// No authorizer name is sent and the endpoint has no default authorizer.
    AuthorizerMissingNoDefault,
    /// The authorizer name sent is not an authorizer of the account.
    AuthorizerUnknown,
    /// The authorizer is INACTIVE.
    AuthorizerInactive,
    /// No token is sent.
    TokenMissing,
    /// The token is sent under a name other than the authorizer's token key name.
    TokenKeyNameWrong,
    /// Signing is enabled and no signature is sent.
    SignatureMissing,
    /// The signature does not verify with the authorizer's public keys.
    SignatureInvalid,
    /// The signature verifies over a value other than the token.
    SignatureWrongValue,
    /// The signature's `+`, `/`, `=` are sent raw in a username or query.
    SignatureNotEncoded,
    /// The MQTT username does not parse as IoT Core reads it.
    UsernameMalformed,
    /// IoT Core may not invoke the authorizer's Lambda function.
    LambdaNotInvocable,
    /// The Lambda function fails or returns an invalid response.
    LambdaError,
    /// The Lambda function does not answer within 5 s.
    LambdaTimeout,
    /// The Lambda function answers close to the 5 s limit.
    LambdaSlow,
    /// The Lambda function answers isAuthenticated false.
    AuthorizerDenied,
    /// The returned policy does not allow iot:Connect for this client ID.
    PolicyConnectDenied,
    /// The returned policy does not allow iot:Publish on the topic.
    PolicyPublishDenied,
    /// The returned policy does not allow iot:Subscribe on the filter.
    PolicySubscribeDenied,
    /// The returned policy does not allow iot:Receive on the topic.
    PolicyReceiveDenied,
    /// The MQTT CONNECT is larger than common embedded clients' CONNECT buffers.
    ConnectPacketTooLarge,
    /// The MQTT keep-alive is outside IoT Core's 30-1200 s.
    KeepAliveOutOfRange,
    /// The client ID is longer than 128 bytes or starts with `$`.
    ClientIdInvalid,
    /// The same client ID connects again sooner than IoT Core allows (one CONNECT a second).
    ConnectThrottled,
    /// MQTT 5 enhanced authentication (an Authentication Method) is sent: IoT Core has no AUTH exchange.
    EnhancedAuthUnsupported,
    /// A page's WebSocket subprotocol (`mqtt` or `mqttv3.1`) is not accepted.
    WsSubprotocolRefused,
    /// A page's WebSocket URL path is not `/mqtt` (e.g. `wss://host//mqtt`).
    WsPathWrong,
    /// Something on the path refuses the page's `Origin`.
    OriginRefused,
    /// The endpoint's CORS answers stop a page's HTTPS publish.
    CorsRefused,
}

impl Cause {
    /// Every cause, in the catalogue's order.
    pub const ALL: [Self; 39] = {
        use Cause::*;
        [
            DnsFailed,
            DnsUnexpected,
            PortBlocked,
            ProxyFailed,
            TlsIntercepted,
            SniMissing,
            SniNotEndpoint,
            AlpnMissing,
            AlpnStripped,
            HostHeaderWrong,
            WrongPort,
            AuthorizerMissingNoDefault,
            AuthorizerUnknown,
            AuthorizerInactive,
            TokenMissing,
            TokenKeyNameWrong,
            SignatureMissing,
            SignatureInvalid,
            SignatureWrongValue,
            SignatureNotEncoded,
            UsernameMalformed,
            LambdaNotInvocable,
            LambdaError,
            LambdaTimeout,
            LambdaSlow,
            AuthorizerDenied,
            PolicyConnectDenied,
            PolicyPublishDenied,
            PolicySubscribeDenied,
            PolicyReceiveDenied,
            ConnectPacketTooLarge,
            KeepAliveOutOfRange,
            ClientIdInvalid,
            ConnectThrottled,
            EnhancedAuthUnsupported,
            WsSubprotocolRefused,
            WsPathWrong,
            OriginRefused,
            CorsRefused,
        ]
    };

    /// The cause with this id.
    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.id() == id)
    }

    /// The stable id reports print (docs/causes.md).
    pub fn id(self) -> &'static str {
        use Cause::*;
        match self {
            DnsFailed => "dns_failed",
            DnsUnexpected => "dns_unexpected",
            PortBlocked => "port_blocked",
            ProxyFailed => "proxy_failed",
            TlsIntercepted => "tls_intercepted",
            SniMissing => "sni_missing",
            SniNotEndpoint => "sni_not_endpoint",
            AlpnMissing => "alpn_missing",
            AlpnStripped => "alpn_stripped",
            HostHeaderWrong => "host_header_wrong",
            WrongPort => "wrong_port",
            AuthorizerMissingNoDefault => "authorizer_missing_no_default",
            AuthorizerUnknown => "authorizer_unknown",
            AuthorizerInactive => "authorizer_inactive",
            TokenMissing => "token_missing",
            TokenKeyNameWrong => "token_key_name_wrong",
            SignatureMissing => "signature_missing",
            SignatureInvalid => "signature_invalid",
            SignatureWrongValue => "signature_wrong_value",
            SignatureNotEncoded => "signature_not_encoded",
            UsernameMalformed => "username_malformed",
            LambdaNotInvocable => "lambda_not_invocable",
            LambdaError => "lambda_error",
            LambdaTimeout => "lambda_timeout",
            LambdaSlow => "lambda_slow",
            AuthorizerDenied => "authorizer_denied",
            PolicyConnectDenied => "policy_connect_denied",
            PolicyPublishDenied => "policy_publish_denied",
            PolicySubscribeDenied => "policy_subscribe_denied",
            PolicyReceiveDenied => "policy_receive_denied",
            ConnectPacketTooLarge => "connect_packet_too_large",
            KeepAliveOutOfRange => "keep_alive_out_of_range",
            ClientIdInvalid => "client_id_invalid",
            ConnectThrottled => "connect_throttled",
            EnhancedAuthUnsupported => "enhanced_auth_unsupported",
            WsSubprotocolRefused => "ws_subprotocol_refused",
            WsPathWrong => "ws_path_wrong",
            OriginRefused => "origin_refused",
            CorsRefused => "cors_refused",
        }
    }

    /// What is wrong, in a few words (the catalogue's second column).
    pub fn what(self) -> &'static str {
        use Cause::*;
        match self {
            DnsFailed => "the endpoint name does not resolve from this network",
            DnsUnexpected => "the endpoint resolves to an unexpected (loopback, private or link-local) address",
            PortBlocked => "TCP to the endpoint's port is refused, reset or times out",
            ProxyFailed => "the proxy refuses, needs credentials, or cannot reach the endpoint",
            TlsIntercepted => "something on the path presents its own certificate chain",
            SniMissing => "no SNI is sent",
            SniNotEndpoint => "the SNI is not an endpoint of the account",
            AlpnMissing => "MQTT over TLS on 443 without ALPN `mqtt`",
            AlpnStripped => "the network removes ALPN, so MQTT over TLS fails while WebSocket and HTTPS work",
            HostHeaderWrong => "the Host header is missing or names another host",
            WrongPort => "custom authentication on a port other than 443",
            AuthorizerMissingNoDefault => "no authorizer name is sent and the endpoint has no default authorizer",
            AuthorizerUnknown => "the authorizer name sent is not an authorizer of the account",
            AuthorizerInactive => "the authorizer is INACTIVE",
            TokenMissing => "no token is sent",
            TokenKeyNameWrong => "the token is sent under a name other than the authorizer's token key name",
            SignatureMissing => "signing is enabled and no signature is sent",
            SignatureInvalid => "the signature does not verify with the authorizer's public keys",
            SignatureWrongValue => "the signature verifies over a value other than the token",
            SignatureNotEncoded => "the signature's `+`, `/`, `=` are sent raw in a username or query",
            UsernameMalformed => "the MQTT username does not parse as IoT Core reads it",
            LambdaNotInvocable => "IoT Core may not invoke the authorizer's Lambda function",
            LambdaError => "the Lambda function fails or returns an invalid response",
            LambdaTimeout => "the Lambda function does not answer within 5 s",
            LambdaSlow => "the Lambda function answers close to the 5 s limit",
            AuthorizerDenied => "the Lambda function answers isAuthenticated false",
            PolicyConnectDenied => "the returned policy does not allow iot:Connect for this client ID",
            PolicyPublishDenied => "the returned policy does not allow iot:Publish on the topic",
            PolicySubscribeDenied => "the returned policy does not allow iot:Subscribe on the filter",
            PolicyReceiveDenied => "the returned policy does not allow iot:Receive on the topic",
            ConnectPacketTooLarge => "the MQTT CONNECT is larger than common embedded clients' CONNECT buffers",
            KeepAliveOutOfRange => "the MQTT keep-alive is outside IoT Core's 30-1200 s",
            ClientIdInvalid => "the client ID is longer than 128 bytes or starts with `$`",
            ConnectThrottled => "the same client ID connects again sooner than IoT Core allows (one CONNECT a second)",
            EnhancedAuthUnsupported => {
                "MQTT 5 enhanced authentication (an Authentication Method, the AUTH packet), which IoT Core does not support"
            }
            WsSubprotocolRefused => "the page's WebSocket subprotocol (`mqtt` or `mqttv3.1`) is not accepted",
            WsPathWrong => "the page's WebSocket URL path is not `/mqtt` (e.g. `wss://host//mqtt`)",
            OriginRefused => "something on the path refuses the page's `Origin`",
            CorsRefused => "the endpoint's CORS answers stop a page's HTTPS publish (the browser sends no POST)",
        }
    }

    /// The troubleshooting step, in words.
    pub fn step(self) -> Step {
        use Cause::*;
        match self {
            DnsFailed | DnsUnexpected | ProxyFailed | TlsIntercepted => Step::NetworkReach,
            PortBlocked | WrongPort => Step::Port443,
            SniMissing | SniNotEndpoint | HostHeaderWrong => Step::SniAndHost,
            AlpnMissing | AlpnStripped => Step::Alpn,
            AuthorizerMissingNoDefault | AuthorizerUnknown | AuthorizerInactive => Step::AuthorizerName,
            TokenMissing | TokenKeyNameWrong => Step::TokenKeyName,
            SignatureMissing | SignatureInvalid | SignatureWrongValue | SignatureNotEncoded => Step::Signature,
            UsernameMalformed => Step::MqttUsername,
            LambdaNotInvocable => Step::LambdaInvokable,
            LambdaError => Step::LambdaRuns,
            LambdaTimeout | LambdaSlow => Step::LambdaWithin5s,
            AuthorizerDenied
            | PolicyConnectDenied
            | PolicyPublishDenied
            | PolicySubscribeDenied
            | PolicyReceiveDenied => Step::ResponseAllows,
            ConnectPacketTooLarge
            | KeepAliveOutOfRange
            | ClientIdInvalid
            | ConnectThrottled
            | EnhancedAuthUnsupported => Step::MqttConnect,
            WsSubprotocolRefused | WsPathWrong | OriginRefused => Step::WebSocketUpgrade,
            CorsRefused => Step::HttpsPublish,
        }
    }

    /// Whether the cause is about the credentials (read by IoT Core and the authorizer), as opposed to
    /// the network path or TLS.
    pub fn is_credential(self) -> bool {
        self >= Self::AuthorizerMissingNoDefault && !self.is_browser()
    }

    /// Whether the cause is in what a web page sends (`--client-type browser`).
    pub fn is_browser(self) -> bool {
        matches!(self, Self::WsSubprotocolRefused | Self::WsPathWrong | Self::OriginRefused | Self::CorsRefused)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.id())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_the_serialised_names() {
        for c in [Cause::DnsFailed, Cause::TokenKeyNameWrong, Cause::PolicyReceiveDenied, Cause::LambdaSlow] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.id());
        }
        assert!(Cause::TokenKeyNameWrong.is_credential());
        // ALL holds every cause once, in declaration order (so `is_credential`'s ordering holds).
        assert!(Cause::ALL.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(Cause::ALL.last(), Some(&Cause::CorsRefused));
        assert!(!Cause::WsSubprotocolRefused.is_credential() && !Cause::CorsRefused.is_credential());
        assert_eq!(Cause::from_id("lambda_slow"), Some(Cause::LambdaSlow));
        assert!(!Cause::WrongPort.is_credential());
    }
}
