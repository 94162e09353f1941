//! The query path: history-list, hischat conversations, messages of a
//! session, member search. Totals come from counters, orders from key order,
//! and a page reads only its own rows (O(page), plus the skipped keys of deep
//! offset pages, which are never decoded).

use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use crate::codec::{self, AgentRec, MemberRec, MsgBody, MsgBodyRef, SessionRec};
use crate::error::{Error, Result};
use crate::keys::{self, Counter, Field};
use crate::limits;
use crate::model::{Agent, Member, Message, SessionView};
use crate::postings::{self, Pending, Postings};
use crate::search::{self, Query};
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

/// Order of a session list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Order {
    /// Session id descending (the first seed's order).
    #[default]
    Id,
    /// Activity time descending, ties by id descending.
    Recent,
}

impl Order {
    /// Parses `id` or `recent`.
    pub fn parse(s: &str) -> Result<Order> {
        match s {
            "id" => Ok(Order::Id),
            "recent" => Ok(Order::Recent),
            other => Err(Error::invalid(
                "order",
                format!("{other:?} is neither \"id\" nor \"recent\""),
            )),
        }
    }
}

/// A keyset position in a session list: the list continues after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Cursor {
    /// The order the cursor belongs to.
    pub order: Order,
    /// Activity time of the last row seen (0 for [`Order::Id`]).
    pub time: i64,
    /// Id of the last row seen.
    pub id: u64,
}

impl std::fmt::Display for Cursor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.order {
            Order::Id => write!(f, "id:{}", self.id),
            Order::Recent => write!(f, "recent:{}:{}", self.time, self.id),
        }
    }
}

impl std::str::FromStr for Cursor {
    type Err = Error;
    fn from_str(s: &str) -> Result<Cursor> {
        let bad = || Error::invalid("cursor", format!("{s:?} is not a cursor of this store"));
        let parts: Vec<&str> = s.split(':').collect();
        match parts.as_slice() {
            ["id", id] => Ok(Cursor {
                order: Order::Id,
                time: 0,
                id: id.parse().map_err(|_| bad())?,
            }),
            ["recent", t, id] => Ok(Cursor {
                order: Order::Recent,
                time: t.parse().map_err(|_| bad())?,
                id: id.parse().map_err(|_| bad())?,
            }),
            _ => Err(bad()),
        }
    }
}

/// Page and page size as the paginator resolves them (CONTRACT §2).
pub fn resolve_paging(page: Option<i64>, pagesize: Option<i64>) -> (u64, u64) {
    let page = match page {
        Some(p) if p >= 1 => p as u64,
        _ => 1,
    };
    let pagesize = match pagesize {
        Some(n) if n >= 1 => (n as u64).min(limits::MAX_PAGESIZE),
        _ => 10,
    };
    (page, pagesize)
}

/// Rows of a page of a session's messages when none (or 0) is asked for.
pub const MESSAGES_PAGESIZE: u64 = 20;

/// A history-list request in typed form.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryQuery {
    /// The tenant.
    pub tenant: u64,
    /// Only this agent's sessions (0 = unassigned sessions).
    pub employee: Option<u64>,
    /// Member nickname or mobile filter; absent or empty = no filter.
    pub user_name: Option<String>,
    /// 1-based page (see [`resolve_paging`]).
    pub page: u64,
    /// Rows per page.
    pub pagesize: u64,
    /// Order of the rows.
    pub order: Order,
    /// Keyset pagination: rows after this cursor (then `page` is ignored).
    pub after: Option<Cursor>,
}

impl HistoryQuery {
    /// Page 1 of 10, order `id`, no filter.
    pub fn new(tenant: u64) -> HistoryQuery {
        HistoryQuery {
            tenant,
            employee: None,
            user_name: None,
            page: 1,
            pagesize: 10,
            order: Order::Id,
            after: None,
        }
    }
}

/// One page of sessions.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct HistoryPage {
    /// All matching sessions.
    pub total: u64,
    /// Rows per page.
    pub per_page: u64,
    /// The page number (never clamped).
    pub current_page: u64,
    /// The rows.
    pub rows: Vec<SessionView>,
    /// Where the next page starts, when this page was full.
    pub next_cursor: Option<Cursor>,
}

