//! The LMDB backend (through heed): the default for new stores.
//!
//! - **Many processes.** Every process opens the store itself. Readers
//!   never wait. Writers serialize: first on an in-process mutex, then on an
//!   `flock` of `writer.lock` taken with a deadline (the kernel releases it
//!   when a process dies, so a writer killed mid-transaction never blocks
//!   the others; LMDB's own robust mutex is then never contended across
//!   processes, which avoids its lost wake-up after a SIGKILL), then on
//!   LMDB's write transaction. A writer killed mid-transaction leaves
//!   nothing: its transaction never committed.
//! - **One environment per path per process**, shared by every handle
//!   (heed refuses a second one); a child forked after open is refused
//!   with an error rather than using its parent's map. After its last
//!   handle closes, an environment stays open for `Options::linger_ms`
//!   ([`linger`]), so a process that opens the store per request (a
//!   PHP-FPM worker) finds it open; an environment whose data file was
//!   replaced meanwhile (the directory removed and made anew) is not used
//!   again.
//! - **Durability.** The environment runs with `MDB_NOMETASYNC`: a commit
//!   writes and fsyncs its data pages, then writes the meta page without
//!   fsync. A commit is in the page cache when it returns (a kill -9 loses
//!   nothing); a power loss may undo the last commits but never breaks the
//!   store (lmdb.h: "maintains database integrity"). [`Kv::sync`]
//!   (`mdb_env_sync`) makes everything committed durable: the Sync mode
//!   calls it once per group of concurrent writers (`crate::storage::commit`).
//!   `MDB_NOSYNC` and `MDB_WRITEMAP` are not used: with them a system crash
//!   can corrupt the store.
//! - **Files** are created 0600 in a 0700 directory (0660/0770 with group
//!   access). Stale reader slots of killed processes are cleared at open.
//! - **Map size.** `Options::map_size` (default 256 GiB) is the most a
//!   store may grow to. The map starts at twice the file (at least 64 MiB)
//!   and doubles before a write transaction whenever the file passed half
//!   of it, so a store never reserves much more address space than it needs
//!   (valgrind and `ulimit -v` allow far less than 256 GiB). A write past
//!   `map_size` is an error naming the option; the store stays usable. A
//!   map grown by another process is adopted (`MDB_MAP_RESIZED`) once this
//!   process's transactions end.
#![allow(unsafe_code)]

mod linger;

use std::collections::HashMap;
use std::fs::File;
use std::io::{Read as _, Seek as _, Write as _};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, RwLockReadGuard, Weak};
use std::time::{Duration, Instant};

use heed::types::Bytes as Raw;
use heed::{CommitOrAbort, Database, Env, EnvFlags, EnvOpenOptions, RoTxn, RwTxn, WithoutTls};

use super::{Backend, Bytes, Dir, Iter, Kv, ReadTxn, Space, WriteTxn};
use crate::error::{Error, Result};
use crate::options::Options;

/// LMDB's data file, the mark of an LMDB store.
pub(crate) use crate::backend::LMDB_DATA_FILE as DATA_FILE;
/// LMDB's lock file.
const LOCK_FILE: &str = "lock.mdb";
/// The file whose `flock` serializes writers across processes.
pub(crate) const WRITER_LOCK: &str = "writer.lock";
/// The file every process with the environment open holds a shared `flock`
/// on; compaction takes it exclusively (it needs the store to itself).
pub(crate) const USERS_LOCK: &str = "users.lock";

type Db = Database<'static, Raw, Raw>;

/// LMDB's page size on the platforms chatstore runs on (map sizes are
/// multiples of it).
const PAGE: u64 = 4096;
/// The smallest map a store starts with.
const MIN_MAP: u64 = 64 << 20;

fn round_up(n: u64) -> u64 {
    n.div_ceil(PAGE) * PAGE
}

/// The map a store opens with: twice its file, at least [`MIN_MAP`], at
/// most `max`.
fn initial_map(file_len: u64, max: u64) -> usize {
    let want = round_up(file_len.saturating_mul(2).max(MIN_MAP).min(max.max(PAGE)));
    usize::try_from(want).unwrap_or(usize::MAX)
}

