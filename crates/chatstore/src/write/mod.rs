//! The write path: every logical write as one function over a [`Tx`], an
//! overlay of the data space that collects the write's inserts and removes
//! and serves its own reads, over the storage layer's write transaction.
//! The engine puts a finished overlay into that transaction and commits it
//! (atomic in every backend: readers never see part of it, a crash keeps
//! all of it or none); writers are serialized, so everything a write reads
//! is current. A write that fails leaves its overlay unapplied, so an
//! import batch can drop a refused record and keep the rest. The record,
//! every index entry, every counter and the session's denormalized message
//! state change together or not at all.
//!
//! Everything a write must undo (old n-grams, old index keys) is read from
//! the primary record, never found by scanning.
//!
//! Writes only through a `Tx` over the storage layer's write transaction:
//! it may not read outside it, render, or know of processes.

pub(crate) mod group;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ops::Bound;

use serde::{de::DeserializeOwned, Serialize};

use crate::codec::{self, AgentRec, MemberRec, MsgBody, SessionRec};
use crate::error::Error;
use crate::keys::{self, Counter, Field};
use crate::limits;
use crate::model::{Agent, Member, Message, Reader, Session};
use crate::storage::{ReadTxn, Space, Tree};
use crate::text::postings::{self, Posting};
use crate::text::search;

/// Result of a step of a write.
pub(crate) type TxResult<T> = Result<T, Error>;

fn fail<T>(e: Error) -> TxResult<T> {
    Err(e)
}

/// An overlay's writes, per space in key order: a value to put, or `None`
/// to delete.
pub(crate) type Writes = Vec<(Space, Vec<u8>, Option<Vec<u8>>)>;

/// The pending writes of one logical write (or one import batch) over the
/// write transaction.
pub(crate) struct Tx<'a> {
    txn: &'a dyn ReadTxn,
    /// Whether the store keeps the message-text index (fixed per store).
    text_index: bool,
    /// Whether nicknames and mobiles get grams of every length.
    short_grams: bool,
    /// The most bytes of pending text postings a tenant keeps.
    pending_bytes: usize,
    writes: RefCell<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
    /// Writes to the meta space (the store-wide records: pending
    /// cascades).
    meta: RefCell<BTreeMap<Vec<u8>, Option<Vec<u8>>>>,
    /// Message-text posting changes per tenant and message, put into the
    /// pending list or the grams' blocks once, when the write is done
    /// ([`Tx::into_writes`]).
    text: RefCell<BTreeMap<(u64, postings::Order), MsgText>>,
}

/// What one write did to a message's text postings.
#[derive(Debug, Default)]
struct MsgText {
    /// The grams of the postings the message had before this write, when
    /// the write removed them.
    removed: Option<Vec<String>>,
    /// The postings it has after this write (`None`: none, or unchanged
    /// when `removed` is `None` too).
    added: Option<postings::Entry>,
}

/// A pending entry as a flush sees it.
struct Slot {
    /// What its key holds now (decoded only when it moves into blocks).
    stored: Option<Vec<u8>>,
    /// What this write leaves in it, when it changed it (empty: removed).
    changed: Option<postings::Entry>,
}

impl Slot {
    /// Its bytes after this write.
    fn len(&self) -> usize {
        match (&self.changed, &self.stored) {
            (Some(e), _) if e.is_empty() => 0,
            (Some(e), _) => postings::entry_len(e),
            (None, Some(v)) => v.len(),
            (None, None) => 0,
        }
    }
}

