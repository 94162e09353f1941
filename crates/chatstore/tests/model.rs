//! Model-based property test: random sequences of upserts, appends and
//! deletes go to the store and to a plain in-memory model; every query agrees
//! and `check()` passes after each sequence.

mod common;

use std::collections::BTreeMap;

use chatstore::{Agent, HistoryQuery, Member, Message, Order, Sender, Session, Store};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Member {
        t: u64,
        uid: u64,
        nick: usize,
        mobile: usize,
    },
    Agent {
        t: u64,
        id: u64,
    },
    Session {
        t: u64,
        id: u64,
        uid: u64,
        agent: u64,
        updated: i64,
    },
    Message {
        t: u64,
        sid: u64,
        id: u64,
        time: i64,
        sender: u8,
    },
    DeleteSession {
        t: u64,
        sid: u64,
    },
    DeleteMember {
        t: u64,
        uid: u64,
    },
    DeleteAgent {
        t: u64,
        id: u64,
    },
}

const NICKS: &[&str] = &["李小龙", "Nguyễn Văn Đức", "john", "小芳", "Trường", "bob"];
const MOBILES: &[&str] = &[
    "",
    "+84 916 123 456",
    "0912345678",
    "+86 185 1669 0005",
    "150-0000-0002",
];

fn op() -> impl Strategy<Value = Op> {
    let t = 1u64..=2;
    prop_oneof![
        3 => (t.clone(), 1u64..=6, 0..NICKS.len(), 0..MOBILES.len())
            .prop_map(|(t, uid, nick, mobile)| Op::Member { t, uid, nick, mobile }),
        1 => (t.clone(), 1u64..=3).prop_map(|(t, id)| Op::Agent { t, id }),
        3 => (t.clone(), prop_oneof![Just(0u64), 1u64..=8], 1u64..=6, 0u64..=3, prop_oneof![Just(0i64), 1i64..100])
            .prop_map(|(t, id, uid, agent, updated)| Op::Session { t, id, uid, agent, updated }),
        5 => (t.clone(), 1u64..=8, prop_oneof![Just(0u64), 1u64..=30], 1i64..120, 0u8..3)
            .prop_map(|(t, sid, id, time, sender)| Op::Message { t, sid, id, time, sender }),
        1 => (t.clone(), 1u64..=8).prop_map(|(t, sid)| Op::DeleteSession { t, sid }),
        1 => (t.clone(), 1u64..=6).prop_map(|(t, uid)| Op::DeleteMember { t, uid }),
        1 => (t, 1u64..=3).prop_map(|(t, id)| Op::DeleteAgent { t, id }),
    ]
}

#[derive(Default, Debug)]
struct Model {
    members: BTreeMap<(u64, u64), Member>,
    agents: BTreeMap<(u64, u64), Agent>,
    sessions: BTreeMap<(u64, u64), Session>,
    messages: BTreeMap<(u64, u64, u64), Message>,
    next_session: BTreeMap<u64, u64>,
    next_message: BTreeMap<u64, u64>,
}

