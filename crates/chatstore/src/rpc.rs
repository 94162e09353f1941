//! The calls a handle makes on an engine, as values: the same
//! [`Request`] runs in process ([`execute`]) and, framed, over the owner's
//! socket (see ARCHITECTURE.md, "Many processes"). The frames carry the
//! engine's own types (records, queries, pages, reports) serialized with
//! serde; there is no second protocol per binding.
//!
//! A frame is a 4-byte big-endian length, then that many bytes: a tag byte
//! and the body. Tag `J`: the body is a request or response as JSON. Tag
//! `T`: the body is the UTF-8 text of a [`Response::Text`] (a rendered
//! endpoint answer), sent as is rather than escaped into a JSON string; this
//! halves the cost of a page through the socket.

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::check::CheckReport;
use crate::endpoint::HistoryRequest;
use crate::engine::{Engine, StoreInfo};
use crate::error::{Error, ErrorKind, Result};
use crate::jsonl::{ImportSummary, Record};
use crate::model::{Account, Agent, Member, Message, Reader, Session, SessionView};
use crate::options::RenderSettings;
use crate::query::{
    HistoryPage, HistoryQuery, MessageHits, MessageSearch, MessagesPage, TenantStats,
};

/// Version of the frames; an owner refuses a client of another version.
pub const PROTOCOL: u32 = 1;

/// Largest response frame a client accepts (an export batch or a page
/// stays far below this).
const MAX_FRAME: usize = 64 << 20;
/// Largest request frame the owner accepts: the largest legal request is
/// an import chunk (4 MiB of lines, plus the line that passed it, at most
/// `jsonl::MAX_LINE_BYTES`) escaped once more inside the JSON frame.
pub(crate) const MAX_REQUEST: usize = 16 << 20;

/// A write, as [`Engine::apply`] takes it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum WriteOp {
    /// Insert or replace a member.
    UpsertMember(Member),
    /// Insert or replace an agent.
    UpsertAgent(Agent),
    /// Insert or replace a session.
    UpsertSession(Session),
    /// Append a message.
    AppendMessage(Message),
    /// Delete a session and its messages.
    DeleteSession {
        /// Tenant.
        tenant: u64,
        /// Session id.
        id: u64,
    },
    /// Delete a member, its sessions and their messages.
    DeleteMember {
        /// Tenant.
        tenant: u64,
        /// Member uid.
        uid: u64,
    },
    /// Mark a session's messages read by one side up to a message id.
    MarkRead {
        /// Tenant.
        tenant: u64,
        /// Session id.
        session: u64,
        /// Who read.
        reader: Reader,
        /// Read up to this message id.
        up_to: u64,
    },
    /// Recall a message (kept, flagged).
    RecallMessage {
        /// Tenant.
        tenant: u64,
        /// Session id.
        session: u64,
        /// Message id.
        id: u64,
    },
    /// Delete a message softly (out of every view, kept for export).
    DeleteMessage {
        /// Tenant.
        tenant: u64,
        /// Session id.
        session: u64,
        /// Message id.
        id: u64,
        /// When (unix seconds), chosen by the caller so a retry agrees.
        at: i64,
    },
    /// Delete an agent without sessions.
    DeleteAgent {
        /// Tenant.
        tenant: u64,
        /// Agent id.
        id: u64,
    },
    /// Insert or replace an account.
    UpsertAccount(Account),
    /// Delete an account.
    DeleteAccount(u64),
}

