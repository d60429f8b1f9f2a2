//! The HTTP path (TLS without ALPN `mqtt`): `GET /mqtt` upgrades to MQTT over WebSocket, `POST
//! /topics/<topic>` publishes, anything else gets an AWS-shaped JSON error.

use super::channel::{Channel, Tls};
use super::ctx::Ctx;
use super::gate;
use super::record::{Answered, ConnectionRecord, Reason};
use super::settings::{Cors, NonHttp, WssReject};
use crate::auth::credentials::{Sources, parse_query};
use crate::auth::event::{Observed, Transport, new_uuid};
use percent_encoding::percent_decode_str;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::time::{Instant, timeout_at};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

/// Largest request head read.
const MAX_HEAD: usize = 16 * 1024;
const MAX_HEADERS: usize = 64;

#[doc(hidden)]
/// A parsed request head and whatever followed it in the same reads.
#[derive(Debug)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub query: Option<String>,
    pub headers: Vec<(String, String)>,
    pub rest: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn has_token(&self, name: &str, token: &str) -> bool {
        self.header(name).is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
    }
}

enum HeadError {
    Timeout,
    Closed,
    NotHttp(String),
}

async fn read_head(tls: &mut Tls, deadline: Instant) -> Result<Request, HeadError> {
    // Read into the heap buffer, not a stack array that every connection's task would carry.
    let mut data = Vec::with_capacity(1024);
    loop {
        data.reserve(1024);
        match timeout_at(deadline, tls.read_buf(&mut data)).await {
            Err(_) => return Err(HeadError::Timeout),
            Ok(Ok(0) | Err(_)) => return Err(HeadError::Closed),
            Ok(Ok(_)) => {}
        };
        match parse_head(&data) {
            Ok(Some(req)) => return Ok(req),
            Ok(None) => {}
            Err(e) => return Err(HeadError::NotHttp(e)),
        }
    }
}

#[doc(hidden)]
/// Parses a request head from the start of `data`: `Ok(None)` while it is incomplete and under the
/// size limit; an error names what is wrong (with the first bytes).
pub fn parse_head(data: &[u8]) -> Result<Option<Request>, String> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(data) {
        Ok(httparse::Status::Complete(len)) => {
            let target = req.path.unwrap_or("/");
            let (path, query) = match target.split_once('?') {
                Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
                None => (target.to_owned(), None),
            };
            Ok(Some(Request {
                method: req.method.unwrap_or_default().to_owned(),
                path,
                query,
                headers: req
                    .headers
                    .iter()
                    .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
                    .collect(),
                rest: data[len..].to_vec(),
            }))
        }
        Ok(httparse::Status::Partial) if data.len() <= MAX_HEAD => Ok(None),
        Ok(httparse::Status::Partial) => Err(format!("request head over {MAX_HEAD} bytes")),
        Err(e) => Err(format!("{e}; first bytes {}", crate::wire::hex_prefix(data))),
    }
}

/// An AWS-shaped JSON answer.
pub(crate) struct Answer {
    pub status: u16,
    pub error_type: Option<&'static str>,
    pub message: String,
    /// CORS headers (`cors = "allow"`), written as they are.
    pub cors: Vec<(&'static str, String)>,
}

impl Answer {
    fn error(status: u16, error_type: &'static str, message: impl Into<String>) -> Self {
        Self { status, error_type: Some(error_type), message: message.into(), cors: Vec::new() }
    }

    fn bytes(&self) -> Vec<u8> {
        let reason = match self.status {
            200 => "OK",
            400 => "Bad Request",
            403 => "Forbidden",
            404 => "Not Found",
            413 => "Payload Too Large",
            _ => "Error",
        };
        let body = serde_json::json!({ "message": self.message, "traceId": new_uuid() }).to_string();
        let mut head = format!(
            "HTTP/1.1 {} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nx-amzn-RequestId: {}\r\nconnection: close\r\n",
            self.status,
            body.len(),
            new_uuid()
        );
        if let Some(t) = self.error_type {
            head.push_str(&format!("x-amzn-ErrorType: {t}:\r\n"));
        }
        for (name, value) in &self.cors {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        [head.into_bytes(), body.into_bytes()].concat()
    }
}

async fn answer(mut tls: Tls, a: Answer, rec: &mut ConnectionRecord) {
    rec.answer = Some(Answered::Http(a.status));
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        let _ = tls.write_all(&a.bytes()).await;
        let _ = tls.shutdown().await;
    })
    .await;
}

