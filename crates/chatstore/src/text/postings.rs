//! Message-text postings in blocks (store format 3).
//!
//! Per tenant and gram, the postings (one per visible message holding the
//! gram: its id, its session and the gram's character offsets in the
//! normalized text) are kept newest first, in the order of the key suffix
//! `!mid sid`, cut into blocks of at most [`BLOCK_BYTES`] (a block holds at
//! least one posting, however long):
//!
//! `T 24 len gram !mid sid` (the block's *last*, oldest, posting) ->
//! `varint total, varint n, n x (varint mid, varint sid, varint k, k x
//! varint offset)`
//!
//! - `total` is the gram's number of postings in its first (newest) block,
//!   0 in the others: a whole-gram query's total and the search plan's
//!   rarest gram cost one read.
//! - `mid` is the first posting's id, then the gap to the previous (ids
//!   descend, so gaps are small and positive); offsets are the first offset
//!   then the gaps (they ascend).
//!
//! A block covers the postings after the previous block's key up to its
//! own key, so the block of a posting is the first one whose key is not
//! before it: a seek. New messages are the newest, so an append adds to the
//! gram's first block; when that one is full a new first block begins
//! (blocks are cut from the oldest end, so full blocks stay as they are).
//! An import batch adds all its postings of a gram at once (whole blocks).
//! A delete or recall removes the posting from its block (rewriting that
//! block, and the first block for the total): deletes stay exact, there are
//! no tombstones.
//!
//! # The pending list (store format 5)
//!
//! A message written alone would rewrite the first block of each of its
//! grams: some 30 pages for a line of chat, each written and fsynced by the
//! commit. As PostgreSQL's GIN indexes do with their "fast update" pending
//! list, a small write leaves the message's postings in one key of its own
//! instead, beside the tenant's other recent messages:
//!
//! `T 25 !mid sid` -> `varint n, n x (varint len, gram, varint k, k x
//! varint offset gap)` (an [`Entry`])
//!
//! - An append writes one small key (the tenant's pending keys share a page
//!   or two). When a write would leave more than
//!   `Options::text_pending_bytes` (8 KiB unless set) of
//!   entries, that write moves every pending entry of the tenant into the
//!   blocks (one block rewrite per gram for all of them), and an import
//!   batch, larger than that alone, puts its postings straight into blocks.
//! - A gram's postings are its blocks' and the pending entries' holding
//!   it, merged in the same order ([`Postings`]); its total is the first
//!   block's total plus its pending postings ([`Pending::count`]). A
//!   message's postings are all in its pending entry or all in blocks.
//! - A delete, recall or edit of a pending message rewrites or removes its
//!   entry; of a message in blocks, removes its postings from the blocks
//!   (its new postings, after an edit, become pending).
//! - A search reads the tenant's pending entries once (at most
//!   `Options::text_pending_bytes`, a few pages), keeping the postings of
//!   its grams.

use std::collections::BTreeMap;
use std::ops::Bound;

use crate::error::{Error, Result};
use crate::keys;
use crate::storage::Tree;

/// The most bytes of postings a block holds (one posting may exceed it
/// alone). Three blocks fill a 4 KB LMDB page (a node is its 2-byte
/// pointer, 8-byte header, a key of some 35 bytes and the block: 3 x 1,350
/// of the page's 4,080), where blocks of 1 KB left a quarter of each page
/// empty; and a block stays under LMDB's 2 KB in-page value limit, never
/// spilling into overflow pages.
pub(crate) const BLOCK_BYTES: usize = 1296;

/// One message holding a gram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Posting {
    /// The message id.
    pub mid: u64,
    /// The session.
    pub sid: u64,
    /// The gram's character offsets in the normalized text, ascending.
    pub offsets: Vec<u32>,
}

/// The order of postings (and of block keys): newest id first, then by
/// session.
pub(crate) type Order = (u64, u64);

/// The place of `(mid, sid)` in a gram's posting order.
pub(crate) fn order(mid: u64, sid: u64) -> Order {
    (!mid, sid)
}

