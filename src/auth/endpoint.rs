//! What an AWS IoT data endpoint's name says about the server behind it: the legacy VeriSign endpoint
//! or an ATS one, and so whose certificate chain a device should see.

use super::policy::region_of;

/// The legacy Symantec/VeriSign `iot:Data` endpoint: `<prefix>.iot.<region>.amazonaws.com`
/// without `-ats`.
pub fn is_legacy(endpoint: &str) -> bool {
    region_of(endpoint).is_some() && endpoint.split('.').next().is_some_and(|prefix| !prefix.ends_with("-ats"))
}

/// Whether `endpoint` is an AWS IoT data endpoint, whose chain is Amazon's (ATS). The legacy
/// VeriSign endpoint and custom domains present other chains by design.
pub fn expects_amazon_chain(endpoint: &str) -> bool {
    region_of(endpoint).is_some() && !is_legacy(endpoint)
}

/// Whether a certificate issuer's name is Amazon's or Starfield's (the roots of the ATS endpoints): the
/// fallback where the chain could not be checked against the roots themselves.
pub fn issuer_is_amazon(issuer: &str) -> bool {
    issuer.contains("Amazon") || issuer.contains("Starfield")
}

/// Whether a certificate issuer's name is one the legacy endpoint's chain carries.
pub fn issuer_is_legacy(issuer: &str) -> bool {
    ["VeriSign", "Symantec", "DigiCert"].iter().any(|n| issuer.contains(n))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_and_ats_endpoints() {
        assert!(is_legacy("abc123.iot.eu-west-1.amazonaws.com"));
        assert!(!is_legacy("abc123-ats.iot.eu-west-1.amazonaws.com"));
        assert!(expects_amazon_chain("abc123-ats.iot.eu-west-1.amazonaws.com"));
        assert!(!expects_amazon_chain("iot.example.com"));
        assert!(issuer_is_amazon("CN=Amazon RSA 2048 M01, O=Amazon"));
        assert!(!issuer_is_amazon("CN=Corp Inspection CA"));
    }
}
