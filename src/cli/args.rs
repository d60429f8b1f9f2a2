//! The flags of `authprobe probe` and the output flags other commands share, as clap reads them;
//! turned into a `ProbePlan` by [`super::probe`].

use super::device::CredentialArgs;
use crate::auth::event::Transport;
use crate::probe::plan::{HostHeader, Sni};
use anyhow::bail;
use clap::{Args, ValueEnum};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    Text,
    Json,
    Jsonl,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportArg {
    Mqtt,
    Wss,
    Https,
}

impl From<TransportArg> for Transport {
    fn from(t: TransportArg) -> Self {
        match t {
            TransportArg::Mqtt => Self::Mqtt,
            TransportArg::Wss => Self::Wss,
            TransportArg::Https => Self::Https,
        }
    }
}

/// Output flags shared by `probe` and `demo`.
#[derive(Debug, Args, Clone)]
pub(crate) struct OutputArgs {
    /// Report format: text, one JSON document, or JSON Lines (one object per attempt as it ends, then
    /// a summary) for log pipelines.
    #[arg(help_heading = "Output", long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Show tokens, signatures and passwords instead of `<redacted len=N sha256=…>`.
    #[arg(help_heading = "Output", long)]
    pub show_secrets: bool,
    /// Every attempt in full (what it sent, the chain, each stage) and every finding's evidence and
    /// next commands; the default shows the answer first and the failed documented attempts.
    #[arg(help_heading = "Output", hide_short_help = true, long)]
    pub details: bool,
    /// Also write the report as one self-contained HTML file (verdict, findings, a timeline of every
    /// attempt), for a ticket.
    #[arg(help_heading = "Output", hide_short_help = true, long, value_name = "FILE.html")]
    pub report: Option<PathBuf>,
    /// Nothing but the report: no progress, warnings or notes on stderr.
    #[arg(help_heading = "Output", short, long)]
    pub quiet: bool,
    /// Colour: auto (a terminal, unless NO_COLOR is set or TERM=dumb), always, never.
    #[arg(help_heading = "Output", hide_short_help = true, long, value_enum, default_value_t = ColorArg::Auto)]
    pub color: ColorArg,
    /// A label (device, site) carried by every JSON Lines object.
    #[arg(help_heading = "Output", hide_short_help = true, long, value_name = "TEXT")]
    pub label: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FamilyArg {
    Any,
    #[value(name = "4")]
    V4,
    #[value(name = "6")]
    V6,
    Both,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum ColorArg {
    Auto,
    Always,
    Never,
}

impl OutputArgs {
    /// Whether to colour text written to a stream (see [`colour`]).
    pub(crate) fn color_for(&self, stream_is_terminal: bool) -> bool {
        colour(self.color, stream_is_terminal)
    }
}

#[derive(Debug, Args)]
pub(crate) struct ProbeArgs {
    /// The IoT data endpoint (or custom domain): SNI, Host header and certificate name.
    #[arg(help_heading = "Target", long, value_name = "HOST", required_unless_present_any = ["endpoint_json", "domain_json", "device"])]
    pub endpoint: Option<String>,
    /// `aws iot describe-endpoint` output: the endpoint, when --endpoint is not given.
    #[arg(help_heading = "Target", hide_short_help = true, long, value_name = "FILE")]
    pub endpoint_json: Option<PathBuf>,
    /// `aws iot describe-domain-configuration` output: domain name, default authorizer, authentication type.
    #[arg(help_heading = "Target", hide_short_help = true, long, value_name = "FILE")]
    pub domain_json: Option<PathBuf>,
    /// Port (default 443; custom authentication works on 443 only).
    #[arg(hide_short_help = true, help_heading = "Target", long, value_name = "N")]
    pub port: Option<u16>,
    /// Dial this address (and port) instead of resolving HOST, like curl's --connect-to.
    #[arg(help_heading = "Network", long, value_name = "ADDR[:PORT]")]
    pub connect_to: Option<String>,
    /// Go through this proxy: http://[user:pass@]host:port (HTTP CONNECT), socks5:// (the name
    /// resolved here) or socks5h:// (resolved by the proxy). Default: HTTPS_PROXY, then ALL_PROXY
    /// (lower case first), as curl.
    #[arg(help_heading = "Network", long, short_alias = 'x', value_name = "URL")]
    pub proxy: Option<String>,
    /// Hosts that bypass the proxy (comma-separated names, domains, IPs, CIDRs; `*` = all); replaces NO_PROXY.
    #[arg(help_heading = "Network", hide_short_help = true, long, value_name = "LIST")]
    pub noproxy: Option<String>,
    /// Answer HOST:PORT with ADDR without asking DNS (repeatable), as curl's --resolve.
    #[arg(help_heading = "Network", hide_short_help = true, long = "resolve", value_name = "HOST:PORT:ADDR")]
    pub resolve: Vec<String>,
    /// IPv4 only.
    #[arg(help_heading = "Network", hide_short_help = true, short = '4', long = "ipv4", conflicts_with_all = ["ipv6", "family"])]
    pub ipv4: bool,
    /// IPv6 only.
    #[arg(help_heading = "Network", hide_short_help = true, short = '6', long = "ipv6", conflicts_with = "family")]
    pub ipv6: bool,
    /// IP versions to dial: any (the resolver's order), 4, 6, or both (each baseline over IPv4 and
    /// again over IPv6, to compare).
    #[arg(help_heading = "Network", hide_short_help = true, long, value_enum, value_name = "any|4|6|both")]
    pub family: Option<FamilyArg>,
    /// Transport to try (repeatable, or comma-separated). Default: mqtt, wss and https.
    #[arg(
        help_heading = "Matrix",
        long = "transport",
        value_enum,
        value_name = "mqtt|wss|https",
        value_delimiter = ','
    )]
    pub transports: Vec<TransportArg>,
    #[command(flatten)]
    pub creds: CredentialArgs,
    /// Topic of the HTTPS publish (default: --publish, else `authprobe/probe`).
    #[arg(help_heading = "Matrix", hide_short_help = true, long)]
    pub topic: Option<String>,
    /// After CONNACK, publish to this topic (QoS 1) and report PUBACK or the close (stage authorize).
    #[arg(help_heading = "Matrix", hide_short_help = true, long, value_name = "TOPIC")]
    pub publish: Option<String>,
    /// After CONNACK, subscribe to this filter and report SUBACK (and whether --publish comes back).
    #[arg(help_heading = "Matrix", hide_short_help = true, long, value_name = "FILTER")]
    pub subscribe: Option<String>,
    /// Region for resource ARNs in reports (default: from the endpoint name).
    #[arg(help_heading = "Target", hide_short_help = true, long)]
    pub region: Option<String>,
    /// Account for resource ARNs in reports.
    #[arg(help_heading = "Target", hide_short_help = true, long)]
    pub account: Option<String>,
    /// Trust only the certificates in this PEM file instead of the bundled (Amazon/Mozilla) roots.
    #[arg(help_heading = "Target", long, alias = "cacert", value_name = "PEM", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// Do not verify server certificates (every attempt's report says so).
    #[arg(help_heading = "Target", long, short_alias = 'k')]
    pub insecure: bool,
    /// Timeout of each attempt, all its stages, in seconds (or with a unit: 300ms, 5s, 2m).
    #[arg(help_heading = "Network", long, value_name = "SECS", default_value_t = 10.0, value_parser = seconds)]
    pub timeout: f64,
    /// A device profile (TOML): what the device sends and where its secrets are; flags override it.
    #[arg(help_heading = "Device profiles", long, value_name = "FILE")]
    pub device: Option<PathBuf>,
    /// Let a device profile read secrets from anywhere: files outside its own folder, and AWS or
    /// other cloud credential variables (refused by default: a shared profile could send them away).
    #[arg(help_heading = "Device profiles", hide_short_help = true, long)]
    pub allow_device_secrets: bool,
    /// Write this command line's device profile to FILE (secrets as references only), then probe.
    #[arg(help_heading = "Device profiles", hide_short_help = true, long, value_name = "FILE")]
    pub save_device: Option<PathBuf>,
    /// curl's and openssl's client key and certificate: custom authentication has none (hidden; the
    /// error says what to give instead).
    #[arg(long = "key", alias = "cert", hide = true, value_name = "FILE", value_parser = no_client_identity)]
    pub client_identity: Option<String>,
    #[command(flatten)]
    pub sends: SendsArgs,
    #[command(flatten)]
    pub matrix: MatrixArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub fleet: FleetArgs,
}

