//! `authprobe demo`: the emulator on loopback with a fresh signing key and authorizer, probed with the
//! quick matrix as three devices — one that works and two with broken credentials, each of which the
//! diagnosis must name exactly.

use crate::auth::documents::{DescribedAuthorizer, Documents};
use crate::auth::signature::{PublicKey, SigningKey};
use crate::emulator::{self, Authorizer, EmulatorConfig, Function, Rule};
use crate::probe::{Credentials, ProbePlan, Schedule, Trust, matrix};
use rsa::pkcs8::{EncodePrivateKey as _, EncodePublicKey as _, LineEnding};
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject as _;
use std::sync::Arc;
use std::time::Duration;

pub(crate) const ENDPOINT: &str = "abc123-ats.iot.us-east-1.amazonaws.com";
pub(crate) const AUTHORIZER: &str = "DemoAuthorizer";
pub(crate) const TOKEN_KEY_NAME: &str = "token";
const GOOD_TOKEN: &str = "demo-device-token";
const DENIED_TOKEN: &str = "revoked-device-token";

pub(crate) use crate::report::demo::{Demo, Scenario, Setup};

#[derive(Debug, thiserror::Error)]
pub(crate) enum DemoError {
    #[error("generating the demo's RSA key: {0}")]
    Key(String),
    #[error("setting up the emulator: {0}")]
    Emulator(String),
    #[error("binding 127.0.0.1:0: {0}")]
    Bind(#[from] std::io::Error),
}

/// Runs the emulator on 127.0.0.1:0 and probes it (quick matrix) as three devices: one that works,
/// one that sends its token under the wrong key name, one whose token the authorizer denies.
pub(crate) async fn run(show_secrets: bool, progress: &dyn crate::probe::Progress) -> Result<Demo, DemoError> {
    let (signing, public) = keypair()?;
    // A token whose signature contains `+`, so the unencoded form is visibly wrong.
    let good = (0..256)
        .map(|i| format!("{GOOD_TOKEN}-{i}"))
        .find(|t| signing.sign(t).contains('+'))
        .unwrap_or_else(|| GOOD_TOKEN.to_owned());
    let mut authorizer = Authorizer::new(AUTHORIZER, TOKEN_KEY_NAME);
    authorizer.signing = Some(vec![public.clone()]);
    authorizer.function = Function::Rules(vec![Rule::allow_all(&good)]);
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

    let signing = Arc::new(signing);
    let cases = cases(&signing, &public, &good, addr, roots, show_secrets);
    let mut scenarios = Vec::new();
    for (name, description, plan, expected) in cases {
        let specs = matrix::variants(&plan, matrix::Level::Quick);
        let report = crate::investigate::run_with(&plan, &specs, Schedule::ALL, progress).await;
        let mut got: Vec<&str> = report.findings.iter().map(|f| f.id.as_str()).collect();
        got.sort_unstable();
        let mut want = expected.clone();
        want.sort_unstable();
        let connects = name != "working-device" || report.exit_code == 0;
        scenarios.push(Scenario {
            name,
            description,
            as_designed: got == want && connects,
            expected_findings: expected,
            report,
        });
    }
    let _ = stop.send(());
    let _ = server.await;
    let setup = Setup {
        emulator: addr.to_string(),
        endpoint: ENDPOINT.into(),
        authorizer: AUTHORIZER.into(),
        token_key_name: TOKEN_KEY_NAME.into(),
        key_bits: signing.bits(),
    };
    let as_designed = scenarios.iter().all(|s| s.as_designed);
    Ok(Demo { setup, scenarios, as_designed })
}

/// The three devices of the demo: (name, description, plan, the findings it is designed to give).
fn cases(
    signing: &Arc<SigningKey>,
    public: &PublicKey,
    good: &str,
    addr: std::net::SocketAddr,
    roots: Vec<CertificateDer<'static>>,
    show_secrets: bool,
) -> [(&'static str, &'static str, ProbePlan, Vec<&'static str>); 3] {
    let credentials = Credentials {
        authorizer: Some(AUTHORIZER.into()),
        token_key_name: TOKEN_KEY_NAME.into(),
        token: Some(good.into()),
        signature: Some(signing.sign(good).into()),
        signer: Some(signing.clone()),
        ..Credentials::default()
    };
    let mut base = ProbePlan::builder(ENDPOINT, credentials);
    base.connect_to(&addr.ip().to_string(), Some(addr.port()))
        .client_id("demo-working")
        .topic("demo/telemetry")
        .trust(Trust::Roots(roots))
        .show_secrets(show_secrets)
        // What `aws iot describe-authorizer` would print for the demo's authorizer.
        .documents(Documents {
            authorizer: Some(DescribedAuthorizer {
                name: AUTHORIZER.into(),
                token_key_name: TOKEN_KEY_NAME.into(),
                active: true,
                signing_keys: Some(vec![public.clone()]),
            }),
            ..Documents::default()
        })
        // The emulator does not limit connects per client ID; IoT Core needs about 1 s.
        .follow_up_spacing(Duration::ZERO)
        .arns(crate::auth::policy::Arns::new("us-east-1", "123456789012"));
    let mut wrong_key = base.clone();
    wrong_key.client_id("demo-keyname").credentials_mut().token_key_name = "deviceToken".into();
    let mut denied = base.clone();
    let c = denied.client_id("demo-denied").credentials_mut();
    c.token = Some(DENIED_TOKEN.into());
    c.signature = Some(signing.sign(DENIED_TOKEN).into());
    // The demo's own settings: a plan that does not build is a bug here, not bad input.
    let built = |b: &crate::probe::PlanBuilder| b.build().expect("the demo's plans are valid");
    let (base, wrong_key, denied) = (built(&base), built(&wrong_key), built(&denied));
    [
        (
            "working-device",
            "a correctly configured device: every transport connects; the findings are risks: what would break it",
            base,
            // A signed token's CONNECT (the signature alone is 344 characters) outgrows the small
            // CONNECT buffers of embedded clients: a real risk of every signed device.
            vec!["sni_missing", "alpn_missing", "signature_not_encoded", "connect_packet_too_large"],
        ),
        (
            "wrong-token-key-name",
            "the device sends its token as `deviceToken=…`; the authorizer's token key name is `token`",
            wrong_key,
            vec!["token_key_name_wrong", "connect_packet_too_large"],
        ),
        (
            "denied-token",
            "the device sends a correctly signed token that the authorizer denies: from a device, a denial, a failing Lambda and a policy without iot:Connect look alike",
            denied,
            vec!["refused_unexplained", "connect_packet_too_large"],
        ),
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
