//! The variant matrix: per transport, the baseline plus named deviations, each with the result IoT
//! Core is documented to give (spec §7). `quick` is the smallest set that still separates the causes
//! the diagnosis names; `full` is every variant.

use super::plan::{AttemptSpec, Expect, MqttVersion, ProbePlan, SignatureForm, UsernameForm};
use crate::auth::credentials::Placement;
use crate::auth::event::Transport;

/// How many variants to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// One baseline attempt per transport.
    None,
    Quick,
    Full,
}

/// The attempts of `level` for the plan's transports, baselines first.
pub fn variants(plan: &ProbePlan, level: Level) -> Vec<AttemptSpec> {
    let mut out = plan.baseline();
    if level == Level::None {
        return out;
    }
    let full = level == Level::Full;
    for base in plan.baseline() {
        let t = base.transport;
        let mut add = |name: &str, description: &str, expect: Expect, change: &dyn Fn(&mut AttemptSpec)| {
            let mut s = base.clone();
            s.id = format!("{t}/{name}");
            s.variant = name.to_owned();
            s.description = description.to_owned();
            s.expect = expect;
            s.client_id = client_id(&plan.client_id, t, name);
            change(&mut s);
            out.push(s);
        };
        let creds = &plan.credentials;
        let quick_mqtt = t == Transport::Mqtt;

        // SNI
        if quick_mqtt || full {
            add("sni-none", "no SNI extension", Expect::Fail, &|s| s.sni = None);
        }
        if full {
            add("sni-ip", "an IP literal as server name (no SNI is sent)", Expect::Fail, &|s| {
                s.sni = Some("192.0.2.1".into())
            });
            add("sni-other", "SNI of another name (--alt-sni)", Expect::Fail, &|s| s.sni = Some(plan.alt_sni.clone()));
        }
        // ALPN
        if t == Transport::Mqtt {
            add("alpn-none", "no ALPN on port 443", Expect::Fail, &|s| s.alpn = Vec::new());
            if full {
                add("alpn-x509", "ALPN x-amzn-mqtt-ca (the X.509 path)", Expect::Fail, &|s| {
                    s.alpn = vec![b"x-amzn-mqtt-ca".to_vec()]
                });
                add("alpn-http", "ALPN http/1.1 instead of mqtt", Expect::Fail, &|s| {
                    s.alpn = vec![b"http/1.1".to_vec()]
                });
            }
        } else if full && t == Transport::Wss {
            add("alpn-mqtt", "ALPN mqtt on the WebSocket upgrade (SDKs dropped it)", Expect::Fail, &|s| {
                s.alpn = vec![b"mqtt".to_vec()]
            });
        }
        // Host header
        if full && t != Transport::Mqtt {
            add("host-missing", "no Host header", Expect::Fail, &|s| s.host = None);
            add("host-other", "Host header of another name (--alt-sni)", Expect::Unknown, &|s| {
                s.host = Some(plan.alt_sni.clone())
            });
            add("host-port", "Host header with :443", Expect::Pass, &|s| {
                s.host = Some(format!("{}:443", plan.endpoint))
            });
        }
        // Port (only when the dialled port is not pinned by --connect-to)
        if full && plan.connect_to.as_ref().is_none_or(|(_, p)| p.is_none()) {
            match t {
                Transport::Mqtt => add("port-8883", "port 8883 (X.509 only)", Expect::Fail, &|s| s.port = 8883),
                Transport::Https => add("port-8443", "port 8443 (X.509 HTTPS)", Expect::Fail, &|s| s.port = 8443),
                Transport::Wss => {}
            }
        }
        // Credential placement
        if full {
            match t {
                Transport::Wss => {
                    add("in-username", "credentials in the CONNECT username", Expect::Pass, &|s| {
                        s.placement = Placement::Username
                    });
                    add("in-query", "credentials in the URL query", Expect::Pass, &|s| s.placement = Placement::Query);
                }
                Transport::Https => {
                    add("in-query", "credentials in the URL query", Expect::Pass, &|s| s.placement = Placement::Query)
                }
                Transport::Mqtt => {}
            }
        }
        // Token key name
        if creds.token.is_some() && (quick_mqtt || full) {
            let configured = creds.token_key_name.clone();
            if configured != "token" {
                let c = creds.clone();
                add(
                    "token-key-token",
                    "the token under `token` instead of the configured key name",
                    Expect::Fail,
                    &move |s| {
                        s.credentials = Some(super::Credentials { token_key_name: "token".into(), ..c.clone() });
                    },
                );
            }
            // hyper writes header names in lower case, so over HTTPS this variant would not change
            // the wire; header names are case-insensitive anyway (the WebSocket variant shows it).
            if t != Transport::Https {
                let swapped = swap_case(&configured);
                let expect = if base.placement == Placement::Header { Expect::Pass } else { Expect::Fail };
                let c = creds.clone();
                add("token-key-case", "the token key name in another letter case", expect, &move |s| {
                    s.credentials = Some(super::Credentials { token_key_name: swapped.clone(), ..c.clone() });
                });
            }
        }
        // Signature
        if let Some(sig) = &creds.signature {
            let in_query = base.placement != Placement::Header;
            if in_query && (quick_mqtt || full) {
                let expect = if sig.contains('+') { Expect::Fail } else { Expect::Unknown };
                add("signature-raw", "the signature base64 as is (+ / = not percent-encoded)", expect, &|s| {
                    s.signature = SignatureForm::Raw
                });
            }
            if full {
                add("signature-missing", "no signature", Expect::Fail, &|s| s.signature = SignatureForm::Missing);
                add("signature-wrong-name", "the signature under a wrong parameter name", Expect::Fail, &|s| {
                    s.signature = SignatureForm::WrongName
                });
                if plan.signer.is_some() {
                    add(
                        "signature-other-value",
                        "a valid signature over something other than the token",
                        Expect::Fail,
                        &|s| s.signature = SignatureForm::OverOtherValue,
                    );
                }
            }
        }
        // Authorizer name
        if let Some(name) = &creds.authorizer {
            if quick_mqtt || full {
                let c = creds.clone();
                add(
                    "authorizer-omitted",
                    "no authorizer name (the endpoint's default authorizer)",
                    Expect::Unknown,
                    &move |s| {
                        s.credentials = Some(super::Credentials { authorizer: None, ..c.clone() });
                    },
                );
                let swapped = swap_case(name);
                let c = creds.clone();
                add("authorizer-case", "the authorizer name in another letter case", Expect::Fail, &move |s| {
                    s.credentials = Some(super::Credentials { authorizer: Some(swapped.clone()), ..c.clone() });
                });
            }
        }
        // Username forms and MQTT version
        if full && t == Transport::Mqtt {
            add("sdk-metrics", "SDK metrics appended with `&`", Expect::Pass, &|s| {
                s.username_form = UsernameForm::SdkMetrics
            });
            add("second-question-mark", "SDK metrics appended with a second `?`", Expect::Fail, &|s| {
                s.username_form = UsernameForm::SecondQuestionMark
            });
        }
        if full && t != Transport::Https {
            let other = if plan.mqtt_version == MqttVersion::V5 { MqttVersion::V311 } else { MqttVersion::V5 };
            let name = if other == MqttVersion::V5 { "mqtt5" } else { "mqtt311" };
            add(name, "the other MQTT version", Expect::Pass, &|s| s.mqtt_version = other);
        }
    }
    out
}

/// `<id>-<transport>-<variant>`, at most 128 bytes (IoT Core's limit).
fn client_id(base: &str, t: Transport, variant: &str) -> String {
    let mut id = format!("{base}-{t}-{variant}");
    id.truncate(128);
    id
}

/// Another letter case: all upper case, or lower case when it already is.
fn swap_case(s: &str) -> String {
    let upper = s.to_ascii_uppercase();
    if upper == s { s.to_ascii_lowercase() } else { upper }
}