impl Model {
    /// Applies an op; returns whether it should succeed.
    fn apply(&mut self, op: &Op) -> bool {
        match *op {
            Op::Member {
                t,
                uid,
                nick,
                mobile,
            } => {
                self.members.insert((t, uid), member(t, uid, nick, mobile));
                true
            }
            Op::Agent { t, id } => {
                self.agents.insert((t, id), agent(t, id));
                true
            }
            Op::Session {
                t,
                id,
                uid,
                agent,
                updated,
            } => {
                if !self.members.contains_key(&(t, uid))
                    || (agent != 0 && !self.agents.contains_key(&(t, agent)))
                {
                    return false;
                }
                let next = self.next_session.entry(t).or_insert(1);
                let id = if id == 0 { *next } else { id };
                *next = (*next).max(id + 1);
                let hash = self
                    .sessions
                    .get(&(t, id))
                    .map(|s| s.hash.clone())
                    .unwrap_or_default();
                self.sessions.insert(
                    (t, id),
                    Session {
                        tenant: t,
                        id,
                        uid,
                        agent_id: agent,
                        last_updated_at: updated,
                        hash,
                        ..Default::default()
                    },
                );
                true
            }
            Op::Message {
                t,
                sid,
                id,
                time,
                sender,
            } => {
                if !self.sessions.contains_key(&(t, sid)) {
                    return false;
                }
                let next = self.next_message.entry(t).or_insert(1);
                let id = if id == 0 { *next } else { id };
                *next = (*next).max(id + 1);
                self.messages
                    .insert((t, sid, id), message(t, sid, id, time, sender));
                true
            }
            Op::DeleteSession { t, sid } => {
                if self.sessions.remove(&(t, sid)).is_none() {
                    return false;
                }
                self.messages.retain(|k, _| !(k.0 == t && k.1 == sid));
                true
            }
            Op::DeleteMember { t, uid } => {
                if self.members.remove(&(t, uid)).is_none() {
                    return false;
                }
                let gone: Vec<u64> = self
                    .sessions
                    .values()
                    .filter(|s| s.tenant == t && s.uid == uid)
                    .map(|s| s.id)
                    .collect();
                for sid in gone {
                    self.sessions.remove(&(t, sid));
                    self.messages.retain(|k, _| !(k.0 == t && k.1 == sid));
                }
                true
            }
            Op::DeleteAgent { t, id } => {
                if !self.agents.contains_key(&(t, id))
                    || self
                        .sessions
                        .values()
                        .any(|s| s.tenant == t && s.agent_id == id)
                {
                    return false;
                }
                self.agents.remove(&(t, id));
                true
            }
        }
    }

    fn last(&self, t: u64, sid: u64) -> Option<&Message> {
        self.messages
            .range((t, sid, 0)..=(t, sid, u64::MAX))
            .next_back()
            .map(|(_, m)| m)
    }

    fn activity(&self, s: &Session) -> i64 {
        s.last_updated_at
            .max(self.last(s.tenant, s.id).map_or(i64::MIN, |m| m.time))
    }

    /// Session ids of a list, in order.
    fn list(&self, t: u64, agent: Option<u64>, order: Order) -> Vec<u64> {
        let mut v: Vec<&Session> = self
            .sessions
            .values()
            .filter(|s| s.tenant == t && agent.is_none_or(|a| a == s.agent_id))
            .collect();
        match order {
            Order::Id => v.sort_by_key(|s| std::cmp::Reverse(s.id)),
            Order::Recent => v.sort_by_key(|s| std::cmp::Reverse((self.activity(s), s.id))),
        }
        v.iter().map(|s| s.id).collect()
    }
}

fn member(t: u64, uid: u64, nick: usize, mobile: usize) -> Member {
    Member {
        tenant: t,
        uid,
        nickname: NICKS[nick].into(),
        mobile: MOBILES[mobile].into(),
        ..Default::default()
    }
}

fn agent(t: u64, id: u64) -> Agent {
    Agent {
        tenant: t,
        id,
        uid: 100 + id,
        nickname: format!("客服{id:04}"),
        avatar: String::new(),
    }
}

fn message(t: u64, sid: u64, id: u64, time: i64, sender: u8) -> Message {
    let sender = [Sender::Member, Sender::Agent, Sender::System][sender as usize];
    Message {
        tenant: t,
        session_id: sid,
        id,
        sender,
        sender_id: 7,
        content: format!("m{sender:?}@{time}"),
        time,
        ip: "10.0.0.1".into(),
        ..Default::default()
    }
}

fn apply(store: &Store, op: &Op) -> bool {
    let r = match *op {
        Op::Member {
            t,
            uid,
            nick,
            mobile,
        } => store.upsert_member(&member(t, uid, nick, mobile)),
        Op::Agent { t, id } => store.upsert_agent(&agent(t, id)),
        Op::Session {
            t,
            id,
            uid,
            agent,
            updated,
        } => store
            .upsert_session(&Session {
                tenant: t,
                id,
                uid,
                agent_id: agent,
                last_updated_at: updated,
                ..Default::default()
            })
            .map(|_| ()),
        Op::Message {
            t,
            sid,
            id,
            time,
            sender,
        } => store
            .append_message(&message(t, sid, id, time, sender))
            .map(|_| ()),
        Op::DeleteSession { t, sid } => store.delete_session(t, sid),
        Op::DeleteMember { t, uid } => store.delete_member(t, uid),
        Op::DeleteAgent { t, id } => store.delete_agent(t, id),
    };
    r.is_ok()
}

