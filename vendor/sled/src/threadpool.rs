//! A simple adaptive threadpool that returns a oneshot future.

use std::{
    collections::VecDeque,
    sync::atomic::{AtomicBool, Ordering::Relaxed},
    thread,
    time::{Duration, Instant},
};

use parking_lot::{Condvar, Mutex};

use crate::{
    debug_delay, warn, Acquire, AtomicUsize, Error, Lazy, OneShot, Result,
    SeqCst,
};

// This is lower for CI reasons.
#[cfg(windows)]
const MAX_THREADS: usize = 16;

#[cfg(not(windows))]
const MAX_THREADS: usize = 128;

const DESIRED_WAITING_THREADS: usize = 7;

static WAITING_THREAD_COUNT: AtomicUsize = AtomicUsize::new(0);
static TOTAL_THREAD_COUNT: AtomicUsize = AtomicUsize::new(0);
static SPAWNS: AtomicUsize = AtomicUsize::new(0);
static SPAWNING: AtomicBool = AtomicBool::new(false);

type Work = Box<dyn FnOnce() + Send + 'static>;

struct Queue {
    cv: Condvar,
    mu: Mutex<VecDeque<Work>>,
}

impl Queue {
    fn recv_timeout(&self, duration: Duration) -> Option<Work> {
        let mut queue = self.mu.lock();

        let cutoff = Instant::now() + duration;

        while queue.is_empty() {
            WAITING_THREAD_COUNT.fetch_add(1, SeqCst);
            let res = self.cv.wait_until(&mut queue, cutoff);
            WAITING_THREAD_COUNT.fetch_sub(1, SeqCst);
            if res.timed_out() {
                break;
            }
        }

        queue.pop_front()
    }

    fn try_recv(&self) -> Option<Work> {
        let mut queue = self.mu.lock();
        queue.pop_front()
    }

    fn send(&self, work: Work) -> usize {
        let mut queue = self.mu.lock();
        queue.push_back(work);

        let len = queue.len();

        // having held the mutex makes this linearized
        // with the notify below.
        drop(queue);

        self.cv.notify_all();

        len
    }
}

static QUEUE: Lazy<Queue, fn() -> Queue> = Lazy::new(init_queue);
static BROKEN: AtomicBool = AtomicBool::new(false);

fn init_queue() -> Queue {
    debug_delay();
    for _ in 0..DESIRED_WAITING_THREADS {
        debug_delay();
        if let Err(e) = spawn_new_thread(true) {
            log::error!("failed to initialize threadpool: {:?}", e);
        }
    }
    Queue { cv: Condvar::new(), mu: Mutex::new(VecDeque::new()) }
}

fn perform_work(is_immortal: bool) {
    let wait_limit = Duration::from_secs(1);

    let mut performed = 0;
    let mut contiguous_overshoots = 0;

    while is_immortal || performed < 5 || contiguous_overshoots < 3 {
        debug_delay();
        let task_res = QUEUE.recv_timeout(wait_limit);

        // chatstore patch: `recv_timeout` already counts this thread as
        // waiting only while it waits. The former extra `fetch_sub` before
        // each task (and `fetch_add` after) counted a busy thread as -1, so
        // with more busy than idle threads the unsigned count wrapped to a
        // huge number and `maybe_spawn_new_thread` never spawned again: a
        // task queued behind blocked tasks (a file truncation behind
        // `write_to_log` calls waiting for the segment accountant that waits
        // for that truncation) never ran (sled issue 1412).
        if let Some(task) = task_res {
            ensure_a_thread_for_queued_work();
            (task)();
            performed += 1;
        }

        while let Some(task) = QUEUE.try_recv() {
            debug_delay();
            ensure_a_thread_for_queued_work();
            (task)();
            performed += 1;
        }

        debug_delay();

        let waiting = WAITING_THREAD_COUNT.load(Acquire);

        if waiting > DESIRED_WAITING_THREADS {
            contiguous_overshoots += 1;
        } else {
            contiguous_overshoots = 0;
        }
    }
}

// Create up to MAX_THREADS dynamic blocking task worker threads.
// Dynamic threads will terminate themselves if they don't
// receive any work after one second.
fn maybe_spawn_new_thread() -> Result<()> {
    debug_delay();
    let total_workers = TOTAL_THREAD_COUNT.load(Acquire);
    debug_delay();
    let waiting_threads = WAITING_THREAD_COUNT.load(Acquire);

    if waiting_threads >= DESIRED_WAITING_THREADS
        || total_workers >= MAX_THREADS
    {
        return Ok(());
    }

    if !SPAWNING.compare_and_swap(false, true, SeqCst) {
        spawn_new_thread(false)?;
    }

    Ok(())
}

