//! The store handle every interface uses. A handle is attached either to
//! this process's engine (always, for an LMDB store) or, when another
//! process owns a sled store, to that process over its socket
//! ([`crate::ipc::server`]); either way every call is one
//! [`Request`] and the answer the same. A handle whose owner went away
//! attaches again (taking the store over when nobody else did) and retries;
//! a retried write carries its request id and is applied once.

use std::io::{BufRead, Read};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard};
use std::time::{Duration, Instant};

use serde::Deserialize;
use serde_json::Value;

use crate::check::CheckReport;
use crate::command::{Request, Response, WriteOp};
use crate::engine::records::LocalExport;
use crate::error::{Error, Result};
use crate::ipc::client::{CallError, Conn, RemoteExport};
use crate::ipc::server::{self, Attached, Owner, SOCKET_NAME};
use crate::jsonl::{ImportSummary, Record, IMPORT_BATCH};
use crate::model::{Account, Agent, Member, Message, Reader, Session, SessionView};
use crate::options::{Durability, Options};
use crate::read::{
    HistoryPage, HistoryQuery, LivePage, MessageHits, MessageSearch, MessagesPage, TenantStats,
};
use crate::render::{hischat_params, HistoryRequest};
use crate::storage;

pub use crate::command::StoreInfo;
pub use crate::engine::STORE_FORMAT;

/// A call whose owner went away is tried again at least this many times,
/// and for as long as `attach_timeout_ms` since the first loss: owners hand
/// the store over as they exit (a command-line process owns it for one
/// command), each hand-over may close a connection before its request, and
/// a slow build hands over more often than a fast one.
const ATTEMPTS: usize = 5;

/// An import of at least this many lines into a sled store is followed by
/// a reopen (see `Store::settle`).
const SETTLE_MIN_LINES: u64 = 10_000;

/// Bytes of JSON Lines sent to the owner per import request at most.
const IMPORT_CHUNK_BYTES: usize = 4 << 20;

enum Backend {
    Local(Arc<Owner>),
    Remote(Mutex<Conn>),
}

struct Attachment {
    backend: Backend,
    /// Bumped on every re-attachment, so concurrent callers that lost the
    /// same connection attach once.
    generation: u64,
}

