//! Device profiles (`--device FILE`, `--save-device FILE`): what a device sends and where its secrets
//! are, in TOML, so a firmware team can replay one device exactly. Secrets are stored only as
//! references (a file or an environment variable), never as values. Flags override the file.

use super::args::{PlacementArg, ProbeArgs, SignatureEncodingArg, TransportArg};
use super::device::MqttVersionArg;
use anyhow::Context as _;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// One device, as a TOML file.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Profile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub transports: Vec<TransportArg>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authorizer: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_key_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mqtt_version: Option<MqttVersionArg>,
    // Secrets, by reference only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_env: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_key: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_file: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    // What goes on the wire.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sni: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_sni: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub alpn: Vec<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_alpn: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host_header: Option<String>,
    #[serde(default, skip_serializing_if = "is_false")]
    pub no_host_header: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub placement: Option<PlacementArg>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_encoding: Option<SignatureEncodingArg>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username_raw: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ws_protocol: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keep_alive: Option<u16>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_type: Option<super::args::ClientTypeArg>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    // Where the device dials and what it trusts, so that a replay reaches the same server (an
    // emulator, a lab endpoint) without repeating these flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connect_to: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolve: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca: Option<PathBuf>,
    /// The proxy URL, without its password (a secret: given again with --proxy, or by HTTPS_PROXY).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub proxy: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noproxy: Option<String>,
    /// The authorizer's token-signing public keys, for the local signature check.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub public_keys: Vec<PathBuf>,
    /// The per-stage timeout in seconds, when not the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<f64>,
}

/// The probe's default `--timeout`, which a profile does not store.
const DEFAULT_TIMEOUT: f64 = 10.0;

/// A proxy URL without the password in it (noted: the replay gives it again).
fn without_password(url: &str, notes: &mut Vec<String>) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let Some((auth, host)) = rest.rsplit_once('@') else { return url.to_owned() };
    let Some((user, _)) = auth.split_once(':') else { return url.to_owned() };
    notes.push("the proxy password is not saved in the profile: give it again with --proxy (or HTTPS_PROXY)".into());
    let prefix = if scheme.is_empty() { String::new() } else { format!("{scheme}://") };
    format!("{prefix}{user}@{host}")
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Sets `slot` from the profile unless the command line set it.
fn fill<T: Clone>(slot: &mut Option<T>, from: &Option<T>) {
    if slot.is_none() {
        slot.clone_from(from);
    }
}

impl Profile {
    pub(crate) fn read(path: &Path) -> anyhow::Result<Self> {
        let text = crate::input::read_text(path, crate::input::Kind::Config, "--device")?;
        let profile: Self = toml::from_str(&text).map_err(|e| {
            let at = crate::emulator::config::toml_error(&e, &text);
            anyhow::anyhow!("--device {}: not a device profile: {at}", path.display())
        })?;
        // Relative secret files are relative to the profile, wherever the command runs.
        let base = path.parent().unwrap_or(Path::new("."));
        let rebase = |p: &Option<PathBuf>| {
            p.as_ref().map(|p| if p.is_relative() && p.as_os_str() != "-" { base.join(p) } else { p.clone() })
        };
        Ok(Self {
            token_file: rebase(&profile.token_file),
            signature_file: rebase(&profile.signature_file),
            signing_key: rebase(&profile.signing_key),
            password_file: rebase(&profile.password_file),
            ca: rebase(&profile.ca),
            public_keys: profile.public_keys.iter().filter_map(|p| rebase(&Some(p.clone()))).collect(),
            ..profile
        })
    }