/// One call of a handle on an engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Request {
    /// First frame of a connection: the client's protocol version.
    Hello {
        /// [`PROTOCOL`] of the client.
        protocol: u32,
    },
    /// [`crate::Store::history_list`].
    HistoryList(HistoryQuery),
    /// [`crate::Store::history_list_text`], rendered with the handle's settings.
    HistoryListText {
        /// The request.
        req: HistoryRequest,
        /// The calling handle's rendering settings.
        render: RenderSettings,
    },
    /// [`crate::Store::conversations`].
    Conversations {
        /// Tenant.
        tenant: u64,
        /// Page (1-based).
        page: u64,
    },
    /// [`crate::Store::hischat_text`].
    Hischat {
        /// Account.
        sso_id: u64,
        /// Login hash.
        hash: String,
        /// Page.
        page: i64,
    },
    /// [`crate::Store::get_account`].
    GetAccount(u64),
    /// [`crate::Store::get_member`].
    GetMember {
        /// Tenant.
        tenant: u64,
        /// Member uid.
        uid: u64,
    },
    /// [`crate::Store::get_agent`].
    GetAgent {
        /// Tenant.
        tenant: u64,
        /// Agent id.
        id: u64,
    },
    /// [`crate::Store::get_session`].
    GetSession {
        /// Tenant.
        tenant: u64,
        /// Session id.
        id: u64,
    },
    /// [`crate::Store::search_members`].
    SearchMembers {
        /// Tenant.
        tenant: u64,
        /// Query.
        q: String,
    },
    /// [`crate::Store::messages`].
    Messages {
        /// Tenant.
        tenant: u64,
        /// Session id.
        session: u64,
        /// Page.
        page: u64,
        /// Page size.
        pagesize: u64,
    },
    /// [`crate::Store::search_messages`].
    SearchMessages(MessageSearch),
    /// [`crate::Store::tenant_stats`].
    TenantStats(u64),
    /// [`crate::Store::tenants`].
    Tenants,
    /// [`crate::Store::check`].
    Check,
    /// A chunk of an import: whole lines, the first being line
    /// `first_line + 1` of the import.
    Import {
        /// The lines.
        text: String,
        /// Lines of the import before this chunk.
        first_line: u64,
    },
    /// Every record, streamed as [`Response::Records`] frames ending with
    /// [`Response::Done`].
    Export,
    /// Make every write so far durable.
    Flush,
    /// A write. `id` identifies the request: a retry with the same id after a
    /// lost answer is not applied twice.
    Write {
        /// Request id (random, chosen by the client).
        id: u128,
        /// The write.
        op: WriteOp,
    },
    /// [`crate::Store::info`]. (Requests are only ever added at the end, so
    /// the earlier ones keep their encoding.)
    Info,
    /// [`crate::Store::backup`] into a new directory (an absolute path).
    Backup {
        /// The new directory.
        dir: std::path::PathBuf,
    },
    /// [`crate::Store::compact`].
    Compact,
}

/// The answer to a [`Request`]. (A page is large beside the other answers;
/// answers are built once and moved, never stored.)
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Response {
    /// Done, nothing to return.
    Unit,
    /// An id (assigned by a write) or a count.
    Id(u64),
    /// Rendered JSON text.
    Text(String),
    /// A history page.
    Page(HistoryPage),
    /// An account.
    Account(Option<Account>),
    /// A member.
    Member(Option<Member>),
    /// An agent.
    Agent(Option<Agent>),
    /// A session.
    Session(Option<SessionView>),
    /// Members.
    Members(Vec<Member>),
    /// A page of messages.
    Messages(MessagesPage),
    /// Messages found.
    Hits(MessageHits),
    /// Tenant counters.
    Stats(TenantStats),
    /// Tenant ids.
    Tenants(Vec<u64>),
    /// An integrity report.
    Check(CheckReport),
    /// What an import chunk did.
    Imported(ImportSummary),
    /// A batch of exported records.
    Records(Vec<Record>),
    /// End of an export: number of records.
    Done(u64),
    /// The call failed.
    Error {
        /// Its kind.
        kind: ErrorKind,
        /// Its message, as the engine wrote it.
        message: String,
    },
    /// What the store was created as.
    Info(StoreInfo),
}

impl Response {
    /// The error of a failed call, as a response.
    pub fn from_error(e: &Error) -> Response {
        Response::Error {
            kind: e.kind(),
            message: e.to_string(),
        }
    }
}

