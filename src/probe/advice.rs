//! For each outcome: the likely cause, the next thing to check, and the troubleshooting row it maps to
//! (docs/custom-auth.md §7 and IoT Core's custom-auth troubleshooting steps).

use super::outcome::{CloseHow, Detail, Kind, Outcome, Stage};
use super::plan::{AttemptSpec, ProbePlan};
use super::sent::Sent;
use crate::auth::troubleshooting::Step;
use crate::wire::alert::Alert;
use serde::Serialize;

/// Human guidance attached to an outcome.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct Advice {
    /// One line: what happened, in plain words.
    pub summary: String,
    pub likely_cause: String,
    pub next_check: String,
    /// The troubleshooting step this maps to (none where no step says more than the outcome).
    #[serde(serialize_with = "step_or_empty")]
    pub see: Option<Step>,
}

fn advice(summary: String, cause: &str, next: &str, see: Step) -> Advice {
    Advice { summary, likely_cause: cause.into(), next_check: next.into(), see: Some(see) }
}

/// No step serialises as an empty string, as before steps were typed.
fn step_or_empty<S: serde::Serializer>(see: &Option<Step>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(see.map_or("", Step::label))
}

pub(crate) fn advise(o: &Outcome, spec: &AttemptSpec, plan: &ProbePlan, sent: &Sent) -> Advice {
    match o.stage {
        Stage::Resolve | Stage::Tcp | Stage::Proxy => network(o),
        Stage::Tls => tls(o, spec, &plan.target.endpoint),
        Stage::Upgrade => upgrade(o),
        Stage::Mqtt => mqtt(o, spec, plan, sent),
        Stage::Http => http(o),
        Stage::Authorize => authorize(o),
    }
}

/// An outcome without more specific advice.
fn plain(o: &Outcome) -> Advice {
    Advice { summary: o.kind.as_str(), ..Advice::default() }
}

/// resolve and tcp.
fn network(o: &Outcome) -> Advice {
    match (&o.kind, &o.detail) {
        (Kind::DnsFailed, Detail::Dns { name, error }) => advice(
            format!("{name} does not resolve: {error}"),
            "the name is wrong, or this network's DNS cannot resolve it",
            "compare with `aws iot describe-endpoint --endpoint-type iot:Data-ATS`; try another resolver, or --connect-to ADDR to bypass DNS",
            Step::NetworkReach,
        ),
        (Kind::TcpRefused, Detail::Tcp { address, .. }) => advice(
            format!("{address} refused the connection (RST to SYN)"),
            "nothing listens on that port there, or a firewall actively rejects it",
            "custom authentication works on port 443 only; check the port and that outbound 443 is allowed",
            Step::Port443,
        ),
        (Kind::TcpTimeout, Detail::Tcp { address, elapsed_ms, .. }) => advice(
            format!("no answer from {address} in {elapsed_ms} ms"),
            "a firewall drops outbound traffic to this port, or the route is wrong",
            "from this network, test `nc -vz <endpoint> 443`; ask for outbound 443 to the IoT endpoint",
            Step::Port443,
        ),
        (Kind::TcpUnreachable | Kind::TcpReset, Detail::Tcp { address, error, .. }) => advice(
            format!("{address}: {error}"),
            "no route to the endpoint, or the connection was reset by the network",
            "check this device's routing, proxy requirements and firewall rules for outbound 443",
            Step::Port443,
        ),
        (Kind::ProxyAuthRequired, Detail::Proxy { proxy, status_line, .. }) => advice(
            format!("the proxy {proxy} wants credentials: {status_line}"),
            "no proxy credentials were sent, or they are wrong",
            "put the proxy's user and password in the proxy URL: http://user:password@host:port",
            Step::NetworkProxy,
        ),
        (Kind::ProxyRefused, Detail::Proxy { proxy, status_line, .. }) => advice(
            format!("the proxy {proxy} refused the tunnel: {status_line}"),
            "the proxy does not allow CONNECT to this host or port, or cannot reach the endpoint",
            "have the proxy allow CONNECT to the IoT endpoint on 443 (squid SSL_ports, tinyproxy ConnectPort)",
            Step::NetworkProxy,
        ),
        (Kind::ProxyTimeout, Detail::Proxy { proxy, status_line, .. }) => advice(
            format!("the proxy {proxy} did not open the tunnel: {status_line}"),
            "the proxy hangs, or waits on a connection to the endpoint that does not complete",
            "check the proxy's own route to the IoT endpoint on 443",
            Step::NetworkProxy,
        ),
        _ => plain(o),
    }
}

