//! A local AWS IoT Core custom-auth front door (`authprobe emulate`).
//!
//! One TLS port behaves as an IoT data endpoint: the ClientHello is read first and routed on SNI and
//! ALPN (`tls`); ALPN `mqtt` goes to MQTT (`mqtt`), no ALPN to HTTP (`http`: WebSocket upgrade or
//! HTTPS publish). Credentials go through the same decision as IoT Core's (`gate`): authorizer,
//! signature, function (`function`), response, policy. Every connection leaves a [`record`].
//!
//! The files import one way, bottom first: the configuration (`config`, [`settings`], [`certs`],
//! [`record`]) is plain data; `channel`, `clock`, `process` and `admission` are the I/O, deadlines,
//! processes and budgets; `runtime_api` hosts the Lambda handlers and `function` runs any kind of
//! function; `ctx` is what a running emulator shares; `gate` decides; `session` runs an accepted MQTT
//! connection; `mqtt` and `http` serve the paths; this file holds the accept loop. CONNECT parsing and
//! the typed CONNACK codes are `crate::wire::mqtt`'s.

mod admission;
pub mod certs;
mod channel;
mod clock;
pub mod config;
mod ctx;
mod function;
mod gate;
pub(crate) mod http;
mod local_peer;
mod mqtt;
mod process;
pub mod record;
mod runtime_api;
mod session;
pub mod settings;
mod tls;
mod tls_stream;

pub use config::{Answer, Authorizer, EmulatorConfig, Function, Handler, Rule};
use ctx::Ctx;

/// What the fuzz targets drive (see `crate::fuzzing`).
pub(crate) mod fuzzing {
    pub use super::http::{content_length, parse_head};
}
pub use process::kill_all_groups;
pub use record::{ConnectionRecord, Reason};

use crate::auth::event::new_uuid;
use channel::Channel;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::timeout;

/// Why the emulator could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration is inconsistent.
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    /// The certificate and key cannot serve TLS.
    #[error("TLS setup failed: {0}")]
    Tls(#[from] rustls::Error),
}

