//! The engine: one process's open store. Opening (the backend, the format
//! marker), the write path (validation, one atomic write transaction per
//! logical write, request ids that make a retried write apply once),
//! durability. Reads run in one read transaction each ([`Engine::read`]).
//! Handles ([`crate::Store`]) reach it in process or, for a sled store
//! another process owns, through the owner's socket ([`crate::ipc::server`]).
//!
//! It knows no socket and no other process: `ipc` serves it, `store`
//! reaches it.

mod execute;
pub(crate) mod records;

use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::check::CheckReport;
use crate::codec;
use crate::command::{StoreInfo, WriteOp};
use crate::error::{Error, Result};
use crate::keys;
use crate::limits;
use crate::model::{Account, Agent, Member, SessionView};
use crate::options::{Durability, Options, RenderSettings};
use crate::read::{
    HistoryPage, HistoryQuery, MessageHits, MessageSearch, MessagesPage, Snap, TenantStats,
};
use crate::render::{self, HistoryRequest};
use crate::storage::commit::GroupCommit;
use crate::storage::{self, Backend, Kv, Space, Tree, WriteTxn};
use crate::write::group::Combiner;
use crate::write::{self, Cascade, Tx, TxResult};

/// The newest store format (key spaces, key layout) this build reads and
/// writes, recorded in the meta space under `chatstore.format`. From format
/// 6 on it is the layout alone: what was chosen at creation (the
/// message-text index, `Options::text_index`) is a fact of its own, under
/// `chatstore.text_index`. Earlier formats said both in one number:
/// - 5: the layout of 6 with the message-text index (postings in blocks
///   with a pending list of recent messages, `text/postings.rs`; nicknames
///   and mobiles indexed by grams of every length);
/// - 4: the same without the message-text index;
/// - 3: format 5 before the pending list (a format 5 store without pending
///   entries).
///
/// Opening a store of format 3, 4 or 5 moves it to 6 (one small write:
/// the marker and the text-index key), after which builds that know only
/// those formats refuse it. Two older layouts are read as they are:
/// - 2 (`LEGACY_NO_TEXT_FORMAT`): a store without the index made by builds
///   before 2026-12-03: nickname grams from three characters (two CJK).
///   This build reads and writes it as it is (short member filters walk
///   the sessions, as they did);
/// - 1 (`LEGACY_TEXT_FORMAT`): a store with the index as those builds kept
///   it, a key per posting. This build reads it (reads, export, `chatstore
///   migrate`) but refuses to write it or search its message text.
///
/// `chatstore migrate` copies a store of format 1 or 2 into one of format
/// 6. Builds older than a store's format refuse it.
pub const STORE_FORMAT: u32 = 6;
/// Format 5: the layout of 6, with the message-text index.
const TEXT_FORMAT_5: u32 = 5;
/// Format 4: the layout of 6, without the message-text index.
const NO_TEXT_FORMAT_4: u32 = 4;
/// Format 3: the message-text index in blocks, before the pending list.
const BLOCK_TEXT_FORMAT: u32 = 3;
/// The format of a store created without the index by earlier builds.
const LEGACY_NO_TEXT_FORMAT: u32 = 2;
/// The format of a store whose text postings are a key each.
const LEGACY_TEXT_FORMAT: u32 = 1;
/// Where a store of format 6 or later records its text-index choice: one
/// byte, 1 (kept) or 0.
const TEXT_INDEX_KEY: &[u8] = b"chatstore.text_index";
const FORMAT_KEY: &[u8] = b"chatstore.format";

/// An open chatstore. Share it between threads by reference or `Arc`; all
/// methods take `&self`.
pub(crate) struct Engine {
    pub(crate) kv: Box<dyn Kv>,
    pub(crate) options: Options,
    /// Whether this store keeps the message-text index: its format marker
    /// says (fixed when it was created; `Options::text_index` of later opens
    /// does not change it).
    pub(crate) text_index: bool,
    /// A store of format 1: its text postings are a key each (read, not
    /// written or searched here; see [`STORE_FORMAT`]).
    legacy_text: bool,
    /// Its format marker.
    format: u32,
    path: PathBuf,
    commit: GroupCommit,
    group: Combiner,
    closed: AtomicBool,
    /// A write committed since the last flush: a flush (and the
    /// close of a handle, PHP's every request) of an engine that only read
    /// costs no fsync.
    dirty: AtomicBool,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("path", &self.path).finish()
    }
}

impl Engine {
    /// Opens (creating when absent) the store at `path`, with the backend
    /// it was made with (a new one: `options.backend`).
    ///
    /// Fails with [`Error::Locked`] when another process holds a sled
    /// store, and with [`Error::Format`] when the store was written by a
    /// newer chatstore.
    pub(crate) fn open(path: impl AsRef<Path>, options: Options) -> Result<Engine> {
        let path = path.as_ref().to_path_buf();
        options.check()?;
        check_path(&path, &options)?;
        let kv = storage::open(&path, &options)?;
        Engine::on(kv, path, options)
    }

    /// A store held in memory (`storage::memory`), for the unit tests of
    /// the write, read, check and import code: no directory, no files.
    #[cfg(test)]
    pub(crate) fn in_memory(options: Options) -> Engine {
        let kv = Box::new(storage::memory::MemoryKv::default());
        Engine::on(kv, std::path::PathBuf::from("(memory)"), options)
            .expect("an in-memory store opens")
    }

    /// The engine over an opened key-value store: reads or fixes its
    /// format marker, finishes cut-short deletes.
    fn on(kv: Box<dyn Kv>, path: std::path::PathBuf, options: Options) -> Result<Engine> {
        let found = {
            let r = kv.read()?;
            read_marker(|k| Ok(r.get(Space::Meta, k)?.map(|v| v.to_vec())))?
        };
        let marker = match found {
            Some(m)
                if matches!(
                    m.format,
                    BLOCK_TEXT_FORMAT | NO_TEXT_FORMAT_4 | TEXT_FORMAT_5
                ) =>
            {
                settle_marker(kv.as_ref(), &options, None)?
            }
            Some(m) => m,
            // A new store: its layout and its text-index choice are fixed
            // now (unless another process just did).
            None => settle_marker(kv.as_ref(), &options, Some(options.text_index))?,
        };
        let format = marker.format;
        let engine = Engine {
            kv,
            options,
            text_index: marker.text_index,
            legacy_text: format == LEGACY_TEXT_FORMAT,
            format,
            path,
            commit: GroupCommit::default(),
            group: Combiner::default(),
            closed: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
        };
        if engine.legacy_text {
            return Ok(engine);
        }
        match engine.finish_cascades() {
            // Another process is writing (and may be finishing them): the
            // next opener does what is left.
            Ok(()) | Err(Error::Locked { .. }) => {}
            Err(e) => return Err(e),
        }
        Ok(engine)
    }

