//! The authorizer toolkit: `sign`, `event`, `check-response`, `check-permission` — offline checks
//! with the same code the emulator uses. Exit codes: 0 all good, 1 a check failed, 2 bad input.

use super::args::{Format, PlacementArg, TransportArg};
use super::device::CredentialArgs;
use crate::auth::credentials::{Placement, encode};
use crate::auth::documents::DescribedAuthorizer;
use crate::auth::permission::{self, AuthorizerArn};
use crate::auth::response::{self, Intended};
use crate::auth::signature::{self, PublicKey, SigningKey};
use crate::probe::ProbePlan;
use anyhow::{Context as _, bail};
use clap::Args;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

fn verdict(ok: bool) -> ExitCode {
    ExitCode::from(if ok { 0 } else { 1 })
}

fn read(flag: &str, path: &Path) -> anyhow::Result<String> {
    Ok(crate::input::read_text(path, crate::input::Kind::Document, flag)?)
}

fn print_json(v: &impl serde::Serialize) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    serde_json::to_writer_pretty(&mut out, v)?;
    writeln!(out)?;
    Ok(())
}

/// JSON in the chosen form: pretty for `json`, one line for `jsonl`.
fn print_json_as(format: Format, v: &impl serde::Serialize) -> anyhow::Result<()> {
    if format == Format::Jsonl {
        let mut out = std::io::stdout().lock();
        serde_json::to_writer(&mut out, v)?;
        writeln!(out)?;
        return Ok(());
    }
    print_json(v)
}

#[derive(Debug, Args)]
pub(crate) struct SignArgs {
    /// Print only the result: no warnings or notes on standard error.
    #[arg(short, long)]
    pub quiet: bool,
    /// The token to sign or verify (or --token-file, or AUTHPROBE_TOKEN).
    #[arg(long, value_name = "VALUE", conflicts_with = "token_file")]
    pub token: Option<String>,
    /// Read the token from this file (`-`: standard input); one trailing line break is dropped.
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// RSA private key (PKCS#1 or PKCS#8 PEM) to sign with.
    #[arg(long, value_name = "PEM", required_unless_present = "verify")]
    pub signing_key: Option<PathBuf>,
    /// Verify --signature (or --signature-file, or AUTHPROBE_SIGNATURE) instead of signing.
    #[arg(long)]
    pub verify: bool,
    /// The base64 signature to verify (plain or percent-encoded).
    #[arg(long, value_name = "B64", conflicts_with = "signature_file")]
    pub signature: Option<String>,
    /// Read the signature to verify from this file (`-`: standard input).
    #[arg(long, value_name = "FILE")]
    pub signature_file: Option<PathBuf>,
    /// Public key(s) to verify with (SubjectPublicKeyInfo PEM, repeatable).
    #[arg(long = "public-key", value_name = "PEM")]
    pub public_keys: Vec<PathBuf>,
    /// Verify with the keys of `aws iot describe-authorizer` output.
    #[arg(long, value_name = "FILE")]
    pub authorizer_json: Option<PathBuf>,
    /// Output format: text, json, jsonl, or raw (the bare signature).
    #[arg(long, value_enum, default_value_t = SignFormat::Text)]
    pub format: SignFormat,
    /// With `--format raw`: print the percent-encoded form (for a username or query).
    #[arg(long)]
    pub percent_encode: bool,
}

/// Output of `sign`: `raw` is the bare signature, for `SIG=$(authprobe sign … --format raw)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum SignFormat {
    Text,
    Json,
    Jsonl,
    Raw,
}

pub(crate) fn sign(args: SignArgs) -> anyhow::Result<ExitCode> {
    let mut stdin_used = false;
    let token = super::device::secret(&args.token, &args.token_file, "token", "AUTHPROBE_TOKEN", &mut stdin_used)?
        .map(|(v, _)| v)
        .context("no token: give --token, --token-file or AUTHPROBE_TOKEN")?;
    if args.verify {
        return verify(&args, &token, &mut stdin_used);
    }
    let path = args.signing_key.as_deref().unwrap_or(Path::new(""));
    let bytes = crate::input::read_file(path, crate::input::Kind::Key, "--signing-key")?;
    let key = SigningKey::from_bytes(&bytes).with_context(|| format!("--signing-key {}", path.display()))?;
    // The signature is what `sign` makes: it is printed as is (reports and logs still redact it).
    let sig = key.sign(&token);
    let encoded = encode(&sig);
    match args.format {
        SignFormat::Raw => println!("{}", if args.percent_encode { &encoded } else { &sig }),
        SignFormat::Json | SignFormat::Jsonl => {
            let v = serde_json::json!({"signature": sig, "percent_encoded": encoded, "key_bits": key.bits()});
            print_json_as(if args.format == SignFormat::Jsonl { Format::Jsonl } else { Format::Json }, &v)?;
        }
        SignFormat::Text => crate::report::toolkit::sign(&mut std::io::stdout().lock(), &sig, &encoded)?,
    }
    Ok(ExitCode::SUCCESS)
}

