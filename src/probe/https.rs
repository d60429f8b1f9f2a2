//! Stage `http` (https): `POST /topics/<topic>?qos=1` with the credential headers, over hyper's HTTP/1
//! client connection, which sends exactly the headers given (Host included); for a page
//! (`--client-type browser`), the CORS preflight before it and a browser's headers.

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

/// A page's publish (`--client-type browser`): what headless Chromium 156 sent the emulator for
/// `fetch(url, {method: "POST", headers, body: "…"})` (recorded by tests/it/browser.rs), in its
/// order, with the page's custom headers where Chromium puts them (after `Content-Type`).
pub(crate) fn browser_headers(
    host: Option<&str>,
    extra: &[(String, String)],
    body: &str,
    origin: &str,
) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = host.map(|h| ("Host".to_owned(), h.to_owned())).into_iter().collect();
    let pairs = |h: &mut Vec<(String, String)>, list: &[(&str, &str)]| {
        h.extend(list.iter().map(|(n, v)| ((*n).to_owned(), (*v).to_owned())));
    };
    let length = body.len().to_string();
    pairs(
        &mut h,
        &[
            ("Connection", "keep-alive"),
            ("Content-Length", &length),
            ("sec-ch-ua-platform", "\"Linux\""),
            ("User-Agent", super::websocket::BROWSER_USER_AGENT),
            ("sec-ch-ua", CLIENT_HINT_UA),
            ("Content-Type", super::cors::CONTENT_TYPE),
        ],
    );
    h.extend(extra.iter().map(|(n, v)| (n.to_ascii_lowercase(), v.clone())));
    pairs(&mut h, &[("sec-ch-ua-mobile", "?0"), ("Accept", "*/*"), ("Origin", origin)]);
    fetch_metadata(&mut h, origin, false);
    h
}

/// Chromium's `sec-ch-ua` client hint.
const CLIENT_HINT_UA: &str = "\"Not:A-Brand\";v=\"8\", \"Chromium\";v=\"156\"";

/// A cross-site fetch's metadata, `Referer` (the page's origin: Chromium's default referrer policy
/// sends no more across sites) and Chromium's encodings and languages. The preflight names the mode
/// first, the publish the site.
fn fetch_metadata(h: &mut Vec<(String, String)>, origin: &str, preflight: bool) {
    let (first, second) = if preflight {
        (("Sec-Fetch-Mode", "cors"), ("Sec-Fetch-Site", "cross-site"))
    } else {
        (("Sec-Fetch-Site", "cross-site"), ("Sec-Fetch-Mode", "cors"))
    };
    for (n, v) in [first, second, ("Sec-Fetch-Dest", "empty")] {
        h.push((n.to_owned(), v.to_owned()));
    }
    if origin != "null" {
        h.push(("Referer".to_owned(), format!("{origin}/")));
    }
    for (n, v) in [("Accept-Encoding", "gzip, deflate, br, zstd"), ("Accept-Language", "en-US,en;q=0.9")] {
        h.push((n.to_owned(), v.to_owned()));
    }
}

/// The CORS preflight a browser sends before a page's publish with custom headers, in Chromium's
/// order (recorded as [`browser_headers`] are).
pub(crate) fn preflight_headers(host: Option<&str>, origin: &str, requested: &[String]) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = host.map(|h| ("Host".to_owned(), h.to_owned())).into_iter().collect();
    for (n, v) in [
        ("Connection", "keep-alive"),
        ("Accept", "*/*"),
        ("Access-Control-Request-Method", "POST"),
        ("Access-Control-Request-Headers", &requested.join(",")),
        ("Origin", origin),
        ("User-Agent", super::websocket::BROWSER_USER_AGENT),
    ] {
        h.push((n.to_owned(), v.to_owned()));
    }
    fetch_metadata(&mut h, origin, true);
    h
}

/// An answer's status and headers (the body is read and dropped, bounded), or why none came.
pub(crate) struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// Sends one request (`headers` exactly, in order, content-length included; names in title case as
/// browsers write them, or as given) and returns the answer.
pub(crate) async fn request(
    tls: Stream,
    method: &str,
    target: &str,
    headers: &[(String, String)],
    body: &str,
    title_case: bool,
    timeout: Duration,
) -> Result<Answer, Observation> {
    let started = Instant::now();
    let elapsed = || started.elapsed().as_millis() as u64;
    let deadline = tokio::time::Instant::now() + timeout;
    let io = hyper_util::rt::TokioIo::new(tls);
    let handshake = hyper::client::conn::http1::Builder::new().title_case_headers(title_case).handshake(io);
    let (mut sender, conn) = match tokio::time::timeout_at(deadline, handshake).await {
        Ok(Ok(pair)) => pair,
        Ok(Err(e)) => return Err(Observation::HttpMalformed { error: e.to_string() }),
        Err(_) => return Err(Observation::HttpTimeout { elapsed_ms: elapsed() }),
    };
    let driver = tokio::spawn(conn);
    let mut req = hyper::Request::builder().method(method).uri(target);
    for (n, v) in headers {
        req = req.header(n.as_str(), v.as_str());
    }
    let req = match req.body(Full::new(bytes::Bytes::from(body.to_owned()))) {
        Ok(r) => r,
        Err(e) => return Err(Observation::HttpMalformed { error: format!("request could not be built: {e}") }),
    };
    let answer = match tokio::time::timeout_at(deadline, sender.send_request(req)).await {
        Err(_) => Err(Observation::HttpTimeout { elapsed_ms: elapsed() }),
        Ok(Err(e)) if e.is_parse() || e.is_parse_status() => Err(Observation::HttpMalformed { error: e.to_string() }),
        Ok(Err(_)) => Err(Observation::HttpClosed { elapsed_ms: elapsed(), bytes_seen: 0 }),
        Ok(Ok(resp)) => {
            let status = resp.status().as_u16();
            let headers = resp
                .headers()
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
                .collect();
            let body = collect(resp.into_body(), deadline).await;
            Ok(Answer { status, headers, body })
        }
    };
    driver.abort();
    answer
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
    answered(request(tls, "POST", target, &headers(host, extra, body), body, false, timeout).await)
}

/// An answer as the observation it is.
pub(crate) fn answered(answer: Result<Answer, Observation>) -> Observation {
    match answer {
        Ok(Answer { status, headers, body }) => Observation::HttpResponse { status, headers, body },
        Err(o) => o,
    }
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
