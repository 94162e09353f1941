//! Search inside message text: the postings of the query's grams
//! intersected in id order, newest first, with the exact total (ARCHITECTURE.md,
//! "Search inside message text").

use std::collections::HashMap;

use super::Snap;
use crate::codec::{self, MsgBody, MsgBodyRef};
use crate::error::{Error, Result};
use crate::keys::{self};
use crate::limits;
use crate::model::Message;
use crate::text::postings::{self, Pending, Postings};
use crate::text::search::{self};

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
    pub(crate) fn search_messages(&self, s: &MessageSearch) -> Result<MessageHits> {
        limits::message_query(&s.q)?;
        let (page, pagesize) = (s.page.max(1), s.pagesize.clamp(1, limits::MAX_PAGESIZE));
        let norm = search::normalize(s.q.trim());
        let query = search::message_gram_positions(&norm);
        let mut hits = Hits::new(self, s, &norm, page, pagesize);
        match Plan::choose(self, s, &norm, &query)? {
            Plan::Nothing => {}
            Plan::Session(sid) => {
                for item in self.data.scan_prefix(keys::messages_of(s.tenant, sid)) {
                    let (k, v) = item?;
                    hits.accept(sid, keys::last_desc(&k), Some(&v))?;
                }
            }
            Plan::WholeGram => {
                let pending = Pending::load(&self.data, s.tenant, [query[0].0.as_str()])?;
                self.whole_gram(s.tenant, &query[0].0, &pending, &mut hits)?;
            }
            Plan::Merge { positional } => {
                let pending =
                    Pending::load(&self.data, s.tenant, query.iter().map(|(g, _)| g.as_str()))?;
                self.merge(s, &query, positional, &pending, &mut hits)?;
            }
        }
        Ok(hits.done)
    }

    /// [`Plan::WholeGram`]: the total is the gram's (its first block holds
    /// it, plus the pending list's), and a page reads only its messages.
    fn whole_gram(
        &self,
        tenant: u64,
        gram: &str,
        pending: &Pending,
        hits: &mut Hits<'_, '_>,
    ) -> Result<()> {
        hits.done.total = postings::total(&self.data, tenant, gram)? + pending.count(gram);
        for p in Postings::new(&self.data, tenant, gram, hits.skip, pending)
            .take(hits.done.pagesize as usize)
        {
            let p = p?;
            if let Some(v) = self.data.get(keys::message(tenant, p.sid, p.mid))? {
                let body: MsgBody = codec::decode(&v, "message")?;
                hits.done
                    .messages
                    .push(body.to_message(tenant, p.sid, p.mid));
            }
        }
        Ok(())
    }

    /// [`Plan::Merge`]: the rarest gram's postings, merged with those of
    /// every other gram whose list is at most 8 times longer: postings
    /// share one order (newest id first, then session), so a candidate
    /// missing from another list costs a step of that list, not a read.
    /// When `positional`, a candidate is verified from the gram offsets the
    /// postings hold (the other grams' postings found by a seek), without
    /// reading the message; otherwise the message is read.
    fn merge(
        &self,
        s: &MessageSearch,
        query: &[(String, Vec<u32>)],
        positional: bool,
        pending: &Pending,
        hits: &mut Hits<'_, '_>,
    ) -> Result<()> {
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
                    Postings::new(&self.data, s.tenant, &query[i].0, 0, pending).peekable(),
                )
            })
            .collect();
        let mut at: Vec<Option<Vec<u32>>> = vec![None; query.len()];
        'candidates: for p in Postings::new(&self.data, s.tenant, &query[rarest].0, 0, pending) {
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
                        match postings::find(&self.data, s.tenant, &query[i].0, mid, sid, pending)?
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
                if search::holds_query(query, &offsets) {
                    hits.accept(sid, mid, None)?;
                }
                continue;
            }
            // Postings name visible messages only (check() verifies it).
            if let Some(v) = self.data.get(keys::message(s.tenant, sid, mid))? {
                hits.accept(sid, mid, Some(&v))?;
            }
        }
        Ok(())
    }
}

/// How a message search is answered, chosen from the query and the store.
#[derive(Debug, PartialEq, Eq)]
enum Plan {
    /// The query normalizes to nothing: no hit.
    Nothing,
    /// Read one session's messages (a query shorter than a gram, or a store
    /// created without the text index: only a session can be searched).
    Session(u64),
    /// A query that is one whole gram, with no session or agent scope:
    /// found by its postings alone.
    WholeGram,
    /// Merge the grams' postings (see `Snap::merge`); `positional` when
    /// the query's grams cover it and are few enough (`POSITIONAL_GRAMS`)
    /// to verify candidates from their offsets.
    Merge {
        /// Verify from the postings' offsets, not by reading messages.
        positional: bool,
    },
}

impl Plan {
    fn choose(
        snap: &Snap<'_>,
        s: &MessageSearch,
        norm: &str,
        query: &[(String, Vec<u32>)],
    ) -> Result<Plan> {
        if norm.is_empty() {
            return Ok(Plan::Nothing);
        }
        if query.is_empty() || !snap.text_index {
            return match s.session_id {
                Some(sid) => Ok(Plan::Session(sid)),
                None if !snap.text_index => Err(Error::Conflict {
                    reason: "this store was created without the message-text index \
                             (text_index false): search a session (session_id), or \
                             export and import into a store with the index"
                        .into(),
                }),
                None => Err(Error::invalid(
                    "q",
                    "too short to search a tenant's messages: give at least 2 Chinese, \
                     Japanese or Korean characters or 3 other characters, or a session_id",
                )),
            };
        }
        if query.len() == 1 && query[0].0 == norm && s.session_id.is_none() && s.agent_id.is_none()
        {
            return Ok(Plan::WholeGram);
        }
        // Repeated grams count once (`message_gram_positions` merges them),
        // and verifying from offsets is for queries of a few grams: a
        // longer one would seek a block per gram per candidate, where
        // reading the candidate is one get.
        Ok(Plan::Merge {
            positional: query.len() <= POSITIONAL_GRAMS && search::grams_cover(norm, query),
        })
    }
}

