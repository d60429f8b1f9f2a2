//! Token signatures: RSA PKCS#1 v1.5 with SHA-256 over the token bytes, standard base64 (docs/custom-auth.md §3).
//!
//! Verification reads the SubjectPublicKeyInfo PEM that IoT Core stores (`rsa`); signing uses ring,
//! which reads PKCS#8 and PKCS#1 private keys. Both give the bytes `openssl dgst -sha256 -sign` gives.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::pkcs8::DecodePublicKey as _;
use rsa::traits::PublicKeyParts as _;
use rsa::{Pkcs1v15Sign, RsaPublicKey};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject as _;
use serde::Serialize;

/// Smallest RSA modulus IoT Core accepts for token signing keys.
pub const MIN_KEY_BITS: usize = 2048;

/// Why a key could not be used; each message says what to do instead.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// No PEM block in the input.
    #[error("no PEM block found: expected `-----BEGIN PUBLIC KEY-----` (SubjectPublicKeyInfo)")]
    NoPem,
    #[error(
        "this is a PKCS#1 `BEGIN RSA PUBLIC KEY`; IoT Core stores SubjectPublicKeyInfo (`BEGIN PUBLIC KEY`): \
         convert it with `openssl rsa -RSAPublicKey_in -in KEY -pubout`"
    )]
    /// A PKCS#1 `RSA PUBLIC KEY`, where a SubjectPublicKeyInfo `PUBLIC KEY` is expected.
    Pkcs1PublicKey,
    /// A private key where a public key is expected.
    #[error("this is a private key; pass the public key, made with `openssl rsa -in KEY -pubout`")]
    PrivateKeyGiven,
    /// A certificate where a public key is expected.
    #[error("this is a certificate; pass its public key, made with `openssl x509 -in CERT -pubkey -noout`")]
    CertificateGiven,
    #[error(
        "no private key found: expected `-----BEGIN PRIVATE KEY-----` (PKCS#8) or `-----BEGIN RSA PRIVATE KEY-----` (PKCS#1)"
    )]
    /// No private key PEM block in the input.
    NoPrivatePem,
    /// A certificate where a private key is expected.
    #[error("this is a certificate; signing needs the private key it was issued for (`BEGIN PRIVATE KEY`)")]
    CertificateGivenForSigning,
    #[error(
        "this is a public key; signing needs the private key (PKCS#8 `BEGIN PRIVATE KEY` or PKCS#1 `BEGIN RSA PRIVATE KEY`)"
    )]
    /// A public key where a private key is expected.
    PublicKeyGiven,
    /// Not an RSA key.
    #[error("this is an elliptic-curve key; IoT Core token signatures use RSA (2048 bits or more)")]
    NotRsa,
    /// An RSA key smaller than IoT Core accepts (bits).
    #[error("the RSA key has {0} bits; IoT Core requires at least 2048")]
    TooSmall(usize),
    /// A private key smaller than 2048 bits.
    #[error("the RSA private key is smaller than 2048 bits; IoT Core requires at least 2048")]
    PrivateKeyTooSmall,
    /// A private key larger than 8192 bits.
    #[error("the RSA private key is larger than 4096 bits, which the signer (ring) does not support")]
    PrivateKeyTooLarge,
    /// An encrypted PKCS#8 private key (`BEGIN ENCRYPTED PRIVATE KEY`).
    #[error(
        "this is an encrypted private key (PKCS#8 `BEGIN ENCRYPTED PRIVATE KEY`); decrypt it first: \
         `openssl pkcs8 -in KEY -out key.pem` (it asks for the passphrase)"
    )]
    EncryptedPkcs8,
    /// A traditional PEM private key encrypted with a passphrase (`Proc-Type: 4,ENCRYPTED`).
    #[error(
        "this is an encrypted private key (traditional PEM with `Proc-Type: 4,ENCRYPTED`); decrypt it first: \
         `openssl pkey -in KEY -out key.pem` (it asks for the passphrase)"
    )]
    EncryptedPem,
    /// A key in DER (binary) form where PEM is expected.
    #[error(
        "this is a {what} in DER (binary) form; convert it to PEM: `openssl pkey {pubin}-inform DER -in KEY -out {out}`"
    )]
    Der {
        /// `private key` or `public key`.
        what: &'static str,
        /// `-pubin ` for a public key.
        pubin: &'static str,
        /// The output file's suggested name.
        out: &'static str,
    },
    /// A key that does not parse, with the parser's words.
    #[error("the key could not be parsed: {0}")]
    Malformed(String),
}