/// The environment of one store, shared by every handle of this process.
struct Shared {
    env: Env<WithoutTls>,
    dbs: [Db; 3],
    path: PathBuf,
    /// Serializes this process's writers.
    writer: Mutex<()>,
    /// Serializes writers across processes (`flock`, taken while holding
    /// `writer`); holds the pid of the process holding it, for the error of
    /// one that waits too long.
    writer_file: File,
    /// Held (read) by every transaction of this process, (write) to adopt
    /// a map another process grew.
    resize: RwLock<()>,
    /// `Options::map_size`: the largest the map may grow to.
    map_size: u64,
    /// `Options::group_access`: the files this process makes are 0660.
    group_access: bool,
    /// The process that opened the environment.
    pid: u32,
    /// The data file's device and inode when the environment opened: a
    /// store replaced at the same path is another store.
    data_id: (u64, u64),
    /// Set by a compaction: the environment maps a file no longer the
    /// store's, and must not be reused or kept.
    retired: AtomicBool,
    /// Holds a shared `flock` while the environment is open (declared after
    /// `env`, so it is released after the environment closed).
    users_file: File,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("lmdb").field("path", &self.path).finish()
    }
}

/// This process's environments by canonical path.
static ENVS: Mutex<Option<HashMap<PathBuf, Weak<Shared>>>> = Mutex::new(None);

/// An open LMDB store.
#[derive(Debug)]
pub(crate) struct LmdbKv {
    shared: Arc<Shared>,
    /// How long the environment stays open after this handle, the last,
    /// closes (`Options::linger_ms`).
    linger: Duration,
}

impl Drop for LmdbKv {
    fn drop(&mut self) {
        if !self.linger.is_zero()
            && self.shared.pid == std::process::id()
            && !self.shared.retired.load(Ordering::Acquire)
        {
            linger::keep(&self.shared, self.linger);
        }
    }
}

/// The device and inode of the file at `path` ((0, 0) when absent).
fn file_id(path: &Path) -> (u64, u64) {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).map_or((0, 0), |m| (m.dev(), m.ino()))
}

fn storage(e: heed::Error, path: &Path, map_size: u64) -> Error {
    match e {
        heed::Error::Mdb(heed::MdbError::MapFull) => Error::Storage(format!(
            "{} is full: it reached its map size of {map_size} bytes; open it with a larger \
             `map_size` option (nothing was written)",
            path.display()
        )),
        heed::Error::Mdb(heed::MdbError::Invalid) | heed::Error::Mdb(heed::MdbError::Corrupted) => {
            Error::corrupt(format!("{}: {e}", path.join(DATA_FILE).display()))
        }
        heed::Error::Mdb(heed::MdbError::VersionMismatch) => Error::Format {
            reason: format!("{}: {e}", path.join(DATA_FILE).display()),
        },
        e => Error::Storage(format!("{}: {e}", path.display())),
    }
}

impl LmdbKv {
    /// Opens (creating when absent) the store in directory `path`.
    pub(crate) fn open(path: &Path, options: &Options) -> Result<LmdbKv> {
        if options.compression {
            return Err(Error::invalid(
                "compression",
                "is a sled option: an LMDB store's pages are not compressed (use backend \"sled\" \
                 with the crate feature `compression`)",
            ));
        }
        let key = std::fs::canonicalize(path)?;
        let linger = Duration::from_millis(options.linger_ms);
        let mut envs = ENVS.lock().unwrap_or_else(|e| e.into_inner());
        let map = envs.get_or_insert_with(HashMap::new);
        if let Some(shared) = map.get(&key).and_then(Weak::upgrade) {
            if shared.pid != std::process::id() {
                // Only lingering (ours, and the entry's): the parent's
                // closed environment, which this child forgets and opens
                // anew. Otherwise a handle of the parent's is in use here.
                let lingering_only = Arc::strong_count(&shared) == 2;
                let parents = Arc::as_ptr(&shared);
                // Keep the parent's environment alive and untouched.
                std::mem::forget(shared);
                if !lingering_only {
                    return Err(Error::Storage(format!(
                        "{} was opened by the process this one was forked from; an LMDB store \
                         cannot be used across fork(): open it after forking",
                        path.display()
                    )));
                }
                linger::release(|s| Arc::as_ptr(s) == parents);
            } else if shared.data_id == file_id(&key.join(DATA_FILE)) {
                return Ok(LmdbKv { shared, linger });
            } else {
                // The store at this path was replaced: this environment
                // maps the old one. Closed once its handles are.
                linger::release(|s| Arc::ptr_eq(s, &shared));
            }
        }
        let shared = Arc::new(Shared::open(&key, options)?);
        map.insert(key, Arc::downgrade(&shared));
        Ok(LmdbKv { shared, linger })
    }
}