/// Runs a request on an engine. A write is applied (once, under its id) but
/// not waited on for durability; [`Request::Export`] and [`Request::Hello`]
/// are the connection's business, not the engine's.
pub fn execute(engine: &Engine, req: Request) -> Result<Response> {
    Ok(match req {
        Request::HistoryList(q) => Response::Page(engine.history_list(&q)?),
        Request::HistoryListText { req, render } => {
            Response::Text(engine.history_list_text(&req, &render)?)
        }
        Request::Conversations { tenant, page } => {
            Response::Page(engine.conversations(tenant, page)?)
        }
        Request::Hischat { sso_id, hash, page } => {
            Response::Text(engine.hischat_text(sso_id, &hash, page)?)
        }
        Request::GetAccount(sso_id) => Response::Account(engine.get_account(sso_id)?),
        Request::GetMember { tenant, uid } => Response::Member(engine.get_member(tenant, uid)?),
        Request::GetAgent { tenant, id } => Response::Agent(engine.get_agent(tenant, id)?),
        Request::GetSession { tenant, id } => Response::Session(engine.get_session(tenant, id)?),
        Request::SearchMembers { tenant, q } => {
            Response::Members(engine.search_members(tenant, &q)?)
        }
        Request::Messages {
            tenant,
            session,
            page,
            pagesize,
        } => Response::Messages(engine.messages(tenant, session, page, pagesize)?),
        Request::SearchMessages(q) => Response::Hits(engine.search_messages(&q)?),
        Request::TenantStats(t) => Response::Stats(engine.tenant_stats(t)?),
        Request::Tenants => Response::Tenants(engine.tenants()?),
        Request::Check => Response::Check(engine.check()?),
        Request::Info => Response::Info(engine.info()?),
        Request::Import { text, first_line } => {
            Response::Imported(engine.import_jsonl(text.as_bytes(), first_line, |_| {})?)
        }
        Request::Flush => {
            engine.flush()?;
            Response::Unit
        }
        Request::Backup { dir } => {
            engine.backup(&dir)?;
            Response::Unit
        }
        Request::Compact => {
            engine.compact()?;
            Response::Unit
        }
        Request::Write { id, op } => Response::Id(engine.apply(&op, Some(id))?),
        Request::Export | Request::Hello { .. } => {
            return Err(Error::invalid("request", "not a call of the engine"))
        }
    })
}

const TAG_JSON: u8 = b'J';
const TAG_TEXT: u8 = b'T';

/// Writes one frame of JSON.
pub fn write_frame<T: Serialize>(w: &mut impl Write, v: &T) -> std::io::Result<()> {
    let mut frame = vec![0, 0, 0, 0, TAG_JSON];
    serde_json::to_writer(&mut frame, v).map_err(std::io::Error::other)?;
    send(w, frame)
}

/// Writes a response: rendered text as is, anything else as JSON.
pub fn write_response(w: &mut impl Write, resp: &Response) -> std::io::Result<()> {
    match resp {
        Response::Text(text) => {
            let mut frame = Vec::with_capacity(5 + text.len());
            frame.extend_from_slice(&[0, 0, 0, 0, TAG_TEXT]);
            frame.extend_from_slice(text.as_bytes());
            send(w, frame)
        }
        other => write_frame(w, other),
    }
}

fn send(w: &mut impl Write, mut frame: Vec<u8>) -> std::io::Result<()> {
    let len = u32::try_from(frame.len() - 4).map_err(std::io::Error::other)?;
    frame[..4].copy_from_slice(&len.to_be_bytes());
    w.write_all(&frame)?;
    w.flush()
}

fn invalid(e: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e)
}