/// The TLS handshake.
fn tls(o: &Outcome, spec: &AttemptSpec, ep: &str) -> Advice {
    match (&o.kind, &o.detail) {
        (Kind::TlsAlert, Detail::Alert { alert, code }) => tls_alert(*alert, *code, spec, ep),
        (Kind::TlsClosed, Detail::Closed { how, bytes_seen }) => advice(
            format!("the server {} during the TLS handshake after {bytes_seen} bytes", closed_word(*how)),
            if spec.sni.is_none() {
                "IoT Core refuses handshakes without SNI; this attempt sent none"
            } else {
                "the server refused the SNI/ALPN combination, or a middlebox cut the handshake"
            },
            "send SNI = the data endpoint and ALPN `mqtt` for MQTT on 443; try from another network to rule out a middlebox",
            Step::SniAndHost,
        ),
        (Kind::TlsCertUntrusted, Detail::Cert { chain, amazon_roots, .. }) => {
            let issuer = chain.last().map(|c| c.issuer.clone()).unwrap_or_default();
            let amazon = super::outcome::chain_is_amazons(chain, *amazon_roots);
            advice(
                format!("the certificate chain is not trusted (issued by: {issuer})"),
                if amazon {
                    "the trusted roots do not include Amazon's: an old or missing CA bundle"
                } else {
                    "the chain is not Amazon's: something on this network intercepts TLS (proxy, firewall inspection), or --ca names the wrong root"
                },
                "compare the chain's issuer with Amazon Root CA 1 / 3; exempt the endpoint from TLS inspection or trust the right root with --ca",
                Step::NetworkChain,
            )
        }
        (Kind::TlsCertNameMismatch, Detail::Cert { name_checked, chain, .. }) => advice(
            format!(
                "the certificate is not valid for {name_checked} (it names {})",
                chain.first().map(|c| c.dns_names.join(", ")).unwrap_or_default()
            ),
            "the endpoint name is wrong (legacy vs -ats, another region), or something intercepts TLS",
            "use the endpoint exactly as describe-endpoint prints it; a custom domain needs its domain configuration's certificate",
            Step::NetworkReach,
        ),
        (Kind::TlsCertExpired, _) => advice(
            "the server certificate is expired (or not yet valid)".into(),
            "this device's clock is wrong, or an intercepting proxy serves a stale certificate",
            "check the device's time (NTP); inspect the chain in this report",
            Step::NetworkReach,
        ),
        (Kind::TlsCertInvalid, Detail::Cert { error, .. }) => advice(
            format!("the server certificate is invalid: {error}"),
            "a broken or intercepted certificate chain",
            "inspect the chain in this report",
            Step::NetworkReach,
        ),
        (Kind::TlsHandshakeFailed, Detail::Failure { error }) => advice(
            format!("the TLS handshake failed: {error}"),
            "no protocol version or cipher in common, or a misbehaving peer",
            "IoT Core speaks TLS 1.2 and 1.3; check for a middlebox",
            Step::NetworkReach,
        ),
        (Kind::TlsNotTls, Detail::NotTls { first_bytes }) => advice(
            format!("the server answered in plaintext, not TLS: {first_bytes}"),
            "this is not IoT Core: a proxy, captive portal or another service answers on this address and port",
            "check --connect-to, the port, and whether this network needs a proxy",
            Step::NetworkReach,
        ),
        (Kind::TlsTimeout, Detail::Timeout { elapsed_ms }) => advice(
            format!("the TLS handshake did not finish in {elapsed_ms} ms"),
            "a middlebox swallows the handshake, or the link is extremely slow",
            "retry with a longer --timeout; compare with another network",
            Step::NetworkReach,
        ),
        _ => plain(o),
    }
}

/// The WebSocket upgrade.
fn upgrade(o: &Outcome) -> Advice {
    match (&o.kind, &o.detail) {
        (Kind::UpgradeRejected, Detail::Http { status, error_type, message, .. }) => advice(
            format!(
                "the WebSocket upgrade was refused: HTTP {status}{}{}",
                error_type.as_ref().map(|e| format!(" {e}")).unwrap_or_default(),
                message.as_ref().map(|m| format!(" \"{m}\"")).unwrap_or_default()
            ),
            if *status == 403 {
                "authentication failed at the upgrade: unknown authorizer, bad or missing signature, or the authorizer denied"
            } else {
                "the request was not accepted as an IoT WebSocket upgrade (path, Host header or headers)"
            },
            "check the authorizer name, the signature and the token; the authorizer Lambda's CloudWatch logs show whether it ran",
            Step::WebSocketUpgrade,
        ),
        (Kind::UpgradeInvalid, Detail::UpgradeInvalid { problem }) => advice(
            format!("the upgrade answer is not what IoT Core sends: {problem}"),
            "a proxy or another server answered",
            "check --connect-to and any HTTP proxy on the path",
            Step::WebSocketUpgrade,
        ),
        (Kind::UpgradeClosed | Kind::UpgradeTimeout, _) => advice(
            format!("no answer to the WebSocket upgrade ({})", o.kind.as_str()),
            "the server does not treat this connection as HTTP: ALPN offered on a WebSocket, or a middlebox",
            "WebSocket connections must offer no ALPN (SDKs dropped ALPN `mqtt` for WSS)",
            Step::AlpnWebSocket,
        ),
        _ => plain(o),
    }
}