/// Serves one HTTP request on the TLS stream.
pub(crate) async fn serve(mut tls: Tls, ctx: &Ctx, sni: Option<String>, rec: &mut ConnectionRecord) {
    let cfg = &ctx.config;
    let deadline = Instant::now() + cfg.limits.request_timeout;
    let req = match read_head(&mut tls, deadline).await {
        Ok(r) => r,
        Err(HeadError::Timeout) => return rec.set(Reason::RequestTimeout, "no complete request head in time"),
        Err(HeadError::Closed) => return rec.set(Reason::ClosedByClient, "closed before a complete request"),
        Err(HeadError::NotHttp(detail)) => {
            rec.set(Reason::MalformedRequest, format!("not HTTP: {detail}"));
            return match cfg.reject.non_http {
                NonHttp::BadRequest => {
                    answer(tls, Answer::error(400, "InvalidRequestException", "Bad Request"), rec).await
                }
                NonHttp::Close => {
                    rec.answer = Some(Answered::Close);
                    let _ = tls.shutdown().await;
                }
            };
        }
    };
    let scrub_sources = Sources {
        headers: req.headers.clone(),
        query: req.query.as_deref().map(|q| parse_query(q, cfg.plus_as_space)).unwrap_or_default(),
        username: Vec::new(),
    };
    let seen = Observed { server_name: sni, headers: req.headers.clone(), query: req.query.clone(), connect: None };
    let scrub = gate::scrubber(cfg, &seen, &scrub_sources);
    rec.secrets.merge(&scrub);
    let target = match &req.query {
        Some(q) => format!("{}?{q}", req.path),
        None => req.path.clone(),
    };
    rec.request = Some(format!("{} {}", req.method, gate::redact_query(&target, &scrub)));
    rec.host = req.header("host").map(str::to_owned);
    rec.origin = req.header("origin").map(str::to_owned);
    rec.headers = req.headers.iter().map(|(n, v)| (n.clone(), gate::redact_header(n, v, &scrub))).collect();
    if rec.host.is_none() {
        // HTTP/1.1 requires Host (RFC 9112 §3.2): servers answer 400.
        rec.set(Reason::MalformedRequest, "no Host header");
        return answer(tls, Answer::error(400, "InvalidRequestException", "Missing Host header"), rec).await;
    }
    if req.path == "/mqtt" && req.method == "GET" {
        rec.transport = Some(Transport::Wss);
        return upgrade(tls, ctx, req, seen, scrub_sources, rec).await;
    }
    if let Some(topic) = req.path.strip_prefix("/topics/") {
        rec.transport = Some(Transport::Https);
        if req.method == "OPTIONS" && req.header("access-control-request-method").is_some() {
            return preflight(tls, cfg, &req, rec).await;
        }
        if req.method != "POST" {
            rec.set(Reason::MalformedRequest, format!("{} on /topics/: only POST publishes", req.method));
            return answer(
                tls,
                Answer::error(400, "InvalidRequestException", "Only POST is supported on /topics"),
                rec,
            )
            .await;
        }
        let topic = percent_decode_str(topic).decode_utf8_lossy().into_owned();
        return publish(tls, ctx, req, topic, seen, scrub_sources, &scrub, rec).await;
    }
    rec.set(Reason::NotFound, format!("{} {}", req.method, req.path));
    answer(tls, Answer::error(404, "ResourceNotFoundException", "Not Found"), rec).await;
}

#[doc(hidden)]
/// The body length: no header is an empty body; a value that is not a plain decimal number, or two
/// headers that disagree, make the request malformed (RFC 9112 §6.3: never guess at a length).
pub fn content_length(req: &Request) -> Result<usize, String> {
    let values: Vec<&str> =
        req.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("content-length")).map(|(_, v)| v.trim()).collect();
    let Some(first) = values.first() else { return Ok(0) };
    if values.iter().any(|v| v != first) {
        return Err(format!("{} Content-Length headers that disagree", values.len()));
    }
    if first.is_empty() || !first.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("Content-Length `{}` is not a number of bytes", crate::secret::escape(first)));
    }
    first.parse().map_err(|_| format!("Content-Length `{first}` is too large"))
}