    /// A profile reads secrets only from files in its own folder (or below it) and from variables it
    /// names that are not AWS or other cloud credentials: a profile shared with a ticket must not be
    /// able to send `~/.aws/credentials` or `AWS_SECRET_ACCESS_KEY` to its own `connect_to`.
    /// `--allow-device-secrets` lifts this.
    pub(crate) fn check_secret_sources(&self, path: &Path, allow: bool) -> anyhow::Result<()> {
        if allow {
            return Ok(());
        }
        let shown = path.display();
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let folder = std::fs::canonicalize(folder).with_context(|| format!("--device {shown}: its folder"))?;
        let files = [
            ("token_file", &self.token_file),
            ("signature_file", &self.signature_file),
            ("signing_key", &self.signing_key),
            ("password_file", &self.password_file),
        ];
        for (key, file) in files {
            let Some(file) = file else { continue };
            if file.as_os_str() == "-" {
                continue;
            }
            // Resolved whole (symbolic links and `..` included) before it is compared.
            // A file that does not exist sends nothing: reading it fails later with its own error.
            let inside = std::fs::canonicalize(file).map(|f| f.starts_with(&folder)).unwrap_or(true);
            if !inside {
                anyhow::bail!(
                    "--device {shown}: {key} = {} is not in the profile's folder; a device profile reads secrets only \
                     from files beside it. Give it on the command line (--{}) or pass --allow-device-secrets",
                    file.display(),
                    key.replace('_', "-")
                );
            }
        }
        let vars = [
            ("token_env", &self.token_env),
            ("signature_env", &self.signature_env),
            ("password_env", &self.password_env),
        ];
        for (key, var) in vars {
            let Some(var) = var else { continue };
            if is_cloud_credential(var) {
                anyhow::bail!(
                    "--device {shown}: {key} = {var} names a cloud credential variable, not a device secret; \
                     use AUTHPROBE_TOKEN (or a variable of your own), or pass --allow-device-secrets"
                );
            }
        }
        Ok(())
    }

    /// Fills every setting the command line left unset.
    pub(crate) fn apply(&self, args: &mut ProbeArgs) {
        fill(&mut args.endpoint, &self.endpoint);
        fill(&mut args.proxy, &self.proxy);
        fill(&mut args.noproxy, &self.noproxy);
        if let (Some(t), true) = (self.timeout, args.timeout == DEFAULT_TIMEOUT) {
            args.timeout = t;
        }
        if args.creds.public_keys.is_empty() {
            args.creds.public_keys.clone_from(&self.public_keys);
        }
        fill(&mut args.port, &self.port);
        fill(&mut args.connect_to, &self.connect_to);
        if args.resolve.is_empty() {
            args.resolve.clone_from(&self.resolve);
        }
        if !args.insecure {
            fill(&mut args.ca, &self.ca);
        }
        if args.transports.is_empty() {
            args.transports.clone_from(&self.transports);
        }
        let c = &mut args.creds;
        fill(&mut c.authorizer, &self.authorizer);
        fill(&mut c.token_key_name, &self.token_key_name);
        fill(&mut c.client_id, &self.client_id);
        fill(&mut c.username, &self.username);
        fill(&mut c.mqtt_version, &self.mqtt_version);
        if c.token.is_none() && c.token_file.is_none() {
            fill(&mut c.token_file, &self.token_file);
            fill(&mut c.env_names.token, &self.token_env);
            if self.token_file.is_some() || self.token_env.is_some() {
                c.profile_named.push("token");
            }
        }
        if c.signature.is_none() && c.signature_file.is_none() && c.signing_key.is_none() {
            fill(&mut c.signature_file, &self.signature_file);
            fill(&mut c.env_names.signature, &self.signature_env);
            fill(&mut c.signing_key, &self.signing_key);
            if self.signature_file.is_some() || self.signature_env.is_some() {
                c.profile_named.push("signature");
            }
        }
        if c.password.is_none() && c.password_file.is_none() {
            fill(&mut c.password_file, &self.password_file);
            fill(&mut c.env_names.password, &self.password_env);
            if self.password_file.is_some() || self.password_env.is_some() {
                c.profile_named.push("password");
            }
        }
        let s = &mut args.sends;
        if s.sni.is_none() && !s.no_sni {
            s.sni.clone_from(&self.sni);
            s.no_sni = self.no_sni;
        }
        if s.alpn.is_empty() && !s.no_alpn {
            s.alpn.clone_from(&self.alpn);
            s.no_alpn = self.no_alpn;
        }
        if s.host_header.is_none() && !s.no_host_header {
            s.host_header.clone_from(&self.host_header);
            s.no_host_header = self.no_host_header;
        }
        fill(&mut s.placement, &self.placement);
        fill(&mut s.signature_encoding, &self.signature_encoding);
        fill(&mut s.username_raw, &self.username_raw);
        fill(&mut s.ws_protocol, &self.ws_protocol);
        fill(&mut s.keep_alive, &self.keep_alive);
        fill(&mut s.client_type, &self.client_type);
        fill(&mut s.origin, &self.origin);
    }

