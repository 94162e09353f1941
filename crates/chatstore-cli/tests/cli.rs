//! The `chatstore` binary end to end: endpoints on stdout, one-line errors,
//! import line numbers, idempotent re-import, export round trip, lock error.
#![allow(clippy::unwrap_used)] // a failed unwrap here is a failed test or run

use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

use serde_json::Value;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_chatstore"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn stdout_json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "stderr: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// A store in a temporary directory holding the seeds: (dir, store path).
fn seeded() -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db").to_str().unwrap().to_string();
    assert!(run(&["import", "--db", &db, &seeds_file(dir.path())])
        .status
        .success());
    (dir, db)
}

fn seeds_file(dir: &Path) -> String {
    let p = dir.join("seeds.jsonl");
    std::fs::write(&p, chatstore::demo::SEED_JSONL).unwrap();
    p.display().to_string()
}

#[test]
fn demo_prints_both_seed_responses() {
    let o = run(&["demo"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = String::from_utf8(o.stdout).unwrap();
    assert!(out.contains("\"total\": 3"), "{out}");
    assert!(out.contains("客服0002"));
    assert!(out.contains("a18e6636339533c68691e5d782c85370"));
    assert!(out.contains("Khong co ma bao mat") || out.contains("Ma bao mat khong dung"));
}

#[test]
fn endpoint_commands_print_the_endpoint_json() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let file = seeds_file(dir.path());
    let o = run(&["import", "--db", db, &file]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("imported 20 lines"), "{}", stderr(&o));
    let v = stdout_json(&run(&[
        "history-list",
        "--db",
        db,
        "--tenant",
        "2",
        "--employee",
        "2",
        "--media-base",
        "http://localhost:82",
    ]));
    let want: Value = serde_json::from_str(chatstore::demo::EXPECTED_HISTORY_LIST).unwrap();
    assert_eq!(v, want);
    let v = stdout_json(&run(&[
        "history-list",
        "--db",
        db,
        "--tenant",
        "2",
        "--user-name",
        "185-1669",
        "--page",
        "abc",
    ]));
    assert_eq!(v["data"]["total"], 1);
    assert_eq!(v["data"]["current_page"], 1);
    let v = stdout_json(&run(&[
        "history-list",
        "--db",
        db,
        "--tenant",
        "2",
        "--order",
        "recent",
        "--utc-offset",
        "+00:00",
    ]));
    assert_eq!(
        v["data"]["data"][0]["last_updated_at"],
        "2021-02-24 07:11:34"
    );
    let v = stdout_json(&run(&[
        "hischat",
        "--db",
        db,
        "--sso-id",
        "218",
        "--hash",
        chatstore::demo::SEED_ACCOUNT_HASH,
    ]));
    assert_eq!(v["status"], 1);
    assert_eq!(v["history"].as_array().unwrap().len(), 2);
    let v = stdout_json(&run(&[
        "hischat", "--db", db, "--sso-id", "218", "--hash", "",
    ]));
    assert_eq!(v["error"], "Khong co ma bao mat");
    let v = stdout_json(&run(&[
        "messages",
        "--db",
        db,
        "--tenant",
        "2",
        "--session",
        "1",
    ]));
    assert_eq!(v["total"], 2);
    assert_eq!(v["data"][0]["id"], 9);
    let v = stdout_json(&run(&["search", "--db", db, "--tenant", "2", "小"]));
    assert_eq!(v[0]["uid"], 2671);
    let v = stdout_json(&run(&["check", "--db", db]));
    assert_eq!(v["ok"], true);
    let v = stdout_json(&run(&["stats", "--db", db]));
    assert_eq!(v["tenants"][0]["sessions"], 4);
}

#[test]
fn import_errors_name_the_line_and_keep_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let bad = dir.path().join("bad.jsonl");
    std::fs::write(
        &bad,
        "{\"kind\":\"member\",\"tenant\":1,\"uid\":1}\n{\"kind\":\"member\",\"tenant\":1,\"uid\":2,\"colour\":\"red\"}\n{\"kind\":\"member\",\"tenant\":1,\"uid\":3}\n",
    )
    .unwrap();
    let o = run(&["import", "--db", db, bad.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.starts_with("chatstore: line 2: "), "{err}");
    assert!(err.contains("colour"), "{err}");
    let v = stdout_json(&run(&["stats", "--db", db]));
    assert_eq!(v["tenants"][0]["members"], 1);
}

#[test]
fn reimport_is_idempotent_and_export_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let file = seeds_file(dir.path());
    assert!(run(&["import", "--db", db, &file]).status.success());
    let first = run(&["export", "--db", db]).stdout;
    assert!(run(&["import", "--db", db, &file]).status.success());
    let second = run(&["export", "--db", db]).stdout;
    assert_eq!(first, second, "re-import changed the store");
    // export -> import into an empty store (through stdin) -> export
    let db2 = dir.path().join("db2");
    let db2 = db2.to_str().unwrap();
    let mut child = bin()
        .args(["import", "--db", db2, "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&first).unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let out = dir.path().join("out.jsonl");
    assert!(run(&["export", "--db", db2, out.to_str().unwrap()])
        .status
        .success());
    assert_eq!(std::fs::read(&out).unwrap(), first);
}

#[test]
fn commands_work_while_another_process_holds_the_store() {
    let (_dir, db) = seeded();
    let db = db.as_str();
    // An import reading from a pipe we keep open holds the store: it owns it
    // and serves the other commands over the store's socket.
    let mut holder = bin()
        .args(["import", "--db", db, "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = holder.stdin.take().unwrap();
    // A sled store's holder serves the others over its socket; an LMDB
    // store is opened by every process itself, holder or not.
    let socket = Path::new(db).join(chatstore::SOCKET_NAME);
    let sled = Path::new(db).join("db").exists();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while sled && !socket.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "the holder never served"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let v = stdout_json(&run(&[
        "history-list",
        "--db",
        db,
        "--tenant",
        "2",
        "--employee",
        "2",
    ]));
    assert_eq!(v["data"]["total"], 3);
    let line = r#"{"kind":"member","tenant":2,"uid":777,"nickname":"through the pipe"}"#;
    writeln!(stdin, "{line}").unwrap();
    drop(stdin);
    let out = holder.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let v = stdout_json(&run(&["search", "--db", db, "--tenant", "2", "pipe"]));
    assert_eq!(v[0]["uid"], 777, "{v}");
}

#[test]
fn bad_arguments_are_one_line() {
    let o = run(&[
        "history-list",
        "--db",
        "/tmp/x",
        "--tenant",
        "2",
        "--colour",
        "red",
    ]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("--colour"), "{err}");
    let o = run(&["history-list", "--db", "/tmp/x", "--tenant", "two"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("two"));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let seeds = seeds_file(dir.path());
    assert!(run(&["import", "--db", db.to_str().unwrap(), &seeds])
        .status
        .success());
    let o = run(&[
        "messages",
        "--db",
        db.to_str().unwrap(),
        "--tenant",
        "2",
        "--session",
        "9",
    ]);
    assert!(!o.status.success());
    assert_eq!(
        stderr(&o).trim(),
        "chatstore: session 9 of tenant 2 not found"
    );
}

#[test]
fn a_closed_stdout_is_not_an_error() {
    let (_dir, db) = seeded();
    let db = db.as_str();
    // The reader reads nothing and goes away: export must not complain.
    let mut child = bin()
        .args(["export", "--db", db])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stderr(&out), "");
}

#[test]
fn a_non_utf8_argument_is_refused_in_one_line() {
    use std::os::unix::ffi::OsStrExt;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let o = bin()
        .args(["search", "--db", db.to_str().unwrap(), "--tenant", "2"])
        .arg(std::ffi::OsStr::from_bytes(b"\xff\xfe"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("UTF-8"), "{err}");
    assert!(!db.exists(), "a refused command created the store");
}

/// docs/RELIABILITY.md, CLI column: NUL and over-limit values (which argv
/// cannot carry raw, so they come through an import file and a query), a file
/// as the store path and a store of a newer format: one line naming what was
/// wrong, nothing written.
#[test]
fn bad_input_rows_of_reliability_md() {
    let (dir, db) = seeded();
    let db = db.as_str();
    let export = |db: &str| run(&["export", "--db", db]).stdout;
    let before = export(db);
    let long = "x".repeat(256);
    for (line, field) in [
        (
            r#"{"kind":"member","tenant":2,"uid":1,"nickname":"a\u0000b"}"#.to_string(),
            "NUL",
        ),
        (
            format!(r#"{{"kind":"member","tenant":2,"uid":1,"nickname":"{long}"}}"#),
            "nickname",
        ),
    ] {
        let file = dir.path().join("bad.jsonl");
        std::fs::write(&file, format!("{line}\n")).unwrap();
        let o = run(&["import", "--db", db, file.to_str().unwrap()]);
        assert!(!o.status.success());
        let err = stderr(&o);
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains("line 1") && err.contains(field), "{err}");
    }
    let o = run(&["search", "--db", db, "--tenant", "2", &long]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("user_name"), "{}", stderr(&o));
    assert_eq!(export(db), before);

    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a store").unwrap();
    let o = run(&["stats", "--db", file.to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("is a file"), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "not a store");

    let newer = dir.path().join("newer.db");
    std::fs::create_dir(&newer).unwrap();
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/newer-format.db");
    for f in std::fs::read_dir(&fixture).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), newer.join(f.file_name())).unwrap();
    }
    let o = run(&["stats", "--db", newer.to_str().unwrap()]);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("newer"), "{err}");
}

/// A store locked by something that does not serve it (here a plain `flock`
/// on its file: sled's `db`, which blocks every open, or an LMDB store's
/// `writer.lock`, which blocks writes): one line naming the path, after
/// `--attach-timeout-ms`.
#[test]
fn a_lock_nobody_serves_is_one_line_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db_s = db.to_str().unwrap();
    let seeds = seeds_file(dir.path());
    assert!(run(&["import", "--db", db_s, &seeds]).status.success());
    let lmdb = db.join("writer.lock").exists();
    let file = std::fs::File::open(db.join(if lmdb { "writer.lock" } else { "db" })).unwrap();
    file.lock().unwrap();
    let o = if lmdb {
        // Reads never wait on an LMDB store; a write does.
        let o = run(&["stats", "--db", db_s, "--attach-timeout-ms", "200"]);
        assert!(o.status.success(), "{}", stderr(&o));
        run(&["import", "--db", db_s, &seeds, "--attach-timeout-ms", "200"])
    } else {
        run(&["stats", "--db", db_s, "--attach-timeout-ms", "200"])
    };
    drop(file);
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("locked") && err.contains(db_s), "{err}");
}