/// Whether `bytes` look like a DER structure (an ASN.1 SEQUENCE) rather than PEM text.
fn is_der(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x30) && !bytes.windows(11).any(|w| w == b"-----BEGIN ")
}

/// PEM text from a key file's bytes: DER and non-text input get an error that says how to convert.
fn pem_text(bytes: &[u8], der: KeyError, none: KeyError) -> Result<&str, KeyError> {
    if is_der(bytes) {
        return Err(der);
    }
    std::str::from_utf8(bytes).map_err(|_| none)
}

/// A named public key that can verify token signatures.
#[derive(Clone, Debug)]
pub struct PublicKey {
    /// The key's name (`tokenSigningPublicKeys` key, or `public-key-N`).
    pub name: String,
    key: RsaPublicKey,
}

impl PublicKey {
    /// Reads a SubjectPublicKeyInfo PEM (`BEGIN PUBLIC KEY`), as `describe-authorizer` prints it.
    pub fn from_pem(name: &str, pem: &str) -> Result<Self, KeyError> {
        let label = pem_label(pem).ok_or(KeyError::NoPem)?;
        match label.as_str() {
            "PUBLIC KEY" => {}
            "RSA PUBLIC KEY" => return Err(KeyError::Pkcs1PublicKey),
            "CERTIFICATE" => return Err(KeyError::CertificateGiven),
            l if l.contains("PRIVATE KEY") => return Err(KeyError::PrivateKeyGiven),
            other => return Err(KeyError::Malformed(format!("unexpected PEM block `{other}`"))),
        }
        let key = RsaPublicKey::from_public_key_pem(pem.trim()).map_err(|e| {
            if e.to_string().contains("OID") || e.to_string().contains("algorithm") {
                KeyError::NotRsa
            } else {
                KeyError::Malformed(e.to_string())
            }
        })?;
        let bits = key.n().bits();
        if bits < MIN_KEY_BITS {
            return Err(KeyError::TooSmall(bits));
        }
        Ok(Self { name: name.to_owned(), key })
    }

    /// The public key in a file's bytes: PEM (SubjectPublicKeyInfo), or an error that names what was
    /// found (DER, PKCS#1, a certificate, a private key) and the openssl command that converts it.
    pub fn from_bytes(name: &str, bytes: &[u8]) -> Result<Self, KeyError> {
        let der = KeyError::Der { what: "public key", pubin: "-pubin ", out: "pub.pem" };
        Self::from_pem(name, pem_text(bytes, der, KeyError::NoPem)?)
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.key.n().bits()
    }

    /// Whether `signature` (raw bytes) is this key's signature over `token`.
    pub fn verifies(&self, token: &str, signature: &[u8]) -> bool {
        let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
        self.key.verify(Pkcs1v15Sign::new::<rsa::sha2::Sha256>(), digest.as_ref(), signature).is_ok()
    }
}

fn pem_label(pem: &str) -> Option<String> {
    let start = pem.find("-----BEGIN ")? + "-----BEGIN ".len();
    let end = pem[start..].find("-----")?;
    Some(pem[start..start + end].to_owned())
}

/// The result of checking a signature against an authorizer's keys.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "verdict", rename_all = "snake_case")]
pub enum Verdict {
    /// Signing is disabled for the authorizer: nothing was checked.
    NotChecked,
    /// Signing is enabled and no signature was sent.
    Missing,
    /// The value is not standard base64 (often: a raw `+` decoded as a space).
    NotBase64,
    /// No key verified it.
    Invalid,
    /// The named key verified it.
    Verified {
        /// The name of the key that verified it.
        key: String,
    },
}

