//! Attempts that share a client ID take turns, but only at the CONNECT.
//!
//! IoT Core keeps one connection per client ID (a second CONNECT takes the first one over) and takes
//! about one connect a second per client ID. So within a chain of attempts sharing a client ID, each
//! CONNECT goes out only after every attempt before it has ended, and at least the spacing after the
//! chain's previous CONNECT. Everything before the CONNECT (resolve, TCP, proxy, TLS, WebSocket
//! upgrade) is the attempt's own business and runs ahead: attempt k starts as soon as attempt k−1 has
//! sent its CONNECT or ended, or, if k−1 is still connecting, one spacing after k−1 started (a silent
//! or slow network then costs one `--timeout`, not one per attempt). Attempt k never starts while k−1
//! waits at its own turn, so a chain behind a slow authorizer does not pile up idle connections.
//!
//! The budget: `--timeout` bounds an attempt's whole life, from its first packet to its answer; the
//! time it waits for its turn is not counted (nothing the peer does makes it longer than the turns
//! before it).

use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// Where an attempt of a chain is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Resolving, connecting, handshaking.
    Setup,
    /// Ready to send its CONNECT, waiting for its turn.
    Waiting,
    /// Its CONNECT went out.
    Sent,
    /// It ended, and so did every attempt before it in the chain.
    Ended,
}

/// One attempt's place in its chain.
pub(crate) struct Turn {
    prev: Option<watch::Receiver<Phase>>,
    me: watch::Sender<Phase>,
    last_connect: Arc<Mutex<Option<Instant>>>,
    spacing: Duration,
    /// How long the attempt waited for its turn (not part of its `--timeout`).
    pub(crate) waited: Duration,
}

impl Turn {
    /// An attempt that shares its client ID with nobody: its turn is now.
    pub(crate) fn free() -> Self {
        Self {
            prev: None,
            me: watch::Sender::new(Phase::Setup),
            last_connect: Arc::default(),
            spacing: Duration::ZERO,
            waited: Duration::ZERO,
        }
    }

    /// Waits until the CONNECT may go out, then takes the turn.
    pub(crate) async fn connect(&mut self) {
        let since = Instant::now();
        self.me.send_replace(Phase::Waiting);
        if let Some(prev) = &mut self.prev {
            // A dropped sender means that attempt is gone (cancelled): nothing left to wait for.
            let _ = prev.wait_for(|p| *p == Phase::Ended).await;
        }
        let last = *self.last_connect.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(last) = last {
            tokio::time::sleep_until(last + self.spacing).await;
        }
        *self.last_connect.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(Instant::now());
        self.me.send_replace(Phase::Sent);
        self.waited += since.elapsed();
    }

    /// The attempt is over: once every attempt before it is, the next may take its turn.
    pub(crate) async fn end(mut self) {
        if let Some(prev) = &mut self.prev {
            let _ = prev.wait_for(|p| *p == Phase::Ended).await;
        }
        self.me.send_replace(Phase::Ended);
    }
}

/// Hands out the turns of one chain, in order.
pub(crate) struct Chain {
    last: Option<(watch::Receiver<Phase>, Instant)>,
    last_connect: Arc<Mutex<Option<Instant>>>,
    spacing: Duration,
}

impl Chain {
    /// A chain whose CONNECTs are at least `spacing` apart.
    pub(crate) fn new(spacing: Duration) -> Self {
        Self { last: None, last_connect: Arc::default(), spacing }
    }

    /// Waits until the next attempt may start connecting, and gives it its turn.
    pub(crate) async fn next(&mut self) -> Turn {
        let prev = match self.last.take() {
            None => None,
            Some((mut prev, prev_started)) => {
                let timer = tokio::time::sleep_until(prev_started + self.spacing);
                tokio::pin!(timer);
                loop {
                    let phase = *prev.borrow_and_update();
                    if phase >= Phase::Sent || (phase == Phase::Setup && timer.is_elapsed()) {
                        break;
                    }
                    tokio::select! {
                        changed = prev.changed() => if changed.is_err() { break },
                        () = &mut timer, if !timer.is_elapsed() => {}
                    }
                }
                Some(prev)
            }
        };
        let me = watch::Sender::new(Phase::Setup);
        self.last = Some((me.subscribe(), Instant::now()));
        Turn { prev, me, last_connect: self.last_connect.clone(), spacing: self.spacing, waited: Duration::ZERO }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn connects_are_spaced_and_wait_for_the_one_before_to_end() {
        let spacing = Duration::from_millis(1_100);
        let mut chain = Chain::new(spacing);
        let t0 = Instant::now();
        let mut first = chain.next().await;
        first.connect().await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
        // The second starts connecting as soon as the first has sent its CONNECT …
        let mut second = chain.next().await;
        assert_eq!(t0.elapsed(), Duration::ZERO);
        let ends = async {
            tokio::time::sleep(Duration::from_secs(3)).await;
            first.end().await;
        };
        // … but its CONNECT waits for the first to end (3 s), not only for the spacing.
        let ((), ()) = tokio::join!(ends, second.connect());
        assert_eq!(t0.elapsed(), Duration::from_secs(3));
        assert_eq!(second.waited, Duration::from_secs(3));
        second.end().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_quick_first_attempt_still_leaves_the_spacing() {
        let spacing = Duration::from_millis(1_100);
        let mut chain = Chain::new(spacing);
        let t0 = Instant::now();
        let mut first = chain.next().await;
        first.connect().await;
        first.end().await;
        let mut second = chain.next().await;
        second.connect().await;
        assert_eq!(t0.elapsed(), spacing);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_handshake_lets_the_next_start_after_the_spacing() {
        let spacing = Duration::from_millis(1_100);
        let mut chain = Chain::new(spacing);
        let t0 = Instant::now();
        let first = chain.next().await;
        // The first never gets past its handshake: the second starts one spacing after it.
        let _second = chain.next().await;
        assert_eq!(t0.elapsed(), spacing);
        drop(first);
    }

    #[tokio::test(start_paused = true)]
    async fn the_next_does_not_start_while_the_one_before_waits_for_its_turn() {
        let spacing = Duration::from_millis(1_100);
        let mut chain = Chain::new(spacing);
        let t0 = Instant::now();
        let mut first = chain.next().await;
        first.connect().await;
        let mut second = chain.next().await;
        let holds = async {
            tokio::time::sleep(Duration::from_secs(10)).await;
            first.end().await;
        };
        let third = async {
            // The second reached its turn at once but waits 10 s for the first: the third starts
            // only when the second has sent its CONNECT.
            tokio::task::yield_now().await;
            let third = chain.next().await;
            (t0.elapsed(), third)
        };
        let ((), (), (started, _third)) = tokio::join!(holds, second.connect(), third);
        assert_eq!(started, Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn a_free_turn_never_waits() {
        let mut t = Turn::free();
        t.connect().await;
        t.connect().await;
        assert_eq!(t.waited, Duration::ZERO);
    }
}