impl<'a> Tx<'a> {
    /// An empty overlay; `text_index`: whether message writes maintain the
    /// message-text index (the store's choice, see `Options::text_index`).
    pub(crate) fn new(txn: &'a dyn ReadTxn, layout: keys::Layout) -> Tx<'a> {
        Tx {
            txn,
            text_index: layout.text_index,
            short_grams: layout.short_grams,
            pending_bytes: layout.pending_bytes,
            writes: RefCell::new(BTreeMap::new()),
            meta: RefCell::new(BTreeMap::new()),
            text: RefCell::new(BTreeMap::new()),
        }
    }

    /// The collected writes, in key order (LMDB inserts sorted keys
    /// fastest).
    pub(crate) fn into_writes(self) -> TxResult<Writes> {
        self.flush_text()?;
        let data = self.writes.into_inner().into_iter();
        let meta = self.meta.into_inner().into_iter();
        Ok(data
            .map(|(k, v)| (Space::Data, k, v))
            .chain(meta.map(|(k, v)| (Space::Meta, k, v)))
            .collect())
    }

    /// Puts the message-text posting changes in place, per tenant: a
    /// message already pending has its entry rewritten or removed; a
    /// message in blocks has its old postings removed from them; new
    /// postings join the pending list, unless the tenant's pending entries
    /// would then pass `Options::text_pending_bytes`: then all of them go
    /// into the blocks (see `postings.rs`, "The pending list").
    fn flush_text(&self) -> TxResult<()> {
        let text = std::mem::take(&mut *self.text.borrow_mut());
        let mut by_tenant: BTreeMap<u64, Vec<(postings::Order, MsgText)>> = BTreeMap::new();
        for ((t, o), m) in text {
            by_tenant.entry(t).or_default().push((o, m));
        }
        for (t, msgs) in by_tenant {
            let mut pending = self.pending_entries(t)?;
            // Hashed: an import batch files some 30 postings per message
            // here. Changes are pushed in order within each pass, sorted once
            // at the end (the last change of a message wins).
            let mut blocks: HashMap<String, Vec<(postings::Order, Option<Posting>)>> =
                HashMap::new();
            for (o, m) in msgs {
                if let Some(slot) = pending.get_mut(&o) {
                    slot.changed = Some(m.added.unwrap_or_default());
                    continue;
                }
                for g in m.removed.into_iter().flatten() {
                    blocks.entry(g).or_default().push((o, None));
                }
                if let Some(entry) = m.added.filter(|e| !e.is_empty()) {
                    let slot = Slot {
                        stored: None,
                        changed: Some(entry),
                    };
                    pending.insert(o, slot);
                }
            }
            // Summed only as far as the limit.
            let mut bytes = 0usize;
            for slot in pending.values() {
                bytes += slot.len();
                if bytes > self.pending_bytes {
                    break;
                }
            }
            let mut writes = self.writes.borrow_mut();
            for (o, slot) in pending {
                let key = keys::text_pending(t, !o.0, o.1).into_vec();
                let stored = slot.stored.is_some();
                if bytes > self.pending_bytes {
                    if stored {
                        writes.insert(key, None);
                    }
                    let entry = match (slot.changed, slot.stored) {
                        (Some(e), _) => e,
                        (None, Some(v)) => postings::decode_entry(&v, |_| true)?,
                        (None, None) => continue,
                    };
                    for (g, offsets) in entry {
                        let p = Posting {
                            mid: !o.0,
                            sid: o.1,
                            offsets,
                        };
                        blocks.entry(g).or_default().push((o, Some(p)));
                    }
                } else if let Some(e) = slot.changed {
                    if !e.is_empty() {
                        writes.insert(key, Some(postings::encode_entry(&e)));
                    } else if stored {
                        writes.insert(key, None);
                    }
                }
            }
            drop(writes);
            for (gram, mut list) in blocks {
                // Stable: of two changes to one message, the later stays last.
                list.sort_by_key(|(o, _)| *o);
                let mut changes: Vec<(postings::Order, Option<Posting>)> =
                    Vec::with_capacity(list.len());
                for (o, change) in list {
                    match changes.last_mut() {
                        Some(last) if last.0 == o => last.1 = change,
                        _ => changes.push((o, change)),
                    }
                }
                self.apply_to_blocks(t, &gram, changes.into_iter().collect())?;
            }
        }
        Ok(())
    }

    /// Tenant `t`'s pending entries (this write's included).
    fn pending_entries(&self, t: u64) -> TxResult<BTreeMap<postings::Order, Slot>> {
        let prefix = keys::text_pending_prefix(t);
        let end = keys::prefix_end(prefix.as_ref()).unwrap_or_default();
        let mut out = BTreeMap::new();
        let mut from = prefix.into_vec();
        loop {
            let page = self.range_entries(&from, &end, 64)?;
            let full = page.len() == 64;
            for (k, v) in page {
                let Some((mid, sid)) = keys::parse_text_pending(&k) else {
                    return Err(Error::corrupt("a pending text posting key of a wrong size"));
                };
                let slot = Slot {
                    stored: Some(v),
                    changed: None,
                };
                out.insert(postings::order(mid, sid), slot);
                from = k;
                from.push(0);
            }
            if !full {
                return Ok(out);
            }
        }
    }

    /// Puts one gram's posting changes into its blocks: the run of blocks
    /// from the one the first change falls in to the one the last falls in
    /// is read, merged and cut anew (`postings::apply`), and only blocks
    /// that changed are written.
    fn apply_to_blocks(&self, t: u64, gram: &str, changes: postings::Changes) -> TxResult<()> {
        let (Some((&lo, _)), Some((&hi, _))) =
            (changes.first_key_value(), changes.last_key_value())
        else {
            return Ok(());
        };
        let prefix = keys::text_block_prefix(t, gram);
        let end = keys::prefix_end(prefix.as_ref()).unwrap_or_default();
        let hi_key = keys::text_block(t, gram, !hi.0, hi.1).into_vec();
        let mut from = keys::text_block(t, gram, !lo.0, lo.1).into_vec();
        let mut run: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        let mut next = None;
        'read: loop {
            let page = self.range_entries(&from, &end, 16)?;
            let full = page.len() == 16;
            for (k, v) in page {
                let reached = run.last().is_some_and(|(last, _)| *last >= hi_key);
                if reached {
                    next = Some((k, v));
                    break 'read;
                }
                from = k.clone();
                from.push(0);
                run.push((k, v));
            }
            if !full {
                break;
            }
        }
        if run.is_empty() {
            // Older than every block: the gram's last block takes them.
            if let Some(last) = self.last_entry(prefix.as_ref(), &end)? {
                run.push(last);
            }
        }
        let first_block = self.range_entries(prefix.as_ref(), &end, 1)?.pop();
        let first = first_block.filter(|(k, _)| run.first().is_none_or(|(r, _)| r != k));
        let w = postings::apply(t, gram, &run, first.as_ref(), next.as_ref(), changes)?;
        let mut writes = self.writes.borrow_mut();
        for k in w.remove {
            writes.insert(k, None);
        }
        for (k, v) in w.put {
            writes.insert(k, Some(v));
        }
        Ok(())
    }

    /// The last entry of `[from, to)`, committed merged with pending. A
    /// forward walk of the range: only for a gram's postings older than
    /// every block (a message given an old id), and sled 0.34's backward
    /// iteration can panic after a crash recovery (seen in the crash suite).
    fn last_entry(&self, from: &[u8], to: &[u8]) -> TxResult<Option<(Vec<u8>, Vec<u8>)>> {
        let mut last = None;
        let mut at = from.to_vec();
        loop {
            let page = self.range_entries(&at, to, 64)?;
            let full = page.len() == 64;
            if let Some((k, v)) = page.into_iter().last() {
                at = k.clone();
                at.push(0);
                last = Some((k, v));
            }
            if !full {
                return Ok(last);
            }
        }
    }