impl Posting {
    fn order(&self) -> Order {
        order(self.mid, self.sid)
    }
}

fn put_varint(out: &mut Vec<u8>, mut x: u64) {
    while x >= 0x80 {
        out.push((x as u8) | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
}

fn varint_len(x: u64) -> usize {
    (64 - (x | 1).leading_zeros() as usize).div_ceil(7)
}

/// Reads LEB128 varints from a block.
struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn varint(&mut self) -> Result<u64> {
        let mut x = 0u64;
        for shift in (0..64).step_by(7) {
            let Some(&b) = self.bytes.get(self.at) else {
                return Err(Error::corrupt("text posting block ends inside a number"));
            };
            self.at += 1;
            x |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(x);
            }
        }
        Err(Error::corrupt(
            "text posting block holds a number over 64 bits",
        ))
    }
}

/// The bytes a posting takes after `prev` (the previous posting's id in its
/// block, `None` for the first).
fn posting_len(prev: Option<u64>, p: &Posting) -> usize {
    let gap = prev.map_or(p.mid, |m| m - p.mid);
    let mut n = varint_len(gap) + varint_len(p.sid) + varint_len(p.offsets.len() as u64);
    let mut last = 0u32;
    for &o in &p.offsets {
        n += varint_len(u64::from(o - last));
        last = o;
    }
    n
}

/// Encodes a block.
pub(crate) fn encode(total: u64, postings: &[Posting]) -> Vec<u8> {
    let mut out = Vec::with_capacity(16 + postings.len() * 8);
    put_varint(&mut out, total);
    put_varint(&mut out, postings.len() as u64);
    let mut prev: Option<u64> = None;
    for p in postings {
        put_varint(&mut out, prev.map_or(p.mid, |m| m - p.mid));
        put_varint(&mut out, p.sid);
        put_varint(&mut out, p.offsets.len() as u64);
        let mut last = 0u32;
        for &o in &p.offsets {
            put_varint(&mut out, u64::from(o - last));
            last = o;
        }
        prev = Some(p.mid);
    }
    out
}

/// The header of a block: the gram's total (first block) and the number of
/// postings in it.
pub(crate) fn header(block: &[u8]) -> Result<(u64, u64)> {
    let mut r = Reader {
        bytes: block,
        at: 0,
    };
    Ok((r.varint()?, r.varint()?))
}

/// Decodes a block: its total and its postings, checking their order.
pub(crate) fn decode(block: &[u8]) -> Result<(u64, Vec<Posting>)> {
    let mut r = Reader {
        bytes: block,
        at: 0,
    };
    let total = r.varint()?;
    let n = r.varint()?;
    let mut out: Vec<Posting> = Vec::with_capacity(n.min(4096) as usize);
    let mut prev: Option<u64> = None;
    for _ in 0..n {
        let gap = r.varint()?;
        let mid = match prev {
            None => gap,
            Some(m) => m
                .checked_sub(gap)
                .ok_or_else(|| Error::corrupt("text posting block: id gap below 0"))?,
        };
        let sid = r.varint()?;
        let k = r.varint()?;
        let mut offsets = Vec::with_capacity(k.min(4096) as usize);
        let mut last = 0u64;
        for _ in 0..k {
            last += r.varint()?;
            offsets.push(
                u32::try_from(last)
                    .map_err(|_| Error::corrupt("text posting block: offset over 32 bits"))?,
            );
        }
        let p = Posting { mid, sid, offsets };
        if out.last().is_some_and(|q| q.order() >= p.order()) {
            return Err(Error::corrupt("text posting block: postings out of order"));
        }
        prev = Some(mid);
        out.push(p);
    }
    if r.at != block.len() {
        return Err(Error::corrupt(
            "text posting block: bytes after its postings",
        ));
    }
    Ok((total, out))
}