/// `sign --verify`: whether the signature verifies over the token with the keys given.
fn verify(args: &SignArgs, token: &str, stdin_used: &mut bool) -> anyhow::Result<ExitCode> {
    let given =
        super::device::secret(&args.signature, &args.signature_file, "signature", "AUTHPROBE_SIGNATURE", stdin_used)?
            .map(|(v, _)| v)
            .context("--verify needs the signature: give --signature, --signature-file or AUTHPROBE_SIGNATURE")?;
    let keys = verify_keys(args)?;
    let plain = percent_encoding::percent_decode_str(given.trim()).decode_utf8_lossy().into_owned();
    let v = signature::verify(&keys, token, Some(&plain));
    let ok = matches!(v, signature::Verdict::Verified { .. });
    // When it does not verify over the token: what it does verify over (a newline, another hash, …).
    let forensic = if ok { None } else { signature::forensics(&keys, token, &plain, None) };
    if matches!(args.format, SignFormat::Json | SignFormat::Jsonl) {
        print_json_as(
            if args.format == SignFormat::Jsonl { Format::Jsonl } else { Format::Json },
            &serde_json::json!({
                "verified": ok,
                "verdict": v,
                "keys_tried": keys.iter().map(|k| &k.name).collect::<Vec<_>>(),
                "signed_instead": forensic,
            }),
        )?;
    } else {
        crate::report::toolkit::verify(&mut std::io::stdout().lock(), &v, forensic.as_ref(), &keys)?;
    }
    Ok(verdict(ok))
}

/// The keys `--verify` tries: `--public-key` files and the keys of `--authorizer-json`.
fn verify_keys(args: &SignArgs) -> anyhow::Result<Vec<PublicKey>> {
    let mut keys: Vec<PublicKey> = Vec::new();
    for (i, path) in args.public_keys.iter().enumerate() {
        let bytes = crate::input::read_file(path, crate::input::Kind::Key, "--public-key")?;
        keys.push(
            PublicKey::from_bytes(&format!("key{}", i + 1), &bytes)
                .with_context(|| format!("--public-key {}", path.display()))?,
        );
    }
    if let Some(path) = &args.authorizer_json {
        let a = DescribedAuthorizer::from_describe_json(&read("--authorizer-json", path)?, path)?;
        match a.signing_keys {
            Some(k) => keys.extend(k),
            None => bail!(
                "--authorizer-json {}: signing is disabled for `{}`; there is nothing to verify",
                path.display(),
                a.name
            ),
        }
    }
    if keys.is_empty() {
        bail!("--verify needs --public-key PEM or --authorizer-json FILE");
    }
    Ok(keys)
}

#[derive(Debug, Args)]
pub(crate) struct EventArgs {
    /// Print only the result: no warnings or notes on standard error.
    #[arg(short, long)]
    pub quiet: bool,
    /// The transport whose event to build.
    #[arg(long, value_enum)]
    pub transport: TransportArg,
    /// The endpoint (its name is the event's serverName).
    #[arg(long, value_name = "HOST")]
    pub endpoint: String,
    /// Where the credentials go (default: the username for mqtt, headers for wss and https).
    #[arg(long, value_enum)]
    pub placement: Option<PlacementArg>,
    /// Topic of the HTTPS publish.
    #[arg(long, default_value = "authprobe/probe")]
    pub topic: String,
    #[command(flatten)]
    pub creds: CredentialArgs,
    /// Print tokens and signatures as they are (needed to paste the event into a Lambda test).
    #[arg(long)]
    pub show_secrets: bool,
    /// Output format: the event is JSON (`text` and `json`: indented; `jsonl`: one line).
    #[arg(long, value_enum, default_value_t = Format::Json)]
    pub format: Format,
}