/// Flags for running the probe under a fleet engine (AWS IoT Jobs, Greengrass) and collecting its
/// results (docs/fleet.md).
#[derive(Debug, Args, Clone)]
pub(crate) struct FleetArgs {
    /// Write the report to FILE instead of stdout: written whole to a temporary file and renamed
    /// (json, text); with `--format jsonl` each line is appended to FILE.
    #[arg(help_heading = "Fleet", hide_short_help = true, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// End stdout with one logfmt line of at most 1,024 bytes (`authprobe verdict=fail cause=…
    /// confidence=… ok=1/2 endpoint=… client_id=… label=…`), for a job's statusDetails or a log line.
    #[arg(help_heading = "Fleet", hide_short_help = true, long)]
    pub summary_line: bool,
    /// Exit 0 whatever the verdict (the report still says it); bad input still exits 2, Ctrl-C 130.
    #[arg(help_heading = "Fleet", hide_short_help = true, long)]
    pub exit_zero: bool,
    /// Wait a uniformly random time up to DURATION (`30s`, `2m`) before the first attempt, so a
    /// fleet started at once does not reconnect in one burst; the wait is recorded in the report.
    #[arg(help_heading = "Fleet", hide_short_help = true, long, value_name = "DURATION", value_parser = seconds)]
    pub jitter: Option<f64>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum MatrixArg {
    /// One baseline attempt per transport.
    None,
    /// The baseline plus the deviations that separate the common causes.
    Quick,
    /// Every deviation.
    Full,
}

/// What kind of client the probe is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ClientTypeArg {
    /// A device or gateway (every transport, the documented forms).
    #[default]
    Device,
    /// A web page: MQTT over WebSockets (a browser's upgrade: its ALPN offer, `Origin`, no custom
    /// headers; credentials in the CONNECT username or the URL's query) and, with `--transport
    /// https`, a page's HTTPS publish with its CORS preflight.
    Browser,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PlacementArg {
    Username,
    Query,
    /// HTTP headers (`headers`, this flag's earlier spelling, is still read, and in saved profiles).
    #[value(alias = "headers")]
    #[serde(alias = "headers")]
    Header,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SignatureEncodingArg {
    /// `+`, `/`, `=` percent-encoded in a username or query (documented).
    Percent,
    /// The base64 as is, even in a username or query.
    Raw,
}

/// What the device sends where it differs from the documented attempt: the baseline becomes the
/// device's attempt, and a `documented` attempt runs beside it.
#[derive(Debug, Args, Clone, Default)]
pub(crate) struct SendsArgs {
    /// SNI to send (default: the endpoint).
    #[arg(
        help_heading = "What the device sends",
        hide_short_help = true,
        long,
        alias = "servername",
        value_name = "NAME",
        conflicts_with = "no_sni"
    )]
    pub sni: Option<String>,
    /// Send no SNI extension.
    #[arg(help_heading = "What the device sends", hide_short_help = true, long)]
    pub no_sni: bool,
    /// ALPN protocol to offer (repeatable; default: `mqtt` for MQTT over TLS, none otherwise).
    #[arg(
        help_heading = "What the device sends",
        hide_short_help = true,
        long = "alpn",
        value_name = "PROTO",
        conflicts_with = "no_alpn"
    )]
    pub alpn: Vec<String>,
    /// Offer no ALPN.
    #[arg(help_heading = "What the device sends", hide_short_help = true, long)]
    pub no_alpn: bool,
    /// Host header of WebSocket and HTTPS requests (default: the endpoint).
    #[arg(
        help_heading = "What the device sends",
        hide_short_help = true,
        long,
        value_name = "VALUE",
        conflicts_with = "no_host_header"
    )]
    pub host_header: Option<String>,
    /// Send no Host header.
    #[arg(help_heading = "What the device sends", hide_short_help = true, long)]
    pub no_host_header: bool,
    /// Where the credentials go: username (mqtt, wss), query or headers (wss, https).
    #[arg(help_heading = "What the device sends", hide_short_help = true, long, value_enum)]
    pub placement: Option<PlacementArg>,
    /// How the signature travels in a username or query.
    #[arg(help_heading = "What the device sends", hide_short_help = true, long, value_enum)]
    pub signature_encoding: Option<SignatureEncodingArg>,
    /// The exact CONNECT username the device sends (credentials are not appended to it).
    #[arg(hide_short_help = true, help_heading = "What the device sends", long, value_name = "STRING")]
    pub username_raw: Option<String>,
    /// Sec-WebSocket-Protocol of the upgrade (default `mqtt`).
    #[arg(help_heading = "What the device sends", hide_short_help = true, long, value_name = "VALUE")]
    pub ws_protocol: Option<String>,
    /// CONNECT keep-alive in whole seconds (default 60).
    #[arg(help_heading = "What the device sends", hide_short_help = true, long, value_name = "SECS")]
    pub keep_alive: Option<u16>,
    /// `browser`: probe as a web page does (wss by default, `--transport wss,https` adds a page's
    /// HTTPS publish with its CORS preflight; ALPN `http/1.1`, `Origin`, Chromium's headers; WebSocket
    /// credentials in the username by default, or `--placement query`). See docs/browser.md.
    #[arg(
        help_heading = "What the device sends",
        hide_short_help = true,
        long,
        value_enum,
        value_name = "device|browser"
    )]
    pub client_type: Option<ClientTypeArg>,
    /// The page's origin a browser sends (`--client-type browser`; default `http://localhost`).
    #[arg(help_heading = "What the device sends", hide_short_help = true, long, value_name = "URL")]
    pub origin: Option<String>,
}