/// Cuts postings (in order) into blocks of at most [`BLOCK_BYTES`], from
/// the oldest end: every block but the first is as full as the next
/// posting allows, and a posting added in front joins the first block or
/// starts a new one, leaving the full ones as they were.
pub(crate) fn chunks(postings: &[Posting]) -> Vec<&[Posting]> {
    let mut out = Vec::new();
    let mut end = postings.len();
    while end > 0 {
        // Grow the block backwards from `end` while it fits. Its first
        // posting is stored whole, the others as gaps: measure as it will
        // be written.
        let mut start = end - 1;
        let mut size = posting_len(None, &postings[start]);
        while start > 0 {
            let cand = &postings[start - 1];
            // `cand` becomes the first: it is stored whole, and the old
            // first turns into a gap.
            let grown = size - posting_len(None, &postings[start])
                + posting_len(Some(cand.mid), &postings[start])
                + posting_len(None, cand);
            if grown > BLOCK_BYTES {
                break;
            }
            size = grown;
            start -= 1;
        }
        out.push(&postings[start..end]);
        end = start;
    }
    out.reverse();
    out
}

/// The key of a gram's block whose last posting is `last`.
pub(crate) fn block_key(t: u64, gram: &str, last: &Posting) -> keys::Key {
    keys::text_block(t, gram, last.mid, last.sid)
}

/// A change to a gram's postings.
pub(crate) type Changes = BTreeMap<Order, Option<Posting>>;

/// What applying changes to one gram writes: keys to remove, blocks to put.
#[derive(Debug, Default)]
pub(crate) struct BlockWrites {
    /// Block keys to remove.
    pub remove: Vec<Vec<u8>>,
    /// Blocks to put.
    pub put: Vec<(Vec<u8>, Vec<u8>)>,
}

/// Applies `changes` (a posting to add or replace, or `None` to remove the
/// posting in that place) to a gram's postings, given the blocks they touch:
/// `run`, consecutive blocks of the gram as `(key, value)` from the first
/// whose key is not before the first change through the first whose key is
/// not before the last change (or the gram's last block); `first`, the
/// gram's first block when it is not in `run`; `next`, the block after the
/// run (which becomes the first when the run held the first and all its
/// postings go). Returns the writes.
pub(crate) fn apply(
    t: u64,
    gram: &str,
    run: &[(Vec<u8>, Vec<u8>)],
    first: Option<&(Vec<u8>, Vec<u8>)>,
    next: Option<&(Vec<u8>, Vec<u8>)>,
    changes: Changes,
) -> Result<BlockWrites> {
    let mut total = match (first, run.first()) {
        (Some((_, v)), _) | (None, Some((_, v))) => header(v)?.0,
        (None, None) => 0,
    };
    // The run's postings and the changes, both in order: one merge.
    let mut stored: Vec<Posting> = Vec::new();
    for (_, v) in run {
        stored.extend(decode(v)?.1);
    }
    let mut postings: Vec<Posting> = Vec::with_capacity(stored.len() + changes.len());
    let mut stored = stored.into_iter().peekable();
    for (o, change) in changes {
        while let Some(p) = stored.next_if(|p| p.order() < o) {
            postings.push(p);
        }
        let had = stored.next_if(|p| p.order() == o).is_some();
        let adds = change.is_some();
        postings.extend(change);
        match (adds, had) {
            (true, false) => total += 1,
            (false, true) => total = total.saturating_sub(1),
            _ => {}
        }
    }
    postings.extend(stored);
    let blocks = chunks(&postings);
    // The run holds the gram's first block unless `first` is given.
    let run_is_first = first.is_none();
    let mut out = BlockWrites::default();
    let mut new: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
    for (i, b) in blocks.iter().enumerate() {
        let is_first = run_is_first && i == 0;
        let key = block_key(t, gram, b.last().expect("a block holds a posting"));
        new.insert(key.into_vec(), encode(if is_first { total } else { 0 }, b));
    }
    for (k, v) in run {
        match new.get(k) {
            Some(nv) if nv == v => {
                new.remove(k);
            }
            Some(_) => {}
            None => out.remove.push(k.clone()),
        }
    }
    out.put.extend(new);
    // The gram's first block carries the total: `first` when the run does
    // not hold it; `next` when the run held it and emptied.
    let carrier = match (first, blocks.is_empty()) {
        (Some(f), _) => Some(f),
        (None, true) => next,
        (None, false) => None,
    };
    if let Some((k, v)) = carrier {
        let rewritten = encode(total, &decode(v)?.1);
        if rewritten != *v {
            out.put.push((k.clone(), rewritten));
        }
    }
    Ok(out)
}