impl Shared {
    fn open(path: &Path, options: &Options) -> Result<Shared> {
        let map_size = options.map_size;
        let fail = |e| storage(e, path, map_size);
        let is_new = !path.join(DATA_FILE).exists();
        // LMDB makes its lock file 0600 (less the umask) when absent: new
        // after a compaction too, and then ours to give the store's mode.
        let new_lock = !path.join(LOCK_FILE).exists();
        let writer_path = path.join(WRITER_LOCK);
        let writer_file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&writer_path)
            .map_err(|e| super::io_error(&writer_path, e))?;
        let users_path = path.join(USERS_LOCK);
        let users_file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&users_path)
            .map_err(|e| super::io_error(&users_path, e))?;
        let timeout_ms = options.attach_timeout_ms;
        wait_for(
            path,
            timeout_ms,
            || users_file.try_lock_shared(),
            || format!("it stayed locked for compaction for more than {timeout_ms} ms"),
        )?;
        let file_len = std::fs::metadata(path.join(DATA_FILE)).map_or(0, |m| m.len());
        let mut o = EnvOpenOptions::new().read_txn_without_tls();
        o.map_size(initial_map(file_len, map_size))
            .max_dbs(4)
            .max_readers(1022);
        // NO_META_SYNC keeps integrity after a system crash (lmdb.h: only the
        // last commit may be undone); NO_READ_AHEAD only changes read-ahead.
        // SAFETY: neither is NO_SYNC, WRITEMAP or NO_LOCK (why heed says unsafe).
        unsafe {
            o.flags(EnvFlags::NO_META_SYNC | EnvFlags::NO_READ_AHEAD);
        }
        // The file is only changed through LMDB (processes coordinate on its
        // lock file); one environment per path per process (ENVS, held now).
        // SAFETY: as above; an environment is never used across fork() (pid).
        let env = unsafe { o.open(path) }.map_err(fail)?;
        env.clear_stale_readers().map_err(fail)?;
        for f in [DATA_FILE, LOCK_FILE, WRITER_LOCK, USERS_LOCK] {
            let p = path.join(f);
            if is_new || (new_lock && f == LOCK_FILE) || f == WRITER_LOCK || f == USERS_LOCK {
                // Only files this process created, or may own: another
                // user's files are not ours to change.
                let _ = super::set_file_mode(&p, options.group_access);
            }
        }
        let dbs = open_dbs(
            &env,
            path,
            &writer_file,
            options.attach_timeout_ms,
            map_size,
        )?;
        Ok(Shared {
            env,
            dbs,
            path: path.to_path_buf(),
            writer: Mutex::new(()),
            writer_file,
            resize: RwLock::new(()),
            map_size,
            group_access: options.group_access,
            pid: std::process::id(),
            data_id: file_id(&path.join(DATA_FILE)),
            retired: AtomicBool::new(false),
            users_file,
        })
    }

    /// Doubles the map (up to `map_size`) when the file passed half of it,
    /// so the transaction about to begin has room. Called by a writer
    /// holding the in-process writer lock; waits for this process's read
    /// transactions to end (LMDB resizes only with none open).
    fn grow_if_needed(&self) -> Result<()> {
        let (used, mapped) = {
            // mdb_env_info reads the meta pages through the map, which
            // another thread may be remapping (`begin`).
            let _map = self.resize.read().unwrap_or_else(|e| e.into_inner());
            let info = self.env.info();
            (
                (info.last_page_number as u64 + 1) * PAGE,
                info.map_size as u64,
            )
        };
        if used * 2 <= mapped || mapped >= self.map_size {
            return Ok(());
        }
        let _all = self.resize.write().unwrap_or_else(|e| e.into_inner());
        let grown = round_up(mapped.saturating_mul(2).min(self.map_size));
        // Every transaction holds `resize` read-locked for its life.
        // SAFETY: its write lock is held: none is open; the size is page-sized.
        unsafe {
            self.env
                .resize(usize::try_from(grown).unwrap_or(usize::MAX))
        }
        .map_err(|e| self.fail(e))
    }

    fn db(&self, space: Space) -> &Db {
        &self.dbs[space as usize]
    }

    fn fail(&self, e: heed::Error) -> Error {
        storage(e, &self.path, self.map_size)
    }

    /// Runs `start` (a transaction's beginning) holding the resize lock;
    /// when another process grew the map, adopts its size and retries.
    fn begin<'a, T>(
        &'a self,
        start: impl Fn() -> heed::Result<T>,
    ) -> Result<(RwLockReadGuard<'a, ()>, T)> {
        for _ in 0..3 {
            let guard = self.resize.read().unwrap_or_else(|e| e.into_inner());
            match start() {
                Ok(t) => return Ok((guard, t)),
                Err(heed::Error::Mdb(heed::MdbError::MapResized)) => {
                    drop(guard);
                    let _all = self.resize.write().unwrap_or_else(|e| e.into_inner());
                    // SAFETY: `resize` is write-locked, so no transaction of
                    // this process is open (each holds it read-locked).
                    unsafe { self.env.resize(0) }.map_err(|e| self.fail(e))?;
                }
                Err(e) => return Err(self.fail(e)),
            }
        }
        Err(Error::Storage(format!(
            "{}: the map kept being resized by other processes",
            self.path.display()
        )))
    }
}

