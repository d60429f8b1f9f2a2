//! Stage `proxy`: a tunnel to the endpoint through an HTTP CONNECT or SOCKS5 proxy, within the stage
//! timeout. Which proxy (if any) is chosen as curl chooses it: `--proxy`, else `https_proxy` /
//! `HTTPS_PROXY`, else `all_proxy` / `ALL_PROXY`, unless the host is in `--noproxy` or `NO_PROXY`.

use super::classify::{Failure, Observation};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

/// The proxy protocols the probe speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// HTTP CONNECT (`http://`).
    Http,
    /// SOCKS5 with the endpoint resolved here (`socks5://`).
    Socks5,
    /// SOCKS5 with the endpoint's name resolved by the proxy (`socks5h://`).
    Socks5h,
}

/// A proxy and why it is used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Proxy {
    /// HTTP CONNECT, SOCKS5 or SOCKS5 with remote name resolution.
    pub scheme: Scheme,
    /// The proxy's host.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The user of its credentials.
    pub user: Option<String>,
    /// Never shown unless `--show-secrets`.
    pub password: Option<crate::secret::Secret>,
    /// `--proxy`, or the environment variable it came from.
    pub source: ProxySource,
}

/// Where a proxy setting came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProxySource {
    /// `--proxy`.
    Flag,
    /// One of the environment variables curl reads (`https_proxy`, `HTTPS_PROXY`, `all_proxy`,
    /// `ALL_PROXY`).
    Env(&'static str),
}

impl std::fmt::Display for ProxySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Flag => "--proxy",
            Self::Env(var) => var,
        })
    }
}

impl serde::Serialize for ProxySource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl Proxy {
    /// Parses `scheme://[user[:password]@]host[:port]` (curl's forms; no scheme means `http://`).
    pub fn parse(url: &str, source: ProxySource) -> Result<Self, String> {
        let url = url.trim();
        if url.is_empty() {
            return Err(format!("{source} is empty: give a proxy URL such as http://proxy.example:3128"));
        }
        let (scheme, rest) = match url.split_once("://") {
            Some((s, rest)) => (s.to_ascii_lowercase(), rest),
            None => ("http".to_owned(), url),
        };
        let scheme = match scheme.as_str() {
            "http" => Scheme::Http,
            "socks5" => Scheme::Socks5,
            "socks5h" => Scheme::Socks5h,
            other => {
                return Err(format!(
                    "{source}: proxy scheme `{other}://` is not supported; use http:// (HTTP CONNECT), socks5:// or socks5h://"
                ));
            }
        };
        let rest = rest.trim_end_matches('/');
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let decode = |s: &str| percent_encoding::percent_decode_str(s).decode_utf8_lossy().into_owned();
        let (user, password) = match userinfo {
            None => (None, None),
            Some(u) => match u.split_once(':') {
                Some((user, pw)) => (Some(decode(user)), Some(decode(pw))),
                None => (Some(decode(u)), None),
            },
        };
        // curl's default proxy port, for every scheme.
        let (host, port) =
            split_host_port(hostport, 1080).map_err(|e| format!("{source}: {e} in `{}`", redact_url(url)))?;
        if host.is_empty() {
            return Err(format!("{source}: no proxy host in `{}`", redact_url(url)));
        }
        Ok(Self { scheme, host, port, user, password: password.map(crate::secret::Secret::new), source })
    }

    /// The URL with the password redacted (`<redacted>`) unless `show`.
    pub fn display(&self, show: bool) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Socks5 => "socks5",
            Scheme::Socks5h => "socks5h",
        };
        let auth = match (&self.user, &self.password) {
            (Some(u), Some(p)) if show => format!("{u}:{}@", p.expose()),
            (Some(u), Some(_)) => format!("{u}:<redacted>@"),
            (Some(u), None) => format!("{u}@"),
            _ => String::new(),
        };
        let host = if self.host.contains(':') { format!("[{}]", self.host) } else { self.host.clone() };
        format!("{scheme}://{auth}{host}:{}", self.port)
    }

    /// Whether the proxy, not this machine, resolves the endpoint's name.
    pub fn resolves_name(&self) -> bool {
        self.scheme != Scheme::Socks5
    }
}

