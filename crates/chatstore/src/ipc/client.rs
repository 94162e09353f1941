//! A connection to the process that owns a store (see [`crate::ipc::server`]).

use std::io::{BufReader, BufWriter};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::command::{Request, Response};
use crate::error::{Error, Result};
use crate::ipc::frames::{self as rpc, PROTOCOL};
use crate::jsonl::Record;

/// One connection; calls on it are sequential.
#[derive(Debug)]
pub(crate) struct Conn {
    reader: BufReader<UnixStream>,
    writer: BufWriter<UnixStream>,
    /// The store's directory (errors name it).
    store: PathBuf,
    /// The owner's process id (`SO_PEERCRED`), watched while an answer is
    /// awaited.
    pid: Option<i32>,
}

/// What `/proc` says of a process.
#[derive(Debug, PartialEq, Eq)]
enum ProcState {
    Running,
    /// Stopped (SIGSTOP, Ctrl-Z) or traced: it will not answer.
    Stopped,
    Gone,
}

fn proc_state(pid: i32) -> ProcState {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return ProcState::Gone;
    };
    // `pid (comm) S ...`: the state follows the last ')'.
    match stat
        .rsplit_once(')')
        .and_then(|(_, rest)| rest.trim_start().chars().next())
    {
        Some('T' | 't') => ProcState::Stopped,
        Some('Z' | 'X') => ProcState::Gone,
        _ => ProcState::Running,
    }
}

/// How a call over a connection failed.
pub(crate) enum CallError {
    /// The connection is gone (the owner died or stopped): attach again and
    /// retry.
    Lost(std::io::Error),
    /// The owner answered with an error.
    Failed(Error),
}

impl Conn {
    /// Connects and greets the owner. A connection refused or reset is
    /// `CallError::Lost` (attach again); an owner speaking another protocol,
    /// running as another user than this one or the store's owner (outside
    /// a group-shared store: `trust::check_peer`), stopped, or silent for
    /// `timeout_ms`, is `CallError::Failed` with the error naming why.
    pub(crate) fn connect(socket: &Path, timeout_ms: u64) -> Result<Conn, CallError> {
        let stream = UnixStream::connect(socket).map_err(CallError::Lost)?;
        let store = socket.parent().unwrap_or(Path::new(".")).to_path_buf();
        crate::trust::check_peer(&stream, &store).map_err(|e| {
            CallError::Failed(Error::Io(std::io::Error::new(
                e.kind(),
                format!("refusing {}: {e}", socket.display()),
            )))
        })?;
        let pid = rustix::net::sockopt::socket_peercred(&stream)
            .ok()
            .map(|c| c.pid.as_raw_nonzero().get());
        let mut conn = Conn {
            reader: BufReader::new(stream.try_clone().map_err(CallError::Lost)?),
            writer: BufWriter::new(stream),
            store,
            pid,
        };
        let hello = Request::Hello { protocol: PROTOCOL };
        let deadline = Instant::now() + Duration::from_millis(timeout_ms);
        rpc::write_frame(&mut conn.writer, &hello).map_err(CallError::Lost)?;
        conn.read(Some(deadline))?;
        Ok(conn)
    }

    /// Sends a request and reads its answer, however long the owner works
    /// on it, unless the owner stops (then `Error::Locked` naming it).
    pub(crate) fn call(&mut self, req: &Request) -> Result<Response, CallError> {
        rpc::write_frame(&mut self.writer, req).map_err(CallError::Lost)?;
        self.read(None)
    }

    /// Waits until an answer begins, checking every second that the owner
    /// still runs: a stopped owner (SIGSTOP, Ctrl-Z), or no answer by
    /// `deadline`, is an `Error::Locked` naming its process.
    fn wait(&mut self, deadline: Option<Instant>) -> Result<(), CallError> {
        use rustix::event::{poll, PollFd, PollFlags, Timespec};
        loop {
            if !self.reader.buffer().is_empty() {
                return Ok(());
            }
            let mut step = Duration::from_secs(1);
            if let Some(d) = deadline {
                step = step.min(d.saturating_duration_since(Instant::now()));
            }
            let timeout = Timespec {
                tv_sec: step.as_secs() as i64,
                tv_nsec: i64::from(step.subsec_nanos()),
            };
            let mut fds = [PollFd::new(self.reader.get_ref(), PollFlags::IN)];
            match poll(&mut fds, Some(&timeout)) {
                Ok(n) if n > 0 => return Ok(()),
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => return Err(CallError::Lost(e.into())),
            }
            let who = self
                .pid
                .map_or_else(|| "the process".to_string(), |p| format!("process {p}"));
            if let Some(pid) = self.pid {
                match proc_state(pid) {
                    ProcState::Stopped => {
                        return Err(CallError::Failed(Error::Locked {
                            path: self.store.clone(),
                            reason: format!(
                                "{who}, which owns it, is stopped (SIGSTOP or Ctrl-Z) and \
                                 cannot answer"
                            ),
                        }))
                    }
                    ProcState::Gone => {
                        return Err(CallError::Lost(std::io::ErrorKind::UnexpectedEof.into()))
                    }
                    ProcState::Running => {}
                }
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Err(CallError::Failed(Error::Locked {
                    path: self.store.clone(),
                    reason: format!("{who}, which owns it, did not answer in time"),
                }));
            }
        }
    }

    fn read(&mut self, deadline: Option<Instant>) -> Result<Response, CallError> {
        self.wait(deadline)?;
        match rpc::read_response(&mut self.reader) {
            Ok(Some(Response::Error { kind, message })) => {
                Err(CallError::Failed(Error::Remote { kind, message }))
            }
            Ok(Some(resp)) => Ok(resp),
            Ok(None) => Err(CallError::Lost(std::io::ErrorKind::UnexpectedEof.into())),
            Err(e) => Err(CallError::Lost(e)),
        }
    }
}

/// The records of an export streamed by the owner.
#[derive(Debug)]
pub(crate) struct RemoteExport {
    conn: Conn,
    batch: std::vec::IntoIter<Record>,
    done: bool,
}

impl RemoteExport {
    /// Starts an export on a connection of its own.
    pub(crate) fn start(mut conn: Conn) -> Result<RemoteExport> {
        rpc::write_frame(&mut conn.writer, &Request::Export).map_err(lost)?;
        Ok(RemoteExport {
            conn,
            batch: Vec::new().into_iter(),
            done: false,
        })
    }
}

fn lost(e: std::io::Error) -> Error {
    Error::Io(std::io::Error::new(
        e.kind(),
        format!("the process that owns the store went away during an export: {e}"),
    ))
}

impl Iterator for RemoteExport {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        loop {
            if let Some(r) = self.batch.next() {
                return Some(Ok(r));
            }
            if self.done {
                return None;
            }
            match self.conn.read(None) {
                Ok(Response::Records(b)) => self.batch = b.into_iter(),
                Ok(_) => self.done = true,
                Err(e) => {
                    self.done = true;
                    return Some(Err(match e {
                        CallError::Lost(e) => lost(e),
                        CallError::Failed(e) => e,
                    }));
                }
            }
        }
    }
}