    /// What the store was created as.
    pub(crate) fn info(&self) -> Result<StoreInfo> {
        self.live()?;
        Ok(StoreInfo {
            format: self.format,
            text_index: self.text_index,
            backend: self.kv.backend(),
        })
    }

    /// Refuses what a store of the old posting layout cannot do here
    /// (writes, message search, check) with how to move it on.
    pub(crate) fn not_legacy(&self) -> Result<()> {
        if self.legacy_text {
            return Err(Error::Format {
                reason: format!(
                    "{} keeps its message-text index in the layout of builds before                      2026-12-03 (format 1), which this build reads but does not write or                      search: copy it into the new layout with `chatstore migrate --db {}                      --to NEW_DIR` (reads and export work meanwhile)",
                    self.path.display(),
                    self.path.display()
                ),
            });
        }
        Ok(())
    }

    /// What the format fixes about the keys.
    pub(crate) fn layout(&self) -> keys::Layout {
        keys::Layout {
            text_index: self.text_index,
            short_grams: !matches!(self.format, LEGACY_TEXT_FORMAT | LEGACY_NO_TEXT_FORMAT),
            pending_bytes: self.options.text_pending_bytes,
        }
    }

    pub(crate) fn live(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Runs a query in one read transaction: on LMDB everything it reads
    /// (a page, its total, its joined rows) is one snapshot.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Snap<'_>) -> Result<T>) -> Result<T> {
        self.live()?;
        let txn = self.kv.read()?;
        f(&Snap::new(&*txn, self.layout()))
    }

    /// Makes every write so far durable (nothing to do when this engine
    /// wrote nothing since the last flush).
    pub(crate) fn flush(&self) -> Result<()> {
        self.live()?;
        self.sync_if_dirty()
    }

    fn sync_if_dirty(&self) -> Result<()> {
        if self.dirty.swap(false, Ordering::AcqRel) {
            if let Err(e) = self.kv.sync() {
                self.dirty.store(true, Ordering::Release);
                return Err(e);
            }
        }
        Ok(())
    }

