//! The cost of reaching a store another process owns (ARCHITECTURE.md,
//! "Many processes"): history-list page 1 through the owner's socket against
//! the same call in the owning process, and the whole per-request cycle of a
//! PHP-FPM worker (open, page 1, close) against the owner.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use chatstore::{HistoryQuery, HistoryRequest, Store};
use serde_json::{json, Value};

use crate::data::{Queries, TENANT};
use crate::engines::chat_options;
use crate::measure;

/// The child that owns the store: opens it, says so, holds it until its
/// standard input closes.
pub(crate) fn own(dir: &Path) {
    let store = Store::open(dir.join("chatstore.db"), chat_options(false)).unwrap();
    // (Every process opens an LMDB store itself: all of them "own" it.)
    assert!(store.is_owner(), "the owner child must own the store");
    println!("ready");
    std::io::stdout().flush().unwrap();
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {}
    drop(store);
}

fn page1(q: &Queries) -> HistoryRequest {
    let mut query = HistoryQuery::new(TENANT);
    query.employee = Some(q.agent);
    HistoryRequest {
        query,
        page_url: "/h".into(),
    }
}

/// Measures page 1 across processes and in process; returns the JSON row.
pub(crate) fn measure(exe: &Path, dir: &Path, q: &Queries, iterations: usize) -> Value {
    let req = page1(q);
    let db = dir.join("chatstore.db");
    let mut owner = Command::new(exe)
        .args(["--engine", "owner", "--workdir"])
        .arg(dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(owner.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let client = Store::open(&db, chat_options(false)).unwrap();
    // On LMDB this process opens the store itself beside the other one (no
    // owner, no socket); on sled it is the owner's client.
    let direct = client.info().unwrap().backend == chatstore::Backend::Lmdb;
    assert!(
        direct || !client.is_owner(),
        "the measuring process must be a client"
    );
    let want = client.history_list_text(&req).unwrap();
    let remote = measure::time(iterations, || {
        std::hint::black_box(client.history_list_text(&req).unwrap());
    });
    drop(client);
    let per_request = measure::time(iterations, || {
        let s = Store::open(&db, chat_options(false)).unwrap();
        std::hint::black_box(s.history_list_text(&req).unwrap());
        s.close().unwrap();
    });
    drop(owner.stdin.take());
    assert!(owner.wait().unwrap().success());

    let local_store = Store::open(&db, chat_options(false)).unwrap();
    assert!(local_store.is_owner());
    assert_eq!(local_store.history_list_text(&req).unwrap(), want);
    let local = measure::time(iterations, || {
        std::hint::black_box(local_store.history_list_text(&req).unwrap());
    });
    let row = json!({
        "direct": direct,
        "history_list_page1_in_process_us": local.median,
        "history_list_page1_other_process_us": remote.median,
        "history_list_page1_other_process_p99_us": remote.p99,
        "overhead_us": remote.median - local.median,
        "open_page1_close_other_process_us": per_request.median,
        "open_page1_close_other_process_p99_us": per_request.p99,
    });
    println!(
        "cross-process ({}): page1 in process {:.1} us, beside another process {:.1} us (+{:.1} us); open+page1+close beside it {:.1} us",
        if direct { "lmdb, every process opens the store" } else { "sled, through the owner's socket" },
        local.median,
        remote.median,
        remote.median - local.median,
        per_request.median
    );
    row
}

/// A tenant of its own for [`write_until_killed`], so what it writes
/// changes nothing the engines' agreement check reads afterwards.
const KILLED_TENANT: u64 = 9;

/// Its session: an id no session of the dataset has (SQLite's append
/// updates the session by id alone).
const KILLED_SESSION: u64 = 9_999_999;

/// The child of [`open_after_kill`]'s message `i`.
fn killed_message(i: u64) -> chatstore::Message {
    chatstore::Message {
        tenant: KILLED_TENANT,
        ..crate::engines::new_message(KILLED_SESSION, 5_000_000 + i)
    }
}

/// The child of [`open_after_kill`]: appends to the engine's store until it
/// is killed, saying "ready" after its first append.
pub(crate) fn write_until_killed(dir: &Path, engine: &str) {
    let mut i = 0u64;
    let ready = |i: u64| {
        if i == 1 {
            println!("ready");
            std::io::stdout().flush().unwrap();
        }
    };
    if engine == "chatstore" {
        let store = Store::open(dir.join("chatstore.db"), chat_options(false)).unwrap();
        let (tenant, uid) = (KILLED_TENANT, 1);
        store
            .upsert_member(&chatstore::Member {
                tenant,
                uid,
                ..Default::default()
            })
            .unwrap();
        let sid = store
            .upsert_session(&chatstore::Session {
                tenant,
                id: KILLED_SESSION,
                uid,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(sid, KILLED_SESSION);
        loop {
            i += 1;
            store.append_message(&killed_message(i)).unwrap();
            ready(i);
        }
    } else {
        let c = crate::engines::sqlite_open(&dir.join("sqlite.db"));
        loop {
            i += 1;
            crate::engines::sqlite_append(&c, &killed_message(i));
            ready(i);
        }
    }
}

/// Kills (SIGKILL) a process writing to the engine's store 200 ms into its
/// writes; returns how long the next open takes (recovery included).
pub(crate) fn open_after_kill(exe: &Path, dir: &Path, engine: &str, open: impl FnOnce()) -> f64 {
    let mut child = Command::new(exe)
        .args(["--engine", &format!("writer-{engine}"), "--workdir"])
        .arg(dir)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    std::thread::sleep(std::time::Duration::from_millis(200));
    child.kill().unwrap();
    child.wait().unwrap();
    let t = std::time::Instant::now();
    open();
    t.elapsed().as_secs_f64() * 1e6
}
