//! Who may hold a connection, and what a connection may hold before it authenticates.
//!
//! An attacker needs no credentials to open connections and send half of a request, so the costs
//! that come before authentication are bounded for the whole emulator, not per connection only:
//!
//! - **Connections**: at most `limits.max_connections`, and never more than the open-file limit
//!   leaves room for. At the limit, the *oldest connection still before authentication* is shed to
//!   admit the new one, so idle or slow connections cannot lock good clients out; only when every
//!   connection is past authentication is the newcomer refused.
//! - **Bytes before authentication**: every byte read from a connection until its credentials are
//!   complete (ClientHello, handshake, request head, body, WebSocket frames, CONNECT) is counted.
//!   The first [`ALLOWANCE`] bytes of each connection are free — a device's whole login fits — and
//!   the rest is charged to one budget (`limits.pre_auth_bytes`). Over the budget, the oldest
//!   connection holding charged bytes is shed; a connection that is itself the oldest is closed.
//!
//! Once a connection's credentials are complete and the decision starts ([`Entry::authenticating`]),
//! it can no longer be shed and its bytes no longer count.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::Notify;

/// Bytes each connection may read before authenticating without being charged to the budget: a
/// ClientHello with a post-quantum key share, the handshake's end, and a CONNECT or request head
/// carrying a token of a few kilobytes.
pub(crate) const ALLOWANCE: usize = 8 * 1024;

/// File descriptors kept free for everything else (handler pipes and Runtime API sockets, the CA
/// file, logs, the listener).
const FD_RESERVE: usize = 64;

/// The emulator's connections and their pre-authentication costs.
#[derive(Debug)]
pub(crate) struct Admission {
    limit: usize,
    budget: usize,
    open: AtomicUsize,
    charged: AtomicUsize,
    next: AtomicU64,
    /// Connections before authentication, oldest first.
    waiting: Mutex<BTreeMap<u64, Arc<Entry>>>,
}

/// One connection's standing.
#[derive(Debug)]
pub(crate) struct Entry {
    id: u64,
    owner: Weak<Admission>,
    /// Bytes read while before authentication.
    read: AtomicUsize,
    /// Of those, the bytes charged to the budget.
    charged: AtomicUsize,
    before_auth: AtomicBool,
    /// Why it was shed, once it is.
    shed_for: Mutex<Option<Shed>>,
    shed: Notify,
}

/// A connection's admission; dropping it (the connection ends) releases what it held.
#[derive(Debug)]
pub(crate) struct Pass {
    entry: Arc<Entry>,
}

/// Why a connection was shed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Shed {
    /// At the connection limit, to admit a newer connection.
    ConnectionLimit,
    /// Over the budget of bytes held before authentication.
    ByteBudget,
}

impl std::fmt::Display for Shed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::ConnectionLimit => {
                "shed at the connection limit to admit a newer connection: it had not authenticated yet"
            }
            Self::ByteBudget => {
                "shed: the emulator's budget for bytes held before authentication ran out, and this was the oldest connection holding them"
            }
        })
    }
}

impl Admission {
    /// Room for `max_connections`, fewer if the open-file limit leaves less.
    pub(crate) fn new(max_connections: usize, budget: usize) -> Arc<Self> {
        let limit = max_connections.min(fd_room()).max(1);
        if limit < max_connections {
            tracing::info!("at most {limit} connections at once: the open-file limit leaves room for no more");
        }
        Arc::new(Self {
            limit,
            budget,
            open: AtomicUsize::new(0),
            charged: AtomicUsize::new(0),
            next: AtomicU64::new(0),
            waiting: Mutex::new(BTreeMap::new()),
        })
    }

    /// How many connections are served at once.
    pub(crate) fn limit(&self) -> usize {
        self.limit
    }