    /// Flushes and refuses every later call with [`Error::Closed`] (the
    /// store is being released). Idempotent.
    pub(crate) fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.sync_if_dirty()
    }

    /// Starts a write transaction (waiting for other writers at most
    /// `attach_timeout_ms`).
    pub(crate) fn begin_write(&self) -> Result<Box<dyn WriteTxn + '_>> {
        self.live()?;
        self.not_legacy()?;
        self.kv.write(self.options.attach_timeout_ms)
    }

    /// Commits a write transaction begun with [`Engine::begin_write`] and
    /// notes that a flush has something to sync.
    pub(crate) fn commit_write(&self, w: Box<dyn WriteTxn + '_>) -> Result<()> {
        w.commit()?;
        self.dirty.store(true, Ordering::Release);
        Ok(())
    }

    /// Runs one logical write of `tenant` in one write transaction, which
    /// concurrent writes of this process share (`group.rs`). With a
    /// request id (`once`), a write already applied under that id is not
    /// applied again: its recorded result is returned, and a new one
    /// records its id in the same transaction.
    fn write(
        &self,
        tenant: u64,
        once: Option<u128>,
        f: impl FnOnce(&Tx) -> TxResult<u64> + Send + 'static,
    ) -> Result<u64> {
        self.live()?;
        // Everything of this write, its request id included, is in its own
        // function: the leader of a shared transaction runs it as is.
        let job = move |tx: &Tx| -> TxResult<u64> {
            let key = once.map(|id| keys::request(tenant, id));
            if let Some(k) = &key {
                if let Some(v) = tx.get_raw(k)? {
                    return Ok(keys::u64_at(&v, 8));
                }
            }
            let v = f(tx)?;
            if let Some(k) = key {
                let mut rec = unix_now().to_be_bytes().to_vec();
                rec.extend_from_slice(&v.to_be_bytes());
                tx.insert_raw(k, &rec)?;
            }
            Ok(v)
        };
        let v = self
            .group
            .write(Box::new(job), &|| self.begin_write(), self.layout())?;
        self.dirty.store(true, Ordering::Release);
        Ok(v)
    }

    /// Runs a cascading delete step by step, each step one write
    /// ([`write::cascade_step`]), until it is complete; with a request id,
    /// the step that completes it records the id. `first`: a missing
    /// member or session is [`Error::NotFound`] (a new call), not a delete
    /// finished meanwhile (finishing a marked one).
    fn cascade(&self, tenant: u64, what: Cascade, once: Option<u128>, first: bool) -> Result<u64> {
        let mut first = first;
        loop {
            let job = move |tx: &Tx| -> TxResult<u64> {
                let key = once.map(|id| keys::request(tenant, id));
                if let Some(k) = &key {
                    if tx.get_raw(k)?.is_some() {
                        return Ok(1);
                    }
                }
                let done = write::cascade_step(tx, tenant, what, first)?;
                if let (true, Some(k)) = (done, key) {
                    let mut rec = unix_now().to_be_bytes().to_vec();
                    rec.extend_from_slice(&0u64.to_be_bytes());
                    tx.insert_raw(k, &rec)?;
                }
                Ok(u64::from(done))
            };
            self.live()?;
            let done = self
                .group
                .write(Box::new(job), &|| self.begin_write(), self.layout())?;
            self.dirty.store(true, Ordering::Release);
            if done == 1 {
                return Ok(0);
            }
            first = false;
        }
    }

    /// Finishes the cascading deletes a crash cut short (their markers are
    /// in the meta space); called at open.
    fn finish_cascades(&self) -> Result<()> {
        let pending: Vec<(u64, Cascade)> = {
            let txn = self.kv.read()?;
            let meta = Tree::new(&*txn, Space::Meta);
            let end = keys::prefix_end(keys::CASCADE_PREFIX).unwrap_or_default();
            meta.range(
                Bound::Included(keys::CASCADE_PREFIX),
                Bound::Excluded(end.as_slice()),
            )
            .map(|item| item.map(|(k, _)| Cascade::from_marker(&k)))
            .filter_map(|r| r.transpose())
            .collect::<Result<_>>()?
        };
        for (tenant, what) in pending {
            self.cascade(tenant, what, None, false)?;
        }
        Ok(())
    }

    /// Applies one write (validated first); returns the id it assigned, or 0
    /// for writes that assign none. Durability is the caller's (see
    /// [`Engine::sync`]).
    pub(crate) fn apply(&self, op: &WriteOp, once: Option<u128>) -> Result<u64> {
        match op {
            WriteOp::UpsertMember(m) => {
                limits::member(m)?;
                let m = m.clone();
                self.write(m.tenant, once, move |tx| {
                    write::upsert_member(tx, &m).map(|_| 0)
                })
            }
            WriteOp::UpsertAgent(a) => {
                limits::agent(a)?;
                let a = a.clone();
                self.write(a.tenant, once, move |tx| {
                    write::upsert_agent(tx, &a).map(|_| 0)
                })
            }
            WriteOp::UpsertSession(s) => {
                limits::session(s)?;
                let hash = new_session_hash()?;
                let s = s.clone();
                self.write(s.tenant, once, move |tx| {
                    write::upsert_session(tx, &s, &hash)
                })
            }
            WriteOp::AppendMessage(m) => {
                limits::message(m)?;
                let m = m.clone();
                self.write(m.tenant, once, move |tx| write::append_message(tx, &m))
            }
            &WriteOp::DeleteSession { tenant, id } => {
                self.cascade(tenant, Cascade::Session(id), once, true)
            }
            &WriteOp::DeleteMember { tenant, uid } => {
                self.cascade(tenant, Cascade::Member(uid), once, true)
            }
            &WriteOp::MarkRead {
                tenant,
                session,
                reader,
                up_to,
            } => self.write(tenant, once, move |tx| {
                write::mark_read(tx, tenant, session, reader, up_to)
            }),
            &WriteOp::RecallMessage {
                tenant,
                session,
                id,
            } => self.write(tenant, once, move |tx| {
                write::recall_message(tx, tenant, session, id).map(|_| 0)
            }),
            &WriteOp::DeleteMessage {
                tenant,
                session,
                id,
                at,
            } => self.write(tenant, once, move |tx| {
                write::delete_message(tx, tenant, session, id, at).map(|_| 0)
            }),
            &WriteOp::DeleteAgent { tenant, id } => self.write(tenant, once, move |tx| {
                write::delete_agent(tx, tenant, id).map(|_| 0)
            }),
            WriteOp::UpsertAccount(a) => {
                limits::account(a)?;
                self.upsert_account(a).map(|_| 0)
            }
            &WriteOp::DeleteAccount(sso_id) => {
                let mut w = self.begin_write()?;
                let key = sso_id.to_be_bytes();
                if w.get(Space::Accounts, &key)?.is_none() {
                    return Err(Error::not_found(format!("account {sso_id}")));
                }
                w.delete(Space::Accounts, &key)?;
                self.commit_write(w)?;
                Ok(0)
            }
        }
    }

    /// Waits until every write so far is durable; concurrent callers share
    /// one sync (group commit).
    pub(crate) fn sync(&self) -> Result<()> {
        self.commit.wait_durable(|| self.kv.sync())
    }

    /// [`Engine::sync`] when the store was opened with `Durability::Sync`
    /// (the import path).
    pub(crate) fn durable(&self) -> Result<()> {
        if self.options.durability == Durability::Sync {
            self.sync()?;
        }
        Ok(())
    }

    /// Inserts or replaces an account (accounts live in their own space,
    /// keyed by sso_id). Validated by the caller.
    pub(crate) fn upsert_account(&self, a: &Account) -> Result<()> {
        let mut w = self.begin_write()?;
        w.put(Space::Accounts, &a.sso_id.to_be_bytes(), &codec::encode(a))?;
        self.commit_write(w)
    }

    /// Removes the records of writes applied more than `max_age_secs` ago
    /// for another process (see [`keys::REQUEST`]). Returns how many.
    pub(crate) fn prune_requests(&self, max_age_secs: u64) -> Result<u64> {
        let cutoff = unix_now().saturating_sub(max_age_secs);
        let mut n = 0;
        for t in self.tenants()? {
            n += self.prune(
                Space::Data,
                keys::Key::new(t, keys::REQUEST).as_ref(),
                cutoff,
            )?;
        }
        // Import chunks' progress records (in the meta space).
        n += self.prune(Space::Meta, keys::IMPORT_PROGRESS_PREFIX, cutoff)?;
        Ok(n)
    }

    /// Removes, in one write, the records under `prefix` whose value
    /// begins with an applied-at time (u64 BE) before `cutoff`.
    fn prune(&self, space: Space, prefix: &[u8], cutoff: u64) -> Result<u64> {
        let mut w = self.begin_write()?;
        let old: Vec<Vec<u8>> = Tree::new(w.as_read(), space)
            .scan_prefix(prefix)
            .filter_map(|item| match item {
                Ok((k, v)) => {
                    (v.len() >= 8 && keys::u64_at(&v, 0) < cutoff).then(|| Ok(k.to_vec()))
                }
                Err(e) => Some(Err(e)),
            })
            .collect::<Result<_>>()?;
        for k in &old {
            w.delete(space, k)?;
        }
        self.commit_write(w)?;
        Ok(old.len() as u64)
    }

    /// Writes a consistent, compact copy of the store into `dir` (a new
    /// directory), with the same backend, while others keep reading and
    /// writing.
    pub(crate) fn backup(&self, dir: &Path) -> Result<()> {
        self.live()?;
        if dir.exists() {
            return Err(Error::invalid(
                "backup",
                format!("{} exists: a backup goes to a new directory", dir.display()),
            ));
        }
        storage::create_dir(dir, false)?;
        self.kv.copy_to(dir)
    }

    /// Bytes the store takes on disk.
    pub(crate) fn size_on_disk(&self) -> Result<u64> {
        self.live()?;
        self.kv.size_on_disk()
    }

    /// Whether an import that found the store at `before` bytes wrote most
    /// of it, so that rewriting it in key order ([`Engine::compact`]) packs
    /// it: an LMDB store that at least doubled, by [`PACK_MIN_GROWTH`] or
    /// more. Random inserts leave LMDB's pages about half full, and a store
    /// written by many transactions keeps free pages; a rewrite in key
    /// order fills every page (ARCHITECTURE.md, "Bulk loads").
    pub(crate) fn worth_packing(&self, before: u64) -> Result<bool> {
        if self.kv.backend() != storage::Backend::Lmdb {
            return Ok(false);
        }
        let after = self.size_on_disk()?;
        Ok(after >= before.saturating_mul(2) && after - before >= PACK_MIN_GROWTH)
    }

    /// Rewrites an LMDB store compactly in place; it must not be open in
    /// any other process. The engine is closed after (its map shows the
    /// old file).
    pub(crate) fn compact(&self) -> Result<()> {
        self.live()?;
        self.kv.compact()?;
        self.closed.store(true, Ordering::Release);
        Ok(())
    }
}

