//! The device's credential flags, shared by `probe` and `event`, and their validation: the token, its
//! signature (given, or made with `--signing-key`), the names, and what the AWS CLI's describe-authorizer
//! and describe-domain-configuration output say about them — all before anything is sent.

use crate::auth::signature::SigningKey;
use crate::probe::{Credentials, MqttVersion};
use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum MqttVersionArg {
    #[value(name = "3.1.1")]
    V311,
    #[value(name = "5")]
    V5,
}

/// The credentials a device sends (shared by `probe` and `event`).
#[derive(Debug, Args, Clone)]
pub struct CredentialArgs {
    /// The authorizer's name (x-amz-customauthorizer-name). Omit to use the endpoint's default authorizer.
    #[arg(long, value_name = "NAME")]
    pub authorizer: Option<String>,
    /// The authorizer's token key name (default: from --authorizer-json, else `token`).
    #[arg(long, value_name = "KEY")]
    pub token_key_name: Option<String>,
    /// `aws iot describe-authorizer` output: name, token key name, signing keys and status.
    #[arg(long, value_name = "FILE")]
    pub authorizer_json: Option<PathBuf>,
    /// The token.
    #[arg(long, value_name = "VALUE")]
    pub token: Option<String>,
    /// The token's signature, standard base64 (sent percent-encoded where needed).
    #[arg(long, value_name = "B64", conflicts_with = "signing_key")]
    pub signature: Option<String>,
    /// Sign the token with this RSA private key (PKCS#1 or PKCS#8 PEM).
    #[arg(long, value_name = "PEM")]
    pub signing_key: Option<PathBuf>,
    /// MQTT username (custom-auth parameters are appended after `?`).
    #[arg(long)]
    pub username: Option<String>,
    /// MQTT password.
    #[arg(long)]
    pub password: Option<String>,
    /// MQTT client ID. Default: authprobe-<random>.
    #[arg(long, value_name = "ID")]
    pub client_id: Option<String>,
    #[arg(long, value_enum, default_value_t = MqttVersionArg::V311)]
    pub mqtt_version: MqttVersionArg,
}

/// A device's validated credentials (shared by `probe` and `event`).
pub struct Device {
    pub credentials: Credentials,
    pub client_id: String,
    pub mqtt_version: MqttVersion,
    pub signer: Option<std::sync::Arc<SigningKey>>,
    /// Problems found in the AWS documents before anything is sent.
    pub warnings: Vec<String>,
    /// --authorizer-json describes the authorizer that will be named.
    pub authorizer_confirmed: bool,
}

