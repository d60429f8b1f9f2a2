//! The device's credential flags, shared by `probe` and `event`, and their validation: the token, its
//! signature (given, or made with `--signing-key`), the names, and what the AWS CLI's describe-authorizer
//! and describe-domain-configuration output say about them — all before anything is sent.

use crate::auth::documents::{DescribedAuthorizer, Documents, Domain};
use crate::auth::signature::{PublicKey, SigningKey};
use crate::probe::{Credentials, MqttVersion};
use crate::secret::Secret;
use anyhow::{Context as _, bail};
use clap::{Args, ValueEnum};
use std::path::PathBuf;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
pub(crate) enum MqttVersionArg {
    #[value(name = "3.1.1", alias = "311", alias = "3")]
    #[serde(rename = "3.1.1")]
    V311,
    #[value(name = "5", alias = "v5")]
    #[serde(rename = "5")]
    V5,
}

/// The credentials a device sends (shared by `probe` and `event`).
#[derive(Debug, Args, Clone)]
pub(crate) struct CredentialArgs {
    /// The authorizer's name (x-amz-customauthorizer-name). Omit to use the endpoint's default authorizer.
    #[arg(help_heading = "Credentials", long, value_name = "NAME")]
    pub authorizer: Option<String>,
    /// The authorizer's token key name (default: from --authorizer-json, else `token`).
    #[arg(help_heading = "Credentials", long, value_name = "KEY")]
    pub token_key_name: Option<String>,
    /// `aws iot describe-authorizer` output: name, token key name, signing keys and status.
    #[arg(help_heading = "Credentials", hide_short_help = true, long, value_name = "FILE")]
    pub authorizer_json: Option<PathBuf>,
    /// The token (visible in shell history and `ps`: prefer --token-file or AUTHPROBE_TOKEN).
    #[arg(help_heading = "Credentials", long, value_name = "VALUE", conflicts_with = "token_file")]
    pub token: Option<String>,
    /// Read the token from this file (`-`: standard input); one trailing line break is dropped.
    #[arg(help_heading = "Credentials", long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// The token's signature, standard base64 (sent percent-encoded where needed).
    #[arg(hide_short_help = true, help_heading = "Credentials", long, value_name = "B64", conflicts_with_all = ["signing_key", "signature_file"])]
    pub signature: Option<String>,
    /// Read the signature from this file (`-`: standard input).
    #[arg(help_heading = "Credentials", long, value_name = "FILE", conflicts_with = "signing_key")]
    pub signature_file: Option<PathBuf>,
    /// The authorizer's token-signing public key (SubjectPublicKeyInfo PEM, repeatable): the
    /// signature is verified locally before anything is sent.
    #[arg(help_heading = "Credentials", hide_short_help = true, long = "public-key", value_name = "PEM")]
    pub public_keys: Vec<PathBuf>,
    /// Sign the token with this RSA private key (PKCS#1 or PKCS#8 PEM).
    #[arg(help_heading = "Credentials", hide_short_help = true, long, value_name = "PEM")]
    pub signing_key: Option<PathBuf>,
    /// MQTT username (custom-auth parameters are appended after `?`).
    #[arg(hide_short_help = true, help_heading = "Credentials", long)]
    pub username: Option<String>,
    /// MQTT password (prefer --password-file or AUTHPROBE_PASSWORD).
    #[arg(help_heading = "Credentials", hide_short_help = true, long, conflicts_with = "password_file")]
    pub password: Option<String>,
    /// Read the MQTT password from this file (`-`: standard input).
    #[arg(help_heading = "Credentials", hide_short_help = true, long, value_name = "FILE")]
    pub password_file: Option<PathBuf>,
    /// MQTT client ID. Default: authprobe-<random>.
    #[arg(hide_short_help = true, help_heading = "Credentials", long, value_name = "ID")]
    pub client_id: Option<String>,
    /// MQTT version of CONNECT (default 3.1.1).
    #[arg(help_heading = "Credentials", hide_short_help = true, long, value_enum)]
    pub mqtt_version: Option<MqttVersionArg>,
    /// Environment variables named by a device profile (`token_env`, …), read before AUTHPROBE_*.
    #[arg(skip)]
    pub env_names: SecretEnv,
    /// The device profile that named where the secrets are, if one did (for the report's sources).
    #[arg(skip)]
    pub profile: Option<String>,
    /// The secrets (`token`, `signature`, `password`) whose source the profile named.
    #[arg(skip)]
    pub profile_named: Vec<&'static str>,
}

/// The environment variables a device profile names for its secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SecretEnv {
    pub token: Option<String>,
    pub signature: Option<String>,
    pub password: Option<String>,
}

/// A device's validated credentials (shared by `probe` and `event`).
pub(crate) struct Device {
    /// The credentials, the signing key and where each secret came from.
    pub credentials: Credentials,
    pub client_id: String,
    pub mqtt_version: MqttVersion,
    /// What the AWS documents say, for the local checks.
    pub documents: Documents,
}