/// Checks a base64 signature over `token` against every key; passes if any key verifies it.
pub fn verify(keys: &[PublicKey], token: &str, signature_b64: Option<&str>) -> Verdict {
    let Some(text) = signature_b64 else { return Verdict::Missing };
    let Ok(bytes) = STANDARD.decode(text.trim()) else { return Verdict::NotBase64 };
    match keys.iter().find(|k| k.verifies(token, &bytes)) {
        Some(key) => Verdict::Verified { key: key.name.clone() },
        None => Verdict::Invalid,
    }
}

/// A private key that signs tokens.
pub struct SigningKey {
    pair: RsaKeyPair,
}

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(<redacted>)")
    }
}

impl SigningKey {
    /// The private key in a file's bytes: PEM (PKCS#8 or PKCS#1), or an error that names what was
    /// found (DER, encrypted, a certificate, a public key, an EC key) and how to convert it.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        let der = KeyError::Der { what: "private key", pubin: "", out: "key.pem" };
        Self::from_pem(pem_text(bytes, der, KeyError::NoPrivatePem)?)
    }

    /// Reads an RSA private key in PKCS#8 (`BEGIN PRIVATE KEY`) or PKCS#1 (`BEGIN RSA PRIVATE KEY`) PEM.
    pub fn from_pem(pem: &str) -> Result<Self, KeyError> {
        if pem.contains("Proc-Type: 4,ENCRYPTED") {
            return Err(KeyError::EncryptedPem);
        }
        match pem_label(pem).as_deref() {
            None => return Err(KeyError::NoPrivatePem),
            Some("ENCRYPTED PRIVATE KEY") => return Err(KeyError::EncryptedPkcs8),
            Some("PUBLIC KEY" | "RSA PUBLIC KEY") => return Err(KeyError::PublicKeyGiven),
            Some("CERTIFICATE") => return Err(KeyError::CertificateGivenForSigning),
            Some("EC PRIVATE KEY") => return Err(KeyError::NotRsa),
            Some(_) => {}
        }
        let der = PrivateKeyDer::from_pem_slice(pem.as_bytes()).map_err(|e| KeyError::Malformed(e.to_string()))?;
        let pair = match &der {
            PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
            PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
            _ => return Err(KeyError::NotRsa),
        }
        .map_err(|e| {
            let text = e.to_string();
            if text.contains("TooSmall") {
                KeyError::PrivateKeyTooSmall
            } else if text.contains("TooLarge") {
                KeyError::PrivateKeyTooLarge
            } else if matches!(der, PrivateKeyDer::Pkcs8(_)) && text.contains("WrongAlgorithm") {
                KeyError::NotRsa
            } else {
                KeyError::Malformed(text)
            }
        })?;
        Ok(Self { pair })
    }

    /// The modulus size in bits.
    pub fn bits(&self) -> usize {
        self.pair.public().modulus_len() * 8
    }

    /// The standard-base64 signature of `token`.
    pub fn sign(&self, token: &str) -> String {
        let mut out = vec![0; self.pair.public().modulus_len()];
        // ring only fails here for a buffer of the wrong size, which `out` is not.
        if self.pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), token.as_bytes(), &mut out).is_err() {
            return String::new();
        }
        STANDARD.encode(out)
    }
}

/// What a signature that does not verify over the token does verify over: the common signing
/// mistakes (troubleshooting: "isn't signing a value other than the token").
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Forensic {
    /// The value that was signed, in words (e.g. "the token followed by a newline").
    pub signed: String,
    /// The signature scheme that verifies, e.g. "RSA PKCS#1 v1.5 with SHA-256".
    pub scheme: &'static str,
    /// The name of the key the finding is about.
    pub key: String,
}