/// The read API: each call one read transaction (see [`Engine::read`]).
impl Engine {
    /// A member by uid.
    pub(crate) fn get_member(&self, tenant: u64, uid: u64) -> Result<Option<Member>> {
        self.read(|s| s.get_member(tenant, uid))
    }
    /// An agent by id.
    pub(crate) fn get_agent(&self, tenant: u64, id: u64) -> Result<Option<Agent>> {
        self.read(|s| s.get_agent(tenant, id))
    }
    /// A session with its member, agent and last message.
    pub(crate) fn get_session(&self, tenant: u64, sid: u64) -> Result<Option<SessionView>> {
        self.read(|s| s.get_session(tenant, sid))
    }
    /// One page of sessions.
    pub(crate) fn history_list(&self, q: &HistoryQuery) -> Result<HistoryPage> {
        self.read(|s| s.history_list(q))
    }
    /// Members whose nickname or mobile matches `q`.
    pub(crate) fn search_members(&self, tenant: u64, q: &str) -> Result<Vec<Member>> {
        self.read(|s| s.search_members(tenant, q))
    }
    /// A session's messages, newest first.
    pub(crate) fn messages(
        &self,
        tenant: u64,
        session: u64,
        page: u64,
        pagesize: u64,
    ) -> Result<MessagesPage> {
        self.read(|s| s.messages(tenant, session, page, pagesize))
    }
    /// A tenant's counters.
    pub(crate) fn tenant_stats(&self, tenant: u64) -> Result<TenantStats> {
        self.read(|s| s.tenant_stats(tenant))
    }
    /// The tenants that hold any data, ascending.
    pub(crate) fn tenants(&self) -> Result<Vec<u64>> {
        self.read(|s| s.tenants())
    }
    /// Searches message text.
    pub(crate) fn search_messages(&self, q: &MessageSearch) -> Result<MessageHits> {
        self.not_legacy()?;
        self.read(|s| s.search_messages(q))
    }
    /// Verifies every invariant, over one snapshot.
    pub(crate) fn check(&self) -> Result<CheckReport> {
        self.not_legacy()?;
        self.read(|s| s.check())
    }
    /// The history-list response as JSON text.
    pub(crate) fn history_list_text(
        &self,
        req: &HistoryRequest,
        render: &RenderSettings,
    ) -> Result<String> {
        self.read(|s| {
            let page = s.history_page(&req.query, false)?;
            render::history_list_text(&page, render, &req.page_url)
        })
    }
    /// A tenant's sessions by activity, 30 a page.
    pub(crate) fn conversations(&self, tenant: u64, page: u64) -> Result<HistoryPage> {
        self.read(|s| s.conversations(tenant, page))
    }
    /// An account by sso_id.
    pub(crate) fn get_account(&self, sso_id: u64) -> Result<Option<Account>> {
        self.read(|s| s.get_account(sso_id))
    }
    /// The hischat response as JSON text.
    pub(crate) fn hischat_text(&self, sso_id: u64, hash: &str, page: i64) -> Result<String> {
        self.read(|s| render::hischat_text(&s.hischat_page(sso_id, hash, page)?, sso_id))
    }
}

/// Refuses a path that is a file, a directory another user controls
/// (`trust::check_dir`), and (with `create_if_missing` false) one that
/// holds no store, before anything is created.
pub(crate) fn check_path(path: &Path, options: &Options) -> Result<()> {
    crate::trust::check_dir(path)?;
    if path.is_file() {
        return Err(Error::invalid(
            "path",
            format!("{} is a file, not a store directory", path.display()),
        ));
    }
    if !options.create_if_missing && Backend::of_existing(path).is_none() {
        return Err(Error::not_found(format!("store {}", path.display())));
    }
    Ok(())
}

/// What a store's meta space says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Marker {
    format: u32,
    text_index: bool,
}

/// Reads a store's format and text-index choice through `get` (a key of
/// the meta space); `None` for a store not yet marked.
fn read_marker(get: impl Fn(&[u8]) -> Result<Option<Vec<u8>>>) -> Result<Option<Marker>> {
    let Some(v) = get(FORMAT_KEY)? else {
        return Ok(None);
    };
    let format = decode_format(&v)?;
    let text_index = if format >= STORE_FORMAT {
        match get(TEXT_INDEX_KEY)?.as_deref() {
            Some([1]) => true,
            Some([0]) => false,
            Some(_) => {
                return Err(Error::corrupt(
                    "the store's text-index choice is not 0 or 1",
                ))
            }
            None => return Err(Error::corrupt("the store's text-index choice went missing")),
        }
    } else {
        matches!(
            format,
            LEGACY_TEXT_FORMAT | BLOCK_TEXT_FORMAT | TEXT_FORMAT_5
        )
    };
    Ok(Some(Marker { format, text_index }))
}

/// In one write transaction: marks a new store ([`STORE_FORMAT`] and
/// `new_text_index`, when `Some`), or moves a store of format 3, 4 or 5 to
/// [`STORE_FORMAT`] with the choice its old marker said (what it holds is
/// already valid there). Another process may have done either first: the
/// marker found then is the answer.
fn settle_marker(kv: &dyn Kv, options: &Options, new_text_index: Option<bool>) -> Result<Marker> {
    let mut w = kv.write(options.attach_timeout_ms)?;
    let found = read_marker(|k| Ok(w.get(Space::Meta, k)?.map(|v| v.to_vec())))?;
    let text_index = match (found, new_text_index) {
        (Some(m), _)
            if !matches!(
                m.format,
                BLOCK_TEXT_FORMAT | NO_TEXT_FORMAT_4 | TEXT_FORMAT_5
            ) =>
        {
            return Ok(m)
        }
        (Some(m), _) => m.text_index,
        (None, Some(t)) => t,
        (None, None) => return Err(Error::corrupt("the store's format marker went missing")),
    };
    w.put(Space::Meta, FORMAT_KEY, &STORE_FORMAT.to_be_bytes())?;
    w.put(Space::Meta, TEXT_INDEX_KEY, &[u8::from(text_index)])?;
    w.commit()?;
    kv.sync()?;
    Ok(Marker {
        format: STORE_FORMAT,
        text_index,
    })
}

fn decode_format(v: &[u8]) -> Result<u32> {
    let found = <[u8; 4]>::try_from(v)
        .map(u32::from_be_bytes)
        .map_err(|_| Error::Format {
            reason: "format marker is not 4 bytes".into(),
        })?;
    if found > STORE_FORMAT {
        return Err(Error::Format {
            reason: format!("store format {found} is newer than this build's {STORE_FORMAT}"),
        });
    }
    Ok(found)
}

