//! chatstore: an embedded storage engine for customer-service chat history.
//!
//! Tenants, members, agents, sessions and messages live in an ordered
//! key-value store (LMDB by default, sled for older stores) with the
//! indexes and counters that answer two platforms' history endpoints in
//! microseconds and render their exact JSON. Start with [`Store::open`]; the
//! key layout and the write and query paths are described in ARCHITECTURE.md.
//!
//! ```
//! use chatstore::{Store, Options, Member, Agent, Session, Message, HistoryQuery};
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::open(dir.path(), Options::default()).unwrap();
//! store.upsert_member(&Member { tenant: 2, uid: 2669, nickname: "李小龙".into(), ..Default::default() }).unwrap();
//! store.upsert_agent(&Agent { tenant: 2, id: 2, nickname: "客服0002".into(), ..Default::default() }).unwrap();
//! let sid = store.upsert_session(&Session { tenant: 2, uid: 2669, agent_id: 2, ..Default::default() }).unwrap();
//! store.append_message(&Message { tenant: 2, session_id: sid, content: "你好".into(), time: 1613271367, ..Default::default() }).unwrap();
//! let mut q = HistoryQuery::new(2);
//! q.user_name = Some("小".into());
//! assert_eq!(store.history_list(&q).unwrap().total, 1);
//! ```
#![deny(missing_docs, unsafe_code)]

// Low: plain types and rules, importing nothing that runs.
mod backend;
mod codec;
mod error;
mod json;
mod keys;
pub mod limits;
mod model;
mod options;
mod trust;
// Text normalization and posting blocks; the storage boundary.
mod storage;
mod text;
// The write side, the read side, the endpoints' renderers, the checker.
mod check;
mod read;
mod render;
mod write;
// Records of the import format; the calls as values.
mod command;
mod jsonl;
// This process's engine; other processes' (sled) through the owner.
mod engine;
mod ipc;
// The public handle and the demo.
pub mod demo;
mod store;
#[cfg(test)]
mod testing;

pub use text::search;

pub use backend::Backend;
pub use check::CheckReport;
pub use error::{panic_message, Error, ErrorKind, Result};
pub use ipc::server::SOCKET_NAME;
pub use json::parse_json;
pub use jsonl::{ImportSummary, ReadMark, Record};
pub use model::{Account, Agent, Member, Message, ReadState, Reader, Sender, Session, SessionView};
pub use options::{parse_utc_offset, Durability, Options, RenderSettings, MAX_TEXT_PENDING_BYTES};
pub use read::{
    resolve_paging, Cursor, HistoryPage, HistoryQuery, LivePage, MessageHits, MessageSearch,
    MessagesPage, Order, TenantStats,
};
pub use render::{
    avatar_image, format_time, history_list_error, history_list_value, lenient_int, HistoryParams,
    HistoryRequest, MessagesRequest, HISCHAT_BAD_HASH, HISCHAT_NO_HASH,
};
pub use store::{ExportIter, Store, StoreInfo, STORE_FORMAT};