/// Opens the three databases, creating them in a new store.
fn open_dbs(
    env: &Env<WithoutTls>,
    path: &Path,
    writer_file: &File,
    timeout_ms: u64,
    map_size: u64,
) -> Result<[Db; 3]> {
    let fail = |e| storage(e, path, map_size);
    let names = [Some("meta"), Some("data"), Some("accounts")];
    let rtxn = env.read_txn().map_err(fail)?;
    let found = env
        .open_databases_and_commit(rtxn, |dbo, rtxn| -> heed::Result<_> {
            let mut out = Vec::new();
            for n in names {
                match dbo.open_database::<Raw, Raw>(rtxn, n)? {
                    Some(db) => out.push(db),
                    None => return Ok(CommitOrAbort::Abort(())),
                }
            }
            Ok(CommitOrAbort::Commit([out[0], out[1], out[2]]))
        })
        .map_err(fail)?;
    if let CommitOrAbort::Commit(dbs) = found {
        return Ok(dbs);
    }
    let _flock = FileLock::take(writer_file, path, timeout_ms)?;
    let wtxn = env.write_txn().map_err(fail)?;
    let made = env
        .create_databases_and_commit(wtxn, |dbo, wtxn| -> heed::Result<_> {
            let a = dbo.create_database::<Raw, Raw>(wtxn, names[0])?;
            let b = dbo.create_database::<Raw, Raw>(wtxn, names[1])?;
            let c = dbo.create_database::<Raw, Raw>(wtxn, names[2])?;
            Ok(CommitOrAbort::<_, ()>::Commit([a, b, c]))
        })
        .map_err(fail)?;
    env.force_sync().map_err(fail)?;
    match made {
        CommitOrAbort::Commit(dbs) => Ok(dbs),
        CommitOrAbort::Abort(()) => Err(Error::Storage("creating the databases".into())),
    }
}

/// An exclusive `flock` of the writer lock file, released on drop.
struct FileLock<'a> {
    file: &'a File,
}

impl<'a> FileLock<'a> {
    /// Takes the lock, waiting at most `timeout_ms`; then records this
    /// process as its holder.
    fn take(file: &'a File, path: &Path, timeout_ms: u64) -> Result<Self> {
        wait_for(
            path,
            timeout_ms,
            || file.try_lock(),
            || {
                let holder =
                    holder_of(file).map_or_else(String::new, |p| format!(" (process {p})"));
                format!(
                    "another process{holder} has held its write lock ({}) for more than \
                     {timeout_ms} ms",
                    path.join(WRITER_LOCK).display()
                )
            },
        )?;
        let mut f = file;
        let pid = format!("{:<10}\n", std::process::id());
        let _ = f
            .seek(std::io::SeekFrom::Start(0))
            .and_then(|_| f.write_all(pid.as_bytes()));
        Ok(FileLock { file })
    }
}