    /// Whether the meta space holds `k` (pending writes included).
    fn meta_exists(&self, k: &[u8]) -> TxResult<bool> {
        if let Some(v) = self.meta.borrow().get(k) {
            return Ok(v.is_some());
        }
        Tree::new(self.txn, Space::Meta).contains_key(k)
    }
    /// Puts `k` -> `v` into the meta space.
    fn put_meta(&self, k: Vec<u8>, v: &[u8]) {
        self.meta.borrow_mut().insert(k, Some(v.to_vec()));
    }
    /// Removes `k` from the meta space.
    fn del_meta(&self, k: Vec<u8>) {
        self.meta.borrow_mut().insert(k, None);
    }

    /// The data space as committed before this overlay (what earlier
    /// writes of the same transaction left), for scans a write makes before
    /// it changes anything.
    pub(crate) fn data(&self) -> Tree<'a> {
        Tree::new(self.txn, Space::Data)
    }

    fn raw(&self, k: &[u8]) -> TxResult<Option<Vec<u8>>> {
        if let Some(v) = self.writes.borrow().get(k) {
            return Ok(v.clone());
        }
        Ok(self.data().get(k)?.map(|v| v.to_vec()))
    }
    fn exists(&self, k: impl AsRef<[u8]>) -> TxResult<bool> {
        let k = k.as_ref();
        if let Some(v) = self.writes.borrow().get(k) {
            return Ok(v.is_some());
        }
        self.data().contains_key(k)
    }
    fn get<T: DeserializeOwned>(&self, k: &keys::Key, what: &str) -> TxResult<Option<T>> {
        match self.raw(k.as_ref())? {
            None => Ok(None),
            Some(v) => codec::decode(&v, what).map(Some),
        }
    }
    /// At most `limit` (key, value) pairs from `[from, to)`, committed merged
    /// with pending, in key order.
    pub(crate) fn range_entries(
        &self,
        from: &[u8],
        to: &[u8],
        limit: usize,
    ) -> TxResult<Vec<(Vec<u8>, Vec<u8>)>> {
        let pending: BTreeMap<Vec<u8>, Option<Vec<u8>>> = self
            .writes
            .borrow()
            .range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut merged = BTreeMap::new();
        // Pending removes may hide committed keys: read past them.
        let hidden = pending.values().filter(|v| v.is_none()).count();
        for item in self
            .data()
            .range(Bound::Included(from), Bound::Excluded(to))
            .take(limit + hidden)
        {
            let (k, v) = item?;
            merged.insert(k.to_vec(), Some(v.to_vec()));
        }
        merged.extend(pending);
        Ok(merged
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .take(limit)
            .collect())
    }

    /// The values under keys in `[from, to)`, committed merged with pending
    /// (a pending write wins, a pending remove hides), in key order. Costs a
    /// range scan of the transaction and of the pending writes.
    pub(crate) fn range_values(&self, from: &[u8], to: &[u8]) -> TxResult<Vec<Vec<u8>>> {
        let mut merged: BTreeMap<Vec<u8>, Option<Vec<u8>>> = self
            .data()
            .range(Bound::Included(from), Bound::Excluded(to))
            .map(|item| item.map(|(k, v)| (k.to_vec(), Some(v.to_vec()))))
            .collect::<Result<_, _>>()?;
        for (k, v) in self
            .writes
            .borrow()
            .range::<[u8], _>((Bound::Included(from), Bound::Excluded(to)))
        {
            merged.insert(k.clone(), v.clone());
        }
        Ok(merged.into_values().flatten().collect())
    }

    /// The raw committed-or-pending value of a key.
    pub(crate) fn get_raw(&self, k: &keys::Key) -> TxResult<Option<Vec<u8>>> {
        self.raw(k.as_ref())
    }
    /// Inserts raw bytes.
    pub(crate) fn insert_raw(&self, k: keys::Key, v: &[u8]) -> TxResult<()> {
        self.put_raw(k, v)
    }
    fn put<T: Serialize>(&self, k: keys::Key, v: &T) -> TxResult<()> {
        self.put_raw(k, &codec::encode(v))
    }
    fn put_raw(&self, k: keys::Key, v: &[u8]) -> TxResult<()> {
        self.writes
            .borrow_mut()
            .insert(k.into_vec(), Some(v.to_vec()));
        Ok(())
    }
    fn del(&self, k: keys::Key) -> TxResult<()> {
        self.writes.borrow_mut().insert(k.into_vec(), None);
        Ok(())
    }
    fn counter(&self, k: &keys::Key) -> TxResult<u64> {
        codec::decode_u64(self.raw(k.as_ref())?.as_deref())
    }
    /// Adds `delta` to a counter; a counter that reaches 0 is removed.
    fn add(&self, k: keys::Key, delta: i64) -> TxResult<()> {
        let cur = self.counter(&k)?;
        let new = cur as i64 + delta;
        if new < 0 {
            return fail(Error::corrupt(format!(
                "counter {:?} would go below 0",
                k.as_ref()
            )));
        }
        if new == 0 {
            self.del(k)
        } else {
            self.put_raw(k, &codec::encode_u64(new as u64))
        }
    }
    fn raise_to(&self, k: keys::Key, at_least: u64) -> TxResult<()> {
        if self.counter(&k)? < at_least {
            self.put_raw(k, &codec::encode_u64(at_least))?;
        }
        Ok(())
    }
    /// Takes the next id from a `Next*` counter when `given` is 0, and keeps
    /// the counter above every id written.
    fn assign_id(&self, tenant: u64, kind: Counter, given: u64) -> TxResult<u64> {
        let k = keys::counter(tenant, kind);
        let next = self.counter(&k)?.max(1);
        let what = if kind == Counter::NextSession {
            "session"
        } else {
            "message"
        };
        if given > limits::MAX_ID {
            return fail(Error::invalid(
                "id",
                format!("{given} is over the largest id, 2^53 - 1"),
            ));
        }
        let id = if given == 0 { next } else { given };
        if id > limits::MAX_ID {
            // Only an explicit id at the bound gets here (2^53 ids).
            return fail(Error::invalid(
                "id",
                format!(
                    "tenant {tenant} has no {what} id left to give: ids go up to 2^53 - 1 \
                     and one that large was given; give ids explicitly"
                ),
            ));
        }
        self.raise_to(k, id + 1)?;
        Ok(id)
    }
}

