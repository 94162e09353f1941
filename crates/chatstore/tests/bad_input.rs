//! Bad input through the Rust API (the rows "Rust API" of
//! docs/RELIABILITY.md): each call is refused with an error that names what
//! was wrong, and the store is unchanged afterwards (same export, `check()`
//! passes).
#![allow(clippy::unwrap_used)] // a failed unwrap here is a failed test or run

mod common;

use chatstore::{
    limits, Account, Agent, Error, ErrorKind, Member, Message, Options, Session, Store,
};
use serde_json::json;

fn export(store: &Store) -> Vec<u8> {
    let mut v = Vec::new();
    store.export_jsonl(&mut v).unwrap();
    v
}

/// Runs `f`, which must fail with `kind` and a message containing `names`,
/// and checks that nothing was written.
fn refused<T: std::fmt::Debug>(
    store: &Store,
    kind: ErrorKind,
    names: &str,
    f: impl FnOnce() -> chatstore::Result<T>,
) {
    let before = export(store);
    let e = f().expect_err("the call must be refused");
    assert_eq!(e.kind(), kind, "{e}");
    assert!(
        e.to_string().contains(names),
        "{e:?} does not name {names:?}"
    );
    assert_eq!(
        export(store),
        before,
        "a refused call changed the store: {e}"
    );
    assert!(store.check().unwrap().ok);
}

#[test]
fn over_the_size_limits_each_field_is_named() {
    let (_d, store) = common::seeded();
    let over = |n: usize| "字".repeat(n / 3 + 1);
    let member = |f: &dyn Fn(&mut Member)| {
        let mut m = Member {
            tenant: 2,
            uid: 2669,
            ..Default::default()
        };
        f(&mut m);
        m
    };
    for (field, m) in [
        ("nickname", member(&|m| m.nickname = over(limits::MAX_NAME))),
        (
            "mobile",
            member(&|m| m.mobile = "1".repeat(limits::MAX_MOBILE + 1)),
        ),
        (
            "avatar",
            member(&|m| m.avatar = "a".repeat(limits::MAX_URL + 1)),
        ),
        (
            "email",
            member(&|m| m.email = "e".repeat(limits::MAX_EMAIL + 1)),
        ),
        (
            "address",
            member(&|m| m.address = "a".repeat(limits::MAX_ADDRESS + 1)),
        ),
    ] {
        refused(&store, ErrorKind::InvalidInput, field, || {
            store.upsert_member(&m)
        });
    }
    let msg = Message {
        tenant: 2,
        session_id: 1,
        content: "x".repeat(limits::MAX_CONTENT + 1),
        ..Default::default()
    };
    refused(&store, ErrorKind::InvalidInput, "content", || {
        store.append_message(&msg)
    });
    let agent = Agent {
        tenant: 2,
        id: 2,
        nickname: over(limits::MAX_NAME),
        ..Default::default()
    };
    refused(&store, ErrorKind::InvalidInput, "nickname", || {
        store.upsert_agent(&agent)
    });
    let account = Account {
        sso_id: 1,
        tenant: 2,
        hash: "h".repeat(limits::MAX_ACCOUNT_HASH + 1),
    };
    refused(&store, ErrorKind::InvalidInput, "hash", || {
        store.upsert_account(&account)
    });
    refused(&store, ErrorKind::InvalidInput, "user_name", || {
        store.search_members(2, &"q".repeat(limits::MAX_QUERY + 1))
    });
    // Exactly at the limit is accepted.
    store
        .upsert_member(&member(&|m| m.nickname = "n".repeat(limits::MAX_NAME)))
        .unwrap();
}

#[test]
fn nul_characters_wrong_values_and_unknown_ids() {
    let (_d, store) = common::seeded();
    let s = &store;
    let msg = |f: &dyn Fn(&mut Message)| {
        let mut m = Message {
            tenant: 2,
            session_id: 1,
            ..Default::default()
        };
        f(&mut m);
        m
    };
    type Call<'a> = Box<dyn Fn() -> chatstore::Result<()> + 'a>;
    let cases: Vec<(ErrorKind, &str, Call)> = vec![
        (
            ErrorKind::InvalidInput,
            "NUL",
            Box::new(|| {
                s.upsert_member(&Member {
                    tenant: 2,
                    uid: 1,
                    nickname: "a\0b".into(),
                    ..Default::default()
                })
            }),
        ),
        (
            ErrorKind::InvalidInput,
            "hash",
            Box::new(|| {
                s.upsert_session(&Session {
                    tenant: 2,
                    uid: 2669,
                    hash: "NOT-HEX".into(),
                    ..Default::default()
                })
                .map(drop)
            }),
        ),
        (
            ErrorKind::InvalidInput,
            "ip",
            Box::new(|| {
                s.append_message(&msg(&|m| m.ip = "300.1.1.1".into()))
                    .map(drop)
            }),
        ),
        (
            ErrorKind::InvalidInput,
            "content_type",
            Box::new(|| s.append_message(&msg(&|m| m.content_type = 9)).map(drop)),
        ),
        (
            ErrorKind::InvalidInput,
            "id",
            Box::new(|| {
                s.upsert_agent(&Agent {
                    tenant: 2,
                    id: 0,
                    ..Default::default()
                })
            }),
        ),
        (
            ErrorKind::InvalidInput,
            "id",
            Box::new(|| s.append_message(&msg(&|m| m.id = u64::MAX)).map(drop)),
        ),
        (
            ErrorKind::InvalidInput,
            "largest id",
            Box::new(|| s.append_message(&msg(&|m| m.id = u64::MAX - 1)).map(drop)),
        ),
        (
            ErrorKind::InvalidInput,
            "time",
            Box::new(|| s.append_message(&msg(&|m| m.time = i64::MAX)).map(drop)),
        ),
        (
            ErrorKind::InvalidInput,
            "uid",
            Box::new(|| {
                s.upsert_member(&Member {
                    tenant: 2,
                    uid: 1 << 53,
                    ..Default::default()
                })
            }),
        ),
        (
            ErrorKind::NotFound,
            "member 999999",
            Box::new(|| {
                s.upsert_session(&Session {
                    tenant: 2,
                    uid: 999_999,
                    ..Default::default()
                })
                .map(drop)
            }),
        ),
        (
            ErrorKind::NotFound,
            "agent 77",
            Box::new(|| {
                s.upsert_session(&Session {
                    tenant: 2,
                    uid: 2669,
                    agent_id: 77,
                    ..Default::default()
                })
                .map(drop)
            }),
        ),
        (
            ErrorKind::NotFound,
            "session 424242",
            Box::new(|| {
                s.append_message(&msg(&|m| m.session_id = 424_242))
                    .map(drop)
            }),
        ),
        (
            ErrorKind::NotFound,
            "session 5",
            Box::new(|| s.delete_session(9, 5)),
        ),
        (
            ErrorKind::NotFound,
            "member 5",
            Box::new(|| s.delete_member(9, 5)),
        ),
        (
            ErrorKind::NotFound,
            "account 31337",
            Box::new(|| s.delete_account(31337)),
        ),
        (
            ErrorKind::NotFound,
            "session 424242",
            Box::new(|| s.messages(2, 424_242, 1, 20).map(drop)),
        ),
    ];
    for (kind, names, call) in cases {
        refused(s, kind, names, call);
    }
}

