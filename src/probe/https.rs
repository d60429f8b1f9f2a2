//! Stage `http` (https): `POST /topics/<topic>?qos=1` with the credential headers, over hyper's HTTP/1
//! client connection, which sends exactly the headers given (Host included).

use super::classify::Observation;
use super::mqtt::MAX_REPLY;
use super::tls::Stream;
use http_body_util::{BodyExt as _, Full};
use std::time::{Duration, Instant};

/// The body of the probe's publish.
pub(crate) const BODY: &str = r#"{"message":"authprobe"}"#;

/// The publish request's headers as hyper writes them (names in lower case, content-length last).
pub(crate) fn headers(host: Option<&str>, extra: &[(String, String)], body: &str) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = host.map(|h| ("host".to_owned(), h.to_owned())).into_iter().collect();
    h.push(("content-type".into(), "application/json".into()));
    h.extend(extra.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())));
    h.push(("content-length".into(), body.len().to_string()));
    h
}

/// Publishes `body` and returns the answer as an observation.
pub(crate) async fn publish(
    tls: Stream,
    target: &str,
    host: Option<&str>,
    extra: &[(String, String)],
    body: &str,
    timeout: Duration,
) -> Observation {
    let started = Instant::now();
    let elapsed = || started.elapsed().as_millis() as u64;
    let deadline = tokio::time::Instant::now() + timeout;
    let io = hyper_util::rt::TokioIo::new(tls);
    let (mut sender, conn) = match tokio::time::timeout_at(deadline, hyper::client::conn::http1::handshake(io)).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Observation::HttpMalformed { error: e.to_string() },
        Err(_) => return Observation::HttpTimeout { elapsed_ms: elapsed() },
    };
    let driver = tokio::spawn(conn);
    let mut req = hyper::Request::builder().method("POST").uri(target);
    // hyper adds content-length itself.
    for (n, v) in headers(host, extra, body).iter().filter(|(n, _)| n != "content-length") {
        req = req.header(n.as_str(), v.as_str());
    }
    let req = match req.body(Full::new(bytes::Bytes::from(body.to_owned()))) {
        Ok(r) => r,
        Err(e) => return Observation::HttpMalformed { error: format!("request could not be built: {e}") },
    };
    let obs = match tokio::time::timeout_at(deadline, sender.send_request(req)).await {
        Err(_) => Observation::HttpTimeout { elapsed_ms: elapsed() },
        Ok(Err(e)) if e.is_parse() || e.is_parse_status() => Observation::HttpMalformed { error: e.to_string() },
        Ok(Err(_)) => Observation::HttpClosed { elapsed_ms: elapsed(), bytes_seen: 0 },
        Ok(Ok(resp)) => {
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let body = collect(resp.into_body(), deadline).await;
            Observation::HttpResponse { status, headers, body }
        }
    };
    driver.abort();
    obs
}

/// The body, at most 64 KiB, as much as arrives before the deadline.
async fn collect(mut body: hyper::body::Incoming, deadline: tokio::time::Instant) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < MAX_REPLY {
        match tokio::time::timeout_at(deadline, body.frame()).await {
            Ok(Some(Ok(frame))) => {
                if let Some(d) = frame.data_ref() {
                    out.extend_from_slice(d);
                }
            }
            _ => break,
        }
    }
    out.truncate(MAX_REPLY);
    out
}