fn grams_of(rec: &MemberRec, short: bool) -> BTreeSet<(Field, String)> {
    let mut out = BTreeSet::new();
    for g in search::nick_grams(&rec.norm_nick, short) {
        out.insert((Field::Nick, g));
    }
    for g in search::phone_grams(&rec.phones, short) {
        out.insert((Field::Mobile, g));
    }
    out
}

/// The n-gram postings a member record must have (used by `check` too).
pub(crate) fn member_grams(rec: &MemberRec, short: bool) -> BTreeSet<(Field, String)> {
    grams_of(rec, short)
}

/// Builds the stored member (normalized forms computed once, here).
pub(crate) fn member_rec(m: &Member, session_count: u64) -> MemberRec {
    MemberRec {
        member: m.clone(),
        norm_nick: search::normalize(&m.nickname),
        phones: search::phone_variants(&m.mobile),
        session_count,
    }
}

/// Inserts or replaces a member, re-indexing changed nickname or mobile.
pub(crate) fn upsert_member(tx: &Tx, m: &Member) -> TxResult<()> {
    let k = keys::member(m.tenant, m.uid);
    let old: Option<MemberRec> = tx.get(&k, "member")?;
    let rec = member_rec(m, old.as_ref().map_or(0, |o| o.session_count));
    let new_grams = grams_of(&rec, tx.short_grams);
    let old_grams = old
        .as_ref()
        .map(|o| grams_of(o, tx.short_grams))
        .unwrap_or_default();
    for (f, g) in old_grams.difference(&new_grams) {
        tx.del(keys::gram(m.tenant, *f, g, m.uid))?;
        tx.add(keys::gram_count(m.tenant, *f, g), -1)?;
    }
    for (f, g) in new_grams.difference(&old_grams) {
        tx.put_raw(keys::gram(m.tenant, *f, g, m.uid), &[])?;
        tx.add(keys::gram_count(m.tenant, *f, g), 1)?;
    }
    if old.is_none() {
        tx.add(keys::counter(m.tenant, Counter::Members), 1)?;
    }
    tx.put(k, &rec)
}

/// Inserts or replaces an agent.
pub(crate) fn upsert_agent(tx: &Tx, a: &Agent) -> TxResult<()> {
    let k = keys::agent(a.tenant, a.id);
    let old: Option<AgentRec> = tx.get(&k, "agent")?;
    if old.is_none() {
        tx.add(keys::counter(a.tenant, Counter::Agents), 1)?;
    }
    tx.put(k, &AgentRec { agent: a.clone() })
}

/// The index keys of a session at a given activity time.
fn put_session_indexes(tx: &Tx, s: &Session, activity: i64) -> TxResult<()> {
    let (t, sid) = (s.tenant, s.id);
    let uid = codec::encode_u64(s.uid);
    tx.put_raw(keys::by_agent(t, s.agent_id, sid), &uid)?;
    tx.put_raw(keys::recent(t, activity, sid), &uid)?;
    tx.put_raw(keys::agent_recent(t, s.agent_id, activity, sid), &uid)?;
    tx.put_raw(
        keys::by_member(t, s.uid, sid),
        &member_index_value(s.agent_id, activity),
    )
}

/// Moves a session in the two activity orders (the id-ordered index and the
/// member index key do not depend on the time; the latter's value does).
fn move_activity(tx: &Tx, s: &Session, before: i64, after: i64) -> TxResult<()> {
    let (t, sid) = (s.tenant, s.id);
    let uid = codec::encode_u64(s.uid);
    tx.del(keys::recent(t, before, sid))?;
    tx.del(keys::agent_recent(t, s.agent_id, before, sid))?;
    tx.put_raw(keys::recent(t, after, sid), &uid)?;
    tx.put_raw(keys::agent_recent(t, s.agent_id, after, sid), &uid)?;
    tx.put_raw(
        keys::by_member(t, s.uid, sid),
        &member_index_value(s.agent_id, after),
    )
}

fn member_index_value(agent: u64, activity: i64) -> [u8; 16] {
    let mut v = [0u8; 16];
    v[..8].copy_from_slice(&agent.to_be_bytes());
    v[8..].copy_from_slice(&keys::time_bits(activity).to_be_bytes());
    v
}

fn del_session_indexes(tx: &Tx, s: &Session, activity: i64) -> TxResult<()> {
    let (t, sid) = (s.tenant, s.id);
    tx.del(keys::by_agent(t, s.agent_id, sid))?;
    tx.del(keys::recent(t, activity, sid))?;
    tx.del(keys::agent_recent(t, s.agent_id, activity, sid))?;
    tx.del(keys::by_member(t, s.uid, sid))?;
    Ok(())
}

fn bump_member_sessions(tx: &Tx, tenant: u64, uid: u64, delta: i64) -> TxResult<()> {
    let k = keys::member(tenant, uid);
    let Some(mut m) = tx.get::<MemberRec>(&k, "member")? else {
        return fail(Error::not_found(format!("member {uid} of tenant {tenant}")));
    };
    m.session_count = (m.session_count as i64 + delta).max(0) as u64;
    tx.put(k, &m)
}

