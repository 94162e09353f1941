//! The model-based property: a sequence of upserts, appends and deletes goes
//! to a store and to a plain in-memory model; every write succeeds or fails
//! as the model says, every query (lists, messages, member filters, message
//! search, counters) agrees, `check()` passes, and all of it
//! survives a reopen and an export -> import -> export round trip (into a
//! store created without the message-text index for every other sequence:
//! the same answers, message search confined to a session).
//!
//! Included by the proptest `crates/chatstore/tests/model.rs` (random `Op`
//! sequences), by the fuzz target `model_ops` (bytes decoded by
//! [`Op::decode`]) and by the corpus replay test
//! `crates/chatstore/tests/fuzz_corpus.rs`, so the three check one property.
#![allow(dead_code)]

use std::collections::BTreeMap;

use chatstore::{
    Agent, HistoryQuery, Member, Message, MessageSearch, Options, Order, ReadState, Reader, Sender,
    Session, Store,
};

/// `Err` with the message unless the condition holds.
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)+) => {
        if !$cond {
            return Err(format!($($fmt)+));
        }
    };
}

/// `Err` naming both sides unless they are equal.
macro_rules! ensure_eq {
    ($a:expr, $b:expr $(,)?) => {
        ensure_eq!($a, $b, "")
    };
    ($a:expr, $b:expr, $($fmt:tt)+) => {{
        let (a, b) = (&$a, &$b);
        if a != b {
            return Err(format!(
                "{} != {} ({}): {:?} vs {:?}",
                stringify!($a),
                stringify!($b),
                format!($($fmt)+),
                a,
                b
            ));
        }
    }};
}

/// One write of the model test.
#[derive(Debug, Clone)]
pub(crate) enum Op {
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
    MarkRead {
        t: u64,
        sid: u64,
        agent: bool,
        upto: u64,
    },
    Recall {
        t: u64,
        sid: u64,
        id: u64,
    },
    DeleteMessage {
        t: u64,
        sid: u64,
        id: u64,
    },
}

/// Nicknames members take (by index).
pub(crate) const NICKS: &[&str] = &["李小龙", "Nguyễn Văn Đức", "john", "小芳", "Trường", "bob"];
/// Mobiles members take (by index).
pub(crate) const MOBILES: &[&str] = &[
    "",
    "+84 916 123 456",
    "0912345678",
    "+86 185 1669 0005",
    "150-0000-0002",
];

/// The plain in-memory model of a store.
#[derive(Default, Debug)]
pub(crate) struct Model {
    members: BTreeMap<(u64, u64), Member>,
    agents: BTreeMap<(u64, u64), Agent>,
    sessions: BTreeMap<(u64, u64), Session>,
    messages: BTreeMap<(u64, u64, u64), Message>,
    next_session: BTreeMap<u64, u64>,
    next_message: BTreeMap<u64, u64>,
    /// (agent read up to, member read up to) per session that was read.
    reads: BTreeMap<(u64, u64), (u64, u64)>,
    /// Softly deleted messages (out of every view).
    deleted: BTreeMap<(u64, u64, u64), Message>,
}

