//! Search inside message text against a brute-force scan: random messages
//! (Chinese, Vietnamese, Latin, order numbers) over sessions of two agents,
//! some recalled, some deleted, some replaced; every query, scope and page
//! answers exactly what reading every visible message would, newest first,
//! with the exact total, whether postings wait in the pending list or sit
//! in blocks; `check()` verifies the index. A store created
//! without the text index answers the same within a session and refuses
//! the rest.
#![allow(clippy::unwrap_used)] // a failed unwrap here is a failed test or run

mod common;

use chatstore::search::normalize;
use chatstore::{Error, Member, Message, MessageSearch, Options, Session, Store};
use proptest::prelude::*;

const TEXTS: &[&str] = &[
    "您好，订单 20261202 已发货",
    "请问这个商品有货吗",
    "còn hàng không ạ? Đơn 20261202",
    "Cảm ơn shop nhiều",
    "order #A-1029 shipped today",
    "退款什么时候到账",
    "ORDER a-1029 refund",
    "订单号 A-1029",
    "hello",
    // Hold every gram of a query without holding the query: only the
    // verification of each candidate tells them apart.
    "订单 已取消 2026",
    "ellohel",
];
const QUERIES: &[&str] = &[
    "订单",
    "订单 2026",
    "20261202",
    "a-1029",
    "A-1029",
    "con hang",
    "CÒN HÀNG",
    "商品",
    "退款",
    "shop",
    "hello",
    "xyz不存在",
    "ord",
];

#[derive(Debug, Clone)]
enum Op {
    Append { sid: u64, text: usize, id: u64 },
    Recall { nth: usize },
    Delete { nth: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        6 => (1u64..=4, 0..TEXTS.len(), prop_oneof![3 => Just(0u64), 1 => 1u64..=12])
            .prop_map(|(sid, text, id)| Op::Append { sid, text, id }),
        1 => (0usize..20).prop_map(|nth| Op::Recall { nth }),
        1 => (0usize..20).prop_map(|nth| Op::Delete { nth }),
    ]
}

fn setup(store: &Store) {
    store
        .upsert_member(&Member {
            tenant: 3,
            uid: 1,
            nickname: "khách".into(),
            ..Default::default()
        })
        .unwrap();
    for id in 1..=2 {
        store
            .upsert_agent(&chatstore::Agent {
                tenant: 3,
                id,
                ..Default::default()
            })
            .unwrap();
    }
    for sid in 1..=4u64 {
        store
            .upsert_session(&Session {
                tenant: 3,
                id: sid,
                uid: 1,
                agent_id: 1 + sid % 2,
                ..Default::default()
            })
            .unwrap();
    }
}

/// Appends a message to session `sid` of tenant 3; returns its id.
fn append(store: &Store, sid: u64, content: &str, time: i64) -> u64 {
    store
        .append_message(&Message {
            tenant: 3,
            session_id: sid,
            content: content.into(),
            time,
            ..Default::default()
        })
        .unwrap()
}

/// Every visible message, newest id first (a reused id: by session).
fn visible(store: &Store) -> Vec<Message> {
    let mut all: Vec<Message> = (1..=4u64)
        .flat_map(|sid| store.messages(3, sid, 1, 100).unwrap().messages)
        .collect();
    all.sort_by_key(|m| (std::cmp::Reverse(m.id), m.session_id));
    all
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    #[test]
    fn search_agrees_with_a_scan(
        ops in prop::collection::vec(op(), 1..50),
        text_index in prop_oneof![3 => Just(true), 1 => Just(false)],
        // Postings straight into blocks, a pending list that fills and is
        // moved into them every few messages, and the default one.
        text_pending_bytes in prop_oneof![Just(0usize), Just(120), Just(8 << 10)],
    ) {
        let dir = tempfile::tempdir().unwrap();
        let options = Options { text_index, text_pending_bytes, ..Options::default() };
        let store = Store::open(dir.path(), options).unwrap();
        setup(&store);
        for (i, op) in ops.iter().enumerate() {
            match *op {
                Op::Append { sid, text, id } => {
                    store.append_message(&Message {
                        tenant: 3, session_id: sid, id, content: TEXTS[text].into(),
                        time: 1_800_000_000 + i as i64, ..Default::default()
                    }).unwrap();
                }
                Op::Recall { nth } | Op::Delete { nth } => {
                    let v = visible(&store);
                    if let Some(m) = v.get(nth) {
                        if matches!(op, Op::Recall { .. }) {
                            store.recall_message(3, m.session_id, m.id).unwrap();
                        } else {
                            store.delete_message(3, m.session_id, m.id).unwrap();
                        }
                    }
                }
            }
        }
        let all = visible(&store);
        for q in QUERIES {
            let qn = normalize(q.trim());
            for (session_id, agent_id) in [(None, None), (Some(2), None), (None, Some(1)), (None, Some(2))] {
                let want: Vec<(u64, u64)> = all
                    .iter()
                    .filter(|m| !m.recalled && normalize(&m.content).contains(&qn))
                    .filter(|m| session_id.is_none_or(|s| s == m.session_id))
                    .filter(|m| agent_id.is_none_or(|a| a == 1 + m.session_id % 2))
                    .map(|m| (m.id, m.session_id))
                    .collect();
                let mut got = Vec::new();
                for page in 1..=3 {
                    let mut s = MessageSearch::new(3, *q);
                    s.session_id = session_id;
                    s.agent_id = agent_id;
                    s.page = page;
                    s.pagesize = 4;
                    let hits = match store.search_messages(&s) {
                        Ok(h) => h,
                        // A store without the text index searches sessions only.
                        Err(Error::Conflict { .. }) if session_id.is_none() && !text_index => break,
                        Err(Error::InvalidInput { .. }) if session_id.is_none() => {
                            // Too short for the index without a session.
                            prop_assert!(chatstore::search::message_grams(&qn).is_empty(), "{}", q);
                            break;
                        }
                        Err(e) => panic!("{q}: {e}"),
                    };
                    prop_assert_eq!(hits.total, want.len() as u64, "{} {:?} {:?}", q, session_id, agent_id);
                    got.extend(hits.messages.iter().map(|m| (m.id, m.session_id)));
                }
                if session_id.is_none() && !text_index {
                    prop_assert!(got.is_empty());
                    continue;
                }
                if got.len() < want.len().min(12) && !chatstore::search::message_grams(&qn).is_empty() {
                    prop_assert!(false, "{}: got {:?}, want {:?}", q, got, want);
                }
                if !chatstore::search::message_grams(&qn).is_empty() || session_id.is_some() {
                    prop_assert_eq!(&got[..], &want[..want.len().min(12)], "{} {:?} {:?}", q, session_id, agent_id);
                }
            }
        }
        let report = store.check().unwrap();
        prop_assert!(report.ok, "{:?}", report.violations);
    }
}

