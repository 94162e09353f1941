//! Concurrency: writer, deleter and reader threads on one store, with
//! `check()` run at every pause between phases and at the end; a second open
//! of a held store is refused with `Locked`; closing while other threads
//! still query is safe.
#![allow(clippy::unwrap_used)] // a failed unwrap here is a failed test or run

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};

use chatstore::{
    Agent, Error, ErrorKind, HistoryQuery, Member, Message, Options, Order, Sender, Session, Store,
};

const TENANTS: [u64; 2] = [1, 2];
const MEMBERS: u64 = 20;
const SESSIONS: u64 = 40;

fn seed(store: &Store) {
    for t in TENANTS {
        store
            .upsert_agent(&Agent {
                tenant: t,
                id: 1,
                nickname: "客服".into(),
                ..Default::default()
            })
            .unwrap();
        for uid in 1..=MEMBERS {
            store
                .upsert_member(&Member {
                    tenant: t,
                    uid,
                    nickname: format!("李小龙{uid}"),
                    mobile: format!("+84 916 {uid:06}"),
                    ..Default::default()
                })
                .unwrap();
        }
        for sid in 1..=SESSIONS {
            session(store, t, sid);
        }
    }
}

fn session(store: &Store, tenant: u64, id: u64) {
    store
        .upsert_session(&Session {
            tenant,
            id,
            uid: 1 + id % MEMBERS,
            agent_id: id % 2,
            ..Default::default()
        })
        .unwrap();
}

/// A read may miss a session deleted under it (NotFound); nothing else.
fn tolerate<T>(r: chatstore::Result<T>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) if e.kind() == ErrorKind::NotFound => None,
        Err(e) => panic!("read failed under concurrency: {e}"),
    }
}

fn read_once(store: &Store, t: u64, i: u64) {
    let mut q = HistoryQuery::new(t);
    q.order = if i.is_multiple_of(2) {
        Order::Id
    } else {
        Order::Recent
    };
    q.employee = i.is_multiple_of(3).then_some(1);
    q.user_name = i.is_multiple_of(5).then(|| "小龙1".to_string());
    q.page = 1 + i % 3;
    if let Some(page) = tolerate(store.history_list(&q)) {
        assert!(page.rows.len() <= 10);
        for r in &page.rows {
            assert_eq!(r.session.tenant, t, "a row of another tenant");
            if let Some(a) = q.employee {
                assert_eq!(r.session.agent_id, a);
            }
            if let Some(m) = &r.member {
                assert_eq!(m.tenant, t);
            }
        }
        let keys: Vec<(i64, u64)> = page
            .rows
            .iter()
            .map(|r| match q.order {
                Order::Id => (0, r.session.id),
                Order::Recent => (r.activity_at, r.session.id),
            })
            .collect();
        // No session twice on a page, in either order (a sled scan is not a
        // snapshot: a session re-created while a page's scan ran was met at
        // its old and its new activity entry).
        let mut ids: Vec<u64> = page.rows.iter().map(|r| r.session.id).collect();
        ids.sort_unstable();
        assert!(
            ids.windows(2).all(|w| w[0] != w[1]),
            "a session twice on a page: {ids:?} for {q:?}"
        );
        // A row's activity may move between the index read and the row read,
        // so only the id order is exact under concurrent appends.
        if q.order == Order::Id {
            assert!(
                keys.windows(2).all(|w| w[0] > w[1]),
                "rows out of order: {keys:?} for {q:?}"
            );
        }
    }
    if let Some(p) = tolerate(store.messages(t, 1 + i % SESSIONS, 1, 20)) {
        assert!(p
            .messages
            .iter()
            .all(|m| m.tenant == t && m.session_id == 1 + i % SESSIONS));
        assert!(p.messages.windows(2).all(|w| w[0].id > w[1].id));
    }
    if let Some(found) = tolerate(store.search_members(t, "916")) {
        assert!(found.iter().all(|m| m.tenant == t));
    }
}

/// Runs a worker's phases: `step(phase)`, then the two barrier waits of the
/// pause in which the main thread checks the store. A panic in a step is
/// recorded for the main thread to report, and the worker keeps meeting
/// the barrier, so a failing worker fails the test instead of leaving the
/// others waiting for it forever.
fn phases(barrier: &Barrier, failures: &Mutex<Vec<String>>, count: u64, mut step: impl FnMut(u64)) {
    for phase in 0..count {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(phase)));
        if let Err(p) = run {
            let msg = chatstore::panic_message(p.as_ref());
            eprintln!("worker failed in phase {phase}: {msg}");
            failures.lock().unwrap().push(msg);
        }
        barrier.wait(); // pause: main checks
        barrier.wait(); // resume
    }
}

