//! The storage layer: one boundary between chatstore and the ordered
//! key-value engine underneath it.
//!
//! Everything chatstore stores goes through three traits: [`Kv`] (an open
//! store: transactions, durability, copies, compaction), [`ReadTxn`] (a read
//! transaction: point reads and forward or backward range scans over one
//! consistent snapshot where the engine has snapshots) and [`WriteTxn`] (a
//! write transaction: puts and deletes that its own reads and scans see,
//! committed atomically or not at all). Two engines sit behind them:
//!
//! - [`lmdb`] (the default for new stores): LMDB through heed. Any number of
//!   processes open a store directly; reads are snapshots from a memory map;
//!   a commit is atomic across every key space; no recovery step.
//! - [`sled`]: sled 0.34.7, the engine the project started on. One process
//!   holds a store (the owner serves the others, `crate::ipc::server`); a write
//!   is an overlay applied as one batch; reads are not snapshots.
//!
//! Nothing outside this module names either engine. Keys are compared as
//! bytes. Every key of [`Space::Data`] begins with its tenant.

use std::ops::{Bound, Deref};
use std::path::Path;

pub(crate) use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::options::Options;

pub(crate) mod commit;
pub(crate) mod lmdb;
#[cfg(test)]
pub(crate) mod memory;
pub(crate) mod sled;

/// The key spaces of a store. Each is its own ordered map (an LMDB named
/// database, a sled tree); a write transaction spans all of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) enum Space {
    /// Store-wide markers (the format).
    Meta,
    /// Every tenant's records, indexes and counters (ARCHITECTURE.md).
    Data,
    /// hischat logins, keyed by sso_id.
    Accounts,
}

impl Space {
    pub(crate) const ALL: [Space; 3] = [Space::Meta, Space::Data, Space::Accounts];
}

/// Bytes read from a store: borrowed from an LMDB map for the life of the
/// read transaction, or a sled value.
#[derive(Clone)]
pub(crate) struct Bytes<'a>(Repr<'a>);

#[derive(Clone)]
enum Repr<'a> {
    Borrowed(&'a [u8]),
    Sled(::sled::IVec),
}

impl<'a> Bytes<'a> {
    pub(crate) fn borrowed(b: &'a [u8]) -> Self {
        Bytes(Repr::Borrowed(b))
    }
    fn sled(v: ::sled::IVec) -> Self {
        Bytes(Repr::Sled(v))
    }
}

impl Deref for Bytes<'_> {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match &self.0 {
            Repr::Borrowed(b) => b,
            Repr::Sled(v) => v,
        }
    }
}

impl AsRef<[u8]> for Bytes<'_> {
    fn as_ref(&self) -> &[u8] {
        self
    }
}

impl std::fmt::Debug for Bytes<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", &**self)
    }
}

/// A key and its value.
pub(crate) type Entry<'a> = (Bytes<'a>, Bytes<'a>);
/// A range scan.
pub(crate) type Iter<'a> = Box<dyn Iterator<Item = Result<Entry<'a>>> + 'a>;

/// Which way a range scan goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dir {
    Forward,
    Backward,
}

/// A read transaction. On LMDB it is one snapshot: everything read through
/// it is as of its start, whatever commits meanwhile.
pub(crate) trait ReadTxn {
    /// The value under `key`.
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Bytes<'_>>>;
    /// The entries with keys in `(from, to)`, in key order or reversed.
    fn range<'a>(
        &'a self,
        space: Space,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        dir: Dir,
    ) -> Result<Iter<'a>>;
}

/// A write transaction: its reads and scans see its own writes; nothing of
/// it is visible to others before [`WriteTxn::commit`], and a transaction
/// dropped without commit leaves nothing. Writers are serialized (in this
/// process and across processes), with a deadline.
pub(crate) trait WriteTxn: ReadTxn {
    /// Inserts or replaces.
    fn put(&mut self, space: Space, key: &[u8], value: &[u8]) -> Result<()>;
    /// Removes (absent keys are fine).
    fn delete(&mut self, space: Space, key: &[u8]) -> Result<()>;
    /// Makes every write of the transaction visible at once. Durable against
    /// a process kill when it returns; against a power loss after
    /// [`Kv::sync`].
    fn commit(self: Box<Self>) -> Result<()>;
    /// The transaction as a read transaction.
    fn as_read(&self) -> &dyn ReadTxn;
}