/// The origin a browser probe sends when `--origin` is not given: a page on a developer's machine.
pub(crate) const DEFAULT_ORIGIN: &str = "http://localhost";

impl SendsArgs {
    /// The device's deviations, checked; nothing is sent on bad input.
    pub(crate) fn device(&self, transports: &[Transport]) -> anyhow::Result<crate::probe::plan::DeviceSends> {
        use crate::auth::credentials::Placement;
        let name_ok = |flag: &str, v: &str| -> anyhow::Result<()> {
            if v.is_empty() || v.len() > 253 || v.chars().any(|c| c.is_control() || c == ' ') {
                bail!("{flag} `{}` is not a host name (1 to 253 characters, no spaces)", v.escape_debug());
            }
            Ok(())
        };
        if let Some(s) = &self.sni {
            name_ok("--sni", s)?;
        }
        for a in &self.alpn {
            if a.is_empty() || a.len() > 255 {
                bail!("--alpn `{a}` must be 1 to 255 bytes");
            }
        }
        if let Some(h) = &self.host_header {
            if h.is_empty() || h.chars().any(char::is_control) {
                bail!("--host-header must be a non-empty value without control characters");
            }
        }
        let mut placement = self.placement.map(|p| match p {
            PlacementArg::Username => Placement::Username,
            PlacementArg::Query => Placement::Query,
            PlacementArg::Header => Placement::Header,
        });
        let browser = self.client_type == Some(ClientTypeArg::Browser);
        let origin = self.browser(transports, &mut placement)?;
        if let Some(p) = placement {
            let fits = |t: &Transport| match t {
                Transport::Mqtt => p == Placement::Username,
                Transport::Wss => true,
                Transport::Https => p != Placement::Username,
            };
            if !transports.iter().any(fits) {
                bail!(
                    "--placement {:?}: none of the transports tried can carry credentials there (mqtt: username; https: query or headers)",
                    p
                );
            }
        }
        if let Some(u) = &self.username_raw {
            if u.len() > 65535 {
                bail!("--username-raw is {} bytes; MQTT allows at most 65535", u.len());
            }
        }
        if let Some(p) = &self.ws_protocol {
            if p.is_empty() || p.chars().any(|c| c.is_control()) {
                bail!("--ws-protocol must be a non-empty token");
            }
        }
        Ok(crate::probe::plan::DeviceSends {
            sni: match (&self.sni, self.no_sni) {
                (_, true) => Sni::Omitted,
                (Some(name), false) => Sni::Name(name.clone()),
                (None, false) => Sni::Documented,
            },
            alpn: if self.no_alpn {
                Some(Vec::new())
            } else if self.alpn.is_empty() && browser {
                // What Chromium offers on a WebSocket's TLS connection.
                Some(vec![b"http/1.1".to_vec()])
            } else {
                (!self.alpn.is_empty()).then(|| self.alpn.iter().map(|a| a.as_bytes().to_vec()).collect())
            },
            host: match (&self.host_header, self.no_host_header) {
                (_, true) => HostHeader::Omitted,
                (Some(value), false) => HostHeader::Value(value.clone()),
                (None, false) => HostHeader::Documented,
            },
            placement,
            signature_raw: self.signature_encoding == Some(SignatureEncodingArg::Raw),
            username_raw: self.username_raw.clone(),
            ws_protocol: self.ws_protocol.clone(),
            keep_alive: self.keep_alive,
            origin,
            ..crate::probe::plan::DeviceSends::default()
        })
    }
}