/// The number of postings of the gram in its blocks (no block: 0); add
/// [`Pending::count`] for all of them.
pub(crate) fn total(data: &Tree<'_>, t: u64, gram: &str) -> Result<u64> {
    match data.scan_prefix(keys::text_block_prefix(t, gram)).next() {
        None => Ok(0),
        Some(item) => Ok(header(&item?.1)?.0),
    }
}

/// The posting of message `(mid, sid)` under a gram, if any: among the
/// pending ones, else one seek.
pub(crate) fn find(
    data: &Tree<'_>,
    t: u64,
    gram: &str,
    mid: u64,
    sid: u64,
    pending: &Pending,
) -> Result<Option<Posting>> {
    if let Some(p) = pending.find(gram, mid, sid) {
        return Ok(Some(p.clone()));
    }
    let from = keys::text_block(t, gram, mid, sid);
    let prefix = keys::text_block_prefix(t, gram);
    let end = keys::prefix_end(prefix.as_ref()).unwrap_or_default();
    let Some(item) = data
        .range(
            Bound::Included(from.as_ref()),
            Bound::Excluded(end.as_slice()),
        )
        .next()
    else {
        return Ok(None);
    };
    let (_, postings) = decode(&item?.1)?;
    Ok(postings.into_iter().find(|p| p.mid == mid && p.sid == sid))
}

/// A gram's postings in order: its blocks' merged with its pending ones;
/// `skip` postings are passed over reading only the headers of the blocks
/// they fill.
pub(crate) struct Postings<'t> {
    blocks: crate::storage::Iter<'t>,
    blocks_done: bool,
    current: std::collections::VecDeque<Posting>,
    pending: std::collections::VecDeque<Posting>,
    skip: u64,
}

impl<'t> Postings<'t> {
    /// The postings of `gram` (its pending ones `pending`), from the
    /// `skip`th on.
    pub(crate) fn new(
        data: &Tree<'t>,
        t: u64,
        gram: &str,
        skip: u64,
        pending: &Pending,
    ) -> Postings<'t> {
        Postings {
            blocks: data.scan_prefix(keys::text_block_prefix(t, gram)),
            blocks_done: false,
            current: Default::default(),
            pending: pending.of(gram).iter().cloned().collect(),
            skip,
        }
    }

    /// Reads the next block into `current`, passing over whole blocks (and
    /// the pending postings before their ends) while `skip` covers them.
    fn fill(&mut self) -> Result<()> {
        while self.current.is_empty() && !self.blocks_done {
            let Some(item) = self.blocks.next() else {
                self.blocks_done = true;
                break;
            };
            let (k, v) = item?;
            if self.skip > 0 && k.len() >= 16 {
                // The block's key names its last posting.
                let end = (
                    keys::u64_at(&k, k.len() - 16),
                    keys::u64_at(&k, k.len() - 8),
                );
                let before = self.pending.iter().take_while(|p| p.order() < end).count() as u64;
                let (_, n) = header(&v)?;
                if n + before <= self.skip {
                    self.skip -= n + before;
                    self.pending.drain(..before as usize);
                    continue;
                }
            }
            self.current = decode(&v)?.1.into();
        }
        Ok(())
    }
}

impl Iterator for Postings<'_> {
    type Item = Result<Posting>;

    fn next(&mut self) -> Option<Result<Posting>> {
        loop {
            if let Err(e) = self.fill() {
                self.blocks_done = true;
                self.current.clear();
                self.pending.clear();
                return Some(Err(e));
            }
            let from_block = match (self.current.front(), self.pending.front()) {
                (None, None) => return None,
                (Some(_), None) => true,
                (None, Some(_)) => false,
                (Some(b), Some(p)) => b.order() < p.order(),
            };
            let p = if from_block {
                self.current.pop_front()
            } else {
                self.pending.pop_front()
            }?;
            if self.skip > 0 {
                self.skip -= 1;
                continue;
            }
            return Some(Ok(p));
        }
    }
}