/// CONNECT → CONNACK.
fn mqtt(o: &Outcome, spec: &AttemptSpec, plan: &ProbePlan, sent: &Sent) -> Advice {
    match (&o.kind, &o.detail) {
        (Kind::ConnackAccepted, _) => Advice {
            summary: format!("custom authentication succeeded over {} (CONNACK 0)", spec.transport),
            ..Advice::default()
        },
        (Kind::ConnackRefused, Detail::Connack { code, reason, .. }) => advice(
            format!("CONNACK refused the connection: {reason} (0x{code:02x})"),
            "the authorizer denied (isAuthenticated false), the signature or authorizer name was rejected, or the returned policy lacks iot:Connect on client/<clientId>",
            &format!(
                "run `aws iot test-invoke-authorizer --authorizer-name {} --token …` and check the policy allows iot:Connect on client/{}",
                plan.credentials.authorizer.as_deref().unwrap_or("<name>"),
                sent.client_id.as_deref().unwrap_or("<clientId>")
            ),
            Step::ResponseAllowsConnect,
        ),
        (Kind::ClosedBeforeConnack, Detail::ClosedAfter { how, after_ms }) => {
            // A close this long after CONNECT points at the authorizer's limit.
            if *after_ms >= plan.slow_ms() {
                let limit = plan.limit_text();
                Advice {
                    summary: format!("the server {} {after_ms} ms after CONNECT, without CONNACK", closed_word(*how)),
                    likely_cause: format!(
                        "the refusal came close to IoT Core's {limit} limit: the authorizer Lambda is slow — it timed out, or answered late (and denied)"
                    ),
                    next_check: format!(
                        "check the Lambda's duration and result in CloudWatch; raise its memory or remove slow calls; keep it well under {limit}"
                    ),
                    see: Some(Step::LambdaWithin5s),
                }
            } else {
                advice(
                    format!("the server {} {after_ms} ms after CONNECT, without CONNACK", closed_word(*how)),
                    "IoT Core's usual MQTT 3.1.1 refusal: unknown authorizer and no default, missing or bad signature, token under the wrong key name, the Lambda denied, failed or may not be invoked, or no iot:Connect for this client ID",
                    "check the authorizer name and token key name (describe-authorizer), that the signature is percent-encoded, and run test-invoke-authorizer with this token",
                    Step::ApplicationAndLambda,
                )
            }
        }
        (Kind::ConnackTimeout, Detail::Wait { waited_ms }) => advice(
            format!("no answer to CONNECT in {waited_ms} ms"),
            "the server is not speaking MQTT on this connection (ALPN `mqtt` not negotiated?), or the authorizer hangs",
            "confirm ALPN `mqtt` was negotiated (see tls above); raise --timeout to see whether a late refusal comes",
            Step::Alpn,
        ),
        (Kind::MqttProtocolError, Detail::Protocol { bytes, error }) => {
            let http = bytes.contains("\"HTTP/");
            advice(
                format!("the answer to CONNECT is not a valid CONNACK: {error}: {bytes}"),
                if http {
                    "the server answered in HTTP: ALPN `mqtt` was not negotiated, so IoT Core treated the connection as HTTPS"
                } else {
                    "something other than IoT Core answered, or the connection is corrupted"
                },
                "offer ALPN `mqtt` on port 443 and check that no middlebox strips it",
                Step::Alpn,
            )
        }
        _ => plain(o),
    }
}

