//! Many processes, one store (ARCHITECTURE.md, "Many processes").
//!
//! Worker processes (this test binary, re-run with `CHATSTORE_PROC_CHILD`
//! set) each make `REQUESTS` requests, opening and closing the store for
//! every one as a PHP-FPM worker does: a mix of appends (each with a content
//! naming worker and request), upserts and reads. Each logs a write only
//! after it was acknowledged. Midway the harness kills whichever process
//! owns the store with SIGKILL; another takes over without anyone acting.
//! At the end: `check()` passes, every acknowledged append is in the store
//! exactly once, and no append is there twice (a retried write applies once).
#![allow(clippy::unwrap_used)] // a failed unwrap here is a failed test or run

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use chatstore::{HistoryQuery, Member, Message, Options, Session, Store};

/// Held while a test forks a child, and while one checks that a dropped
/// listener refuses connections: a child between fork and exec still holds
/// its parent's sockets, so the listener would answer for a moment.
static FORKS: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn forks() -> std::sync::MutexGuard<'static, ()> {
    FORKS.lock().unwrap_or_else(|e| e.into_inner())
}

const WORKERS: usize = 4;
const REQUESTS: usize = 60;

fn options() -> Options {
    Options {
        // Owners stop serving soon after their last request, so ownership
        // also moves by release, not only by the kill.
        linger_ms: 300,
        ..Options::default()
    }
}

fn seed(dir: &Path) {
    let store = Store::open(
        dir,
        Options {
            linger_ms: 0,
            ..Options::default()
        },
    )
    .unwrap();
    for t in 1..=2u64 {
        store
            .upsert_member(&Member {
                tenant: t,
                uid: 1,
                nickname: "李小龙".into(),
                mobile: "+86 185 1669 0005".into(),
                ..Default::default()
            })
            .unwrap();
        for sid in 1..=4u64 {
            store
                .upsert_session(&Session {
                    tenant: t,
                    id: sid,
                    uid: 1,
                    ..Default::default()
                })
                .unwrap();
        }
    }
}