/// The postings of one pending message: its grams (ascending, each once)
/// and their offsets, as `search::message_gram_positions` gives them.
pub(crate) type Entry = Vec<(String, Vec<u32>)>;

/// The bytes [`encode_entry`] writes for `e`.
pub(crate) fn entry_len(e: &Entry) -> usize {
    let mut n = varint_len(e.len() as u64);
    for (g, offsets) in e {
        n += varint_len(g.len() as u64) + g.len() + varint_len(offsets.len() as u64);
        let mut last = 0u32;
        for &o in offsets {
            n += varint_len(u64::from(o - last));
            last = o;
        }
    }
    n
}

/// Encodes a pending entry.
pub(crate) fn encode_entry(e: &Entry) -> Vec<u8> {
    let mut out = Vec::with_capacity(entry_len(e));
    put_varint(&mut out, e.len() as u64);
    for (g, offsets) in e {
        put_varint(&mut out, g.len() as u64);
        out.extend_from_slice(g.as_bytes());
        put_varint(&mut out, offsets.len() as u64);
        let mut last = 0u32;
        for &o in offsets {
            put_varint(&mut out, u64::from(o - last));
            last = o;
        }
    }
    out
}

/// Decodes a pending entry, keeping the grams `keep` accepts (the others
/// are passed over without being copied).
pub(crate) fn decode_entry(v: &[u8], keep: impl Fn(&str) -> bool) -> Result<Entry> {
    let mut r = Reader { bytes: v, at: 0 };
    let n = r.varint()?;
    let mut out = Entry::new();
    let mut prev: Option<&str> = None;
    for _ in 0..n {
        let len = r.varint()? as usize;
        let bytes =
            r.at.checked_add(len)
                .and_then(|end| v.get(r.at..end))
                .ok_or_else(|| Error::corrupt("pending text postings end inside a gram"))?;
        r.at += len;
        let g = std::str::from_utf8(bytes)
            .map_err(|_| Error::corrupt("pending text postings: a gram is not UTF-8"))?;
        if prev.is_some_and(|p| p >= g) {
            return Err(Error::corrupt("pending text postings: grams out of order"));
        }
        prev = Some(g);
        let k = r.varint()?;
        let wanted = keep(g);
        let mut offsets = Vec::new();
        let mut last = 0u64;
        for _ in 0..k {
            last += r.varint()?;
            if wanted {
                offsets.push(
                    u32::try_from(last).map_err(|_| {
                        Error::corrupt("pending text postings: offset over 32 bits")
                    })?,
                );
            }
        }
        if wanted {
            out.push((g.to_string(), offsets));
        }
    }
    if r.at != v.len() {
        return Err(Error::corrupt(
            "pending text postings: bytes after its grams",
        ));
    }
    Ok(out)
}

/// The pending postings of a tenant's grams that one search asks for, read
/// once per search.
#[derive(Debug, Default)]
pub(crate) struct Pending {
    grams: BTreeMap<String, Vec<Posting>>,
}