/// Inserts or replaces a session; returns its id. `fallback_hash` is used
/// when the session is new and written without a hash.
pub(crate) fn upsert_session(tx: &Tx, s: &Session, fallback_hash: &str) -> TxResult<u64> {
    let t = s.tenant;
    if !tx.exists(keys::member(t, s.uid))? {
        return fail(Error::not_found(format!("member {} of tenant {t}", s.uid)));
    }
    if s.agent_id != 0 && !tx.exists(keys::agent(t, s.agent_id))? {
        return fail(Error::not_found(format!(
            "agent {} of tenant {t}",
            s.agent_id
        )));
    }
    let id = tx.assign_id(t, Counter::NextSession, s.id)?;
    let k = keys::session(t, id);
    let old: Option<SessionRec> = tx.get(&k, "session")?;
    let mut session = s.clone();
    session.id = id;
    let rec = match old {
        Some(old) => {
            if session.hash.is_empty() {
                session.hash = old.session.hash.clone();
            }
            del_session_indexes(tx, &old.session, old.activity_at())?;
            if old.session.agent_id != session.agent_id {
                tx.add(keys::agent_sessions(t, old.session.agent_id), -1)?;
                tx.add(keys::agent_sessions(t, session.agent_id), 1)?;
            }
            if old.session.uid != session.uid {
                bump_member_sessions(tx, t, old.session.uid, -1)?;
                bump_member_sessions(tx, t, session.uid, 1)?;
            }
            SessionRec { session, ..old }
        }
        None => {
            if session.hash.is_empty() {
                session.hash = fallback_hash.to_string();
            }
            tx.add(keys::counter(t, Counter::Sessions), 1)?;
            tx.add(keys::agent_sessions(t, session.agent_id), 1)?;
            bump_member_sessions(tx, t, session.uid, 1)?;
            SessionRec {
                session,
                msg_count: 0,
                last: None,
                unread_by_agent: 0,
                unread_by_member: 0,
                agent_read_upto: 0,
                member_read_upto: 0,
            }
        }
    };
    put_session_indexes(tx, &rec.session, rec.activity_at())?;
    tx.put(k, &rec)?;
    Ok(id)
}

/// Appends (or, for an existing id, replaces) a message; returns its id.
/// The session's count, last message and activity time move with it.
pub(crate) fn append_message(tx: &Tx, m: &Message) -> TxResult<u64> {
    let t = m.tenant;
    let sid = m.session_id;
    let sk = keys::session(t, sid);
    let Some(mut rec) = tx.get::<SessionRec>(&sk, "session")? else {
        return fail(Error::not_found(format!("session {sid} of tenant {t}")));
    };
    let id = tx.assign_id(t, Counter::NextMessage, m.id)?;
    let mk = keys::message(t, sid, id);
    let old: Option<MsgBody> = tx.get(&mk, "message")?;
    let body = MsgBody::from_message(m);
    let before = rec.activity_at();
    if m.deleted_at != 0 {
        // A message written deleted (an import of an export): out of every
        // view from the start; one that was visible leaves.
        if let Some(o) = &old {
            remove_visible(tx, &mut rec, id, o)?;
        }
        tx.put(keys::deleted(t, sid, id), &body)?;
    } else {
        // Written again after a delete: visible again. (Checked first: a
        // remove is a key written in the batch, a read is cheaper.)
        let tombstone = keys::deleted(t, sid, id);
        if tx.exists(&tombstone)? {
            tx.del(tombstone)?;
        }
        match &old {
            None => {
                rec.msg_count += 1;
                tx.add(keys::counter(t, Counter::Messages), 1)?;
            }
            Some(o) => {
                // A replaced message no longer counts, nor is found, as the old one.
                if rec.counts_unread(o, id) {
                    rec.bump_unread(o.sender, -1);
                }
                index_text(tx, t, sid, id, o, -1)?;
            }
        }
        index_text(tx, t, sid, id, &body, 1)?;
        if rec.counts_unread(&body, id) {
            rec.bump_unread(body.sender, 1);
        }
        tx.put(mk, &body)?;
        if rec.last.is_none_or(|(last, _)| id >= last) {
            rec.last = Some((id, m.time));
        }
    }
    let after = rec.activity_at();
    if after != before {
        move_activity(tx, &rec.session, before, after)?;
    }
    tx.put(sk, &rec)?;
    Ok(id)
}

/// Adds (`delta` 1) or removes (-1) a visible message's text postings (its
/// grams and their character offsets in the normalized text). Recalled
/// messages are not searchable; a store created without the text index
/// keeps none.
fn index_text(tx: &Tx, t: u64, sid: u64, mid: u64, body: &MsgBody, delta: i64) -> TxResult<()> {
    if body.recalled() || !tx.text_index {
        return Ok(());
    }
    let grams = search::message_gram_positions(&search::normalize(&body.content));
    let mut text = tx.text.borrow_mut();
    let m = text.entry((t, postings::order(mid, sid))).or_default();
    if delta > 0 {
        m.added = Some(grams);
    } else if m.added.take().is_none() && m.removed.is_none() {
        // The first removal names what the message had before this write;
        // a removal after an add of this write only undoes that add.
        m.removed = Some(grams.into_iter().map(|(g, _)| g).collect());
    }
    Ok(())
}

/// Takes visible message `id` (body `body`) out of its session's views:
/// the key, the counts, the unread count, and the last message, which falls
/// back to the previous visible one (the next key: one range read). The
/// caller moves the activity entries and stores `rec`.
fn remove_visible(tx: &Tx, rec: &mut SessionRec, id: u64, body: &MsgBody) -> TxResult<()> {
    let (t, sid) = (rec.session.tenant, rec.session.id);
    tx.del(keys::message(t, sid, id))?;
    index_text(tx, t, sid, id, body, -1)?;
    rec.msg_count = rec.msg_count.saturating_sub(1);
    tx.add(keys::counter(t, Counter::Messages), -1)?;
    if rec.counts_unread(body, id) {
        rec.bump_unread(body.sender, -1);
    }
    if rec.last.is_some_and(|(last, _)| last == id) {
        // Ids are stored inverted: older messages have greater keys.
        let from = keys::message(t, sid, id).into_vec();
        let end = keys::message(t, sid, 0).into_vec();
        let prev = tx
            .range_entries(&from, &end, 2)?
            .into_iter()
            .find(|(k, _)| *k != from);
        rec.last = match prev {
            Some((k, v)) => Some((
                keys::last_desc(&k),
                codec::decode::<MsgBody>(&v, "message")?.time,
            )),
            None => None,
        };
    }
    Ok(())
}