impl Device {
    /// The failed local checks, as warnings (`event` prints them; `probe` reports them).
    pub(crate) fn warnings(&self, endpoint: &str) -> Vec<String> {
        crate::diagnosis::local::checks(&self.documents, &self.credentials, endpoint, 443)
            .into_iter()
            .filter(|c| !c.passed && c.check != crate::diagnosis::local::CheckId::Port443)
            .map(|c| c.detail)
            .collect()
    }
}

pub(crate) fn read_json(flag: &str, path: &std::path::Path) -> anyhow::Result<serde_json::Value> {
    let text = crate::input::read_text(path, crate::input::Kind::Document, flag)?;
    serde_json::from_str(&text).with_context(|| format!("{flag} {}: not JSON", path.display()))
}

impl CredentialArgs {
    /// Checks every credential flag and file; nothing touches the network.
    pub(crate) fn device(&self, domain: Option<&serde_json::Value>) -> anyhow::Result<Device> {
        let described = match &self.authorizer_json {
            Some(path) => {
                let text = crate::input::read_text(path, crate::input::Kind::Document, "--authorizer-json")?;
                Some(DescribedAuthorizer::from_describe_json(&text, path)?)
            }
            None => None,
        };
        for (flag, v) in [
            ("--authorizer", &self.authorizer),
            ("--client-id", &self.client_id),
            ("--token-key-name", &self.token_key_name),
        ] {
            if v.as_deref().is_some_and(|v| v.trim().is_empty()) {
                bail!("{flag} is empty (an unset variable?): give a value, or leave {flag} out");
            }
        }
        let authorizer = self.authorizer.clone().or_else(|| described.as_ref().map(|a| a.name.clone()));
        let token_key_name = self
            .token_key_name
            .clone()
            .or_else(|| described.as_ref().map(|a| a.token_key_name.clone()))
            .unwrap_or_else(|| "token".into());
        if !is_token_key_name(&token_key_name) {
            bail!("--token-key-name `{token_key_name}` must match [a-zA-Z0-9_-]{{1,128}}");
        }
        let Secrets { token, signature: given_signature, password, sources } = self.secrets()?;
        mqtt_sized(self.username.as_deref(), password.as_deref())?;
        let (signature, signer) = self.signature(given_signature.as_deref(), token.as_deref())?;
        let documents = Documents {
            authorizer: described,
            public_keys: self.public_keys()?,
            domain: domain.map(Domain::from_json),
            endpoint_address: None,
        };
        let client_id =
            self.client_id.clone().unwrap_or_else(|| format!("authprobe-{}", &crate::auth::event::new_uuid()[..8]));
        if client_id.len() > 128 {
            bail!("--client-id is {} bytes; IoT Core allows at most 128", client_id.len());
        }
        Ok(Device {
            credentials: Credentials {
                authorizer,
                token_key_name,
                token: token.map(Secret::new),
                signature: signature.map(Secret::new),
                username: self.username.clone(),
                password: password.map(Secret::new),
                signer,
                sources,
            },
            client_id,
            mqtt_version: match self.mqtt_version {
                Some(MqttVersionArg::V5) => MqttVersion::V5,
                _ => MqttVersion::V311,
            },
            documents,
        })
    }
}

/// The device's secrets as read, with where each came from.
struct Secrets {
    token: Option<String>,
    signature: Option<String>,
    password: Option<String>,
    sources: Vec<String>,
}

impl CredentialArgs {
    /// Reads the token, the signature and the password from their flags, files or variables.
    fn secrets(&self) -> anyhow::Result<Secrets> {
        let mut stdin_used = false;
        let env = |named: &Option<String>, default: &'static str| named.clone().unwrap_or_else(|| default.to_owned());
        let mut sources = Vec::new();
        let mut note = |name: &str, found: Option<(String, String)>| {
            found.map(|(value, source)| {
                let source =
                    if source == format!("--{name}") { format!("{source} (the command line)") } else { source };
                let by = self.profile.as_ref().filter(|_| self.profile_named.contains(&name));
                sources.push(match by {
                    Some(p) => format!("{name} from {source} (named by --device {p})"),
                    None => format!("{name} from {source}"),
                });
                value
            })
        };
        let token_env = env(&self.env_names.token, "AUTHPROBE_TOKEN");
        let token = note("token", secret(&self.token, &self.token_file, "token", &token_env, &mut stdin_used)?);
        if let Some(t) = &token {
            if t.len() > 6144 {
                bail!("the token must be 1 to 6144 characters (IoT Core's limit), got {}", t.len());
            }
        }
        let signature_env = env(&self.env_names.signature, "AUTHPROBE_SIGNATURE");
        let signature = note(
            "signature",
            secret(&self.signature, &self.signature_file, "signature", &signature_env, &mut stdin_used)?,
        );
        let password_env = env(&self.env_names.password, "AUTHPROBE_PASSWORD");
        let password =
            note("password", secret(&self.password, &self.password_file, "password", &password_env, &mut stdin_used)?);
        // A variable the device profile names that is not set: say which, and which profile.
        for (what, found, named) in [
            ("token", token.is_some(), &self.env_names.token),
            ("signature", signature.is_some() || self.signing_key.is_some(), &self.env_names.signature),
            ("password", password.is_some(), &self.env_names.password),
        ] {
            if let (false, Some(var), Some(profile)) = (found, named, &self.profile) {
                bail!(
                    "--device {profile}: {what}_env = {var}, and the environment variable {var} is not set: \
                     export {var}=… (or give --{what}-file) and run again"
                );
            }
        }
        if signature.is_none() {
            if let Some(k) = &self.signing_key {
                sources.push(format!("signature made with --signing-key {}", k.display()));
            }
        }
        Ok(Secrets { token, signature, password, sources })
    }

