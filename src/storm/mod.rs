//! `authprobe storm`: N simulated devices reconnecting at once against an endpoint, each with its own
//! custom-auth credentials and the reconnect policy device SDKs implement ([`policy`]), at most
//! `--max-rate` connects a second; what it did to the endpoint is the [`report`]: how soon the fleet
//! was connected, every attempt's outcome as the probe classifies it, a per-second timeline, and the
//! limit that shaped the storm.

mod client;
pub mod plan;
pub mod policy;
pub mod report;
mod shape;
mod summary;
pub mod text;

pub use plan::{Identity, Placement, StormPlan};
pub use policy::{Backoff, Jitter, Policy, Rng};
pub use report::{Attempt, StormReport};

use crate::auth::event::Transport;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// What every device task shares.
struct Shared {
    start: Instant,
    /// CONNECTs sent and not answered yet.
    in_flight: AtomicUsize,
    /// Devices that have connected at least once.
    connected: AtomicUsize,
    /// The next moment a connect may start (`--max-rate`).
    next_slot: std::sync::Mutex<Instant>,
    attempts: std::sync::Mutex<Vec<Attempt>>,
    labels: std::sync::Mutex<Vec<String>>,
    stop: watch::Receiver<bool>,
}

impl Shared {
    /// Waits for the rate's next slot (at once without `--max-rate`).
    async fn slot(&self, rate: Option<f64>) {
        let Some(rate) = rate else { return };
        let at = {
            let Ok(mut next) = self.next_slot.lock() else { return };
            let at = (*next).max(Instant::now());
            *next = at + Duration::from_secs_f64(1.0 / rate);
            at
        };
        tokio::time::sleep_until(at).await;
    }

    fn label(&self, label: &str) -> u16 {
        let Ok(mut labels) = self.labels.lock() else { return 0 };
        match labels.iter().position(|l| l == label) {
            Some(i) => i as u16,
            None => {
                labels.push(label.to_owned());
                (labels.len() - 1) as u16
            }
        }
    }

    fn push(&self, attempt: Attempt) {
        if let Ok(mut a) = self.attempts.lock() {
            a.push(attempt);
        }
    }

    fn ms(&self, at: Instant) -> u32 {
        at.saturating_duration_since(self.start).as_millis() as u32
    }
}

/// Runs the storm until the share connected, the duration, or `interrupt` (Ctrl-C), whichever first.
pub async fn run(plan: Arc<StormPlan>, interrupt: impl Future<Output = ()>) -> anyhow::Result<StormReport> {
    let alpn: Vec<Vec<u8>> = if plan.transport == Transport::Mqtt { vec![b"mqtt".to_vec()] } else { Vec::new() };
    let config = crate::probe::tls::shared_config(&plan.trust, &alpn)?;
    let (stop_tx, stop) = watch::channel(false);
    let start = Instant::now();
    let started_unix_ms = unix_ms();
    let shared = Arc::new(Shared {
        start,
        in_flight: AtomicUsize::new(0),
        connected: AtomicUsize::new(0),
        next_slot: std::sync::Mutex::new(start),
        attempts: std::sync::Mutex::new(Vec::new()),
        labels: std::sync::Mutex::new(Vec::new()),
        stop,
    });
    let n = plan.identities.len();
    let target = ((plan.until_connected / 100.0) * n as f64).ceil() as usize;
    let mut tasks = tokio::task::JoinSet::new();
    for slot in 0..n {
        let (plan, shared, config) = (plan.clone(), shared.clone(), config.clone());
        tasks.spawn(async move { device(&plan, slot, &shared, &config).await });
    }
    let ended = watch_end(&plan, &shared, target, interrupt).await;
    let _ = stop_tx.send(true);
    let elapsed = start.elapsed();
    // Every device lets go at once (each goodbye is bounded); then nothing more is recorded.
    let drain = tokio::time::timeout(Duration::from_secs(5), async { while tasks.join_next().await.is_some() {} });
    if drain.await.is_err() {
        tasks.abort_all();
    }
    let attempts = std::mem::take(&mut *shared.attempts.lock().map_err(|_| anyhow::anyhow!("a device task panicked"))?);
    let labels = shared.labels.lock().map(|l| l.clone()).unwrap_or_default();
    Ok(StormReport::build(&plan, started_unix_ms, elapsed, ended, labels, attempts))
}