impl SendsArgs {
    /// With `--client-type browser`: what a page can send, checked (wss only, no credentials in
    /// headers; the username by default), and the `Origin` it sends.
    fn browser(
        &self,
        transports: &[Transport],
        placement: &mut Option<crate::auth::credentials::Placement>,
    ) -> anyhow::Result<Option<String>> {
        use crate::auth::credentials::Placement;
        let browser = self.client_type == Some(ClientTypeArg::Browser);
        let origin = match (&self.origin, browser) {
            (Some(_), false) => bail!("--origin is what a browser sends: add --client-type browser"),
            (Some(o), true) => Some(origin_ok(o)?),
            (None, true) => Some(DEFAULT_ORIGIN.to_owned()),
            (None, false) => None,
        };
        if browser {
            if transports.contains(&Transport::Mqtt) {
                bail!(
                    "--client-type browser with --transport mqtt: a page cannot open MQTT over TLS; it connects \
                     over MQTT over WebSockets (wss) and publishes over HTTPS (https). Use --transport wss, \
                     --transport https, or leave --transport out (wss)"
                );
            }
            if *placement == Some(Placement::Header) && transports.contains(&Transport::Wss) {
                bail!(
                    "--client-type browser with --placement header: a browser cannot set headers on a WebSocket; \
                     use --placement username (the AWS IoT Device SDK v2) or --placement query (mqtt.js setups). \
                     An HTTPS publish from a page sends its credentials in headers by default"
                );
            }
            // A page's WebSocket carries them in the username by default (the SDK v2); its HTTPS
            // publish in headers (fetch sets them).
            if transports.is_empty() || transports.contains(&Transport::Wss) {
                *placement = placement.or(Some(Placement::Username));
            }
        }
        Ok(origin)
    }
}

