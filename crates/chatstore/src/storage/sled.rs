//! The sled backend: sled 0.34.7 (built from `vendor/sled`, one thread-pool
//! fix), the engine chatstore started on.
//!
//! One process holds a sled store (its `flock` on `db`); the owner process
//! serves the others (`crate::ipc::server`). Spaces are trees: [`Space::Meta`] is
//! the default tree (where earlier builds kept the format marker), `data`
//! and `accounts` are named trees. A write transaction is an overlay of
//! pending puts and deletes, serialized by a mutex, that serves its own
//! reads and scans (merged with the trees) and commits as one
//! `apply_batch` (one tree) or one sled transaction applying each tree's
//! batch (several). sled has no snapshots: a read transaction reads the
//! live trees. Durability: a commit survives a process kill once sled has
//! written it to its log (within `flush_every_ms`); [`Kv::sync`] is sled's
//! `flush`, which on Linux ends in `sync_file_range`, not `fsync`.

use std::collections::BTreeMap;
use std::iter::Peekable;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use super::{Backend, Bytes, Dir, Iter, Kv, ReadTxn, Space, WriteTxn};
use crate::error::{Error, Result};
use crate::options::{Durability, Options};

/// An open sled store.
pub(crate) struct SledKv {
    db: ::sled::Db,
    trees: [::sled::Tree; 3],
    path: PathBuf,
    writer: Mutex<()>,
}

impl std::fmt::Debug for SledKv {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("sled").field("path", &self.path).finish()
    }
}

fn is_lock_error(e: &::sled::Error) -> bool {
    match e {
        ::sled::Error::Io(io) => {
            io.kind() == std::io::ErrorKind::WouldBlock
                || io.to_string().contains("could not acquire lock")
        }
        _ => false,
    }
}

impl SledKv {
    /// Opens (creating when absent) the sled store at `path`. Fails with
    /// [`Error::Locked`] when another process holds it.
    pub(crate) fn open(path: &Path, options: &Options) -> Result<SledKv> {
        let flush_every_ms = match options.durability {
            Durability::Buffered { flush_every_ms } => Some(flush_every_ms.max(1)),
            Durability::Sync => Some(500),
        };
        let db = ::sled::Config::new()
            .path(path)
            .cache_capacity(options.cache_capacity)
            .flush_every_ms(flush_every_ms)
            .use_compression(options.compression)
            .open()
            .map_err(|e| {
                if is_lock_error(&e) {
                    Error::Locked {
                        path: path.to_path_buf(),
                        reason: "its sled lock is held (one process owns a sled store)".into(),
                    }
                } else {
                    to_error(e, path)
                }
            })?;
        // sled creates its files with the umask (0644 under 022): give the
        // ones it made now the store's mode, as LMDB's are (the directory,
        // 0700, already keeps others out). Another user's files are left.
        for f in ["conf", "db"] {
            let _ = super::set_file_mode(&path.join(f), options.group_access);
        }
        // The snapshot the open just wrote (sled writes one when its log
        // moved past the last): the same mode.
        if let Ok(entries) = std::fs::read_dir(path) {
            for e in entries.flatten() {
                if e.file_name().to_string_lossy().starts_with("snap.") {
                    let _ = super::set_file_mode(&e.path(), options.group_access);
                }
            }
        }
        let _ = super::create_dir(&path.join("blobs"), options.group_access);
        let fail = |e| to_error(e, path);
        let data = db.open_tree("data").map_err(fail)?;
        let accounts = db.open_tree("accounts").map_err(fail)?;
        let meta: ::sled::Tree = (*db).clone();
        Ok(SledKv {
            db,
            trees: [meta, data, accounts],
            path: path.to_path_buf(),
            writer: Mutex::new(()),
        })
    }

    fn tree(&self, space: Space) -> &::sled::Tree {
        &self.trees[space as usize]
    }

    fn fail(&self, e: ::sled::Error) -> Error {
        to_error(e, &self.path)
    }
}

