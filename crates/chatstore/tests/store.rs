//! Store-level behaviour: locking, format versions, durability modes,
//! import errors, cascades and `check()` catching damage.
#![allow(clippy::unwrap_used)] // a failed unwrap here is a failed test or run

mod common;

use std::sync::Arc;

use chatstore::{demo, Durability, Error, Member, Message, Options, Session, Store};

#[test]
fn a_lock_nobody_serves_is_reported_naming_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let _raw = sled::open(dir.path()).unwrap();
    let o = Options {
        attach_timeout_ms: 100,
        ..Options::default()
    };
    let err = Store::open(dir.path(), o).unwrap_err();
    assert!(matches!(err, Error::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains(&dir.path().display().to_string()));
    assert!(err.to_string().contains("locked"));
}

#[test]
fn a_file_is_not_a_store() {
    let f = tempfile::NamedTempFile::new().unwrap();
    let err = Store::open(f.path(), Options::default()).unwrap_err();
    assert!(err.to_string().contains("is a file"), "{err}");
}

#[test]
fn close_flushes_and_later_calls_fail() {
    let (_d, store) = common::seeded();
    store.close().unwrap();
    store.close().unwrap();
    assert!(matches!(
        store.history_list(&chatstore::HistoryQuery::new(2)),
        Err(Error::Closed)
    ));
    assert!(matches!(store.flush(), Err(Error::Closed)));
}

#[test]
fn data_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = common::open(&dir);
        store
            .import_jsonl(demo::SEED_JSONL.as_bytes(), |_| {})
            .unwrap();
        store.close().unwrap();
    }
    let store = common::open(&dir);
    assert_eq!(store.tenant_stats(2).unwrap().sessions, 4);
    assert!(store.check().unwrap().ok);
}