/// An origin as a browser sends it: `scheme://host[:port]`, nothing after, or `null`.
fn origin_ok(o: &str) -> anyhow::Result<String> {
    let bad = || {
        anyhow::anyhow!(
            "--origin `{}` is not an origin: give scheme://host[:port] (e.g. https://app.example.com) or null",
            o.escape_debug()
        )
    };
    if o == "null" {
        return Ok(o.to_owned());
    }
    let (scheme, rest) = o.split_once("://").ok_or_else(bad)?;
    let scheme_ok = !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    let rest_ok =
        !rest.is_empty() && rest.len() <= 260 && !rest.contains('/') && rest.chars().all(|c| c.is_ascii_graphic());
    if !scheme_ok || !rest_ok {
        return Err(bad());
    }
    Ok(o.to_owned())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub(crate) enum FollowUpArg {
    /// Run them when more than one cause is left and an attempt can split them.
    Auto,
    None,
}

/// Which variants to run and how.
#[derive(Debug, Args, Clone)]
pub(crate) struct MatrixArgs {
    /// Variants to run per transport.
    #[arg(help_heading = "Matrix", long, value_enum, default_value_t = MatrixArg::Quick)]
    pub matrix: MatrixArg,
    /// Attempts (or chains of attempts sharing a client ID) in flight at once [default: all].
    #[arg(help_heading = "Matrix", hide_short_help = true, long, value_name = "N")]
    pub parallel: Option<usize>,
    /// Use --client-id for every attempt (default: `<client-id>-<transport>-<variant>`); their CONNECTs then take turns, --spacing apart.
    #[arg(help_heading = "Matrix", hide_short_help = true, long)]
    pub same_client_id: bool,
    /// Gap from start to start between MQTT attempts that share a client ID (the mqtt and wss
    /// baselines, the follow-ups, all with --same-client-id), in seconds (IoT Core allows about one
    /// connect per second per client ID).
    #[arg(help_heading = "Matrix", hide_short_help = true, long, value_name = "SECS", default_value_t = 1.1, value_parser = seconds)]
    pub spacing: f64,
    /// Follow-up attempts that split the causes still open (`none`: only the matrix).
    #[arg(help_heading = "Matrix", hide_short_help = true, long, value_enum, default_value_t = FollowUpArg::Auto)]
    pub follow_up: FollowUpArg,
    /// The "another name" used by the SNI and Host variants.
    #[arg(help_heading = "Matrix", hide_short_help = true, long, value_name = "NAME", default_value = "example.com")]
    pub alt_sni: String,
}

impl MatrixArgs {
    pub(crate) fn level(&self) -> crate::probe::matrix::Level {
        match self.matrix {
            MatrixArg::None => crate::probe::matrix::Level::None,
            MatrixArg::Quick => crate::probe::matrix::Level::Quick,
            MatrixArg::Full => crate::probe::matrix::Level::Full,
        }
    }

    pub(crate) fn schedule(&self) -> crate::probe::Schedule {
        crate::probe::Schedule {
            parallel: self.parallel.unwrap_or(usize::MAX).max(1),
            spacing: self.same_client_id.then(|| Duration::from_secs_f64(self.spacing)),
        }
    }
}

/// Whether to colour text written to a stream: the one place `--color`, `NO_COLOR` (any non-empty
/// value) and `TERM=dumb` are decided.
pub(crate) fn colour(choice: ColorArg, stream_is_terminal: bool) -> bool {
    match choice {
        ColorArg::Always => true,
        ColorArg::Never => false,
        ColorArg::Auto => {
            stream_is_terminal
                && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::env::var("TERM").map_or(true, |t| t != "dumb")
        }
    }
}

/// A duration in seconds: a bare number is seconds (as before), or with a unit: `300ms`, `5s`, `2m`.
pub(crate) fn seconds(s: &str) -> Result<f64, String> {
    duration(s, 1.0).map(|ms| ms / 1000.0)
}

/// A duration in milliseconds: a bare number is milliseconds (as before), or with a unit: `300ms`,
/// `5s`, `2m`.
pub(crate) fn millis(s: &str) -> Result<u64, String> {
    let ms = duration(s, 0.001)?;
    if ms.fract() != 0.0 || ms > u64::MAX as f64 {
        return Err(format!("`{s}` is not a whole number of milliseconds"));
    }
    Ok(ms as u64)
}

/// `s` in milliseconds; a bare number is in units of `bare` seconds (1: seconds, 0.001: ms).
fn duration(s: &str, bare: f64) -> Result<f64, String> {
    let t = s.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000.0)
    } else if let Some(n) = t.strip_suffix('m') {
        (n, 60_000.0)
    } else {
        (t, bare * 1000.0)
    };
    match number.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v * scale),
        _ => Err(format!("`{s}` is not a duration: give a number, or one with a unit (300ms, 5s, 2m)")),
    }
}

/// `--key`/`--cert`: a curl or openssl habit that means a client certificate, which custom
/// authentication does not use. Always an error that says what to give instead.
fn no_client_identity(_: &str) -> Result<String, String> {
    Err("custom authentication uses no client key or certificate: give the device's token \
         (--token-file) and its signature (--signature-file), or sign with the authorizer's private key \
         (--signing-key); a client certificate is IoT Core's X.509 path, another way in"
        .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units_and_bare_numbers_keep_their_meaning() {
        assert_eq!(seconds("5"), Ok(5.0));
        assert_eq!(seconds("1.5s"), Ok(1.5));
        assert_eq!(seconds("300ms"), Ok(0.3));
        assert_eq!(seconds("2m"), Ok(120.0));
        assert_eq!(millis("250"), Ok(250));
        assert_eq!(millis("5s"), Ok(5000));
        assert_eq!(millis("300ms"), Ok(300));
        assert!(seconds("-1").is_err() && seconds("five").is_err() && millis("0.5ms").is_err());
    }
}