fn spawn_new_thread(is_immortal: bool) -> Result<()> {
    if BROKEN.load(Relaxed) {
        return Err(Error::ReportableBug(
            "IO thread unexpectedly panicked. please report \
            this bug on the sled github repo."
                .to_string(),
        ));
    }

    let spawn_id = SPAWNS.fetch_add(1, SeqCst);

    TOTAL_THREAD_COUNT.fetch_add(1, SeqCst);
    let spawn_res = thread::Builder::new()
        .name(format!("sled-io-{}", spawn_id))
        .spawn(move || {
            SPAWNING.store(false, SeqCst);
            debug_delay();
            let res = std::panic::catch_unwind(|| perform_work(is_immortal));
            TOTAL_THREAD_COUNT.fetch_sub(1, SeqCst);
            if is_immortal || res.is_err() {
                // IO thread panicked, shut down the system
                log::error!(
                    "IO thread unexpectedly terminated.
                    please report this error at the sled github repo. {:?}",
                    res
                );
                BROKEN.store(true, SeqCst);
            }
        });

    if let Err(e) = spawn_res {
        static E: AtomicBool = AtomicBool::new(false);

        SPAWNING.store(false, SeqCst);

        if !E.compare_and_swap(false, true, Relaxed) {
            // only execute this once
            warn!(
                "Failed to dynamically increase the threadpool size: {:?}.",
                e,
            )
        }
    }

    Ok(())
}

/// Spawn a function on the threadpool.
pub fn spawn<F, R>(work: F) -> Result<OneShot<R>>
where
    F: FnOnce() -> R + Send + 'static,
    R: Send + 'static + Sized,
{
    let (promise_filler, promise) = OneShot::pair();
    let task = move || {
        let result = (work)();
        promise_filler.fill(result);
    };

    let depth = QUEUE.send(Box::new(task));

    // chatstore patch: also spawn when no thread is idle to take this task,
    // whatever the queue depth: a pool whose threads all block on work that
    // waits for this task must still run it.
    if depth > DESIRED_WAITING_THREADS
        || WAITING_THREAD_COUNT.load(Acquire) == 0
    {
        maybe_spawn_new_thread()?;
    }

    Ok(promise)
}

/// chatstore patch: called by a pool thread about to run a task, which may
/// block. If work is still queued and no thread is idle to take it, start
/// one, so that queued work never waits on the tasks ahead of it.
fn ensure_a_thread_for_queued_work() {
    if WAITING_THREAD_COUNT.load(Acquire) == 0 && !QUEUE.mu.lock().is_empty()
    {
        if let Err(e) = maybe_spawn_new_thread() {
            log::error!("failed to grow the threadpool: {:?}", e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{mpsc, Arc, Condvar as StdCondvar, Mutex as StdMutex};

    /// sled issue 1412: tasks that block until a later task runs. Each is
    /// queued alone (queue depth 1) after the previous one started, more of
    /// them than the pool starts threads; every one must start, and the
    /// last task, which releases them all, must run.
    #[test]
    fn a_task_queued_behind_blocked_threads_runs() {
        let gate = Arc::new((StdMutex::new(false), StdCondvar::new()));
        let (started_tx, started_rx) = mpsc::channel();
        let (done_tx, done_rx) = mpsc::channel();
        let blockers = DESIRED_WAITING_THREADS * 3;
        for i in 0..blockers {
            let gate = gate.clone();
            let started_tx = started_tx.clone();
            let done_tx = done_tx.clone();
            spawn(move || {
                started_tx.send(i).unwrap();
                let (open, cv) = &*gate;
                let mut open = open.lock().unwrap();
                while !*open {
                    open = cv.wait(open).unwrap();
                }
                done_tx.send(i).unwrap();
            })
            .unwrap();
            assert_eq!(
                started_rx.recv_timeout(Duration::from_secs(30)),
                Ok(i),
                "blocking task {} never started: the pool did not grow",
                i
            );
        }
        let opener = gate.clone();
        spawn(move || {
            let (open, cv) = &*opener;
            *open.lock().unwrap() = true;
            cv.notify_all();
        })
        .unwrap();
        for _ in 0..blockers {
            done_rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the releasing task never ran");
        }
    }
}
