//! Crash consistency under `kill -9`.
//!
//! A writer child process (this test binary, re-run with `CHATSTORE_CRASH_CHILD`
//! set) performs a random mix of upserts, appends and deletes. It logs each
//! operation to a side file *before* the call (`B <op>`) and its outcome only
//! *after* the call returned (`A ok|err <ms>`). The harness kills it with
//! SIGKILL at a random moment, reopens the store, runs `check()` and compares
//! the whole store (its export) with a reference store to which the
//! acknowledged operations were replayed:
//!
//! - `Durability::Sync`: every acknowledged write is present; the one write in
//!   flight is either wholly there or wholly absent.
//! - `Durability::Buffered`: the store equals the reference after *some*
//!   prefix of the operations (nothing half-applied, nothing out of order), and
//!   that prefix holds every write acknowledged more than the flush window
//!   (plus scheduling slack) before the kill on sled, and every acknowledged
//!   write on LMDB (a commit is in the page cache when it returns).
//!
//! The stores are of the default backend (LMDB; `CHATSTORE_BACKEND=sled` for
//! sled, as `scripts/test` also runs it).
//!
//! `CHATSTORE_CRASH_KILLS` sets the number of kills per mode (default 10, so
//! CI runs 20); `scripts/crash-soak N` runs N in release mode;
//! `CHATSTORE_CRASH_SEED` runs another sequence of rounds;
//! `CHATSTORE_CRASH_TEXT_INDEX=0` creates the stores without the message-text
//! index (children inherit the variable).
//!
//! SIGKILL ends the process, not the machine: the kernel keeps what the
//! engine wrote with `write(2)`. Power loss is outside what a test here can do.
#![allow(clippy::unwrap_used)] // a failed unwrap here is a failed test or run

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chatstore::{
    Account, Agent, Durability, Member, Message, Options, Reader, Record, Sender, Session, Store,
};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The flush window of the buffered child.
const WINDOW_MS: u64 = 100;
/// Scheduling slack on a loaded 2-core CI machine.
const SLACK_MS: u64 = 1500;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Op {
    Put(Record),
    DeleteSession {
        tenant: u64,
        id: u64,
    },
    DeleteMember {
        tenant: u64,
        uid: u64,
    },
    DeleteAgent {
        tenant: u64,
        id: u64,
    },
    MarkRead {
        tenant: u64,
        session: u64,
        reader: Reader,
        up_to: u64,
    },
}

fn random_op(rng: &mut StdRng, n: u64) -> Op {
    let tenant = rng.gen_range(1..=2);
    let uid = rng.gen_range(1..=12);
    let sid = rng.gen_range(1..=30);
    let agent = rng.gen_range(0..=3);
    let nicks = ["李小龙", "Nguyễn Văn Đức", "john", "小芳", "Trường"];
    match rng.gen_range(0..100) {
        0..=14 => Op::Put(Record::Member(Member {
            tenant,
            uid,
            nickname: format!("{}{n}", nicks[rng.gen_range(0..nicks.len())]),
            mobile: format!("+84 9{:08}", rng.gen_range(0..100_000_000u64)),
            online: rng.gen(),
            ..Default::default()
        })),
        15..=19 => Op::Put(Record::Agent(Agent {
            tenant,
            id: rng.gen_range(1..=3),
            uid: 100,
            nickname: format!("客服{n}"),
            ..Default::default()
        })),
        20..=34 => Op::Put(Record::Session(Session {
            tenant,
            id: if rng.gen_bool(0.2) { 0 } else { sid },
            uid,
            agent_id: agent,
            created_at: 1_600_000_000,
            last_updated_at: if rng.gen_bool(0.5) {
                0
            } else {
                1_600_000_000 + (n % 1_000_000_000) as i64
            },
            hash: format!("{:032x}", rng.gen::<u128>()),
            ..Default::default()
        })),
        85..=89 => Op::MarkRead {
            tenant,
            session: sid,
            reader: if rng.gen_bool(0.5) {
                Reader::Agent
            } else {
                Reader::Member
            },
            up_to: rng.gen_range(0..=600),
        },
        35..=84 => Op::Put(Record::Message(Message {
            tenant,
            session_id: sid,
            id: if rng.gen_bool(0.1) {
                rng.gen_range(1..=500)
            } else {
                0
            },
            sender: [Sender::Member, Sender::Agent, Sender::System][rng.gen_range(0..3)],
            sender_id: uid,
            content: "消息 tin nhắn ".repeat(rng.gen_range(1..20)),
            time: 1_600_000_000 + (n % 1_000_000_000) as i64,
            ip: "42.114.43.124".into(),
            ..Default::default()
        })),
        90..=94 => Op::DeleteSession { tenant, id: sid },
        95..=97 => Op::DeleteMember { tenant, uid },
        98 => Op::DeleteAgent { tenant, id: agent },
        _ => Op::Put(Record::Account(Account {
            sso_id: 200 + tenant,
            tenant,
            hash: format!("{:032x}", rng.gen::<u128>()),
        })),
    }
}