/// `user:password@host` with the password hidden, for error messages about a URL.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let userinfo = &url[s + 3..at];
            match userinfo.split_once(':') {
                Some((u, _)) => format!("{}{u}:<redacted>{}", &url[..s + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        (None, Some(at)) => match url[..at].split_once(':') {
            Some((u, _)) => format!("{u}:<redacted>{}", &url[at..]),
            None => url.to_owned(),
        },
        _ => url.to_owned(),
    }
}

/// `host`, `host:port`, `[v6]`, `[v6]:port`.
fn split_host_port(s: &str, default_port: u16) -> Result<(String, u16), String> {
    let port = |p: &str| p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| format!("bad port `{p}`"));
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or("an unclosed `[`")?;
        return match after.strip_prefix(':') {
            Some(p) => Ok((host.to_owned(), port(p)?)),
            None if after.is_empty() => Ok((host.to_owned(), default_port)),
            None => Err(format!("unexpected `{after}`")),
        };
    }
    match s.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => Ok((h.to_owned(), port(p)?)),
        _ => Ok((s.to_owned(), default_port)),
    }
}

/// The proxy decision for one endpoint, with the reason shown in the report.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Choice {
    pub proxy: Option<Proxy>,
    /// Why no proxy is used although one is configured (`NO_PROXY` or `--noproxy` matched).
    pub bypassed: Option<String>,
}