/// Recalls a visible message: it stays in history, flagged, and stops
/// counting as unread.
pub(crate) fn recall_message(tx: &Tx, t: u64, sid: u64, id: u64) -> TxResult<()> {
    let sk = keys::session(t, sid);
    let Some(mut rec) = tx.get::<SessionRec>(&sk, "session")? else {
        return fail(Error::not_found(format!("session {sid} of tenant {t}")));
    };
    let mk = keys::message(t, sid, id);
    let Some(mut body) = tx.get::<MsgBody>(&mk, "message")? else {
        return fail(Error::not_found(format!(
            "message {id} of session {sid} of tenant {t}"
        )));
    };
    if body.recalled() {
        return Ok(());
    }
    if rec.counts_unread(&body, id) {
        rec.bump_unread(body.sender, -1);
        tx.put(sk, &rec)?;
    }
    index_text(tx, t, sid, id, &body, -1)?;
    body.flags |= codec::MSG_RECALLED;
    tx.put(mk, &body)
}

/// Deletes a visible message softly at time `at`: it leaves every view (the
/// session's count, last message, unread count and activity move with it)
/// and is kept, with `deleted_at`, for export.
pub(crate) fn delete_message(tx: &Tx, t: u64, sid: u64, id: u64, at: i64) -> TxResult<()> {
    let sk = keys::session(t, sid);
    let Some(mut rec) = tx.get::<SessionRec>(&sk, "session")? else {
        return fail(Error::not_found(format!("session {sid} of tenant {t}")));
    };
    let Some(mut body) = tx.get::<MsgBody>(&keys::message(t, sid, id), "message")? else {
        return fail(Error::not_found(format!(
            "message {id} of session {sid} of tenant {t}"
        )));
    };
    let before = rec.activity_at();
    remove_visible(tx, &mut rec, id, &body)?;
    body.deleted_at = at.max(1);
    tx.put(keys::deleted(t, sid, id), &body)?;
    let after = rec.activity_at();
    if after != before {
        move_activity(tx, &rec.session, before, after)?;
    }
    tx.put(sk, &rec)
}

/// Marks a session's messages read by `reader` up to message id `up_to`
/// (never backwards): the reader's unread count drops by its messages with
/// ids in (old mark, up_to], read with one range scan. Returns the reader's
/// unread count after.
pub(crate) fn mark_read(
    tx: &Tx,
    tenant: u64,
    sid: u64,
    reader: Reader,
    up_to: u64,
) -> TxResult<u64> {
    let sk = keys::session(tenant, sid);
    let Some(mut rec) = tx.get::<SessionRec>(&sk, "session")? else {
        return fail(Error::not_found(format!(
            "session {sid} of tenant {tenant}"
        )));
    };
    let (mark, sender) = match reader {
        Reader::Agent => (&mut rec.agent_read_upto, 0u8),
        Reader::Member => (&mut rec.member_read_upto, 1u8),
    };
    let from = *mark;
    if up_to > from {
        *mark = up_to;
        // Ids are stored inverted: (from, up_to] is [key(up_to), key(from)).
        let range = tx.range_values(
            keys::message(tenant, sid, up_to).as_ref(),
            keys::message(tenant, sid, from).as_ref(),
        )?;
        let mut n = 0;
        for v in range {
            let b = codec::decode::<MsgBody>(&v, "message")?;
            if b.sender == sender && !b.recalled() {
                n += 1;
            }
        }
        rec.bump_unread(sender, -(n as i64));
        tx.put(sk, &rec)?;
    }
    Ok(match reader {
        Reader::Agent => rec.unread_by_agent,
        Reader::Member => rec.unread_by_member,
    })
}

/// A session's stored message ids, collected under the writer lock: the
/// visible ones and the deleted ones.
#[derive(Debug, Default)]
pub(crate) struct SessionMessages {
    /// Visible (and recalled) messages.
    pub visible: Vec<u64>,
    /// Softly deleted messages.
    pub deleted: Vec<u64>,
}

/// Deletes a session with all its messages, visible and deleted.
fn delete_session(tx: &Tx, tenant: u64, sid: u64, msgs: &SessionMessages) -> TxResult<()> {
    let msg_ids = &msgs.visible;
    let sk = keys::session(tenant, sid);
    let Some(rec) = tx.get::<SessionRec>(&sk, "session")? else {
        return fail(Error::not_found(format!(
            "session {sid} of tenant {tenant}"
        )));
    };
    if rec.msg_count != msg_ids.len() as u64 {
        return fail(Error::corrupt(format!(
            "session {sid} of tenant {tenant} counts {} messages but has {}",
            rec.msg_count,
            msg_ids.len()
        )));
    }
    for &mid in msg_ids {
        let k = keys::message(tenant, sid, mid);
        if let Some(body) = tx.get::<MsgBody>(&k, "message")? {
            index_text(tx, tenant, sid, mid, &body, -1)?;
        }
        tx.del(k)?;
    }
    for &mid in &msgs.deleted {
        tx.del(keys::deleted(tenant, sid, mid))?;
    }
    del_session_indexes(tx, &rec.session, rec.activity_at())?;
    tx.add(keys::counter(tenant, Counter::Sessions), -1)?;
    tx.add(
        keys::counter(tenant, Counter::Messages),
        -(msg_ids.len() as i64),
    )?;
    tx.add(keys::agent_sessions(tenant, rec.session.agent_id), -1)?;
    bump_member_sessions(tx, tenant, rec.session.uid, -1)?;
    tx.del(sk)?;
    Ok(())
}

