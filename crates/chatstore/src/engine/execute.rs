//! Runs a [`Request`] on this process's engine: one dispatch for every
//! call, whether it came from a handle in process or over a socket.

use super::Engine;
use crate::command::{Request, Response};
use crate::error::{Error, Result};

impl Engine {
    /// Runs a request. A write is applied (once, under its id) but not
    /// waited on for durability; [`Request::Export`] and [`Request::Hello`]
    /// are the connection's business, not the engine's.
    pub(crate) fn execute(&self, req: Request) -> Result<Response> {
        let engine = self;
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
            Request::GetSession { tenant, id } => {
                Response::Session(engine.get_session(tenant, id)?)
            }
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
            Request::Import {
                text,
                first_line,
                id,
            } => {
                Response::Imported(engine.import_jsonl(text.as_bytes(), first_line, id, |_| {})?)
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
}