    /// The signature given, checked, or made with `--signing-key` (with the key, for variants that
    /// sign something else).
    fn signature(
        &self,
        given: Option<&str>,
        token: Option<&str>,
    ) -> anyhow::Result<(Option<String>, Option<std::sync::Arc<SigningKey>>)> {
        match (given, &self.signing_key) {
            (Some(s), _) => Ok((Some(check_signature(s)?), None)),
            (None, Some(path)) => {
                let Some(token) = token else {
                    bail!("--signing-key signs the token: give --token (or --token-file, AUTHPROBE_TOKEN) too")
                };
                let bytes = crate::input::read_file(path, crate::input::Kind::Key, "--signing-key")?;
                let key =
                    SigningKey::from_bytes(&bytes).with_context(|| format!("--signing-key {}", path.display()))?;
                let sig = key.sign(token);
                Ok((Some(sig), Some(std::sync::Arc::new(key))))
            }
            (None, None) => Ok((None, None)),
        }
    }

    /// The `--public-key` files, read.
    fn public_keys(&self) -> anyhow::Result<Vec<PublicKey>> {
        read_public_keys(&self.public_keys)
    }
}

/// `--public-key` files, read and parsed (named `public-key-1`, `-2`, … in findings).
pub(crate) fn read_public_keys(paths: &[PathBuf]) -> anyhow::Result<Vec<PublicKey>> {
    let mut keys = Vec::new();
    for (i, path) in paths.iter().enumerate() {
        let bytes = crate::input::read_file(path, crate::input::Kind::Key, "--public-key")?;
        let key = PublicKey::from_bytes(&format!("public-key-{}", i + 1), &bytes)
            .with_context(|| format!("--public-key {}", path.display()))?;
        keys.push(key);
    }
    Ok(keys)
}

/// MQTT strings are at most 65,535 bytes; the username also carries the credentials (a token of up to
/// 6,144 characters, its signature, the names), so it is kept to half of that.
fn mqtt_sized(username: Option<&str>, password: Option<&str>) -> anyhow::Result<()> {
    for (flag, v, max) in [("--username", username, 32_768), ("--password", password, 65_535)] {
        if let Some(len) = v.map(str::len).filter(|l| *l > max) {
            bail!("{flag} is {len} bytes; at most {max} fit in an MQTT CONNECT");
        }
    }
    Ok(())
}

/// A secret from its flag, its file (`-`: standard input, once) or its environment variable, in
/// that order, with where it came from. An empty value from any source is an error, never an empty
/// credential.
pub(super) fn secret(
    flag: &Option<String>,
    file: &Option<PathBuf>,
    name: &str,
    env: &str,
    stdin_used: &mut bool,
) -> anyhow::Result<Option<(String, String)>> {
    let (value, source) = match (flag, file) {
        (Some(v), _) => (v.clone(), format!("--{name}")),
        (None, Some(path)) if path.as_os_str() == "-" => {
            if std::mem::replace(stdin_used, true) {
                bail!("--{name}-file -: standard input is already read for another secret; use a file");
            }
            let what = format!("--{name}-file");
            let bytes = crate::input::read_bounded(std::io::stdin(), kind_of(name), &what, "- (standard input)")?;
            let text =
                String::from_utf8(bytes).with_context(|| format!("{what} - (standard input) is not UTF-8 text"))?;
            (text, format!("--{name}-file - (standard input)"))
        }
        (None, Some(path)) => {
            let text = crate::input::read_text(path, kind_of(name), &format!("--{name}-file"))?;
            (text, format!("--{name}-file {}", path.display()))
        }
        (None, None) => match std::env::var(env) {
            Ok(v) => (v, format!("the environment variable {env}")),
            Err(std::env::VarError::NotPresent) => return Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => bail!("{env} is not valid UTF-8"),
        },
    };
    // A file written by `echo` ends in a line break that is not part of the secret.
    let value = value.strip_suffix('\n').map(|v| v.strip_suffix('\r').unwrap_or(v)).unwrap_or(&value).to_owned();
    if value.is_empty() {
        bail!("{source} is empty: give the {name}, or leave {source} out");
    }
    Ok(Some((value, source)))
}

/// The size limit of a secret named `name` (`token`, `signature`, `password`).
fn kind_of(name: &str) -> crate::input::Kind {
    match name {
        "token" => crate::input::Kind::Token,
        "signature" => crate::input::Kind::Signature,
        _ => crate::input::Kind::Password,
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