fn compare(store: &Store, model: &Model) -> Result<(), TestCaseError> {
    for t in 1..=2u64 {
        for agent in [None, Some(0), Some(1), Some(2), Some(3)] {
            for order in [Order::Id, Order::Recent] {
                let want = model.list(t, agent, order);
                let mut got = Vec::new();
                let mut q = HistoryQuery::new(t);
                q.employee = agent;
                q.order = order;
                q.pagesize = 3;
                for page in 1..=4 {
                    q.page = page;
                    let p = store.history_list(&q).unwrap();
                    prop_assert_eq!(p.total, want.len() as u64);
                    for r in &p.rows {
                        got.push(r.session.id);
                        let s = &model.sessions[&(t, r.session.id)];
                        prop_assert_eq!(r.activity_at, model.activity(s));
                        prop_assert_eq!(r.last_message.as_ref(), model.last(t, s.id));
                        prop_assert_eq!(r.member.as_ref(), model.members.get(&(t, s.uid)));
                        prop_assert_eq!(r.agent.as_ref(), model.agents.get(&(t, s.agent_id)));
                        prop_assert_eq!(
                            (r.session.uid, r.session.agent_id, r.session.last_updated_at),
                            (s.uid, s.agent_id, s.last_updated_at)
                        );
                    }
                }
                prop_assert_eq!(
                    &got,
                    &want.iter().copied().take(12).collect::<Vec<_>>(),
                    "tenant {} agent {:?} {:?}",
                    t,
                    agent,
                    order
                );
            }
        }
        for s in model.sessions.values().filter(|s| s.tenant == t) {
            let p = store.messages(t, s.id, 1, 100).unwrap();
            let want: Vec<&Message> = model
                .messages
                .range((t, s.id, 0)..=(t, s.id, u64::MAX))
                .rev()
                .map(|(_, m)| m)
                .collect();
            prop_assert_eq!(p.total, want.len() as u64);
            prop_assert_eq!(p.messages.iter().collect::<Vec<_>>(), want);
        }
        for q in ["小", "duc", "0916", "185", "bob", "o"] {
            let mut hq = HistoryQuery::new(t);
            hq.user_name = Some(q.into());
            hq.pagesize = 100;
            let got = store.history_list(&hq).unwrap();
            let want = store.search_members(t, q).unwrap();
            let uids: Vec<u64> = want.iter().map(|m| m.uid).collect();
            let n = model
                .sessions
                .values()
                .filter(|s| s.tenant == t && uids.contains(&s.uid))
                .count();
            prop_assert_eq!(got.total, n as u64, "query {}", q);
        }
        let stats = store.tenant_stats(t).unwrap();
        let count = |keys: Vec<u64>| keys.into_iter().filter(|k| *k == t).count() as u64;
        let want = [
            count(model.members.keys().map(|k| k.0).collect()),
            count(model.agents.keys().map(|k| k.0).collect()),
            count(model.sessions.keys().map(|k| k.0).collect()),
            count(model.messages.keys().map(|k| k.0).collect()),
        ];
        prop_assert_eq!(
            [stats.members, stats.agents, stats.sessions, stats.messages],
            want
        );
    }
    let report = store.check().unwrap();
    prop_assert!(report.ok, "{:?}", report.violations);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_model(ops in prop::collection::vec(op(), 1..80)) {
        let dir = tempfile::tempdir().unwrap();
        let store = common::open(&dir);
        let mut model = Model::default();
        for op in &ops {
            let want = model.apply(op);
            let got = apply(&store, op);
            prop_assert_eq!(got, want, "{:?}", op);
        }
        compare(&store, &model)?;
        // Everything survives a reopen, and export -> import -> export is identical.
        drop(store);
        let store = common::open(&dir);
        compare(&store, &model)?;
        let mut first = Vec::new();
        store.export_jsonl(&mut first).unwrap();
        let dir2 = tempfile::tempdir().unwrap();
        let copy = common::open(&dir2);
        copy.import_jsonl(first.as_slice(), |_| {}).unwrap();
        let mut second = Vec::new();
        copy.export_jsonl(&mut second).unwrap();
        prop_assert_eq!(String::from_utf8(first).unwrap(), String::from_utf8(second).unwrap());
        compare(&copy, &model)?;
    }
}
