//! What to probe, validated before any socket opens: the endpoint, trust, credentials, and one
//! `AttemptSpec` per attempt (the baseline of each transport, exactly as IoT Core documents it).

use crate::auth::credentials::{AUTHORIZER_NAME, Placement, SIGNATURE, encode};
use crate::auth::event::Transport;
use rustls::pki_types::CertificateDer;
use std::time::Duration;

/// Which certificates the probe trusts.
#[derive(Clone, Debug)]
pub enum Trust {
    /// The bundled Mozilla roots (webpki-roots), which include Amazon's.
    Bundled,
    /// Only these roots (`--ca`).
    Roots(Vec<CertificateDer<'static>>),
    /// No verification (`--insecure`); the chain is still recorded.
    Insecure,
}

/// The credentials a device would send.
#[derive(Clone, Debug, Default)]
pub struct Credentials {
    pub authorizer: Option<String>,
    pub token_key_name: String,
    pub token: Option<String>,
    /// Standard base64; given, or computed from `--signing-key` at plan time.
    pub signature: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
}

/// The MQTT protocol version of CONNECT.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MqttVersion {
    V311,
    V5,
}

impl MqttVersion {
    pub fn level(self) -> u8 {
        match self {
            Self::V311 => 4,
            Self::V5 => 5,
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Self::V311 => "3.1.1",
            Self::V5 => "5",
        }
    }
}

/// A validated probe: everything `authprobe probe` needs.
#[derive(Clone, Debug)]
pub struct ProbePlan {
    /// SNI, Host header and certificate name.
    pub endpoint: String,
    pub port: u16,
    /// Dial this host (and port) instead of resolving the endpoint.
    pub connect_to: Option<(String, Option<u16>)>,
    pub transports: Vec<Transport>,
    pub credentials: Credentials,
    pub client_id: String,
    pub mqtt_version: MqttVersion,
    pub topic: String,
    pub trust: Trust,
    /// Per-stage timeout.
    pub timeout: Duration,
    pub show_secrets: bool,
}

/// How the signature travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignatureForm {
    /// Percent-encoded in a username or query; as is in a header (the documented form).
    Documented,
    /// Base64 as is, even inside a username or query (`+`, `/`, `=` unencoded).
    Raw,
    /// Not sent.
    Missing,
}

/// One connection attempt.
#[derive(Clone, Debug)]
pub struct AttemptSpec {
    /// Stable identifier, e.g. `mqtt`, `wss`, `https`.
    pub id: String,
    pub transport: Transport,
    /// SNI sent (`None`: no SNI extension).
    pub sni: Option<String>,
    pub alpn: Vec<Vec<u8>>,
    /// Host header (wss, https).
    pub host: Option<String>,
    pub port: u16,
    /// Where the custom-auth parameters go.
    pub placement: Placement,
    pub signature: SignatureForm,
    pub mqtt_version: MqttVersion,
    pub client_id: String,
    /// Whether IoT Core is documented to accept this attempt.
    pub expect_success: bool,
    /// Credentials for this attempt instead of the plan's (e.g. a deliberately wrong token key name).
    pub credentials: Option<Credentials>,
}

impl ProbePlan {
    /// One baseline attempt per requested transport, as IoT Core documents it.
    pub fn baseline(&self) -> Vec<AttemptSpec> {
        self.transports
            .iter()
            .map(|&t| AttemptSpec {
                id: t.as_str().to_owned(),
                transport: t,
                sni: Some(self.endpoint.clone()),
                alpn: if t == Transport::Mqtt { vec![b"mqtt".to_vec()] } else { Vec::new() },
                host: (t != Transport::Mqtt).then(|| self.endpoint.clone()),
                port: self.port,
                placement: if t == Transport::Mqtt { Placement::Username } else { Placement::Header },
                signature: SignatureForm::Documented,
                mqtt_version: self.mqtt_version,
                client_id: self.client_id.clone(),
                expect_success: true,
                credentials: None,
            })
            .collect()
    }

    /// The custom-auth parameters in their wire form for `placement` (percent-encoded in queries).
    pub fn auth_params(&self, spec: &AttemptSpec) -> Vec<(String, String)> {
        let c = self.credentials_for(spec);
        let in_query = spec.placement != Placement::Header;
        let enc = |v: &str| if in_query { encode(v) } else { v.to_owned() };
        let mut out = Vec::new();
        if let Some(a) = &c.authorizer {
            out.push((AUTHORIZER_NAME.to_owned(), enc(a)));
        }
        if let Some(s) = &c.signature {
            match spec.signature {
                SignatureForm::Documented => out.push((SIGNATURE.to_owned(), enc(s))),
                SignatureForm::Raw => out.push((SIGNATURE.to_owned(), s.clone())),
                SignatureForm::Missing => {}
            }
        }
        if let Some(t) = &c.token {
            out.push((c.token_key_name.clone(), enc(t)));
        }
        out
    }

    /// The credentials an attempt sends.
    pub fn credentials_for<'a>(&'a self, spec: &'a AttemptSpec) -> &'a Credentials {
        spec.credentials.as_ref().unwrap_or(&self.credentials)
    }

    /// Every secret this attempt sends, for redaction.
    pub fn secrets(&self, spec: &AttemptSpec) -> crate::secret::Scrubber {
        let mut s = crate::secret::Scrubber::new(self.show_secrets);
        for c in [&self.credentials, self.credentials_for(spec)] {
            for v in [&c.token, &c.signature, &c.password].into_iter().flatten() {
                s.add(v);
                s.add_form(v, &encode(v));
            }
        }
        s
    }
}
