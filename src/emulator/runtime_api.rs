//! The user's unmodified authorizer Lambda behind the emulator: warm worker processes, each started
//! under an official runtime interface client (Python `awslambdaric`, Node `aws-lambda-ric`, or any
//! binary built with a Lambda runtime) with `AWS_LAMBDA_RUNTIME_API` pointing at a Runtime API this
//! module serves on loopback, as the Lambda service does:
//! <https://docs.aws.amazon.com/lambda/latest/dg/runtimes-api.html>.
//!
//! - `GET /2018-06-01/runtime/invocation/next` hands a worker the next queued event, with the
//!   `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms` and `-Invoked-Function-Arn` headers;
//! - `POST …/invocation/{id}/response` and `…/invocation/{id}/error` answer it;
//! - `POST …/runtime/init/error` reports a handler that cannot start.
//!
//! Each worker has its own port, so a worker that overruns its deadline is known, killed (its whole
//! process group) and replaced; the next event goes to a warm worker.

use super::process::{FunctionError, Group, die_with_parent, printable};
use crate::auth::event::Event;
use crate::secret::Scrubber;
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::net::TcpListener;
use tokio::sync::{Mutex, Notify, OnceCell, mpsc, oneshot};

/// The largest answer read from a handler (Lambda's synchronous response limit is 6 MB; an
/// authorizer's is far smaller).
const MAX_BODY: usize = 1024 * 1024;
/// Events waiting for a worker; past this the invoke is throttled, as Lambda's concurrency limit.
const QUEUE: usize = 1024;
const PREFIX: &str = "/2018-06-01/runtime";

/// A handler command and how many warm workers run it.
#[derive(Debug)]
pub(crate) struct Host {
    command: String,
    workers: usize,
    /// `arn:aws:lambda:<region>:<account>:function:<name>`, sent as `Lambda-Runtime-Invoked-Function-Arn`.
    function_arn: std::sync::OnceLock<String>,
    running: OnceCell<Running>,
    stopping: std::sync::atomic::AtomicBool,
    stop: Notify,
}

#[derive(Debug)]
struct Running {
    queue: mpsc::Sender<Job>,
    /// The last `init/error` a worker reported, for invocations that time out meanwhile.
    init_error: Arc<std::sync::Mutex<Option<String>>>,
}

/// How many recent invocations' secrets the handlers' output is scrubbed against: a handler may
/// print a token late (a buffered stdout, an init error after a crash), so not only the current
/// invocation's. Bounded: a few kilobytes each.
const RECENT: usize = 64;

/// The secrets of the last [`RECENT`] invocations, across the host's workers and their restarts.
#[derive(Debug, Default)]
struct Recent(std::sync::Mutex<std::collections::VecDeque<Scrubber>>);

impl Recent {
    fn push(&self, secrets: Scrubber) {
        if let Ok(mut r) = self.0.lock() {
            if r.len() == RECENT {
                r.pop_front();
            }
            r.push_back(secrets);
        }
    }

    /// `text` (already escaped) scrubbed of every recent invocation's secrets.
    fn scrub(&self, text: String) -> String {
        let Ok(r) = self.0.lock() else { return String::new() };
        r.iter().fold(text, |t, s| s.scrub(&t))
    }
}

#[derive(Debug)]
struct Job {
    id: String,
    event: Vec<u8>,
    deadline: Instant,
    limit: Duration,
    deadline_ms: u128,
    reply: oneshot::Sender<Result<Value, FunctionError>>,
    /// The secrets of the connection, for the handler's output.
    secrets: Scrubber,
}

impl Host {
    pub(crate) fn new(command: &str, workers: usize) -> Self {
        Self {
            command: command.to_owned(),
            workers: workers.max(1),
            function_arn: std::sync::OnceLock::new(),
            running: OnceCell::new(),
            stopping: std::sync::atomic::AtomicBool::new(false),
            stop: Notify::new(),
        }
    }

    /// The function's ARN, from the emulator's region and account and the authorizer's name.
    pub(crate) fn set_arn(&self, arn: String) {
        let _ = self.function_arn.set(arn);
    }