/// A worker: `REQUESTS` requests, each opening and closing the store.
#[test]
fn proc_child() {
    let Ok(spec) = std::env::var("CHATSTORE_PROC_CHILD") else {
        return; // a normal test run: nothing to do
    };
    let mut parts = spec.split('|');
    let (dir, log, worker) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap().parse::<usize>().unwrap(),
    );
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    for i in 0..REQUESTS {
        let store = Store::open(dir, options()).unwrap();
        if store.is_owner() {
            let at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            log.write_all(format!("owner {} {at}\n", std::process::id()).as_bytes())
                .unwrap();
        }
        let t = 1 + (i as u64 % 2);
        match i % 4 {
            0 | 1 => {
                let content = format!("w{worker}-{i}");
                let id = store
                    .append_message(&Message {
                        tenant: t,
                        session_id: 1 + (i as u64 % 4),
                        content: content.clone(),
                        time: 1_700_000_000 + i as i64,
                        ..Default::default()
                    })
                    .unwrap();
                let via = if store.is_owner() { "owner" } else { "socket" };
                log.write_all(format!("ack {t} {content} {id} {via}\n").as_bytes())
                    .unwrap();
            }
            2 => {
                store
                    .upsert_member(&Member {
                        tenant: t,
                        uid: 100 + worker as u64,
                        nickname: format!("worker {worker} at {i}"),
                        ..Default::default()
                    })
                    .unwrap();
            }
            _ => {
                let mut q = HistoryQuery::new(t);
                q.user_name = Some("小龙".into());
                let page = store.history_list(&q).unwrap();
                assert_eq!(page.total, 4, "tenant {t}");
                assert!(page.rows.iter().all(|r| r.session.tenant == t));
            }
        }
        store.close().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn spawn(dir: &Path, log: &Path, worker: usize) -> std::process::Child {
    let _forks = forks();
    Command::new(std::env::current_exe().unwrap())
        .args(["proc_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(
            "CHATSTORE_PROC_CHILD",
            format!("{}|{}|{worker}", dir.display(), log.display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

fn read(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

/// Starts this test binary as its child test `name` (which does nothing
/// unless `var` is set), with `var` set to `spec` and the `extra`
/// variables, under the fork lock; its output is dropped.
fn child(name: &str, var: &str, spec: String, extra: &[(&str, &str)]) -> std::process::Child {
    let _forking = forks();
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", name, "--nocapture"])
        .env(var, spec)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in extra {
        cmd.env(k, v);
    }
    cmd.spawn().unwrap()
}

/// Waits (at most a minute) until a child's log reads `want`.
fn wait_for(log: &Path, want: &str) {
    let started = Instant::now();
    while read(log) != want {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no {want:?} from the child"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn workers_opening_per_request_survive_the_owner_being_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    seed(&dir);
    let logs: Vec<_> = (0..WORKERS)
        .map(|w| tmp.path().join(format!("log-{w}")))
        .collect();
    let mut children: Vec<_> = (0..WORKERS).map(|w| spawn(&dir, &logs[w], w)).collect();

    // Once a third of the work is acknowledged, kill the owner of the moment.
    let deadline = Instant::now() + Duration::from_secs(120);
    let acked = |logs: &[std::path::PathBuf]| -> usize {
        logs.iter()
            .map(|l| read(l).lines().filter(|x| x.starts_with("ack")).count())
            .sum()
    };
    while acked(&logs) < WORKERS * REQUESTS / 6 {
        assert!(Instant::now() < deadline, "workers made no progress");
        std::thread::sleep(Duration::from_millis(10));
    }
    // (pid, when) of every "owner" line.
    let owner_lines = |logs: &[std::path::PathBuf]| -> Vec<(u32, u128)> {
        logs.iter()
            .flat_map(|l| {
                read(l)
                    .lines()
                    .filter_map(|x| {
                        let mut f = x.strip_prefix("owner ")?.split(' ');
                        Some((f.next()?.parse().ok()?, f.next()?.parse().ok()?))
                    })
                    .collect::<Vec<_>>()
            })
            .collect()
    };
    let latest = owner_lines(&logs).into_iter().max_by_key(|o| o.1);
    let (pid, _) = latest.expect("some worker owns the store");
    let killed = children.iter().position(|c| c.id() == pid).unwrap();
    children[killed].kill().unwrap(); // SIGKILL
    let mut survivors = 0;
    for (w, c) in children.iter_mut().enumerate() {
        let status = c.wait().unwrap();
        if w != killed {
            assert!(status.success(), "worker {w}: {status}");
            survivors += 1;
        }
    }
    assert_eq!(survivors, WORKERS - 1);

    let store = Store::open(&dir, options()).unwrap();
    let report = store.check().unwrap();
    assert!(report.ok, "{:?}", report.violations);
    // Every append in the store, by content.
    let mut seen: HashMap<String, u64> = HashMap::new();
    for t in 1..=2u64 {
        for sid in 1..=4u64 {
            for m in store.messages(t, sid, 1, 100).unwrap().messages {
                *seen.entry(m.content).or_default() += 1;
            }
        }
    }
    assert!(
        seen.values().all(|&n| n == 1),
        "an append landed twice: {seen:?}"
    );
    let mut checked = 0;
    for (w, log) in logs.iter().enumerate() {
        for line in read(log).lines().filter(|x| x.starts_with("ack")) {
            // The killed owner's own writes were buffered in it (the store's
            // durability is Buffered): those may be lost. Writes it made as a
            // client were acknowledged durable by the owner of the time.
            if w == killed && line.ends_with(" owner") {
                continue;
            }
            let content = line.split(' ').nth(2).unwrap();
            assert_eq!(
                seen.get(content),
                Some(&1),
                "acknowledged {content} lost: {line} (worker {w}, killed {killed})"
            );
            checked += 1;
        }
    }
    assert!(
        checked >= (WORKERS - 1) * REQUESTS / 2 - 1,
        "{checked} acknowledged appends"
    );
    // Ownership moved: more than one process owned the store.
    let owners: std::collections::HashSet<u32> =
        owner_lines(&logs).into_iter().map(|o| o.0).collect();
    assert!(owners.len() >= 2, "owners: {owners:?}");
}

/// A socket left by a dead owner (nobody listening) is replaced by the next
/// owner; the socket is private to the store's owner (mode 0600); another
/// process reaches the new owner through it.
#[test]
fn a_stale_socket_is_replaced_and_the_socket_is_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("store");
    std::fs::create_dir(&dir).unwrap();
    let socket = dir.join(chatstore::SOCKET_NAME);
    {
        let _forks = forks();
        drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
        assert!(
            std::os::unix::net::UnixStream::connect(&socket).is_err(),
            "stale"
        );
    }
    // The owner's socket is sled's (an LMDB store has none).
    let sled = Options {
        backend: chatstore::Backend::Sled,
        ..options()
    };
    let store = Store::open(&dir, sled).unwrap();
    assert!(store.is_owner());
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "socket mode {mode:o}");
    store
        .upsert_member(&Member {
            tenant: 3,
            uid: 5,
            nickname: "qua ổ cắm".into(),
            ..Default::default()
        })
        .unwrap();
    // A worker in another process finds the member through the new socket.
    let log = tmp.path().join("log");
    let _forking = forks();
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["probe_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(
            "CHATSTORE_PROBE_CHILD",
            format!("{}|{}", dir.display(), log.display()),
        )
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(read(&log).trim(), "client 5");
}

/// The other process of the test above: opens the store and reports.
#[test]
fn probe_child() {
    let Ok(spec) = std::env::var("CHATSTORE_PROBE_CHILD") else {
        return;
    };
    let (dir, log) = spec.split_once('|').unwrap();
    let store = Store::open(dir, options()).unwrap();
    let role = if store.is_owner() { "owner" } else { "client" };
    let uids: Vec<u64> = store
        .search_members(3, "o cam")
        .unwrap()
        .iter()
        .map(|m| m.uid)
        .collect();
    std::fs::write(log, format!("{role} {}", uids[0])).unwrap();
}

/// A child's body: opens the sled store of `spec` (`DIR|LOG`) with a long
/// linger, so this process owns and serves it, writes `note` to the log,
/// and holds the store until killed (a minute at most).
fn own_a_sled_store(spec: String, note: &str) {
    let (dir, log) = spec.split_once('|').unwrap();
    let store = Store::open(
        dir,
        Options {
            backend: chatstore::Backend::Sled,
            linger_ms: 60_000,
            ..Options::default()
        },
    )
    .unwrap();
    assert!(store.is_owner());
    std::fs::write(log, note).unwrap();
    std::thread::sleep(Duration::from_secs(60));
}

/// The owner of the test below: opens a sled store (so it serves it),
/// says so in the log, and holds it until killed.
#[test]
fn hold_child() {
    let Ok(spec) = std::env::var("CHATSTORE_HOLD_CHILD") else {
        return;
    };
    own_a_sled_store(spec, &format!("{}", std::process::id()));
}

/// A stopped owner (SIGSTOP, Ctrl-Z on a `chatstore import`) makes another
/// process's query and open fail within their deadline, naming its
/// process, where they used to hang (issue 18, item 2).
#[test]
fn a_stopped_owner_is_named_instead_of_waited_for() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store");
    let log = dir.path().join("hold.log");
    let forking = forks();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "hold_child", "--nocapture"])
        .env(
            "CHATSTORE_HOLD_CHILD",
            format!("{}|{}", db.display(), log.display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    drop(forking);
    let started = Instant::now();
    let pid = loop {
        if let Ok(p) = std::fs::read_to_string(&log) {
            if !p.is_empty() {
                break p;
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the owner did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let client_options = Options {
        attach_timeout_ms: 500,
        ..Options::default()
    };
    let client = Store::open(&db, client_options.clone()).unwrap();
    assert!(!client.is_owner());
    assert_eq!(client.history_list(&HistoryQuery::new(1)).unwrap().total, 0);
    let signal = |sig: &str| {
        assert!(Command::new("kill")
            .args([sig, &pid])
            .status()
            .unwrap()
            .success());
    };
    signal("-STOP");
    // The signal is delivered asynchronously: wait until the owner is
    // stopped (what the client's check reads too) before asking it.
    let stopped = Instant::now();
    while !std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .unwrap()
        .rsplit_once(')')
        .is_some_and(|(_, rest)| rest.trim_start().starts_with('T'))
    {
        assert!(stopped.elapsed() < Duration::from_secs(10), "never stopped");
        std::thread::sleep(Duration::from_millis(5));
    }
    let t = Instant::now();
    let e = client.history_list(&HistoryQuery::new(1)).unwrap_err();
    assert!(
        e.to_string().contains("stopped") && e.to_string().contains(&pid),
        "{e}"
    );
    let e = Store::open(&db, client_options).unwrap_err();
    assert!(
        e.to_string().contains("stopped") && e.to_string().contains(&pid),
        "{e}"
    );
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    signal("-CONT");
    let _ = child.kill();
    let _ = child.wait();
}

/// The owner of the test below: opens a sled store with no linger (as the
/// command line does), says so in the log, and when told to, closes it and
/// exits while another process's import is in progress.
#[test]
fn retire_child() {
    let Ok(spec) = std::env::var("CHATSTORE_RETIRE_CHILD") else {
        return;
    };
    let (dir, log) = spec.split_once('|').unwrap();
    let store = Store::open(
        dir,
        Options {
            backend: chatstore::Backend::Sled,
            linger_ms: 0,
            attach_timeout_ms: 120_000,
            ..Options::default()
        },
    )
    .unwrap();
    assert!(store.is_owner());
    std::fs::write(log, "owner").unwrap();
    let go = Path::new(dir).with_extension("go");
    let started = Instant::now();
    while !go.exists() {
        assert!(started.elapsed() < Duration::from_secs(120), "never told");
        std::thread::sleep(Duration::from_millis(5));
    }
    store.close().unwrap();
    std::fs::write(log, "retired").unwrap();
}

/// A process that owns a store and exits (a `chatstore` command whose own
/// work is done) answers the request another process is waiting for before
/// it lets go, instead of cutting it off: the client is answered by it, not
/// by itself after losing the connection and taking the store over. Owners
/// used to exit under their clients' requests, which a slow (debug) build
/// with several short-lived processes turned into "kept going away" errors
/// (issue 18, item 14).
#[test]
fn an_exiting_owner_answers_the_request_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store");
    let log = dir.path().join("retire.log");
    let mut child = child(
        "retire_child",
        "CHATSTORE_RETIRE_CHILD",
        format!("{}|{}", db.display(), log.display()),
        &[],
    );
    wait_for(&log, "owner");
    let client = Store::open(&db, Options::default()).unwrap();
    assert!(!client.is_owner());
    // An import long enough that the owner is told to exit while it runs.
    let mut jsonl = String::from(
        "{\"kind\":\"member\",\"tenant\":1,\"uid\":1,\"nickname\":\"n\"}\n\
         {\"kind\":\"session\",\"tenant\":1,\"id\":1,\"uid\":1}\n",
    );
    const MESSAGES: u64 = 20_000;
    for id in 1..=MESSAGES {
        jsonl.push_str(&format!(
            "{{\"kind\":\"message\",\"tenant\":1,\"session_id\":1,\"id\":{id},\
             \"content\":\"message number {id} about order {}\",\"time\":{}}}\n",
            id * 7919,
            1_700_000_000 + id
        ));
    }
    let go = db.with_extension("go");
    let summary = std::thread::scope(|s| {
        let import = s.spawn(|| client.import_jsonl(jsonl.as_bytes(), |_| {}));
        std::thread::sleep(Duration::from_millis(300));
        std::fs::write(&go, "").unwrap();
        import.join().unwrap()
    })
    .unwrap();
    assert_eq!(summary.messages, MESSAGES);
    // Answered by the exiting owner: no connection was lost, so this
    // process did not take the store over to finish the import itself.
    assert!(!client.is_owner());
    assert!(child.wait().unwrap().success());
    assert_eq!(read(&log), "retired");
    // The next call finds the owner gone and takes the store over.
    let page = client.history_list(&HistoryQuery::new(1)).unwrap();
    assert_eq!(page.total, 1);
    assert!(client.is_owner());
    let messages = client.messages(1, 1, 1, 1).unwrap();
    assert_eq!(messages.total, MESSAGES);
}

/// The owner of the test below: opens a sled store with the fault hook set
/// (it exits after applying an import chunk, before answering), says so in
/// the log, and waits.
#[test]
fn faulty_owner_child() {
    let Ok(spec) = std::env::var("CHATSTORE_FAULTY_OWNER_CHILD") else {
        return;
    };
    own_a_sled_store(spec, "owner");
}

/// Exactly once across an owner's death (issue 21): records without ids,
/// imported through another process whose owner applies the chunk and dies
/// before answering, land once. The client resends the chunk with its id
/// to the next owner (itself), which skips the lines already applied. A
/// chunk used to carry no id, and every record of it was stored twice.
#[test]
fn an_import_chunk_resent_after_the_owner_died_lands_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store");
    let log = dir.path().join("owner.log");
    let mut child = child(
        "faulty_owner_child",
        "CHATSTORE_FAULTY_OWNER_CHILD",
        format!("{}|{}", db.display(), log.display()),
        &[("CHATSTORE_FAULT_EXIT_AFTER_IMPORT", "1")],
    );
    wait_for(&log, "owner");
    let client = Store::open(&db, Options::default()).unwrap();
    assert!(!client.is_owner());
    client
        .upsert_member(&Member {
            tenant: 1,
            uid: 1,
            nickname: "n".into(),
            ..Default::default()
        })
        .unwrap();
    let sid = client
        .upsert_session(&Session {
            tenant: 1,
            uid: 1,
            ..Default::default()
        })
        .unwrap();
    // Sessions and messages without ids: each application stores them anew.
    const LINES: u64 = 300;
    let mut jsonl = String::new();
    for i in 0..LINES {
        jsonl.push_str(&format!(
            "{{\"kind\":\"message\",\"tenant\":1,\"session_id\":{sid},\"content\":\"line {i}\",\"time\":{}}}\n",
            1_700_000_000 + i
        ));
    }
    jsonl.push_str("{\"kind\":\"session\",\"tenant\":1,\"uid\":1}\n");
    let summary = client.import_jsonl(jsonl.as_bytes(), |_| {}).unwrap();
    // The owner applied the chunk and died without answering.
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(3), "the fault hook did not fire");
    assert!(client.is_owner(), "the client took the store over");
    assert_eq!((summary.messages, summary.sessions), (LINES, 1));
    let stats = client.tenant_stats(1).unwrap();
    assert_eq!(
        (stats.messages, stats.sessions),
        (LINES, 2),
        "stored twice?"
    );
    let mut seen = std::collections::HashSet::new();
    for r in client.export_records().unwrap() {
        if let chatstore::Record::Message(m) = r.unwrap() {
            assert!(seen.insert(m.content.clone()), "{} twice", m.content);
        }
    }
    assert_eq!(seen.len() as u64, LINES);
    assert!(client.check().unwrap().ok);
}

/// The importer of the test below: imports a file of id-less messages
/// into an LMDB store (every process writes it itself) until killed.
#[test]
fn importer_child() {
    let Ok(spec) = std::env::var("CHATSTORE_IMPORTER_CHILD") else {
        return;
    };
    let (dir, file) = spec.split_once('|').unwrap();
    let store = Store::open(
        dir,
        Options {
            backend: chatstore::Backend::Lmdb,
            ..Options::default()
        },
    )
    .unwrap();
    store.import_file(file).unwrap();
}

/// On a backend where every process writes the store itself (LMDB), an
/// importer killed part-way leaves a prefix of its file, each record once:
/// every batch is one transaction, committed in file order (issue 21).
#[test]
fn a_killed_importer_leaves_a_prefix_never_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("store");
    let options = Options {
        backend: chatstore::Backend::Lmdb,
        ..Options::default()
    };
    let store = Store::open(&db, options.clone()).unwrap();
    store
        .upsert_member(&Member {
            tenant: 1,
            uid: 1,
            nickname: "n".into(),
            ..Default::default()
        })
        .unwrap();
    let sid = store
        .upsert_session(&Session {
            tenant: 1,
            uid: 1,
            ..Default::default()
        })
        .unwrap();
    const LINES: u64 = 60_000;
    let file = dir.path().join("messages.jsonl");
    let mut text = String::new();
    for i in 0..LINES {
        text.push_str(&format!(
            "{{\"kind\":\"message\",\"tenant\":1,\"session_id\":{sid},\"content\":\"line {i}\",\"time\":{i}}}\n"
        ));
    }
    std::fs::write(&file, text).unwrap();
    let mut child = child(
        "importer_child",
        "CHATSTORE_IMPORTER_CHILD",
        format!("{}|{}", db.display(), file.display()),
        &[],
    );
    // Kill it once some batches are in, before it is done.
    let started = Instant::now();
    loop {
        let n = store.tenant_stats(1).unwrap().messages;
        if n > 0 {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "nothing imported"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let stored = store.tenant_stats(1).unwrap().messages;
    assert!(stored > 0 && stored <= LINES, "{stored}");
    let mut contents: Vec<u64> = Vec::new();
    for r in store.export_records().unwrap() {
        if let chatstore::Record::Message(m) = r.unwrap() {
            contents.push(m.content.trim_start_matches("line ").parse().unwrap());
        }
    }
    contents.sort_unstable();
    let prefix: Vec<u64> = (0..stored).collect();
    assert_eq!(contents, prefix, "not a prefix of the file, each line once");
    assert!(store.check().unwrap().ok);
}
