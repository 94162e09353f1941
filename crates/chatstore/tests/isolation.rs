//! Tenant isolation, as a property: two tenants share every id (members,
//! agents, sessions, messages, nicknames, mobiles). Every query of tenant 1 on
//! the store holding both tenants returns exactly what it returns on a store
//! holding tenant 1 alone, and no row of tenant 2. hischat with tenant 1's
//! hash for tenant 2's account is refused with nothing revealed.
#![allow(clippy::unwrap_used)] // a failed unwrap here is a failed test or run

use chatstore::{
    Account, Agent, HistoryQuery, Member, Message, Options, Order, Sender, Session, Store,
    HISCHAT_BAD_HASH,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Member(Member),
    Agent(Agent),
    Session(Session),
    Message(Message),
    DeleteSession(u64, u64),
    DeleteMember(u64, u64),
}

const NICKS: &[&str] = &["李小龙", "Nguyễn Văn Đức", "john", "小芳", "Trường"];
const MOBILES: &[&str] = &["", "+84 916 123 456", "0912345678", "+86 185 1669 0005"];
const QUERIES: &[&str] = &[
    "小",
    "龙",
    "van",
    "duc",
    "916",
    "0912",
    "+84 912 345 678",
    "1",
];

fn op() -> impl Strategy<Value = Op> {
    let t = 1u64..=2;
    prop_oneof![
        3 => (t.clone(), 1u64..=6, 0..NICKS.len(), 0..MOBILES.len()).prop_map(|(tenant, uid, n, m)| {
            Op::Member(Member { tenant, uid, nickname: NICKS[n].into(), mobile: MOBILES[m].into(), ..Default::default() })
        }),
        1 => (t.clone(), 1u64..=2).prop_map(|(tenant, id)| {
            Op::Agent(Agent { tenant, id, nickname: format!("客服{id}"), ..Default::default() })
        }),
        3 => (t.clone(), 1u64..=8, 1u64..=6, 0u64..=2, 0i64..50).prop_map(|(tenant, id, uid, agent_id, at)| {
            Op::Session(Session { tenant, id, uid, agent_id, last_updated_at: at,
                hash: format!("{:032x}", id * 31 + tenant), ..Default::default() })
        }),
        5 => (t.clone(), 1u64..=8, prop_oneof![Just(0u64), 1u64..=20], 1i64..100).prop_map(|(tenant, session_id, id, time)| {
            Op::Message(Message { tenant, session_id, id, time, sender: Sender::Member,
                content: format!("m{id}@{time}"), ..Default::default() })
        }),
        1 => (t.clone(), 1u64..=8).prop_map(|(t, s)| Op::DeleteSession(t, s)),
        1 => (t, 1u64..=6).prop_map(|(t, u)| Op::DeleteMember(t, u)),
    ]
}

fn tenant_of(op: &Op) -> u64 {
    match op {
        Op::Member(m) => m.tenant,
        Op::Agent(a) => a.tenant,
        Op::Session(s) => s.tenant,
        Op::Message(m) => m.tenant,
        Op::DeleteSession(t, _) | Op::DeleteMember(t, _) => *t,
    }
}

fn apply(store: &Store, op: &Op) {
    // Refusals (a missing member, agent or session) are part of the test
    // data: they happen identically in both stores.
    let _ = match op {
        Op::Member(m) => store.upsert_member(m),
        Op::Agent(a) => store.upsert_agent(a),
        Op::Session(s) => store.upsert_session(s).map(|_| ()),
        Op::Message(m) => store.append_message(m).map(|_| ()),
        Op::DeleteSession(t, s) => store.delete_session(*t, *s),
        Op::DeleteMember(t, u) => store.delete_member(*t, *u),
    };
}

fn accounts(store: &Store, tenants: &[u64]) {
    for &t in tenants {
        store
            .upsert_account(&Account {
                sso_id: 100 + t,
                tenant: t,
                hash: format!("hash-of-tenant-{t}"),
            })
            .unwrap();
    }
}

/// Every query of tenant 1, rendered to text.
fn answers(store: &Store) -> Vec<String> {
    let mut out = Vec::new();
    for employee in [None, Some(0), Some(1), Some(2)] {
        for user_name in std::iter::once(None).chain(QUERIES.iter().map(|q| Some(q.to_string()))) {
            for order in [Order::Id, Order::Recent] {
                for page in 1..=2 {
                    let mut q = HistoryQuery::new(1);
                    q.employee = employee;
                    q.user_name = user_name.clone();
                    q.order = order;
                    q.page = page;
                    q.pagesize = 3;
                    let p = store.history_list(&q).unwrap();
                    for r in &p.rows {
                        assert_eq!(r.session.tenant, 1);
                        assert!(r.member.as_ref().is_none_or(|m| m.tenant == 1));
                        assert!(r.agent.as_ref().is_none_or(|a| a.tenant == 1));
                        assert!(r.last_message.as_ref().is_none_or(|m| m.tenant == 1));
                    }
                    out.push(format!("{q:?} -> {p:?}"));
                }
            }
        }
    }
    for q in QUERIES {
        let found = store.search_members(1, q).unwrap();
        assert!(found.iter().all(|m| m.tenant == 1));
        out.push(format!("search {q} -> {found:?}"));
    }
    for sid in 1..=8 {
        let m = store
            .messages(1, sid, 1, 50)
            .inspect(|p| assert!(p.messages.iter().all(|m| m.tenant == 1)));
        out.push(format!("messages {sid} -> {m:?}"));
    }
    out.push(format!(
        "conversations -> {:?}",
        store.conversations(1, 1).unwrap()
    ));
    out.push(store.hischat_text(101, "hash-of-tenant-1", 1).unwrap());
    out.push(format!("stats -> {:?}", store.tenant_stats(1).unwrap()));
    out
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    (dir, store)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn no_query_crosses_tenants(ops in proptest::collection::vec(op(), 1..60)) {
        let (_d1, both) = open();
        let (_d2, alone) = open();
        accounts(&both, &[1, 2]);
        accounts(&alone, &[1]);
        for op in &ops {
            apply(&both, op);
            if tenant_of(op) == 1 {
                apply(&alone, op);
            }
        }
        prop_assert_eq!(answers(&both), answers(&alone));
        // Tenant 1's hash does not open tenant 2's account, and the refusal
        // is the same as for an account that does not exist.
        let refused = both.hischat(102, "hash-of-tenant-1", 1).unwrap();
        prop_assert_eq!(&refused["error"], HISCHAT_BAD_HASH);
        prop_assert_eq!(&refused["history"], "");
        prop_assert_eq!(refused, both.hischat(999, "hash-of-tenant-1", 1).unwrap());
    }
}