    fn arn(&self) -> String {
        self.function_arn.get().cloned().unwrap_or_else(|| {
            crate::auth::policy::Arns::new("us-east-1", "123456789012").lambda_function("authorizer")
        })
    }

    /// Stops every worker (their process groups are killed).
    pub(crate) fn shutdown(&self) {
        self.stopping.store(true, std::sync::atomic::Ordering::SeqCst);
        self.stop.notify_waiters();
    }

    /// Starts the workers (once); the emulator calls it at start so that the first connection finds
    /// warm workers.
    pub(crate) async fn start(self: &Arc<Self>) {
        self.running
            .get_or_init(|| async {
                let (tx, rx) = mpsc::channel(QUEUE);
                let rx = Arc::new(Mutex::new(rx));
                let init_error = Arc::new(std::sync::Mutex::new(None));
                let recent = Arc::new(Recent::default());
                for n in 0..self.workers {
                    let (host, rx, init_error, recent) = (self.clone(), rx.clone(), init_error.clone(), recent.clone());
                    tokio::spawn(async move { host.worker(n, rx, init_error, recent).await });
                }
                Running { queue: tx, init_error }
            })
            .await;
    }

    /// Queues `event` for a worker and waits for its answer, within `limit`.
    pub(crate) async fn invoke(
        self: &Arc<Self>,
        event: &Event,
        secrets: &Scrubber,
        limit: Duration,
    ) -> Result<Value, FunctionError> {
        self.start().await;
        let running = self.running.get().expect("started");
        let (reply, answer) = oneshot::channel();
        let deadline_ms =
            SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_millis() + limit.as_millis();
        let job = Job {
            id: uuid(),
            event: serde_json::to_vec(event).unwrap_or_default(),
            deadline: Instant::now() + limit,
            limit,
            deadline_ms,
            reply,
            secrets: secrets.clone(),
        };
        // While the handler fails to start, an invocation fails at once with that error, as Lambda's.
        if let Some(e) = running.init_error.lock().ok().and_then(|e| e.clone()) {
            return Err(FunctionError::Handler { error_type: "Runtime.InitError".into(), message: e });
        }
        running.queue.try_send(job).map_err(|_| FunctionError::Handler {
            error_type: "TooManyRequestsException".into(),
            message: format!("{QUEUE} events already wait for a worker"),
        })?;
        match tokio::time::timeout(limit, answer).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(FunctionError::Handler {
                error_type: "Runtime.ExitError".into(),
                message: "the handler process exited during the invocation".into(),
            }),
            Err(_) => match running.init_error.lock().ok().and_then(|e| e.clone()) {
                Some(e) => Err(FunctionError::Handler { error_type: "Runtime.InitError".into(), message: e }),
                None => Err(FunctionError::Timeout(limit)),
            },
        }
    }

    /// One warm worker: starts the handler, serves its Runtime API, and replaces the process when it
    /// exits or overruns an invocation's deadline. Runs until the emulator's runtime stops.
    async fn worker(
        self: Arc<Self>,
        n: usize,
        queue: Arc<Mutex<mpsc::Receiver<Job>>>,
        init_error: Arc<std::sync::Mutex<Option<String>>>,
        recent: Arc<Recent>,
    ) {
        let mut backoff = Duration::from_millis(50);
        while !self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
            let started = Instant::now();
            if let Err(e) = self.generation(n, &queue, &init_error, &recent).await {
                tracing::warn!(worker = n, "authorizer handler: {e}");
            }
            // A handler that dies at once is restarted with a growing pause (at most 2 s), not in a
            // tight loop.
            backoff = if started.elapsed() > Duration::from_secs(5) {
                Duration::from_millis(50)
            } else {
                (backoff * 2).min(Duration::from_secs(2))
            };
            tokio::select! {
                () = tokio::time::sleep(backoff) => {}
                () = self.stop.notified() => {}
            }
        }
    }

    /// One handler process, from start to exit or replacement.
    async fn generation(
        &self,
        n: usize,
        queue: &Arc<Mutex<mpsc::Receiver<Job>>>,
        init_error: &Arc<std::sync::Mutex<Option<String>>>,
        recent: &Arc<Recent>,
    ) -> Result<(), String> {
        let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
        let api = listener.local_addr().map_err(|e| e.to_string())?;
        let arn = self.arn();
        let mut child = self.spawn(n, api, &arn)?;
        let _group = child.id().map(Group::new);
        let state =
            Arc::new(Worker { current: std::sync::Mutex::new(None), changed: Notify::new(), recent: recent.clone() });
        // The handler's own log lines (print, console.log, tracebacks) go to the emulator's log at
        // debug level (`-v`), with the secrets of the connections it served redacted.
        let mut output = tokio::task::JoinSet::new();
        for pipe in [
            child.stdout.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child.stderr.take().map(|p| Box::new(p) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
        ]
        .into_iter()
        .flatten()
        {
            let state = state.clone();
            output.spawn(async move { log_lines(n, pipe, &state).await });
        }
        let mut connections = tokio::task::JoinSet::new();
        // Why this generation ends, for the invocation it holds (if any).
        let mut ending: Option<FunctionError> = None;
        let result = loop {
            let deadline = state.current.lock().ok().and_then(|c| c.as_ref().map(|c| c.deadline));
            tokio::select! {
                status = child.wait() => {
                    let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                    ending = Some(FunctionError::Handler {
                        error_type: "Runtime.ExitError".into(),
                        message: format!("the handler process exited during the invocation ({status})"),
                    });
                    break Err(format!("worker {n} exited ({status})"));
                }
                accepted = listener.accept() => {
                    let Ok((tcp, peer)) = accepted else { continue };
                    let ctx = Ctx { state: state.clone(), queue: queue.clone(), init_error: init_error.clone(), arn: arn.clone() };
                    let leader = child.id();
                    connections.spawn(async move {
                        if from_handler(&tcp, peer, leader).await {
                            ctx.serve(tcp).await;
                        }
                    });
                }
                () = super::clock::until(deadline.map(Into::into)) => {
                    ending = state.current.lock().ok().and_then(|c| c.as_ref().map(|c| FunctionError::Timeout(c.limit)));
                    break Err(format!("worker {n} overran the time limit; replaced"));
                }
                () = state.changed.notified() => {}
                () = self.stop.notified() => break Ok(()),
            }
            if self.stopping.load(std::sync::atomic::Ordering::SeqCst) {
                break Ok(());
            }
        };
        // The old generation's connections (one may wait for the next event) go with it.
        connections.abort_all();
        output.abort_all();
        // The invocation in hand is answered with why, not left to a dropped channel (whose error
        // would race the invoker's own timeout).
        if let Some(current) = state.current.lock().ok().and_then(|mut c| c.take()) {
            let why = ending.unwrap_or_else(|| FunctionError::Handler {
                error_type: "Runtime.ExitError".into(),
                message: "the emulator stopped the handler".into(),
            });
            let _ = current.reply.send(Err(why));
        }
        result
    }

    /// Starts worker `n`'s handler process with the Lambda environment, pointed at the Runtime API on
    /// `api`.
    fn spawn(&self, n: usize, api: std::net::SocketAddr, arn: &str) -> Result<tokio::process::Child, String> {
        let name = arn.rsplit(':').next().unwrap_or("authorizer").to_owned();
        let mut command = tokio::process::Command::new("sh");
        die_with_parent(&mut command);
        command
            .arg("-c")
            .arg(&self.command)
            .env("AWS_LAMBDA_RUNTIME_API", api.to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", &name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}"))
            .env("AWS_LAMBDA_LOG_STREAM_NAME", format!("authprobe-emulator/worker-{n}"))
            .env("AWS_REGION", arn.split(':').nth(3).unwrap_or("us-east-1"))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            // Its own process group: a replaced worker's children die with it.
            .process_group(0)
            .spawn()
            .map_err(|e| format!("`{}` could not start: {e}", self.command))
    }
}

