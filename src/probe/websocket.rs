//! Stage `upgrade` (wss): `GET /mqtt` with `Sec-WebSocket-Protocol: mqtt`, written by hand so the Host
//! header can be varied or left out; the answer is parsed with httparse. Then MQTT in binary frames.

use super::classify::Observation;
use super::mqtt::MAX_REPLY;
use super::tls::Stream;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

const MAX_HEAD: usize = 16 * 1024;

/// The documented `Sec-WebSocket-Protocol`.
pub(crate) const PROTOCOL: &str = "mqtt";

/// The `User-Agent` of the browser upgrade: Chromium's form on Linux.
pub(crate) const BROWSER_USER_AGENT: &str =
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";

/// The upgrade request's headers, in order (credentials last); `host: None` sends no Host header.
/// With `origin` (`--client-type browser`) they are what headless Chromium 156 sent the emulator for
/// `new WebSocket(url, [protocol])` (recorded by tests/it/browser.rs), in its order, without its
/// `Sec-WebSocket-Extensions: permessage-deflate` offer: a server that accepted it would compress
/// the frames this probe reads.
pub(crate) fn headers(
    host: Option<&str>,
    key: &str,
    protocol: &str,
    extra: &[(String, String)],
    origin: Option<&str>,
) -> Vec<(String, String)> {
    let mut h: Vec<(String, String)> = host.map(|h| ("Host".to_owned(), h.to_owned())).into_iter().collect();
    if let Some(origin) = origin {
        for (n, v) in [
            ("Connection", "Upgrade"),
            ("Pragma", "no-cache"),
            ("Cache-Control", "no-cache"),
            ("User-Agent", BROWSER_USER_AGENT),
            ("Upgrade", "websocket"),
            ("Origin", origin),
            ("Sec-WebSocket-Version", "13"),
            ("Accept-Encoding", "gzip, deflate, br, zstd"),
            ("Accept-Language", "en-US,en;q=0.9"),
            ("Sec-WebSocket-Key", key),
            ("Sec-WebSocket-Protocol", protocol),
        ] {
            h.push((n.to_owned(), v.to_owned()));
        }
        h.extend(extra.iter().cloned());
        return h;
    }
    for (n, v) in [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Protocol", protocol),
    ] {
        h.push((n.to_owned(), v.to_owned()));
    }
    h.extend(extra.iter().cloned());
    h
}

/// The upgrade request as bytes on the wire.
pub(crate) fn request(
    target: &str,
    host: Option<&str>,
    key: &str,
    protocol: &str,
    extra: &[(String, String)],
    origin: Option<&str>,
) -> String {
    let mut r = format!("GET {target} HTTP/1.1\r\n");
    for (n, v) in headers(host, key, protocol, extra, origin) {
        r += &format!("{n}: {v}\r\n");
    }
    r + "\r\n"
}

/// Sends the upgrade and checks the 101 (accept key, `mqtt` echoed).
pub(crate) async fn upgrade(
    mut tls: Stream,
    target: &str,
    host: Option<&str>,
    protocol: &str,
    headers: &[(String, String)],
    origin: Option<&str>,
    timeout: Duration,
) -> Result<WebSocketStream<Stream>, Observation> {
    let started = Instant::now();
    let elapsed = || started.elapsed().as_millis() as u64;
    let key = generate_key();
    let req = request(target, host, &key, protocol, headers, origin);
    let deadline = tokio::time::Instant::now() + timeout;
    let write = async {
        tls.write_all(req.as_bytes()).await?;
        tls.flush().await
    };
    match tokio::time::timeout_at(deadline, write).await {
        Err(_) => return Err(Observation::UpgradeTimeout { elapsed_ms: elapsed() }),
        Ok(Err(_)) => return Err(Observation::UpgradeClosed { elapsed_ms: elapsed(), bytes_seen: 0 }),
        Ok(Ok(())) => {}
    }
    let mut data = Vec::new();
    let mut chunk = [0u8; 4096];
    let (status, resp_headers, head_len) = loop {
        match tokio::time::timeout_at(deadline, tls.read(&mut chunk)).await {
            Err(_) => return Err(Observation::UpgradeTimeout { elapsed_ms: elapsed() }),
            Ok(Ok(0) | Err(_)) => {
                return Err(Observation::UpgradeClosed { elapsed_ms: elapsed(), bytes_seen: data.len() as u64 });
            }
            Ok(Ok(n)) => data.extend_from_slice(&chunk[..n]),
        }
        match parse_response_head(&data) {
            Ok(Some(head)) => break head,
            Ok(None) => {}
            Err(problem) => return Err(invalid(problem)),
        }
    };
    let header =
        |n: &str| resp_headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(n)).map(|(_, v)| v.trim().to_owned());
    if status != 101 {
        let body = read_body(&mut tls, data[head_len..].to_vec(), header("content-length"), deadline).await;
        return Err(Observation::UpgradeResponse { status, headers: resp_headers, body });
    }
    if header("sec-websocket-accept").as_deref() != Some(derive_accept_key(key.as_bytes()).as_str()) {
        return Err(invalid("the 101 carries a wrong or missing Sec-WebSocket-Accept".into()));
    }
    if !header("sec-websocket-protocol").is_some_and(|p| p.eq_ignore_ascii_case(protocol)) {
        return Err(invalid(format!("the 101 does not echo Sec-WebSocket-Protocol: {protocol}")));
    }
    Ok(WebSocketStream::from_partially_read(tls, data[head_len..].to_vec(), Role::Client, Some(config())).await)
}