/// Deletes a member whose sessions are all deleted (the last step of its
/// cascade, [`cascade_step`]).
fn delete_member(tx: &Tx, tenant: u64, uid: u64) -> TxResult<()> {
    let k = keys::member(tenant, uid);
    let Some(rec) = tx.get::<MemberRec>(&k, "member")? else {
        return fail(Error::not_found(format!("member {uid} of tenant {tenant}")));
    };
    if rec.session_count != 0 {
        return fail(Error::corrupt(format!(
            "member {uid} of tenant {tenant} counts {} sessions but has none",
            rec.session_count
        )));
    }
    for (f, g) in grams_of(&rec, tx.short_grams) {
        tx.del(keys::gram(tenant, f, &g, uid))?;
        tx.add(keys::gram_count(tenant, f, &g), -1)?;
    }
    tx.add(keys::counter(tenant, Counter::Members), -1)?;
    tx.del(k)?;
    Ok(())
}

/// Deletes an agent that has no sessions.
pub(crate) fn delete_agent(tx: &Tx, tenant: u64, id: u64) -> TxResult<()> {
    let k = keys::agent(tenant, id);
    if !tx.exists(&k)? {
        return fail(Error::not_found(format!("agent {id} of tenant {tenant}")));
    }
    let n = tx.counter(&keys::agent_sessions(tenant, id))?;
    if n > 0 {
        return fail(Error::Conflict {
            reason: format!("agent {id} of tenant {tenant} still has {n} sessions"),
        });
    }
    tx.add(keys::counter(tenant, Counter::Agents), -1)?;
    tx.del(k)?;
    Ok(())
}

/// The most messages (visible and softly deleted) one step of a cascading
/// delete removes, beside the records that hold them (with the text index,
/// about 150 postings each: some 75,000 keys, under 3 MB). A session with more
/// is emptied oldest first over several steps.
pub(crate) const CASCADE_STEP_MESSAGES: u64 = 500;

/// What a cascading delete removes: a member with its sessions, or a
/// session with its messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cascade {
    /// A member (by uid), its sessions and their messages.
    Member(u64),
    /// A session (by id) and its messages.
    Session(u64),
}

impl Cascade {
    /// The marker key of this delete under way in `tenant`.
    pub(crate) fn marker(self, tenant: u64) -> Vec<u8> {
        match self {
            Cascade::Member(uid) => keys::cascade(tenant, keys::MEMBER, uid),
            Cascade::Session(sid) => keys::cascade(tenant, keys::SESSION, sid),
        }
    }

    /// The delete a marker key records.
    pub(crate) fn from_marker(k: &[u8]) -> Option<(u64, Cascade)> {
        match keys::parse_cascade(k)? {
            (t, keys::MEMBER, uid) => Some((t, Cascade::Member(uid))),
            (t, keys::SESSION, sid) => Some((t, Cascade::Session(sid))),
            _ => None,
        }
    }
}

/// One step of a cascading delete, in one transaction; returns whether
/// the delete is complete.
///
/// A step removes whole sessions (each with its messages, index entries
/// and counters) until about [`CASCADE_STEP_MESSAGES`] messages are gone,
/// or, when the next session holds more than that, that session's oldest
/// messages. Every step leaves a consistent store (a member with fewer
/// sessions, a session with fewer messages, its last message kept), and
/// the step that removes the last of them removes the member or session
/// itself. Until then a marker in the meta space records the delete under
/// way, so that one cut short by a crash is finished by the next process
/// that opens the store (`Engine::open`).
///
/// `first`: the call's first step, for which a missing member or session
/// is [`Error::NotFound`]; on later steps (or when finishing a marked
/// delete) it means another writer completed the delete.
pub(crate) fn cascade_step(tx: &Tx, tenant: u64, what: Cascade, first: bool) -> TxResult<bool> {
    let marker = what.marker(tenant);
    let pending = tx.meta_exists(&marker)?;
    let exists = match what {
        Cascade::Member(uid) => tx.exists(keys::member(tenant, uid))?,
        Cascade::Session(sid) => tx.exists(keys::session(tenant, sid))?,
    };
    if !exists {
        if pending {
            tx.del_meta(marker);
            return Ok(true);
        }
        if first {
            return fail(Error::not_found(match what {
                Cascade::Member(uid) => format!("member {uid} of tenant {tenant}"),
                Cascade::Session(sid) => format!("session {sid} of tenant {tenant}"),
            }));
        }
        return Ok(true);
    }
    let mut budget = CASCADE_STEP_MESSAGES;
    let sessions: Vec<u64> = match what {
        Cascade::Session(sid) => vec![sid],
        // Only as many as this step can reach: a session removes at least
        // one message's worth of budget.
        Cascade::Member(uid) => tx
            .data()
            .scan_prefix(keys::sessions_of_member(tenant, uid))
            .take(CASCADE_STEP_MESSAGES as usize + 1)
            .map(|item| Ok(keys::last_u64(&item?.0)))
            .collect::<TxResult<_>>()?,
    };
    let mut remaining = sessions.len();
    for sid in sessions {
        let msgs = session_messages(tx, tenant, sid)?;
        let count = (msgs.visible.len() + msgs.deleted.len()) as u64;
        if count <= budget {
            delete_session(tx, tenant, sid, &msgs)?;
            remaining -= 1;
            budget = budget.saturating_sub(count.max(1));
        } else if budget == CASCADE_STEP_MESSAGES {
            // Larger than a step: its oldest messages now, the rest later.
            purge_oldest(tx, tenant, sid, &msgs, budget)?;
            budget = 0;
        } else {
            break;
        }
        if budget == 0 {
            break;
        }
    }
    // The sessions read above are all there were unless the list was cut
    // (then some remain, as each costs at least one message of budget).
    let done = remaining == 0;
    if let (true, Cascade::Member(uid)) = (done, what) {
        delete_member(tx, tenant, uid)?;
    }
    if done && pending {
        tx.del_meta(marker);
    } else if !done && !pending {
        tx.put_meta(marker, &[]);
    }
    Ok(done)
}