/// A sled error as a sentence about the store (sled's own texts carry
/// Rust debug output, `offset Some(Inline(..)) backtrace ()`, or blame a
/// sled version for what is a damaged file).
fn to_error(e: ::sled::Error, path: &Path) -> Error {
    match e {
        ::sled::Error::Corruption { at, .. } => Error::corrupt(format!(
            "{} holds damaged data{}: restore it from a backup (made by `chatstore backup`)",
            path.join("db").display(),
            match at {
                Some(at) => format!(" (at {at})"),
                None => String::new(),
            }
        )),
        ::sled::Error::Unsupported(_) if path.join("conf").exists() => Error::corrupt(format!(
            "{} could not be read as a sled configuration (damaged, or not a chatstore \
             store): restore the store from a backup",
            path.join("conf").display()
        )),
        ::sled::Error::Io(io) => Error::Storage(format!("{}: {io}", path.display())),
        e => Error::Storage(format!("{}: {e}", path.display())),
    }
}

fn tree_range<'a>(
    kv: &'a SledKv,
    space: Space,
    from: Bound<&[u8]>,
    to: Bound<&[u8]>,
    dir: Dir,
) -> Iter<'a> {
    let r = kv.tree(space).range::<&[u8], _>((from, to));
    let wrap = move |item: ::sled::Result<(::sled::IVec, ::sled::IVec)>| match item {
        Ok((k, v)) => Ok((Bytes::sled(k), Bytes::sled(v))),
        Err(e) => Err(kv.fail(e)),
    };
    match dir {
        Dir::Forward => Box::new(r.map(wrap)),
        Dir::Backward => Box::new(r.rev().map(wrap)),
    }
}

struct Read<'a> {
    kv: &'a SledKv,
}

impl ReadTxn for Read<'_> {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Bytes<'_>>> {
        Ok(self
            .kv
            .tree(space)
            .get(key)
            .map_err(|e| self.kv.fail(e))?
            .map(Bytes::sled))
    }
    fn range<'a>(
        &'a self,
        space: Space,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        dir: Dir,
    ) -> Result<Iter<'a>> {
        Ok(tree_range(self.kv, space, from, to, dir))
    }
}

type Pending = BTreeMap<Vec<u8>, Option<Vec<u8>>>;
/// Pending writes of a range, in a scan's direction.
type PendingIter<'a> = Box<dyn Iterator<Item = (&'a Vec<u8>, &'a Option<Vec<u8>>)> + 'a>;

struct Write<'a> {
    kv: &'a SledKv,
    pending: [Pending; 3],
    _writer: MutexGuard<'a, ()>,
}

impl ReadTxn for Write<'_> {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Bytes<'_>>> {
        match self.pending[space as usize].get(key) {
            Some(Some(v)) => Ok(Some(Bytes::borrowed(v))),
            Some(None) => Ok(None),
            None => Ok(self
                .kv
                .tree(space)
                .get(key)
                .map_err(|e| self.kv.fail(e))?
                .map(Bytes::sled)),
        }
    }
    fn range<'a>(
        &'a self,
        space: Space,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        dir: Dir,
    ) -> Result<Iter<'a>> {
        let committed = tree_range(self.kv, space, from, to, dir).peekable();
        let p = self.pending[space as usize].range::<[u8], _>((from, to));
        let pending: PendingIter<'a> = match dir {
            Dir::Forward => Box::new(p),
            Dir::Backward => Box::new(p.rev()),
        };
        Ok(Box::new(Merge {
            committed,
            pending: pending.peekable(),
            dir,
        }))
    }
}

/// Committed entries merged with pending writes (a pending write wins, a
/// pending delete hides), in the scan's direction.
struct Merge<'a> {
    committed: Peekable<Iter<'a>>,
    pending: Peekable<PendingIter<'a>>,
    dir: Dir,
}

impl<'a> Iterator for Merge<'a> {
    type Item = Result<super::Entry<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let order = match (self.committed.peek(), self.pending.peek()) {
                (Some(Err(_)), _) => return self.committed.next(),
                (None, None) => return None,
                (Some(_), None) => std::cmp::Ordering::Less,
                (None, Some(_)) => std::cmp::Ordering::Greater,
                (Some(Ok((c, _))), Some((p, _))) => {
                    let o = (**c).cmp(p.as_slice());
                    if self.dir == Dir::Backward {
                        o.reverse()
                    } else {
                        o
                    }
                }
            };
            if order == std::cmp::Ordering::Less {
                return self.committed.next();
            }
            if order == std::cmp::Ordering::Equal {
                self.committed.next();
            }
            let (k, v) = self.pending.next()?;
            if let Some(v) = v {
                return Some(Ok((Bytes::borrowed(k), Bytes::borrowed(v))));
            }
        }
    }
}

