//! Environments kept open after their last handle closed, for
//! `Options::linger_ms`: a PHP-FPM worker opens and closes the store on
//! every request, and opening an environment (files, map, lock region,
//! reader slot) costs about 100 µs where finding it open costs about 2 µs.
//!
//! A closed handle leaves its environment here until the linger passed
//! since its last close; one thread per process (started with the first
//! entry, again in a forked child) closes the expired ones. An entry of
//! the process this one was forked from is never closed here (closing it
//! would release the parent's reader slots): it is forgotten.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::Shared;

/// The lingering environments and when each may close.
static ENTRIES: Mutex<Vec<(Arc<Shared>, Instant)>> = Mutex::new(Vec::new());
/// Wakes the closing thread when an entry was added.
static WAKE: Condvar = Condvar::new();
/// The process whose closing thread runs (0: none yet).
static CLOSER_PID: AtomicU32 = AtomicU32::new(0);

fn entries() -> std::sync::MutexGuard<'static, Vec<(Arc<Shared>, Instant)>> {
    ENTRIES.lock().unwrap_or_else(|e| e.into_inner())
}

/// Keeps `shared` open for `linger` from now (a later close of it moves
/// the time on). Without a thread to close it later, nothing is kept.
pub(super) fn keep(shared: &Arc<Shared>, linger: Duration) {
    let me = std::process::id();
    if CLOSER_PID.swap(me, Ordering::AcqRel) != me {
        let spawned = std::thread::Builder::new()
            .name("chatstore-lmdb-linger".into())
            .spawn(close_expired);
        if spawned.is_err() {
            CLOSER_PID.store(0, Ordering::Release);
            return;
        }
    }
    let until = Instant::now() + linger;
    {
        let mut e = entries();
        match e.iter_mut().find(|(s, _)| Arc::ptr_eq(s, shared)) {
            Some(entry) => entry.1 = until,
            None => e.push((Arc::clone(shared), until)),
        }
    }
    WAKE.notify_one();
}

/// Stops keeping the environments `which` selects (closed once no handle
/// uses them).
pub(super) fn release(which: impl Fn(&Arc<Shared>) -> bool) {
    let gone: Vec<_> = {
        let mut e = entries();
        let (gone, kept) = std::mem::take(&mut *e)
            .into_iter()
            .partition(|(s, _)| which(s));
        *e = kept;
        gone
    };
    drop_entries(gone);
}

/// Drops entries outside the lock: closing an environment takes a while.
fn drop_entries(gone: Vec<(Arc<Shared>, Instant)>) {
    let me = std::process::id();
    for (s, _) in gone {
        if s.pid != me {
            std::mem::forget(s);
        }
    }
}

/// The closing thread: closes each entry once its time passed.
fn close_expired() {
    let me = std::process::id();
    let mut e = entries();
    loop {
        let now = Instant::now();
        let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut *e)
            .into_iter()
            .partition(|(s, until)| *until <= now || s.pid != me);
        *e = kept;
        if !gone.is_empty() {
            drop(e);
            drop_entries(gone);
            e = entries();
            continue;
        }
        let next = e.iter().map(|(_, until)| *until).min();
        e = match next {
            Some(until) => {
                WAKE.wait_timeout(e, until.saturating_duration_since(now))
                    .unwrap_or_else(|p| p.into_inner())
                    .0
            }
            None => WAKE.wait(e).unwrap_or_else(|p| p.into_inner()),
        };
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::sync::Weak;

    use super::super::{LmdbKv, Shared};
    use crate::options::Options;
    use crate::storage::{Backend, Kv as _, Space};

    fn open(path: &Path, linger_ms: u64) -> LmdbKv {
        let options = Options {
            backend: Backend::Lmdb,
            map_size: 64 << 20,
            linger_ms,
            ..Options::default()
        };
        std::fs::create_dir_all(path).unwrap();
        LmdbKv::open(path, &options).unwrap()
    }

    fn put(kv: &LmdbKv, key: &[u8]) {
        let mut w = kv.write(1_000).unwrap();
        w.put(Space::Data, key, b"1").unwrap();
        w.commit().unwrap();
    }

    /// Waits (at most 10 s, no timing asserted) for `env` to close.
    fn closes(env: &Weak<Shared>) -> bool {
        for _ in 0..1_000 {
            if env.upgrade().is_none() {
                return true;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        false
    }

    #[test]
    fn a_closed_environment_lingers_is_found_again_then_closes() {
        let dir = tempfile::tempdir().unwrap();
        let kv = open(dir.path(), 200);
        put(&kv, b"a");
        let env = std::sync::Arc::downgrade(&kv.shared);
        drop(kv);
        assert!(env.upgrade().is_some(), "closed at once despite the linger");
        let again = open(dir.path(), 200);
        assert!(std::ptr::eq(
            env.as_ptr(),
            std::sync::Arc::as_ptr(&again.shared)
        ));
        assert!(again
            .read()
            .unwrap()
            .get(Space::Data, b"a")
            .unwrap()
            .is_some());
        drop(again);
        assert!(closes(&env), "the linger never ended");
    }

    #[test]
    fn without_a_linger_the_environment_closes_with_its_last_handle() {
        let dir = tempfile::tempdir().unwrap();
        let kv = open(dir.path(), 0);
        let env = std::sync::Arc::downgrade(&kv.shared);
        drop(kv);
        assert!(env.upgrade().is_none());
    }

    /// A store removed and made anew at the same path within the linger is
    /// the new store, not the lingering environment's.
    #[test]
    fn a_store_replaced_at_its_path_is_opened_anew() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("store");
        let kv = open(&p, 60_000);
        put(&kv, b"old");
        let env = std::sync::Arc::downgrade(&kv.shared);
        drop(kv);
        std::fs::remove_dir_all(&p).unwrap();
        let kv = open(&p, 60_000);
        assert!(!std::ptr::eq(
            env.as_ptr(),
            std::sync::Arc::as_ptr(&kv.shared)
        ));
        assert!(kv
            .read()
            .unwrap()
            .get(Space::Data, b"old")
            .unwrap()
            .is_none());
        put(&kv, b"new");
        drop(kv);
        assert!(closes(&env), "the replaced store's environment stayed open");
        let kv = open(&p, 0);
        assert!(kv
            .read()
            .unwrap()
            .get(Space::Data, b"new")
            .unwrap()
            .is_some());
        super::release(|s| {
            std::ptr::eq(
                std::sync::Arc::as_ptr(s),
                std::sync::Arc::as_ptr(&kv.shared),
            )
        });
    }

    /// A compaction's environment maps the old file: it is not kept, and
    /// the next open maps the compacted one.
    #[test]
    fn a_compacted_store_is_not_served_from_the_old_environment() {
        let dir = tempfile::tempdir().unwrap();
        let kv = open(dir.path(), 60_000);
        put(&kv, b"a");
        let env = std::sync::Arc::downgrade(&kv.shared);
        drop(kv);
        let kv = open(dir.path(), 60_000);
        kv.compact().unwrap();
        drop(kv);
        assert!(
            env.upgrade().is_none(),
            "the compacted environment was kept"
        );
        let kv = open(dir.path(), 0);
        assert!(kv.read().unwrap().get(Space::Data, b"a").unwrap().is_some());
    }
}
