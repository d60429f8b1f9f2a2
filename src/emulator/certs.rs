//! The emulator's TLS identity: a CA and a leaf for the endpoint names, generated at start (rcgen), or
//! a certificate chain and key the user supplies.

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// Certificate chain, key and (when generated) the CA certificate clients must trust.
pub struct Identity {
    /// The certificate chain served, leaf first.
    pub chain: Vec<CertificateDer<'static>>,
    /// The leaf's private key.
    pub key: PrivateKeyDer<'static>,
    /// PEM of the issuing CA, when the emulator generated it (`--write-ca`).
    pub ca_pem: Option<String>,
}

impl Clone for Identity {
    fn clone(&self) -> Self {
        Self { chain: self.chain.clone(), key: self.key.clone_key(), ca_pem: self.ca_pem.clone() }
    }
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("chain_len", &self.chain.len()).finish_non_exhaustive()
    }
}

/// The key algorithm of a generated chain.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KeyType {
    /// RSA 2048, as IoT Core's ATS endpoints (Amazon Root CA 1 and its RSA intermediates): TLS 1.2
    /// clients limited to ECDHE-RSA suites connect.
    Rsa,
    /// ECDSA P-256: quick to generate (the library's default, for tests).
    #[default]
    Ecdsa,
}

/// A fresh key pair of `kind`. RSA keys come from the `rsa` crate (ring signs with RSA keys but
/// does not generate them), handed to rcgen as PKCS#8.
fn key_pair(kind: KeyType) -> Result<KeyPair, rcgen::Error> {
    match kind {
        KeyType::Ecdsa => KeyPair::generate(),
        KeyType::Rsa => {
            use rsa::pkcs8::EncodePrivateKey as _;
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)
                .map_err(|_| rcgen::Error::CouldNotParseKeyPair)?;
            let der = key.to_pkcs8_der().map_err(|_| rcgen::Error::CouldNotParseKeyPair)?;
            KeyPair::try_from(der.as_bytes())
        }
    }
}

/// A certificate authority that issues leaf certificates (the emulator's, and test servers').
pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    kind: KeyType,
}

impl Ca {
    /// A new RSA CA named `common_name`.
    pub fn generate(common_name: &str) -> Result<Self, rcgen::Error> {
        Self::generate_with(common_name, KeyType::Ecdsa)
    }

    pub(crate) fn generate_with(common_name: &str, kind: KeyType) -> Result<Self, rcgen::Error> {
        let mut params = CertificateParams::new(Vec::<String>::new())?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.distinguished_name.push(DnType::OrganizationName, "authprobe");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        Ok(Self { issuer: CertifiedIssuer::self_signed(params, key_pair(kind)?)?, kind })
    }

    /// The CA certificate as PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate as DER.
    pub fn der(&self) -> CertificateDer<'static> {
        self.issuer.der().clone()
    }

    /// A leaf as PEM text: (certificate chain leaf + CA, PKCS#8 private key), for servers that read files.
    pub fn issue_pem(&self, names: &[String]) -> Result<(String, String), rcgen::Error> {
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name.push(DnType::CommonName, names.first().map_or("authprobe", String::as_str));
        let key = KeyPair::generate()?;
        let leaf = params.signed_by(&key, &self.issuer)?;
        Ok((format!("{}{}", leaf.pem(), self.pem()), key.serialize_pem()))
    }

    /// A leaf for these DNS names (IP literals become IP SANs), with the chain leaf → CA.
    pub fn issue(&self, names: &[String]) -> Result<Identity, rcgen::Error> {
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name.push(DnType::CommonName, names.first().map_or("authprobe", String::as_str));
        let key = key_pair(self.kind)?;
        let leaf = params.signed_by(&key, &self.issuer)?;
        Ok(Identity {
            chain: vec![leaf.der().clone(), self.der()],
            key: PrivateKeyDer::try_from(key.serialize_der()).map_err(|_| rcgen::Error::CouldNotParseKeyPair)?,
            ca_pem: Some(self.pem()),
        })
    }
}

impl Identity {
    /// A fresh CA and a leaf covering `endpoints`; `localhost` also covers 127.0.0.1 and ::1.
    pub fn generate(endpoints: &[String]) -> Result<Self, rcgen::Error> {
        Self::generate_with(endpoints, KeyType::Ecdsa)
    }

    /// As `generate`, with keys of `kind` for the CA and the leaf.
    pub fn generate_with(endpoints: &[String], kind: KeyType) -> Result<Self, rcgen::Error> {
        let mut names = endpoints.to_vec();
        if endpoints.iter().any(|e| e.eq_ignore_ascii_case("localhost")) {
            names.extend(["127.0.0.1".to_owned(), "::1".to_owned()]);
        }
        Ca::generate_with("authprobe emulator CA", kind)?.issue(&names)
    }

    /// A chain and key supplied by the user as PEM text.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, String> {
        let chain = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| format!("certificate PEM: {e}"))?;
        if chain.is_empty() {
            return Err("no `BEGIN CERTIFICATE` block in the certificate file".into());
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| format!("private key PEM: {e}"))?;
        Ok(Self { chain, key, ca_pem: None })
    }
}
