//! Stage `resolve`: the endpoint's addresses (or `--connect-to`'s), within the stage timeout.

use super::classify::Observation;
use std::net::SocketAddr;
use std::time::Duration;

/// Resolves `host:port`; an IP literal needs no lookup.
pub async fn resolve(host: &str, port: u16, timeout: Duration) -> Result<Vec<SocketAddr>, Observation> {
    let fail = |error: String| Observation::Resolve { name: host.to_owned(), error };
    let host_only = host.trim_start_matches('[').trim_end_matches(']');
    if let Ok(ip) = host_only.parse::<std::net::IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    match tokio::time::timeout(timeout, tokio::net::lookup_host((host_only, port))).await {
        Err(_) => Err(fail(format!("no answer within {} ms", timeout.as_millis()))),
        Ok(Err(e)) => Err(fail(e.to_string())),
        Ok(Ok(addrs)) => {
            let addrs: Vec<SocketAddr> = addrs.collect();
            if addrs.is_empty() { Err(fail("no addresses".into())) } else { Ok(addrs) }
        }
    }
}