impl WriteTxn for Write<'_> {
    fn put(&mut self, space: Space, key: &[u8], value: &[u8]) -> Result<()> {
        self.pending[space as usize].insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }
    fn delete(&mut self, space: Space, key: &[u8]) -> Result<()> {
        self.pending[space as usize].insert(key.to_vec(), None);
        Ok(())
    }
    fn commit(self: Box<Self>) -> Result<()> {
        let kv = self.kv;
        let batches: Vec<(Space, ::sled::Batch)> = Space::ALL
            .into_iter()
            .zip(self.pending)
            .filter(|(_, p)| !p.is_empty())
            .map(|(s, p)| {
                let mut b = ::sled::Batch::default();
                for (k, v) in p {
                    match v {
                        Some(v) => b.insert(k, v),
                        None => b.remove(k),
                    }
                }
                (s, b)
            })
            .collect();
        match batches.as_slice() {
            [] => Ok(()),
            [(space, batch)] => kv
                .tree(*space)
                .apply_batch(batch.clone())
                .map_err(|e| kv.fail(e)),
            _ => {
                use ::sled::transaction::{TransactionError, Transactional};
                let [m, d, a] = &kv.trees;
                let empty = ::sled::Batch::default();
                let of = |s: Space| {
                    batches
                        .iter()
                        .find(|(x, _)| *x == s)
                        .map_or(&empty, |(_, b)| b)
                };
                (m, d, a)
                    .transaction(|(tm, td, ta)| {
                        tm.apply_batch(of(Space::Meta))?;
                        td.apply_batch(of(Space::Data))?;
                        ta.apply_batch(of(Space::Accounts))?;
                        Ok::<_, ::sled::transaction::ConflictableTransactionError<()>>(())
                    })
                    .map_err(|e: TransactionError<()>| match e {
                        TransactionError::Storage(e) => kv.fail(e),
                        TransactionError::Abort(()) => Error::Storage("transaction aborted".into()),
                    })
            }
        }
    }
    fn as_read(&self) -> &dyn ReadTxn {
        self
    }
}

impl Kv for SledKv {
    fn backend(&self) -> Backend {
        Backend::Sled
    }

    fn read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        Ok(Box::new(Read { kv: self }))
    }

    fn write(&self, _timeout_ms: u64) -> Result<Box<dyn WriteTxn + '_>> {
        // Only this process writes a sled store (it holds sled's lock).
        Ok(Box::new(Write {
            kv: self,
            pending: Default::default(),
            _writer: self.writer.lock().unwrap_or_else(|e| e.into_inner()),
        }))
    }

    fn sync(&self) -> Result<()> {
        self.db.flush().map(drop).map_err(|e| self.fail(e))
    }

    fn size_on_disk(&self) -> Result<u64> {
        self.db.size_on_disk().map_err(|e| self.fail(e))
    }

    fn copy_to(&self, dir: &Path) -> Result<()> {
        // Writers wait while the copy is made, so it is consistent.
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let out = ::sled::Config::new()
            .path(dir)
            .open()
            .map_err(|e| to_error(e, dir))?;
        let fail = |e| to_error(e, dir);
        let trees = [
            (*out).clone(),
            out.open_tree("data").map_err(fail)?,
            out.open_tree("accounts").map_err(fail)?,
        ];
        for (from, to) in self.trees.iter().zip(&trees) {
            let mut batch = ::sled::Batch::default();
            let mut n = 0;
            for item in from.iter() {
                let (k, v) = item.map_err(|e| self.fail(e))?;
                batch.insert(k, v);
                n += 1;
                if n == 10_000 {
                    to.apply_batch(std::mem::take(&mut batch)).map_err(fail)?;
                    n = 0;
                }
            }
            to.apply_batch(batch).map_err(fail)?;
        }
        out.flush().map_err(fail)?;
        Ok(())
    }
}

impl Drop for SledKv {
    fn drop(&mut self) {
        let _ = self.db.flush();
    }
}
