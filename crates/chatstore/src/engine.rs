//! The engine: one process's open sled store. Opening (lock, format
//! marker), the write path (validation, one atomic batch per logical write,
//! request ids that make a retried write apply once), durability, flush.
//! Handles ([`crate::Store`]) reach it in process or through the owner's
//! socket ([`crate::server`]).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::codec;
use crate::commit::GroupCommit;
use crate::error::{Error, Result};
use crate::keys;
use crate::limits;
use crate::model::Account;
use crate::options::{Durability, Options};
use crate::rpc::WriteOp;
use crate::write::{self, Tx, TxResult};

/// The newest store layout (trees, key spaces) this build reads. Stored in
/// the default tree, it also records the one choice fixed at creation: 1 is
/// a store with the message-text index, [`NO_TEXT_INDEX_FORMAT`] one created
/// without it (`Options::text_index` false), so that builds from before the
/// choice, which would index new messages only and answer searches from a
/// partial index, refuse it.
pub const STORE_FORMAT: u32 = 2;
/// The format of a store created without the message-text index.
const NO_TEXT_INDEX_FORMAT: u32 = 2;
const FORMAT_KEY: &[u8] = b"chatstore.format";

/// What a store was created as (fixed for its life).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[non_exhaustive]
pub struct StoreInfo {
    /// The store's format marker (see [`STORE_FORMAT`]).
    pub format: u32,
    /// Whether the store keeps the message-text index (`Options::text_index`
    /// when it was created).
    pub text_index: bool,
}

/// An open chatstore. Share it between threads by reference or `Arc`; all
/// methods take `&self`.
pub struct Engine {
    pub(crate) db: sled::Db,
    pub(crate) data: sled::Tree,
    pub(crate) accounts: sled::Tree,
    pub(crate) options: Options,
    /// Whether this store keeps the message-text index: its format marker
    /// says (fixed when it was created; `Options::text_index` of later opens
    /// does not change it).
    pub(crate) text_index: bool,
    path: PathBuf,
    commit: GroupCommit,
    closed: AtomicBool,
    /// Serializes writers (readers never take it).
    writer: Mutex<()>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine").field("path", &self.path).finish()
    }
}

fn is_lock_error(e: &sled::Error) -> bool {
    match e {
        sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock
                || io.to_string().contains("could not acquire lock")
        }
        _ => false,
    }
}