#[allow(clippy::too_many_arguments)] // each argument is a distinct part of the request's context
async fn publish(
    mut tls: Tls,
    ctx: &Ctx,
    req: Request,
    topic: String,
    seen: Observed,
    sources: Sources,
    scrub: &crate::secret::Scrubber,
    rec: &mut ConnectionRecord,
) {
    let cfg = &ctx.config;
    let qos = sources.query.iter().find(|p| p.name == "qos").map(|p| p.value.clone());
    if !matches!(qos.as_deref(), None | Some("0" | "1")) {
        rec.set(Reason::MalformedRequest, "qos must be 0 or 1");
        return answer(tls, Answer::error(400, "InvalidRequestException", "Invalid qos: must be 0 or 1"), rec).await;
    }
    // Read (and bound) the body so the client is not cut off mid-send.
    let len = match content_length(&req) {
        Ok(len) => len,
        Err(problem) => {
            rec.set(Reason::MalformedRequest, problem);
            return answer(tls, Answer::error(400, "InvalidRequestException", "Invalid Content-Length"), rec).await;
        }
    };
    if len > cfg.limits.max_packet {
        rec.set(Reason::PacketTooLarge, format!("body of {len} bytes"));
        return answer(tls, Answer::error(413, "RequestEntityTooLargeException", "Payload too large"), rec).await;
    }
    let mut body = req.rest.clone();
    let deadline = Instant::now() + cfg.limits.request_timeout;
    while body.len() < len {
        let mut chunk = vec![0u8; (len - body.len()).min(16 * 1024)];
        match timeout_at(deadline, tls.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => body.extend_from_slice(&chunk[..n]),
            Ok(_) => return rec.set(Reason::ClosedByClient, "closed while sending the body"),
            Err(_) => return rec.set(Reason::RequestTimeout, "body not complete in time"),
        }
    }
    let result = gate::authorize(ctx, Transport::Https, &seen, &sources, scrub, rec)
        .await
        .and_then(|granted| granted.permit("iot:Publish", &cfg.arns.topic(&topic), "", Reason::PublishNotAllowed));
    match result {
        Ok(()) => {
            rec.set(Reason::Accepted, format!("published {} bytes to {topic}", body.len()));
            let cors = allowed_origin(cfg, &req);
            answer(tls, Answer { status: 200, error_type: None, message: "OK".into(), cors }, rec).await;
        }
        Err(r) => {
            rec.set(r.reason, r.detail);
            // With `cors = "allow"` a page can read the refusal (403), not only a network error.
            let cors = allowed_origin(cfg, &req);
            answer(tls, Answer { cors, ..Answer::error(403, "ForbiddenException", "Forbidden") }, rec).await;
        }
    }
}