pub(crate) fn event(args: EventArgs) -> anyhow::Result<ExitCode> {
    let device = args.creds.device(None)?;
    for w in device.warnings(&args.endpoint) {
        if !args.quiet {
            eprintln!("warning: {w}");
        }
    }
    let plan = ProbePlan::builder(&args.endpoint, device.credentials)
        .transports(vec![args.transport.into()])
        .client_id(&device.client_id)
        .mqtt_version(device.mqtt_version)
        .topic(&args.topic)
        .show_secrets(args.show_secrets)
        .follow_up(false)
        .follow_up_spacing(Duration::ZERO)
        .arns(crate::auth::policy::Arns::new("us-east-1", "123456789012"))
        .build()?;
    let Some(mut spec) = plan.baseline().into_iter().next() else { bail!("no transport") };
    if let Some(p) = args.placement {
        spec.placement = match p {
            PlacementArg::Header => Placement::Header,
            PlacementArg::Query => Placement::Query,
            PlacementArg::Username => Placement::Username,
        };
        if spec.transport == crate::auth::event::Transport::Mqtt && spec.placement != Placement::Username {
            bail!("--placement: MQTT over TLS carries credentials only in the username");
        }
        if spec.transport == crate::auth::event::Transport::Https && spec.placement == Placement::Username {
            bail!("--placement: HTTPS has no MQTT username; use header or query");
        }
    }
    let key = tokio_tungstenite::tungstenite::handshake::client::generate_key();
    let seen = crate::probe::attempt::observed(&plan, &spec, &key);
    let c = &plan.credentials;
    // The event carries the token as IoT Core sends it to the function (printed redacted unless
    // --show-secrets).
    let token = c.token.as_ref().map_or("", crate::secret::Secret::expose);
    let ev = crate::auth::event::Event::build(
        spec.transport,
        token,
        c.signature.is_some(),
        &seen,
        &crate::auth::event::new_uuid(),
    );
    let value = serde_json::to_value(&ev)?;
    let value = crate::secret::scrub_json(&value, &plan.secrets(&spec));
    print_json_as(args.format, &value)?;
    if !args.show_secrets && !args.quiet {
        eprintln!("(secrets redacted: pass --show-secrets to paste this event into a Lambda test)");
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub(crate) struct CheckResponseArgs {
    /// Print only the result: no warnings or notes on standard error.
    #[arg(short, long)]
    pub quiet: bool,
    /// The authorizer's response (JSON).
    pub response: PathBuf,
    /// Check iot:Connect for this client ID.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    /// Check iot:Publish on this topic (repeatable).
    #[arg(long, value_name = "TOPIC")]
    pub publish: Vec<String>,
    /// Check iot:Subscribe on this topic filter (repeatable).
    #[arg(long, value_name = "FILTER")]
    pub subscribe: Vec<String>,
    /// Check iot:Receive on this topic (repeatable).
    #[arg(long, value_name = "TOPIC")]
    pub receive: Vec<String>,
    /// Region of the resource ARNs (default: from the policy's ARNs).
    #[arg(long)]
    pub region: Option<String>,
    /// Account of the resource ARNs (default: from the policy's ARNs).
    #[arg(long)]
    pub account: Option<String>,
    /// Output format: text, json, or jsonl (one line per object).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub(crate) fn check_response(args: CheckResponseArgs) -> anyhow::Result<ExitCode> {
    let text = read("the response file", &args.response)?;
    let value: serde_json::Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not JSON (fix the file or pass the response JSON)", args.response.display()))?;
    let intended = Intended {
        client_id: args.client_id.clone(),
        publish: args.publish.clone(),
        subscribe: args.subscribe.clone(),
        receive: args.receive.clone(),
        region: args.region.clone(),
        account: args.account.clone(),
    };
    let r = response::check(&value, &intended);
    if args.format != Format::Text {
        print_json_as(args.format, &r)?;
        return Ok(verdict(r.ok));
    }
    let file = args.response.display().to_string();
    crate::report::toolkit::check_response(&mut std::io::stdout().lock(), &file, &r)?;
    Ok(verdict(r.ok))
}

#[derive(Debug, Args)]
pub(crate) struct CheckPermissionArgs {
    /// Print only the result: no warnings or notes on standard error.
    #[arg(short, long)]
    pub quiet: bool,
    /// `aws lambda get-policy` output, or the policy document itself.
    pub policy: PathBuf,
    /// The authorizer's ARN (arn:aws:iot:<region>:<account>:authorizer/<name>).
    #[arg(long, value_name = "ARN", required_unless_present = "authorizer")]
    pub authorizer_arn: Option<String>,
    /// The authorizer's name, with --region and --account, instead of --authorizer-arn.
    #[arg(long, value_name = "NAME", requires_all = ["region", "account"])]
    pub authorizer: Option<String>,
    /// The authorizer's region (with --authorizer).
    #[arg(long)]
    pub region: Option<String>,
    /// The authorizer's account ID (with --authorizer).
    #[arg(long)]
    pub account: Option<String>,
    /// Output format: text, json, or jsonl (one line per object).
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
}

pub(crate) fn check_permission(args: CheckPermissionArgs) -> anyhow::Result<ExitCode> {
    let arn_text = match (&args.authorizer_arn, &args.authorizer) {
        (Some(a), _) => a.clone(),
        (None, Some(name)) => crate::auth::policy::Arns::new(
            args.region.as_deref().unwrap_or_default(),
            args.account.as_deref().unwrap_or_default(),
        )
        .authorizer(name),
        (None, None) => bail!("give --authorizer-arn ARN (or --authorizer NAME --region R --account A)"),
    };
    let arn = AuthorizerArn::parse(&arn_text).map_err(|e| anyhow::anyhow!("--authorizer-arn: {e}"))?;
    let text = read("the policy file", &args.policy)?;
    let policy = permission::read_policy(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.policy.display()))?;
    let r = permission::check(&policy, &arn);
    if args.format != Format::Text {
        print_json_as(args.format, &r)?;
        return Ok(verdict(r.invoke_permitted));
    }
    crate::report::toolkit::check_permission(&mut std::io::stdout().lock(), &r, &arn)?;
    Ok(verdict(r.invoke_permitted))
}