impl Engine {
    /// Opens (creating when absent) the store at `path`.
    ///
    /// Fails with [`Error::Locked`] when another process (or another handle in
    /// this one) holds it, and with [`Error::Format`] when it was written by a
    /// newer chatstore.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Engine> {
        let path = path.as_ref().to_path_buf();
        if path.is_file() {
            return Err(Error::invalid(
                "path",
                format!("{} is a file, not a store directory", path.display()),
            ));
        }
        let flush_every_ms = match options.durability {
            Durability::Buffered { flush_every_ms } => Some(flush_every_ms.max(1)),
            Durability::Sync => Some(500),
        };
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(options.cache_capacity)
            .flush_every_ms(flush_every_ms)
            .use_compression(options.compression)
            .open()
            .map_err(|e| {
                if is_lock_error(&e) {
                    Error::Locked { path: path.clone() }
                } else {
                    Error::Storage(e)
                }
            })?;
        let format = match db.get(FORMAT_KEY)? {
            None => {
                // A new store: its format, and so its text-index choice, is
                // fixed now.
                let format = if options.text_index {
                    1
                } else {
                    NO_TEXT_INDEX_FORMAT
                };
                db.insert(FORMAT_KEY, &format.to_be_bytes())?;
                format
            }
            Some(v) => {
                let found = <[u8; 4]>::try_from(v.as_ref())
                    .map(u32::from_be_bytes)
                    .map_err(|_| Error::Format {
                        reason: "format marker is not 4 bytes".into(),
                    })?;
                if found > STORE_FORMAT {
                    return Err(Error::Format {
                        reason: format!(
                            "store format {found} is newer than this build's {STORE_FORMAT}"
                        ),
                    });
                }
                found
            }
        };
        let data = db.open_tree("data")?;
        let accounts = db.open_tree("accounts")?;
        Ok(Engine {
            db,
            accounts,
            options,
            text_index: format != NO_TEXT_INDEX_FORMAT,
            path,
            commit: GroupCommit::default(),
            closed: AtomicBool::new(false),
            writer: Mutex::new(()),
            data,
        })
    }

    /// What the store was created as.
    pub fn info(&self) -> Result<StoreInfo> {
        self.live()?;
        Ok(StoreInfo {
            format: if self.text_index {
                1
            } else {
                NO_TEXT_INDEX_FORMAT
            },
            text_index: self.text_index,
        })
    }

    pub(crate) fn live(&self) -> Result<()> {
        if self.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Makes every write so far durable.
    pub fn flush(&self) -> Result<()> {
        self.live()?;
        self.db.flush()?;
        Ok(())
    }

    /// Flushes and refuses every later call with [`Error::Closed`] (the
    /// store is being released). Idempotent.
    pub(crate) fn close(&self) -> Result<()> {
        if self.closed.swap(true, Ordering::AcqRel) {
            return Ok(());
        }
        self.db.flush()?;
        Ok(())
    }

    /// Takes the writer lock. A writer that panicked left no partial
    /// write behind (its overlay was never applied), so a poisoned lock is
    /// simply taken over.
    pub(crate) fn lock_writer(&self) -> MutexGuard<'_, ()> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs one logical write of `tenant`: builds its overlay under the
    /// writer lock and applies it as one atomic batch. With a request id
    /// (`once`), a write already applied under that id is not applied again:
    /// its recorded result is returned, and a new one records its id in the
    /// same batch.
    fn write(
        &self,
        tenant: u64,
        once: Option<u128>,
        f: impl FnOnce(&Tx) -> TxResult<u64>,
    ) -> Result<u64> {
        self.live()?;
        let guard = self.lock_writer();
        let tx = Tx::new(&self.data, self.text_index);
        let key = once.map(|id| keys::request(tenant, id));
        if let Some(k) = &key {
            if let Some(v) = tx.get_raw(k)? {
                return Ok(keys::u64_at(&v, 8));
            }
        }
        let v = f(&tx)?;
        if let Some(k) = key {
            let mut rec = unix_now().to_be_bytes().to_vec();
            rec.extend_from_slice(&v.to_be_bytes());
            tx.insert_raw(k, &rec)?;
        }
        self.apply_batch(tx.into_batch())?;
        drop(guard);
        Ok(v)
    }

    /// Applies one write (validated first); returns the id it assigned, or 0
    /// for writes that assign none. Durability is the caller's (see
    /// [`Engine::sync`]).
    pub(crate) fn apply(&self, op: &WriteOp, once: Option<u128>) -> Result<u64> {
        match op {
            WriteOp::UpsertMember(m) => {
                limits::member(m)?;
                self.write(m.tenant, once, |tx| write::upsert_member(tx, m).map(|_| 0))
            }
            WriteOp::UpsertAgent(a) => {
                limits::agent(a)?;
                self.write(a.tenant, once, |tx| write::upsert_agent(tx, a).map(|_| 0))
            }
            WriteOp::UpsertSession(s) => {
                limits::session(s)?;
                let hash = new_session_hash()?;
                self.write(s.tenant, once, |tx| write::upsert_session(tx, s, &hash))
            }
            WriteOp::AppendMessage(m) => {
                limits::message(m)?;
                self.write(m.tenant, once, |tx| write::append_message(tx, m))
            }
            &WriteOp::DeleteSession { tenant, id } => self.write(tenant, once, |tx| {
                let msgs = self.message_ids(tenant, id)?;
                write::delete_session(tx, tenant, id, &msgs).map(|_| 0)
            }),
            &WriteOp::DeleteMember { tenant, uid } => self.write(tenant, once, |tx| {
                let mut sessions = Vec::new();
                for item in self.data.scan_prefix(keys::sessions_of_member(tenant, uid)) {
                    let (k, _) = item?;
                    let sid = keys::last_u64(&k);
                    sessions.push((sid, self.message_ids(tenant, sid)?));
                }
                write::delete_member(tx, tenant, uid, &sessions).map(|_| 0)
            }),
            &WriteOp::MarkRead {
                tenant,
                session,
                reader,
                up_to,
            } => self.write(tenant, once, |tx| {
                write::mark_read(tx, tenant, session, reader, up_to)
            }),
            &WriteOp::RecallMessage {
                tenant,
                session,
                id,
            } => self.write(tenant, once, |tx| {
                write::recall_message(tx, tenant, session, id).map(|_| 0)
            }),
            &WriteOp::DeleteMessage {
                tenant,
                session,
                id,
                at,
            } => self.write(tenant, once, |tx| {
                write::delete_message(tx, tenant, session, id, at).map(|_| 0)
            }),
            &WriteOp::DeleteAgent { tenant, id } => self.write(tenant, once, |tx| {
                write::delete_agent(tx, tenant, id).map(|_| 0)
            }),
            WriteOp::UpsertAccount(a) => {
                limits::account(a)?;
                self.upsert_account(a).map(|_| 0)
            }
            &WriteOp::DeleteAccount(sso_id) => {
                self.live()?;
                let guard = self.lock_writer();
                if self.accounts.remove(sso_id.to_be_bytes())?.is_none() {
                    return Err(Error::not_found(format!("account {sso_id}")));
                }
                drop(guard);
                Ok(0)
            }
        }
    }

    /// Applies a batch to the data tree.
    pub(crate) fn apply_batch(&self, batch: sled::Batch) -> Result<()> {
        self.data.apply_batch(batch)?;
        Ok(())
    }

    /// Waits until every write so far is durable; concurrent callers share
    /// one flush (group commit).
    pub(crate) fn sync(&self) -> Result<()> {
        self.commit.wait_durable(|| {
            self.db.flush()?;
            Ok(())
        })
    }

    /// [`Engine::sync`] when the store was opened with `Durability::Sync`
    /// (the import path).
    pub(crate) fn durable(&self) -> Result<()> {
        if self.options.durability == Durability::Sync {
            self.sync()?;
        }
        Ok(())
    }

    /// Inserts or replaces an account (accounts live in their own tree,
    /// keyed by sso_id). Validated by the caller.
    pub(crate) fn upsert_account(&self, a: &Account) -> Result<()> {
        self.live()?;
        let guard = self.lock_writer();
        self.accounts
            .insert(a.sso_id.to_be_bytes(), codec::encode(a))?;
        drop(guard);
        Ok(())
    }

    /// Removes the records of writes applied more than `max_age_secs` ago
    /// for another process (see [`keys::REQUEST`]). Returns how many.
    pub(crate) fn prune_requests(&self, max_age_secs: u64) -> Result<u64> {
        let cutoff = unix_now().saturating_sub(max_age_secs);
        let mut n = 0;
        for t in self.tenants()? {
            let mut batch = sled::Batch::default();
            for item in self.data.scan_prefix(keys::Key::new(t, keys::REQUEST)) {
                let (k, v) = item?;
                if v.len() >= 8 && keys::u64_at(&v, 0) < cutoff {
                    batch.remove(k);
                    n += 1;
                }
            }
            let _guard = self.lock_writer();
            self.apply_batch(batch)?;
        }
        Ok(n)
    }

    fn message_ids(&self, tenant: u64, sid: u64) -> Result<write::SessionMessages> {
        let ids = |prefix: keys::Key| -> Result<Vec<u64>> {
            self.data
                .scan_prefix(prefix)
                .keys()
                .map(|k| Ok(keys::last_desc(&k?)))
                .collect()
        };
        Ok(write::SessionMessages {
            visible: ids(keys::messages_of(tenant, sid))?,
            deleted: ids(keys::deleted_of(tenant, sid))?,
        })
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fresh random session hash: 32 lowercase hex characters.
pub fn new_session_hash() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| Error::Io(std::io::Error::other(format!("random source: {e}"))))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl Drop for Engine {
    fn drop(&mut self) {
        // Dropping the last sled handle flushes too; do it explicitly anyway.
        let _ = self.db.flush();
    }
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

    /// Postings written before they held gram offsets (empty values) are
    /// still answered exactly: their candidates are verified from the
    /// message, and check() accepts them.
    #[test]
    fn postings_without_offsets_are_verified_from_the_message() {
        let dir = tempfile::tempdir().unwrap();
        let (e, sid) = engine_with_a_session(dir.path());
        for text in [
            "订单 12345 已发货",
            "订单 123 45",
            "退款 12345",
            "Shop order 12345",
            "shop 订单",
        ] {
            let m = Message {
                tenant: 2,
                session_id: sid,
                content: text.into(),
                ..Default::default()
            };
            e.apply(&WriteOp::AppendMessage(m), None).unwrap();
        }
        let queries = ["12345", "订单 1", "shop", "订单", "order 123", "已发货"];
        let answers = |e: &Engine| -> Vec<(u64, Vec<u64>)> {
            queries
                .iter()
                .map(|q| {
                    let hits = e
                        .search_messages(&crate::MessageSearch::new(2, *q))
                        .unwrap();
                    (hits.total, hits.messages.iter().map(|m| m.id).collect())
                })
                .collect()
        };
        let with_offsets = answers(&e);
        assert_eq!(with_offsets[0].0, 3, "{with_offsets:?}");
        assert_eq!(with_offsets[1], (2, vec![2, 1]));
        let postings: Vec<sled::IVec> = e
            .data
            .iter()
            .keys()
            .map(Result::unwrap)
            .filter(|k| k.len() > 8 && k[8] == crate::keys::TEXT)
            .collect();
        assert!(postings.len() > 20);
        for k in postings {
            e.data.insert(k, &[][..]).unwrap();
        }
        assert_eq!(answers(&e), with_offsets);
        assert!(e.check().unwrap().ok);
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
        assert_eq!(e.info().unwrap().format, NO_TEXT_INDEX_FORMAT);
        e.data
            .insert(crate::keys::text(2, "订单", mid, sid), &[][..])
            .unwrap();
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

    #[test]
    fn session_hashes_are_lowercase_hex() {
        let h = super::new_session_hash().unwrap();
        assert!(crate::limits::is_session_hash(&h), "{h}");
        assert_ne!(h, super::new_session_hash().unwrap());
    }
}