/// (name, ring algorithm) of the schemes tried; the first is IoT Core's.
const SCHEMES: [(&str, &dyn ring::signature::VerificationAlgorithm); 5] = [
    ("RSA PKCS#1 v1.5 with SHA-256", &ring::signature::RSA_PKCS1_2048_8192_SHA256),
    ("RSA PKCS#1 v1.5 with SHA-1", &ring::signature::RSA_PKCS1_2048_8192_SHA1_FOR_LEGACY_USE_ONLY),
    ("RSA PKCS#1 v1.5 with SHA-384", &ring::signature::RSA_PKCS1_2048_8192_SHA384),
    ("RSA PKCS#1 v1.5 with SHA-512", &ring::signature::RSA_PKCS1_2048_8192_SHA512),
    ("RSA-PSS with SHA-256", &ring::signature::RSA_PSS_2048_8192_SHA256),
];

/// Finds what `signature_b64` signs when it does not sign `token` as IoT Core expects. `username` is
/// the device's whole MQTT username, when known. `None`: no key and no tried value explain it.
pub fn forensics(keys: &[PublicKey], token: &str, signature_b64: &str, username: Option<&str>) -> Option<Forensic> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let text = signature_b64.trim();
    if let Ok(sig) = STANDARD.decode(text) {
        return forensics_of(keys, token, &sig, username, "");
    }
    // Not standard base64: base64url (`-`, `_`, as JWT libraries write it) or unpadded is a
    // signature IoT Core cannot decode, however right it is.
    let (sig, how) =
        [(URL_SAFE, "base64url"), (URL_SAFE_NO_PAD, "unpadded base64url"), (STANDARD_NO_PAD, "unpadded base64")]
            .into_iter()
            .find_map(|(engine, how)| engine.decode(text).ok().map(|s| (s, how)))?;
    let note = format!(", written as {how} where IoT Core needs standard base64 with padding");
    // Right once re-encoded: then the encoding is the only fault.
    let right = keys.iter().find(|k| {
        matches!(verify(std::slice::from_ref(*k), token, Some(&STANDARD.encode(&sig))), Verdict::Verified { .. })
    });
    if let Some(key) = right {
        return Some(Forensic {
            signed: format!("the token itself{note}"),
            scheme: SCHEMES[0].0,
            key: key.name.clone(),
        });
    }
    forensics_of(keys, token, &sig, username, &note)
}

fn forensics_of(keys: &[PublicKey], token: &str, sig: &[u8], username: Option<&str>, note: &str) -> Option<Forensic> {
    use rsa::pkcs1::EncodeRsaPublicKey as _;
    let sig = sig.to_vec();
    let mut values: Vec<(String, Vec<u8>)> = vec![
        ("the token itself".into(), token.as_bytes().to_vec()),
        ("the token followed by a newline (`\\n`)".into(), format!("{token}\n").into_bytes()),
        ("the token followed by CR LF (`\\r\\n`)".into(), format!("{token}\r\n").into_bytes()),
        ("the token trimmed of surrounding white space".into(), token.trim().as_bytes().to_vec()),
        ("the percent-encoded token".into(), crate::auth::credentials::encode(token).into_bytes()),
        ("the base64 of the token".into(), STANDARD.encode(token).into_bytes()),
    ];
    if let Some(u) = username.filter(|u| !u.is_empty()) {
        values.push(("the whole MQTT username".into(), u.as_bytes().to_vec()));
    }
    // Skip a tried value equal to the token (trimmed or encoded may not change it), except the first.
    let tried: Vec<&(String, Vec<u8>)> =
        values.iter().enumerate().filter(|(i, v)| *i == 0 || v.1 != token.as_bytes()).map(|(_, v)| v).collect();
    for key in keys {
        let Ok(der) = key.key.to_pkcs1_der() else { continue };
        for (i, (scheme, alg)) in SCHEMES.iter().enumerate() {
            for (j, (what, value)) in tried.iter().enumerate() {
                if i == 0 && j == 0 {
                    continue; // the correct signature: not a forensic finding
                }
                let public = ring::signature::UnparsedPublicKey::new(*alg, der.as_bytes());
                if public.verify(value, &sig).is_ok() {
                    return Some(Forensic { signed: format!("{what}{note}"), scheme, key: key.name.clone() });
                }
            }
        }
    }
    None
}
