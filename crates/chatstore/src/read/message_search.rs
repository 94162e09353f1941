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
