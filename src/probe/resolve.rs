//! Stage `resolve`: the addresses to dial, within the stage timeout — from an IP literal, a
//! `--resolve` override or the system resolver — every answer kept for the report, then filtered to
//! the attempt's IP versions.

use super::classify::Observation;
use super::plan::{Family, ResolveOverride};
use serde::Serialize;
use std::net::SocketAddr;
use std::time::Duration;

/// What a name resolved to, and where the answer came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Answers {
    pub name: String,
    /// Every A / AAAA answer, in the resolver's order.
    pub answers: Vec<String>,
    /// Where the answers came from.
    pub source: DnsSource,
}

/// Where a name's addresses came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum DnsSource {
    /// The system resolver.
    #[serde(rename = "dns")]
    Dns,
    /// `--resolve`.
    #[serde(rename = "--resolve")]
    ResolveFlag,
    /// The name is an address.
    #[serde(rename = "address literal")]
    AddressLiteral,
}

impl std::fmt::Display for DnsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Dns => "dns",
            Self::ResolveFlag => "--resolve",
            Self::AddressLiteral => "address literal",
        })
    }
}

/// Resolves `host:port`; returns every answer and the addresses `family` allows, in order.
pub(crate) async fn resolve(
    host: &str,
    port: u16,
    overrides: &[ResolveOverride],
    family: Family,
    timeout: Duration,
) -> Result<(Answers, Vec<SocketAddr>), Observation> {
    let fail = |error: String| Observation::Resolve { name: host.to_owned(), error };
    let host_only = host.trim_start_matches('[').trim_end_matches(']');
    let lower = host_only.to_ascii_lowercase();
    let (all, source): (Vec<SocketAddr>, DnsSource) = if let Ok(ip) = host_only.parse::<std::net::IpAddr>() {
        (vec![SocketAddr::new(ip, port)], DnsSource::AddressLiteral)
    } else if let Some(o) = overrides.iter().find(|o| o.host == lower && o.port == port) {
        (o.addrs.iter().map(|&ip| SocketAddr::new(ip, port)).collect(), DnsSource::ResolveFlag)
    } else {
        match tokio::time::timeout(timeout, tokio::net::lookup_host((host_only, port))).await {
            Err(_) => return Err(fail(format!("no answer within {} ms", timeout.as_millis()))),
            Ok(Err(e)) => return Err(fail(e.to_string())),
            Ok(Ok(addrs)) => {
                // getaddrinfo repeats an address once per socket type on some systems.
                let mut seen = Vec::new();
                for a in addrs {
                    if !seen.contains(&a) {
                        seen.push(a);
                    }
                }
                (seen, DnsSource::Dns)
            }
        }
    };
    let answers =
        Answers { name: host_only.to_owned(), answers: all.iter().map(|a| a.ip().to_string()).collect(), source };
    if all.is_empty() {
        return Err(fail("no addresses".into()));
    }
    let usable: Vec<SocketAddr> = all.iter().copied().filter(|a| family.allows(a.ip())).collect();
    if usable.is_empty() {
        let wanted = if family == Family::V6 { "IPv6 (AAAA)" } else { "IPv4 (A)" };
        return Err(fail(format!("no {wanted} answer; the answers are {} ({source})", answers.answers.join(", "))));
    }
    Ok((answers, usable))
}

/// Why an address is unexpected for a public IoT endpoint, or `None` when it is a public address.
pub(crate) fn unexpected(ip: std::net::IpAddr) -> Option<&'static str> {
    use std::net::IpAddr;
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4.is_unspecified() {
                Some("unspecified (0.0.0.0: a DNS filter's sinkhole answer)")
            } else if v4.is_loopback() {
                Some("loopback")
            } else if v4.is_private() {
                Some("private (RFC 1918)")
            } else if v4.is_link_local() {
                Some("link-local")
            } else if o[0] == 100 && (64..128).contains(&o[1]) {
                Some("carrier-grade NAT (100.64.0.0/10)")
            } else if o[0] == 198 && (18..20).contains(&o[1]) {
                Some("benchmarking (198.18.0.0/15)")
            } else if v4.is_documentation() {
                Some("documentation (TEST-NET)")
            } else if v4.is_multicast() || v4.is_broadcast() || o[0] >= 240 {
                Some("multicast or reserved")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            let s = v6.segments();
            if let Some(v4) = v6.to_ipv4_mapped() {
                unexpected(IpAddr::V4(v4))
            } else if v6.is_unspecified() {
                Some("unspecified (::: a DNS filter's sinkhole answer)")
            } else if v6.is_loopback() {
                Some("loopback")
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Some("unique local (fc00::/7)")
            } else if (s[0] & 0xffc0) == 0xfe80 {
                Some("link-local")
            } else if s[0] == 0x2001 && s[1] == 0x0db8 {
                Some("documentation (2001:db8::/32)")
            } else if v6.is_multicast() {
                Some("multicast")
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unexpected_addresses() {
        for (ip, why) in [
            ("127.0.0.1", "loopback"),
            ("0.0.0.0", "unspecified"),
            ("10.1.2.3", "private"),
            ("192.168.1.1", "private"),
            ("169.254.1.1", "link-local"),
            ("100.64.0.1", "carrier-grade"),
            ("100.127.255.1", "carrier-grade"),
            ("192.0.2.10", "documentation"),
            ("::1", "loopback"),
            ("fd00::1", "unique local"),
            ("fe80::1", "link-local"),
            ("::ffff:10.0.0.1", "private"),
        ] {
            let got = unexpected(ip.parse().unwrap());
            assert!(got.is_some_and(|g| g.contains(why)), "{ip}: {got:?}");
        }
        for ip in ["52.94.1.1", "100.128.0.1", "3.5.140.2", "2600:1f18::1"] {
            assert_eq!(unexpected(ip.parse().unwrap()), None, "{ip}");
        }
    }

    #[tokio::test]
    async fn overrides_and_families() {
        let o = vec![ResolveOverride::parse("ep.example:443:192.0.2.1,[2001:db8::1]").unwrap()];
        let t = Duration::from_secs(1);
        let (a, usable) = resolve("EP.example", 443, &o, Family::Any, t).await.unwrap();
        assert_eq!((a.source, a.answers.len(), usable.len()), (DnsSource::ResolveFlag, 2, 2));
        let (_, usable) = resolve("ep.example", 443, &o, Family::V6, t).await.unwrap();
        assert!(usable.iter().all(|a| a.is_ipv6()));
        let only4 = vec![ResolveOverride::parse("ep.example:443:192.0.2.1").unwrap()];
        let e = resolve("ep.example", 443, &only4, Family::V6, t).await.unwrap_err();
        assert!(matches!(e, Observation::Resolve { error, .. } if error.contains("no IPv6 (AAAA) answer")));
        // Another port is not overridden: the system resolver answers (a literal here).
        let (a, _) = resolve("127.0.0.1", 8443, &o, Family::Any, t).await.unwrap();
        assert_eq!(a.source, DnsSource::AddressLiteral);
        for bad in ["ep:443", "ep:x:1.2.3.4", ":443:1.2.3.4", "ep:443:nope"] {
            assert!(ResolveOverride::parse(bad).is_err(), "{bad}");
        }
    }
}