/// Whether `tcp` comes from the worker's handler process (`leader`, its process group or its
/// descendants): only they may take events (tokens in clear) and answer them. Others are logged and
/// dropped before a byte is read.
async fn from_handler(tcp: &tokio::net::TcpStream, peer: std::net::SocketAddr, leader: Option<u32>) -> bool {
    let (Ok(local), Some(leader)) = (tcp.local_addr(), leader) else { return false };
    let verdict = tokio::task::spawn_blocking(move || super::local_peer::is_in_group(local, peer, leader)).await;
    match verdict {
        Ok(Ok(true)) => true,
        Ok(Ok(false)) => {
            tracing::warn!(
                "Runtime API: refused a connection from {peer}: not a handler process this emulator started"
            );
            false
        }
        Ok(Err(e)) => {
            tracing::warn!("Runtime API: refused a connection from {peer}: its process could not be told ({e})");
            false
        }
        Err(_) => false,
    }
}

/// What one worker is doing: the invocation it holds, if any.
struct Worker {
    current: std::sync::Mutex<Option<Current>>,
    changed: Notify,
    /// The secrets of the host's recent invocations, to redact its output.
    recent: Arc<Recent>,
}

/// The longest handler log line kept; the rest of it is dropped.
const MAX_LINE: usize = 4096;

