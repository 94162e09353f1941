//! Group commit: in sync mode every writer waits until a flush that began
//! after its write has finished, and one flush serves every writer waiting
//! at that moment.

use std::sync::{Condvar, Mutex};

use crate::error::{Error, Result};

#[derive(Default)]
struct State {
    /// Tickets handed out (one per committed write).
    issued: u64,
    /// Every ticket up to this one is durable.
    durable: u64,
    /// A flush is running.
    flushing: bool,
}

/// Shares `flush()` calls between concurrent writers.
#[derive(Default)]
pub(crate) struct GroupCommit {
    state: Mutex<State>,
    done: Condvar,
}

impl GroupCommit {
    /// Returns once a flush that started after this call has completed.
    /// `flush` is called by one waiter (the leader) for all of them.
    pub(crate) fn wait_durable(&self, flush: impl Fn() -> Result<()>) -> Result<()> {
        let mut st = self.state.lock().map_err(|_| poisoned())?;
        st.issued += 1;
        let ticket = st.issued;
        loop {
            if st.durable >= ticket {
                return Ok(());
            }
            if st.flushing {
                st = self.done.wait(st).map_err(|_| poisoned())?;
                continue;
            }
            st.flushing = true;
            let target = st.issued;
            drop(st);
            let r = flush();
            st = self.state.lock().map_err(|_| poisoned())?;
            st.flushing = false;
            if r.is_ok() {
                st.durable = st.durable.max(target);
            }
            self.done.notify_all();
            r?;
        }
    }
}

fn poisoned() -> Error {
    Error::internal("group commit lock poisoned by a panicking writer")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;

    #[test]
    fn writers_waiting_during_a_flush_share_the_next_one() {
        let gc = Arc::new(GroupCommit::default());
        let flushes = Arc::new(AtomicU64::new(0));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (gc, flushes) = (gc.clone(), flushes.clone());
                std::thread::spawn(move || {
                    let gc2 = gc.clone();
                    gc.wait_durable(|| {
                        // The first flush holds on until all eight have a ticket.
                        if flushes.fetch_add(1, Ordering::SeqCst) == 0 {
                            while gc2.state.lock().unwrap().issued < 8 {
                                std::thread::yield_now();
                            }
                        }
                        Ok(())
                    })
                    .unwrap();
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        // Eight writers, but whoever waited during the first flush is served
        // by one more: never one flush per writer.
        let n = flushes.load(Ordering::SeqCst);
        assert!((1..=2).contains(&n), "{n} flushes for 8 writers");
    }

    #[test]
    fn a_failed_flush_is_reported_and_not_counted() {
        let gc = GroupCommit::default();
        assert!(gc.wait_durable(|| Err(Error::Closed)).is_err());
        assert!(gc.wait_durable(|| Ok(())).is_ok());
    }
}
