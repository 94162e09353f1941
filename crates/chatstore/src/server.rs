//! Many processes, one store. An LMDB store is opened by every process
//! itself: [`attach`] only shares one engine between this process's
//! handles. sled lets one process hold a store; that
//! process, the *owner*, serves every other process over a Unix socket
//! beside the store (`PATH/chatstore.sock`, mode 0600). [`attach`] is what
//! `Store::open` does: use this process's engine when it has one, else take
//! the store's lock and become the owner, else connect to the owner; retry
//! until one works. A dead owner's lock dies with it (the kernel drops it);
//! its socket file is stale and the next owner replaces it.
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

use crate::client::{CallError, Conn};
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::options::Options;
use crate::rpc::{self, Request, Response, PROTOCOL};

/// File name of the owner's socket inside the store directory.
pub const SOCKET_NAME: &str = "chatstore.sock";

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

/// The engines this process owns, by absolute store path.
static OWNED: Mutex<Option<HashMap<PathBuf, Weak<Owner>>>> = Mutex::new(None);

fn owned() -> MutexGuard<'static, Option<HashMap<PathBuf, Weak<Owner>>>> {
    OWNED.lock().unwrap_or_else(|e| e.into_inner())
}

/// A store this process owns: the engine, its local handles, its server.
#[derive(Debug)]
pub struct Owner {
    /// The engine.
    pub engine: Engine,
    /// The process that opened the engine. A child forked from it inherits
    /// a copy of this value but none of its threads, and must not use it.
    pid: u32,
    key: PathBuf,
    socket: Option<PathBuf>,
    linger: Duration,
    handles: AtomicUsize,
    connections: AtomicUsize,
    last_request: Mutex<Instant>,
    stopping: AtomicBool,
}

/// What a handle is attached to.
pub enum Attached {
    /// This process owns the store.
    Local(Arc<Owner>),
    /// Another process does.
    Remote(Conn),
}

/// Attaches a handle to the store at `path` (see the module docs).
pub fn attach(path: &Path, options: &Options) -> Result<Attached> {
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
            match Engine::open(&key, options.clone()) {
                Ok(engine) => {
                    // An LMDB store is opened by every process itself: no
                    // socket, and released with its last handle here.
                    let serve = engine.kv.needs_owner();
                    let owner = Owner::start(
                        engine,
                        key.clone(),
                        serve.then_some(socket.as_path()),
                        if serve { options.linger_ms } else { 0 },
                    );
                    map.insert(key, Arc::downgrade(&owner));
                    return Ok(Attached::Local(owner));
                }
                Err(Error::Locked { .. }) => {}
                Err(e) => return Err(e),
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

/// Binds the socket privately: to a temporary name, mode 0600, then renamed
/// over any stale socket (we hold the store's lock, so no live owner has
/// it).
fn bind(socket: &Path) -> std::io::Result<UnixListener> {
    let tmp = socket.with_extension(format!("sock.{}", std::process::id()));
    let _ = std::fs::remove_file(&tmp);
    let listener = UnixListener::bind(&tmp)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))?;
    std::fs::rename(&tmp, socket)?;
    Ok(listener)
}

impl Owner {
    fn start(engine: Engine, key: PathBuf, socket: Option<&Path>, linger_ms: u64) -> Arc<Owner> {
        // A store whose socket cannot be bound (a path over the 107 bytes a
        // Unix socket address holds) still works in this process; other
        // processes then wait and report it locked.
        let listener = socket.and_then(|s| bind(s).ok().map(|l| (l, s)));
        let owner = Arc::new(Owner {
            engine,
            pid: std::process::id(),
            key,
            socket: listener.as_ref().map(|(_, s)| s.to_path_buf()),
            linger: Duration::from_millis(linger_ms),
            handles: AtomicUsize::new(1),
            connections: AtomicUsize::new(0),
            last_request: Mutex::new(Instant::now()),
            stopping: AtomicBool::new(false),
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
    pub fn is_ours(&self) -> bool {
        self.pid == std::process::id()
    }

    fn touch(&self) {
        *self.last_request.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// How many handles of this process are attached.
    pub fn handle_count(&self) -> usize {
        self.handles.load(Ordering::Acquire)
    }

    /// A local handle closed. With no handle, no connection and no linger,
    /// the store is released now.
    pub fn release_handle(&self) {
        self.touch();
        if self.handles.fetch_sub(1, Ordering::AcqRel) == 1 && self.linger.is_zero() {
            self.try_stop();
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
        if self.handles.load(Ordering::Acquire) > 0
            || self.connections.load(Ordering::Acquire) > 0
            || idle < self.linger
            || self.stopping.swap(true, Ordering::AcqRel)
        {
            return false;
        }
        if let Some(map) = owned.as_mut() {
            map.remove(&self.key);
        }
        drop(owned);
        let _ = self.engine.close();
        if let Some(socket) = &self.socket {
            // Wake the accept loop, which sees `stopping` and ends.
            let _ = UnixStream::connect(socket);
            let _ = std::fs::remove_file(socket);
        }
        true
    }

    fn accept_loop(self: Arc<Owner>, listener: UnixListener) {
        for stream in listener.incoming() {
            if self.stopping.load(Ordering::Acquire) {
                break;
            }
            let Ok(stream) = stream else {
                // Out of file descriptors, say: do not spin on it.
                thread::sleep(Duration::from_millis(10));
                continue;
            };
            // At most MAX_CONNECTIONS served at once (each a thread and a
            // request buffer): the next one waits here, its client waiting
            // for its answer within its own deadline.
            while self.connections.load(Ordering::Acquire) >= MAX_CONNECTIONS
                && !self.stopping.load(Ordering::Acquire)
            {
                thread::sleep(Duration::from_millis(1));
            }
            self.connections.fetch_add(1, Ordering::AcqRel);
            let o = Arc::clone(&self);
            let spawned = thread::Builder::new()
                .name("chatstore-conn".into())
                .spawn(move || {
                    o.serve(stream);
                    o.touch();
                    o.connections.fetch_sub(1, Ordering::AcqRel);
                });
            if spawned.is_err() {
                self.connections.fetch_sub(1, Ordering::AcqRel);
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
        while let Ok(Some(req)) = rpc::read_request(&mut reader) {
            if self.stopping.load(Ordering::Acquire) {
                return;
            }
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
                req => {
                    let resp = self.answer(req);
                    rpc::write_response(&mut writer, &resp)
                }
            };
            if sent.is_err() {
                return;
            }
        }
    }

    /// Runs a request; a write is acknowledged only once durable, so the
    /// owner's death cannot lose it. A panic is an error answer, not a dead
    /// connection.
    fn answer(&self, req: Request) -> Response {
        let is_write = matches!(req, Request::Write { .. } | Request::Import { .. });
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let resp = rpc::execute(&self.engine, req)?;
            if is_write {
                self.engine.sync()?;
            }
            Ok::<_, Error>(resp)
        }));
        match run {
            Ok(Ok(resp)) => resp,
            Ok(Err(e)) => Response::from_error(&e),
            Err(_) => Response::from_error(&Error::corrupt("internal error in the owning process")),
        }
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
            Some(Response::Info(i)) if i.format == crate::engine::TEXT_FORMAT && i.text_index
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
}
