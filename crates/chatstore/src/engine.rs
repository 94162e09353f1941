//! The store handle: opening, the write API (validation, one transaction per
//! logical write, durability), flush and close.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use crate::codec;
use crate::commit::GroupCommit;
use crate::error::{Error, Result};
use crate::keys;
use crate::limits;
use crate::model::{Account, Agent, Member, Message, Session};
use crate::options::{Durability, Options};
use crate::write::{self, Tx, TxResult};

/// Version of the store layout (trees, key spaces). Stored in the default tree.
pub const STORE_FORMAT: u32 = 1;
const FORMAT_KEY: &[u8] = b"chatstore.format";

/// An open chatstore. Share it between threads by reference or `Arc`; all
/// methods take `&self`.
pub struct Store {
    pub(crate) db: sled::Db,
    pub(crate) data: sled::Tree,
    pub(crate) accounts: sled::Tree,
    pub(crate) options: Options,
    path: PathBuf,
    commit: GroupCommit,
    closed: AtomicBool,
    /// Serializes writers (readers never take it).
    writer: Mutex<()>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
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

impl Store {
    /// Opens (creating when absent) the store at `path`.
    ///
    /// Fails with [`Error::Locked`] when another process (or another handle in
    /// this one) holds it, and with [`Error::Format`] when it was written by a
    /// newer chatstore.
    pub fn open(path: impl AsRef<Path>, options: Options) -> Result<Store> {
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
        match db.get(FORMAT_KEY)? {
            None => {
                db.insert(FORMAT_KEY, &STORE_FORMAT.to_be_bytes())?;
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
            }
        }
        let data = db.open_tree("data")?;
        let accounts = db.open_tree("accounts")?;
        Ok(Store {
            db,
            data,
            accounts,
            options,
            path,
            commit: GroupCommit::default(),
            closed: AtomicBool::new(false),
            writer: Mutex::new(()),
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The options the store was opened with.
    pub fn options(&self) -> &Options {
        &self.options
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

    /// Flushes and closes the handle; later calls fail with [`Error::Closed`].
    /// Closing twice is a no-op. The file lock is released when the `Store`
    /// is dropped.
    pub fn close(&self) -> Result<()> {
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

    /// Runs one logical write: builds its overlay under the writer lock,
    /// applies it as one atomic batch, then waits for durability (outside
    /// the lock, so concurrent writers share one flush).
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Tx) -> TxResult<T>) -> Result<T> {
        self.live()?;
        let guard = self.lock_writer();
        let tx = Tx::new(&self.data);
        let v = f(&tx)?;
        self.data.apply_batch(tx.into_batch())?;
        drop(guard);
        self.durable()?;
        Ok(v)
    }

    pub(crate) fn durable(&self) -> Result<()> {
        if self.options.durability == Durability::Sync {
            self.commit.wait_durable(|| {
                self.db.flush()?;
                Ok(())
            })?;
        }
        Ok(())
    }

    /// Inserts or replaces a member (re-indexing nickname and mobile).
    pub fn upsert_member(&self, m: &Member) -> Result<()> {
        limits::member(m)?;
        self.write(|tx| write::upsert_member(tx, m))
    }

    /// Inserts or replaces an agent.
    pub fn upsert_agent(&self, a: &Agent) -> Result<()> {
        limits::agent(a)?;
        self.write(|tx| write::upsert_agent(tx, a))
    }

    /// Inserts or replaces a session; returns its id (assigned when 0). Its
    /// member and (unless 0) agent must exist. A new session written without
    /// a hash gets a random one; an existing one keeps its hash.
    pub fn upsert_session(&self, s: &Session) -> Result<u64> {
        limits::session(s)?;
        let hash = new_session_hash()?;
        self.write(|tx| write::upsert_session(tx, s, &hash))
    }

    /// Appends a message (or replaces the one with the same key); returns its
    /// id (assigned when 0). Moves the session's count, last message and
    /// activity time in the same transaction.
    pub fn append_message(&self, m: &Message) -> Result<u64> {
        limits::message(m)?;
        self.write(|tx| write::append_message(tx, m))
    }

    /// Deletes a session and all its messages.
    pub fn delete_session(&self, tenant: u64, id: u64) -> Result<()> {
        self.write(|tx| {
            let msgs = self.message_ids(tenant, id)?;
            write::delete_session(tx, tenant, id, &msgs)
        })
    }

    /// Deletes a member with its sessions and their messages.
    pub fn delete_member(&self, tenant: u64, uid: u64) -> Result<()> {
        self.write(|tx| {
            let mut sessions = Vec::new();
            for item in self.data.scan_prefix(keys::sessions_of_member(tenant, uid)) {
                let (k, _) = item?;
                let sid = keys::last_u64(&k);
                sessions.push((sid, self.message_ids(tenant, sid)?));
            }
            write::delete_member(tx, tenant, uid, &sessions)
        })
    }

    /// Deletes an agent; refused while sessions are assigned to it.
    pub fn delete_agent(&self, tenant: u64, id: u64) -> Result<()> {
        self.write(|tx| write::delete_agent(tx, tenant, id))
    }

    /// Inserts or replaces an account (login of the hischat endpoint).
    pub fn upsert_account(&self, a: &Account) -> Result<()> {
        limits::account(a)?;
        self.live()?;
        let guard = self.lock_writer();
        self.accounts
            .insert(a.sso_id.to_be_bytes(), codec::encode(a))?;
        drop(guard);
        self.durable()
    }

    /// Deletes an account.
    pub fn delete_account(&self, sso_id: u64) -> Result<()> {
        self.live()?;
        let guard = self.lock_writer();
        if self.accounts.remove(sso_id.to_be_bytes())?.is_none() {
            return Err(Error::not_found(format!("account {sso_id}")));
        }
        drop(guard);
        self.durable()
    }

    fn message_ids(&self, tenant: u64, sid: u64) -> Result<Vec<u64>> {
        self.data
            .scan_prefix(keys::messages_of(tenant, sid))
            .keys()
            .map(|k| Ok(keys::last_desc(&k?)))
            .collect()
    }
}

/// A fresh random session hash: 32 lowercase hex characters.
pub fn new_session_hash() -> Result<String> {
    let mut b = [0u8; 16];
    getrandom::getrandom(&mut b)
        .map_err(|e| Error::Io(std::io::Error::other(format!("random source: {e}"))))?;
    Ok(b.iter().map(|x| format!("{x:02x}")).collect())
}

impl Drop for Store {
    fn drop(&mut self) {
        // Dropping the last sled handle flushes too; do it explicitly anyway.
        let _ = self.db.flush();
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn store_is_send_and_sync() {
        fn is<T: Send + Sync>() {}
        is::<super::Store>();
    }

    #[test]
    fn session_hashes_are_lowercase_hex() {
        let h = super::new_session_hash().unwrap();
        assert!(crate::limits::is_session_hash(&h), "{h}");
        assert_ne!(h, super::new_session_hash().unwrap());
    }
}