/// A response head: status, headers and the head's length.
pub(crate) type ResponseHead = (u16, Vec<(String, String)>, usize);

#[doc(hidden)]
/// Parses a response head from the start of `data`: `Ok(None)` while incomplete and under the limit.
pub fn parse_response_head(data: &[u8]) -> Result<Option<ResponseHead>, String> {
    let mut hs = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut hs);
    match resp.parse(data) {
        Ok(httparse::Status::Complete(len)) => {
            let headers: Vec<(String, String)> = resp
                .headers
                .iter()
                .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
                .collect();
            Ok(Some((resp.code.unwrap_or(0), headers, len)))
        }
        Ok(httparse::Status::Partial) if data.len() < MAX_HEAD => Ok(None),
        Ok(httparse::Status::Partial) => Err(format!("response head over {MAX_HEAD} bytes")),
        Err(e) => Err(format!("not an HTTP response ({e}): {}", super::outcome::show_bytes(data))),
    }
}

fn invalid(problem: String) -> Observation {
    Observation::UpgradeInvalid { problem }
}

/// Reads a response body up to its Content-Length (at most 64 KiB), stopping at EOF or the deadline.
pub(crate) async fn read_body<S: tokio::io::AsyncRead + Unpin>(
    s: &mut S,
    mut body: Vec<u8>,
    len: Option<String>,
    deadline: tokio::time::Instant,
) -> Vec<u8> {
    let want = len.and_then(|l| l.parse::<usize>().ok()).unwrap_or(MAX_REPLY).min(MAX_REPLY);
    let mut chunk = [0u8; 4096];
    while body.len() < want {
        match tokio::time::timeout_at(deadline, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => body.extend_from_slice(&chunk[..n]),
            _ => break,
        }
    }
    body.truncate(want);
    body
}

#[doc(hidden)]
/// The client configuration of the MQTT WebSocket: messages bounded by the largest reply, and a small
/// bounded write buffer (pongs to a peer's pings queue there).
pub fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_REPLY))
        .max_frame_size(Some(MAX_REPLY))
        .write_buffer_size(0)
        .max_write_buffer_size(64 * 1024)
        // tungstenite reserves 128 KiB per connection by default; replies are small.
        .read_buffer_size(4096)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::plan::MqttVersion;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// A peer that is always ready: it sends `frame` forever and takes every write at once.
    struct Flood(&'static [u8], usize);

    impl tokio::io::AsyncRead for Flood {
        fn poll_read(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> Poll<std::io::Result<()>> {
            while buf.remaining() > 0 {
                let b = self.0[self.1 % self.0.len()];
                buf.put_slice(&[b]);
                self.1 += 1;
            }
            Poll::Ready(Ok(()))
        }
    }

    impl tokio::io::AsyncWrite for Flood {
        fn poll_write(self: Pin<&mut Self>, _: &mut Context<'_>, b: &[u8]) -> Poll<std::io::Result<usize>> {
            Poll::Ready(Ok(b.len()))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    /// Case 3 of the hostile-input issue: frames that are always ready never let `timeout_at` fire.
    /// The exchange runs on its own thread; a hang fails the test after 20 s instead of blocking it.
    #[test]
    fn a_flood_of_ready_frames_cannot_extend_the_deadline() {
        for frame in [&[0x89u8, 0x00][..], &[0x82u8, 0x00][..], &[0x8au8, 0x00][..]] {
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
                let obs = rt.block_on(async {
                    let ws = WebSocketStream::from_raw_socket(Flood(frame, 0), Role::Client, Some(config())).await;
                    let mut ch = crate::wire::mqtt::Frames::new(ws, true);
                    super::super::mqtt::exchange(&mut ch, MqttVersion::V311, &[0x10, 0x00], Duration::from_millis(300))
                        .await
                });
                let _ = tx.send(obs);
            });
            let obs = rx.recv_timeout(Duration::from_secs(20)).expect("the exchange ended at its deadline");
            assert!(matches!(obs, Observation::MqttTimeout { .. }), "{frame:02x?}: {obs:?}");
        }
    }
}