#[test]
fn endpoint_parameters_of_the_wrong_type_or_range() {
    let (_d, store) = common::seeded();
    for (params, names) in [
        (json!([]), "params"),
        (json!({}), "tenant"),
        (json!({"tenant": -1}), "tenant"),
        (json!({"tenant": "two"}), "tenant"),
        (
            serde_json::from_str(r#"{"tenant": 18446744073709551616}"#).unwrap(),
            "tenant",
        ),
        (json!({"tenant": 2, "employee": -5}), "employee"),
        (json!({"tenant": 2, "user_name": {"a": 1}}), "user_name"),
        (json!({"tenant": 2, "order": "sideways"}), "order"),
        (json!({"tenant": 2, "pgae": 1}), "pgae"),
    ] {
        refused(&store, ErrorKind::InvalidInput, names, || {
            store.history_list_json(&params)
        });
    }
    for (params, names) in [
        (json!({"hash": "x"}), "sso_id"),
        (json!({"sso_id": -218, "hash": "x"}), "sso_id"),
        (json!({"sso_id": 218, "hash": [1]}), "hash"),
    ] {
        refused(&store, ErrorKind::InvalidInput, names, || {
            store.hischat_json(&params)
        });
    }
    // Negative and huge page numbers are the platform's default, not errors.
    let neg = store
        .history_list_json(&json!({"tenant": 2, "page": -3, "pagesize": -1}))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&neg).unwrap();
    assert_eq!(v["data"]["current_page"], 1);
    assert_eq!(v["data"]["per_page"], 10);
    let huge = store
        .history_list_json(&json!({"tenant": 2, "page": i64::MAX, "pagesize": 1000}))
        .unwrap();
    let v: serde_json::Value = serde_json::from_str(&huge).unwrap();
    assert_eq!(v["data"]["per_page"], 100);
    assert_eq!(v["data"]["data"], json!([]));
}

#[test]
fn store_paths_that_cannot_be_stores() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a store").unwrap();
    let e = Store::open(&file, Options::default()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    assert!(e.to_string().contains("is a file"), "{e}");
    assert_eq!(
        std::fs::read(&file).unwrap(),
        b"not a store",
        "the file is untouched"
    );

    let under_file = file.join("store");
    let e = Store::open(&under_file, Options::default()).unwrap_err();
    assert!(matches!(e, Error::Storage(_) | Error::Io(_)), "{e:?}");
}

/// An explicit id over 2^53 - 1 is refused and leaves the tenant's id-less
/// writes as they were (it used to make every later one fail).
#[test]
fn a_huge_explicit_id_leaves_later_ids_alone() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), Options::default()).unwrap();
    s.upsert_member(&Member {
        tenant: 2,
        uid: 1,
        ..Default::default()
    })
    .unwrap();
    let sid = s
        .upsert_session(&Session {
            tenant: 2,
            uid: 1,
            ..Default::default()
        })
        .unwrap();
    let m = |id: u64| Message {
        tenant: 2,
        session_id: sid,
        id,
        content: "hi".into(),
        ..Default::default()
    };
    let e = s.append_message(&m(u64::MAX - 1)).unwrap_err();
    assert!(e.to_string().contains("largest id, 2^53 - 1"), "{e}");
    assert_eq!(s.append_message(&m(0)).unwrap(), 1);
    assert_eq!(
        s.append_message(&m(chatstore::limits::MAX_ID)).unwrap(),
        chatstore::limits::MAX_ID
    );
    // Past the bound there is no id left to give, and the error says so.
    let e = s.append_message(&m(0)).unwrap_err();
    assert!(e.to_string().contains("no message id left"), "{e}");
    assert!(s.check().unwrap().ok);
}