/// An open chatstore. Share it between threads by reference or `Arc`; all
/// methods take `&self`. Any number of handles, in any number of processes,
/// may be open on one store at once.
pub struct Store {
    path: PathBuf,
    options: Options,
    /// `None` once closed.
    inner: RwLock<Option<Attachment>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

fn unexpected(resp: Response) -> Error {
    Error::internal(format!("unexpected answer from the store: {resp:?}"))
}

/// Unwraps the expected variant of a response.
macro_rules! answer {
    ($resp:expr, $variant:ident) => {
        match $resp? {
            Response::$variant(v) => Ok(v),
            other => Err(unexpected(other)),
        }
    };
}

impl Store {
    /// Opens (creating when absent) the store at `path`: a new store with
    /// `Options::backend` (LMDB by default), an existing one with the
    /// backend it was made with. Handles of one process share one engine.
    /// An LMDB store is opened by every process itself; of a sled store, the
    /// first process to open it owns it and serves the others. Fails with
    /// [`Error::Format`] when the store was written by a newer chatstore,
    /// and with [`Error::Locked`] only when a sled store's lock stays held
    /// with nobody serving it for `Options::attach_timeout_ms` (10 s).
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Store> {
        let path = path.as_ref().to_path_buf();
        options.check()?;
        crate::engine::check_path(&path, &options)?;
        // A store made shared with its group stays shared, whoever opens it.
        let mut options = options;
        options.group_access |= crate::trust::group_shared(&path);
        let backend = attach(&path, &options)?;
        Ok(Store {
            path,
            options,
            inner: RwLock::new(Some(Attachment {
                backend,
                generation: 0,
            })),
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options this handle was opened with. The engine's own (cache,
    /// flush interval, compression) are those of the process that opened
    /// the store first; rendering settings and durability are the handle's.
    pub fn options(&self) -> &Options {
        &self.options
    }

    /// Whether this process owns the store (serves it to the others).
    pub fn is_owner(&self) -> bool {
        matches!(
            self.read().as_ref().map(|a| &a.backend),
            Some(Backend::Local(owner)) if owner.is_ours()
        )
    }

    fn read(&self) -> RwLockReadGuard<'_, Option<Attachment>> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one request wherever the store lives. Writes carry a request id
    /// so that a retry after a lost connection applies them once.
    fn call(&self, req: Request) -> Result<Response> {
        let mut last = None;
        let mut first_loss: Option<Instant> = None;
        let patience = Duration::from_millis(self.options.attach_timeout_ms);
        for attempt in 0.. {
            if attempt >= ATTEMPTS && first_loss.is_none_or(|t| t.elapsed() >= patience) {
                break;
            }
            let guard = self.read();
            let att = guard.as_ref().ok_or(Error::Closed)?;
            let generation = att.generation;
            match &att.backend {
                Backend::Local(owner) if owner.is_ours() => {
                    return self.local(owner, req, attempt > 0)
                }
                // Forked from the owner: the engine is the parent's; reach it
                // through the socket like any other process.
                Backend::Local(_) => {}
                Backend::Remote(conn) => {
                    let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
                    match conn.call(&req) {
                        Ok(resp) => return Ok(resp),
                        Err(CallError::Failed(e)) => return Err(e),
                        Err(CallError::Lost(e)) => {
                            first_loss.get_or_insert_with(Instant::now);
                            last = Some(e);
                        }
                    }
                }
            }
            drop(guard);
            self.reattach(generation)?;
        }
        Err(Error::Io(std::io::Error::other(format!(
            "the process that owns {} kept going away: {}",
            self.path.display(),
            last.map(|e| e.to_string()).unwrap_or_default()
        ))))
    }

    /// Runs a request on this process's engine. A write is recorded under
    /// its request id only when it is a retry (an owner that went away may
    /// have applied it); a first attempt in process needs no record.
    fn local(&self, owner: &Owner, req: Request, retry: bool) -> Result<Response> {
        match req {
            Request::Write { id, op } => {
                let id = owner.engine.apply(&op, retry.then_some(id))?;
                if self.options.durability == Durability::Sync {
                    owner.engine.sync()?;
                }
                Ok(Response::Id(id))
            }
            req => owner.engine.execute(req),
        }
    }

    /// Replaces a lost attachment (once per generation).
    fn reattach(&self, generation: u64) -> Result<()> {
        let mut guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let Some(att) = guard.as_mut() else {
            return Err(Error::Closed);
        };
        if att.generation == generation {
            let old = std::mem::replace(&mut att.backend, attach(&self.path, &self.options)?);
            att.generation += 1;
            if let Backend::Local(owner) = old {
                if !owner.is_ours() {
                    std::mem::forget(owner); // the parent's engine: never drop it here
                }
            }
        }
        Ok(())
    }

    fn write(&self, op: WriteOp) -> Result<u64> {
        let id = u128::from_ne_bytes(random_bytes()?);
        answer!(self.call(Request::Write { id, op }), Id)
    }

    // ---- writes -------------------------------------------------------

    /// Inserts or replaces a member (re-indexing nickname and mobile).
    pub fn upsert_member(&self, m: &Member) -> Result<()> {
        self.write(WriteOp::UpsertMember(m.clone())).map(drop)
    }

    /// Inserts or replaces an agent.
    pub fn upsert_agent(&self, a: &Agent) -> Result<()> {
        self.write(WriteOp::UpsertAgent(a.clone())).map(drop)
    }

    /// Inserts or replaces a session; returns its id (assigned when 0). Its
    /// member and (unless 0) agent must exist. A new session written without
    /// a hash gets a random one; an existing one keeps its hash.
    pub fn upsert_session(&self, s: &Session) -> Result<u64> {
        self.write(WriteOp::UpsertSession(s.clone()))
    }

    /// Appends a message (or replaces the one with the same key); returns its
    /// id (assigned when 0). Moves the session's count, last message and
    /// activity time in the same transaction.
    pub fn append_message(&self, m: &Message) -> Result<u64> {
        self.write(WriteOp::AppendMessage(m.clone()))
    }

    /// Deletes a session and all its messages.
    pub fn delete_session(&self, tenant: u64, id: u64) -> Result<()> {
        self.write(WriteOp::DeleteSession { tenant, id }).map(drop)
    }

    /// Deletes a member with its sessions and their messages.
    pub fn delete_member(&self, tenant: u64, uid: u64) -> Result<()> {
        self.write(WriteOp::DeleteMember { tenant, uid }).map(drop)
    }

    /// Marks a session's messages read by `reader` up to message id `up_to`
    /// (a read mark never moves back); returns that reader's unread count
    /// after. The counts move with appends in the same transaction, so a
    /// live list reads them without counting (ARCHITECTURE.md, "Read state").
    pub fn mark_read(&self, tenant: u64, session: u64, reader: Reader, up_to: u64) -> Result<u64> {
        self.write(WriteOp::MarkRead {
            tenant,
            session,
            reader,
            up_to,
        })
    }

    /// Recalls a message: it stays in history flagged `recalled` (the
    /// platform's `is_backed`) and stops counting as unread.
    pub fn recall_message(&self, tenant: u64, session: u64, id: u64) -> Result<()> {
        self.write(WriteOp::RecallMessage {
            tenant,
            session,
            id,
        })
        .map(drop)
    }

    /// Deletes a message softly, now: it leaves every view (message lists,
    /// the session's count, its last message, which falls back to the
    /// previous visible one, and unread counts), all in one transaction, and
    /// is kept with `deleted_at` for export.
    pub fn delete_message(&self, tenant: u64, session: u64, id: u64) -> Result<()> {
        let at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_secs() as i64);
        self.write(WriteOp::DeleteMessage {
            tenant,
            session,
            id,
            at,
        })
        .map(drop)
    }

    /// An agent's live session list: its sessions by latest activity, each
    /// with its last message and read state (`read.unread_by_agent` is the
    /// platform's `un_read_num`). O(page): the agent's activity index.
    pub fn live_sessions(
        &self,
        tenant: u64,
        agent: u64,
        page: u64,
        pagesize: u64,
    ) -> Result<LivePage> {
        let mut q = HistoryQuery::new(tenant);
        q.employee = Some(agent);
        q.order = crate::read::Order::Recent;
        q.page = page.max(1);
        q.pagesize = pagesize.clamp(1, crate::limits::MAX_PAGESIZE);
        let p = self.history_list(&q)?;
        Ok(LivePage {
            total: p.total,
            page: p.current_page,
            pagesize: p.per_page,
            data: p.rows,
        })
    }

    /// Deletes an agent; refused while sessions are assigned to it.
    pub fn delete_agent(&self, tenant: u64, id: u64) -> Result<()> {
        self.write(WriteOp::DeleteAgent { tenant, id }).map(drop)
    }

    /// Inserts or replaces an account (login of the hischat endpoint).
    pub fn upsert_account(&self, a: &Account) -> Result<()> {
        self.write(WriteOp::UpsertAccount(a.clone())).map(drop)
    }

    /// Deletes an account.
    pub fn delete_account(&self, sso_id: u64) -> Result<()> {
        self.write(WriteOp::DeleteAccount(sso_id)).map(drop)
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<()> {
        self.call(Request::Flush).map(drop)
    }

    /// Flushes and closes the handle; later calls fail with
    /// [`Error::Closed`]. Closing twice is a no-op. The process that owns
    /// the store keeps serving other processes for `Options::linger_ms`
    /// after its last handle closed (ARCHITECTURE.md, "Many processes").
    pub fn close(&self) -> Result<()> {
        let taken = self.inner.write().unwrap_or_else(|e| e.into_inner()).take();
        match taken.map(|a| a.backend) {
            // A copy inherited through fork: touching it (flush, drop) would
            // write to the parent's files. Leave it be.
            Some(Backend::Local(owner)) if !owner.is_ours() => {
                std::mem::forget(owner);
                Ok(())
            }
            Some(Backend::Local(owner)) => {
                // An engine closed already (compacted) has nothing to flush.
                let flushed = match owner.engine.flush() {
                    Err(Error::Closed) => Ok(()),
                    r => r,
                };
                owner.release_handle();
                flushed
            }
            Some(Backend::Remote(_)) | None => Ok(()),
        }
    }

    // ---- reads --------------------------------------------------------

    /// One page of sessions (see [`HistoryQuery`]), each with its member,
    /// agent and last message.
    pub fn history_list(&self, q: &HistoryQuery) -> Result<HistoryPage> {
        answer!(self.call(Request::HistoryList(q.clone())), Page)
    }

    /// The history-list response as JSON text, rendered with this handle's
    /// settings straight from the page.
    pub fn history_list_text(&self, req: &HistoryRequest) -> Result<String> {
        answer!(
            self.call(Request::HistoryListText {
                req: req.clone(),
                render: self.options.render.clone(),
            }),
            Text
        )
    }

    /// The history-list response as a JSON value.
    pub fn history_list_response(&self, req: &HistoryRequest) -> Result<Value> {
        parse(&self.history_list_text(req)?)
    }

    /// The history-list response for JSON parameters (see
    /// [`HistoryRequest::from_json`]), as JSON text.
    pub fn history_list_json(&self, params: &Value) -> Result<String> {
        self.history_list_text(&HistoryRequest::from_json(params)?)
    }

    /// A tenant's sessions by activity (the hischat list), 30 a page.
    pub fn conversations(&self, tenant: u64, page: u64) -> Result<HistoryPage> {
        answer!(self.call(Request::Conversations { tenant, page }), Page)
    }

    /// The hischat response as JSON text: the account's tenant's
    /// conversations when `hash` equals the account's stored hash (compared
    /// in constant time), a refusal otherwise. `page` < 1 is page 1.
    pub fn hischat_text(&self, sso_id: u64, hash: &str, page: i64) -> Result<String> {
        let req = Request::Hischat {
            sso_id,
            hash: hash.to_owned(),
            page,
        };
        answer!(self.call(req), Text)
    }

    /// The hischat response as a JSON value (see [`Store::hischat_text`]).
    pub fn hischat(&self, sso_id: u64, hash: &str, page: i64) -> Result<Value> {
        parse(&self.hischat_text(sso_id, hash, page)?)
    }

    /// The hischat response for JSON parameters `sso_id`, `hash`, `page`, as
    /// JSON text. A missing hash is the platform's refusal, not an error.
    pub fn hischat_json(&self, params: &Value) -> Result<String> {
        let (sso_id, hash, page) = hischat_params(params)?;
        self.hischat_text(sso_id, &hash, page)
    }

    /// An account by sso_id.
    pub fn get_account(&self, sso_id: u64) -> Result<Option<Account>> {
        answer!(self.call(Request::GetAccount(sso_id)), Account)
    }

    /// A member by uid.
    pub fn get_member(&self, tenant: u64, uid: u64) -> Result<Option<Member>> {
        answer!(self.call(Request::GetMember { tenant, uid }), Member)
    }

    /// An agent by id.
    pub fn get_agent(&self, tenant: u64, id: u64) -> Result<Option<Agent>> {
        answer!(self.call(Request::GetAgent { tenant, id }), Agent)
    }

    /// A session with its member, agent and last message.
    pub fn get_session(&self, tenant: u64, id: u64) -> Result<Option<SessionView>> {
        answer!(self.call(Request::GetSession { tenant, id }), Session)
    }

    /// Members of the tenant whose nickname or mobile matches `q` (the
    /// `user_name` rules), by uid.
    pub fn search_members(&self, tenant: u64, q: &str) -> Result<Vec<Member>> {
        let req = Request::SearchMembers {
            tenant,
            q: q.to_owned(),
        };
        answer!(self.call(req), Members)
    }

    /// A session's messages, newest first.
    pub fn messages(
        &self,
        tenant: u64,
        session: u64,
        page: u64,
        pagesize: u64,
    ) -> Result<MessagesPage> {
        let req = Request::Messages {
            tenant,
            session,
            page,
            pagesize,
        };
        answer!(self.call(req), Messages)
    }

    /// Searches message text within a tenant, optionally narrowed to a
    /// session or an agent: newest first, paged, with the exact total. The
    /// text is normalized as nicknames are (case, width, diacritics); a
    /// recalled or deleted message is not found. A store created without
    /// the text index (`Options::text_index` false) searches one session
    /// only (its messages are read) and refuses the rest with
    /// [`Error::Conflict`]. See `Engine::search_messages` in query.rs for
    /// the plan and its cost.
    pub fn search_messages(&self, search: &MessageSearch) -> Result<MessageHits> {
        answer!(self.call(Request::SearchMessages(search.clone())), Hits)
    }

    /// [`Store::search_messages`] with its parameters as a JSON object
    /// (`tenant`, `q`, `session_id`, `agent_id`, `page`, `pagesize`), the
    /// result as JSON text: `{"total","page","pagesize","data"}`.
    pub fn search_messages_json(&self, params: &Value) -> Result<String> {
        let search = MessageSearch::deserialize(params)
            .map_err(|e| Error::invalid("params", e.to_string()))?;
        serde_json::to_string(&self.search_messages(&search)?)
            .map_err(|e| Error::internal(format!("rendering JSON: {e}")))
    }

    /// A tenant's counters.
    pub fn tenant_stats(&self, tenant: u64) -> Result<TenantStats> {
        answer!(self.call(Request::TenantStats(tenant)), Stats)
    }

    /// The tenants that have data, ascending.
    pub fn tenants(&self) -> Result<Vec<u64>> {
        answer!(self.call(Request::Tenants), Tenants)
    }

    /// Verifies every invariant of the store (see [`CheckReport`]).
    pub fn check(&self) -> Result<CheckReport> {
        answer!(self.call(Request::Check), Check)
    }

    /// What the store was created as: its format and whether it keeps the
    /// message-text index (fixed when it was created).
    pub fn info(&self) -> Result<StoreInfo> {
        answer!(self.call(Request::Info), Info)
    }

    // ---- import and export -------------------------------------------

    /// Imports JSON Lines from a reader. `progress` is called after each
    /// batch with the bytes read so far. A refused line stops the import
    /// (`line N: reason`); every line before it is stored.
    pub fn import_jsonl<R: BufRead>(
        &self,
        reader: R,
        progress: impl FnMut(u64),
    ) -> Result<ImportSummary> {
        let guard = self.read();
        let att = guard.as_ref().ok_or(Error::Closed)?;
        if let Backend::Local(owner) = &att.backend {
            if !owner.is_ours() {
                let generation = att.generation;
                drop(guard);
                self.reattach(generation)?;
                return self.import_jsonl(reader, progress);
            }
            let before = owner.engine.size_on_disk()?;
            let summary = owner.engine.import_jsonl(reader, 0, None, progress)?;
            if self.options.durability == Durability::Sync {
                owner.engine.sync()?;
            }
            let pack = owner.engine.worth_packing(before)?;
            let settle = owner.engine.info()?.backend == storage::Backend::Sled
                && summary.lines >= SETTLE_MIN_LINES;
            drop(guard);
            if pack {
                self.pack()?;
            } else if settle {
                self.settle()?;
            }
            return Ok(summary);
        }
        drop(guard);
        self.import_remote(reader, progress)
    }

    /// Rewrites an LMDB store compactly after an import grew it (at least
    /// doubled, by 4 MiB or more; `Engine::worth_packing`), when this
    /// handle is its only user in this process and no other process has
    /// it open; the handle then opens the new file.
    fn pack(&self) -> Result<()> {
        self.reopen_alone(|owner| match owner.engine.compact() {
            Ok(()) => Ok(true),
            // Another process has it open: left as it is.
            Err(Error::Locked { .. }) => Ok(false),
            Err(e) => Err(e),
        })
    }

    /// After a large import into a sled store this process owns alone:
    /// closes the engine and opens it again, so that sled records where its
    /// log ends (a snapshot). Otherwise the first open after the import
    /// (a server's, a PHP worker's) replays the whole log: 31.7 s at the
    /// medium scale. Processes connected to it are handed over
    /// (`Owner::retire`) and reconnect to the reopened store.
    fn settle(&self) -> Result<()> {
        self.reopen_alone(|owner| owner.engine.flush().map(|()| true))
    }

    /// Runs `prepare` on this process's engine and, when it says so,
    /// releases the engine and attaches anew; nothing when other handles of
    /// this process use the engine (they would lose it) or it is not this
    /// process's.
    fn reopen_alone(&self, prepare: impl FnOnce(&Owner) -> Result<bool>) -> Result<()> {
        let mut guard = self.inner.write().unwrap_or_else(|e| e.into_inner());
        let Some(att) = guard.as_mut() else {
            return Err(Error::Closed);
        };
        let Backend::Local(owner) = &att.backend else {
            return Ok(());
        };
        if !owner.is_ours() || owner.handle_count() != 1 || !prepare(owner)? {
            return Ok(());
        }
        let generation = att.generation;
        if let Some(Attachment {
            backend: Backend::Local(owner),
            ..
        }) = guard.take()
        {
            owner.release_now();
        }
        *guard = Some(Attachment {
            backend: attach(&self.path, &self.options)?,
            generation: generation + 1,
        });
        Ok(())
    }

    /// Sends whole lines in chunks; line numbers and the stop at a refused
    /// line are the engine's, counted across chunks.
    fn import_remote<R: BufRead>(
        &self,
        mut reader: R,
        mut progress: impl FnMut(u64),
    ) -> Result<ImportSummary> {
        let mut total = ImportSummary::default();
        let (mut first_line, mut bytes) = (0u64, 0u64);
        let mut text = String::new();
        let mut lines = 0u64;
        let mut raw: Vec<u8> = Vec::new();
        loop {
            raw.clear();
            // As the engine reads its lines: at most one byte past the
            // longest a record can take.
            let n = (&mut reader)
                .take(crate::jsonl::MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut raw)?;
            let refused = if n > crate::jsonl::MAX_LINE_BYTES {
                Some(format!(
                    "the line is longer than {} bytes, more than any record can take",
                    crate::jsonl::MAX_LINE_BYTES
                ))
            } else {
                match std::str::from_utf8(&raw) {
                    Ok(line) => {
                        text.push_str(line);
                        None
                    }
                    Err(_) => Some("line is not valid UTF-8".to_string()),
                }
            };
            if let Some(reason) = refused {
                // The lines before it are imported; the line is named.
                self.import_chunk(&mut text, &mut first_line, lines, &mut total)?;
                return Err(Error::Import {
                    line: first_line + 1,
                    source: Box::new(Error::invalid("record", reason)),
                });
            }
            bytes += n as u64;
            if n > 0 {
                lines += 1;
            }
            if n == 0 || lines as usize >= IMPORT_BATCH || text.len() >= IMPORT_CHUNK_BYTES {
                self.import_chunk(&mut text, &mut first_line, lines, &mut total)?;
                lines = 0;
                progress(bytes);
            }
            if n == 0 {
                return Ok(total);
            }
        }
    }

    fn import_chunk(
        &self,
        text: &mut String,
        first_line: &mut u64,
        lines: u64,
        total: &mut ImportSummary,
    ) -> Result<()> {
        if text.is_empty() {
            return Ok(());
        }
        let req = Request::Import {
            text: std::mem::take(text),
            first_line: *first_line,
            id: Some(u128::from_ne_bytes(random_bytes()?)),
        };
        let s = answer!(self.call(req), Imported)?;
        *first_line += lines;
        *total += s;
        Ok(())
    }

    /// Imports a JSON Lines file.
    pub fn import_file(&self, path: impl AsRef<Path>) -> Result<ImportSummary> {
        let f = std::fs::File::open(path.as_ref()).map_err(|e| {
            Error::Io(std::io::Error::new(
                e.kind(),
                format!("{}: {e}", path.as_ref().display()),
            ))
        })?;
        self.import_jsonl(std::io::BufReader::new(f), |_| {})
    }

    /// Every record of the store in export order: accounts by sso_id, then
    /// per tenant its members, agents, sessions and messages, each by key.
    pub fn export_records(&self) -> Result<ExportIter> {
        let guard = self.read();
        let att = guard.as_ref().ok_or(Error::Closed)?;
        match &att.backend {
            Backend::Local(owner) if !owner.is_ours() => {
                let generation = att.generation;
                drop(guard);
                self.reattach(generation)?;
                self.export_records()
            }
            Backend::Local(owner) => {
                owner.engine.live()?;
                let owner = Arc::clone(owner);
                let fetch =
                    move |space, after: Option<&[u8]>| owner.engine.export_chunk(space, after);
                Ok(ExportIter(ExportSource::Local(Box::new(LocalExport::new(
                    Box::new(fetch),
                )))))
            }
            Backend::Remote(_) => {
                let conn =
                    Conn::connect(&self.path.join(SOCKET_NAME), self.options.attach_timeout_ms)
                        .map_err(|e| match e {
                            CallError::Lost(io) => Error::Io(io),
                            CallError::Failed(e) => e,
                        })?;
                Ok(ExportIter(ExportSource::Remote(RemoteExport::start(conn)?)))
            }
        }
    }

    /// Writes a consistent, compact copy of the store into `dir`, a new
    /// directory, while others keep reading and writing: on LMDB a
    /// compacting copy of one snapshot (`mdb_env_copy2`), on sled a copy
    /// of every key made while writers wait. The copy opens like any store.
    pub fn backup(&self, dir: impl AsRef<Path>) -> Result<()> {
        let dir = std::path::absolute(dir.as_ref())?;
        match self.call(Request::Backup { dir })? {
            Response::Unit => Ok(()),
            other => Err(unexpected(other)),
        }
    }

    /// Rewrites an LMDB store compactly in place (its file never shrinks
    /// by itself), then closes this handle. Refused with [`Error::Locked`]
    /// while another process has the store open (use [`Store::backup`]
    /// then), and with [`Error::Conflict`] for a sled store (use
    /// [`Store::copy_into`]). Drop every other handle of this process on
    /// the store before, and open it anew after.
    pub fn compact(&self) -> Result<()> {
        match self.call(Request::Compact)? {
            Response::Unit => self.close(),
            other => Err(unexpected(other)),
        }
    }

    /// Copies every record into a new store at `to`, made as `options` say
    /// (`options.backend`: this is how a store moves between backends),
    /// by streaming the export into an import: the copy is compact, its
    /// indexes are rebuilt in the layout of this build (a store of an older
    /// format is moved to the newest this way), and its export equals this
    /// store's. `progress` is called after each import batch with the bytes
    /// of export copied so far. A copy cut short leaves `to` partial and
    /// the original untouched: remove `to` and copy again.
    pub fn copy_into(
        &self,
        to: impl AsRef<Path>,
        options: Options,
        progress: impl FnMut(u64),
    ) -> Result<ImportSummary> {
        let to = to.as_ref();
        if storage::Backend::of_existing(to).is_some() {
            return Err(Error::invalid(
                "to",
                format!(
                    "{} holds a store already: copy into a new directory",
                    to.display()
                ),
            ));
        }
        let dest = Store::open(to, options)?;
        let reader = std::io::BufReader::new(ExportReader {
            records: self.export_records()?,
            buf: Vec::new(),
            at: 0,
        });
        let summary = dest.import_jsonl(reader, progress)?;
        dest.flush()?;
        dest.close()?;
        Ok(summary)
    }

    /// Writes every record as JSON Lines; returns the number of lines.
    pub fn export_jsonl<W: std::io::Write>(&self, mut w: W) -> Result<u64> {
        let mut n = 0;
        for r in self.export_records()? {
            serde_json::to_writer(&mut w, &r?).map_err(|e| Error::Io(e.into()))?;
            w.write_all(b"\n")?;
            n += 1;
        }
        w.flush()?;
        Ok(n)
    }
}

fn attach(path: &Path, options: &Options) -> Result<Backend> {
    Ok(match server::attach(path, options)? {
        Attached::Local(owner) => Backend::Local(owner),
        Attached::Remote(conn) => Backend::Remote(Mutex::new(conn)),
    })
}

/// An export read as JSON Lines text.
struct ExportReader {
    records: ExportIter,
    buf: Vec<u8>,
    at: usize,
}

impl std::io::Read for ExportReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
            while self.buf.len() < 1 << 16 {
                let Some(r) = self.records.next() else { break };
                let r = r.map_err(std::io::Error::other)?;
                serde_json::to_writer(&mut self.buf, &r)?;
                self.buf.push(b'\n');
            }
        }
        let n = out.len().min(self.buf.len() - self.at);
        out[..n].copy_from_slice(&self.buf[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn parse(text: &str) -> Result<Value> {
    serde_json::from_str(text).map_err(|e| Error::internal(format!("rendered JSON: {e}")))
}

fn random_bytes() -> Result<[u8; 16]> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| Error::Io(std::io::Error::other(format!("random source: {e}"))))?;
    Ok(b)
}

/// Iterator over the records of a store (see
/// [`crate::Store::export_records`]), read in this process or streamed by
/// the process that owns the store.
#[derive(Debug)]
pub struct ExportIter(pub(crate) ExportSource);

#[derive(Debug)]
pub(crate) enum ExportSource {
    Local(Box<LocalExport<'static>>),
    Remote(crate::ipc::client::RemoteExport),
}

impl Iterator for ExportIter {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        match &mut self.0 {
            ExportSource::Local(it) => it.next(),
            ExportSource::Remote(it) => it.next(),
        }
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = self.close();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn store_is_send_and_sync() {
        fn is<T: Send + Sync>() {}
        is::<super::Store>();
    }
}
