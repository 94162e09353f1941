//! Many processes, one store. An LMDB store is opened by every process
//! itself: [`attach`] only shares one engine between this process's
//! handles. sled lets one process hold a store; that
//! process, the *owner*, serves every other process over a Unix socket
//! beside the store (`PATH/chatstore.sock`, mode 0600). [`attach`] is what
//! `Store::open` does: use this process's engine when it has one, else take
//! the owner's lock (`PATH/chatstore.lock`) and become the owner, else
//! connect to the owner; retry until one works or `attach_timeout_ms`
//! passes. A dead owner's lock dies with it (the kernel drops it); its
//! socket file is stale and the next owner replaces it.
//!
//! The new owner binds its socket *before* it opens the engine (which can
//! take a while: sled recovers its log, slower still in a debug build), so
//! the processes that wait for the store connect at once and are greeted
//! when the engine is ready, instead of polling for a moment when both the
//! lock and the socket are free and losing that race to newcomers. It
//! stops only when no connection is being served, decided under the same
//! lock the accept loop counts connections with, so a connection is either
//! served to its end or closed before its greeting (the client then attaches
//! again; no request of it was read).
//!
//! The owner keeps serving after its own handles are closed, for
//! `Options::linger_ms` after the last request, so a PHP-FPM worker that
//! became owner during one request goes on serving the others between its
//! requests. See ARCHITECTURE.md, "Many processes".

use std::collections::HashMap;
use std::io::{BufReader, BufWriter};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::thread;
use std::time::{Duration, Instant};

use crate::command::{Request, Response};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::ipc::client::{CallError, Conn};
use crate::ipc::frames::{self as rpc, PROTOCOL};
use crate::options::Options;

/// File name of the owner's socket inside the store directory.
pub const SOCKET_NAME: &str = "chatstore.sock";

/// File name of the owner's lock inside the store directory: held (`flock`)
/// by the process that owns a sled store from before it binds the socket
/// until after its engine is closed.
pub(crate) const OWNER_LOCK_NAME: &str = "chatstore.lock";

/// Records of writes applied for other processes are kept this long, far
/// beyond any retry.
const REQUEST_MAX_AGE_SECS: u64 = 3600;

/// Export batch size in records.
const EXPORT_BATCH: usize = 1000;
/// The most connections the owner serves at once; a request is at most
/// `rpc::MAX_REQUEST` bytes, read as its bytes arrive, so the owner's
/// request memory stays under `MAX_CONNECTIONS x MAX_REQUEST` even with
/// every client hostile.
const MAX_CONNECTIONS: usize = 256;
/// How long a retiring owner keeps a quiet connection open for a request
/// its client may be sending (see [`Owner::retire`]).
const RETIRE_GRACE: Duration = Duration::from_millis(100);

/// The engines this process owns, by absolute store path.
static OWNED: Mutex<Option<HashMap<PathBuf, Weak<Owner>>>> = Mutex::new(None);

fn owned() -> MutexGuard<'static, Option<HashMap<PathBuf, Weak<Owner>>>> {
    OWNED.lock().unwrap_or_else(|e| e.into_inner())
}

/// A store this process owns: the engine, its local handles, its server.
#[derive(Debug)]
pub(crate) struct Owner {
    /// The engine.
    pub engine: Engine,
    /// The process that opened the engine. A child forked from it inherits
    /// a copy of this value but none of its threads, and must not use it.
    pid: u32,
    key: PathBuf,
    socket: Option<PathBuf>,
    linger: Duration,
    handles: AtomicUsize,
    /// Connections served and whether the owner is stopping, changed
    /// together: a connection is counted only while not stopping, and the
    /// owner stops only with none counted.
    serving: Mutex<Serving>,
    /// Signalled when a connection ends.
    ended: std::sync::Condvar,
    /// Read without the lock by `attach` (set under it, never cleared).
    stopping: AtomicBool,
    last_request: Mutex<Instant>,
    /// The owner's lock, released after the engine (fields drop in order).
    _lock: Option<std::fs::File>,
}

#[derive(Debug, Default)]
struct Serving {
    connections: usize,
    stopping: bool,
}

/// What a handle is attached to.
pub(crate) enum Attached {
    /// This process owns the store.
    Local(Arc<Owner>),
    /// Another process does.
    Remote(Conn),
}