#[test]
fn sync_mode_with_concurrent_writers() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        durability: Durability::Sync,
        ..Options::default()
    };
    let store = Arc::new(Store::open(dir.path(), o).unwrap());
    store
        .import_jsonl(demo::SEED_JSONL.as_bytes(), |_| {})
        .unwrap();
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let store = store.clone();
            std::thread::spawn(move || {
                for j in 0..10 {
                    store
                        .append_message(&Message {
                            tenant: 2,
                            session_id: 4,
                            content: format!("{i}-{j}"),
                            time: 1_700_000_000 + j,
                            ..Default::default()
                        })
                        .unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let page = store.messages(2, 4, 1, 100).unwrap();
    assert_eq!(page.total, 40);
    let mut ids: Vec<u64> = page.messages.iter().map(|m| m.id).collect();
    ids.dedup();
    assert_eq!(ids.len(), 40, "assigned ids are unique");
    assert!(
        ids.iter().all(|id| *id > 10),
        "auto ids exceed every message id of tenant 2: {ids:?}"
    );
    assert!(store.check().unwrap().ok);
}

#[test]
fn auto_ids_exceed_every_given_id_of_the_tenant() {
    let (_d, store) = common::seeded();
    // Tenant 2's greatest message id is 10; tenant 218's 185185 does not count.
    let id = store
        .append_message(&Message {
            tenant: 2,
            session_id: 4,
            content: "hi".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(id, 11);
    let sid = store
        .upsert_session(&Session {
            tenant: 2,
            uid: 2669,
            ..Default::default()
        })
        .unwrap();
    assert_eq!(sid, 5);
    let s = store.get_session(2, 5).unwrap().unwrap();
    assert!(chatstore::limits::is_session_hash(&s.session.hash));
}

#[test]
fn appending_moves_the_session_and_its_last_message() {
    let (_d, store) = common::seeded();
    let id = store
        .append_message(&Message {
            tenant: 2,
            session_id: 4,
            content: "新消息".into(),
            time: 1_800_000_000,
            ..Default::default()
        })
        .unwrap();
    let v = store.get_session(2, 4).unwrap().unwrap();
    assert_eq!(v.activity_at, 1_800_000_000);
    assert_eq!(v.message_count, 1);
    assert_eq!(v.last_message.unwrap().id, id);
    let mut q = chatstore::HistoryQuery::new(2);
    q.order = chatstore::Order::Recent;
    assert_eq!(store.history_list(&q).unwrap().rows[0].session.id, 4);
    assert!(store.check().unwrap().ok);
}

#[test]
fn missing_references_are_refused_and_change_nothing() {
    let (_d, store) = common::seeded();
    let before = store.tenant_stats(2).unwrap();
    let e = store
        .upsert_session(&Session {
            tenant: 2,
            uid: 999,
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("member 999"), "{e}");
    let e = store
        .upsert_session(&Session {
            tenant: 2,
            uid: 2669,
            agent_id: 9,
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("agent 9"), "{e}");
    let e = store
        .append_message(&Message {
            tenant: 2,
            session_id: 99,
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("session 99"), "{e}");
    let e = store
        .append_message(&Message {
            tenant: 2,
            session_id: 4,
            ip: "1.2.3".into(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(e.to_string().contains("ip"), "{e}");
    let e = store.delete_agent(2, 2).unwrap_err();
    assert!(e.to_string().contains("still has 3 sessions"), "{e}");
    assert_eq!(store.tenant_stats(2).unwrap(), before);
    // The auto-id counter did not move either.
    assert_eq!(
        store
            .upsert_session(&Session {
                tenant: 2,
                uid: 2669,
                ..Default::default()
            })
            .unwrap(),
        5
    );
}

#[test]
fn deleting_cascades() {
    let (_d, store) = common::seeded();
    store.delete_member(2, 2662).unwrap(); // session 1 with 2 messages
    let s = store.tenant_stats(2).unwrap();
    assert_eq!((s.members, s.sessions, s.messages), (3, 3, 1));
    assert!(store.get_session(2, 1).unwrap().is_none());
    store.delete_session(2, 3).unwrap();
    assert_eq!(store.tenant_stats(2).unwrap().messages, 0);
    assert!(store.search_members(2, "15000245941").unwrap().is_empty());
    assert!(matches!(
        store.delete_session(2, 3),
        Err(Error::NotFound { .. })
    ));
    assert!(store.check().unwrap().ok);
}

#[test]
fn renaming_a_member_reindexes_it() {
    let (_d, store) = common::seeded();
    let mut m = store.get_member(2, 2671).unwrap().unwrap();
    m.nickname = "Nguyễn Văn Đức".into();
    m.mobile = "0912 345 678".into();
    store.upsert_member(&m).unwrap();
    assert!(store.search_members(2, "小龙").unwrap().is_empty());
    assert_eq!(store.search_members(2, "duc").unwrap().len(), 1);
    assert_eq!(store.search_members(2, "+84 912 345 678").unwrap().len(), 1);
    assert!(store.search_members(2, "13912345678").unwrap().is_empty());
    assert!(store.check().unwrap().ok);
}

#[test]
fn import_reports_the_line_and_keeps_the_lines_before() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(&dir);
    let text = concat!(
        r#"{"kind":"member","tenant":1,"uid":1,"nickname":"a"}"#,
        "\n",
        "\n",
        r#"{"kind":"session","tenant":1,"id":1,"uid":1}"#,
        "\n",
        r#"{"kind":"session","tenant":1,"id":2,"uid":42}"#,
        "\n",
        r#"{"kind":"member","tenant":1,"uid":3}"#,
        "\n",
    );
    let e = store.import_jsonl(text.as_bytes(), |_| {}).unwrap_err();
    assert!(matches!(e, Error::Import { line: 4, .. }), "{e:?}");
    assert_eq!(e.to_string(), "line 4: member 42 of tenant 1 not found");
    let s = store.tenant_stats(1).unwrap();
    assert_eq!((s.members, s.sessions), (1, 1));
    for (bad, what) in [
        (
            r#"{"kind":"member","tenant":1,"uid":1,"nick":"x"}"#,
            "unknown field `nick`",
        ),
        (
            r#"{"kind":"planet","tenant":1}"#,
            "unknown variant `planet`",
        ),
        (
            r#"{"kind":"member","tenant":"one","uid":1}"#,
            "invalid type",
        ),
        ("not json", "expected"),
    ] {
        let e = store.import_jsonl(bad.as_bytes(), |_| {}).unwrap_err();
        assert!(e.to_string().starts_with("line 1: "), "{e}");
        assert!(e.to_string().contains(what), "{e} lacks {what}");
    }
    // Re-importing is a no-op.
    store
        .import_jsonl(demo::SEED_JSONL.as_bytes(), |_| {})
        .unwrap();
    let before = store.tenant_stats(2).unwrap();
    let mut a = Vec::new();
    store.export_jsonl(&mut a).unwrap();
    store
        .import_jsonl(demo::SEED_JSONL.as_bytes(), |_| {})
        .unwrap();
    let mut b = Vec::new();
    store.export_jsonl(&mut b).unwrap();
    assert_eq!(store.tenant_stats(2).unwrap(), before);
    assert_eq!(a, b);
}

#[test]
fn check_reports_damage() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = common::open_unshared(&dir);
        store
            .import_jsonl(demo::SEED_JSONL.as_bytes(), |_| {})
            .unwrap();
        assert!(store.check().unwrap().ok);
    }
    // Damage the store behind the engine's back: drop an n-gram posting and
    // a message, and add an orphan index entry.
    {
        let db = common::raw_sled(&dir);
        let data = db.open_tree("data").unwrap();
        let mut gram = None;
        let mut msg = None;
        for item in data.iter() {
            let (k, _) = item.unwrap();
            if k[8] == 0x20 && gram.is_none() {
                gram = Some(k.clone());
            }
            if k[8] == 0x04 && msg.is_none() {
                msg = Some(k.clone());
            }
        }
        data.remove(gram.unwrap()).unwrap();
        data.remove(msg.unwrap()).unwrap();
        let mut orphan = 2u64.to_be_bytes().to_vec();
        orphan.push(0x10);
        orphan.extend_from_slice(&2u64.to_be_bytes());
        orphan.extend_from_slice(&(!77u64).to_be_bytes()); // ids are stored inverted
        data.insert(orphan, &2669u64.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let store = common::open(&dir);
    let report = store.check().unwrap();
    assert!(!report.ok);
    let all = report.violations.join("\n");
    assert!(all.contains("n-gram"), "{all}");
    assert!(all.contains("message count"), "{all}");
    assert!(all.contains("session 77"), "{all}");
}

#[test]
fn a_newer_store_format_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    {
        let db = sled::open(dir.path()).unwrap();
        db.insert(b"chatstore.format", &99u32.to_be_bytes())
            .unwrap();
        db.flush().unwrap();
    }
    let err = Store::open(dir.path(), Options::default()).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err:?}");
    // The committed fixture the binding suites open is such a store.
    let copy = tempfile::tempdir().unwrap();
    let fixture = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/newer-format.db");
    for f in std::fs::read_dir(fixture).unwrap() {
        let f = f.unwrap();
        std::fs::copy(f.path(), copy.path().join(f.file_name())).unwrap();
    }
    let err = Store::open(copy.path(), Options::default()).unwrap_err();
    assert!(err.to_string().contains("newer than this build"), "{err}");
}

#[test]
fn members_without_sessions_are_searchable() {
    let (_d, store) = common::seeded();
    store
        .upsert_member(&Member {
            tenant: 2,
            uid: 5000,
            nickname: "Trần Thị Ánh".into(),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(store.search_members(2, "tran thi").unwrap()[0].uid, 5000);
    assert_eq!(store.search_members(2, "").unwrap(), vec![]);
}

#[cfg(not(feature = "compression"))]
#[test]
fn compression_without_the_feature_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let o = Options {
        compression: true,
        ..Options::default()
    };
    let err = Store::open(dir.path(), o).unwrap_err();
    assert!(err.to_string().contains("compression"), "{err}");
}

#[test]
fn read_state_moves_with_appends_and_marks_and_survives_export() {
    use chatstore::{ReadState, Reader, Sender};
    let (_d, store) = common::seeded();
    let before = store.get_session(2, 4).unwrap().unwrap().read;
    let msg = |sender, content: &str| Message {
        tenant: 2,
        session_id: 4,
        sender,
        content: content.into(),
        time: 1_800_000_000,
        ..Default::default()
    };
    let a = store.append_message(&msg(Sender::Member, "在吗")).unwrap();
    let b = store
        .append_message(&msg(Sender::Member, "订单 20261202"))
        .unwrap();
    let c = store.append_message(&msg(Sender::Agent, "您好")).unwrap();
    store.append_message(&msg(Sender::System, "转接")).unwrap();
    let r = store.get_session(2, 4).unwrap().unwrap().read;
    assert_eq!(r.unread_by_agent, before.unread_by_agent + 2);
    assert_eq!(r.unread_by_member, before.unread_by_member + 1);
    // The agent reads up to the first new message, then everything.
    assert_eq!(store.mark_read(2, 4, Reader::Agent, a).unwrap(), 1);
    assert_eq!(store.mark_read(2, 4, Reader::Agent, b).unwrap(), 0);
    // A mark never moves back.
    assert_eq!(store.mark_read(2, 4, Reader::Agent, 1).unwrap(), 0);
    assert_eq!(store.mark_read(2, 4, Reader::Member, c).unwrap(), 0);
    let live = store.live_sessions(2, 2, 1, 10).unwrap();
    assert_eq!(live.data[0].session.id, 4, "newest activity first");
    assert_eq!(
        live.data[0].read,
        ReadState {
            unread_by_agent: 0,
            unread_by_member: 0,
            agent_read_upto: b,
            member_read_upto: c,
        }
    );
    assert!(matches!(
        store.mark_read(2, 999, Reader::Agent, 1),
        Err(Error::NotFound { .. })
    ));
    assert!(store.check().unwrap().ok);
    // Export writes a read record after the session; import restores it.
    let mut out = Vec::new();
    store.export_jsonl(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains(&format!(
        r#"{{"kind":"read","tenant":2,"session_id":4,"agent_read_upto":{b},"member_read_upto":{c}}}"#
    )));
    let dir = tempfile::tempdir().unwrap();
    let copy = common::open(&dir);
    copy.import_jsonl(text.as_bytes(), |_| {}).unwrap();
    assert_eq!(
        copy.get_session(2, 4).unwrap().unwrap().read,
        live.data[0].read
    );
    assert!(copy.check().unwrap().ok);
    // A read record naming a session that does not exist stops the import.
    let err = copy
        .import_jsonl(
            r#"{"kind":"read","tenant":2,"session_id":999,"agent_read_upto":5}"#.as_bytes(),
            |_| {},
        )
        .unwrap_err();
    assert!(err.to_string().contains("line 1"), "{err}");
}

#[test]
fn recall_and_soft_delete_keep_the_session_right() {
    use chatstore::{Reader, Sender};
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(&dir);
    store
        .upsert_member(&Member {
            tenant: 7,
            uid: 1,
            nickname: "Lê Thị Hoa".into(),
            ..Default::default()
        })
        .unwrap();
    let sid = store
        .upsert_session(&Session {
            tenant: 7,
            uid: 1,
            ..Default::default()
        })
        .unwrap();
    let send = |sender, time| {
        store
            .append_message(&Message {
                tenant: 7,
                session_id: sid,
                sender,
                content: format!("m{time}"),
                time,
                ..Default::default()
            })
            .unwrap()
    };
    let a = send(Sender::Member, 100);
    let b = send(Sender::Member, 200);
    let c = send(Sender::Member, 300);
    let view = |store: &Store| store.get_session(7, sid).unwrap().unwrap();
    assert_eq!(view(&store).read.unread_by_agent, 3);
    // Recall: kept and flagged, no longer unread; still the last message.
    store.recall_message(7, sid, c).unwrap();
    let v = view(&store);
    assert!(v.last_message.as_ref().unwrap().recalled);
    assert_eq!((v.message_count, v.read.unread_by_agent), (3, 2));
    // Deleting the last message: the previous visible one takes its place,
    // with its time, in the same transaction.
    store.delete_message(7, sid, c).unwrap();
    let v = view(&store);
    assert_eq!(v.last_message.as_ref().unwrap().id, b);
    assert_eq!(
        (v.message_count, v.activity_at, v.read.unread_by_agent),
        (2, 200, 2)
    );
    let page = store.messages(7, sid, 1, 10).unwrap();
    assert_eq!(page.total, 2);
    assert!(page.messages.iter().all(|m| m.id != c));
    assert_eq!(store.tenant_stats(7).unwrap().messages, 2);
    // Deleting a message the agent has not read lowers the unread count.
    store.delete_message(7, sid, a).unwrap();
    assert_eq!(view(&store).read.unread_by_agent, 1);
    assert_eq!(store.mark_read(7, sid, Reader::Agent, c).unwrap(), 0);
    assert!(matches!(
        store.delete_message(7, sid, c),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(
        store.recall_message(7, sid, 999),
        Err(Error::NotFound { .. })
    ));
    store.delete_message(7, sid, b).unwrap();
    let v = view(&store);
    assert_eq!((v.message_count, v.last_message.clone()), (0, None));
    assert!(store.check().unwrap().ok);
    // Export keeps deleted messages (with deleted_at); import restores the
    // same store; the session goes with all of them.
    let mut out = Vec::new();
    store.export_jsonl(&mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(text.matches("\"deleted_at\":").count(), 3, "{text}");
    let dir2 = tempfile::tempdir().unwrap();
    let copy = common::open(&dir2);
    copy.import_jsonl(text.as_bytes(), |_| {}).unwrap();
    assert_eq!(view(&copy).message_count, 0);
    let mut again = Vec::new();
    copy.export_jsonl(&mut again).unwrap();
    assert_eq!(String::from_utf8(again).unwrap(), text);
    assert!(copy.check().unwrap().ok);
    // Written again with its id, a deleted message is visible again.
    copy.append_message(&Message {
        tenant: 7,
        session_id: sid,
        id: b,
        content: "again".into(),
        time: 250,
        ..Default::default()
    })
    .unwrap();
    assert_eq!(view(&copy).last_message.unwrap().id, b);
    assert!(copy.check().unwrap().ok);
    store.delete_session(7, sid).unwrap();
    assert!(store.check().unwrap().ok);
    let mut out = Vec::new();
    store.export_jsonl(&mut out).unwrap();
    assert!(!String::from_utf8(out).unwrap().contains("deleted_at"));
}

/// The seed and 30,000 messages spread over its sessions: an import that
/// writes most of the store it goes into.
fn bulk_jsonl() -> String {
    let mut s = demo::SEED_JSONL.to_string();
    for i in 0..30_000u64 {
        let sid = 1 + i * 7 % 4;
        s.push_str(&format!(
            "{{\"kind\":\"message\",\"tenant\":2,\"session_id\":{sid},\"sender\":\"agent\",\
             \"sender_id\":2,\"content\":\"第{i}条 订单 order {i} đã giao hàng, cảm ơn quý khách\",\
             \"content_type\":0,\"link\":\"\",\"time\":{},\"ip\":\"\"}}\n",
            1_614_300_000 + i
        ));
    }
    s
}

fn data_file_len(dir: &tempfile::TempDir) -> u64 {
    std::fs::metadata(dir.path().join("data.mdb"))
        .unwrap()
        .len()
}

/// An import that writes most of an LMDB store packs it (rewrites it in
/// key order, every page full) and the handle goes on working; while
/// another handle has the store open it is left as it is.
#[test]
fn a_bulk_load_packs_an_lmdb_store() {
    let jsonl = bulk_jsonl();
    let options = Options {
        backend: chatstore::Backend::Lmdb,
        text_index: false,
        ..Options::default()
    };
    let packed_dir = tempfile::tempdir().unwrap();
    let packed = Store::open(packed_dir.path(), options.clone()).unwrap();
    let summary = packed.import_jsonl(jsonl.as_bytes(), |_| {}).unwrap();
    assert_eq!(summary.messages, 30_005);

    let shared_dir = tempfile::tempdir().unwrap();
    let shared = Store::open(shared_dir.path(), options.clone()).unwrap();
    let other = Store::open(shared_dir.path(), options.clone()).unwrap();
    shared.import_jsonl(jsonl.as_bytes(), |_| {}).unwrap();
    let (small, large) = (data_file_len(&packed_dir), data_file_len(&shared_dir));
    assert!(small * 10 < large * 7, "packed {small} vs {large} bytes");

    let export = |s: &Store| {
        let mut out = Vec::new();
        s.export_jsonl(&mut out).unwrap();
        out
    };
    assert_eq!(export(&packed), export(&other));
    assert!(packed.check().unwrap().ok);
    // The packed handle reads and writes on the packed file.
    let id = packed
        .append_message(&Message {
            tenant: 2,
            session_id: 1,
            content: "after the pack".into(),
            time: 1_700_000_000,
            ..Default::default()
        })
        .unwrap();
    drop(packed);
    let again = Store::open(packed_dir.path(), options).unwrap();
    assert_eq!(
        again
            .get_session(2, 1)
            .unwrap()
            .unwrap()
            .last_message
            .unwrap()
            .id,
        id
    );
    assert!(again.check().unwrap().ok);
}

/// A store of format 1 (the text index of earlier builds, a key per
/// posting) is read and exported; writes and message search are refused
/// naming `chatstore migrate`; `copy_into` (what migrate runs) moves it to
/// the newest format, where the same search answers.
#[test]
fn a_store_of_format_1_is_migrated_by_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_unshared(&dir);
    store
        .import_jsonl(demo::SEED_JSONL.as_bytes(), |_| {})
        .unwrap();
    let search = chatstore::MessageSearch::new(2, "订单");
    let hits = store.search_messages(&search).unwrap();
    assert!(hits.total > 0);
    let mut export = Vec::new();
    store.export_jsonl(&mut export).unwrap();
    store.close().unwrap();
    drop(store);
    {
        let db = common::raw_sled(&dir);
        db.insert(b"chatstore.format", &1u32.to_be_bytes()).unwrap();
        db.flush().unwrap();
    }
    let old = common::open_unshared(&dir);
    assert_eq!(old.info().unwrap().format, 1);
    assert!(old.get_session(2, 1).unwrap().is_some());
    for refused in [
        old.search_messages(&search).map(drop),
        old.check().map(drop),
        old.delete_session(2, 1),
    ] {
        match refused {
            Err(Error::Format { reason }) => {
                assert!(reason.contains("chatstore migrate"), "{reason}")
            }
            other => panic!("{other:?}"),
        }
    }
    let to = tempfile::tempdir().unwrap();
    let new_dir = to.path().join("new");
    let mut seen = 0;
    old.copy_into(&new_dir, Options::default(), |bytes| seen = bytes)
        .unwrap();
    assert!(seen > 0, "progress reported");
    let new = Store::open(&new_dir, Options::default()).unwrap();
    assert_eq!(new.info().unwrap().format, chatstore::STORE_FORMAT);
    assert_eq!(new.search_messages(&search).unwrap(), hits);
    let mut again = Vec::new();
    new.export_jsonl(&mut again).unwrap();
    assert_eq!(again, export);
    assert!(new.check().unwrap().ok);
}

/// Re-running an import changes nothing for records that carry their keys
/// (an export's lines do), and stores again the sessions and messages that
/// carry no id: README, "Import" (issue 18, item 12).
#[test]
fn re_running_an_import_is_a_no_op_for_keyed_records_only() {
    let (_d, store) = common::seeded();
    let mut exported = Vec::new();
    store.export_jsonl(&mut exported).unwrap();
    let before = store.tenant_stats(2).unwrap();
    for _ in 0..2 {
        store.import_jsonl(exported.as_slice(), |_| {}).unwrap();
    }
    let mut again = Vec::new();
    store.export_jsonl(&mut again).unwrap();
    assert_eq!(again, exported, "keyed records: a no-op");
    assert_eq!(store.tenant_stats(2).unwrap(), before);
    // Without ids, each run adds them anew.
    let unkeyed = "{\"kind\":\"session\",\"tenant\":2,\"uid\":2669}\n";
    let sessions = |s: &Store| s.tenant_stats(2).unwrap().sessions;
    let n = sessions(&store);
    for run in 1..=3 {
        store.import_jsonl(unkeyed.as_bytes(), |_| {}).unwrap();
        assert_eq!(sessions(&store), n + run);
    }
    assert!(store.check().unwrap().ok);
}

/// A line longer than any record can be is refused as `line N` after
/// reading at most `MAX_LINE_BYTES` of it, even from an endless stream
/// (`/dev/zero` used to grow the import's memory without end); the lines
/// before it are stored (issue 18, item 8).
#[test]
fn an_overlong_import_line_is_refused_without_being_held() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let member = "{\"kind\":\"member\",\"tenant\":2,\"uid\":1,\"nickname\":\"a\"}\n";
    let mut long = member.as_bytes().to_vec();
    long.extend(std::iter::repeat_n(b' ', 3 << 20));
    long.extend_from_slice(b"{}\n");
    let e = store.import_jsonl(long.as_slice(), |_| {}).unwrap_err();
    assert!(
        e.to_string().contains("line 2") && e.to_string().contains("longer than"),
        "{e}"
    );
    assert_eq!(store.tenant_stats(2).unwrap().members, 1);
    // Endless, with no newline: refused all the same.
    let endless = std::io::BufReader::new(std::io::repeat(0));
    let e = store.import_jsonl(endless, |_| {}).unwrap_err();
    assert!(e.to_string().contains("line 1"), "{e}");
    assert!(store.check().unwrap().ok);
}

/// A byte order mark before the first line (as Windows editors write) is
/// not part of the record (issue 18, item 15: it gave "expected value").
#[test]
fn a_byte_order_mark_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let text = "\u{feff}{\"kind\":\"member\",\"tenant\":2,\"uid\":1,\"nickname\":\"a\"}\n";
    store.import_jsonl(text.as_bytes(), |_| {}).unwrap();
    assert_eq!(store.tenant_stats(2).unwrap().members, 1);
}

/// The newest sled snapshot's log position (`snap.<hex lsn>`), if any.
fn sled_snapshot_lsn(dir: &std::path::Path) -> Option<u64> {
    std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            let hex = name.strip_prefix("snap.")?;
            u64::from_str_radix(hex, 16).ok()
        })
        .max()
}

/// A large import into a sled store this process owns ends with the store
/// reopened by the core, so sled's snapshot records where its log ends and
/// the next open does not replay the import (the CLI used to do this
/// itself, and library users were told to do it by hand); a small one does
/// not pay for a reopen.
#[test]
fn a_large_import_into_a_sled_store_leaves_it_settled() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        backend: chatstore::Backend::Sled,
        linger_ms: 0,
        ..Options::default()
    };
    let store = Store::open(dir.path(), options.clone()).unwrap();
    let lines = |from: u64, n: u64| -> String {
        (from..from + n)
            .map(|uid| {
                format!(
                    "{{\"kind\":\"member\",\"tenant\":1,\"uid\":{uid},\"nickname\":\"m{uid}\"}}\n"
                )
            })
            .collect()
    };
    let small = lines(1, 100);
    store.import_jsonl(small.as_bytes(), |_| {}).unwrap();
    let before = sled_snapshot_lsn(dir.path()).unwrap_or(0);
    let large = lines(1000, 10_000);
    let summary = store.import_jsonl(large.as_bytes(), |_| {}).unwrap();
    assert_eq!(summary.members, 10_000);
    let after = sled_snapshot_lsn(dir.path()).unwrap_or(0);
    assert!(after > before, "no new snapshot: {before:#x} -> {after:#x}");
    // The handle works on, on the reopened engine.
    assert!(store.is_owner());
    assert_eq!(store.tenant_stats(1).unwrap().members, 10_100);
    assert!(store.check().unwrap().ok);
    // A small import does not reopen.
    store
        .import_jsonl(lines(20_000, 10).as_bytes(), |_| {})
        .unwrap();
    assert_eq!(sled_snapshot_lsn(dir.path()).unwrap_or(0), after);
}

/// A store made shared with its group (`group_access`) stays shared: a
/// process opening it without the option (a PHP-FPM worker's plain open)
/// still gives the files it makes 0660, and the setgid bit a setgid parent
/// passed on is kept, so every file takes the directory's group.
#[test]
fn a_group_shared_store_stays_shared_whoever_opens_it() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o7777;
    for backend in [chatstore::Backend::Lmdb, chatstore::Backend::Sled] {
        let parent = tempfile::tempdir().unwrap();
        std::fs::set_permissions(parent.path(), std::fs::Permissions::from_mode(0o2770)).unwrap();
        let db = parent.path().join("shop.db");
        let shared = Options {
            group_access: true,
            backend,
            linger_ms: 0,
            ..Options::default()
        };
        let store = Store::open(&db, shared).unwrap();
        store
            .import_jsonl(demo::SEED_JSONL.as_bytes(), |_| {})
            .unwrap();
        store.close().unwrap();
        assert_eq!(mode(&db), 0o2770, "{backend}: the setgid bit is kept");
        // Files the next opener makes: LMDB's lock files, sled's owner's lock.
        for f in std::fs::read_dir(&db).unwrap().flatten() {
            if f.file_name().to_string_lossy().ends_with(".lock") {
                std::fs::remove_file(f.path()).unwrap();
            }
        }
        let plain = Options {
            linger_ms: 0,
            ..Options::default()
        };
        if backend == chatstore::Backend::Lmdb {
            // A compaction replaces data.mdb and drops lock.mdb: the new
            // ones are the group's too.
            Store::open(&db, plain.clone()).unwrap().compact().unwrap();
        }
        let store = Store::open(&db, plain).unwrap();
        assert!(store.options().group_access, "{backend}");
        store.close().unwrap();
        let mut locks = 0;
        for f in std::fs::read_dir(&db).unwrap().flatten() {
            let name = f.file_name().to_string_lossy().into_owned();
            if f.file_type().unwrap().is_file() {
                use std::os::unix::fs::MetadataExt;
                assert_eq!(mode(&f.path()), 0o660, "{backend}: {name}");
                let gid = |p: &std::path::Path| std::fs::metadata(p).unwrap().gid();
                assert_eq!(gid(&f.path()), gid(&db), "{backend}: {name}");
                locks += usize::from(name.ends_with(".lock"));
            }
        }
        assert!(locks > 0, "{backend}: the open made no lock file");
    }
}
