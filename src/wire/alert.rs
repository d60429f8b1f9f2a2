//! TLS alert descriptions (RFC 8446 §6): the names the probe reports and the emulator sends.

/// TLS alert descriptions by their snake_case RFC names.
pub const ALERTS: &[(&str, u8)] = &[
    ("close_notify", 0),
    ("unexpected_message", 10),
    ("bad_record_mac", 20),
    ("handshake_failure", 40),
    ("bad_certificate", 42),
    ("certificate_unknown", 46),
    ("illegal_parameter", 47),
    ("unknown_ca", 48),
    ("access_denied", 49),
    ("decode_error", 50),
    ("protocol_version", 70),
    ("insufficient_security", 71),
    ("internal_error", 80),
    ("user_canceled", 90),
    ("unrecognized_name", 112),
    ("certificate_required", 116),
    ("no_application_protocol", 120),
];

/// A TLS alert description.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Alert(pub u8);

impl Alert {
    /// `handshake_failure` (40).
    pub const HANDSHAKE_FAILURE: Self = Self(40);
    pub(crate) const BAD_CERTIFICATE: Self = Self(42);
    pub(crate) const CERTIFICATE_UNKNOWN: Self = Self(46);
    /// `unrecognized_name` (112).
    pub const UNRECOGNIZED_NAME: Self = Self(112);
    /// `certificate_required` (116).
    pub const CERTIFICATE_REQUIRED: Self = Self(116);
    pub(crate) const NO_APPLICATION_PROTOCOL: Self = Self(120);

    /// Whether the alert asks for a client certificate (the X.509 path answered).
    pub fn wants_client_certificate(self) -> bool {
        matches!(self, Self::CERTIFICATE_REQUIRED | Self::BAD_CERTIFICATE | Self::CERTIFICATE_UNKNOWN)
    }

    /// The snake_case name, or `alert_<n>` for an unnamed code.
    pub fn name(self) -> String {
        ALERTS.iter().find(|(_, c)| *c == self.0).map_or_else(|| format!("alert_{}", self.0), |(n, _)| (*n).to_owned())
    }

    pub(crate) fn from_name(name: &str) -> Option<Self> {
        ALERTS.iter().find(|(n, _)| *n == name).map(|(_, c)| Self(*c)).or_else(|| name.parse().ok().map(Self))
    }
}

impl std::fmt::Display for Alert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

/// As its name: reports say `"alert": "unrecognized_name"`.
impl serde::Serialize for Alert {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
