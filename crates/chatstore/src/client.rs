//! A connection to the process that owns a store (see [`crate::server`]).

use std::io::{BufReader, BufWriter};
use std::os::unix::net::UnixStream;
use std::path::Path;

use crate::error::{Error, Result};
use crate::jsonl::Record;
use crate::rpc::{self, Request, Response, PROTOCOL};

/// One connection; calls on it are sequential.
#[derive(Debug)]
pub struct Conn {
    reader: BufReader<UnixStream>,
    writer: BufWriter<UnixStream>,
}

/// How a call over a connection failed.
pub enum CallError {
    /// The connection is gone (the owner died or stopped): attach again and
    /// retry.
    Lost(std::io::Error),
    /// The owner answered with an error.
    Failed(Error),
}

impl Conn {
    /// Connects and greets the owner. A connection refused or reset is an
    /// `Err(io)`; an owner speaking another protocol is a `Format` error
    /// reported as `InvalidData`.
    pub fn connect(socket: &Path) -> std::io::Result<Conn> {
        let stream = UnixStream::connect(socket)?;
        let mut conn = Conn {
            reader: BufReader::new(stream.try_clone()?),
            writer: BufWriter::new(stream),
        };
        match conn.call(&Request::Hello { protocol: PROTOCOL }) {
            Ok(_) => Ok(conn),
            Err(CallError::Lost(e)) => Err(e),
            Err(CallError::Failed(e)) => Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                e.to_string(),
            )),
        }
    }

    /// Sends a request and reads its answer.
    pub fn call(&mut self, req: &Request) -> Result<Response, CallError> {
        rpc::write_frame(&mut self.writer, req).map_err(CallError::Lost)?;
        self.read()
    }

    fn read(&mut self) -> Result<Response, CallError> {
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
pub struct RemoteExport {
    conn: Conn,
    batch: std::vec::IntoIter<Record>,
    done: bool,
}

impl RemoteExport {
    /// Starts an export on a connection of its own.
    pub fn start(mut conn: Conn) -> Result<RemoteExport> {
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
            match self.conn.read() {
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