/// Waits for the end: the share connected, the duration over, or the interrupt.
async fn watch_end(
    plan: &StormPlan,
    shared: &Shared,
    target: usize,
    interrupt: impl Future<Output = ()>,
) -> report::Ended {
    tokio::pin!(interrupt);
    let deadline = shared.start + plan.duration;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    loop {
        if shared.connected.load(Relaxed) >= target {
            return report::Ended::UntilConnected;
        }
        tokio::select! {
            () = &mut interrupt => return report::Ended::Interrupted,
            () = tokio::time::sleep_until(deadline) => return report::Ended::Duration,
            _ = tick.tick() => {}
        }
    }
}

/// One device: its first attempt at its place in the ramp, then its policy's retries, then holding.
async fn device(plan: &StormPlan, slot: usize, shared: &Shared, config: &Arc<rustls::ClientConfig>) {
    let id = &plan.identities[slot];
    let mut stop = shared.stop.clone();
    let stopped = |s: &watch::Receiver<bool>| *s.borrow();
    let n = plan.identities.len().max(1) as u32;
    let first = shared.start + plan.ramp * (slot as u32) / n;
    let mut rng = Rng::new(plan.seed, id.index as u64);
    let (mut failures, mut previous, mut last_send): (u32, Duration, Option<u32>) = (0, plan.policy.min_delay, None);
    if !wait_until(first, &mut stop).await {
        return;
    }
    let mut ever_connected = false;
    while !stopped(&stop) {
        tokio::select! {
            () = shared.slot(plan.max_rate) => {}
            _ = stop.changed() => return,
        }
        let sent = shared.ms(Instant::now());
        // Boxed: the handshake's state is freed once the attempt is over, not kept in a held device's task.
        let started = Instant::now();
        let (answer, in_flight) = tokio::select! {
            a = Box::pin(client::attempt(plan, id, config, &shared.in_flight)) => a,
            _ = stop.changed() => {
                // Cut off by the end: counted (the endpoint saw a connection), as `interrupted`.
                let latency_ms = started.elapsed().as_millis() as u32;
                let gap_ms = last_send.map(|l| sent.saturating_sub(l));
                let outcome = shared.label(report::INTERRUPTED);
                shared.push(Attempt { device: id.index as u32, sent_ms: sent, latency_ms, outcome, in_flight: 0, gap_ms });
                return;
            }
        };
        let accepted = answer.link.is_some();
        if accepted && !ever_connected {
            ever_connected = true;
            shared.connected.fetch_add(1, Relaxed);
        }
        let record = Attempt {
            device: id.index as u32,
            sent_ms: sent,
            latency_ms: answer.latency_ms,
            outcome: shared.label(&answer.label),
            in_flight: in_flight as u32,
            gap_ms: last_send.map(|l| sent.saturating_sub(l)),
        };
        shared.push(record);
        last_send = Some(sent);
        match answer.link {
            Some(mut link) => {
                let mut s = stop.clone();
                let until = async move {
                    match plan.hold {
                        Some(h) => tokio::select! { () = tokio::time::sleep(h) => {}, _ = s.changed() => {} },
                        None => while !*s.borrow_and_update() && s.changed().await.is_ok() {},
                    }
                };
                let held = link.hold(until, plan.keep_alive).await;
                link.goodbye().await;
                if held {
                    return;
                }
                // Dropped by the server before its time: the device reconnects.
                failures = 0;
            }
            None => {
                failures += 1;
                previous = plan.policy.delay(failures, previous, &mut rng);
                if !wait_until(Instant::now() + previous, &mut stop).await {
                    return;
                }
            }
        }
    }
}

/// Sleeps until `at`; `false` if the storm stopped first.
async fn wait_until(at: Instant, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        () = tokio::time::sleep_until(at) => true,
        _ = stop.changed() => false,
    }
}

/// Now, in Unix milliseconds.
fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}