impl Model {
    /// Applies an op; returns whether it should succeed.
    pub(crate) fn apply(&mut self, op: &Op) -> bool {
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
                self.deleted.remove(&(t, sid, id));
                self.messages
                    .insert((t, sid, id), message(t, sid, id, time, sender));
                true
            }
            Op::DeleteSession { t, sid } => {
                if self.sessions.remove(&(t, sid)).is_none() {
                    return false;
                }
                self.messages.retain(|k, _| !(k.0 == t && k.1 == sid));
                self.deleted.retain(|k, _| !(k.0 == t && k.1 == sid));
                self.reads.remove(&(t, sid));
                true
            }
            Op::Recall { t, sid, id } => match self.messages.get_mut(&(t, sid, id)) {
                Some(m) => {
                    m.recalled = true;
                    true
                }
                None => false,
            },
            Op::DeleteMessage { t, sid, id } => match self.messages.remove(&(t, sid, id)) {
                Some(m) => {
                    self.deleted.insert((t, sid, id), m);
                    true
                }
                None => false,
            },
            Op::MarkRead {
                t,
                sid,
                agent,
                upto,
            } => {
                if !self.sessions.contains_key(&(t, sid)) {
                    return false;
                }
                let r = self.reads.entry((t, sid)).or_default();
                let mark = if agent { &mut r.0 } else { &mut r.1 };
                *mark = (*mark).max(upto);
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
                    self.deleted.retain(|k, _| !(k.0 == t && k.1 == sid));
                    self.reads.remove(&(t, sid));
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

    /// Generated recalls and deletes name a message by its place in its
    /// session, newest first (so they hit messages that exist); this turns
    /// the place into the message id (an absent one past the end).
    pub(crate) fn resolve(&self, op: &Op) -> Op {
        let id_at = |t: u64, sid: u64, nth: u64| {
            self.messages
                .range((t, sid, 0)..=(t, sid, u64::MAX))
                .rev()
                .nth(nth as usize)
                .map_or(10_000 + nth, |(k, _)| k.2)
        };
        match *op {
            Op::Recall { t, sid, id } => Op::Recall {
                t,
                sid,
                id: id_at(t, sid, id),
            },
            Op::DeleteMessage { t, sid, id } => Op::DeleteMessage {
                t,
                sid,
                id: id_at(t, sid, id),
            },
            ref other => other.clone(),
        }
    }

    /// A session's read state, counted from its messages.
    fn read_state(&self, t: u64, sid: u64) -> ReadState {
        let (agent_read_upto, member_read_upto) =
            self.reads.get(&(t, sid)).copied().unwrap_or_default();
        let unread = |sender: Sender, upto: u64| {
            self.messages
                .range((t, sid, 0)..=(t, sid, u64::MAX))
                .filter(|(k, m)| m.sender == sender && !m.recalled && k.2 > upto)
                .count() as u64
        };
        ReadState {
            unread_by_agent: unread(Sender::Member, agent_read_upto),
            unread_by_member: unread(Sender::Agent, member_read_upto),
            agent_read_upto,
            member_read_upto,
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

/// Applies `op` to the store; returns whether it succeeded.
pub(crate) fn apply(store: &Store, op: &Op) -> bool {
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
        Op::MarkRead {
            t,
            sid,
            agent,
            upto,
        } => {
            let reader = if agent { Reader::Agent } else { Reader::Member };
            store.mark_read(t, sid, reader, upto).map(drop)
        }
        Op::Recall { t, sid, id } => store.recall_message(t, sid, id),
        Op::DeleteMessage { t, sid, id } => store.delete_message(t, sid, id),
    };
    r.is_ok()
}

/// Every query of the store against the model, and `check()`.
/// `text_index`: whether `store` was created with the message-text index.
pub(crate) fn compare(store: &Store, model: &Model, text_index: bool) -> Result<(), String> {
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
                    ensure_eq!(p.total, want.len() as u64);
                    for r in &p.rows {
                        got.push(r.session.id);
                        let s = &model.sessions[&(t, r.session.id)];
                        ensure_eq!(r.activity_at, model.activity(s));
                        ensure_eq!(r.last_message.as_ref(), model.last(t, s.id));
                        ensure_eq!(r.member.as_ref(), model.members.get(&(t, s.uid)));
                        ensure_eq!(r.agent.as_ref(), model.agents.get(&(t, s.agent_id)));
                        ensure_eq!(r.read, model.read_state(t, s.id));
                        ensure_eq!(
                            (r.session.uid, r.session.agent_id, r.session.last_updated_at),
                            (s.uid, s.agent_id, s.last_updated_at)
                        );
                    }
                }
                ensure_eq!(
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
            ensure_eq!(p.total, want.len() as u64);
            ensure_eq!(p.messages.iter().collect::<Vec<_>>(), want);
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
            ensure_eq!(got.total, n as u64, "query {}", q);
        }
        // Search inside message text: every visible, not recalled message
        // holding the query, newest first (a reused id: by session); within
        // one session too. A store without the text index refuses the
        // tenant-wide search and answers the session's.
        for q in ["member@", "agent@1", "tem@", "Ent@"] {
            let norm = chatstore::search::normalize(q);
            let mut want: Vec<(u64, u64)> = model
                .messages
                .iter()
                .filter(|((mt, _, _), m)| {
                    *mt == t
                        && !m.recalled
                        && chatstore::search::normalize(&m.content).contains(&norm)
                })
                .map(|((_, sid, id), _)| (*sid, *id))
                .collect();
            want.sort_by_key(|&(sid, id)| (std::cmp::Reverse(id), sid));
            for session in [None, Some(1), Some(4)] {
                let mut search = MessageSearch::new(t, q);
                search.pagesize = 100;
                search.session_id = session;
                let want: Vec<(u64, u64)> = want
                    .iter()
                    .copied()
                    .filter(|(sid, _)| session.is_none_or(|s| s == *sid))
                    .collect();
                let hits = match store.search_messages(&search) {
                    Err(chatstore::Error::Conflict { .. }) if !text_index && session.is_none() => {
                        continue
                    }
                    other => other.map_err(|e| format!("message search {q} {session:?}: {e}"))?,
                };
                ensure!(
                    text_index || session.is_some(),
                    "message search {} answered without the text index",
                    q
                );
                ensure_eq!(
                    hits.total,
                    want.len() as u64,
                    "message search {} {:?}",
                    q,
                    session
                );
                let got: Vec<(u64, u64)> =
                    hits.messages.iter().map(|m| (m.session_id, m.id)).collect();
                ensure_eq!(
                    got,
                    want.into_iter().take(100).collect::<Vec<_>>(),
                    "message search {} {:?}",
                    q,
                    session
                );
            }
        }
        let stats = store.tenant_stats(t).unwrap();
        let count = |keys: Vec<u64>| keys.into_iter().filter(|k| *k == t).count() as u64;
        let want = [
            count(model.members.keys().map(|k| k.0).collect()),
            count(model.agents.keys().map(|k| k.0).collect()),
            count(model.sessions.keys().map(|k| k.0).collect()),
            count(model.messages.keys().map(|k| k.0).collect()),
        ];
        ensure_eq!(
            [stats.members, stats.agents, stats.sessions, stats.messages],
            want
        );
    }
    let report = store.check().unwrap();
    ensure!(report.ok, "{:?}", report.violations);
    Ok(())
}

/// Reads one byte after another; zeros once the input is used up.
struct Bytes<'a>(&'a [u8]);