/// A session's stored message ids, visible and softly deleted, as the
/// transaction sees them before this write changes them.
pub(crate) fn session_messages(tx: &Tx, tenant: u64, sid: u64) -> TxResult<SessionMessages> {
    let ids = |prefix: keys::Key| -> TxResult<Vec<u64>> {
        tx.data()
            .scan_prefix(prefix)
            .map(|item| Ok(keys::last_desc(&item?.0)))
            .collect()
    };
    Ok(SessionMessages {
        visible: ids(keys::messages_of(tenant, sid))?,
        deleted: ids(keys::deleted_of(tenant, sid))?,
    })
}

/// Removes the `n` oldest messages of a session, softly deleted ones
/// first, never its last message: one step of emptying a large session.
fn purge_oldest(tx: &Tx, t: u64, sid: u64, msgs: &SessionMessages, n: u64) -> TxResult<()> {
    let sk = keys::session(t, sid);
    let Some(mut rec) = tx.get::<SessionRec>(&sk, "session")? else {
        return fail(Error::not_found(format!("session {sid} of tenant {t}")));
    };
    let mut left = n as usize;
    // Ids are stored inverted: the oldest are at the end of each list.
    for &mid in msgs.deleted.iter().rev().take(left) {
        tx.del(keys::deleted(t, sid, mid))?;
        left -= 1;
    }
    let last = rec.last.map(|(id, _)| id);
    let mut removed = 0i64;
    for &mid in msgs.visible.iter().rev().take(left) {
        if Some(mid) == last {
            continue;
        }
        let k = keys::message(t, sid, mid);
        if let Some(body) = tx.get::<MsgBody>(&k, "message")? {
            if rec.counts_unread(&body, mid) {
                rec.bump_unread(body.sender, -1);
            }
            index_text(tx, t, sid, mid, &body, -1)?;
        }
        tx.del(k)?;
        removed += 1;
    }
    rec.msg_count = rec.msg_count.saturating_sub(removed as u64);
    tx.add(keys::counter(t, Counter::Messages), -removed)?;
    tx.put(sk, &rec)
}

/// Applies an overlay's writes to a write transaction.
pub(crate) fn put_all(
    w: &mut dyn crate::storage::WriteTxn,
    writes: Writes,
) -> crate::error::Result<()> {
    for (space, k, v) in writes {
        match v {
            Some(v) => w.put(space, &k, &v)?,
            None => w.delete(space, &k)?,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::command::WriteOp;
    use crate::error::ErrorKind;
    use crate::read::HistoryQuery;
    use crate::testing::{agent, engine, export, member, message, session};

    #[test]
    fn a_message_moves_its_session_and_the_counters() {
        let e = engine();
        member(&e, 2, 7, "李小龙", "185 1669 0005");
        agent(&e, 2, 1);
        let sid = session(&e, 2, 0, 7, 1);
        let ids: Vec<u64> = (0..3)
            .map(|i| message(&e, 2, sid, &format!("第{i}条"), 1_700_000_000 + i))
            .collect();
        let v = e.get_session(2, sid).unwrap().unwrap();
        assert_eq!(v.message_count, 3);
        assert_eq!(v.last_message.unwrap().id, ids[2]);
        assert_eq!(v.activity_at, 1_700_000_002);
        let stats = e.tenant_stats(2).unwrap();
        assert_eq!(
            (stats.members, stats.agents, stats.sessions, stats.messages),
            (1, 1, 1, 3)
        );
        assert!(e.check().unwrap().ok);
    }

    #[test]
    fn moving_a_session_to_another_agent_moves_its_index_entries() {
        let e = engine();
        member(&e, 2, 7, "n", "");
        agent(&e, 2, 1);
        agent(&e, 2, 2);
        let sid = session(&e, 2, 0, 7, 1);
        session(&e, 2, sid, 7, 2);
        let of = |agent| {
            let mut q = HistoryQuery::new(2);
            q.employee = Some(agent);
            e.history_list(&q).unwrap().total
        };
        assert_eq!((of(1), of(2)), (0, 1));
        assert!(e.check().unwrap().ok);
    }

    #[test]
    fn a_refused_write_changes_nothing() {
        let e = engine();
        member(&e, 2, 7, "n", "");
        let before = export(&e);
        let to_nowhere = e.apply(
            &WriteOp::AppendMessage(crate::model::Message {
                tenant: 2,
                session_id: 99,
                content: "x".into(),
                ..Default::default()
            }),
            None,
        );
        assert_eq!(to_nowhere.unwrap_err().kind(), ErrorKind::NotFound);
        let of_nobody = e.apply(
            &WriteOp::UpsertSession(crate::model::Session {
                tenant: 2,
                uid: 8,
                ..Default::default()
            }),
            None,
        );
        assert_eq!(of_nobody.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!(export(&e), before);
        assert!(e.check().unwrap().ok);
    }

    #[test]
    fn deleting_a_member_removes_its_sessions_messages_and_grams() {
        let e = engine();
        member(&e, 2, 7, "李小龙", "185 1669 0005");
        member(&e, 2, 8, "王五", "");
        let sid = session(&e, 2, 0, 7, 0);
        message(&e, 2, sid, "订单 1", 1);
        session(&e, 2, 0, 8, 0);
        assert_eq!(e.search_members(2, "小龙").unwrap().len(), 1);
        e.apply(&WriteOp::DeleteMember { tenant: 2, uid: 7 }, None)
            .unwrap();
        assert!(e.search_members(2, "小龙").unwrap().is_empty());
        assert!(e.search_members(2, "1669").unwrap().is_empty());
        let stats = e.tenant_stats(2).unwrap();
        assert_eq!((stats.members, stats.sessions, stats.messages), (1, 1, 0));
        assert!(e.get_session(2, sid).unwrap().is_none());
        assert!(e.check().unwrap().ok);
    }
}