/// The HTTPS publish.
fn http(o: &Outcome) -> Advice {
    match (&o.kind, &o.detail) {
        (Kind::HttpOk, Detail::Http { status, .. }) => {
            Advice { summary: format!("the HTTPS publish was accepted (HTTP {status})"), ..Advice::default() }
        }
        (Kind::HttpRejected, Detail::Http { status, error_type, message, .. }) => advice(
            format!(
                "the HTTPS publish was refused: HTTP {status}{}{}",
                error_type.as_ref().map(|e| format!(" {e}")).unwrap_or_default(),
                message.as_ref().map(|m| format!(" \"{m}\"")).unwrap_or_default()
            ),
            match status {
                403 => {
                    "authentication or authorization failed: unknown authorizer, bad or missing signature, the authorizer denied, or the policy lacks iot:Publish on this topic"
                }
                400 => "the request was malformed for IoT Core (topic, qos)",
                _ => "the gateway did not accept the request",
            },
            "check the authorizer name, signature and token, and that the policy allows iot:Publish on the topic",
            Step::HttpsPublish,
        ),
        (Kind::PreflightRefused, Detail::Preflight { status, cors_problem }) => advice(
            format!("the browser stops at the CORS preflight (HTTP {status}): {cors_problem}"),
            "a page's publish with custom-auth headers needs the endpoint to allow its origin and headers; \
             the browser never sends the POST, the authorizer never runs, and the page sees a network error",
            "publish from the page over MQTT over WebSockets (wss) instead, or through your own backend; \
             IoT Core documents no CORS answers on the data endpoint",
            Step::HttpsPublish,
        ),
        (Kind::HttpClosed | Kind::HttpTimeout | Kind::HttpMalformedResponse, _) => advice(
            format!("no valid HTTP answer ({})", o.kind.as_str()),
            "the server did not answer as an HTTPS endpoint",
            "check --connect-to, proxies, and that no ALPN `mqtt` was offered for HTTPS",
            Step::HttpsPublish,
        ),
        _ => plain(o),
    }
}

/// Post-connect checks.
fn authorize(o: &Outcome) -> Advice {
    match (&o.kind, &o.detail) {
        (Kind::PublishAccepted | Kind::SubscribeAccepted | Kind::MessageReceived, _) => Advice {
            summary: format!("connected, and the post-connect checks passed ({})", o.kind.as_str()),
            ..Advice::default()
        },
        (Kind::PublishRefused | Kind::SubscribeRefused, Detail::Ack { code, reason, action, resource }) => advice(
            format!("{action} on {resource} was refused: {reason} (0x{code:02x})"),
            &format!("the policy the authorizer returned does not allow {action} on {resource}"),
            &format!(
                "add an Allow for {action} on {resource} to the returned policy (check-response tells which statement decides)"
            ),
            Step::PolicyAllows,
        ),
        (Kind::ClosedAfterPublish | Kind::ClosedAfterSubscribe, Detail::Check { action, resource, elapsed_ms }) => {
            advice(
                format!("the server closed the connection {elapsed_ms} ms after the {action} request"),
                &format!(
                    "MQTT 3.1.1 has no negative PUBACK: IoT Core closes the connection when the policy does not allow {action} on {resource}"
                ),
                &format!("add an Allow for {action} on {resource} to the returned policy"),
                Step::PolicyAllows,
            )
        }
        (Kind::MessageMissing, Detail::Check { action, resource, .. }) => advice(
            format!("no answer for {action} on {resource} in time"),
            "the policy does not allow iot:Receive on the topic, or the message was not routed back",
            &format!("allow iot:Receive on {resource}"),
            Step::PolicyAllows,
        ),
        _ => plain(o),
    }
}

fn closed_word(how: CloseHow) -> &'static str {
    match how {
        CloseHow::CloseNotify => "closed the connection (TLS close_notify)",
        CloseHow::Eof => "closed the connection (FIN, no close_notify)",
        CloseHow::Reset => "reset the connection (RST)",
    }
}

fn tls_alert(alert: Alert, code: u8, spec: &AttemptSpec, endpoint: &str) -> Advice {
    let summary = format!("the server sent TLS alert {alert} ({code})");
    match alert {
        Alert::UNRECOGNIZED_NAME => advice(
            summary,
            if spec.sni.is_none() {
                "no SNI was sent; IoT Core needs it"
            } else {
                "the SNI is not an endpoint of this account"
            },
            &if endpoint.parse::<std::net::IpAddr>().is_ok() {
                format!("{endpoint} is an IP address, so no SNI can be sent: connect by the endpoint's name")
            } else {
                format!("send SNI {endpoint} (the data endpoint or your domain configuration's name)")
            },
            Step::SniAndHost,
        ),
        Alert::NO_APPLICATION_PROTOCOL => advice(
            summary,
            "the server accepts none of the offered ALPN protocols",
            "offer `mqtt` for MQTT over TLS on 443, nothing for WebSocket and HTTPS",
            Step::Alpn,
        ),
        a if a.wants_client_certificate() => advice(
            summary,
            "this is the X.509 path (port 8883, or 443 with ALPN x-amzn-mqtt-ca): it wants a client certificate and never runs the authorizer",
            "for custom auth use port 443 with ALPN `mqtt` (MQTT) or no ALPN (WebSocket, HTTPS)",
            Step::Port443X509,
        ),
        _ => advice(
            summary,
            "the server refused the handshake: SNI, ALPN or TLS parameters it does not accept",
            "check SNI = endpoint and ALPN `mqtt`; compare with another network",
            Step::SniAndHost,
        ),
    }
}