/// Logs what the handler prints, one line at a time, each at most `MAX_LINE` bytes, scrubbed.
async fn log_lines(n: usize, mut pipe: Box<dyn tokio::io::AsyncRead + Send + Unpin>, state: &Worker) {
    use tokio::io::AsyncReadExt as _;
    let mut line = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let Ok(read) = pipe.read(&mut chunk).await else { return };
        if read == 0 {
            return;
        }
        for &b in &chunk[..read] {
            if b == b'\n' {
                // Seen only with `-v`: not scrubbed (64 passes) for nobody.
                if tracing::enabled!(tracing::Level::DEBUG) {
                    let text = state.recent.scrub(printable(&line, MAX_LINE));
                    tracing::debug!(worker = n, "handler: {text}");
                }
                line.clear();
            } else if line.len() < MAX_LINE {
                line.push(b);
            }
        }
    }
}

struct Current {
    id: String,
    deadline: Instant,
    limit: Duration,
    reply: oneshot::Sender<Result<Value, FunctionError>>,
}

#[derive(Clone)]
struct Ctx {
    state: Arc<Worker>,
    queue: Arc<Mutex<mpsc::Receiver<Job>>>,
    init_error: Arc<std::sync::Mutex<Option<String>>>,
    arn: String,
}

type Reply = Response<Full<Bytes>>;

impl Ctx {
    /// Serves one HTTP/1.1 connection of the handler's runtime client.
    async fn serve(self, tcp: tokio::net::TcpStream) {
        let service = hyper::service::service_fn(move |req| {
            let ctx = self.clone();
            async move { Ok::<_, std::convert::Infallible>(ctx.handle(req).await) }
        });
        let _ = hyper::server::conn::http1::Builder::new()
            .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
            .await;
    }