impl Pending {
    /// Reads tenant `t`'s pending entries, keeping the postings of `grams`.
    pub(crate) fn load<'g>(
        data: &Tree<'_>,
        t: u64,
        grams: impl IntoIterator<Item = &'g str>,
    ) -> Result<Pending> {
        let mut out = Pending::default();
        for g in grams {
            out.grams.insert(g.to_string(), Vec::new());
        }
        for item in data.scan_prefix(keys::text_pending_prefix(t)) {
            let (k, v) = item?;
            let Some((mid, sid)) = keys::parse_text_pending(&k) else {
                return Err(Error::corrupt("a pending text posting key of a wrong size"));
            };
            for (g, offsets) in decode_entry(&v, |g| out.grams.contains_key(g))? {
                if let Some(list) = out.grams.get_mut(&g) {
                    // Keys come in posting order: each list stays sorted.
                    list.push(Posting { mid, sid, offsets });
                }
            }
        }
        Ok(out)
    }

    /// The pending postings of `gram`, in order.
    pub(crate) fn of(&self, gram: &str) -> &[Posting] {
        self.grams.get(gram).map_or(&[], Vec::as_slice)
    }

    /// How many pending postings `gram` has.
    pub(crate) fn count(&self, gram: &str) -> u64 {
        self.of(gram).len() as u64
    }

    /// The pending posting of message `(mid, sid)` under `gram`, if any.
    pub(crate) fn find(&self, gram: &str, mid: u64, sid: u64) -> Option<&Posting> {
        let list = self.of(gram);
        list.binary_search_by_key(&order(mid, sid), Posting::order)
            .ok()
            .map(|i| &list[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn posting(mid: u64, sid: u64, offsets: Vec<u32>) -> Posting {
        Posting { mid, sid, offsets }
    }

    #[test]
    fn varint_lengths() {
        for x in [0u64, 1, 127, 128, 16_383, 16_384, u64::MAX] {
            let mut v = Vec::new();
            put_varint(&mut v, x);
            assert_eq!(v.len(), varint_len(x), "{x}");
            let mut r = Reader { bytes: &v, at: 0 };
            assert_eq!(r.varint().unwrap(), x);
        }
    }

    #[test]
    fn a_damaged_block_is_an_error() {
        let b = encode(2, &[posting(9, 1, vec![0, 5]), posting(7, 1, vec![3])]);
        assert_eq!(decode(&b).unwrap().1.len(), 2);
        assert!(decode(&b[..b.len() - 1]).is_err());
        let mut more = b.clone();
        more.push(0);
        assert!(decode(&more).is_err());
        // The same message twice: out of order.
        let twice = encode(2, &[posting(9, 1, vec![0]), posting(9, 1, vec![0])]);
        assert!(decode(&twice).is_err());
    }

    #[test]
    fn a_damaged_pending_entry_is_an_error() {
        let e: Entry = [("ab".to_string(), vec![0, 4]), ("单".to_string(), vec![2])]
            .into_iter()
            .collect();
        let v = encode_entry(&e);
        assert_eq!(v.len(), entry_len(&e));
        assert_eq!(decode_entry(&v, |_| true).unwrap(), e);
        // Only the grams asked for are kept.
        let some = decode_entry(&v, |g| g == "单").unwrap();
        assert_eq!(some, [("单".to_string(), vec![2])]);
        for cut in 1..v.len() {
            assert!(decode_entry(&v[..cut], |_| true).is_err(), "cut at {cut}");
        }
        let mut more = v.clone();
        more.push(0);
        assert!(decode_entry(&more, |_| true).is_err());
        // A gram that is not UTF-8, and grams out of order.
        let mut bad = v.clone();
        bad[2] = 0xff;
        assert!(decode_entry(&bad, |_| true).is_err());
        let swapped = [1u8, 2, b'a', b'b', 0, 1, 2, b'a', b'a', 0];
        let mut twice = vec![2u8];
        twice.extend_from_slice(&swapped[1..5]);
        twice.extend_from_slice(&swapped[1..5]);
        assert!(decode_entry(&twice, |_| true).is_err());
    }

    fn arb_postings() -> impl Strategy<Value = Vec<Posting>> {
        proptest::collection::btree_map(
            (0u64..5_000, 0u64..50),
            proptest::collection::btree_set(0u32..2_000, 1..6),
            0..400,
        )
        .prop_map(|m| {
            let mut v: Vec<Posting> = m
                .into_iter()
                .map(|((mid, sid), offs)| posting(mid, sid, offs.into_iter().collect()))
                .collect();
            v.sort_by_key(Posting::order);
            v
        })
    }

    proptest! {
        #[test]
        fn blocks_round_trip_and_respect_their_bound(postings in arb_postings()) {
            let blocks = chunks(&postings);
            let mut back = Vec::new();
            for b in &blocks {
                let bytes = encode(0, b);
                prop_assert!(bytes.len() <= BLOCK_BYTES + 4 || b.len() == 1);
                let (_, got) = decode(&bytes).unwrap();
                back.extend(got);
            }
            prop_assert_eq!(back, postings);
        }

        #[test]
        fn pending_entries_round_trip(
            e in proptest::collection::btree_map(
                "[a-z单订]{1,3}",
                proptest::collection::btree_set(0u32..100_000, 1..5)
                    .prop_map(|s| s.into_iter().collect::<Vec<u32>>()),
                0..40,
            ).prop_map(|m| m.into_iter().collect::<Entry>())
        ) {
            let v = encode_entry(&e);
            prop_assert_eq!(v.len(), entry_len(&e));
            prop_assert_eq!(decode_entry(&v, |_| true).unwrap(), e);
        }

        /// Applying changes block by block gives what applying them to the
        /// whole list does, whatever run of blocks they fall in.
        #[test]
        fn apply_matches_a_model(
            postings in arb_postings(),
            adds in proptest::collection::vec((0u64..5_000, 0u64..50, 0u32..100), 0..40),
            removes in proptest::collection::vec(0usize..400, 0..40),
        ) {
            let t = 3;
            let gram = "ab";
            let mut model: BTreeMap<Order, Posting> =
                postings.iter().map(|p| (p.order(), p.clone())).collect();
            let mut changes = Changes::new();
            for (mid, sid, o) in adds {
                let p = posting(mid, sid, vec![o]);
                model.insert(p.order(), p.clone());
                changes.insert(p.order(), Some(p));
            }
            for i in removes {
                if let Some(p) = postings.get(i) {
                    model.remove(&p.order());
                    changes.insert(p.order(), None);
                }
            }
            // Stored: the postings in blocks, the first with the total.
            let mut store: BTreeMap<Vec<u8>, Vec<u8>> = BTreeMap::new();
            for (i, b) in chunks(&postings).iter().enumerate() {
                let total = if i == 0 { postings.len() as u64 } else { 0 };
                store.insert(block_key(t, gram, b.last().unwrap()).into_vec(), encode(total, b));
            }
            apply_to_map(&mut store, t, gram, &changes);
            let mut got = Vec::new();
            for (i, (k, v)) in store.iter().enumerate() {
                let (total, ps) = decode(v).unwrap();
                prop_assert_eq!(total, if i == 0 { model.len() as u64 } else { 0 });
                prop_assert_eq!(k, &block_key(t, gram, ps.last().unwrap()).into_vec());
                got.extend(ps);
            }
            let want: Vec<Posting> = model.into_values().collect();
            prop_assert_eq!(got, want);
        }
    }

    /// The caller's part of [`apply`] over a map: find the run and the
    /// first block, write, and carry the total to a new first block.
    fn apply_to_map(store: &mut BTreeMap<Vec<u8>, Vec<u8>>, t: u64, gram: &str, changes: &Changes) {
        let Some((lo, _)) = changes.first_key_value() else {
            return;
        };
        let (hi, _) = changes.last_key_value().unwrap();
        let key_of = |o: &Order| keys::text_block(t, gram, !o.0, o.1).into_vec();
        let all: Vec<(Vec<u8>, Vec<u8>)> =
            store.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let start = all
            .iter()
            .position(|(k, _)| *k >= key_of(lo))
            .unwrap_or(all.len().saturating_sub(1));
        let mut end = all
            .iter()
            .position(|(k, _)| *k >= key_of(hi))
            .map_or(all.len(), |i| i + 1);
        end = end.max(start + usize::from(!all.is_empty()));
        let run = &all[start.min(all.len())..end.min(all.len())];
        let first = if start == 0 || all.is_empty() {
            None
        } else {
            all.first()
        };
        let next = all.get(end);
        let w = apply(t, gram, run, first, next, changes.clone()).unwrap();
        for k in w.remove {
            store.remove(&k);
        }
        for (k, v) in w.put {
            store.insert(k, v);
        }
    }
}