impl Bytes<'_> {
    fn next(&mut self) -> u8 {
        let (&b, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        b
    }

    /// A value in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + u64::from(self.next()) % (hi - lo + 1)
    }
}

impl Op {
    /// Decodes fuzzer bytes into at most 120 ops over the same small id
    /// spaces as the proptest strategy (so writes collide): a selector byte
    /// weights the kinds (members and sessions 3, messages 5, the rest 1),
    /// then one byte per field. Every byte string decodes.
    pub(crate) fn decode(data: &[u8]) -> Vec<Op> {
        let mut b = Bytes(data);
        let mut ops = Vec::new();
        while !b.0.is_empty() && ops.len() < 120 {
            let kind = b.next() % 18;
            let t = b.range(1, 2);
            ops.push(match kind {
                0..=2 => Op::Member {
                    t,
                    uid: b.range(1, 6),
                    nick: b.range(0, NICKS.len() as u64 - 1) as usize,
                    mobile: b.range(0, MOBILES.len() as u64 - 1) as usize,
                },
                3 => Op::Agent {
                    t,
                    id: b.range(1, 3),
                },
                4..=6 => Op::Session {
                    t,
                    id: b.range(0, 4),
                    uid: b.range(1, 6),
                    agent: b.range(0, 3),
                    updated: b.range(0, 99) as i64,
                },
                7..=11 => Op::Message {
                    t,
                    sid: b.range(1, 4),
                    id: b.range(0, 30),
                    time: b.range(1, 119) as i64,
                    sender: b.range(0, 2) as u8,
                },
                12 => Op::DeleteSession {
                    t,
                    sid: b.range(1, 4),
                },
                13 => Op::DeleteMember {
                    t,
                    uid: b.range(1, 6),
                },
                14 => Op::DeleteAgent {
                    t,
                    id: b.range(1, 3),
                },
                15 => Op::MarkRead {
                    t,
                    sid: b.range(1, 4),
                    agent: b.next() % 2 == 0,
                    upto: b.range(0, 31),
                },
                16 => Op::Recall {
                    t,
                    sid: b.range(1, 4),
                    id: b.range(0, 2),
                },
                _ => Op::DeleteMessage {
                    t,
                    sid: b.range(1, 4),
                    id: b.range(0, 2),
                },
            });
        }
        ops
    }
}

