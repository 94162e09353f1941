//! The query path over one read transaction ([`Snap`]): history-list and
//! hischat conversations (`history`), messages of a session (`messages`),
//! member search (`members`), search inside message text
//! (`message_search`). Totals come from counters, orders from key order,
//! and a page reads only its own rows (O(page), plus the skipped keys of deep
//! offset pages, which are never decoded). Reads only: it may not write.

mod hischat;
mod history;
mod members;
mod message_search;
mod messages;

pub(crate) use hischat::Refusal;
pub use history::{resolve_paging, Cursor, HistoryPage, HistoryQuery, LivePage, Order};
pub use message_search::{MessageHits, MessageSearch};
pub use messages::MessagesPage;
pub(crate) use messages::MESSAGES_PAGESIZE;

use std::collections::HashMap;
use std::ops::Bound;

use crate::codec::{self, AgentRec, MemberRec, MsgBody, SessionRec};
use crate::error::Result;
use crate::keys::{self, Counter};
use crate::model::{Agent, Member, Message, SessionView};
use crate::storage::{ReadTxn, Space, Tree};

/// One read transaction's view of a store: every query runs on one (see
/// `Engine::read`), so a page, its total and its joined rows agree.
pub(crate) struct Snap<'t> {
    /// The data space.
    pub(crate) data: Tree<'t>,
    /// The accounts space.
    pub(crate) accounts: Tree<'t>,
    /// Whether the store keeps the message-text index.
    pub(crate) text_index: bool,
    /// Whether nicknames and mobiles have grams of every length.
    pub(crate) short_grams: bool,
}

impl<'t> Snap<'t> {
    /// The view of a read transaction.
    pub(crate) fn new(txn: &'t dyn ReadTxn, layout: keys::Layout) -> Self {
        Snap {
            data: Tree::new(txn, Space::Data),
            accounts: Tree::new(txn, Space::Accounts),
            text_index: layout.text_index,
            short_grams: layout.short_grams,
        }
    }
}

/// Counts kept by the store's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct TenantStats {
    /// The tenant.
    pub tenant: u64,
    /// Members.
    pub members: u64,
    /// Agents.
    pub agents: u64,
    /// Sessions.
    pub sessions: u64,
    /// Messages.
    pub messages: u64,
}

/// Memoized reads of members and agents while building one page.
#[derive(Default)]
pub(super) struct Joins {
    members: HashMap<u64, Option<MemberRec>>,
    agents: HashMap<u64, Option<Agent>>,
}

impl Snap<'_> {
    pub(crate) fn counter(&self, k: &keys::Key) -> Result<u64> {
        codec::decode_u64(self.data.get(k)?.as_deref())
    }

    pub(crate) fn member_rec(&self, tenant: u64, uid: u64) -> Result<Option<MemberRec>> {
        match self.data.get(keys::member(tenant, uid))? {
            None => Ok(None),
            Some(v) => codec::decode(&v, "member").map(Some),
        }
    }

    /// A member by uid.
    pub(crate) fn get_member(&self, tenant: u64, uid: u64) -> Result<Option<Member>> {
        Ok(self.member_rec(tenant, uid)?.map(|r| r.member))
    }

    /// An agent by id.
    pub(crate) fn get_agent(&self, tenant: u64, id: u64) -> Result<Option<Agent>> {
        match self.data.get(keys::agent(tenant, id))? {
            None => Ok(None),
            Some(v) => Ok(Some(codec::decode::<AgentRec>(&v, "agent")?.agent)),
        }
    }

    fn session_rec(&self, tenant: u64, sid: u64) -> Result<Option<SessionRec>> {
        match self.data.get(keys::session(tenant, sid))? {
            None => Ok(None),
            Some(v) => codec::decode(&v, "session").map(Some),
        }
    }

    /// A session with its member, agent and last message.
    pub(crate) fn get_session(&self, tenant: u64, sid: u64) -> Result<Option<SessionView>> {
        self.view(tenant, sid, &mut Joins::default(), true)
    }

    /// The message with the given id of a session.
    fn message_at(&self, tenant: u64, sid: u64, id: u64) -> Result<Option<Message>> {
        match self.data.get(keys::message(tenant, sid, id))? {
            None => Ok(None),
            Some(v) => Ok(Some(
                codec::decode::<MsgBody>(&v, "message")?.to_message(tenant, sid, id),
            )),
        }
    }

    fn view(
        &self,
        tenant: u64,
        sid: u64,
        joins: &mut Joins,
        with_last: bool,
    ) -> Result<Option<SessionView>> {
        let Some(rec) = self.session_rec(tenant, sid)? else {
            // Deleted between reading the index and the record.
            return Ok(None);
        };
        let s = &rec.session;
        if let std::collections::hash_map::Entry::Vacant(e) = joins.members.entry(s.uid) {
            e.insert(self.member_rec(tenant, s.uid)?);
        }
        let member = joins.members[&s.uid].as_ref().map(|r| r.member.clone());
        let agent = if s.agent_id == 0 {
            None
        } else {
            if let std::collections::hash_map::Entry::Vacant(e) = joins.agents.entry(s.agent_id) {
                e.insert(self.get_agent(tenant, s.agent_id)?);
            }
            joins.agents[&s.agent_id].clone()
        };
        Ok(Some(SessionView {
            activity_at: rec.activity_at(),
            message_count: rec.msg_count,
            last_message: match rec.last {
                Some((id, _)) if with_last => self.message_at(tenant, sid, id)?,
                _ => None,
            },
            member,
            agent,
            read: rec.read_state(),
            session: rec.session,
        }))
    }

    /// The counters of one tenant.
    pub(crate) fn tenant_stats(&self, tenant: u64) -> Result<TenantStats> {
        let c = |kind| self.counter(&keys::counter(tenant, kind));
        Ok(TenantStats {
            tenant,
            members: c(Counter::Members)?,
            agents: c(Counter::Agents)?,
            sessions: c(Counter::Sessions)?,
            messages: c(Counter::Messages)?,
        })
    }

    /// The tenants that hold any data, ascending (walks one key per tenant).
    pub(crate) fn tenants(&self) -> Result<Vec<u64>> {
        let mut out = Vec::new();
        let mut from: Option<Vec<u8>> = Some(Vec::new());
        while let Some(start) = from {
            let Some(item) = self
                .data
                .range(Bound::Included(&start), Bound::Unbounded)
                .next()
            else {
                break;
            };
            let (k, _) = item?;
            let t = keys::u64_at(&k, 0);
            out.push(t);
            from = t.checked_add(1).map(|n| n.to_be_bytes().to_vec());
        }
        Ok(out)
    }
}