/// Polls `try_lock` (a non-blocking `flock`) until it succeeds or
/// `timeout_ms` passes, then fails with [`Error::Locked`] giving `reason`.
fn wait_for(
    path: &Path,
    timeout_ms: u64,
    try_lock: impl Fn() -> std::result::Result<(), std::fs::TryLockError>,
    reason: impl FnOnce() -> String,
) -> Result<()> {
    let deadline = Instant::now() + Duration::from_millis(timeout_ms);
    let mut pause = Duration::from_micros(20);
    loop {
        match try_lock() {
            Ok(()) => return Ok(()),
            Err(std::fs::TryLockError::WouldBlock) => {}
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        if Instant::now() >= deadline {
            return Err(Error::Locked {
                path: path.to_path_buf(),
                reason: reason(),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(5));
    }
}

/// The pid the holder of the writer lock wrote into it.
fn holder_of(file: &File) -> Option<u32> {
    let mut f = file;
    let mut s = String::new();
    f.seek(std::io::SeekFrom::Start(0)).ok()?;
    f.take(16).read_to_string(&mut s).ok()?;
    s.trim().parse().ok()
}

impl Drop for FileLock<'_> {
    fn drop(&mut self) {
        let _ = self.file.unlock();
    }
}

struct Reader<'a> {
    txn: RoTxn<'a, WithoutTls>,
    shared: &'a Shared,
    _resize: RwLockReadGuard<'a, ()>,
}

/// A write transaction; fields drop in order: the transaction (aborted
/// unless committed) before the locks.
struct Writer<'a> {
    txn: Option<RwTxn<'a>>,
    shared: &'a Shared,
    _resize: RwLockReadGuard<'a, ()>,
    _flock: FileLock<'a>,
    _writer: MutexGuard<'a, ()>,
}

fn get<'t>(shared: &Shared, txn: &'t RoTxn, space: Space, key: &[u8]) -> Result<Option<Bytes<'t>>> {
    Ok(shared
        .db(space)
        .get(txn, key)
        .map_err(|e| shared.fail(e))?
        .map(Bytes::borrowed))
}

fn range<'t>(
    shared: &'t Shared,
    txn: &'t RoTxn,
    space: Space,
    from: Bound<&[u8]>,
    to: Bound<&[u8]>,
    dir: Dir,
) -> Result<Iter<'t>> {
    // LMDB keys are never empty: an empty bound is the space's edge.
    let from = match from {
        Bound::Included([]) | Bound::Excluded([]) => Bound::Unbounded,
        b => b,
    };
    if matches!(to, Bound::Included([]) | Bound::Excluded([])) {
        return Ok(Box::new(std::iter::empty()));
    }
    let bounds = (from, to);
    let db = shared.db(space);
    let wrap = move |r: heed::Result<(&'t [u8], &'t [u8])>| match r {
        Ok((k, v)) => Ok((Bytes::borrowed(k), Bytes::borrowed(v))),
        Err(e) => Err(shared.fail(e)),
    };
    Ok(match dir {
        Dir::Forward => Box::new(
            db.range(txn, &bounds)
                .map_err(|e| shared.fail(e))?
                .map(wrap),
        ),
        Dir::Backward => Box::new(
            db.rev_range(txn, &bounds)
                .map_err(|e| shared.fail(e))?
                .map(wrap),
        ),
    })
}

impl ReadTxn for Reader<'_> {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Bytes<'_>>> {
        get(self.shared, &self.txn, space, key)
    }
    fn range<'a>(
        &'a self,
        space: Space,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        dir: Dir,
    ) -> Result<Iter<'a>> {
        range(self.shared, &self.txn, space, from, to, dir)
    }
}

impl Writer<'_> {
    fn txn(&self) -> &RwTxn<'_> {
        self.txn
            .as_ref()
            .expect("a write transaction is live until commit")
    }
}