/// No linger: a run's stores are released when dropped (a fuzzer runs
/// thousands; lingering owners would pile up).
fn open(dir: &std::path::Path, text_index: bool) -> Result<Store, String> {
    let mut o = Options {
        linger_ms: 0,
        text_index,
        ..Options::default()
    };
    o.render.media_base = chatstore::demo::SEED_MEDIA_BASE.into();
    Store::open(dir, o).map_err(|e| format!("open {}: {e}", dir.display()))
}

/// What every sequence starts from, so that its writes mostly land: in both
/// tenants three members, two agents and sessions 1 to 4.
fn setup() -> Vec<Op> {
    let mut ops = Vec::new();
    for t in 1..=2 {
        for uid in 1..=3 {
            ops.push(Op::Member {
                t,
                uid,
                nick: uid as usize,
                mobile: uid as usize,
            });
        }
        for id in 1..=2 {
            ops.push(Op::Agent { t, id });
        }
        for id in 1..=4 {
            ops.push(Op::Session {
                t,
                id,
                uid: 1 + id % 3,
                agent: id % 3,
                updated: 0,
            });
        }
    }
    ops
}

/// The whole property for one op sequence (see the module docs), after
/// [`setup`].
pub(crate) fn run(ops: &[Op]) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let store = open(dir.path(), true)?;
    let mut model = Model::default();
    for op in setup().iter().chain(ops) {
        let op = &model.resolve(op);
        let want = model.apply(op);
        let got = apply(&store, op);
        ensure_eq!(got, want, "{:?}", op);
    }
    compare(&store, &model, true)?;
    drop(store);
    let store = open(dir.path(), true)?;
    compare(&store, &model, true)?;
    let mut first = Vec::new();
    store.export_jsonl(&mut first).map_err(|e| e.to_string())?;
    // The copy is created without the text index for every other sequence:
    // the same answers, searches confined to a session, the same export.
    let text_index = ops.len().is_multiple_of(2);
    let dir2 = tempfile::tempdir().map_err(|e| e.to_string())?;
    let copy = open(dir2.path(), text_index)?;
    copy.import_jsonl(first.as_slice(), |_| {})
        .map_err(|e| e.to_string())?;
    let mut second = Vec::new();
    copy.export_jsonl(&mut second).map_err(|e| e.to_string())?;
    ensure!(first == second, "export -> import -> export differs");
    compare(&copy, &model, text_index)
}

/// The fuzz target and corpus replay: decode, run, panic on a difference.
pub(crate) fn model_ops(data: &[u8]) {
    let ops = Op::decode(data);
    if let Err(e) = run(&ops) {
        panic!("{e}\nops: {ops:#?}");
    }
}
