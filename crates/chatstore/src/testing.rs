//! Helpers of the unit tests beside the write, read, check and import code:
//! an engine over the in-memory backend, and small records to write.
//! Compiled only for tests.

use crate::command::WriteOp;
use crate::engine::Engine;
use crate::model::{Agent, Member, Message, Session};
use crate::options::Options;

/// An engine over an in-memory store with the default options.
pub(crate) fn engine() -> Engine {
    Engine::in_memory(Options::default())
}

/// Writes a member.
pub(crate) fn member(e: &Engine, tenant: u64, uid: u64, nickname: &str, mobile: &str) {
    e.apply(
        &WriteOp::UpsertMember(Member {
            tenant,
            uid,
            nickname: nickname.into(),
            mobile: mobile.into(),
            ..Default::default()
        }),
        None,
    )
    .unwrap();
}

/// Writes an agent.
pub(crate) fn agent(e: &Engine, tenant: u64, id: u64) {
    e.apply(
        &WriteOp::UpsertAgent(Agent {
            tenant,
            id,
            nickname: format!("客服{id:04}"),
            ..Default::default()
        }),
        None,
    )
    .unwrap();
}

/// Writes a session of `uid` with agent `agent_id`; returns its id.
pub(crate) fn session(e: &Engine, tenant: u64, id: u64, uid: u64, agent_id: u64) -> u64 {
    e.apply(
        &WriteOp::UpsertSession(Session {
            tenant,
            id,
            uid,
            agent_id,
            ..Default::default()
        }),
        None,
    )
    .unwrap()
}

/// Appends a message at `time`; returns its id.
pub(crate) fn message(e: &Engine, tenant: u64, session_id: u64, content: &str, time: i64) -> u64 {
    e.apply(
        &WriteOp::AppendMessage(Message {
            tenant,
            session_id,
            content: content.into(),
            time,
            ..Default::default()
        }),
        None,
    )
    .unwrap()
}

/// The store's export, as JSON Lines text.
pub(crate) fn export(e: &Engine) -> String {
    let mut out = String::new();
    for r in e.export_records().unwrap() {
        out.push_str(&serde_json::to_string(&r.unwrap()).unwrap());
        out.push('\n');
    }
    out
}