/// The page being filled and the total being counted.
struct Hits<'a, 's> {
    snap: &'a Snap<'s>,
    search: &'a MessageSearch,
    norm: &'a str,
    /// Matches before the page.
    skip: u64,
    /// The agent of each session met (for an agent scope).
    agents: HashMap<u64, Option<u64>>,
    done: MessageHits,
}

impl<'a, 's> Hits<'a, 's> {
    fn new(
        snap: &'a Snap<'s>,
        search: &'a MessageSearch,
        norm: &'a str,
        page: u64,
        pagesize: u64,
    ) -> Self {
        Hits {
            snap,
            search,
            norm,
            skip: (page - 1).saturating_mul(pagesize),
            agents: HashMap::new(),
            done: MessageHits {
                total: 0,
                page,
                pagesize,
                messages: Vec::new(),
            },
        }
    }

    /// Counts (and pages) a match. `value` is the message's stored value
    /// when the caller has it, and then it is verified first, in place
    /// (only the page's messages are decoded whole); without it the match
    /// was verified from the postings and a page row reads the message.
    fn accept(&mut self, sid: u64, mid: u64, value: Option<&[u8]>) -> Result<()> {
        let (snap, s) = (self.snap, self.search);
        if let Some(value) = value {
            let body: MsgBodyRef<'_> = codec::decode_borrowed(value, "message")?;
            if body.recalled() || !search::normalized(body.content).contains(self.norm) {
                return Ok(());
            }
        }
        if let Some(agent) = s.agent_id {
            if let std::collections::hash_map::Entry::Vacant(e) = self.agents.entry(sid) {
                e.insert(snap.session_rec(s.tenant, sid)?.map(|r| r.session.agent_id));
            }
            if self.agents[&sid] != Some(agent) {
                return Ok(());
            }
        }
        let hits = &mut self.done;
        if hits.total >= self.skip && (hits.messages.len() as u64) < hits.pagesize {
            let body: MsgBody = match value {
                Some(v) => codec::decode(v, "message")?,
                None => match snap.data.get(keys::message(s.tenant, sid, mid))? {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{engine, member, message, session};

    fn plan(text_index: bool, q: &str, session_id: Option<u64>) -> Result<Plan> {
        let e = crate::engine::Engine::in_memory(crate::options::Options {
            text_index,
            ..Default::default()
        });
        let mut s = MessageSearch::new(2, q);
        s.session_id = session_id;
        let norm = search::normalize(q.trim());
        let query = search::message_gram_positions(&norm);
        e.read(|snap| Plan::choose(snap, &s, &norm, &query))
    }

    #[test]
    fn the_plan_follows_the_query_and_the_store() {
        assert_eq!(plan(true, "  ", None).unwrap(), Plan::Nothing);
        assert_eq!(plan(true, "订单", None).unwrap(), Plan::WholeGram);
        assert_eq!(
            plan(true, "订单", Some(4)).unwrap(),
            Plan::Merge { positional: true }
        );
        assert_eq!(
            plan(true, "订单已发货", None).unwrap(),
            Plan::Merge { positional: true }
        );
        // One CJK character is shorter than a gram: a session only.
        assert_eq!(plan(true, "订", Some(4)).unwrap(), Plan::Session(4));
        assert_eq!(
            plan(true, "订", None).unwrap_err().kind(),
            crate::ErrorKind::InvalidInput
        );
        // Without the index every query reads a session.
        assert_eq!(plan(false, "订单", Some(4)).unwrap(), Plan::Session(4));
        assert_eq!(
            plan(false, "订单", None).unwrap_err().kind(),
            crate::ErrorKind::Conflict
        );
    }

    #[test]
    fn every_plan_finds_what_a_scan_finds() {
        let e = engine();
        member(&e, 2, 1, "n", "");
        let a = session(&e, 2, 0, 1, 0);
        let b = session(&e, 2, 0, 1, 0);
        let texts = ["订单已发货", "您的订单", "订单 12345", "hello order", "订"];
        for (i, t) in texts.iter().enumerate() {
            message(&e, 2, if i % 2 == 0 { a } else { b }, t, i as i64);
        }
        for (q, scope) in [
            ("订单", None),
            ("订单", Some(a)),
            ("订单已", None),
            ("order", None),
            ("订", Some(a)),
        ] {
            let mut s = MessageSearch::new(2, q);
            s.session_id = scope;
            let hits = e.search_messages(&s).unwrap();
            let want = texts
                .iter()
                .enumerate()
                .filter(|(i, t)| {
                    t.contains(q) && scope.is_none_or(|sid| sid == if i % 2 == 0 { a } else { b })
                })
                .count() as u64;
            assert_eq!(hits.total, want, "{q} in {scope:?}");
            assert!(hits.messages.iter().all(|m| m.content.contains(q)));
        }
    }
}