/// Attaches a handle to the store at `path` (see the module docs).
pub(crate) fn attach(path: &Path, options: &Options) -> Result<Attached> {
    let key = std::path::absolute(path)?;
    let socket = key.join(SOCKET_NAME);
    // An owner starting up or shutting down answers within milliseconds.
    let deadline = Instant::now() + Duration::from_millis(options.attach_timeout_ms);
    let mut pause = Duration::from_millis(1);
    loop {
        {
            let mut owned = owned();
            let map = owned.get_or_insert_with(HashMap::new);
            if let Some(owner) = map.get(&key).and_then(Weak::upgrade) {
                if owner.is_ours() && !owner.stopping.load(Ordering::Acquire) {
                    owner.handles.fetch_add(1, Ordering::AcqRel);
                    return Ok(Attached::Local(owner));
                }
            }
            if needs_owner(&key, options) {
                if let Some(owner) = become_owner(&key, &socket, options)? {
                    map.insert(key, Arc::downgrade(&owner));
                    return Ok(Attached::Local(owner));
                }
            } else {
                // An LMDB store is opened by every process itself: no socket,
                // and released with its last handle here.
                let engine = Engine::open(&key, options.clone())?;
                let owner = Owner::start(engine, key.clone(), None, None, 0);
                map.insert(key, Arc::downgrade(&owner));
                return Ok(Attached::Local(owner));
            }
        }
        match Conn::connect(&socket, options.attach_timeout_ms) {
            Ok(conn) => return Ok(Attached::Remote(conn)),
            // A peer of another user, another protocol, a stopped or
            // silent owner: said as it is, not retried.
            Err(CallError::Failed(e)) => return Err(e),
            Err(CallError::Lost(_)) => {}
        }
        if Instant::now() >= deadline {
            return Err(Error::Locked {
                path: key,
                reason: format!(
                    "its sled lock is held and no process answered on {} for {} ms \
                     (one process owns a sled store and serves the others)",
                    socket.display(),
                    options.attach_timeout_ms
                ),
            });
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Whether the store at `path` is one whose opener serves the others
/// (sled's, existing or to be made).
fn needs_owner(path: &Path, options: &Options) -> bool {
    crate::storage::Backend::of_existing(path)
        .unwrap_or(options.backend)
        .needs_owner()
}

/// Tries to become the owner of the sled store at `key`: take the owner's
/// lock, bind the socket (waiting processes connect from now on), open the
/// engine. `None` when another process owns the store (connect to it).
fn become_owner(key: &Path, socket: &Path, options: &Options) -> Result<Option<Arc<Owner>>> {
    if !key.exists() {
        // `check_path` allowed it (`create_if_missing`).
        crate::storage::create_dir(key, options.group_access)?;
    }
    let Some(lock) = take_owner_lock(key, options.group_access)? else {
        return Ok(None);
    };
    // Something else at the socket's path (a directory, a file) would make
    // every other process wait for an owner it can never reach.
    if let Ok(meta) = std::fs::symlink_metadata(socket) {
        use std::os::unix::fs::FileTypeExt;
        if !meta.file_type().is_socket() {
            let what = if meta.is_dir() {
                "a directory"
            } else {
                "not a socket"
            };
            return Err(Error::invalid(
                "store",
                format!(
                    "{} is {what}, where the store's owner serves other processes: \
                     remove it",
                    socket.display()
                ),
            ));
        }
    }
    // A store whose socket cannot be bound (a path over the 107 bytes a
    // Unix socket address holds) still works in this process; other
    // processes then wait and report it locked.
    let listener = bind(socket, options.group_access).ok();
    match Engine::open(key, options.clone()) {
        Ok(engine) => Ok(Some(Owner::start(
            engine,
            key.to_path_buf(),
            listener.map(|l| (l, socket)),
            Some(lock),
            options.linger_ms,
        ))),
        Err(e) => {
            // Connections that came meanwhile are closed before their
            // greeting: their clients attach again.
            if listener.is_some() {
                let _ = std::fs::remove_file(socket);
            }
            match e {
                // Held by a process that does not take the owner's lock (a
                // build before it, or another program): connect or wait.
                Error::Locked { .. } => Ok(None),
                e => Err(e),
            }
        }
    }
}

/// Takes the owner's lock of the store at `key` without waiting: `None`
/// when another process holds it. The file is created private (or
/// group-shared with `group_access`) and kept; the lock dies with its
/// holder.
fn take_owner_lock(key: &Path, group_access: bool) -> Result<Option<std::fs::File>> {
    use rustix::fs::{flock, FlockOperation};
    use std::os::unix::fs::OpenOptionsExt;
    let path = key.join(OWNER_LOCK_NAME);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(if group_access { 0o660 } else { 0o600 })
        // Never reached through a symbolic link someone else planted.
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
        .open(&path)
        .map_err(|e| crate::storage::io_error(&path, e))?;
    // The mode above passed through the umask (0640 under 022). Another
    // user's lock file is left as it is.
    let _ = crate::storage::set_file_mode(&path, group_access);
    match flock(&file, FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(Some(file)),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(None),
        Err(e) => Err(crate::storage::io_error(&path, e.into())),
    }
}

/// Binds the socket privately: to a temporary name, mode 0600 (0660 in a
/// store shared with its group, whose other users connect too), then renamed
/// over any stale socket (we hold the owner's lock, so no owner of this
/// build has it). A socket that still answers belongs to a process of a
/// build before the owner's lock (which holds the store's sled lock too):
/// it is left alone, and this process then finds the store locked.
fn bind(socket: &Path, group_access: bool) -> std::io::Result<UnixListener> {
    if UnixStream::connect(socket).is_ok() {
        return Err(std::io::Error::other(
            "a process of an earlier build serves the store",
        ));
    }
    let tmp = socket.with_extension(format!("sock.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp)?;
    let mode = if group_access { 0o660 } else { 0o600 };
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
        .and_then(|()| std::fs::rename(&tmp, socket));
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(listener)
}

impl Owner {
    fn start(
        engine: Engine,
        key: PathBuf,
        listener: Option<(UnixListener, &Path)>,
        lock: Option<std::fs::File>,
        linger_ms: u64,
    ) -> Arc<Owner> {
        let owner = Arc::new(Owner {
            engine,
            pid: std::process::id(),
            key,
            socket: listener.as_ref().map(|(_, s)| s.to_path_buf()),
            linger: Duration::from_millis(linger_ms),
            handles: AtomicUsize::new(1),
            serving: Mutex::new(Serving::default()),
            ended: std::sync::Condvar::new(),
            stopping: AtomicBool::new(false),
            last_request: Mutex::new(Instant::now()),
            _lock: lock,
        });
        if let Some((listener, _)) = listener {
            let o = Arc::clone(&owner);
            thread::Builder::new()
                .name("chatstore-accept".into())
                .spawn(move || o.accept_loop(listener))
                .ok();
            let o = Arc::downgrade(&owner);
            thread::Builder::new()
                .name("chatstore-linger".into())
                .spawn(move || linger_loop(o))
                .ok();
        }
        owner
    }

    /// Whether this process opened the engine (not a copy inherited through
    /// `fork`).
    pub(crate) fn is_ours(&self) -> bool {
        self.pid == std::process::id()
    }

    fn touch(&self) {
        *self.last_request.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// How many handles of this process are attached.
    pub(crate) fn handle_count(&self) -> usize {
        self.handles.load(Ordering::Acquire)
    }

    /// A local handle closed. With no handle left and no linger, the store
    /// is released now ([`Owner::retire`]).
    pub(crate) fn release_handle(&self) {
        self.touch();
        if self.handles.fetch_sub(1, Ordering::AcqRel) == 1 && self.linger.is_zero() {
            self.retire();
        }
    }

    /// Releases this handle and the store with it, whatever the linger
    /// (see [`Owner::retire`]); the caller then opens the store anew.
    pub(crate) fn release_now(&self) {
        self.touch();
        self.handles.fetch_sub(1, Ordering::AcqRel);
        self.retire();
    }

    /// Releases the store although other processes are connected, as a
    /// process does before it exits: no new connection is taken (the
    /// socket goes first), each connection is served until it has sent no
    /// request for [`RETIRE_GRACE`] (a client greeted a moment ago sends
    /// its request within it) and then closed (its client attaches again,
    /// to the next owner, before its next request), and the engine is
    /// closed once they are done. A connection still busy after
    /// `attach_timeout_ms` (a stopped client reading an export, say) is
    /// left: the process exits under it and its client retries.
    fn retire(&self) {
        let mut owned = owned();
        {
            let mut serving = self.serving();
            if self.handles.load(Ordering::Acquire) > 0 || serving.stopping {
                return;
            }
            serving.stopping = true;
            self.stopping.store(true, Ordering::Release);
        }
        if let Some(map) = owned.as_mut() {
            map.remove(&self.key);
        }
        drop(owned);
        self.close_socket();
        let deadline =
            Instant::now() + Duration::from_millis(self.engine.options.attach_timeout_ms);
        let mut serving = self.serving();
        while serving.connections > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            serving = self
                .ended
                .wait_timeout(serving, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(serving);
        let _ = self.engine.close();
    }

    /// Wakes the accept loop, which sees `stopping` and ends, and removes
    /// the socket: from then on waiting processes find no owner and retry.
    fn close_socket(&self) {
        if let Some(socket) = &self.socket {
            let _ = UnixStream::connect(socket);
            let _ = std::fs::remove_file(socket);
        }
    }

    /// Stops serving when nobody uses the store and the linger has passed:
    /// no local handle can attach meanwhile (the registry lock is held), the
    /// socket goes, the accept loop is woken and ends, and the engine is
    /// dropped (flushed, lock released) with the last reference.
    fn try_stop(&self) -> bool {
        let mut owned = owned();
        let idle = self
            .last_request
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .elapsed();
        {
            let mut serving = self.serving();
            if self.handles.load(Ordering::Acquire) > 0
                || serving.connections > 0
                || idle < self.linger
                || serving.stopping
            {
                return false;
            }
            serving.stopping = true;
            self.stopping.store(true, Ordering::Release);
        }
        if let Some(map) = owned.as_mut() {
            map.remove(&self.key);
        }
        drop(owned);
        self.close_socket();
        let _ = self.engine.close();
        true
    }

    fn serving(&self) -> MutexGuard<'_, Serving> {
        self.serving.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a new connection unless the owner is stopping.
    fn admit(&self) -> bool {
        let mut serving = self.serving();
        if serving.stopping {
            return false;
        }
        serving.connections += 1;
        true
    }

    fn dismiss(&self) {
        self.touch();
        self.serving().connections -= 1;
        self.ended.notify_all();
    }

    /// Waits until the connection's next request begins: `false` when the
    /// owner retires and none began for [`RETIRE_GRACE`], or the wait
    /// failed.
    fn next_request(&self, reader: &BufReader<UnixStream>) -> bool {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        let step = Timespec {
            tv_sec: 0,
            tv_nsec: 20_000_000,
        };
        let mut quiet_since: Option<Instant> = None;
        loop {
            if !reader.buffer().is_empty() {
                return true;
            }
            let mut fds = [PollFd::new(reader.get_ref(), PollFlags::IN)];
            match poll(&mut fds, Some(&step)) {
                Ok(n) if n > 0 => return true,
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(_) => return false,
            }
            if self.stopping.load(Ordering::Acquire)
                && quiet_since.get_or_insert_with(Instant::now).elapsed() >= RETIRE_GRACE
            {
                return false;
            }
        }
    }

    fn accept_loop(self: Arc<Owner>, listener: UnixListener) {
        for stream in listener.incoming() {
            let Ok(stream) = stream else {
                if self.stopping.load(Ordering::Acquire) {
                    break;
                }
                // Out of file descriptors, say: do not spin on it.
                thread::sleep(Duration::from_millis(10));
                continue;
            };
            // At most MAX_CONNECTIONS served at once (each a thread and a
            // request buffer): the next one waits here, its client waiting
            // for its answer within its own deadline.
            while self.serving().connections >= MAX_CONNECTIONS
                && !self.stopping.load(Ordering::Acquire)
            {
                thread::sleep(Duration::from_millis(1));
            }
            // Closed before its greeting when stopping: the client attaches
            // again.
            if !self.admit() {
                break;
            }
            let o = Arc::clone(&self);
            let spawned = thread::Builder::new()
                .name("chatstore-conn".into())
                .spawn(move || {
                    o.serve(stream);
                    o.dismiss();
                });
            if spawned.is_err() {
                self.dismiss();
            }
        }
    }

    /// Answers one connection's requests until it closes or the owner stops.
    fn serve(&self, stream: UnixStream) {
        // Another user's process is not served (SO_PEERCRED).
        if !crate::trust::peer_may_attach(&stream, &self.key) {
            return;
        }
        let Ok(read_half) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(read_half);
        let mut writer = BufWriter::new(stream);
        while self.next_request(&reader) {
            let Ok(Some(req)) = rpc::read_request(&mut reader) else {
                return;
            };
            self.touch();
            let req = match req {
                Ok(req) => req,
                Err(reason) => {
                    let e = Error::invalid(
                        "request",
                        format!(
                            "not one the owning process knows (it may run an older \
                             chatstore): {reason}"
                        ),
                    );
                    if rpc::write_frame(&mut writer, &Response::from_error(&e)).is_err() {
                        return;
                    }
                    continue;
                }
            };
            let sent = match req {
                Request::Hello { protocol } if protocol != PROTOCOL => {
                    let e = Error::Format {
                        reason: format!(
                            "the owning process speaks protocol {PROTOCOL}, this one {protocol}"
                        ),
                    };
                    rpc::write_frame(&mut writer, &Response::from_error(&e))
                }
                Request::Hello { .. } => rpc::write_frame(&mut writer, &Response::Unit),
                Request::Export => self.export(&mut writer),
                req @ Request::Import { .. } if exit_after_import() => {
                    // The fault of the test hook: applied, never answered.
                    let _ = self.answer(req);
                    std::process::exit(3);
                }
                req => match self.answer(req) {
                    Some(resp) => rpc::write_response(&mut writer, &resp),
                    // Closed under the request: the client retries it with
                    // the next owner.
                    None => return,
                },
            };
            if sent.is_err() {
                return;
            }
        }
    }

    /// Runs a request; a write is acknowledged only once durable, so the
    /// owner's death cannot lose it. A panic is an error answer, not a dead
    /// connection.
    fn answer(&self, req: Request) -> Option<Response> {
        let is_write = matches!(req, Request::Write { .. } | Request::Import { .. });
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let resp = self.engine.execute(req)?;
            if is_write {
                self.engine.sync()?;
            }
            Ok::<_, Error>(resp)
        }));
        Some(match run {
            Ok(Ok(resp)) => resp,
            Ok(Err(Error::Closed)) => return None,
            Ok(Err(e)) => Response::from_error(&e),
            Err(_) => {
                Response::from_error(&Error::internal("a request panicked in the owning process"))
            }
        })
    }

    fn export(&self, w: &mut impl std::io::Write) -> std::io::Result<()> {
        let records = match self.engine.export_records() {
            Ok(it) => it,
            Err(e) => return rpc::write_frame(w, &Response::from_error(&e)),
        };
        let mut batch = Vec::with_capacity(EXPORT_BATCH);
        let mut n = 0u64;
        for r in records {
            match r {
                Ok(r) => batch.push(r),
                Err(e) => return rpc::write_frame(w, &Response::from_error(&e)),
            }
            if batch.len() == EXPORT_BATCH {
                n += batch.len() as u64;
                rpc::write_frame(w, &Response::Records(std::mem::take(&mut batch)))?;
            }
        }
        n += batch.len() as u64;
        if !batch.is_empty() {
            rpc::write_frame(w, &Response::Records(batch))?;
        }
        rpc::write_frame(w, &Response::Done(n))
    }
}

/// A test hook (docs/RELIABILITY.md, "Exactly once"): when the variable
/// `CHATSTORE_FAULT_EXIT_AFTER_IMPORT` is set in the owning process, it
/// exits after applying an import chunk and before answering it, the
/// window in which a client resends the chunk to the next owner.
fn exit_after_import() -> bool {
    static SET: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *SET.get_or_init(|| std::env::var_os("CHATSTORE_FAULT_EXIT_AFTER_IMPORT").is_some())
}

/// Ends the owner once it lingered unused; prunes old request records now
/// and then meanwhile.
fn linger_loop(owner: Weak<Owner>) {
    let mut pruned: Option<Instant> = None;
    loop {
        let Some(o) = owner.upgrade() else { return };
        if o.stopping.load(Ordering::Acquire) || o.try_stop() {
            return;
        }
        if pruned.is_none_or(|t| t.elapsed() > Duration::from_secs(600)) {
            let _ = o.engine.prune_requests(REQUEST_MAX_AGE_SECS);
            pruned = Some(Instant::now());
        }
        let tick = (o.linger / 4).clamp(Duration::from_millis(20), Duration::from_secs(1));
        drop(o);
        thread::sleep(tick);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    /// A sled store: the backend with an owner that serves other processes.
    fn options() -> Options {
        Options {
            linger_ms: 0,
            backend: crate::Backend::Sled,
            ..Options::default()
        }
    }

    #[test]
    fn an_owner_refuses_a_client_of_another_protocol() {
        let dir = tempfile::tempdir().unwrap();
        let Attached::Local(owner) = attach(dir.path(), &options()).unwrap() else {
            panic!("the first opener owns the store");
        };
        let mut s = UnixStream::connect(dir.path().join(SOCKET_NAME)).unwrap();
        rpc::write_frame(
            &mut s,
            &Request::Hello {
                protocol: PROTOCOL + 1,
            },
        )
        .unwrap();
        match rpc::read_response(&mut s).unwrap() {
            Some(Response::Error { kind, message }) => {
                assert_eq!(kind, ErrorKind::Format);
                assert!(message.contains("protocol"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        // The right protocol is greeted, and a call answered.
        let mut s = UnixStream::connect(dir.path().join(SOCKET_NAME)).unwrap();
        rpc::write_frame(&mut s, &Request::Hello { protocol: PROTOCOL }).unwrap();
        assert!(matches!(
            rpc::read_response(&mut s).unwrap(),
            Some(Response::Unit)
        ));
        rpc::write_frame(&mut s, &Request::Tenants).unwrap();
        assert!(
            matches!(rpc::read_response(&mut s).unwrap(), Some(Response::Tenants(t)) if t.is_empty())
        );
        // A request this build does not know (a newer client's) is answered
        // with an error, and the connection keeps serving.
        rpc::write_frame(&mut s, &serde_json::json!({"SomeLaterRequest": 1})).unwrap();
        match rpc::read_response(&mut s).unwrap() {
            Some(Response::Error { kind, message }) => {
                assert_eq!(kind, ErrorKind::InvalidInput);
                assert!(message.contains("SomeLaterRequest"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        rpc::write_frame(&mut s, &Request::Info).unwrap();
        assert!(matches!(
            rpc::read_response(&mut s).unwrap(),
            Some(Response::Info(i)) if i.format == crate::engine::STORE_FORMAT && i.text_index
        ));
        drop(s);
        owner.release_handle();
    }

    #[test]
    fn a_second_attach_in_process_shares_the_owner() {
        let dir = tempfile::tempdir().unwrap();
        let Attached::Local(a) = attach(dir.path(), &options()).unwrap() else {
            panic!("owner");
        };
        let Attached::Local(b) = attach(dir.path(), &options()).unwrap() else {
            panic!("shared");
        };
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.handles.load(Ordering::Acquire), 2);
        a.release_handle();
        b.release_handle();
        // Released (no linger, nobody connected): the socket is gone.
        assert!(!dir.path().join(SOCKET_NAME).exists());
    }

    #[test]
    fn the_owner_lock_is_private_and_held_until_the_store_is_released() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let Attached::Local(owner) = attach(dir.path(), &options()).unwrap() else {
            panic!("owner");
        };
        let lock = dir.path().join(OWNER_LOCK_NAME);
        let mode = std::fs::metadata(&lock).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // Held: nobody else becomes the owner (a second open file
        // description conflicts even in this process).
        assert!(take_owner_lock(dir.path(), false).unwrap().is_none());
        owner.release_handle();
        drop(owner);
        // Released with the engine, once the accept loop has ended.
        let started = Instant::now();
        while take_owner_lock(dir.path(), false).unwrap().is_none() {
            assert!(started.elapsed() < Duration::from_secs(10), "still held");
            thread::sleep(Duration::from_millis(5));
        }
    }

    #[test]
    fn a_directory_at_the_socket_path_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let Attached::Local(owner) = attach(dir.path(), &options()).unwrap() else {
            panic!("owner");
        };
        owner.release_handle();
        drop(owner);
        std::fs::create_dir(dir.path().join(SOCKET_NAME)).unwrap();
        let e = match attach(dir.path(), &options()) {
            Err(e) => e,
            Ok(_) => panic!("attached with a directory at the socket path"),
        };
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        let text = e.to_string();
        assert!(
            text.contains(SOCKET_NAME) && text.contains("is a directory"),
            "{text}"
        );
        // Nothing left behind: no temporary socket.
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(
            !names.iter().any(|n| n.starts_with("chatstore.sock.")),
            "{names:?}"
        );
    }
}
