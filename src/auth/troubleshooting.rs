//! The steps of AWS's "Troubleshooting your authorizers" page, as the probe's advice and the cause
//! catalogue name them: one vocabulary, each step once. Some steps are narrowed (`network: reach the
//! endpoint (proxy)`) where an attempt shows which part of the step is meant.

use serde::Serialize;

/// AWS's troubleshooting page for custom authorizers.
pub const TROUBLESHOOTING_URL: &str =
    "https://docs.aws.amazon.com/iot/latest/developerguide/custom-auth-troubleshooting.html";

/// A troubleshooting step.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Step {
    /// AWS: network — the device reaches the endpoint.
    NetworkReach,
    /// The network step, through a proxy.
    NetworkProxy,
    /// The network step: the chain presented is Amazon's.
    NetworkChain,
    /// Custom authentication runs on port 443 only.
    Port443,
    /// Port 443; port 8883 and ALPN `x-amzn-mqtt-ca` are the X.509 path.
    Port443X509,
    /// SNI (and the Host header) name the endpoint.
    SniAndHost,
    /// ALPN `mqtt` for MQTT on 443.
    Alpn,
    /// The ALPN step: WebSocket and HTTPS offer none.
    AlpnWebSocket,
    /// The authorizer name the device sends.
    AuthorizerName,
    /// The token, under the authorizer's token key name.
    TokenKeyName,
    /// The token signature, its encoding and its key.
    Signature,
    /// The MQTT username that carries the parameters.
    MqttUsername,
    /// The CONNECT's own fields: size, keep-alive, client ID, rate, version.
    MqttConnect,
    /// The WebSocket upgrade request.
    WebSocketUpgrade,
    /// The HTTPS publish request.
    HttpsPublish,
    /// The Lambda resource policy lets IoT Core invoke the function.
    LambdaInvokable,
    /// The function runs and returns a valid response.
    LambdaRuns,
    /// The function answers within IoT Core's 5 s.
    LambdaWithin5s,
    /// The response authenticates and its policy allows the action.
    ResponseAllows,
    /// The response authenticates and allows `iot:Connect`.
    ResponseAllowsConnect,
    /// The returned policy allows the action (after connecting).
    PolicyAllows,
    /// What the device sends, against the documented attempt.
    DeviceSends,
    /// The network and TLS steps together (the evidence leaves several).
    NetworkAndTls,
    /// The application and Lambda steps together (the evidence leaves several).
    LambdaAndApplication,
    /// The application and Lambda steps, for a refusal of the credentials.
    ApplicationAndLambda,
}

impl Step {
    /// Every step.
    pub const ALL: [Self; 25] = [
        Self::NetworkReach,
        Self::NetworkProxy,
        Self::NetworkChain,
        Self::Port443,
        Self::Port443X509,
        Self::SniAndHost,
        Self::Alpn,
        Self::AlpnWebSocket,
        Self::AuthorizerName,
        Self::TokenKeyName,
        Self::Signature,
        Self::MqttUsername,
        Self::MqttConnect,
        Self::WebSocketUpgrade,
        Self::HttpsPublish,
        Self::LambdaInvokable,
        Self::LambdaRuns,
        Self::LambdaWithin5s,
        Self::ResponseAllows,
        Self::ResponseAllowsConnect,
        Self::PolicyAllows,
        Self::DeviceSends,
        Self::NetworkAndTls,
        Self::LambdaAndApplication,
        Self::ApplicationAndLambda,
    ];

    /// The step's words, as reports print them (a public contract: docs/causes.md).
    pub fn label(self) -> &'static str {
        match self {
            Self::NetworkReach => "network: reach the endpoint",
            Self::NetworkProxy => "network: reach the endpoint (proxy)",
            Self::NetworkChain => "network: reach the endpoint (Amazon's certificate chain)",
            Self::Port443 => "TLS: port 443",
            Self::Port443X509 => "TLS: port 443 (8883 and x-amzn-mqtt-ca are X.509)",
            Self::SniAndHost => "TLS: SNI and Host",
            Self::Alpn => "TLS: ALPN",
            Self::AlpnWebSocket => "TLS: ALPN (none on WebSocket)",
            Self::AuthorizerName => "application: authorizer name",
            Self::TokenKeyName => "application: token key name",
            Self::Signature => "application: signature",
            Self::MqttUsername => "application: MQTT username",
            Self::MqttConnect => "application: MQTT CONNECT",
            Self::WebSocketUpgrade => "application: the WebSocket upgrade",
            Self::HttpsPublish => "application: the HTTPS publish",
            Self::LambdaInvokable => "Lambda: IoT Core may invoke the function",
            Self::LambdaRuns => "Lambda: the function runs and returns a valid response",
            Self::LambdaWithin5s => "Lambda: the function answers within 5 s",
            Self::ResponseAllows => "Lambda: the response authenticates and its policy allows the action",
            Self::ResponseAllowsConnect => "Lambda: the response authenticates and allows iot:Connect",
            Self::PolicyAllows => "Lambda: the returned policy allows the action",
            Self::DeviceSends => "what the device sends",
            Self::NetworkAndTls => "network and TLS steps",
            Self::LambdaAndApplication => "Lambda and application steps",
            Self::ApplicationAndLambda => "application and Lambda: authorizer name, token, signature, function",
        }
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

impl Serialize for Step {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_has_its_own_words() {
        let mut labels: Vec<&str> = Step::ALL.iter().map(|s| s.label()).collect();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Step::ALL.len());
        assert_eq!(serde_json::to_value(Step::Alpn).unwrap(), "TLS: ALPN");
    }
}