    /// The profile of a command line to be written at `to`, and notes on what could not be saved (a
    /// secret given by value, a proxy password). Paths are relative to the profile's folder where
    /// they are inside it, so that the folder can be copied to a gateway whole.
    pub(crate) fn of(args: &ProbeArgs, to: &Path) -> (Self, Vec<String>) {
        let c = &args.creds;
        let s = &args.sends;
        let mut notes = Vec::new();
        let folder = to.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let folder = std::path::absolute(folder).unwrap_or_else(|_| folder.to_path_buf());
        let absolute = |p: &Option<PathBuf>| {
            p.as_ref().map(|p| {
                if p.as_os_str() == "-" {
                    return p.clone();
                }
                let whole = std::path::absolute(p).unwrap_or_else(|_| p.clone());
                whole.strip_prefix(&folder).map(Path::to_path_buf).unwrap_or(whole)
            })
        };
        let mut reference =
            |value: &Option<String>, file: &Option<PathBuf>, named: &Option<String>, default: &str, what: &str| {
                if value.is_some() {
                    notes.push(format!(
                    "the {what} given on the command line is not saved in the profile: use --{what}-file or {default}"
                ));
                    return (None, None);
                }
                if file.as_ref().is_some_and(|f| f.as_os_str() == "-") {
                    notes.push(format!("the {what} read from standard input is not saved in the profile"));
                    return (None, None);
                }
                (absolute(file), named.clone().or_else(|| std::env::var_os(default).map(|_| default.to_owned())))
            };
        let (token_file, token_env) =
            reference(&c.token, &c.token_file, &c.env_names.token, "AUTHPROBE_TOKEN", "token");
        let (signature_file, signature_env) =
            reference(&c.signature, &c.signature_file, &c.env_names.signature, "AUTHPROBE_SIGNATURE", "signature");
        let (password_file, password_env) =
            reference(&c.password, &c.password_file, &c.env_names.password, "AUTHPROBE_PASSWORD", "password");
        let profile = Self {
            endpoint: args.endpoint.clone(),
            port: args.port,
            transports: args.transports.clone(),
            authorizer: c.authorizer.clone(),
            token_key_name: c.token_key_name.clone(),
            client_id: c.client_id.clone(),
            username: c.username.as_deref().map(|u| template(u, c, &mut notes, "--username")),
            mqtt_version: c.mqtt_version,
            token_file,
            token_env,
            signature_file,
            signature_env,
            signing_key: absolute(&c.signing_key),
            password_file,
            password_env,
            sni: s.sni.clone(),
            no_sni: s.no_sni,
            alpn: s.alpn.clone(),
            no_alpn: s.no_alpn,
            host_header: s.host_header.clone(),
            no_host_header: s.no_host_header,
            placement: s.placement,
            signature_encoding: s.signature_encoding,
            username_raw: s.username_raw.as_deref().map(|u| template(u, c, &mut notes, "--username-raw")),
            ws_protocol: s.ws_protocol.clone(),
            keep_alive: s.keep_alive,
            client_type: s.client_type,
            origin: s.origin.clone(),
            connect_to: args.connect_to.clone(),
            resolve: args.resolve.clone(),
            ca: absolute(&args.ca),
            proxy: args.proxy.as_deref().map(|u| without_password(u, &mut notes)),
            noproxy: args.noproxy.clone(),
            public_keys: c.public_keys.iter().filter_map(|p| absolute(&Some(p.clone()))).collect(),
            timeout: (args.timeout != DEFAULT_TIMEOUT).then_some(args.timeout),
        };
        (profile, notes)
    }

    /// Notes on files the profile names outside its own folder: a replay reads them only with
    /// `--allow-device-secrets` (or once they are copied beside the profile).
    pub(crate) fn outside_notes(&self, path: &Path) -> Vec<String> {
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
        let Ok(folder) = std::fs::canonicalize(folder) else { return Vec::new() };
        [("token_file", &self.token_file), ("signature_file", &self.signature_file), ("signing_key", &self.signing_key), ("password_file", &self.password_file)]
            .into_iter()
            .filter_map(|(k, f)| {
                let f = f.as_ref()?;
                let inside = std::fs::canonicalize(f).map(|f| f.starts_with(&folder)).unwrap_or(true);
                (!inside).then(|| {
                    format!("{k} = {} is outside the profile's folder: the replay needs --allow-device-secrets (or copy the file beside the profile)", f.display())
                })
            })
            .collect()
    }

