//! The calls a handle makes on an engine, as values: [`Request`] (with
//! [`WriteOp`] for writes) and [`Response`]. The same request runs in
//! process (`Engine::execute`) and, framed, over a sled owner's socket
//! (`ipc::frames`). They carry the engine's own types (records, queries,
//! pages, reports) under serde; there is no second protocol per binding.
//!
//! Low in the layers: it names the types of the modules below it and
//! imports nothing that runs requests.

use serde::{Deserialize, Serialize};

use crate::check::CheckReport;
use crate::error::{Error, ErrorKind};
use crate::jsonl::{ImportSummary, Record};
use crate::model::{Account, Agent, Member, Message, Reader, Session, SessionView};
use crate::options::RenderSettings;
use crate::read::{
    HistoryPage, HistoryQuery, MessageHits, MessageSearch, MessagesPage, TenantStats,
};
use crate::render::HistoryRequest;

use crate::backend::Backend;

/// What a store was created as (fixed for its life).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct StoreInfo {
    /// The store's format marker (see `STORE_FORMAT`).
    pub format: u32,
    /// Whether the store keeps the message-text index (`Options::text_index`
    /// when it was created).
    pub text_index: bool,
    /// The engine the store is made of.
    pub backend: Backend,
}

/// A write, as [`Engine::apply`] takes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum WriteOp {
    /// Insert or replace a member.
    UpsertMember(Member),
    /// Insert or replace an agent.
    UpsertAgent(Agent),
    /// Insert or replace a session.
    UpsertSession(Session),
    /// Append a message.
    AppendMessage(Message),
    /// Delete a session and its messages.
    DeleteSession {
        /// Tenant.
        tenant: u64,
        /// Session id.
        id: u64,
    },
    /// Delete a member, its sessions and their messages.
    DeleteMember {
        /// Tenant.
        tenant: u64,
        /// Member uid.
        uid: u64,
    },
    /// Mark a session's messages read by one side up to a message id.
    MarkRead {
        /// Tenant.
        tenant: u64,
        /// Session id.
        session: u64,
        /// Who read.
        reader: Reader,
        /// Read up to this message id.
        up_to: u64,
    },
    /// Recall a message (kept, flagged).
    RecallMessage {
        /// Tenant.
        tenant: u64,
        /// Session id.
        session: u64,
        /// Message id.
        id: u64,
    },
    /// Delete a message softly (out of every view, kept for export).
    DeleteMessage {
        /// Tenant.
        tenant: u64,
        /// Session id.
        session: u64,
        /// Message id.
        id: u64,
        /// When (unix seconds), chosen by the caller so a retry agrees.
        at: i64,
    },
    /// Delete an agent without sessions.
    DeleteAgent {
        /// Tenant.
        tenant: u64,
        /// Agent id.
        id: u64,
    },
    /// Insert or replace an account.
    UpsertAccount(Account),
    /// Delete an account.
    DeleteAccount(u64),
}

/// One call of a handle on an engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Request {
    /// First frame of a connection: the client's protocol version.
    Hello {
        /// [`PROTOCOL`] of the client.
        protocol: u32,
    },
    /// [`crate::Store::history_list`].
    HistoryList(HistoryQuery),
    /// [`crate::Store::history_list_text`], rendered with the handle's settings.
    HistoryListText {
        /// The request.
        req: HistoryRequest,
        /// The calling handle's rendering settings.
        render: RenderSettings,
    },
    /// [`crate::Store::conversations`].
    Conversations {
        /// Tenant.
        tenant: u64,
        /// Page (1-based).
        page: u64,
    },
    /// [`crate::Store::hischat_text`].
    Hischat {
        /// Account.
        sso_id: u64,
        /// Login hash.
        hash: String,
        /// Page.
        page: i64,
    },
    /// [`crate::Store::get_account`].
    GetAccount(u64),
    /// [`crate::Store::get_member`].
    GetMember {
        /// Tenant.
        tenant: u64,
        /// Member uid.
        uid: u64,
    },
    /// [`crate::Store::get_agent`].
    GetAgent {
        /// Tenant.
        tenant: u64,
        /// Agent id.
        id: u64,
    },
    /// [`crate::Store::get_session`].
    GetSession {
        /// Tenant.
        tenant: u64,
        /// Session id.
        id: u64,
    },
    /// [`crate::Store::search_members`].
    SearchMembers {
        /// Tenant.
        tenant: u64,
        /// Query.
        q: String,
    },
    /// [`crate::Store::messages`].
    Messages {
        /// Tenant.
        tenant: u64,
        /// Session id.
        session: u64,
        /// Page.
        page: u64,
        /// Page size.
        pagesize: u64,
    },
    /// [`crate::Store::search_messages`].
    SearchMessages(MessageSearch),
    /// [`crate::Store::tenant_stats`].
    TenantStats(u64),
    /// [`crate::Store::tenants`].
    Tenants,
    /// [`crate::Store::check`].
    Check,
    /// A chunk of an import: whole lines, the first being line
    /// `first_line + 1` of the import.
    Import {
        /// The lines.
        text: String,
        /// Lines of the import before this chunk.
        first_line: u64,
        /// Identifies the chunk (random, chosen by the client): a retry
        /// with the same id after a lost answer skips the lines already
        /// applied, so the chunk lands once (absent from older clients).
        #[serde(default)]
        id: Option<u128>,
    },
    /// Every record, streamed as [`Response::Records`] frames ending with
    /// [`Response::Done`].
    Export,
    /// Make every write so far durable.
    Flush,
    /// A write. `id` identifies the request: a retry with the same id after a
    /// lost answer is not applied twice.
    Write {
        /// Request id (random, chosen by the client).
        id: u128,
        /// The write.
        op: WriteOp,
    },
    /// [`crate::Store::info`]. (Requests are only ever added at the end, so
    /// the earlier ones keep their encoding.)
    Info,
    /// [`crate::Store::backup`] into a new directory (an absolute path).
    Backup {
        /// The new directory.
        dir: std::path::PathBuf,
    },
    /// [`crate::Store::compact`].
    Compact,
}

/// The answer to a [`Request`]. (A page is large beside the other answers;
/// answers are built once and moved, never stored.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum Response {
    /// Done, nothing to return.
    Unit,
    /// An id (assigned by a write) or a count.
    Id(u64),
    /// Rendered JSON text.
    Text(String),
    /// A history page.
    Page(HistoryPage),
    /// An account.
    Account(Option<Account>),
    /// A member.
    Member(Option<Member>),
    /// An agent.
    Agent(Option<Agent>),
    /// A session.
    Session(Option<SessionView>),
    /// Members.
    Members(Vec<Member>),
    /// A page of messages.
    Messages(MessagesPage),
    /// Messages found.
    Hits(MessageHits),
    /// Tenant counters.
    Stats(TenantStats),
    /// Tenant ids.
    Tenants(Vec<u64>),
    /// An integrity report.
    Check(CheckReport),
    /// What an import chunk did.
    Imported(ImportSummary),
    /// A batch of exported records.
    Records(Vec<Record>),
    /// End of an export: number of records.
    Done(u64),
    /// The call failed.
    Error {
        /// Its kind.
        kind: ErrorKind,
        /// Its message, as the engine wrote it.
        message: String,
    },
    /// What the store was created as.
    Info(StoreInfo),
}

impl Response {
    /// The error of a failed call, as a response.
    pub(crate) fn from_error(e: &Error) -> Response {
        Response::Error {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}