fn apply(store: &Store, op: &Op) -> bool {
    let r = match op {
        Op::Put(Record::Account(a)) => store.upsert_account(a),
        Op::Put(Record::Member(m)) => store.upsert_member(m),
        Op::Put(Record::Agent(a)) => store.upsert_agent(a),
        Op::Put(Record::Session(s)) => store.upsert_session(s).map(|_| ()),
        Op::Put(Record::Message(m)) => store.append_message(m).map(|_| ()),
        Op::DeleteSession { tenant, id } => store.delete_session(*tenant, *id),
        Op::DeleteMember { tenant, uid } => store.delete_member(*tenant, *uid),
        Op::DeleteAgent { tenant, id } => store.delete_agent(*tenant, *id),
        Op::MarkRead {
            tenant,
            session,
            reader,
            up_to,
        } => store
            .mark_read(*tenant, *session, *reader, *up_to)
            .map(drop),
        // Never generated: a read mark is written per reader (MarkRead).
        Op::Put(Record::Read(_)) => unreachable!("read records are not generated"),
    };
    match r {
        Ok(()) => true,
        Err(e)
            if matches!(
                e.kind(),
                chatstore::ErrorKind::NotFound | chatstore::ErrorKind::Conflict
            ) =>
        {
            false
        }
        Err(e) => panic!("unexpected error for {op:?}: {e}"),
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// No linger: the harness's handle releases the store when dropped, so the
/// next writer child owns it (and the kill hits the owner).
fn options(durability: Durability) -> Options {
    Options {
        durability,
        linger_ms: 0,
        // CHATSTORE_CRASH_TEXT_INDEX=0: stores created without the text index.
        text_index: std::env::var("CHATSTORE_CRASH_TEXT_INDEX").map_or(true, |v| v != "0"),
        ..Options::default()
    }
}

/// The writer child: runs until killed.
#[test]
fn crash_child() {
    let Ok(spec) = std::env::var("CHATSTORE_CRASH_CHILD") else {
        return; // a normal test run: nothing to do
    };
    let mut parts = spec.split('|');
    let (store_dir, log, seed, mode) = (
        parts.next().unwrap(),
        parts.next().unwrap(),
        parts.next().unwrap().parse::<u64>().unwrap(),
        parts.next().unwrap(),
    );
    let durability = match mode {
        "sync" => Durability::Sync,
        _ => Durability::Buffered {
            flush_every_ms: WINDOW_MS,
        },
    };
    let store = Store::open(store_dir, options(durability)).unwrap();
    assert!(
        store.is_owner(),
        "the writer child must own the store it is killed with"
    );
    // Unbuffered: every line is one write(2), kept by the kernel after SIGKILL.
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let mut rng = StdRng::seed_from_u64(seed);
    for n in 0.. {
        let op = random_op(&mut rng, seed * 1_000_000 + n);
        log.write_all(format!("B {}\n", serde_json::to_string(&op).unwrap()).as_bytes())
            .unwrap();
        let ok = apply(&store, &op);
        log.write_all(format!("A {} {}\n", if ok { "ok" } else { "err" }, now_ms()).as_bytes())
            .unwrap();
    }
}

struct Logged {
    op: Op,
    /// `(succeeded, acknowledged at ms)`; `None`: in flight at the kill.
    ack: Option<(bool, u64)>,
}

fn read_log(path: &Path) -> Vec<Logged> {
    let mut out: Vec<Logged> = Vec::new();
    let Ok(f) = std::fs::File::open(path) else {
        return out; // killed before the first write
    };
    for line in std::io::BufReader::new(f).lines() {
        let line = line.unwrap();
        if let Some(op) = line.strip_prefix("B ") {
            // A line cut by the kill is the op in flight: it was never called.
            if let Ok(op) = serde_json::from_str(op) {
                out.push(Logged { op, ack: None });
            }
        } else if let Some(rest) = line.strip_prefix("A ") {
            let mut w = rest.split(' ');
            let ok = w.next() == Some("ok");
            if let Some(ms) = w.next().and_then(|m| m.parse().ok()) {
                out.last_mut().expect("ack after its op").ack = Some((ok, ms));
            }
        }
    }
    out
}

fn export(store: &Store) -> Vec<u8> {
    let mut v = Vec::new();
    store.export_jsonl(&mut v).unwrap();
    v
}

fn stats(store: &Store) -> String {
    format!("{:?}", [1, 2].map(|t| store.tenant_stats(t).unwrap()))
}

/// The record an op writes, as text (empty for deletes, which the counters
/// tell apart).
fn probe(store: &Store, op: &Op) -> String {
    match op {
        Op::Put(Record::Member(m)) => format!("{:?}", store.get_member(m.tenant, m.uid).unwrap()),
        Op::Put(Record::Agent(a)) => format!("{:?}", store.get_agent(a.tenant, a.id).unwrap()),
        Op::Put(Record::Session(s)) => format!("{:?}", store.get_session(s.tenant, s.id).unwrap()),
        Op::Put(Record::Account(a)) => format!("{:?}", store.get_account(a.sso_id).unwrap()),
        Op::Put(Record::Message(m)) => {
            format!("{:?}", store.get_session(m.tenant, m.session_id).unwrap())
        }
        _ => String::new(),
    }
}

/// `CHATSTORE_CRASH_SEED` picks another sequence of rounds (default fixed).
fn seed() -> u64 {
    std::env::var("CHATSTORE_CRASH_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0xC4A5)
}

fn kills() -> u64 {
    std::env::var("CHATSTORE_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10)
}

fn spawn_child(store: &Path, log: &Path, seed: u64, mode: &str) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["crash_child", "--exact", "--nocapture", "--test-threads=1"])
        .env(
            "CHATSTORE_CRASH_CHILD",
            format!("{}|{}|{seed}|{mode}", store.display(), log.display()),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap()
}

/// Runs `kills()` rounds of write, kill -9, reopen, verify. `verify` gets the
/// reopened store, the reference (at the state before the round), the round's
/// log and the kill time, and brings the reference to the store's state.
fn soak(mode: &str, run_ms: std::ops::Range<u64>, verify: impl Fn(&Store, &Store, &[Logged], u64)) {
    let dir = tempfile::tempdir().unwrap();
    let store_dir: PathBuf = dir.path().join("store");
    let reference = Store::open(dir.path().join("reference"), Options::default()).unwrap();
    let mut rng = StdRng::seed_from_u64(seed());
    let mut total_acked = 0usize;
    for round in 0..kills() {
        let log = dir.path().join(format!("log-{round}"));
        let mut child = spawn_child(
            &store_dir,
            &log,
            seed().wrapping_mul(1000) + round + 1,
            mode,
        );
        std::thread::sleep(Duration::from_millis(rng.gen_range(run_ms.clone())));
        child.kill().unwrap(); // SIGKILL
        let killed_at = now_ms();
        let status = child.wait().unwrap();
        // Killed, not ended by itself (a panic, or not owning the store).
        assert_eq!(
            status.code(),
            None,
            "round {round}: the writer exited: {status}"
        );
        let logged = read_log(&log);
        total_acked += logged.iter().filter(|l| l.ack.is_some()).count();
        let t = Instant::now();
        let store = Store::open(&store_dir, options(Durability::Sync)).unwrap();
        let report = store.check().unwrap();
        assert!(
            report.ok,
            "round {round}: check failed after kill -9: {report:?}"
        );
        verify(&store, &reference, &logged, killed_at);
        assert_eq!(export(&store), export(&reference), "round {round}");
        eprintln!(
            "{mode} round {round}: {} ops logged, reopen+check+compare {:?}",
            logged.len(),
            t.elapsed()
        );
    }
    assert!(total_acked > 0, "no write was acknowledged in any round");
}

#[test]
fn sync_writes_survive_kill_9() {
    soak("sync", 20..400, |store, reference, logged, _| {
        for l in logged {
            match l.ack {
                Some((ok, _)) => assert_eq!(apply(reference, &l.op), ok, "replay of {:?}", l.op),
                None => {
                    // In flight: wholly applied or wholly absent.
                    if export(store) != export(reference) {
                        apply(reference, &l.op);
                    }
                }
            }
        }
    });
}

#[test]
fn buffered_writes_lose_at_most_the_window() {
    // Rounds longer than window + slack, so the bound binds.
    soak(
        "buffered",
        100..(3 * (WINDOW_MS + SLACK_MS)),
        |store, reference, logged, killed_at| {
            let lmdb = store.info().unwrap().backend == chatstore::Backend::Lmdb;
            let must = logged
                .iter()
                .take_while(|l| {
                    l.ack
                        .is_some_and(|(_, at)| lmdb || at + WINDOW_MS + SLACK_MS < killed_at)
                })
                .count();
            for l in &logged[..must] {
                let ok = l.ack.is_some_and(|(ok, _)| ok);
                assert_eq!(apply(reference, &l.op), ok, "replay of {:?}", l.op);
            }
            // The store holds some prefix at least `must` long: find it. The
            // counters and the record the last replayed op wrote tell most
            // prefixes apart before a full comparison.
            let (want_stats, want) = (stats(store), export(store));
            let mut at = must;
            let differs = |at: usize| {
                let last = at.checked_sub(1).map(|i| &logged[i].op);
                stats(reference) != want_stats
                    || last.is_some_and(|op| probe(reference, op) != probe(store, op))
                    || export(reference) != want
            };
            while differs(at) {
                assert!(
                    at < logged.len(),
                    "the reopened store matches no prefix of the writes at least {must} of {} long \
                     (the last acknowledgement came {} ms before the kill: a writer stalled that \
                     long was stuck inside sled, see docs/RELIABILITY.md)",
                    logged.len(),
                    logged
                        .iter()
                        .rev()
                        .find_map(|l| l.ack.map(|(_, at)| killed_at.saturating_sub(at)))
                        .unwrap_or(0)
                );
                apply(reference, &logged[at].op);
                at += 1;
            }
        },
    );
}
