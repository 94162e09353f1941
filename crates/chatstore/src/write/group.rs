//! Write combining: concurrent logical writes of one process share one
//! write transaction and so one commit (one fsync on LMDB).
//!
//! A writer queues its job and tries to become the leader. The leader takes
//! every queued job, runs each over its own overlay ([`Tx`]) on one write
//! transaction (a job that fails leaves nothing: its overlay is dropped,
//! the others go on), commits once, and hands each job its result. The
//! others wait for theirs, retrying to lead now and then, so a job queued
//! just as a leader finished is never stranded. Each job stays one atomic
//! logical write: its writes all land in the same commit or none do.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, TryLockError};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::keys::Layout;
use crate::storage::{ReadTxn, WriteTxn};
use crate::write::{Tx, TxResult, Writes};

/// One logical write: builds its overlay, returns its result.
pub(crate) type WriteFn = Box<dyn FnOnce(&Tx) -> TxResult<u64> + Send>;

struct Job {
    f: Mutex<Option<WriteFn>>,
    done: Mutex<Option<Result<u64>>>,
    ready: Condvar,
}

/// The queue of one engine's writes.
#[derive(Default)]
pub(crate) struct Combiner {
    queue: Mutex<Vec<Arc<Job>>>,
    leader: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Combiner {
    /// Runs `f` in a transaction shared with the writes queued beside it.
    /// `begin` starts a write transaction; `text_index` is the store's
    /// (see [`Tx::new`]).
    pub(crate) fn write<'e>(
        &self,
        f: WriteFn,
        begin: &dyn Fn() -> Result<Box<dyn WriteTxn + 'e>>,
        layout: Layout,
    ) -> Result<u64> {
        let job = Arc::new(Job {
            f: Mutex::new(Some(f)),
            done: Mutex::new(None),
            ready: Condvar::new(),
        });
        lock(&self.queue).push(Arc::clone(&job));
        loop {
            if let Some(r) = lock(&job.done).take() {
                return r;
            }
            match self.leader.try_lock() {
                Ok(_lead) => self.lead(begin, layout),
                Err(TryLockError::Poisoned(p)) => {
                    let _lead = p.into_inner();
                    self.lead(begin, layout)
                }
                Err(TryLockError::WouldBlock) => {
                    let done = lock(&job.done);
                    if done.is_none() {
                        let _ = job.ready.wait_timeout(done, Duration::from_millis(1));
                    }
                }
            }
        }
    }

    /// Commits every queued job, a transaction per round, until none is left.
    fn lead<'e>(&self, begin: &dyn Fn() -> Result<Box<dyn WriteTxn + 'e>>, layout: Layout) {
        loop {
            let jobs = std::mem::take(&mut *lock(&self.queue));
            if jobs.is_empty() {
                return;
            }
            let results = commit(&jobs, begin, layout);
            for (job, r) in jobs.iter().zip(results) {
                *lock(&job.done) = Some(r);
                job.ready.notify_all();
            }
        }
    }
}

/// Runs the jobs in one transaction and commits it; one result per job.
fn commit<'e>(
    jobs: &[Arc<Job>],
    begin: &dyn Fn() -> Result<Box<dyn WriteTxn + 'e>>,
    layout: Layout,
) -> Vec<Result<u64>> {
    let all = |e: &Error| jobs.iter().map(|_| Err(e.duplicate())).collect();
    let mut w = match begin() {
        Ok(w) => w,
        Err(e) => return all(&e),
    };
    let mut results = Vec::with_capacity(jobs.len());
    for job in jobs {
        let Some(f) = lock(&job.f).take() else {
            results.push(Err(Error::internal("a queued write ran twice")));
            continue;
        };
        // A panic in one write is that write's error, not the others'.
        let r = catch_unwind(AssertUnwindSafe(|| run(w.as_read(), f, layout)))
            .unwrap_or_else(|_| Err(Error::internal("a write panicked")));
        match r {
            Ok((v, writes)) => {
                if let Err(e) = super::put_all(&mut *w, writes) {
                    // Part of this job may be in the transaction: drop it all.
                    return all(&e);
                }
                results.push(Ok(v));
            }
            Err(e) => results.push(Err(e)),
        }
    }
    match w.commit() {
        Ok(()) => results,
        Err(e) => all(&e),
    }
}

/// Runs one job over its own overlay of the transaction: its result and
/// the writes to put into the transaction.
fn run(txn: &dyn ReadTxn, f: WriteFn, layout: Layout) -> Result<(u64, Writes)> {
    let tx = Tx::new(txn, layout);
    let v = f(&tx)?;
    let writes = tx.into_writes()?;
    Ok((v, writes))
}