/// The least an import must grow an LMDB store by for the store to be
/// packed after it (see [`Engine::worth_packing`]).
pub(crate) const PACK_MIN_GROWTH: u64 = 4 << 20;

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh random session hash: 32 lowercase hex characters.
pub(crate) fn new_session_hash() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| Error::Io(std::io::Error::other(format!("random source: {e}"))))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Member, Message, Session};

    /// An engine with member 1 and one session of tenant 2.
    fn engine_with_a_session(dir: &std::path::Path) -> (Engine, u64) {
        engine_with_a_session_opened(dir, Options::default())
    }

    fn engine_with_a_session_opened(dir: &std::path::Path, options: Options) -> (Engine, u64) {
        let e = Engine::open(dir, options).unwrap();
        let member = Member {
            tenant: 2,
            uid: 1,
            ..Default::default()
        };
        e.apply(&WriteOp::UpsertMember(member), None).unwrap();
        let session = Session {
            tenant: 2,
            uid: 1,
            ..Default::default()
        };
        let sid = e.apply(&WriteOp::UpsertSession(session), None).unwrap();
        (e, sid)
    }

    /// JSON Lines of `n` member messages in session `sid` of tenant 2.
    fn messages_jsonl(sid: u64, n: u64) -> String {
        (0..n)
            .map(|i| {
                format!(
                    "{{\"kind\":\"message\",\"tenant\":2,\"session_id\":{sid},\
                     \"sender\":\"member\",\"sender_id\":1,\"content\":\"消息 {i} order\",\
                     \"content_type\":0,\"link\":\"\",\"time\":{},\"ip\":\"\"}}\n",
                    1_700_000_000 + i
                )
            })
            .collect()
    }

    fn pending_cascades(e: &Engine) -> usize {
        let txn = e.kv.read().unwrap();
        Tree::new(&*txn, Space::Meta)
            .scan_prefix(keys::CASCADE_PREFIX)
            .count()
    }

    /// A member whose sessions hold more messages than a step removes is
    /// deleted in bounded steps: each leaves a store that checks clean, and
    /// a delete cut short after a step is finished by the next open.
    #[test]
    fn a_large_delete_runs_in_bounded_steps_and_survives_a_crash_between_them() {
        let dir = tempfile::tempdir().unwrap();
        let (e, big) = engine_with_a_session(dir.path());
        let second = Session {
            tenant: 2,
            uid: 1,
            ..Default::default()
        };
        let mid = e
            .apply(&WriteOp::UpsertSession(second.clone()), None)
            .unwrap();
        let small = e.apply(&WriteOp::UpsertSession(second), None).unwrap();
        let step = write::CASCADE_STEP_MESSAGES;
        for (sid, n) in [(big, step + step / 4), (mid, step * 3 / 4), (small, 10)] {
            e.import_jsonl(messages_jsonl(sid, n).as_bytes(), 0, None, |_| {})
                .unwrap();
        }
        // Unread counts and softly deleted messages move with the purge.
        e.apply(
            &WriteOp::MarkRead {
                tenant: 2,
                session: big,
                reader: crate::model::Reader::Agent,
                up_to: 5,
            },
            None,
        )
        .unwrap();
        // Its messages were imported first: ids 1 and up.
        let first_of_big = 1;
        e.apply(
            &WriteOp::DeleteMessage {
                tenant: 2,
                session: big,
                id: first_of_big + 7,
                at: 1_800_000_000,
            },
            None,
        )
        .unwrap();
        assert!(e.check().unwrap().ok);

        // One step, as a crashed delete would have left it.
        let done = e
            .write(2, None, |tx| {
                write::cascade_step(tx, 2, Cascade::Member(1), true).map(u64::from)
            })
            .unwrap();
        assert_eq!(done, 0);
        assert!(e.get_member(2, 1).unwrap().is_some());
        assert_eq!(pending_cascades(&e), 1);
        let left = e.get_session(2, big).unwrap().unwrap().message_count;
        // One of them softly deleted: it went first, then the oldest visible.
        assert_eq!(left, step + step / 4 - step, "the oldest {step} went");
        let report = e.check().unwrap();
        assert!(report.ok, "{report:?}");
        assert_eq!(
            e.tenant_stats(2).unwrap().messages,
            left + step * 3 / 4 + 10
        );
        drop(e);

        let e = Engine::open(dir.path(), Options::default()).unwrap();
        assert!(e.get_member(2, 1).unwrap().is_none());
        assert_eq!(pending_cascades(&e), 0);
        let stats = e.tenant_stats(2).unwrap();
        assert_eq!((stats.members, stats.sessions, stats.messages), (0, 0, 0));
        assert!(e.check().unwrap().ok);
    }

    /// Through the write API the same delete runs every step before it
    /// returns, and a retry under its request id applies nothing more.
    #[test]
    fn a_large_delete_completes_in_one_call() {
        let dir = tempfile::tempdir().unwrap();
        let (e, sid) = engine_with_a_session(dir.path());
        let n = write::CASCADE_STEP_MESSAGES * 2 + 3;
        e.import_jsonl(messages_jsonl(sid, n).as_bytes(), 0, None, |_| {})
            .unwrap();
        let delete = WriteOp::DeleteSession { tenant: 2, id: sid };
        e.apply(&delete, Some(9)).unwrap();
        assert!(e.get_session(2, sid).unwrap().is_none());
        assert_eq!(e.tenant_stats(2).unwrap().messages, 0);
        e.apply(&delete, Some(9)).unwrap();
        assert!(matches!(
            e.apply(&delete, None),
            Err(Error::NotFound { .. })
        ));
        assert_eq!(pending_cascades(&e), 0);
        assert!(e.check().unwrap().ok);
    }

    #[test]
    fn engine_is_send_and_sync() {
        fn is<T: Send + Sync>() {}
        is::<Engine>();
    }

    #[test]
    fn a_write_retried_under_its_request_id_applies_once() {
        let dir = tempfile::tempdir().unwrap();
        let (e, sid) = engine_with_a_session(dir.path());
        let append = WriteOp::AppendMessage(Message {
            tenant: 2,
            session_id: sid,
            content: "once".into(),
            ..Default::default()
        });
        let first = e.apply(&append, Some(42)).unwrap();
        assert_eq!(
            e.apply(&append, Some(42)).unwrap(),
            first,
            "the recorded result"
        );
        assert_eq!(e.tenant_stats(2).unwrap().messages, 1);
        // Another id is another write; no id is never recorded.
        assert_ne!(e.apply(&append, Some(43)).unwrap(), first);
        e.apply(&append, None).unwrap();
        assert_eq!(e.tenant_stats(2).unwrap().messages, 3);
        assert!(e.check().unwrap().ok);
        // Records are pruned by age (0 s: all of them), not before.
        assert_eq!(e.prune_requests(3600).unwrap(), 0);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(e.prune_requests(0).unwrap(), 2);
        assert_eq!(
            e.apply(&append, Some(42)).unwrap(),
            first + 3,
            "pruned: applied anew"
        );
    }

    /// Postings of one gram over many blocks: appends (newest), messages
    /// with old ids in another session (placed among older blocks),
    /// deletes and recalls spread over the blocks; after each phase the
    /// search answers what a scan does and check() passes.
    /// With no pending list, the default one (8 KiB: it fills and is
    /// moved into the blocks several times) and a short one.
    #[test]
    fn postings_over_many_blocks_stay_exact() {
        for pending in [0, 8 << 10, 300] {
            postings_over_many_blocks(pending);
        }
    }

    fn postings_over_many_blocks(pending: usize) {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            text_pending_bytes: pending,
            ..Options::default()
        };
        let (e, first) = engine_with_a_session_opened(dir.path(), options);
        let other = e
            .apply(
                &WriteOp::UpsertSession(Session {
                    tenant: 2,
                    uid: 1,
                    ..Default::default()
                }),
                None,
            )
            .unwrap();
        let append = |sid: u64, id: u64, i: u64| {
            e.apply(
                &WriteOp::AppendMessage(Message {
                    tenant: 2,
                    session_id: sid,
                    id,
                    content: format!("订单 {i} 已发货"),
                    time: 1_700_000_000 + i as i64,
                    ..Default::default()
                }),
                None,
            )
            .unwrap()
        };
        let expect = |e: &Engine, phase: &str| {
            let report = e.check().unwrap();
            assert!(report.ok, "{phase} ({pending}): {:?}", report.violations);
            let mut want: Vec<(u64, u64)> = Vec::new();
            for sid in [first, other] {
                let Ok(page) = e.messages(2, sid, 1, 100) else {
                    continue; // deleted
                };
                let mut n = 1;
                let mut all = page.messages;
                while (all.len() as u64) < page.total {
                    n += 1;
                    all.extend(e.messages(2, sid, n, 100).unwrap().messages);
                }
                want.extend(
                    all.iter()
                        .filter(|m| !m.recalled && m.content.starts_with("订单"))
                        .map(|m| (m.id, m.session_id)),
                );
            }
            want.sort_by_key(|&(mid, sid)| (std::cmp::Reverse(mid), sid));
            let mut q = crate::MessageSearch::new(2, "订单");
            q.pagesize = 100;
            let mut got = Vec::new();
            for page in 1..=(want.len() as u64).div_ceil(100).max(1) {
                q.page = page;
                let hits = e.search_messages(&q).unwrap();
                assert_eq!(hits.total, want.len() as u64, "{phase} ({pending})");
                got.extend(hits.messages.iter().map(|m| (m.id, m.session_id)));
            }
            assert_eq!(got, want, "{phase} ({pending})");
            // A query of two grams goes through the merge and the offsets.
            let two = e
                .search_messages(&crate::MessageSearch::new(2, "订单 7"))
                .unwrap();
            let want_two = want
                .iter()
                .filter(|&&(mid, sid)| {
                    e.read(|s| {
                        Ok(s.data
                            .get(keys::message(2, sid, mid))?
                            .map(|v| codec::decode::<codec::MsgBody>(&v, "m").unwrap().content))
                    })
                    .unwrap()
                    .is_some_and(|c| c.contains("订单 7"))
                })
                .count();
            assert_eq!(two.total, want_two as u64, "{phase} ({pending})");
        };
        for i in 0..600 {
            append(first, 0, i);
        }
        expect(&e, "appended");
        // Old ids in the other session land among the older blocks.
        for i in 0..120 {
            append(other, 100 + i * 3, 10_000 + i);
        }
        expect(&e, "old ids");
        for id in (1..600).step_by(7) {
            e.apply(
                &WriteOp::DeleteMessage {
                    tenant: 2,
                    session: first,
                    id,
                    at: 1_800_000_000,
                },
                None,
            )
            .unwrap();
        }
        for id in (2..600).step_by(11) {
            let _ = e.apply(
                &WriteOp::RecallMessage {
                    tenant: 2,
                    session: first,
                    id,
                },
                None,
            );
        }
        expect(&e, "deleted and recalled");
        e.apply(
            &WriteOp::DeleteSession {
                tenant: 2,
                id: first,
            },
            None,
        )
        .unwrap();
        expect(&e, "a session deleted");
    }

    /// Appends the messages `订单 i`, `i` in `range`, to session `sid` of
    /// tenant 2.
    fn append_orders(e: &Engine, sid: u64, range: std::ops::Range<u64>) {
        for i in range {
            e.apply(
                &WriteOp::AppendMessage(Message {
                    tenant: 2,
                    session_id: sid,
                    content: format!("订单 {i}"),
                    ..Default::default()
                }),
                None,
            )
            .unwrap();
        }
    }

    /// Appends `n` messages `订单 i` to session `sid` of tenant 2 and
    /// returns the first entry under `prefix` (a block or a pending entry).
    fn orders_then_first(e: &Engine, sid: u64, n: u64, prefix: keys::Key) -> (Vec<u8>, Vec<u8>) {
        append_orders(e, sid, 0..n);
        assert!(e.check().unwrap().ok);
        e.read(|s| {
            let (k, v) = s.data.scan_prefix(&prefix).next().expect("an entry")?;
            Ok((k.to_vec(), v.to_vec()))
        })
        .unwrap()
    }

    /// check()'s violations with `k` holding `damaged`, then `k` restored
    /// to `v`.
    fn violations_with(e: &Engine, k: &[u8], v: &[u8], damaged: Vec<u8>) -> Vec<String> {
        let mut w = e.begin_write().unwrap();
        w.put(Space::Data, k, &damaged).unwrap();
        w.commit().unwrap();
        let report = e.check().unwrap();
        let mut w = e.begin_write().unwrap();
        w.put(Space::Data, k, v).unwrap();
        w.commit().unwrap();
        report.violations
    }

    /// check() finds a posting missing from a block, one that names a
    /// message without the gram, and a wrong total.
    #[test]
    fn check_reports_damaged_posting_blocks() {
        let dir = tempfile::tempdir().unwrap();
        let blocks_at_once = Options {
            text_pending_bytes: 0,
            ..Options::default()
        };
        let (e, sid) = engine_with_a_session_opened(dir.path(), blocks_at_once);
        let (k, v) = orders_then_first(&e, sid, 5, keys::text_block_prefix(2, "订单"));
        let (total, list) = crate::text::postings::decode(&v).unwrap();
        let damaged = |block: Vec<u8>| violations_with(&e, &k, &v, block);
        // The oldest posting names the block: drop the newest.
        let fewer = damaged(crate::text::postings::encode(total, &list[1..]));
        assert!(
            fewer
                .iter()
                .any(|v| v.contains("5 visible messages hold it")),
            "{fewer:?}"
        );
        let mut moved = list.clone();
        moved[0].offsets = vec![1];
        let wrong = damaged(crate::text::postings::encode(total, &moved));
        assert!(
            wrong.iter().any(|v| v.contains("postings name 5 others")),
            "{wrong:?}"
        );
        let count = damaged(crate::text::postings::encode(total + 1, &list));
        assert!(
            count.iter().any(|v| v.contains("states 6 postings")),
            "{count:?}"
        );
        assert!(e.check().unwrap().ok);
    }

    /// check() finds a pending entry missing a gram, one with wrong
    /// offsets, and one whose bytes are damaged.
    #[test]
    fn check_reports_damaged_pending_entries() {
        let dir = tempfile::tempdir().unwrap();
        let (e, sid) = engine_with_a_session(dir.path());
        let (k, v) = orders_then_first(&e, sid, 3, keys::text_pending_prefix(2));
        let entry = crate::text::postings::decode_entry(&v, |_| true).unwrap();
        let damaged = |value: Vec<u8>| violations_with(&e, &k, &v, value);
        let mut fewer = entry.clone();
        fewer.retain(|(g, _)| g != "订单");
        let found = damaged(crate::text::postings::encode_entry(&fewer));
        assert!(
            found
                .iter()
                .any(|v| v.contains("3 visible messages hold it")),
            "{found:?}"
        );
        let mut moved = entry.clone();
        for (g, offsets) in &mut moved {
            if g == "订单" {
                *offsets = vec![1];
            }
        }
        let found = damaged(crate::text::postings::encode_entry(&moved));
        assert!(
            found.iter().any(|v| v.contains("postings name 3 others")),
            "{found:?}"
        );
        let found = damaged(v[..v.len() - 1].to_vec());
        assert!(
            found
                .iter()
                .any(|v| v.contains("pending text postings of message")),
            "{found:?}"
        );
        assert!(e.check().unwrap().ok);
    }

    /// A store of format 3 (blocks, no pending list) is a format 6 store
    /// with the text index and without pending entries: opening it moves
    /// its marker to 6 and records the choice apart, and it answers the
    /// same with postings on both sides.
    #[test]
    fn a_store_of_format_3_moves_to_format_6_when_opened() {
        let dir = tempfile::tempdir().unwrap();
        let blocks_only = Options {
            text_pending_bytes: 0,
            ..Options::default()
        };
        let (e, sid) = engine_with_a_session_opened(dir.path(), blocks_only);
        append_orders(&e, sid, 0..20);
        // As a build of format 3 left it: one number, no choice apart.
        let mut w = e.begin_write().unwrap();
        w.put(Space::Meta, FORMAT_KEY, &BLOCK_TEXT_FORMAT.to_be_bytes())
            .unwrap();
        w.delete(Space::Meta, TEXT_INDEX_KEY).unwrap();
        w.commit().unwrap();
        drop(e);
        let e = Engine::open(dir.path(), Options::default()).unwrap();
        assert_eq!(e.info().unwrap().format, STORE_FORMAT);
        assert!(e.info().unwrap().text_index);
        let meta = |k: &[u8]| {
            e.kv.read()
                .unwrap()
                .get(Space::Meta, k)
                .unwrap()
                .map(|v| v.to_vec())
        };
        assert_eq!(meta(FORMAT_KEY), Some(STORE_FORMAT.to_be_bytes().to_vec()));
        assert_eq!(meta(TEXT_INDEX_KEY), Some(vec![1]));
        append_orders(&e, sid, 20..25);
        let pending = e
            .read(|s| Ok(s.data.scan_prefix(keys::text_pending_prefix(2)).count()))
            .unwrap();
        assert_eq!(pending, 5);
        let hits = e
            .search_messages(&crate::MessageSearch::new(2, "订单"))
            .unwrap();
        assert_eq!(hits.total, 25);
        let hits = e
            .search_messages(&crate::MessageSearch::new(2, "订单 2"))
            .unwrap();
        assert_eq!(hits.total, 6, "2 and 20..25");
        assert!(e.check().unwrap().ok);
    }

    /// A store of format 4 (no text index, in the number) moves to 6 with
    /// the choice recorded apart, and stays without the index; a marker of
    /// format 6 whose choice is missing or not 0/1 is a damaged store.
    #[test]
    fn a_store_of_format_4_moves_to_format_6_without_the_index() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            text_index: false,
            ..Options::default()
        };
        let (e, _) = engine_with_a_session_opened(dir.path(), options);
        let mut w = e.begin_write().unwrap();
        w.put(Space::Meta, FORMAT_KEY, &NO_TEXT_FORMAT_4.to_be_bytes())
            .unwrap();
        w.delete(Space::Meta, TEXT_INDEX_KEY).unwrap();
        w.commit().unwrap();
        drop(e);
        // The options' choice does not matter to an existing store.
        let e = Engine::open(dir.path(), Options::default()).unwrap();
        let info = e.info().unwrap();
        assert_eq!((info.format, info.text_index), (STORE_FORMAT, false));
        assert!(e.check().unwrap().ok);
        for bad in [&b""[..], &[2][..]] {
            let mut w = e.begin_write().unwrap();
            if bad.is_empty() {
                w.delete(Space::Meta, TEXT_INDEX_KEY).unwrap();
            } else {
                w.put(Space::Meta, TEXT_INDEX_KEY, bad).unwrap();
            }
            w.commit().unwrap();
            let r = e.kv.read().unwrap();
            let err = read_marker(|k| Ok(r.get(Space::Meta, k)?.map(|v| v.to_vec()))).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Corrupt, "{err}");
        }
    }

    /// A pending list over the most is refused before anything is created.
    #[test]
    fn a_pending_list_over_the_most_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store");
        let options = Options {
            text_pending_bytes: crate::options::MAX_TEXT_PENDING_BYTES + 1,
            ..Options::default()
        };
        let err = Engine::open(&path, options).unwrap_err();
        assert!(err.to_string().contains("text_pending_bytes"), "{err}");
        assert!(!path.exists());
    }

    /// A store made without the text index by earlier builds (format 2)
    /// keeps nickname grams from three characters: it is written that way,
    /// checks clean, and answers a two-letter filter by walking; a new one
    /// (format 4) answers it from its grams.
    #[test]
    fn a_store_of_format_2_keeps_its_grams_and_answers_short_filters() {
        for legacy in [true, false] {
            let dir = tempfile::tempdir().unwrap();
            let options = Options {
                text_index: false,
                ..Options::default()
            };
            let e = Engine::open(dir.path(), options.clone()).unwrap();
            if legacy {
                let mut w = e.begin_write().unwrap();
                w.put(
                    Space::Meta,
                    FORMAT_KEY,
                    &LEGACY_NO_TEXT_FORMAT.to_be_bytes(),
                )
                .unwrap();
                w.commit().unwrap();
            }
            drop(e);
            let (e, _) = engine_with_a_session_opened(dir.path(), options);
            e.apply(
                &WriteOp::UpsertMember(Member {
                    tenant: 2,
                    uid: 1,
                    nickname: "Lê Văn Đức".into(),
                    mobile: "0912 345 678".into(),
                    ..Default::default()
                }),
                None,
            )
            .unwrap();
            let want = if legacy {
                LEGACY_NO_TEXT_FORMAT
            } else {
                STORE_FORMAT
            };
            assert_eq!(e.info().unwrap().format, want);
            assert!(e.check().unwrap().ok);
            for q in ["Lê", "đ", "78", "van"] {
                let found = e.read(|s| s.search_members(2, q)).unwrap();
                assert_eq!(found.len(), 1, "{q} (format {want})");
            }
            let grams = e
                .read(|s| Ok(s.data.scan_prefix(keys::Key::new(2, keys::GRAM)).count()))
                .unwrap();
            let short = e.layout().short_grams;
            assert_eq!(short, !legacy);
            let rec = e.read(|s| s.member_rec(2, 1)).unwrap().unwrap();
            assert_eq!(grams, write::member_grams(&rec, short).len());
        }
    }

    /// A store whose text postings are a key each (format 1, builds before
    /// the blocks) is read but neither written nor searched: each refusal
    /// says how to migrate, and the export (what migrate copies) works.
    #[test]
    fn a_store_of_the_old_posting_layout_is_read_and_refused_for_writes() {
        let dir = tempfile::tempdir().unwrap();
        let (e, sid) = engine_with_a_session(dir.path());
        let m = Message {
            tenant: 2,
            session_id: sid,
            content: "订单 12345".into(),
            ..Default::default()
        };
        e.apply(&WriteOp::AppendMessage(m.clone()), None).unwrap();
        let mut w = e.begin_write().unwrap();
        w.put(Space::Meta, FORMAT_KEY, &LEGACY_TEXT_FORMAT.to_be_bytes())
            .unwrap();
        w.commit().unwrap();
        drop(e);
        let e = Engine::open(dir.path(), Options::default()).unwrap();
        assert_eq!(e.info().unwrap().format, LEGACY_TEXT_FORMAT);
        assert_eq!(e.get_session(2, sid).unwrap().unwrap().message_count, 1);
        let says_migrate = |r: Result<u64>| match r {
            Err(Error::Format { reason }) => {
                assert!(reason.contains("chatstore migrate"), "{reason}")
            }
            other => panic!("{other:?}"),
        };
        says_migrate(e.apply(&WriteOp::AppendMessage(m), None));
        says_migrate(
            e.search_messages(&crate::MessageSearch::new(2, "订单"))
                .map(|h| h.total),
        );
        says_migrate(e.check().map(|r| r.keys));
        let records = e
            .export_records()
            .unwrap()
            .collect::<Result<Vec<_>>>()
            .unwrap();
        assert!(records
            .iter()
            .any(|r| matches!(r, crate::jsonl::Record::Message(m) if m.content == "订单 12345")));
    }

    /// A store created without the text index writes no posting, and
    /// check() reports one that appears there.
    #[test]
    fn check_refuses_postings_in_a_store_without_the_text_index() {
        let dir = tempfile::tempdir().unwrap();
        let options = Options {
            text_index: false,
            ..Options::default()
        };
        let (e, sid) = engine_with_a_session_opened(dir.path(), options);
        let m = Message {
            tenant: 2,
            session_id: sid,
            content: "订单 12345".into(),
            ..Default::default()
        };
        let mid = e.apply(&WriteOp::AppendMessage(m), None).unwrap();
        assert!(e.check().unwrap().ok);
        assert_eq!(e.info().unwrap().format, STORE_FORMAT);
        assert!(!e.info().unwrap().text_index);
        let mut w = e.begin_write().unwrap();
        w.put(
            Space::Data,
            crate::keys::text_block(2, "订单", mid, sid).as_ref(),
            &crate::text::postings::encode(
                1,
                &[crate::text::postings::Posting {
                    mid,
                    sid,
                    offsets: vec![0],
                }],
            ),
        )
        .unwrap();
        w.commit().unwrap();
        let report = e.check().unwrap();
        assert!(
            report
                .violations
                .iter()
                .any(|v| v.contains("in a store without the text index")),
            "{:?}",
            report.violations
        );
    }

    /// Concurrent writes share transactions (group.rs): each lands once,
    /// a refused one among them leaves nothing and costs the others nothing.
    #[test]
    fn concurrent_writes_share_commits_and_fail_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (e, sid) = engine_with_a_session(dir.path());
        let e = std::sync::Arc::new(e);
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let e = std::sync::Arc::clone(&e);
                std::thread::spawn(move || {
                    let mut ids = Vec::new();
                    for i in 0..40u64 {
                        let session_id = if i % 10 == 9 { 999_999 } else { sid };
                        let m = Message {
                            tenant: 2,
                            session_id,
                            content: format!("t{t} m{i}"),
                            ..Default::default()
                        };
                        match e.apply(&WriteOp::AppendMessage(m), Some(u128::from(t * 1000 + i))) {
                            Ok(id) => ids.push(id),
                            Err(err) => {
                                assert_eq!(session_id, 999_999, "{err}");
                                assert!(matches!(err, Error::NotFound { .. }), "{err}");
                            }
                        }
                    }
                    ids
                })
            })
            .collect();
        let mut ids: Vec<u64> = threads
            .into_iter()
            .flat_map(|t| t.join().unwrap())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), 8 * 36, "every accepted append has its own id");
        assert_eq!(e.tenant_stats(2).unwrap().messages, 8 * 36);
        assert_eq!(e.messages(2, sid, 1, 100).unwrap().total, 8 * 36);
        assert!(e.check().unwrap().ok);
    }

    #[test]
    fn session_hashes_are_lowercase_hex() {
        let h = super::new_session_hash().unwrap();
        assert!(crate::limits::is_session_hash(&h), "{h}");
        assert_ne!(h, super::new_session_hash().unwrap());
    }
}
