//! The variant matrix: per transport, the baseline plus named deviations, each with the result IoT
//! Core is documented to give (docs/custom-auth.md §7). `quick` is the smallest set that still separates the causes
//! the diagnosis names; `full` is every variant. One function per dimension.

use super::plan::{AttemptSpec, Credentials, Expect, MqttVersion, ProbePlan, SignatureForm, UsernameForm};
use super::variant::Variant;
use crate::auth::credentials::Placement;
use crate::auth::event::Transport;

/// How many variants to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    /// One baseline attempt per transport.
    None,
    /// The variants that split the common causes (the default).
    Quick,
    /// Every variant.
    Full,
}

/// The attempts of `level` for the plan's transports, baselines first.
pub fn variants(plan: &ProbePlan, level: Level) -> Vec<AttemptSpec> {
    let mut out = plan.baseline();
    // A device that deviates is compared with the documented attempt on every transport.
    if plan.device.deviates() {
        for doc in plan.documented() {
            let d = "as IoT Core documents it (the device's attempt deviates)";
            out.push(derive(plan, &doc, Variant::Documented, d, Expect::Pass));
        }
    }
    // `--family both`: each baseline (over IPv4) again over IPv6, to compare the two paths.
    if plan.network.family == super::plan::Family::Both {
        for base in plan.baseline() {
            let d = "the baseline over IPv6 (the baseline goes over IPv4)";
            let mut s = derive(plan, &base, Variant::Ipv6, d, Expect::Unknown);
            s.family = super::plan::Family::V6;
            out.push(s);
        }
    }
    if level == Level::None {
        return out;
    }
    for base in plan.baseline() {
        let mut m = Matrix { plan, base: &base, full: level == Level::Full, out: &mut out };
        m.sni();
        m.alpn();
        m.host();
        m.port();
        m.placement();
        m.client_id();
        m.token_key();
        m.signature();
        m.authorizer();
        m.username_and_version();
        m.browser();
    }
    out
}

/// A variant of `base`: its id, description and documented result; the client ID made unique.
pub fn derive(plan: &ProbePlan, base: &AttemptSpec, v: Variant, description: &str, expect: Expect) -> AttemptSpec {
    let t = base.transport;
    let mut s = base.clone();
    s.id = format!("{t}/{v}");
    s.variant = v;
    s.description = description.to_owned();
    s.expect = expect;
    s.client_id = client_id(&plan.device.client_id, t, &v.as_str());
    s
}

struct Matrix<'a> {
    plan: &'a ProbePlan,
    base: &'a AttemptSpec,
    full: bool,
    out: &'a mut Vec<AttemptSpec>,
}