    /// Admits a new connection, shedding the oldest one still before authentication when at the
    /// limit; `None` when every connection is past authentication.
    pub(crate) fn admit(self: &Arc<Self>) -> Option<Pass> {
        let open = self.open.fetch_add(1, Ordering::SeqCst) + 1;
        if open > self.limit && !self.shed_oldest(None, Shed::ConnectionLimit) {
            self.open.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        let entry = Arc::new(Entry {
            id: self.next.fetch_add(1, Ordering::SeqCst),
            owner: Arc::downgrade(self),
            read: AtomicUsize::new(0),
            charged: AtomicUsize::new(0),
            before_auth: AtomicBool::new(true),
            shed_for: Mutex::new(None),
            shed: Notify::new(),
        });
        if let Ok(mut w) = self.waiting.lock() {
            w.insert(entry.id, entry.clone());
        }
        Some(Pass { entry })
    }

    /// Sheds the oldest connection before authentication (holding charged bytes, when `holding` is
    /// `Some(id)`, and other than `id`); whether there was one.
    fn shed_oldest(&self, holding: Option<u64>, why: Shed) -> bool {
        let victim = {
            let Ok(mut w) = self.waiting.lock() else { return false };
            let id = w
                .values()
                .find(|e| holding.is_none_or(|me| e.id != me && e.charged.load(Ordering::SeqCst) > 0))
                .map(|e| e.id);
            id.and_then(|id| w.remove(&id))
        };
        let Some(victim) = victim else { return false };
        if let Ok(mut s) = victim.shed_for.lock() {
            *s = Some(why);
        }
        victim.shed.notify_one();
        true
    }

    fn release(&self, entry: &Entry) {
        let held = entry.charged.swap(0, Ordering::SeqCst);
        self.charged.fetch_sub(held, Ordering::SeqCst);
    }
}

impl Entry {
    /// Counts `n` bytes read from the connection; an error when they cannot be held.
    pub(crate) fn charge(&self, n: usize) -> std::io::Result<()> {
        if n == 0 || !self.before_auth.load(Ordering::SeqCst) {
            return Ok(());
        }
        let Some(owner) = self.owner.upgrade() else { return Ok(()) };
        let read = self.read.fetch_add(n, Ordering::SeqCst) + n;
        let due = read.saturating_sub(ALLOWANCE);
        let before = self.charged.swap(due, Ordering::SeqCst);
        let add = due.saturating_sub(before);
        if add == 0 {
            return Ok(());
        }
        let total = owner.charged.fetch_add(add, Ordering::SeqCst) + add;
        if total > owner.budget && !owner.shed_oldest(Some(self.id), Shed::ByteBudget) {
            if let Ok(mut s) = self.shed_for.lock() {
                *s = Some(Shed::ByteBudget);
            }
            return Err(std::io::Error::new(std::io::ErrorKind::OutOfMemory, Shed::ByteBudget.to_string()));
        }
        Ok(())
    }

    /// The connection's credentials are complete and its decision starts: it is no longer shed, and
    /// what it reads no longer counts.
    pub(crate) fn authenticating(&self) {
        if !self.before_auth.swap(false, Ordering::SeqCst) {
            return;
        }
        if let Some(owner) = self.owner.upgrade() {
            if let Ok(mut w) = owner.waiting.lock() {
                w.remove(&self.id);
            }
            owner.release(self);
        }
    }

    /// Completes when the connection is shed.
    pub(crate) async fn shed(&self) {
        self.shed.notified().await;
    }

    /// Why the connection was shed or refused bytes, if it was.
    pub(crate) fn shed_for(&self) -> Option<Shed> {
        self.shed_for.lock().ok().and_then(|s| *s)
    }
}

impl Pass {
    pub(crate) fn entry(&self) -> &Arc<Entry> {
        &self.entry
    }
}

impl Drop for Pass {
    fn drop(&mut self) {
        let Some(owner) = self.entry.owner.upgrade() else { return };
        if let Ok(mut w) = owner.waiting.lock() {
            w.remove(&self.entry.id);
        }
        owner.release(&self.entry);
        owner.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Connections the open-file limit leaves room for: the soft limit, less the files open now and a
/// reserve.
fn fd_room() -> usize {
    let mut lim = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct given, nothing else.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 || lim.rlim_cur == libc::RLIM_INFINITY {
        return usize::MAX;
    }
    let open = std::fs::read_dir("/proc/self/fd").map_or(32, Iterator::count);
    usize::try_from(lim.rlim_cur).unwrap_or(usize::MAX).saturating_sub(open + FD_RESERVE)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_the_limit_the_oldest_unauthenticated_connection_is_shed() {
        let a = Admission::new(2, 1 << 20);
        let first = a.admit().unwrap();
        let second = a.admit().unwrap();
        second.entry().authenticating();
        let third = a.admit().expect("the first is shed to admit the third");
        assert_eq!(first.entry().shed_for(), Some(Shed::ConnectionLimit));
        assert_eq!(second.entry().shed_for(), None);
        drop(first);
        // Both left are past authentication or newer: the next sheds the third, then none.
        third.entry().authenticating();
        assert!(a.admit().is_none(), "every connection is past authentication");
        drop(second);
        assert!(a.admit().is_some());
    }

    #[test]
    fn bytes_past_the_allowance_are_charged_and_the_oldest_holder_is_shed() {
        let a = Admission::new(100, 64 * 1024);
        let old = a.admit().unwrap();
        let new = a.admit().unwrap();
        old.entry().charge(ALLOWANCE + 60 * 1024).unwrap();
        assert_eq!(a.charged.load(Ordering::SeqCst), 60 * 1024);
        // Over the budget: the older holder goes, the newer keeps reading.
        new.entry().charge(ALLOWANCE + 8 * 1024).unwrap();
        assert_eq!(old.entry().shed_for(), Some(Shed::ByteBudget));
        drop(old);
        assert_eq!(a.charged.load(Ordering::SeqCst), 8 * 1024);
        // Alone over the budget: refused.
        let err = new.entry().charge(100 * 1024).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::OutOfMemory);
        // Authenticating releases the charge; later bytes are free.
        new.entry().authenticating();
        assert_eq!(a.charged.load(Ordering::SeqCst), 0);
        new.entry().charge(1 << 30).unwrap();
        assert_eq!(a.charged.load(Ordering::SeqCst), 0);
    }
}