/// A listening socket for the emulator with a backlog of 1024 (the kernel caps it at somaxconn):
/// a burst of devices reconnecting at once queues instead of being refused. `TcpListener::bind`
/// would take 128.
pub fn listen(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Whether `config`'s certificate chain and key can serve TLS (a key that does not belong to the
/// certificate fails here), without opening a socket.
pub fn check_tls(config: &EmulatorConfig) -> Result<(), rustls::Error> {
    tls::ServerConfigs::build(config).map(drop)
}

/// Serves `listener` until `shutdown` completes; connections still open then are dropped.
pub async fn run(
    listener: TcpListener,
    config: EmulatorConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<(), StartError> {
    config.validate()?;
    let servers = tls::ServerConfigs::build(&config)?;
    // Handlers behind the Runtime API start warm, before the first connection.
    let functions = function::Functions::new(&config);
    functions.warm().await;
    let admission = admission::Admission::new(config.limits.max_connections, config.limits.pre_auth_bytes);
    let ctx = Arc::new(Ctx::new(config, servers, functions));
    let mut tasks = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok((tcp, peer)) => match admission.admit() {
                    Some(pass) => {
                        let ctx = ctx.clone();
                        tasks.spawn(async move { serve(tcp, peer, &ctx, pass).await });
                    }
                    None => {
                        let mut rec = ConnectionRecord::new(new_uuid(), peer);
                        let detail = format!("over {} connections, all past authentication", admission.limit());
                        rec.set(Reason::TooManyConnections, detail);
                        emit(&ctx, &rec);
                    }
                },
                Err(e) => {
                    // Out of file descriptors and similar: back off briefly instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            },
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    tasks.shutdown().await;
    ctx.functions.shutdown();
    Ok(())
}

fn emit(ctx: &Ctx, rec: &ConnectionRecord) {
    // Nobody reads it (`-q` without `--log-json`): no scrubbed copy is made.
    if ctx.config.on_record.is_none() && !tracing::enabled!(target: "authprobe::emulator", tracing::Level::INFO) {
        return;
    }
    let rec = rec.scrubbed();
    tracing::info!(target: "authprobe::emulator", "{}", rec.summary());
    if let Some(sink) = &ctx.config.on_record {
        sink(&rec);
    }
}

async fn serve(tcp: TcpStream, peer: SocketAddr, ctx: &Ctx, pass: admission::Pass) {
    let started = Instant::now();
    let mut rec = ConnectionRecord::new(new_uuid(), peer);
    let entry = pass.entry().clone();
    rec.admission = Some(entry.clone());
    // Shed (at the connection limit or over the byte budget) while before authentication: the
    // connection's work stops wherever it is.
    let shed = tokio::select! {
        () = handle(tcp, ctx, &mut rec) => false,
        () = entry.shed() => true,
    };
    if let Some(why) = entry.shed_for().filter(|_| shed || !rec.accepted) {
        rec.set(Reason::TooManyConnections, why.to_string());
    }
    rec.admission = None;
    drop(pass);
    rec.durations.total_ms = started.elapsed().as_millis() as u64;
    emit(ctx, &rec);
}

async fn handle(mut tcp: TcpStream, ctx: &Ctx, rec: &mut ConnectionRecord) {
    // Small request/response exchanges: without this, Nagle and delayed ACKs add ~40 ms.
    let _ = tcp.set_nodelay(true);
    let limits = ctx.config.limits;
    let started = Instant::now();
    // Each stage's future is boxed: a spawned task is as large as its largest state for its whole
    // life, so a held session would otherwise carry the handshake's buffers (see the benchmark
    // `bench_authorizers`, memory per held connection).
    let (hello, prefix) = match timeout(limits.handshake_timeout, Box::pin(tls::read_client_hello(&mut tcp))).await {
        Err(_) => {
            return rec.set(Reason::HandshakeTimeout, format!("no ClientHello within {:?}", limits.handshake_timeout));
        }
        Ok(Err(tls::HelloError::NotTls(d))) => return rec.set(Reason::NotTls, d),
        Ok(Err(tls::HelloError::ClosedByClient)) => {
            return rec.set(Reason::ClosedByClient, "closed before a ClientHello");
        }
        Ok(Err(tls::HelloError::Io(e))) => return rec.set(Reason::ClosedByClient, e.to_string()),
        Ok(Ok(h)) => h,
    };
    let mut hello = hello;
    rec.sni = hello.sni.clone();
    rec.alpn_offered = hello.alpn.iter().map(|p| String::from_utf8_lossy(p).into_owned()).collect();
    if ctx.config.strip_alpn {
        // Simulates a middlebox that removes ALPN: the server sees none and picks a config without it.
        hello.alpn.clear();
    }
    let route = tls::route(&hello, &ctx.config);
    let server_config = match route {
        tls::Route::Mqtt => ctx.servers.mqtt.clone(),
        tls::Route::Http if ctx.config.strip_alpn => ctx.servers.no_alpn.clone(),
        tls::Route::Http => ctx.servers.http.clone(),
        tls::Route::X509 | tls::Route::Refuse(settings::TlsReject::RequireClientCert, _) => ctx.servers.x509.clone(),
        tls::Route::Refuse(settings::TlsReject::HandshakeThenClose, _) if hello.alpn.iter().any(|p| p == b"mqtt") => {
            ctx.servers.mqtt.clone()
        }
        tls::Route::Refuse(settings::TlsReject::HandshakeThenClose, _) => ctx.servers.http.clone(),
        tls::Route::Refuse(how, reason) => {
            rec.set(reason, format!("SNI {:?} is not an endpoint of this emulator", hello.sni));
            rec.answer = Some(record::Answered::Tls(how));
            return tls::refuse(tcp, how).await;
        }
    };
    let mut io = channel::Rewind::new(prefix, tcp);
    if let Some(entry) = rec.admission.clone() {
        io = io.metered(entry);
    }
    let accept = Box::pin(tls_stream::accept(server_config, io));
    // Boxed at once: a TLS stream kept in this future's frame would stay for the session's life.
    let accepted = timeout(limits.handshake_timeout, accept).await.map(|r| r.map(Box::new));
    rec.durations.handshake_ms = Some(started.elapsed().as_millis() as u64);
    let stream = match (accepted, route) {
        (Ok(Ok(mut s)), tls::Route::Refuse(how @ settings::TlsReject::HandshakeThenClose, reason)) => {
            rec.set(
                reason,
                format!("SNI {:?} is not an endpoint of this emulator; closed after the handshake", hello.sni),
            );
            rec.answer = Some(record::Answered::Tls(how));
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut s).await;
            return;
        }
        (_, tls::Route::X509 | tls::Route::Refuse(..)) => {
            let reason = if route == tls::Route::X509 { Reason::X509Path } else { sni_reason(route) };
            rec.answer = Some(record::Answered::Tls(settings::TlsReject::RequireClientCert));
            return rec.set(reason, "the X.509 path needs a client certificate; no authorizer runs");
        }
        (Err(_), _) => return rec.set(Reason::HandshakeTimeout, "TLS handshake did not finish in time"),
        (Ok(Err(e)), _) => return rec.set(Reason::HandshakeFailed, e.to_string()),
        (Ok(Ok(s)), _) => s,
    };
    rec.alpn = stream.alpn_protocol().map(|p| String::from_utf8_lossy(p).into_owned());
    match route {
        tls::Route::Mqtt => {
            rec.transport = Some(crate::auth::event::Transport::Mqtt);
            let seen = crate::auth::event::Observed { server_name: hello.sni, ..Default::default() };
            Box::pin(mqtt::serve(Channel::tls(stream), ctx, seen, Default::default(), None, rec)).await;
        }
        _ => Box::pin(http::serve(*stream, ctx, hello.sni, rec)).await,
    }
}

fn sni_reason(route: tls::Route) -> Reason {
    match route {
        tls::Route::Refuse(_, r) => r,
        _ => Reason::X509Path,
    }
}
