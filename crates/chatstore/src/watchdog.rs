//! A watchdog for a known stall of sled 0.34.7 (sled issue 1412, observed
//! here in the crash soak; docs/RELIABILITY.md).
//!
//! A writer that needs a new log segment can wait, holding the segment
//! accountant's lock, for a file truncation queued on sled's thread pool,
//! while every pool thread waits for that lock in `write_to_log`. sled adds a
//! pool thread only when a task is queued behind more than seven others
//! (`threadpool::spawn`), so the truncation is never run. Queueing eight more
//! tasks makes sled start a thread, which takes the oldest task first: the
//! truncation; the writer proceeds and the pool drains.
//!
//! The engine marks each write with [`Watchdog::enter`]; a thread checks
//! every 250 ms and, when a write has been inside sled for more than a
//! second, queues eight `flush_async` tasks (a flush is harmless at any
//! time), at most once a second, and counts it.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Waker};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// A write inside sled for longer than this is taken as stalled.
const STALL: Duration = Duration::from_secs(1);
/// How often the watchdog looks.
const TICK: Duration = Duration::from_millis(250);
/// Tasks queued per kick: one more than sled's spawn threshold.
const KICK_TASKS: usize = 8;

#[derive(Debug)]
struct State {
    /// Milliseconds since `epoch` when the current write entered sled, plus
    /// one; 0 when no write is inside sled.
    busy_since: AtomicU64,
    stop: AtomicBool,
    kicks: AtomicU64,
    epoch: Instant,
}

impl State {
    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }
}

/// The watchdog of one engine; stops when dropped.
#[derive(Debug)]
pub struct Watchdog {
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

/// A write inside sled (see [`Watchdog::enter`]).
pub struct Busy<'a>(&'a State);

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.0.busy_since.store(0, Ordering::Release);
    }
}

impl Watchdog {
    /// Starts watching writes to `tree`'s database.
    pub fn start(tree: sled::Tree) -> Watchdog {
        let state = Arc::new(State {
            busy_since: AtomicU64::new(0),
            stop: AtomicBool::new(false),
            kicks: AtomicU64::new(0),
            epoch: Instant::now(),
        });
        let s = Arc::clone(&state);
        let thread = thread::Builder::new()
            .name("chatstore-watchdog".into())
            .spawn(move || watch(&s, &tree))
            .ok();
        Watchdog { state, thread }
    }

    /// Marks a write as inside sled until the guard drops. Writes are
    /// serialized by the engine's writer lock, so one mark suffices.
    pub fn enter(&self) -> Busy<'_> {
        self.state
            .busy_since
            .store(self.state.now(), Ordering::Release);
        Busy(&self.state)
    }

    /// How many times the watchdog found a write stalled and woke sled's pool.
    #[cfg(test)]
    pub fn kicks(&self) -> u64 {
        self.state.kicks.load(Ordering::Acquire)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::Release);
        if let Some(t) = self.thread.take() {
            t.thread().unpark();
            let _ = t.join();
        }
    }
}

fn watch(state: &State, tree: &sled::Tree) {
    let mut last_kick = 0u64;
    loop {
        thread::park_timeout(TICK);
        if state.stop.load(Ordering::Acquire) {
            return;
        }
        let since = state.busy_since.load(Ordering::Acquire);
        let now = state.now();
        let stall = STALL.as_millis() as u64;
        if since != 0 && now - since > stall && now - last_kick > stall {
            eprintln!(
                "chatstore: a write has waited {} ms inside sled; waking sled's \
                 thread pool (sled issue 1412, see docs/RELIABILITY.md)",
                now - since
            );
            kick(tree);
            last_kick = now;
            state.kicks.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// Queues `KICK_TASKS` flushes on sled's pool: polling `flush_async` once
/// runs it up to its `threadpool::spawn`; the futures are then dropped (the
/// flushes still run).
fn kick(tree: &sled::Tree) {
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..KICK_TASKS {
        let mut f = std::pin::pin!(tree.flush_async());
        let _ = f.as_mut().poll(&mut cx);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stalled_write_is_kicked_and_a_quick_one_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let w = Watchdog::start(db.open_tree("t").unwrap());
        {
            let _quick = w.enter();
        }
        thread::sleep(Duration::from_millis(600));
        assert_eq!(w.kicks(), 0);
        // A "write" that stays inside sled: the watchdog kicks (after a
        // second; waited for up to 20 s on a loaded machine).
        let busy = w.enter();
        let deadline = Instant::now() + Duration::from_secs(20);
        while w.kicks() == 0 && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(50));
        }
        drop(busy);
        assert!(w.kicks() >= 1, "kicks {}", w.kicks());
        let before = w.kicks();
        thread::sleep(Duration::from_millis(600));
        assert_eq!(w.kicks(), before, "no write inside sled: no kick");
        drop(w);
        db.insert(b"k", b"v").unwrap();
        assert!(db.flush().is_ok());
    }
}