async fn upgrade(mut tls: Tls, ctx: &Ctx, req: Request, seen: Observed, sources: Sources, rec: &mut ConnectionRecord) {
    let cfg = &ctx.config;
    let key = req.header("sec-websocket-key").map(str::to_owned);
    let valid = req.has_token("upgrade", "websocket")
        && req.has_token("connection", "upgrade")
        && req.header("sec-websocket-version").map(str::trim) == Some("13");
    let Some(key) = key.filter(|_| valid) else {
        rec.set(Reason::MalformedRequest, "GET /mqtt without a valid WebSocket upgrade");
        return answer(tls, Answer::error(400, "InvalidRequestException", "Bad Request"), rec).await;
    };
    // `[websocket] origins`: a browser's upgrade from another origin is refused before anything
    // else (what a gateway that filters origins does); a client without Origin is no browser.
    let origins = &cfg.websocket.origins;
    if let Some(origin) = req.header("origin").filter(|o| !origins.is_empty() && !origins.iter().any(|a| a == o)) {
        rec.set(
            Reason::OriginRefused,
            format!("Origin {} is not in [websocket] origins", crate::secret::escape(origin)),
        );
        return answer(tls, Answer::error(403, "ForbiddenException", "Forbidden"), rec).await;
    }
    // With the 403 setting, credentials in the upgrade request are judged before the upgrade.
    // The grant carries over to the CONNECT, so the function runs once per connection.
    let mut granted = None;
    if cfg.reject.wss == WssReject::Forbidden && carries_credentials(cfg, &sources) {
        let scrub = gate::scrubber(cfg, &seen, &sources);
        rec.secrets.merge(&scrub);
        match gate::authorize(ctx, Transport::Wss, &seen, &sources, &scrub, rec).await {
            Ok(g) => granted = Some(g),
            Err(r) => {
                rec.set(r.reason, r.detail);
                return answer(tls, Answer::error(403, "ForbiddenException", "Forbidden"), rec).await;
            }
        }
    }
    let mut head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: Upgrade\r\nsec-websocket-accept: {}\r\n",
        derive_accept_key(key.trim().as_bytes())
    );
    // Both subprotocols MQTT clients offer: `mqtt` (MQTT 3.1.1 and 5, mqtt.js, the SDKs) and
    // `mqttv3.1` (what the AWS IoT Device SDK v2's MQTT 3.1.1 browser client offers); `mqtt` wins
    // when both are offered.
    // (`[websocket] subprotocols` narrows the list: an offer of none of them gets no answer header.)
    let subprotocol = cfg.websocket.subprotocols.iter().find(|p| req.has_token("sec-websocket-protocol", p));
    if let Some(p) = subprotocol {
        head.push_str(&format!("sec-websocket-protocol: {p}\r\n"));
    }
    rec.subprotocol = subprotocol.cloned();
    head.push_str("\r\n");
    let written = tokio::time::timeout(cfg.limits.request_timeout, async {
        tls.write_all(head.as_bytes()).await?;
        tls.flush().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return rec.set(Reason::ClosedByClient, "closed (or stopped reading) during the upgrade");
    }
    // Pongs to a client's pings queue in the write buffer: bounded, like everything a peer can cause.
    let ws_config = WebSocketConfig::default()
        .max_message_size(Some(cfg.limits.max_packet))
        .max_frame_size(Some(cfg.limits.max_packet))
        .write_buffer_size(0)
        .max_write_buffer_size(256 * 1024)
        // tungstenite reserves this much per connection up front (128 KiB by default); MQTT frames
        // of a held session are small, and larger ones still arrive (the buffer grows to the limits).
        .read_buffer_size(4096);
    let ws = WebSocketStream::from_partially_read(tls, req.rest, Role::Server, Some(ws_config)).await;
    super::mqtt::serve(Channel::ws(ws), ctx, seen, sources, granted, rec).await;
}

/// A CORS preflight for an HTTPS publish: answered as the `cors` setting says; no authorizer runs.
async fn preflight(tls: Tls, cfg: &super::config::EmulatorConfig, req: &Request, rec: &mut ConnectionRecord) {
    let asked = req.header("access-control-request-method").unwrap_or_default();
    match cfg.reject.cors {
        Cors::None => {
            rec.set(Reason::Preflight, format!("CORS preflight for {asked} refused (cors = none)"));
            let a = Answer::error(400, "InvalidRequestException", "Only POST is supported on /topics");
            answer(tls, a, rec).await;
        }
        Cors::Allow => {
            rec.set(Reason::Preflight, format!("CORS preflight for {asked} allowed (cors = allow)"));
            let mut cors = allowed_origin(cfg, req);
            cors.push(("access-control-allow-methods", "POST, OPTIONS".into()));
            if let Some(h) = req.header("access-control-request-headers") {
                cors.push(("access-control-allow-headers", header_value(h)));
            }
            cors.push(("access-control-max-age", "600".into()));
            answer(tls, Answer { status: 200, error_type: None, message: "OK".into(), cors }, rec).await;
        }
    }
}

/// `Access-Control-Allow-Origin` for the request's origin, with `cors = "allow"`.
fn allowed_origin(cfg: &super::config::EmulatorConfig, req: &Request) -> Vec<(&'static str, String)> {
    match (cfg.reject.cors, req.header("origin")) {
        (Cors::Allow, Some(origin)) => {
            vec![("access-control-allow-origin", header_value(origin)), ("vary", "Origin".into())]
        }
        _ => Vec::new(),
    }
}

/// A header value a peer sent, safe to write back: visible ASCII and spaces only, at most 512 bytes.
fn header_value(v: &str) -> String {
    v.chars().filter(|c| c.is_ascii_graphic() || *c == ' ').take(512).collect()
}

fn carries_credentials(cfg: &super::config::EmulatorConfig, sources: &Sources) -> bool {
    let mut names: Vec<&str> = cfg.authorizers.iter().map(|a| a.token_key_name.as_str()).collect();
    names.extend([crate::auth::credentials::AUTHORIZER_NAME, crate::auth::credentials::SIGNATURE]);
    names.iter().any(|n| sources.find(n).is_some())
}