pub(crate) fn read_json(flag: &str, path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {flag} {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{flag} {}: not JSON", path.display()))
}

impl CredentialArgs {
    /// Checks every credential flag and file; nothing touches the network.
    pub fn device(&self, domain: Option<&serde_json::Value>) -> anyhow::Result<Device> {
        let mut warnings = Vec::new();
        let described = match &self.authorizer_json {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --authorizer-json {}", path.display()))?;
                Some(crate::emulator::config::authorizer_from_describe_json(&text, path)?)
            }
            None => None,
        };
        let authorizer = self.authorizer.clone().or_else(|| described.as_ref().map(|a| a.name.clone()));
        let token_key_name = self
            .token_key_name
            .clone()
            .or_else(|| described.as_ref().map(|a| a.token_key_name.clone()))
            .unwrap_or_else(|| "token".into());
        if !is_token_key_name(&token_key_name) {
            bail!("--token-key-name `{token_key_name}` must match [a-zA-Z0-9_-]{{1,128}}");
        }
        if let Some(t) = &self.token {
            if t.is_empty() || t.len() > 6144 {
                bail!("--token must be 1 to 6144 characters (IoT Core's limit), got {}", t.len());
            }
        }
        let mut signer = None;
        let signature = match (&self.signature, &self.signing_key) {
            (Some(s), _) => Some(check_signature(s)?),
            (None, Some(path)) => {
                let Some(token) = &self.token else { bail!("--signing-key signs the token: give --token too") };
                let pem = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read --signing-key {}", path.display()))?;
                let key = SigningKey::from_pem(&pem).with_context(|| format!("--signing-key {}", path.display()))?;
                let sig = key.sign(token);
                signer = Some(std::sync::Arc::new(key));
                Some(sig)
            }
            (None, None) => None,
        };
        if let Some(a) = &described {
            if !a.active {
                warnings.push(format!("authorizer `{}` is INACTIVE: IoT Core will not run it", a.name));
            }
            if self.authorizer.as_ref().is_some_and(|n| *n != a.name) {
                warnings.push(format!(
                    "--authorizer `{}` differs from --authorizer-json's `{}`",
                    self.authorizer.as_deref().unwrap_or(""),
                    a.name
                ));
            }
            match (&a.signing, &signature, &self.token) {
                (Some(_), None, _) => {
                    warnings.push("the authorizer has signing enabled but no signature will be sent".into())
                }
                (Some(keys), Some(sig), Some(token)) => match crate::auth::signature::verify(keys, token, Some(sig)) {
                    crate::auth::signature::Verdict::Verified { key } => {
                        tracing::debug!("signature verifies with key {key}")
                    }
                    _ => warnings.push(format!(
                        "the signature does not verify with any of the authorizer's {} key(s)",
                        keys.len()
                    )),
                },
                _ => {}
            }
        }
        if let Some(d) = domain {
            domain_warnings(d, authorizer.as_deref(), &mut warnings);
        }
        let authorizer_confirmed = described.as_ref().is_some_and(|a| authorizer.as_deref() == Some(a.name.as_str()));
        let client_id =
            self.client_id.clone().unwrap_or_else(|| format!("authprobe-{}", &crate::auth::event::new_uuid()[..8]));
        if client_id.len() > 128 {
            bail!("--client-id is {} bytes; IoT Core allows at most 128", client_id.len());
        }
        Ok(Device {
            credentials: Credentials {
                authorizer,
                token_key_name,
                token: self.token.clone(),
                signature,
                username: self.username.clone(),
                password: self.password.clone(),
            },
            client_id,
            mqtt_version: match self.mqtt_version {
                MqttVersionArg::V311 => MqttVersion::V311,
                MqttVersionArg::V5 => MqttVersion::V5,
            },
            signer,
            warnings,
            authorizer_confirmed,
        })
    }
}

/// What a domain configuration says about custom auth for this device.
fn domain_warnings(d: &serde_json::Value, authorizer: Option<&str>, warnings: &mut Vec<String>) {
    let auth_type = d.get("authenticationType").and_then(|v| v.as_str()).unwrap_or("DEFAULT");
    if !matches!(auth_type, "CUSTOM_AUTH" | "CUSTOM_AUTH_X509" | "DEFAULT") {
        warnings
            .push(format!("the domain's authenticationType is {auth_type}: custom authentication is not used there"));
    }
    let cfg = d.get("authorizerConfig");
    let default = cfg.and_then(|c| c.get("defaultAuthorizerName")).and_then(|v| v.as_str());
    let override_ok = cfg.and_then(|c| c.get("allowAuthorizerOverride")).and_then(|v| v.as_bool()).unwrap_or(false);
    match (authorizer, default) {
        (None, None) => {
            warnings.push("no authorizer is named and the domain has no default authorizer: none will run".into())
        }
        (Some(a), Some(d)) if !override_ok && a != d => warnings.push(format!(
            "the domain does not allow authorizer override: `{a}` is ignored and the default `{d}` runs"
        )),
        _ => {}
    }
}

fn is_token_key_name(k: &str) -> bool {
    (1..=128).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// A signature must be standard base64 (`[A-Za-z0-9+/]+={0,2}`, 1–2560 characters).
fn check_signature(s: &str) -> anyhow::Result<String> {
    let s = s.trim();
    if s.contains('%') {
        bail!("--signature looks percent-encoded; give the plain base64 (authprobe encodes it where needed)");
    }
    if s.contains('-') || s.contains('_') {
        bail!("--signature is base64url (a JWT signature?); convert `-`→`+` and `_`→`/` and add `=` padding");
    }
    use base64::Engine as _;
    if s.is_empty() || s.len() > 2560 || base64::engine::general_purpose::STANDARD.decode(s).is_err() {
        bail!("--signature is not standard base64 of 1 to 2560 characters");
    }
    Ok(s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_checked() {
        assert!(check_signature("abc+/=").is_err(), "not valid base64 length");
        assert!(check_signature("YWJj").is_ok());
        assert!(check_signature("YW%2BJj").unwrap_err().to_string().contains("percent-encoded"));
        assert!(check_signature("YW-J_j").unwrap_err().to_string().contains("base64url"));
    }
}
