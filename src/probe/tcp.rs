//! Stage `tcp`: connect to the first address that answers, each within the stage timeout.

use super::classify::Observation;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

/// Dials each address in turn; the observation of the last failure is returned when none connects.
pub(crate) async fn dial(addrs: &[SocketAddr], timeout: Duration) -> Result<(TcpStream, SocketAddr), Observation> {
    let mut last = Observation::TcpTimeout { address: String::new(), elapsed_ms: 0 };
    for &addr in addrs {
        let started = Instant::now();
        let elapsed = || started.elapsed().as_millis() as u64;
        match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => {
                let _ = tcp.set_nodelay(true);
                return Ok((tcp, addr));
            }
            Ok(Err(e)) => {
                last = Observation::TcpError {
                    address: addr.to_string(),
                    kind: e.kind(),
                    message: e.to_string(),
                    elapsed_ms: elapsed(),
                }
            }
            Err(_) => last = Observation::TcpTimeout { address: addr.to_string(), elapsed_ms: elapsed() },
        }
    }
    Err(last)
}