#[test]
fn unread_and_mark_read() {
    let (_dir, db) = seeded();
    let db = db.as_str();
    let v = stdout_json(&run(&[
        "unread", "--db", db, "--tenant", "2", "--agent", "2",
    ]));
    assert_eq!(v["total"], 3, "{v}");
    let row = &v["data"][0];
    let (sid, last) = (
        row["session"]["id"].as_u64().unwrap(),
        row["last_message"]["id"].as_u64().unwrap_or(0),
    );
    let v = stdout_json(&run(&[
        "mark-read",
        "--db",
        db,
        "--tenant",
        "2",
        "--session",
        &sid.to_string(),
        "--reader",
        "agent",
        "--up-to",
        &last.to_string(),
    ]));
    assert_eq!(v["unread"], 0, "{v}");
    let v = stdout_json(&run(&[
        "unread", "--db", db, "--tenant", "2", "--agent", "2",
    ]));
    assert_eq!(v["data"][0]["read"]["agent_read_upto"], last);
    let o = run(&[
        "mark-read",
        "--db",
        db,
        "--tenant",
        "2",
        "--session",
        "1",
        "--reader",
        "boss",
        "--up-to",
        "1",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("boss"), "{}", stderr(&o));
}

#[test]
fn recall_and_delete_message() {
    let (dir, db) = seeded();
    let db = db.as_str();
    let line = dir.path().join("m.jsonl");
    std::fs::write(
        &line,
        r#"{"kind":"message","tenant":2,"session_id":4,"content":"sai giá","time":1800000000}"#,
    )
    .unwrap();
    assert!(run(&["import", "--db", db, line.to_str().unwrap()])
        .status
        .success());
    let msgs = |db: &str| {
        stdout_json(&run(&[
            "messages",
            "--db",
            db,
            "--tenant",
            "2",
            "--session",
            "4",
        ]))
    };
    let v = msgs(db);
    let (total, id) = (
        v["total"].as_u64().unwrap(),
        v["data"][0]["id"].as_u64().unwrap(),
    );
    let id_s = id.to_string();
    let args = |cmd: &'static str| {
        vec![
            cmd,
            "--db",
            db,
            "--tenant",
            "2",
            "--session",
            "4",
            "--message",
            &id_s,
        ]
    };
    assert!(run(&args("recall")).status.success());
    assert_eq!(msgs(db)["data"][0]["recalled"], true);
    assert!(run(&args("delete-message")).status.success());
    let v = msgs(db);
    assert_eq!(v["total"].as_u64().unwrap(), total - 1);
    let o = run(&args("delete-message"));
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not found"), "{}", stderr(&o));
    assert!(run(&["check", "--db", db]).status.success());
}

