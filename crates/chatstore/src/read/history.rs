//! History-list and hischat's conversations: an agent's or a tenant's
//! sessions by id or by activity, paged by offset or cursor, filtered by a
//! member's nickname or mobile through the n-gram index (three plans by
//! cost: the index, a join, a walk).

use std::collections::{HashMap, HashSet};
use std::ops::Bound;

use super::{Joins, Snap};
use crate::codec::{self};
use crate::error::{Error, Result};
use crate::keys::{self, Counter, Field};
use crate::limits;
use crate::model::SessionView;
use crate::text::search::Query;

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

impl Snap<'_> {
    /// One page of a tenant's sessions: the first seed's history-list and,
    /// with [`Order::Recent`], the second seed's conversations. Rows carry
    /// their last message.
    pub(crate) fn history_list(&self, q: &HistoryQuery) -> Result<HistoryPage> {
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
        Ok(once_each(out))
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
                return Ok(once_each(out));
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
        Ok(once_each(out))
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
    pub(super) fn candidates(&self, t: u64, query: &Query, scope: u64) -> Result<Option<Vec<u64>>> {
        match self.picks(t, query)? {
            Some(p) if p.estimate <= scope => Ok(Some(self.pick_members(t, query, &p)?)),
            _ => Ok(None),
        }
    }
}

fn before_cursor(order: Order, e: (i64, u64), c: Cursor) -> bool {
    match order {
        Order::Id => e.1 < c.id,
        Order::Recent => (e.0, e.1) < (c.time, c.id),
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

/// Each session once, at its first entry. A sled scan is not a snapshot:
/// a session whose activity entry moved while the scan ran (re-created,
/// its activity written anew) can be met at both keys. (An LMDB read
/// transaction is a snapshot, where this keeps everything.)
fn once_each(mut found: Vec<(i64, u64)>) -> Vec<(i64, u64)> {
    let mut seen = HashSet::with_capacity(found.len());
    found.retain(|&(_, sid)| seen.insert(sid));
    found
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{engine, member, message, session};

    /// Six sessions of two members, activity in the reverse of id order.
    fn six() -> crate::engine::Engine {
        let e = engine();
        member(&e, 2, 1, "李小龙", "185 1669 0005");
        member(&e, 2, 2, "Lê Văn Đức", "0912 345 678");
        for i in 0..6u64 {
            let sid = session(&e, 2, 0, 1 + i % 2, 0);
            message(&e, 2, sid, "hi", 1_700_000_000 - i as i64);
        }
        e
    }

    /// The session ids of a page.
    fn ids(e: &crate::engine::Engine, q: &HistoryQuery) -> Vec<u64> {
        let page = e.history_list(q).unwrap();
        page.rows.iter().map(|r| r.session.id).collect()
    }

    #[test]
    fn pages_count_from_the_counters_newest_id_first() {
        let e = six();
        let mut q = HistoryQuery::new(2);
        q.pagesize = 4;
        assert_eq!(e.history_list(&q).unwrap().total, 6);
        assert_eq!(ids(&e, &q), [6, 5, 4, 3]);
        q.page = 2;
        assert_eq!(ids(&e, &q), [2, 1]);
        // By activity: session 1 was the latest.
        q.page = 1;
        q.order = Order::Recent;
        let first = e.history_list(&q).unwrap().rows[0].session.id;
        assert_eq!(first, 1);
    }

    #[test]
    fn a_cursor_walks_the_same_rows_as_the_pages() {
        let e = six();
        let mut q = HistoryQuery::new(2);
        q.pagesize = 4;
        let p1 = e.history_list(&q).unwrap();
        q.after = p1.next_cursor;
        let by_cursor = ids(&e, &q);
        q.after = None;
        q.page = 2;
        assert_eq!(by_cursor, ids(&e, &q));
    }

    #[test]
    fn member_filters_match_nicknames_and_mobiles() {
        let e = six();
        for (filter, uid) in [
            ("小龙", 1),
            ("1669", 1),
            ("Lê", 2),
            ("le van", 2),
            ("345 6", 2),
        ] {
            let mut q = HistoryQuery::new(2);
            q.user_name = Some(filter.into());
            let page = e.history_list(&q).unwrap();
            assert_eq!(page.total, 3, "{filter}");
            assert!(page.rows.iter().all(|r| r.session.uid == uid), "{filter}");
        }
        let mut q = HistoryQuery::new(2);
        q.user_name = Some("nobody".into());
        assert_eq!(e.history_list(&q).unwrap().total, 0);
    }
}
