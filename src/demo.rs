//! `authprobe demo`: the emulator on loopback with a fresh signing key and authorizer, probed with
//! good credentials (every transport succeeds) and with broken ones (each fails, and says why).

use crate::auth::credentials::Placement;
use crate::auth::event::Transport;
use crate::auth::signature::{PublicKey, SigningKey};
use crate::emulator::{self, Authorizer, EmulatorConfig, Function, Rule};
use crate::probe::plan::SignatureForm;
use crate::probe::{AttemptSpec, Credentials, MqttVersion, ProbePlan, Trust};
use crate::report::Report;
use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use std::time::Duration;

pub const ENDPOINT: &str = "abc123-ats.iot.us-east-1.amazonaws.com";
pub const AUTHORIZER: &str = "DemoAuthorizer";
pub const TOKEN_KEY_NAME: &str = "token";
const GOOD_TOKEN: &str = "demo-device-token";
const DENIED_TOKEN: &str = "revoked-device-token";

/// What the demo set up, for the user to read.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Setup {
    pub emulator: String,
    pub endpoint: String,
    pub authorizer: String,
    pub token_key_name: String,
    pub key_bits: usize,
    /// The broken attempts and what each one breaks.
    pub broken: Vec<(String, String)>,
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("generating the demo's RSA key: {0}")]
    Key(String),
    #[error("setting up the emulator: {0}")]
    Emulator(String),
    #[error("binding 127.0.0.1:0: {0}")]
    Bind(#[from] std::io::Error),
}

/// Runs the whole demo and returns what was set up and the probe's report.
pub async fn run(show_secrets: bool) -> Result<(Setup, Report), DemoError> {
    let (signing, public) = keypair()?;
    let mut authorizer = Authorizer::new(AUTHORIZER, TOKEN_KEY_NAME);
    authorizer.signing = Some(vec![public]);
    authorizer.function = Function::Rules(vec![Rule::allow_all(GOOD_TOKEN)]);
    let mut cfg = EmulatorConfig::new(vec![ENDPOINT.into(), "localhost".into()])
        .map_err(|e| DemoError::Emulator(e.to_string()))?;
    cfg.authorizers.push(authorizer);
    let ca_pem = cfg.identity.ca_pem.clone().unwrap_or_default();
    let roots: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(ca_pem.as_bytes()).filter_map(Result::ok).collect();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(emulator::run(listener, cfg, async {
        let _ = stopped.await;
    }));

    let plan = ProbePlan {
        endpoint: ENDPOINT.into(),
        port: 443,
        connect_to: Some((addr.ip().to_string(), Some(addr.port()))),
        transports: Transport::ALL.to_vec(),
        credentials: Credentials {
            authorizer: Some(AUTHORIZER.into()),
            token_key_name: TOKEN_KEY_NAME.into(),
            token: Some(GOOD_TOKEN.into()),
            signature: Some(signing.sign(GOOD_TOKEN)),
            username: None,
            password: None,
        },
        client_id: "authprobe-demo".into(),
        mqtt_version: MqttVersion::V311,
        topic: "demo/telemetry".into(),
        trust: Trust::Roots(roots),
        timeout: Duration::from_secs(10),
        show_secrets,
    };
    let mut specs = plan.baseline();
    let broken = broken_specs(&plan, &signing);
    let setup = Setup {
        emulator: addr.to_string(),
        endpoint: ENDPOINT.into(),
        authorizer: AUTHORIZER.into(),
        token_key_name: TOKEN_KEY_NAME.into(),
        key_bits: signing.bits(),
        broken: broken.iter().map(|(s, why)| (s.id.clone(), (*why).to_owned())).collect(),
    };
    specs.extend(broken.into_iter().map(|(s, _)| s));
    let report = crate::probe::run(&plan, &specs).await;
    let _ = stop.send(());
    let _ = server.await;
    Ok((setup, report))
}

/// The deliberately broken attempts, each with the one thing it gets wrong.
fn broken_specs(plan: &ProbePlan, signing: &SigningKey) -> Vec<(AttemptSpec, &'static str)> {
    let base = plan.baseline();
    let of = |t: Transport| base.iter().find(|s| s.transport == t).cloned().unwrap_or_else(|| base[0].clone());
    let broken = |t: Transport, id: &str| AttemptSpec { id: id.into(), expect_success: false, ..of(t) };

    let mut no_sig = broken(Transport::Mqtt, "mqtt-no-signature");
    no_sig.signature = SignatureForm::Missing;

    let mut wrong_key = broken(Transport::Mqtt, "mqtt-wrong-token-key-name");
    wrong_key.credentials = Some(Credentials { token_key_name: "deviceToken".into(), ..plan.credentials.clone() });

    let mut denied = broken(Transport::Https, "https-denied-token");
    denied.placement = Placement::Header;
    denied.credentials = Some(Credentials {
        token: Some(DENIED_TOKEN.into()),
        signature: Some(signing.sign(DENIED_TOKEN)),
        ..plan.credentials.clone()
    });
    vec![
        (no_sig, "the signature is left out (signing is on)"),
        (wrong_key, "the token is sent under `deviceToken`; the authorizer reads `token`"),
        (denied, "a correctly signed token the authorizer denies"),
    ]
}

/// A fresh RSA-2048 key pair: ring signs with it, the emulator verifies with its SPKI PEM.
fn keypair() -> Result<(SigningKey, PublicKey), DemoError> {
    let err = |e: &dyn std::fmt::Display| DemoError::Key(e.to_string());
    let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).map_err(|e| err(&e))?;
    let pkcs8 = private.to_pkcs8_pem(LineEnding::LF).map_err(|e| err(&e))?;
    let spki = private.to_public_key().to_public_key_pem(LineEnding::LF).map_err(|e| err(&e))?;
    let signing = SigningKey::from_pem(&pkcs8).map_err(|e| err(&e))?;
    let public = PublicKey::from_pem("demo-key", &spki).map_err(|e| err(&e))?;
    Ok((signing, public))
}