/// Chooses as curl does. `flag` is `--proxy`; `noproxy` is `--noproxy` (it replaces `NO_PROXY`).
/// `hosts`: the endpoint, and the `--connect-to` host when there is one; either matching bypasses.
pub(crate) fn choose(
    hosts: &[&str],
    flag: Option<&str>,
    noproxy: Option<&str>,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Choice, String> {
    let (list, list_source) = match noproxy {
        Some(l) => (Some(l.to_owned()), "--noproxy".to_owned()),
        None => match ["no_proxy", "NO_PROXY"].iter().find_map(|v| env(v).map(|l| (l, (*v).to_owned()))) {
            Some((l, v)) => (Some(l), v),
            None => (None, String::new()),
        },
    };
    let configured = match flag {
        Some(url) => Some(Proxy::parse(url, ProxySource::Flag)?),
        None => match ["https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]
            .iter()
            .find_map(|v| env(v).filter(|u| !u.trim().is_empty()).map(|u| (u, *v)))
        {
            Some((url, var)) => Some(Proxy::parse(&url, ProxySource::Env(var))?),
            None => None,
        },
    };
    match (configured, list) {
        (Some(p), Some(list)) if hosts.iter().any(|h| no_proxy_matches(&list, h)) => {
            let host = hosts.iter().find(|h| no_proxy_matches(&list, h)).copied().unwrap_or_default();
            Ok(Choice {
                bypassed: Some(format!(
                    "{} from {} is not used: {host} matches {list_source}",
                    p.display(false),
                    p.source
                )),
                proxy: None,
            })
        }
        (proxy, _) => Ok(Choice { proxy, bypassed: None }),
    }
}

/// curl's `NO_PROXY` rules: `*` matches every host; a name matches itself and its subdomains (a
/// leading dot is optional); an IP address or CIDR range matches addresses in it.
pub(crate) fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.').to_ascii_lowercase();
    let ip: Option<IpAddr> = host.parse().ok();
    list.split(',').map(|e| e.trim().to_ascii_lowercase()).filter(|e| !e.is_empty()).any(|entry| {
        if entry == "*" {
            return true;
        }
        if let (Some(ip), Some((net, bits))) = (ip, entry.split_once('/')) {
            return match (net.parse::<IpAddr>(), bits.parse::<u32>()) {
                (Ok(net), Ok(bits)) => in_cidr(ip, net, bits),
                _ => false,
            };
        }
        let entry = entry.trim_start_matches('.').trim_end_matches('.');
        host == entry || host.ends_with(&format!(".{entry}"))
    })
}

fn in_cidr(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(a), IpAddr::V4(n)) if bits <= 32 => {
            let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) if bits <= 128 => {
            let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// The most of a CONNECT answer read: a proxy's error page does not grow the probe's memory.
const MAX_ANSWER: usize = 16 * 1024;

/// Opens a tunnel to `host:port` (or `addr`, for `socks5://`) over `tcp`, within `timeout` — the
/// whole exchange, whatever the proxy sends or withholds.
pub(crate) async fn tunnel(
    tcp: TcpStream,
    proxy: &Proxy,
    host: &str,
    port: u16,
    addr: Option<SocketAddr>,
    timeout: Duration,
) -> Result<TcpStream, Observation> {
    let started = Instant::now();
    let shown = proxy.display(false);
    let fail = |failure: Failure, status: String| Observation::Proxy {
        proxy: shown.clone(),
        failure,
        status,
        elapsed_ms: started.elapsed().as_millis() as u64,
    };
    let work = async {
        match proxy.scheme {
            Scheme::Http => http_connect(tcp, proxy, host, port).await,
            Scheme::Socks5 | Scheme::Socks5h => socks5(tcp, proxy, host, port, addr).await,
        }
    };
    match tokio::time::timeout(timeout, work).await {
        Err(_) => Err(fail(Failure::Timeout, format!("no answer within {} ms", timeout.as_millis()))),
        Ok(Err((failure, status))) => Err(fail(failure, status)),
        Ok(Ok(tcp)) => Ok(tcp),
    }
}

/// HTTP CONNECT. Written by hand: it is one request line and a header or two, and the answer's status
/// line is the evidence the report shows.
async fn http_connect(
    mut tcp: TcpStream,
    proxy: &Proxy,
    host: &str,
    port: u16,
) -> Result<TcpStream, (Failure, String)> {
    use base64::Engine as _;
    let authority = if host.contains(':') { format!("[{host}]:{port}") } else { format!("{host}:{port}") };
    let mut request = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n");
    if let Some(user) = &proxy.user {
        let pair = format!("{user}:{}", proxy.password.as_ref().map_or("", crate::secret::Secret::expose));
        let b64 = base64::engine::general_purpose::STANDARD.encode(pair);
        request += &format!("Proxy-Authorization: Basic {b64}\r\n");
    }
    request += "\r\n";
    let io = |e: std::io::Error| (Failure::Refused, format!("connection to the proxy failed: {e}"));
    tcp.write_all(request.as_bytes()).await.map_err(io)?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = tcp.read(&mut chunk).await.map_err(io)?;
        if n == 0 {
            let seen = String::from_utf8_lossy(&buf).lines().next().unwrap_or("").to_owned();
            let what = if buf.is_empty() {
                "the proxy closed the connection without an answer".to_owned()
            } else {
                format!("the proxy closed the connection mid-answer: {seen}")
            };
            return Err((Failure::Refused, what));
        }
        buf.extend_from_slice(&chunk[..n]);
        let mut headers = [httparse::EMPTY_HEADER; 64];
        let mut response = httparse::Response::new(&mut headers);
        match response.parse(&buf) {
            Ok(httparse::Status::Complete(_)) => {
                let code = response.code.unwrap_or(0);
                let status_line = String::from_utf8_lossy(&buf)
                    .lines()
                    .next()
                    .map(|l| l.chars().take(200).map(|c| if c.is_control() { '.' } else { c }).collect())
                    .unwrap_or_default();
                return match code {
                    200..=299 => Ok(tcp),
                    // 407 is the standard answer; some proxies (tinyproxy 1.11) answer wrong
                    // credentials with 401.
                    401 | 407 => Err((Failure::AuthRequired, status_line)),
                    _ => Err((Failure::Refused, status_line)),
                };
            }
            Ok(httparse::Status::Partial) if buf.len() < MAX_ANSWER => {}
            Ok(httparse::Status::Partial) => {
                return Err((Failure::Refused, format!("the proxy's answer exceeds {MAX_ANSWER} bytes")));
            }
            Err(e) => {
                let first = super::outcome::show_bytes(&buf);
                return Err((Failure::Refused, format!("not an HTTP answer ({e}): {first}")));
            }
        }
    }
}

async fn socks5(
    tcp: TcpStream,
    proxy: &Proxy,
    host: &str,
    port: u16,
    addr: Option<SocketAddr>,
) -> Result<TcpStream, (Failure, String)> {
    use tokio_socks::Error as E;
    use tokio_socks::tcp::Socks5Stream;
    let connected = match (proxy.scheme, addr, &proxy.user) {
        (Scheme::Socks5, Some(addr), None) => Socks5Stream::connect_with_socket(tcp, addr).await,
        (Scheme::Socks5, Some(addr), Some(user)) => {
            Socks5Stream::connect_with_password_and_socket(
                tcp,
                addr,
                user,
                proxy.password.as_ref().map_or("", crate::secret::Secret::expose),
            )
            .await
        }
        (_, _, None) => Socks5Stream::connect_with_socket(tcp, (host, port)).await,
        (_, _, Some(user)) => {
            Socks5Stream::connect_with_password_and_socket(
                tcp,
                (host, port),
                user,
                proxy.password.as_ref().map_or("", crate::secret::Secret::expose),
            )
            .await
        }
    };
    match connected {
        Ok(s) => Ok(s.into_inner()),
        Err(e) => {
            let failure = match e {
                E::PasswordAuthFailure(_) | E::NoAcceptableAuthMethods => Failure::AuthRequired,
                _ => Failure::Refused,
            };
            Err((failure, format!("SOCKS5: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| (*v).to_owned())
    }

    #[test]
    fn urls_parse_as_curl_reads_them() {
        let p = Proxy::parse("http://alice:s%40cret@proxy.corp:3128/", ProxySource::Flag).unwrap();
        assert_eq!((p.scheme, p.host.as_str(), p.port), (Scheme::Http, "proxy.corp", 3128));
        assert_eq!(
            (p.user.as_deref(), p.password.as_ref().map(crate::secret::Secret::expose)),
            (Some("alice"), Some("s@cret"))
        );
        assert_eq!(p.display(false), "http://alice:<redacted>@proxy.corp:3128");
        let p = Proxy::parse("proxy.corp", ProxySource::Env("HTTPS_PROXY")).unwrap();
        assert_eq!((p.scheme, p.port), (Scheme::Http, 1080));
        let p = Proxy::parse("socks5h://[::1]:1081", ProxySource::Env("ALL_PROXY")).unwrap();
        assert_eq!((p.scheme, p.host.as_str(), p.port), (Scheme::Socks5h, "::1", 1081));
        assert!(p.resolves_name());
        assert!(!Proxy::parse("socks5://127.0.0.1:1", ProxySource::Flag).unwrap().resolves_name());
        for bad in ["", "ftp://x", "http://x:0", "http://x:port", "http://:3128"] {
            assert!(Proxy::parse(bad, ProxySource::Flag).is_err(), "{bad}");
        }
        let e = Proxy::parse("http://u:topsecret@h:bad", ProxySource::Flag).unwrap_err();
        assert!(!e.contains("topsecret"), "{e}");
    }

    #[test]
    fn environment_and_no_proxy_as_curl() {
        let ep = "abc-ats.iot.eu-west-1.amazonaws.com";
        let c =
            choose(&[ep], None, None, env(&[("HTTPS_PROXY", "http://p:1"), ("ALL_PROXY", "socks5://q:2")])).unwrap();
        assert_eq!(c.proxy.unwrap().source, ProxySource::Env("HTTPS_PROXY"));
        let c =
            choose(&[ep], None, None, env(&[("https_proxy", "http://a:1"), ("HTTPS_PROXY", "http://b:1")])).unwrap();
        assert_eq!(c.proxy.unwrap().host, "a", "lower case first, as curl");
        let c = choose(&[ep], None, None, env(&[("all_proxy", "socks5h://q:2")])).unwrap();
        assert_eq!(c.proxy.unwrap().scheme, Scheme::Socks5h);
        let c = choose(&[ep], Some("http://f:1"), None, env(&[("HTTPS_PROXY", "http://p:1")])).unwrap();
        assert_eq!(c.proxy.unwrap().source, ProxySource::Flag);
        let c =
            choose(&[ep], None, None, env(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "amazonaws.com")])).unwrap();
        assert!(c.proxy.is_none() && c.bypassed.unwrap().contains("NO_PROXY"));
        let c = choose(&[ep], Some("http://f:1"), Some("*"), env(&[])).unwrap();
        assert!(c.proxy.is_none() && c.bypassed.unwrap().contains("--noproxy"));
        // --noproxy replaces NO_PROXY.
        let c =
            choose(&[ep], None, Some("example.com"), env(&[("HTTPS_PROXY", "http://p:1"), ("NO_PROXY", "*")])).unwrap();
        assert!(c.proxy.is_some());
        assert_eq!(choose(&[ep], None, None, env(&[])).unwrap(), Choice::default());
    }

    #[test]
    fn no_proxy_entries() {
        assert!(no_proxy_matches("*", "x"));
        assert!(no_proxy_matches(".amazonaws.com", "a.iot.amazonaws.com"));
        assert!(no_proxy_matches("iot.eu-west-1.amazonaws.com", "a.iot.eu-west-1.amazonaws.com"));
        assert!(!no_proxy_matches("zonaws.com", "a.amazonaws.com"), "a suffix matches whole labels");
        assert!(no_proxy_matches("localhost, 127.0.0.0/8", "127.0.0.1"));
        assert!(no_proxy_matches("::1", "[::1]"));
        assert!(no_proxy_matches("fd00::/8", "fd12::1"));
        assert!(!no_proxy_matches("10.0.0.0/8", "11.0.0.1"));
        assert!(!no_proxy_matches("", "x"));
    }
}