/// One page of a session's messages, newest first. Serializes as
/// `{"total","page","pagesize","data":[message records]}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessagesPage {
    /// Messages in the session.
    pub total: u64,
    /// The page number.
    pub page: u64,
    /// Rows per page.
    pub pagesize: u64,
    /// The messages.
    #[serde(rename = "data")]
    pub messages: Vec<Message>,
}

/// An agent's live session list (see [`crate::Store::live_sessions`]): as
/// JSON, `{"total","page","pagesize","data":[SessionView...]}`; a row's
/// `read.unread_by_agent` is the platform's `un_read_num`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LivePage {
    /// The agent's sessions.
    pub total: u64,
    /// Page number (1-based).
    pub page: u64,
    /// Page size (clamped to 1..=100).
    pub pagesize: u64,
    /// The page, newest activity first, each with its last message.
    pub data: Vec<SessionView>,
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
struct Joins {
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
    pub fn get_member(&self, tenant: u64, uid: u64) -> Result<Option<Member>> {
        Ok(self.member_rec(tenant, uid)?.map(|r| r.member))
    }

    /// An agent by id.
    pub fn get_agent(&self, tenant: u64, id: u64) -> Result<Option<Agent>> {
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
    pub fn get_session(&self, tenant: u64, sid: u64) -> Result<Option<SessionView>> {
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

    /// One page of a tenant's sessions: the first seed's history-list and,
    /// with [`Order::Recent`], the second seed's conversations. Rows carry
    /// their last message.
    pub fn history_list(&self, q: &HistoryQuery) -> Result<HistoryPage> {
        self.history_page(q, true)
    }

    /// [`Store::history_list`], reading each row's last message only when
    /// `with_last` (the history-list endpoint does not show it).
    pub(crate) fn history_page(&self, q: &HistoryQuery, with_last: bool) -> Result<HistoryPage> {
        let pagesize = q.pagesize.clamp(1, limits::MAX_PAGESIZE);
        let page = q.page.max(1);
        let offset = if q.after.is_some() {
            0
        } else {
            (page - 1).saturating_mul(pagesize)
        };
        if let Some(c) = q.after {
            if c.order != q.order {
                return Err(Error::invalid("cursor", "belongs to the other order"));
            }
        }
        // The platform's `->when($user_name, ...)` tests PHP truthiness:
        // "" and "0" are no filter.
        let filter = q
            .user_name
            .as_deref()
            .filter(|s| !s.is_empty() && *s != "0");
        let (total, entries) = match filter {
            None => {
                let total = match q.employee {
                    None => self.counter(&keys::counter(q.tenant, Counter::Sessions))?,
                    Some(a) => self.counter(&keys::agent_sessions(q.tenant, a))?,
                };
                let entries = self.index_page(q, offset, pagesize)?;
                (total, entries)
            }
            Some(text) => {
                limits::query(text)?;
                match Query::parse(text) {
                    None => (0, Vec::new()),
                    Some(query) => {
                        let all = self.filtered(q, &query)?;
                        let total = all.len() as u64;
                        let after: Vec<(i64, u64)> = all
                            .into_iter()
                            .filter(|e| q.after.is_none_or(|c| before_cursor(q.order, *e, c)))
                            .collect();
                        let skip = offset.min(usize::MAX as u64) as usize;
                        let entries = page_of(q.order, after, skip, pagesize as usize);
                        (total, entries)
                    }
                }
            }
        };
        let mut joins = Joins::default();
        let mut rows = Vec::with_capacity(entries.len());
        for (_, sid) in &entries {
            if let Some(v) = self.view(q.tenant, *sid, &mut joins, with_last)? {
                rows.push(v);
            }
        }
        let next_cursor = if rows.len() as u64 == pagesize {
            rows.last().map(|v| Cursor {
                order: q.order,
                time: if q.order == Order::Recent {
                    v.activity_at
                } else {
                    0
                },
                id: v.session.id,
            })
        } else {
            None
        };
        Ok(HistoryPage {
            total,
            per_page: pagesize,
            current_page: page,
            rows,
            next_cursor,
        })
    }

    /// `(time, sid)` of the requested page, straight from an index.
    fn index_page(&self, q: &HistoryQuery, offset: u64, limit: u64) -> Result<Vec<(i64, u64)>> {
        let t = q.tenant;
        let (prefix, time_at) = match (q.order, q.employee) {
            (Order::Id, None) => (keys::Key::new(t, keys::SESSION), None),
            (Order::Id, Some(a)) => (keys::Key::new(t, keys::BY_AGENT).u64(a), None),
            (Order::Recent, None) => (keys::Key::new(t, keys::RECENT), Some(9)),
            (Order::Recent, Some(a)) => (keys::Key::new(t, keys::AGENT_RECENT).u64(a), Some(17)),
        };
        // Keys are stored newest first: the page is a forward scan, starting
        // after the cursor's own key when there is one.
        let start = match q.after {
            None => Bound::Included(prefix.as_ref().to_vec()),
            Some(c) if q.order == Order::Id => {
                Bound::Excluded(prefix.clone().desc(c.id).into_vec())
            }
            Some(c) => Bound::Excluded(prefix.clone().time_desc(c.time).desc(c.id).into_vec()),
        };
        let end = match keys::prefix_end(prefix.as_ref()) {
            Some(e) => Bound::Excluded(e),
            None => Bound::Unbounded,
        };
        let mut out = Vec::with_capacity(limit as usize);
        for k in self
            .data
            .range(
                start.as_ref().map(Vec::as_slice),
                end.as_ref().map(Vec::as_slice),
            )
            .map(|r| r.map(|e| e.0))
            .skip(offset.min(usize::MAX as u64) as usize)
            .take(limit as usize)
        {
            let k = k?;
            let time = time_at.map_or(0, |at| keys::time_desc_at(&k, at));
            out.push((time, keys::last_desc(&k)));
        }
        Ok(out)
    }

    /// Every `(time, sid)` in scope whose member matches, in no order.
    ///
    /// Three plans, priced in sequential key reads (a seek or a member
    /// test costs about ten): with `E` the postings of the query's rarest
    /// grams and `S` the sessions in scope, the **index** (each matching
    /// member's sessions, a seek each: `10 E`) when `E < S / 9`; the
    /// **join** (the postings read into a set, then the scope's sessions
    /// walked and looked up in it: `E + S`) up to `E <= 9 S`; past that the
    /// **walk** (the scope's sessions, each member tested once: `10 S`).
    fn filtered(&self, q: &HistoryQuery, query: &Query) -> Result<Vec<(i64, u64)>> {
        let t = q.tenant;
        let scope = match q.employee {
            None => self.counter(&keys::counter(t, Counter::Sessions))?,
            Some(a) => self.counter(&keys::agent_sessions(t, a))?,
        };
        let mut out = Vec::new();
        let picks = self.picks(t, query)?;
        let join = match picks {
            Some(p) if p.estimate.saturating_mul(9) < scope => {
                for uid in self.pick_members(t, query, &p)? {
                    for item in self.data.scan_prefix(keys::sessions_of_member(t, uid)) {
                        let (k, v) = item?;
                        if v.len() != 16 {
                            return Err(Error::corrupt("member session index value"));
                        }
                        let agent = keys::u64_at(&v, 0);
                        if q.employee.is_some_and(|a| a != agent) {
                            continue;
                        }
                        out.push((
                            keys::time_from_bits(keys::u64_at(&v, 8)),
                            keys::last_u64(&k),
                        ));
                    }
                }
                return Ok(out);
            }
            Some(p) if p.estimate <= scope.saturating_mul(9) => Some(self.pick_set(t, &p)?),
            _ => None,
        };
        // Walk the scope's sessions and test each member once (in the
        // join, only members the postings name; those of an exact gram
        // match without a test).
        let prefix = match q.employee {
            None => keys::Key::new(t, keys::RECENT),
            Some(a) => keys::Key::new(t, keys::AGENT_RECENT).u64(a),
        };
        let time_at = prefix.as_ref().len();
        let mut tested: HashMap<u64, bool> = HashMap::new();
        for item in self.data.scan_prefix(prefix) {
            let (k, v) = item?;
            let uid = codec::decode_u64(Some(&v))?;
            let known = match &join {
                None => None,
                Some(set) => match set.get(&uid) {
                    None => Some(false),
                    Some(true) => Some(true),
                    Some(false) => None,
                },
            };
            let hit = match known.or_else(|| tested.get(&uid).copied()) {
                Some(h) => h,
                None => {
                    let h = self
                        .member_rec(t, uid)?
                        .is_some_and(|m| query.matches(&m.norm_nick, &m.phones));
                    tested.insert(uid, h);
                    h
                }
            };
            if hit {
                out.push((keys::time_desc_at(&k, time_at), keys::last_desc(&k)));
            }
        }
        Ok(out)
    }

    /// The postings a member filter reads: per side (the nickname, each
    /// mobile form) its rarest gram. `None` when the query is too short for
    /// the index.
    fn picks(&self, t: u64, query: &Query) -> Result<Option<Picks>> {
        let Some(nick) = query.nick_grams(self.short_grams) else {
            return Ok(None);
        };
        let Some(phones) = query.phone_grams(self.short_grams) else {
            return Ok(None);
        };
        // Each side: the rarest gram's postings hold every match of that side.
        // When the side's only gram is the side's whole query (a 3-character
        // query, one or two CJK characters, a 3-digit phone query), every
        // posting is a match and needs no verification.
        let mut picks = Picks::default();
        let sides = std::iter::once((Field::Nick, nick, query.norm.as_str())).chain(
            phones
                .into_iter()
                .zip(&query.phones)
                .map(|(g, p)| (Field::Mobile, g, p.as_str())),
        );
        for (field, grams, side_query) in sides {
            let exact = grams.len() == 1 && grams[0] == side_query;
            let mut best: Option<(u64, String)> = None;
            for g in grams {
                let n = self.counter(&keys::gram_count(t, field, &g))?;
                if best.as_ref().is_none_or(|(bn, _)| n < *bn) {
                    best = Some((n, g));
                }
            }
            if let Some((n, g)) = best {
                picks.estimate += n;
                picks.picks.push((exact, field, g));
            }
        }
        // Exact picks first: their members are matches whatever other
        // postings they also appear in.
        picks.picks.sort_by_key(|p| !p.0);
        Ok(Some(picks))
    }

    /// The uids the picks' postings name, each with whether it is known to
    /// match (named by an exact gram) or still to be tested.
    fn pick_set(&self, t: u64, picks: &Picks) -> Result<HashMap<u64, bool>> {
        let mut set: HashMap<u64, bool> = HashMap::with_capacity(picks.estimate as usize);
        for (exact, field, g) in &picks.picks {
            for k in self
                .data
                .scan_prefix(keys::gram_prefix(t, *field, g))
                .map(|r| r.map(|e| e.0))
            {
                *set.entry(keys::last_u64(&k?)).or_default() |= *exact;
            }
        }
        Ok(set)
    }

    /// The uids of the members the picks' postings name that match.
    fn pick_members(&self, t: u64, query: &Query, picks: &Picks) -> Result<Vec<u64>> {
        // One pick names each member once.
        let single = picks.picks.len() == 1;
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        for (exact, field, g) in &picks.picks {
            for k in self
                .data
                .scan_prefix(keys::gram_prefix(t, *field, g))
                .map(|r| r.map(|e| e.0))
            {
                let uid = keys::last_u64(&k?);
                if !single && !seen.insert(uid) {
                    continue;
                }
                if *exact {
                    out.push(uid);
                } else if let Some(m) = self.member_rec(t, uid)? {
                    if query.matches(&m.norm_nick, &m.phones) {
                        out.push(uid);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The uids of matching members found through the n-gram index, verified;
    /// `None` when walking `scope` records is cheaper or the query is too
    /// short for the index.
    fn candidates(&self, t: u64, query: &Query, scope: u64) -> Result<Option<Vec<u64>>> {
        match self.picks(t, query)? {
            Some(p) if p.estimate <= scope => Ok(Some(self.pick_members(t, query, &p)?)),
            _ => Ok(None),
        }
    }

    /// Members of a tenant whose nickname or mobile matches `q` (CONTRACT §4),
    /// by uid. An empty query or one that normalizes to nothing finds nobody.
    pub fn search_members(&self, tenant: u64, q: &str) -> Result<Vec<Member>> {
        limits::query(q)?;
        let Some(query) = Query::parse(q) else {
            return Ok(Vec::new());
        };
        let members = self.counter(&keys::counter(tenant, Counter::Members))?;
        let mut out = Vec::new();
        match self.candidates(tenant, &query, members)? {
            Some(uids) => {
                for uid in uids {
                    if let Some(m) = self.member_rec(tenant, uid)? {
                        out.push(m.member);
                    }
                }
                out.sort_by_key(|m| m.uid);
            }
            None => {
                for v in self
                    .data
                    .scan_prefix(keys::Key::new(tenant, keys::MEMBER))
                    .map(|r| r.map(|e| e.1))
                {
                    let m: MemberRec = codec::decode(&v?, "member")?;
                    if query.matches(&m.norm_nick, &m.phones) {
                        out.push(m.member);
                    }
                }
            }
        }
        Ok(out)
    }

    /// A session's messages, newest (greatest id) first.
    pub fn messages(
        &self,
        tenant: u64,
        session_id: u64,
        page: u64,
        pagesize: u64,
    ) -> Result<MessagesPage> {
        let page = page.max(1);
        // 0 is the default, as history-list's paging treats it.
        let pagesize = match pagesize {
            0 => MESSAGES_PAGESIZE,
            n => n.min(limits::MAX_PAGESIZE),
        };
        let Some(rec) = self.session_rec(tenant, session_id)? else {
            return Err(Error::not_found(format!(
                "session {session_id} of tenant {tenant}"
            )));
        };
        let mut messages = Vec::new();
        for item in self
            .data
            .scan_prefix(keys::messages_of(tenant, session_id))
            .skip((page - 1).saturating_mul(pagesize).min(usize::MAX as u64) as usize)
            .take(pagesize as usize)
        {
            let (k, v) = item?;
            let body: MsgBody = codec::decode(&v, "message")?;
            messages.push(body.to_message(tenant, session_id, keys::last_desc(&k)));
        }
        Ok(MessagesPage {
            total: rec.msg_count,
            page,
            pagesize,
            messages,
        })
    }

    /// The counters of one tenant.
    pub fn tenant_stats(&self, tenant: u64) -> Result<TenantStats> {
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
    pub fn tenants(&self) -> Result<Vec<u64>> {
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

fn before_cursor(order: Order, e: (i64, u64), c: Cursor) -> bool {
    match order {
        Order::Id => e.1 < c.id,
        Order::Recent => (e.0, e.1) < (c.time, c.id),
    }
}

/// A search inside message text (see [`crate::Store::search_messages`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageSearch {
    /// The tenant.
    pub tenant: u64,
    /// The text to find (normalized as nicknames are: case, width and
    /// diacritics do not matter).
    pub q: String,
    /// Only this session's messages.
    #[serde(default)]
    pub session_id: Option<u64>,
    /// Only messages of sessions now assigned to this agent.
    #[serde(default)]
    pub agent_id: Option<u64>,
    /// Page (1-based; below 1 is 1).
    #[serde(default = "one")]
    pub page: u64,
    /// Page size (1 to 100, default 20).
    #[serde(default = "twenty")]
    pub pagesize: u64,
}

fn one() -> u64 {
    1
}

fn twenty() -> u64 {
    20
}

impl MessageSearch {
    /// A search of a tenant's messages for `q`, page 1 of 20.
    pub fn new(tenant: u64, q: impl Into<String>) -> MessageSearch {
        MessageSearch {
            tenant,
            q: q.into(),
            session_id: None,
            agent_id: None,
            page: 1,
            pagesize: 20,
        }
    }
}

/// Messages found by a search, newest first, with the exact total.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessageHits {
    /// Every matching message, not just this page.
    pub total: u64,
    /// Page number.
    pub page: u64,
    /// Page size.
    pub pagesize: u64,
    /// The page.
    #[serde(rename = "data")]
    pub messages: Vec<Message>,
}

/// The most distinct grams a message-text query may have to be verified
/// from the postings' offsets rather than by reading each candidate.
const POSITIONAL_GRAMS: usize = 6;

impl Snap<'_> {
    /// Searches message text: the postings of the query's rarest gram, newest
    /// first, each candidate verified against the normalized text (so the
    /// answer is exact) and filtered by session or agent. Costs the rarest
    /// gram's postings (its count is kept), not the tenant's messages. A
    /// query too short for the index (one CJK character, fewer than three
    /// others) is refused unless narrowed to a session, whose messages are
    /// then read; so is any query on a store created without the text index
    /// ([`Error::Conflict`] when not narrowed to a session).
    pub fn search_messages(&self, s: &MessageSearch) -> Result<MessageHits> {
        limits::message_query(&s.q)?;
        let (page, pagesize) = (s.page.max(1), s.pagesize.clamp(1, limits::MAX_PAGESIZE));
        let norm = search::normalize(s.q.trim());
        let query = search::message_gram_positions(&norm);
        let mut hits = MessageHits {
            total: 0,
            page,
            pagesize,
            messages: Vec::new(),
        };
        if norm.is_empty() {
            return Ok(hits);
        }
        let skip = (page - 1).saturating_mul(pagesize);
        let mut agents: HashMap<u64, Option<u64>> = HashMap::new();
        // Counts (and pages) a match. `value` is the message's stored value
        // when the caller has it, and then it is verified first, in place
        // (only the page's messages are decoded whole); without it the match
        // was verified from the postings and a page row reads the message.
        let mut accept = |sid: u64, mid: u64, value: Option<&[u8]>| -> Result<()> {
            if let Some(value) = value {
                let body: MsgBodyRef<'_> = codec::decode_borrowed(value, "message")?;
                if body.recalled() || !search::normalized(body.content).contains(norm.as_str()) {
                    return Ok(());
                }
            }
            if let Some(agent) = s.agent_id {
                if let std::collections::hash_map::Entry::Vacant(e) = agents.entry(sid) {
                    e.insert(self.session_rec(s.tenant, sid)?.map(|r| r.session.agent_id));
                }
                if agents[&sid] != Some(agent) {
                    return Ok(());
                }
            }
            if hits.total >= skip && (hits.messages.len() as u64) < pagesize {
                let body: MsgBody = match value {
                    Some(v) => codec::decode(v, "message")?,
                    None => match self.data.get(keys::message(s.tenant, sid, mid))? {
                        Some(v) => codec::decode(&v, "message")?,
                        None => {
                            return Err(Error::corrupt(format!(
                                "text posting names message {mid} of session {sid}, which is not visible"
                            )))
                        }
                    },
                };
                hits.messages.push(body.to_message(s.tenant, sid, mid));
            }
            hits.total += 1;
            Ok(())
        };
        // Without postings to use (a query shorter than a gram, or a store
        // created without the text index), only one session is searched:
        // its messages are read.
        if query.is_empty() || !self.text_index {
            let Some(sid) = s.session_id else {
                if !self.text_index {
                    return Err(Error::Conflict {
                        reason: "this store was created without the message-text index \
                                 (text_index false): search a session (session_id), or \
                                 export and import into a store with the index"
                            .into(),
                    });
                }
                return Err(Error::invalid(
                    "q",
                    "too short to search a tenant's messages: give at least 2 Chinese, \
                     Japanese or Korean characters or 3 other characters, or a session_id",
                ));
            };
            for item in self.data.scan_prefix(keys::messages_of(s.tenant, sid)) {
                let (k, v) = item?;
                accept(sid, keys::last_desc(&k), Some(&v))?;
            }
            return Ok(hits);
        }
        // A query that is one whole gram is found by its postings alone:
        // with no scope its total is the gram's (its first block holds it)
        // and a page reads only the page's messages.
        let pending = Pending::load(&self.data, s.tenant, query.iter().map(|(g, _)| g.as_str()))?;
        if query.len() == 1 && query[0].0 == norm && s.session_id.is_none() && s.agent_id.is_none()
        {
            hits.total =
                postings::total(&self.data, s.tenant, &query[0].0)? + pending.count(&query[0].0);
            for p in Postings::new(&self.data, s.tenant, &query[0].0, skip, &pending)
                .take(pagesize as usize)
            {
                let p = p?;
                if let Some(v) = self.data.get(keys::message(s.tenant, p.sid, p.mid))? {
                    let body: MsgBody = codec::decode(&v, "message")?;
                    hits.messages.push(body.to_message(s.tenant, p.sid, p.mid));
                }
            }
            return Ok(hits);
        }
        // The rarest gram's postings, merged with those of every other gram
        // whose list is at most 8 times longer: postings share one order
        // (newest id first, then session), so a candidate missing from
        // another list costs a step of that list, not a read. When the
        // query's grams cover it, a candidate is then verified from the gram
        // offsets the postings hold (the other grams' postings found by a
        // seek), without reading the message; otherwise the message is read.
        // Repeated grams count once (`message_gram_positions` merges them),
        // and verifying from offsets is for queries of a few grams
        // (`POSITIONAL_GRAMS`): a longer one would seek a block per gram
        // per candidate, where reading the candidate is one get.
        let positional = query.len() <= POSITIONAL_GRAMS && search::grams_cover(&norm, &query);
        let mut counted = query
            .iter()
            .enumerate()
            .map(|(i, (g, _))| {
                Ok((
                    postings::total(&self.data, s.tenant, g)? + pending.count(g),
                    i,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        counted.sort();
        let (rarest_count, rarest) = counted[0];
        let mut merged: Vec<_> = counted[1..]
            .iter()
            .filter(|(n, _)| *n <= rarest_count.saturating_mul(8))
            .map(|&(_, i)| {
                (
                    i,
                    Postings::new(&self.data, s.tenant, &query[i].0, 0, &pending).peekable(),
                )
            })
            .collect();
        let mut at: Vec<Option<Vec<u32>>> = vec![None; query.len()];
        'candidates: for p in Postings::new(&self.data, s.tenant, &query[rarest].0, 0, &pending) {
            let p = p?;
            let (mid, sid) = (p.mid, p.sid);
            if s.session_id.is_some_and(|want| want != sid) {
                continue;
            }
            let place = postings::order(mid, sid);
            at.iter_mut().for_each(|a| *a = None);
            at[rarest] = Some(p.offsets);
            for (i, list) in &mut merged {
                loop {
                    let order = match list.peek() {
                        // That gram's postings ended: no later candidate has it.
                        None => break 'candidates,
                        Some(Ok(q)) => postings::order(q.mid, q.sid).cmp(&place),
                        Some(Err(_)) => match list.next() {
                            Some(Err(e)) => return Err(e),
                            _ => unreachable!("peeked an error"),
                        },
                    };
                    match order {
                        std::cmp::Ordering::Less => {
                            list.next();
                        }
                        std::cmp::Ordering::Equal => {
                            at[*i] = list
                                .peek()
                                .and_then(|q| q.as_ref().ok())
                                .map(|q| q.offsets.clone());
                            break;
                        }
                        std::cmp::Ordering::Greater => continue 'candidates,
                    }
                }
            }
            if positional {
                for (i, a) in at.iter_mut().enumerate() {
                    if a.is_none() {
                        match postings::find(&self.data, s.tenant, &query[i].0, mid, sid, &pending)?
                        {
                            Some(q) => *a = Some(q.offsets),
                            None => continue 'candidates,
                        }
                    }
                }
                let offsets: Vec<&[u32]> = at
                    .iter()
                    .map(|a| a.as_deref().unwrap_or_default())
                    .collect();
                if search::holds_query(&query, &offsets) {
                    accept(sid, mid, None)?;
                }
                continue;
            }
            // Postings name visible messages only (check() verifies it).
            if let Some(v) = self.data.get(keys::message(s.tenant, sid, mid))? {
                accept(sid, mid, Some(&v))?;
            }
        }
        Ok(hits)
    }
}

/// What a member filter reads from the n-gram index (see `Snap::picks`).
#[derive(Debug, Default)]
struct Picks {
    /// Per side: whether its gram is the side's whole query, the field, the
    /// gram.
    picks: Vec<(bool, Field, String)>,
    /// The postings of the picked grams.
    estimate: u64,
}

/// Sessions `(time, sid)` `skip..skip + take` in the order (newest id, or
/// newest activity, first): only the head up to the page is sorted.
fn page_of(order: Order, mut all: Vec<(i64, u64)>, skip: usize, take: usize) -> Vec<(i64, u64)> {
    let cmp = |a: &(i64, u64), b: &(i64, u64)| match order {
        Order::Id => b.1.cmp(&a.1),
        Order::Recent => b.cmp(a),
    };
    let end = skip.saturating_add(take);
    if end < all.len() {
        all.select_nth_unstable_by(end, cmp);
        all.truncate(end);
    }
    all.sort_unstable_by(cmp);
    all.into_iter().skip(skip).take(take).collect()
}