    async fn handle(&self, req: Request<Incoming>) -> Reply {
        let path = req.uri().path().to_owned();
        let Some(rest) = path.strip_prefix(PREFIX) else { return status(StatusCode::NOT_FOUND, "unknown path") };
        match (req.method().as_str(), rest) {
            ("GET", "/invocation/next") => self.next().await,
            ("POST", "/init/error") => {
                let body = read(req).await;
                // Escaped (a message cannot start a log line of its own) and scrubbed: a handler
                // restarted after a crash may quote the token it was given.
                let text = self.state.recent.scrub(error_text(&body));
                tracing::warn!("authorizer handler init error: {text}");
                if let Ok(mut e) = self.init_error.lock() {
                    *e = Some(text);
                }
                status(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
            }
            ("POST", rest) => {
                let Some((id, what)) = rest.strip_prefix("/invocation/").and_then(|r| r.split_once('/')) else {
                    return status(StatusCode::NOT_FOUND, "unknown path");
                };
                let (id, what) = (id.to_owned(), what.to_owned());
                let error_type = req
                    .headers()
                    .get("Lambda-Runtime-Function-Error-Type")
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned);
                let body = read(req).await;
                let current = self.state.current.lock().ok().and_then(|mut c| match c.as_ref() {
                    Some(cur) if cur.id == id => c.take(),
                    _ => None,
                });
                let Some(current) = current else {
                    return status(StatusCode::BAD_REQUEST, "no such invocation in progress");
                };
                self.state.changed.notify_one();
                let result = match (what.as_str(), body) {
                    ("response", Ok(bytes)) => {
                        serde_json::from_slice(&bytes).map_err(|e| FunctionError::NotJson(e.to_string()))
                    }
                    ("response", Err(e)) => Err(e),
                    ("error", body) => {
                        let v: Value = body.ok().and_then(|b| serde_json::from_slice(&b).ok()).unwrap_or_default();
                        Err(FunctionError::Handler {
                            error_type: v["errorType"]
                                .as_str()
                                .map(str::to_owned)
                                .or(error_type)
                                .unwrap_or_else(|| "Unhandled".into()),
                            message: v["errorMessage"].as_str().unwrap_or_default().to_owned(),
                        })
                    }
                    _ => return status(StatusCode::NOT_FOUND, "unknown path"),
                };
                let _ = current.reply.send(result);
                status(StatusCode::ACCEPTED, r#"{"status":"OK"}"#)
            }
            _ => status(StatusCode::NOT_FOUND, "unknown path"),
        }
    }

    /// The next event that someone still waits for.
    async fn next(&self) -> Reply {
        // A worker asking for work has started: no init error stands.
        if let Ok(mut e) = self.init_error.lock() {
            e.take();
        }
        let job = loop {
            let Some(job) = self.queue.lock().await.recv().await else {
                return status(StatusCode::INTERNAL_SERVER_ERROR, "the emulator is stopping");
            };
            // Expired while queued: its invoker has given up.
            if !job.reply.is_closed() && job.deadline > Instant::now() {
                break job;
            }
        };
        let (id, event, deadline_ms) = (job.id.clone(), job.event, job.deadline_ms);
        self.state.recent.push(job.secrets);
        if let Ok(mut c) = self.state.current.lock() {
            *c = Some(Current { id: id.clone(), deadline: job.deadline, limit: job.limit, reply: job.reply });
        }
        self.state.changed.notify_one();
        Response::builder()
            .status(StatusCode::OK)
            .header("Content-Type", "application/json")
            .header("Lambda-Runtime-Aws-Request-Id", &id)
            .header("Lambda-Runtime-Deadline-Ms", deadline_ms.to_string())
            .header("Lambda-Runtime-Invoked-Function-Arn", &self.arn)
            .header("Lambda-Runtime-Trace-Id", format!("Root=1-{}", &id[..8]))
            .body(Full::new(Bytes::from(event)))
            .unwrap_or_else(|_| status(StatusCode::INTERNAL_SERVER_ERROR, "response"))
    }
}

async fn read(req: Request<Incoming>) -> Result<Bytes, FunctionError> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(_) => Err(FunctionError::TooLarge(MAX_BODY as u64)),
    }
}

/// `errorType: errorMessage` of an error document, or its text.
fn error_text(body: &Result<Bytes, FunctionError>) -> String {
    match body {
        Ok(b) => match serde_json::from_slice::<Value>(b) {
            Ok(v) => format!(
                "{}: {}",
                v["errorType"].as_str().unwrap_or("Error"),
                printable(v["errorMessage"].as_str().unwrap_or_default().as_bytes(), 300)
            ),
            Err(_) => printable(b, 300),
        },
        Err(e) => e.to_string(),
    }
}

fn status(code: StatusCode, body: &'static str) -> Reply {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = code;
    r
}

/// A request id in the UUID shape Lambda uses.
fn uuid() -> String {
    let mut b = [0u8; 16];
    let _ = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b);
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}