    pub(crate) fn write(&self, path: &Path) -> anyhow::Result<()> {
        let text = toml::to_string(self).context("serialising the device profile")?;
        let text = format!("# authprobe device profile: `authprobe probe --device {}`\n{text}", path.display());
        std::fs::write(path, text).with_context(|| format!("cannot write --save-device {}", path.display()))
    }
}

/// Whether an environment variable holds a cloud or CI credential rather than a device's secret.
fn is_cloud_credential(name: &str) -> bool {
    const PREFIXES: [&str; 14] = [
        "AWS_",
        "AMAZON_",
        "AZURE_",
        "ARM_",
        "GOOGLE_",
        "GCLOUD_",
        "GCP_",
        "CLOUDSDK_",
        "DIGITALOCEAN_",
        "VAULT_",
        "GITHUB_",
        "GITLAB_",
        "CI_",
        "NPM_",
    ];
    const NAMES: [&str; 6] =
        ["GH_TOKEN", "KUBECONFIG", "SSH_AUTH_SOCK", "DOCKER_AUTH_CONFIG", "HEROKU_API_KEY", "HOME"];
    let upper = name.to_ascii_uppercase();
    PREFIXES.iter().any(|p| upper.starts_with(p)) || NAMES.contains(&upper.as_str())
}

/// A username as saved in a profile: every secret value in it replaced by a placeholder that the
/// replay fills from the device's secrets (`{token}`, `{signature}`, `{signature_pct}` for the
/// percent-encoded form), or by `{secret}` for a value that is neither (the replay refuses it until
/// the user gives the username again). The profile never holds a secret in clear.
fn template(username: &str, c: &super::device::CredentialArgs, notes: &mut Vec<String>, flag: &str) -> String {
    use crate::auth::credentials::{AUTHORIZER_NAME, SIGNATURE};
    let Some((head, query)) = username.split_once('?') else { return username.to_owned() };
    let token_key = c.token_key_name.as_deref().unwrap_or("token");
    let mut out = format!("{head}?");
    let mut rest = query;
    loop {
        let end = rest.find(['?', '&']).unwrap_or(rest.len());
        let pair = &rest[..end];
        match pair.split_once('=') {
            Some((name, raw))
                if !name.eq_ignore_ascii_case(AUTHORIZER_NAME) && raw.len() >= 3 && !raw.starts_with('{') =>
            {
                let placeholder = if name == token_key || name == "token" {
                    "{token}"
                } else if name == SIGNATURE {
                    if raw.contains('%') { "{signature_pct}" } else { "{signature}" }
                } else {
                    notes.push(format!(
                        "the value of `{name}` in {flag} is not saved (it may be a secret): the profile holds {{secret}}; give {flag} again at replay"
                    ));
                    "{secret}"
                };
                out.push_str(name);
                out.push('=');
                out.push_str(placeholder);
            }
            _ => out.push_str(pair),
        }
        let Some(sep) = rest[end..].chars().next() else { break };
        out.push(sep);
        rest = &rest[end + 1..];
    }
    if out.contains("{token}") && c.token.is_some() {
        notes.push(format!(
            "{flag} keeps the token as {{token}}: at replay it comes from --token-file or AUTHPROBE_TOKEN"
        ));
    }
    out
}

/// A saved username with its placeholders filled from the device's secrets (see [`template`]).
pub(crate) fn fill_placeholders(
    username: &str,
    token: Option<&str>,
    signature: Option<&str>,
    what: &str,
) -> anyhow::Result<String> {
    if !username.contains('{') {
        return Ok(username.to_owned());
    }
    if username.contains("{secret}") {
        anyhow::bail!(
            "{what} holds {{secret}}: the value was not saved in the profile; give {what} on the command line"
        );
    }
    let need = |v: Option<&str>, name: &str| {
        v.map(str::to_owned).ok_or_else(|| {
            anyhow::anyhow!(
                "{what} holds {{{name}}}: give the {name} (--{name}-file or AUTHPROBE_{})",
                name.to_uppercase()
            )
        })
    };
    let mut out = username.to_owned();
    if out.contains("{token}") {
        out = out.replace("{token}", &need(token, "token")?);
    }
    if out.contains("{signature_pct}") {
        out = out.replace("{signature_pct}", &crate::auth::credentials::encode(&need(signature, "signature")?));
    }
    if out.contains("{signature}") {
        out = out.replace("{signature}", &need(signature, "signature")?);
    }
    Ok(out)
}
