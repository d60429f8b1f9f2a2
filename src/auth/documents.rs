//! The AWS documents a user hands over, read: `aws iot describe-authorizer`,
//! `describe-domain-configuration`, `describe-endpoint`, and token-signing public keys. Probe,
//! diagnosis and emulator read them the same way.

use crate::auth::signature::{KeyError, PublicKey};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Why a document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DocumentError {
    /// A describe-authorizer JSON that does not parse or lacks a field.
    #[error("{path} is not describe-authorizer JSON: {message}")]
    Describe {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A token-signing public key in it that does not parse.
    #[error("public key `{name}` ({origin}): {source}")]
    Key {
        /// The key's name in the document.
        name: String,
        /// Where the key came from.
        origin: String,
        /// Why it does not parse.
        source: KeyError,
    },
}

/// What `aws iot describe-authorizer` says.
#[derive(Clone, Debug)]
pub struct DescribedAuthorizer {
    /// The authorizer's name.
    pub name: String,
    /// Its token key name.
    pub token_key_name: String,
    /// Whether its status is ACTIVE.
    pub active: bool,
    /// `None`: signing disabled.
    pub signing_keys: Option<Vec<PublicKey>>,
}

/// What `aws iot describe-domain-configuration` says about custom auth.
#[derive(Clone, Debug, Default)]
pub struct Domain {
    /// The domain name.
    pub name: Option<String>,
    /// The domain's default authorizer, if any.
    pub default_authorizer: Option<String>,
    /// Whether a device may name another authorizer (`allowAuthorizerOverride`).
    pub allow_override: bool,
    /// `CUSTOM_AUTH`, `CUSTOM_AUTH_X509`, `AWS_X509`, … as the domain configuration says.
    pub authentication_type: String,
}

impl Domain {
    /// The domain configuration from `aws iot describe-domain-configuration` JSON.
    pub fn from_json(v: &serde_json::Value) -> Self {
        let cfg = v.get("authorizerConfig");
        let s = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).map(str::to_owned);
        Self {
            name: s(v.get("domainName")),
            default_authorizer: s(cfg.and_then(|c| c.get("defaultAuthorizerName"))),
            allow_override: cfg
                .and_then(|c| c.get("allowAuthorizerOverride"))
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            authentication_type: s(v.get("authenticationType")).unwrap_or_else(|| "DEFAULT".into()),
        }
    }
}

/// Everything the user told us besides the device's own settings.
#[derive(Clone, Debug, Default)]
pub struct Documents {
    /// What describe-authorizer says.
    pub authorizer: Option<DescribedAuthorizer>,
    /// `--public-key`: token-signing keys given directly.
    pub public_keys: Vec<PublicKey>,
    /// What describe-domain-configuration says.
    pub domain: Option<Domain>,
    /// `aws iot describe-endpoint`'s address.
    pub endpoint_address: Option<String>,
}

impl Documents {
    /// Every token-signing key known, and whether signing is known to be on (`Some(true)`), off, or
    /// unknown.
    pub fn keys(&self) -> (Vec<PublicKey>, Option<bool>) {
        let mut keys = self.public_keys.clone();
        let signing = match &self.authorizer {
            Some(a) => {
                keys.extend(a.signing_keys.clone().unwrap_or_default());
                Some(a.signing_keys.is_some())
            }
            None => (!keys.is_empty()).then_some(true),
        };
        (keys, signing)
    }
}

impl DescribedAuthorizer {
    /// The JSON of `aws iot describe-authorizer` (read from `path`), with or without the
    /// `authorizerDescription` wrapper.
    pub fn from_describe_json(text: &str, path: &Path) -> Result<Self, DocumentError> {
        let bad = |message: String| DocumentError::Describe { path: path.into(), message };
        let v: Value = serde_json::from_str(text).map_err(|e| bad(e.to_string()))?;
        let d = v.get("authorizerDescription").unwrap_or(&v);
        let field = |k: &str| d.get(k).and_then(Value::as_str);
        let name = field("authorizerName").ok_or_else(|| bad("`authorizerName` is missing".into()))?;
        let mut a = Self {
            name: name.to_owned(),
            token_key_name: field("tokenKeyName").unwrap_or("token").to_owned(),
            active: field("status").is_none_or(|s| s.eq_ignore_ascii_case("ACTIVE")),
            signing_keys: None,
        };
        if d.get("signingDisabled").and_then(Value::as_bool).unwrap_or(false) {
            return Ok(a);
        }
        let keys = d.get("tokenSigningPublicKeys").and_then(Value::as_object);
        let mut parsed = Vec::new();
        for (key_name, pem) in keys.into_iter().flatten() {
            let pem = pem.as_str().ok_or_else(|| bad(format!("key `{key_name}` is not a PEM string")))?;
            let origin = format!("{} tokenSigningPublicKeys", path.display());
            parsed.push(PublicKey::from_pem(key_name, pem).map_err(|source| DocumentError::Key {
                name: key_name.clone(),
                origin,
                source,
            })?);
        }
        if parsed.is_empty() {
            return Err(bad("signing is enabled but `tokenSigningPublicKeys` is empty".into()));
        }
        a.signing_keys = Some(parsed);
        Ok(a)
    }
}