/// An open store of one backend.
pub(crate) trait Kv: Send + Sync + std::fmt::Debug {
    /// Which backend this is.
    fn backend(&self) -> Backend;
    /// Starts a read transaction.
    fn read(&self) -> Result<Box<dyn ReadTxn + '_>>;
    /// Starts a write transaction, waiting at most `timeout_ms` for other
    /// writers (then [`Error::Locked`]).
    fn write(&self, timeout_ms: u64) -> Result<Box<dyn WriteTxn + '_>>;
    /// Makes every committed write durable against a power loss.
    fn sync(&self) -> Result<()>;
    /// Bytes the store takes on disk.
    fn size_on_disk(&self) -> Result<u64>;
    /// Writes a consistent, compact copy of the store into the new
    /// directory `dir` (same backend).
    fn copy_to(&self, dir: &Path) -> Result<()>;
    /// Rewrites the store compactly in place. Needs the store to itself
    /// (no other process has it open); this handle is closed after.
    fn compact(&self) -> Result<()> {
        Err(Error::Conflict {
            reason: format!(
                "compact is for LMDB stores; a {} store is compacted by `chatstore migrate` \
                 into a new store",
                self.backend()
            ),
        })
    }
}

/// Opens (creating when absent) the store at `path`: the backend it was
/// made with, or for a new store `options.backend`.
pub(crate) fn open(path: &Path, options: &Options) -> Result<Box<dyn Kv>> {
    let backend = Backend::of_existing(path).unwrap_or(options.backend);
    if !path.exists() {
        create_dir(path, options.group_access)?;
    }
    match backend {
        Backend::Lmdb => Ok(Box::new(lmdb::LmdbKv::open(path, options)?)),
        Backend::Sled => Ok(Box::new(sled::SledKv::open(path, options)?)),
    }
}

/// Creates a store directory: 0700, or 0770 with group access, whatever
/// the umask. With group access the setgid bit a setgid parent passes on
/// is kept, so the files made in it take the directory's group (the pool's)
/// rather than their maker's.
pub(crate) fn create_dir(path: &Path, group_access: bool) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let mode = if group_access { 0o770 } else { 0o700 };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(mode)
        .create(path)
        .map_err(|e| io_error(path, e))?;
    let setgid = std::fs::metadata(path).map_or(0, |m| m.permissions().mode() & 0o2000);
    let keep = if group_access { setgid } else { 0 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode | keep))?;
    Ok(())
}

/// An I/O error on `path`, naming it.
pub(crate) fn io_error(path: &Path, e: std::io::Error) -> Error {
    Error::Io(std::io::Error::new(
        e.kind(),
        format!("{}: {e}", path.display()),
    ))
}

/// Gives a file the store's mode: 0600, or 0660 with group access.
pub(crate) fn set_file_mode(path: &Path, group_access: bool) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if group_access { 0o660 } else { 0o600 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

/// One key space of a read transaction, with the conveniences the query
/// and check code reads through.
#[derive(Clone, Copy)]
pub(crate) struct Tree<'t> {
    txn: &'t dyn ReadTxn,
    space: Space,
}

impl<'t> Tree<'t> {
    pub(crate) fn new(txn: &'t dyn ReadTxn, space: Space) -> Self {
        Tree { txn, space }
    }
    /// The value under a key.
    pub(crate) fn get(&self, k: impl AsRef<[u8]>) -> Result<Option<Bytes<'t>>> {
        self.txn.get(self.space, k.as_ref())
    }
    /// Whether a key is present.
    pub(crate) fn contains_key(&self, k: impl AsRef<[u8]>) -> Result<bool> {
        Ok(self.get(k)?.is_some())
    }
    /// The entries in `(from, to)`, forward.
    pub(crate) fn range(&self, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Iter<'t> {
        self.scan(from, to, Dir::Forward)
    }
    /// The entries in `(from, to)` in either direction.
    pub(crate) fn scan(&self, from: Bound<&[u8]>, to: Bound<&[u8]>, dir: Dir) -> Iter<'t> {
        match self.txn.range(self.space, from, to, dir) {
            Ok(it) => it,
            Err(e) => Box::new(std::iter::once(Err(e))),
        }
    }
    /// The entries whose keys start with `prefix`, forward.
    pub(crate) fn scan_prefix(&self, prefix: impl AsRef<[u8]>) -> Iter<'t> {
        let p = prefix.as_ref();
        match crate::keys::prefix_end(p) {
            Some(end) => self.range(Bound::Included(p), Bound::Excluded(&end)),
            None => self.range(Bound::Included(p), Bound::Unbounded),
        }
    }
    /// Every entry, forward.
    pub(crate) fn iter(&self) -> Iter<'t> {
        self.range(Bound::Unbounded, Bound::Unbounded)
    }
}

#[cfg(test)]
mod tests;