#[test]
fn readers_writers_and_deleters_keep_every_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), Options::default()).unwrap());
    seed(&store);
    const PHASES: u64 = 3;
    const STEPS: u64 = 150;
    // 2 writers + 1 deleter + 2 readers + this thread.
    let barrier = Arc::new(Barrier::new(6));
    let failures = Arc::new(Mutex::new(Vec::new()));
    let appended = Arc::new(AtomicU64::new(0));
    let mut handles = Vec::new();
    for w in 0..2u64 {
        let (store, barrier, failures, appended) = (
            store.clone(),
            barrier.clone(),
            failures.clone(),
            appended.clone(),
        );
        handles.push(std::thread::spawn(move || {
            phases(&barrier, &failures, PHASES, |phase| {
                for i in 0..STEPS {
                    let t = TENANTS[(i % 2) as usize];
                    let sid = 1 + (i * 7 + w) % SESSIONS;
                    let m = Message {
                        tenant: t,
                        session_id: sid,
                        sender: Sender::Member,
                        content: format!("w{w} p{phase} i{i}"),
                        time: 1_700_000_000 + (phase * STEPS + i) as i64,
                        ..Default::default()
                    };
                    match store.append_message(&m) {
                        Ok(_) => {
                            appended.fetch_add(1, Ordering::Relaxed);
                        }
                        // The deleter removed the session: a clear refusal.
                        Err(Error::NotFound { .. }) => {}
                        Err(e) => panic!("append: {e}"),
                    }
                }
            })
        }));
    }
    {
        let (store, barrier, failures) = (store.clone(), barrier.clone(), failures.clone());
        handles.push(std::thread::spawn(move || {
            phases(&barrier, &failures, PHASES, |_| {
                for i in 0..STEPS / 5 {
                    let t = TENANTS[(i % 2) as usize];
                    let sid = 1 + (i * 11) % SESSIONS;
                    match store.delete_session(t, sid) {
                        Ok(()) | Err(Error::NotFound { .. }) => {}
                        Err(e) => panic!("delete: {e}"),
                    }
                    session(&store, t, sid);
                }
            })
        }));
    }
    for r in 0..2u64 {
        let (store, barrier, failures) = (store.clone(), barrier.clone(), failures.clone());
        handles.push(std::thread::spawn(move || {
            phases(&barrier, &failures, PHASES, |_| {
                for i in 0..STEPS {
                    read_once(&store, TENANTS[((i + r) % 2) as usize], i);
                }
            })
        }));
    }
    for phase in 0..PHASES {
        barrier.wait();
        let failed = failures.lock().unwrap().clone();
        if !failed.is_empty() {
            barrier.wait();
            panic!("phase {phase}: {failed:?}");
        }
        let report = store.check().unwrap();
        assert!(report.ok, "phase {phase}: {:?}", report.violations);
        let stats: u64 = TENANTS
            .iter()
            .map(|t| store.tenant_stats(*t).unwrap().sessions)
            .sum();
        assert_eq!(stats, 2 * SESSIONS, "every deleted session was re-created");
        barrier.wait();
    }
    for h in handles {
        h.join().unwrap();
    }
    assert!(failures.lock().unwrap().is_empty());
    assert!(appended.load(Ordering::Relaxed) > 0);
    let report = store.check().unwrap();
    assert!(report.ok, "{:?}", report.violations);
}

#[test]
fn handles_in_one_process_share_the_store() {
    let dir = tempfile::tempdir().unwrap();
    let first = Store::open(dir.path(), Options::default()).unwrap();
    let second = Store::open(dir.path(), Options::default()).unwrap();
    assert!(first.is_owner() && second.is_owner());
    seed(&first);
    assert_eq!(second.tenant_stats(1).unwrap().sessions, SESSIONS);
    // Closing one handle leaves the other working.
    first.close().unwrap();
    assert!(matches!(first.tenant_stats(1), Err(Error::Closed)));
    assert!(second.check().unwrap().ok);
    drop(second);
    drop(first);
    let again = Store::open(dir.path(), Options::default()).unwrap();
    assert_eq!(again.tenant_stats(1).unwrap().sessions, SESSIONS);
}

#[test]
fn a_lock_nobody_serves_is_reported_after_the_attach_timeout() {
    let dir = tempfile::tempdir().unwrap();
    // sled itself holding the store: locked, and no owner answers.
    let raw = sled::open(dir.path()).unwrap();
    let o = Options {
        attach_timeout_ms: 200,
        ..Options::default()
    };
    match Store::open(dir.path(), o) {
        Err(Error::Locked { path, .. }) => assert_eq!(path, dir.path()),
        other => panic!("expected Locked, got {other:?}"),
    }
    drop(raw);
}

#[test]
fn closing_while_other_threads_query_is_safe() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path(), Options::default()).unwrap());
    seed(&store);
    let stop = Arc::new(AtomicBool::new(false));
    let closed_seen = Arc::new(AtomicU64::new(0));
    let handles: Vec<_> = (0..3u64)
        .map(|n| {
            let (store, stop, closed_seen) = (store.clone(), stop.clone(), closed_seen.clone());
            std::thread::spawn(move || {
                let mut i = 0;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let r = if n == 0 {
                        store
                            .append_message(&Message {
                                tenant: 1,
                                session_id: 1 + i % SESSIONS,
                                content: "x".into(),
                                time: 1_700_000_000,
                                ..Default::default()
                            })
                            .map(|_| ())
                    } else {
                        store.history_list(&HistoryQuery::new(1)).map(|_| ())
                    };
                    match r {
                        Ok(()) => {}
                        Err(Error::Closed) => {
                            closed_seen.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Err(e) => panic!("after close: {e}"),
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(std::time::Duration::from_millis(100));
    store.close().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(50));
    stop.store(true, Ordering::Relaxed);
    for h in handles {
        h.join().expect("no thread panicked across close");
    }
    assert_eq!(
        closed_seen.load(Ordering::Relaxed),
        3,
        "every thread saw Closed"
    );
    drop(store);
    let again = Store::open(dir.path(), Options::default()).unwrap();
    assert!(again.check().unwrap().ok);
}