#[test]
fn short_queries_need_a_session_and_search_json_works() {
    let dir = tempfile::tempdir().unwrap();
    let store = common::open(&dir);
    setup(&store);
    let id = append(&store, 2, "好的 ok", 1);
    let e = store
        .search_messages(&MessageSearch::new(3, "好"))
        .unwrap_err();
    assert!(
        e.to_string().contains("q:") || e.to_string().contains("invalid q"),
        "{e}"
    );
    let mut s = MessageSearch::new(3, "好");
    s.session_id = Some(2);
    assert_eq!(store.search_messages(&s).unwrap().messages[0].id, id);
    let text = store
        .search_messages_json(&serde_json::json!({"tenant": 3, "q": "好的", "pagesize": 5}))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["total"], 1);
    assert_eq!(v["data"][0]["content"], "好的 ok");
    let e = store
        .search_messages_json(&serde_json::json!({"tenant": 3, "qq": "x"}))
        .unwrap_err();
    assert!(e.to_string().contains("qq"), "{e}");
    let long = "长".repeat(100);
    let e = store
        .search_messages(&MessageSearch::new(3, long))
        .unwrap_err();
    assert!(e.to_string().contains("q"), "{e}");
}

#[test]
fn the_text_index_is_chosen_when_a_store_is_created() {
    let dir = tempfile::tempdir().unwrap();
    // sled: the test reads the store with sled afterwards.
    let without = Options {
        text_index: false,
        linger_ms: 0,
        backend: chatstore::Backend::Sled,
        ..Options::default()
    };
    let store = Store::open(dir.path(), without.clone()).unwrap();
    setup(&store);
    let id = append(&store, 2, "您好，订单 20261202 已发货", 1);
    let e = store
        .search_messages(&MessageSearch::new(3, "订单"))
        .unwrap_err();
    assert!(matches!(e, Error::Conflict { .. }), "{e:?}");
    assert!(e.to_string().contains("text_index"), "{e}");
    let mut s = MessageSearch::new(3, "订单");
    s.session_id = Some(2);
    assert_eq!(store.search_messages(&s).unwrap().messages[0].id, id);
    assert!(store.check().unwrap().ok);
    let info = store.info().unwrap();
    assert_eq!(
        (info.format, info.text_index),
        (chatstore::STORE_FORMAT, false)
    );
    store.close().unwrap();
    drop(store);
    {
        // No posting was written, and the store records its choice apart
        // from a format that builds from before the choice refuse.
        let db = common::raw_sled(&dir);
        let data = db.open_tree("data").unwrap();
        assert!(data
            .iter()
            .keys()
            .all(|k| !matches!(k.unwrap()[8], 0x22..=0x24)));
        let marker = db.get(b"chatstore.format").unwrap().unwrap();
        assert_eq!(marker.as_ref(), &chatstore::STORE_FORMAT.to_be_bytes());
        let choice = db.get(b"chatstore.text_index").unwrap().unwrap();
        assert_eq!(choice.as_ref(), &[0]);
    }
    // Reopened with the default options (text_index true), it keeps its
    // choice: appends still write no postings and check() agrees.
    let store = Store::open(
        dir.path(),
        Options {
            linger_ms: 0,
            ..Options::default()
        },
    )
    .unwrap();
    append(&store, 1, "订单 A-1029", 2);
    assert!(store
        .search_messages(&MessageSearch::new(3, "订单"))
        .is_err());
    let report = store.check().unwrap();
    assert!(report.ok, "{:?}", report.violations);
    store.close().unwrap();

    // A store created with the index keeps it when opened with false.
    let dir = tempfile::tempdir().unwrap();
    let store = common::open_unshared(&dir);
    setup(&store);
    store.close().unwrap();
    drop(store);
    let store = Store::open(dir.path(), without).unwrap();
    append(&store, 2, "订单", 1);
    let hits = store
        .search_messages(&MessageSearch::new(3, "订单"))
        .unwrap();
    assert_eq!(hits.total, 1);
    let info = store.info().unwrap();
    assert_eq!(
        (info.format, info.text_index),
        (chatstore::STORE_FORMAT, true)
    );
}