impl ReadTxn for Writer<'_> {
    fn get(&self, space: Space, key: &[u8]) -> Result<Option<Bytes<'_>>> {
        get(self.shared, self.txn(), space, key)
    }
    fn range<'a>(
        &'a self,
        space: Space,
        from: Bound<&[u8]>,
        to: Bound<&[u8]>,
        dir: Dir,
    ) -> Result<Iter<'a>> {
        range(self.shared, self.txn(), space, from, to, dir)
    }
}

impl WriteTxn for Writer<'_> {
    fn put(&mut self, space: Space, key: &[u8], value: &[u8]) -> Result<()> {
        let shared = self.shared;
        let txn = self
            .txn
            .as_mut()
            .expect("a write transaction is live until commit");
        shared
            .db(space)
            .put(txn, key, value)
            .map_err(|e| shared.fail(e))
    }
    fn delete(&mut self, space: Space, key: &[u8]) -> Result<()> {
        let shared = self.shared;
        let txn = self
            .txn
            .as_mut()
            .expect("a write transaction is live until commit");
        shared
            .db(space)
            .delete(txn, key)
            .map(drop)
            .map_err(|e| shared.fail(e))
    }
    fn commit(mut self: Box<Self>) -> Result<()> {
        let txn = self.txn.take().expect("a write transaction commits once");
        txn.commit().map_err(|e| self.shared.fail(e))
    }
    fn as_read(&self) -> &dyn ReadTxn {
        self
    }
}

impl Kv for LmdbKv {
    fn backend(&self) -> Backend {
        Backend::Lmdb
    }

    fn read(&self) -> Result<Box<dyn ReadTxn + '_>> {
        let s = &*self.shared;
        let (guard, txn) = s.begin(|| s.env.read_txn())?;
        Ok(Box::new(Reader {
            txn,
            shared: s,
            _resize: guard,
        }))
    }

    fn write(&self, timeout_ms: u64) -> Result<Box<dyn WriteTxn + '_>> {
        let s = &*self.shared;
        let writer = s.writer.lock().unwrap_or_else(|e| e.into_inner());
        s.grow_if_needed()?;
        let flock = FileLock::take(&s.writer_file, &s.path, timeout_ms)?;
        let (guard, txn) = s.begin(|| s.env.write_txn())?;
        Ok(Box::new(Writer {
            txn: Some(txn),
            shared: s,
            _resize: guard,
            _flock: flock,
            _writer: writer,
        }))
    }

    fn sync(&self) -> Result<()> {
        // mdb_env_sync reads the meta pages through the map: a resize must
        // not remap it meanwhile.
        let _map = self.shared.resize.read().unwrap_or_else(|e| e.into_inner());
        self.shared
            .env
            .force_sync()
            .map_err(|e| self.shared.fail(e))
    }

    fn size_on_disk(&self) -> Result<u64> {
        // mdb_env_info reads the meta pages through the map (see `sync`).
        let _map = self.shared.resize.read().unwrap_or_else(|e| e.into_inner());
        Ok((self.shared.env.info().last_page_number as u64 + 1) * PAGE)
    }

    fn copy_to(&self, dir: &Path) -> Result<()> {
        let s = &*self.shared;
        let (_resize, txn) = s.begin(|| s.env.read_txn())?;
        rebuild(s, &txn, dir)
    }

    fn compact(&self) -> Result<()> {
        let s = &*self.shared;
        let _writer = s.writer.lock().unwrap_or_else(|e| e.into_inner());
        // Another process with the store open would go on writing to the
        // file this one replaces: refuse while there is one.
        match s.users_file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(Error::Locked {
                    path: s.path.clone(),
                    reason: "other processes have it open, and compacting needs it to itself \
                             (`chatstore backup` writes a compact copy while it is in use)"
                        .into(),
                })
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(e.into()),
        }
        let tmp = s.path.join("compact.tmp");
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| super::io_error(&tmp, e))?;
        }
        super::create_dir(&tmp, s.group_access)?;
        {
            let (_resize, txn) = s.begin(|| s.env.read_txn())?;
            rebuild(s, &txn, &tmp)?;
        }
        // The new file takes the old one's mode and group (a group-shared
        // store's stays the pool's).
        let old = std::fs::metadata(s.path.join(DATA_FILE))?;
        std::fs::set_permissions(tmp.join(DATA_FILE), old.permissions())?;
        {
            use std::os::unix::fs::MetadataExt;
            let _ = std::os::unix::fs::chown(tmp.join(DATA_FILE), None, Some(old.gid()));
        }
        std::fs::rename(tmp.join(DATA_FILE), s.path.join(DATA_FILE))
            .map_err(|e| super::io_error(&s.path, e))?;
        // The lock region described the old file: the next opener (the
        // first, as nobody else has the store open) makes it anew.
        let _ = std::fs::remove_file(s.path.join(LOCK_FILE));
        File::open(&s.path)?.sync_all()?;
        std::fs::remove_dir(&tmp).map_err(|e| super::io_error(&tmp, e))?;
        // This environment maps the old file: it must not be used again.
        s.retired.store(true, Ordering::Release);
        linger::release(|l| std::ptr::eq(Arc::as_ptr(l), s));
        let mut envs = ENVS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(map) = envs.as_mut() {
            map.remove(&s.path);
        }
        Ok(())
    }
}

