//! Backward compatibility (as redb's and fjall's tests against old files):
//! stores written by an earlier build, committed under
//! `tests/fixtures/format-5/` (one per backend, made by `chatstore import
//! --backend B input.jsonl` with the build of 2026-12-03 that wrote store
//! format 5), open with this build, check clean, answer what that build
//! answered (`expected/`, its CLI's output), and take writes. A change that
//! makes this build misread an old store fails here; a new format adds its
//! own fixture directory beside this one.
#![allow(clippy::unwrap_used)] // a failed unwrap here is a failed test

use std::path::{Path, PathBuf};

use chatstore::{Backend, HistoryParams, HistoryRequest, Message, MessageSearch, Options, Store};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/format-5")
}

fn expected(name: &str) -> String {
    std::fs::read_to_string(fixtures().join("expected").join(name)).unwrap()
}

/// A private copy of a fixture store (opening writes: lock files, the
/// format marker).
fn copy(backend: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let to = tmp.path().join("store");
    std::fs::create_dir(&to).unwrap();
    for entry in std::fs::read_dir(fixtures().join(format!("{backend}.db"))).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    (tmp, to)
}

fn options() -> Options {
    Options {
        linger_ms: 0,
        create_if_missing: false,
        ..Options::default()
    }
}

fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap()
}

fn opens_and_answers_as_before(backend: &str, kind: Backend) {
    let (_tmp, db) = copy(backend);
    let store = Store::open(&db, options()).unwrap();
    let info = store.info().unwrap();
    assert_eq!(info.backend, kind);
    assert!(
        info.text_index,
        "{backend}: the fixture keeps the text index"
    );
    // Format 5 said the layout and the text-index choice in one number;
    // opening moved it to the current format, the choice kept apart.
    assert_eq!(info.format, chatstore::STORE_FORMAT, "{backend}");
    assert!(store.check().unwrap().ok, "{backend}");

    let mut export = Vec::new();
    store.export_jsonl(&mut export).unwrap();
    assert_eq!(
        String::from_utf8(export).unwrap(),
        expected("export.jsonl"),
        "{backend}: export"
    );
    let history = |p: HistoryParams| {
        json(
            &store
                .history_list_text(&HistoryRequest::new(p).unwrap())
                .unwrap(),
        )
    };
    assert_eq!(
        history(HistoryParams {
            tenant: 2,
            employee: Some(2),
            ..Default::default()
        }),
        json(&expected("history-list.json")),
        "{backend}: history-list"
    );
    assert_eq!(
        history(HistoryParams {
            tenant: 2,
            user_name: Some("185".into()),
            ..Default::default()
        }),
        json(&expected("history-list-filter.json")),
        "{backend}: history-list filtered"
    );
    assert_eq!(
        json(
            &store
                .hischat_text(218, "5f4dcc3b5aa765d61d8327deb882cf99", 1)
                .unwrap()
        ),
        json(&expected("hischat.json")),
        "{backend}: hischat"
    );
    let hits = store
        .search_messages(&MessageSearch::new(2, "订单"))
        .unwrap();
    assert_eq!(
        serde_json::to_value(&hits).unwrap(),
        json(&expected("search-messages.json")),
        "{backend}: message search"
    );

    // Writes work, and are searched with the old postings.
    let id = store
        .append_message(&Message {
            tenant: 2,
            session_id: 1,
            content: "第二个订单 67890".into(),
            time: 1_700_000_000,
            ..Default::default()
        })
        .unwrap();
    let hits = store
        .search_messages(&MessageSearch::new(2, "订单"))
        .unwrap();
    assert_eq!(hits.total, 3, "{backend}");
    assert_eq!(hits.messages[0].id, id);
    assert!(store.check().unwrap().ok, "{backend}");
    store.close().unwrap();
    // And the store opens again.
    let again = Store::open(&db, options()).unwrap();
    assert!(again.check().unwrap().ok, "{backend}");
}

#[test]
fn a_format_5_lmdb_store_opens_and_answers_as_before() {
    opens_and_answers_as_before("lmdb", Backend::Lmdb);
}

#[test]
fn a_format_5_sled_store_opens_and_answers_as_before() {
    opens_and_answers_as_before("sled", Backend::Sled);
}