impl Matrix<'_> {
    fn t(&self) -> Transport {
        self.base.transport
    }

    fn quick_mqtt(&self) -> bool {
        self.full || self.t() == Transport::Mqtt
    }

    fn add(&mut self, v: Variant, description: &str, expect: Expect, change: impl FnOnce(&mut AttemptSpec)) {
        let mut s = derive(self.plan, self.base, v, description, expect);
        change(&mut s);
        // A variant that changes the credentials or how they travel cannot keep the device's exact
        // username: it builds its own from the credentials.
        let b = self.base;
        if s.credentials.is_some()
            || s.signature != b.signature
            || s.username_form != b.username_form
            || s.placement != b.placement
        {
            s.username_raw = None;
        }
        self.out.push(s);
    }

    fn with_credentials(&mut self, v: Variant, description: &str, expect: Expect, c: Credentials) {
        self.add(v, description, expect, |s| s.credentials = Some(c));
    }

    /// A browser's upgrade (`--client-type browser`): the other subprotocol, the `//mqtt` path of a
    /// mistyped URL and (full) another page's origin.
    fn browser(&mut self) {
        if self.t() != Transport::Wss || self.base.origin.is_none() {
            return;
        }
        let other = match self.base.ws_protocol.as_deref() {
            Some("mqttv3.1") => "mqtt",
            _ => "mqttv3.1",
        };
        let d = format!("Sec-WebSocket-Protocol {other}, the other subprotocol browser clients offer");
        self.add(Variant::WsProtocolOther, &d, Expect::Pass, |s| s.ws_protocol = Some(other.into()));
        let d = "the upgrade to //mqtt, as a page's wss://host//mqtt URL asks (undocumented)";
        self.add(Variant::PathDoubleSlash, d, Expect::Unknown, |s| s.ws_path = Some("//mqtt".into()));
        if self.full {
            let d = "another page's Origin (IoT Core documents no Origin check)";
            self.add(Variant::OriginOther, d, Expect::Unknown, |s| s.origin = Some("https://other.example".into()));
        }
    }

    fn sni(&mut self) {
        if self.quick_mqtt() {
            self.add(Variant::SniNone, "no SNI extension", Expect::Fail, |s| s.sni = None);
        }
        if self.full {
            self.add(Variant::SniIp, "an IP literal as server name (no SNI is sent)", Expect::Fail, |s| {
                s.sni = Some("192.0.2.1".into())
            });
            let alt = self.plan.matrix.alt_sni.clone();
            self.add(Variant::SniOther, "SNI of another name (--alt-sni)", Expect::Fail, |s| s.sni = Some(alt));
        }
    }

    fn alpn(&mut self) {
        match self.t() {
            Transport::Mqtt => {
                self.add(Variant::AlpnNone, "no ALPN on port 443", Expect::Fail, |s| s.alpn = Vec::new());
                if self.full {
                    self.add(Variant::AlpnX509, "ALPN x-amzn-mqtt-ca (the X.509 path)", Expect::Fail, |s| {
                        s.alpn = vec![b"x-amzn-mqtt-ca".to_vec()]
                    });
                    self.add(Variant::AlpnHttp, "ALPN http/1.1 instead of mqtt", Expect::Fail, |s| {
                        s.alpn = vec![b"http/1.1".to_vec()]
                    });
                }
            }
            Transport::Wss if self.full => {
                self.add(
                    Variant::AlpnMqtt,
                    "ALPN mqtt on the WebSocket upgrade (SDKs dropped it)",
                    Expect::Fail,
                    |s| s.alpn = vec![b"mqtt".to_vec()],
                );
            }
            _ => {}
        }
    }

    fn host(&mut self) {
        if !self.full || self.t() == Transport::Mqtt {
            return;
        }
        let alt = self.plan.matrix.alt_sni.clone();
        let with_port = format!("{}:443", self.plan.target.endpoint);
        self.add(Variant::HostMissing, "no Host header", Expect::Fail, |s| s.host = None);
        self.add(Variant::HostOther, "Host header of another name (--alt-sni)", Expect::Unknown, |s| {
            s.host = Some(alt)
        });
        self.add(Variant::HostPort, "Host header with :443", Expect::Pass, |s| s.host = Some(with_port));
    }

    /// Only when the dialled port is not pinned by --connect-to.
    fn port(&mut self) {
        if !self.full || self.plan.target.connect_to.as_ref().is_some_and(|(_, p)| p.is_some()) {
            return;
        }
        match self.t() {
            Transport::Mqtt => self.add(Variant::Port8883, "port 8883 (X.509 only)", Expect::Fail, |s| s.port = 8883),
            Transport::Https => self.add(Variant::Port8443, "port 8443 (X.509 HTTPS)", Expect::Fail, |s| s.port = 8443),
            Transport::Wss => {}
        }
    }

    fn placement(&mut self) {
        if !self.full {
            return;
        }
        if self.t() == Transport::Wss {
            self.add(Variant::InUsername, "credentials in the CONNECT username", Expect::Pass, |s| {
                s.placement = Placement::Username
            });
        }
        if self.t() != Transport::Mqtt {
            self.add(Variant::InQuery, "credentials in the URL query", Expect::Pass, |s| {
                s.placement = Placement::Query
            });
        }
    }

    /// Another client ID with the baseline's credentials: connects unless the policy pins iot:Connect.
    fn client_id(&mut self) {
        if self.t() == Transport::Mqtt || (self.full && self.t() == Transport::Wss) {
            self.add(Variant::ClientIdOther, "the baseline with another client ID", Expect::Unknown, |_| {});
        }
    }

    fn token_key(&mut self) {
        let creds = &self.plan.credentials;
        if creds.token.is_none() || !self.quick_mqtt() {
            return;
        }
        let configured = creds.token_key_name.clone();
        if configured != "token" {
            let c = Credentials { token_key_name: "token".into(), ..creds.clone() };
            let d = "the token under `token` instead of the configured key name";
            self.with_credentials(Variant::TokenKeyToken, d, Expect::Fail, c);
        }
        // hyper writes header names in lower case, so over HTTPS this variant would not change
        // the wire; header names are case-insensitive anyway (the WebSocket variant shows it).
        if self.t() != Transport::Https {
            let expect = if self.base.placement == Placement::Header { Expect::Pass } else { Expect::Fail };
            let c = Credentials { token_key_name: swap_case(&configured), ..creds.clone() };
            self.with_credentials(Variant::TokenKeyCase, "the token key name in another letter case", expect, c);
        }
    }

    fn signature(&mut self) {
        let Some(sig) = self.plan.credentials.signature.clone() else { return };
        let in_query = self.base.placement != Placement::Header;
        if in_query && self.quick_mqtt() {
            let expect = if sig.expose().contains('+') { Expect::Fail } else { Expect::Unknown };
            self.add(Variant::SignatureRaw, "the signature base64 as is (+ / = not percent-encoded)", expect, |s| {
                s.signature = SignatureForm::Raw
            });
        }
        if !self.full {
            return;
        }
        self.add(Variant::SignatureMissing, "no signature", Expect::Fail, |s| s.signature = SignatureForm::Missing);
        self.add(Variant::SignatureWrongName, "the signature under a wrong parameter name", Expect::Fail, |s| {
            s.signature = SignatureForm::WrongName
        });
        if self.plan.credentials.signer.is_some() {
            let d = "a valid signature over something other than the token";
            self.add(Variant::SignatureOtherValue, d, Expect::Fail, |s| s.signature = SignatureForm::OverOtherValue);
        }
    }

    fn authorizer(&mut self) {
        let creds = self.plan.credentials.clone();
        let Some(name) = &creds.authorizer else { return };
        if !self.quick_mqtt() {
            return;
        }
        let omitted = Credentials { authorizer: None, ..creds.clone() };
        let d = "no authorizer name (the endpoint's default authorizer)";
        self.with_credentials(Variant::AuthorizerOmitted, d, Expect::Unknown, omitted);
        let case = Credentials { authorizer: Some(swap_case(name)), ..creds.clone() };
        self.with_credentials(
            Variant::AuthorizerCase,
            "the authorizer name in another letter case",
            Expect::Fail,
            case,
        );
    }

    fn username_and_version(&mut self) {
        // A device on MQTT 5 may offer enhanced authentication (an Authentication Method property,
        // as SCRAM clients do); IoT Core has no AUTH packet.
        if self.t() == Transport::Mqtt && self.plan.device.mqtt_version == MqttVersion::V5 {
            self.add(
                Variant::Mqtt5EnhancedAuth,
                "MQTT 5 CONNECT with an Authentication Method (SCRAM-SHA-256): enhanced authentication",
                Expect::Fail,
                |_| {},
            );
        }
        if !self.full {
            return;
        }
        if self.t() == Transport::Mqtt {
            self.add(Variant::SdkMetrics, "SDK metrics appended with `&`", Expect::Pass, |s| {
                s.username_form = UsernameForm::SdkMetrics
            });
            self.add(Variant::SecondQuestionMark, "SDK metrics appended with a second `?`", Expect::Fail, |s| {
                s.username_form = UsernameForm::SecondQuestionMark
            });
        }
        if self.t() != Transport::Https {
            let (v, other) = match self.plan.device.mqtt_version {
                MqttVersion::V5 => (Variant::Mqtt311, MqttVersion::V311),
                MqttVersion::V311 => (Variant::Mqtt5, MqttVersion::V5),
            };
            self.add(v, "the other MQTT version", Expect::Pass, |s| s.mqtt_version = other);
        }
    }
}

/// `<id>-<transport>-<variant>`, at most 128 bytes (IoT Core's limit).
fn client_id(base: &str, t: Transport, variant: &str) -> String {
    let mut id = format!("{base}-{t}-{variant}");
    id.truncate(128);
    id
}

/// Another letter case: all upper case, or lower case when it already is.
pub fn swap_case(s: &str) -> String {
    let upper = s.to_ascii_uppercase();
    if upper == s { s.to_ascii_lowercase() } else { upper }
}

/// Every secret of the run: the plan's and those of every attempt the full matrix could make,
/// for scrubbing whatever a peer sent back before it is shown.
pub fn run_secrets(plan: &ProbePlan) -> crate::secret::Scrubber {
    let mut s = plan.secrets(&plan.baseline()[0]);
    for spec in variants(plan, Level::Full) {
        s.merge(&plan.secrets(&spec));
    }
    s
}