/// Entries a rebuild writes per transaction.
const REBUILD_TXN_ENTRIES: usize = 50_000;

/// Writes every entry `txn` sees into a new environment in `dir`, in key
/// order with `MDB_APPEND`: each page is filled before the next begins
/// (random inserts leave pages about half full, and a store grown by many
/// transactions keeps free pages), so the copy is as small as LMDB can
/// make it. Synced before it returns; `dir` then holds `data.mdb` only.
fn rebuild(s: &Shared, txn: &RoTxn<'_, WithoutTls>, dir: &Path) -> Result<()> {
    let out = dir.join(DATA_FILE);
    let fail = |e| storage(e, dir, s.map_size);
    let used = (s.env.info().last_page_number as u64 + 1) * PAGE;
    let mut o = EnvOpenOptions::new().read_txn_without_tls();
    o.map_size(initial_map(used, s.map_size.max(used)))
        .max_dbs(4)
        .max_readers(4);
    // The copy is nobody's store until it is synced below and renamed or
    // handed over: a crash before that leaves a file no store uses.
    // SAFETY: NO_SYNC only defers durability, which `force_sync` restores
    // before the file is used; this process alone opens the new directory.
    unsafe {
        o.flags(EnvFlags::NO_SYNC | EnvFlags::NO_READ_AHEAD);
    }
    // SAFETY: a new directory of this process's own making, opened once.
    let env = unsafe { o.open(dir) }.map_err(fail)?;
    let copied = (|| -> Result<()> {
        let wtxn = env.write_txn().map_err(fail)?;
        let made = env
            .create_databases_and_commit(wtxn, |dbo, wtxn| -> heed::Result<_> {
                let a = dbo.create_database::<Raw, Raw>(wtxn, Some("meta"))?;
                let b = dbo.create_database::<Raw, Raw>(wtxn, Some("data"))?;
                let c = dbo.create_database::<Raw, Raw>(wtxn, Some("accounts"))?;
                Ok(CommitOrAbort::<_, ()>::Commit([a, b, c]))
            })
            .map_err(fail)?;
        let CommitOrAbort::Commit(dbs) = made else {
            return Err(Error::Storage("creating the databases of the copy".into()));
        };
        for (from, to) in s.dbs.iter().zip(dbs.iter()) {
            let mut w = env.write_txn().map_err(fail)?;
            let mut n = 0;
            for item in from.iter(txn).map_err(|e| s.fail(e))? {
                let (k, v) = item.map_err(|e| s.fail(e))?;
                to.put_with_flags(&mut w, heed::PutFlags::APPEND, k, v)
                    .map_err(fail)?;
                n += 1;
                if n % REBUILD_TXN_ENTRIES == 0 {
                    w.commit().map_err(fail)?;
                    w = env.write_txn().map_err(fail)?;
                }
            }
            w.commit().map_err(fail)?;
        }
        env.force_sync().map_err(fail)
    })();
    env.prepare_for_closing().wait();
    copied?;
    let _ = std::fs::remove_file(dir.join(LOCK_FILE));
    super::set_file_mode(&out, false)?;
    File::open(dir)?.sync_all()?;
    Ok(())
}