/// Reads one frame's tag and body, of at most `max` bytes; `Ok(None)` at a
/// clean end of stream. The body grows as its bytes arrive: a peer that
/// declares a large frame and sends little costs what it sent.
fn receive(r: &mut impl Read, max: usize) -> std::io::Result<Option<(u8, Vec<u8>)>> {
    let mut len = [0u8; 4];
    match r.read_exact(&mut len) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes(len) as usize;
    if len == 0 || len > max {
        return Err(invalid(format!("frame of {len} bytes (at most {max})")));
    }
    let mut tag = [0u8; 1];
    r.read_exact(&mut tag)?;
    let want = len - 1;
    let mut body = Vec::with_capacity(want.min(64 << 10));
    r.take(want as u64).read_to_end(&mut body)?;
    if body.len() != want {
        return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            format!("frame ended after {} of {want} bytes", body.len()),
        ));
    }
    Ok(Some((tag[0], body)))
}

/// Reads one request frame; `Ok(None)` at a clean end of stream. A whole
/// JSON frame that is not a request this build knows (one added by a newer
/// chatstore) is `Ok(Some(Err(reason)))`: the stream stays in step, so the
/// owner answers it with an error and goes on serving.
pub fn read_request(r: &mut impl Read) -> std::io::Result<Option<Result<Request, String>>> {
    match receive(r, MAX_REQUEST)? {
        None => Ok(None),
        Some((TAG_JSON, body)) => Ok(Some(
            serde_json::from_slice(&body).map_err(|e| e.to_string()),
        )),
        Some((tag, _)) => Err(invalid(format!("unexpected frame tag {tag:#04x}"))),
    }
}

/// Reads a response (either kind of frame); `Ok(None)` at a clean end.
pub fn read_response(r: &mut impl Read) -> std::io::Result<Option<Response>> {
    match receive(r, MAX_FRAME)? {
        None => Ok(None),
        Some((TAG_TEXT, body)) => String::from_utf8(body)
            .map(|t| Some(Response::Text(t)))
            .map_err(invalid),
        Some((TAG_JSON, body)) => serde_json::from_slice(&body).map(Some).map_err(invalid),
        Some((tag, _)) => Err(invalid(format!("unexpected frame tag {tag:#04x}"))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_refuse_oversize() {
        let mut buf = Vec::new();
        let req = Request::Write {
            id: u128::MAX - 7,
            op: WriteOp::DeleteSession { tenant: 2, id: 9 },
        };
        write_frame(&mut buf, &req).unwrap();
        let back = read_request(&mut buf.as_slice()).unwrap().unwrap().unwrap();
        assert!(
            matches!(back, Request::Write { id, op: WriteOp::DeleteSession { tenant: 2, id: 9 } } if id == u128::MAX - 7)
        );
        assert!(read_request(&mut [].as_slice()).unwrap().is_none());
        let huge = (MAX_FRAME as u32 + 1).to_be_bytes();
        let e = read_request(&mut huge.as_slice()).unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
        // A request may not be larger than the largest legal one (issue 18,
        // item 9: 64 MiB requests were taken, and allocated up front).
        let big = ((MAX_REQUEST + 1) as u32).to_be_bytes();
        let e = read_request(&mut big.as_slice()).unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
        // A declared frame that never comes costs what was sent.
        let mut short = ((10u32 << 20).to_be_bytes()).to_vec();
        short.extend_from_slice(&[TAG_JSON, b'{']);
        let e = read_request(&mut short.as_slice()).unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
        // Rendered text travels raw and comes back the same.
        let mut buf = Vec::new();
        let text = r#"{"result":1,"msg":"\"引号\"","data":[]}"#;
        write_response(&mut buf, &Response::Text(text.into())).unwrap();
        assert_eq!(&buf[5..], text.as_bytes());
        match read_response(&mut buf.as_slice()).unwrap() {
            Some(Response::Text(t)) => assert_eq!(t, text),
            other => panic!("{other:?}"),
        }
        // Other answers are JSON frames.
        let mut buf = Vec::new();
        write_response(&mut buf, &Response::Id(7)).unwrap();
        assert!(matches!(
            read_response(&mut buf.as_slice()).unwrap(),
            Some(Response::Id(7))
        ));
    }
}