/// `chatstore search-messages --db DB --tenant 2 ARGS...`.
fn search_messages(db: &str, args: &[&str]) -> Output {
    let mut all = vec!["search-messages", "--db", db, "--tenant", "2"];
    all.extend_from_slice(args);
    run(&all)
}

#[test]
fn search_messages_command() {
    let (_dir, db) = seeded();
    let db = db.as_str();
    let v = stdout_json(&search_messages(db, &["订单"]));
    assert!(v["total"].as_u64().unwrap() >= 1, "{v}");
    assert!(
        v["data"][0]["content"].as_str().unwrap().contains("订单"),
        "{v}"
    );
    let o = search_messages(db, &["订"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("session_id"), "{}", stderr(&o));
}

#[test]
fn import_without_the_text_index_then_search_a_session() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("db");
    let db = db.to_str().unwrap();
    let file = seeds_file(dir.path());
    let o = run(&["import", "--db", db, "--no-text-index", &file]);
    assert!(o.status.success(), "{}", stderr(&o));
    // (A large import into a sled store is reopened by the core itself:
    // store.rs `a_large_import_into_a_sled_store_leaves_it_settled`.)
    let o = search_messages(db, &["订单"]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("text_index"), "{}", stderr(&o));
    let v = stdout_json(&search_messages(db, &["--session", "1", "订单"]));
    assert!(v["total"].as_u64().unwrap() >= 1, "{v}");
    // A second import into the store keeps its choice.
    assert!(run(&["import", "--db", db, &file]).status.success());
    let o = search_messages(db, &["订单"]);
    assert!(stderr(&o).contains("text_index"), "{}", stderr(&o));
    let v = stdout_json(&run(&["check", "--db", db]));
    assert_eq!(v["ok"], true, "{v}");
    let v = stdout_json(&run(&["stats", "--db", db]));
    assert_eq!(
        (&v["format"], &v["text_index"]),
        (&chatstore::STORE_FORMAT.into(), &false.into()),
        "{v}"
    );
}

/// `backup` writes a consistent copy; `migrate` moves a store between
/// backends: every copy checks clean and exports byte for byte the same.
#[test]
fn backup_and_migrate_between_backends_keep_the_export() {
    let (dir, db) = seeded();
    let export = |db: &str| {
        let o = run(&["export", "--db", db]);
        assert!(o.status.success(), "{}", stderr(&o));
        o.stdout
    };
    let original = export(&db);
    assert!(original.len() > 1000);
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let backup = path("backup");
    let o = run(&["backup", "--db", &db, &backup]);
    assert!(o.status.success(), "{}", stderr(&o));
    let sled = path("sled");
    let o = run(&["migrate", "--db", &db, "--to", &sled, "--backend", "sled"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let lmdb = path("lmdb");
    let o = run(&["migrate", "--db", &sled, "--to", &lmdb, "--backend", "lmdb"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for (copy, backend) in [
        (&backup, None),
        (&sled, Some("sled")),
        (&lmdb, Some("lmdb")),
    ] {
        assert_eq!(export(copy), original, "{copy}");
        assert!(run(&["check", "--db", copy]).status.success(), "{copy}");
        let stats = stdout_json(&run(&["stats", "--db", copy]));
        if let Some(b) = backend {
            assert_eq!(stats["backend"], b, "{stats}");
        }
    }
    // Neither writes over an existing store or directory.
    let o = run(&["migrate", "--db", &db, "--to", &sled, "--backend", "lmdb"]);
    assert!(!o.status.success());
    assert!(
        stderr(&o).contains("holds a store already"),
        "{}",
        stderr(&o)
    );
    let o = run(&["backup", "--db", &db, &backup]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("exists"), "{}", stderr(&o));

    // compact rewrites an LMDB store in place, only when no other process
    // has it open.
    let lmdb_db = if Path::new(&db).join("data.mdb").exists() {
        &db
    } else {
        &lmdb
    };
    let mut holder = bin()
        .args(["import", "--db", lmdb_db, "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdin = holder.stdin.take().unwrap();
    // Wait until the holder has the store open: it holds a shared lock of
    // users.lock for as long as it does.
    let users = std::fs::File::open(Path::new(lmdb_db).join("users.lock")).unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while users.try_lock().is_ok() {
        users.unlock().unwrap();
        assert!(
            std::time::Instant::now() < deadline,
            "the holder never opened the store"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let refused = run(&["compact", "--db", lmdb_db, "--attach-timeout-ms", "200"]);
    assert!(
        !refused.status.success(),
        "compacted a store another process has open"
    );
    assert!(
        stderr(&refused).contains("other processes have it open"),
        "{}",
        stderr(&refused)
    );
    assert_eq!(stderr(&refused).trim().lines().count(), 1);
    drop(stdin);
    assert!(holder.wait().unwrap().success());
    let o = run(&["compact", "--db", lmdb_db]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(export(lmdb_db), original);
    assert!(run(&["check", "--db", lmdb_db]).status.success());
    if !Path::new(&db).join("data.mdb").exists() {
        // A sled store is compacted by migrate.
        let o = run(&["compact", "--db", &db]);
        assert!(stderr(&o).contains("migrate"), "{}", stderr(&o));
    }
}

/// A mistyped path is an error naming it: commands that read never create
/// a store (parents included), and `check` does not call nothing "ok".
#[test]
fn commands_that_read_do_not_create_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("typo").join("store");
    let db = missing.to_str().unwrap();
    for args in [
        vec!["check", "--db", db],
        vec!["history-list", "--db", db, "--tenant", "2"],
        vec!["hischat", "--db", db, "--sso-id", "218", "--hash", "x"],
        vec!["export", "--db", db],
        vec!["stats", "--db", db],
        vec!["messages", "--db", db, "--tenant", "2", "--session", "1"],
    ] {
        let o = run(&args);
        assert!(!o.status.success(), "{args:?} succeeded");
        assert!(stderr(&o).contains(db), "{args:?}: {}", stderr(&o));
        assert!(!dir.path().join("typo").exists(), "{args:?} created it");
    }
    // Import creates one, as before.
    let seeds = seeds_file(dir.path());
    assert!(run(&["import", "--db", db, &seeds]).status.success());
    assert_eq!(stdout_json(&run(&["check", "--db", db]))["ok"], true);
}

/// A damaged sled store is one sentence naming the damaged file: no Rust
/// debug output, no blame on a sled version (issue 18, items 5 and 15).
#[test]
fn a_damaged_sled_store_is_named_in_a_sentence() {
    let dir = tempfile::tempdir().unwrap();
    let seeds = seeds_file(dir.path());
    let db = dir.path().join("sled.db");
    let db_s = db.to_str().unwrap();
    assert!(run(&["import", "--backend", "sled", "--db", db_s, &seeds])
        .status
        .success());
    // Opened once more, sled writes a snapshot of the whole log (a store
    // in use has one; the flipped byte below is in a part the snapshot
    // points at).
    assert!(run(&["check", "--db", db_s]).status.success());
    for (file, at) in [("conf", 0u64), ("db", 21)] {
        let copy = dir.path().join(format!("flipped-{file}"));
        std::fs::create_dir(&copy).unwrap();
        for e in std::fs::read_dir(&db).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), copy.join(e.file_name())).unwrap();
            }
        }
        let target = copy.join(file);
        let mut bytes = std::fs::read(&target).unwrap();
        bytes[at as usize] ^= 0xff;
        std::fs::write(&target, bytes).unwrap();
        let o = run(&["stats", "--db", copy.to_str().unwrap()]);
        let err = stderr(&o);
        assert!(!o.status.success(), "{file}: {err}");
        assert!(
            err.contains("corrupt") && err.contains(target.to_str().unwrap()),
            "{file}: {err}"
        );
        for debug in ["Some(", "None", "backtrace", "0.29", "panicked"] {
            assert!(!err.contains(debug), "{file}: {err}");
        }
        assert_eq!(err.trim().lines().count(), 1, "{file}: {err}");
    }
}
