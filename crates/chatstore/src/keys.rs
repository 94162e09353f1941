//! Key layout of the `data` tree (see ARCHITECTURE.md).
//!
//! Every key begins with the tenant as 8 big-endian bytes, then a one-byte
//! *space* saying what the key holds, then fixed-width big-endian parts, so
//! byte order is numeric order. Times are signed; they are stored with the
//! sign bit flipped so negative times sort before positive ones. Parts
//! listed newest first (session and message ids, activity times) are
//! stored bitwise inverted (`!x`), so that every list, newest first
//! included, is a *forward* range scan (sled's reverse iteration costs
//! several times more per key). Values: records are `codec` encodings,
//! counters u64 big-endian, member n-gram postings empty (the key says
//! it all), message-text postings blocks (`text::postings`).
//!
//! Holds the layout only: it imports nothing, and nothing here reads or
//! writes a store.

/// Members: `T 01 uid` -> `MemberRec`.
pub(crate) const MEMBER: u8 = 0x01;
/// Agents: `T 02 id` -> `AgentRec`.
pub(crate) const AGENT: u8 = 0x02;
/// Sessions: `T 03 !sid` -> `SessionRec`.
pub(crate) const SESSION: u8 = 0x03;
/// Messages: `T 04 sid !mid` -> `MsgBody`.
pub(crate) const MESSAGE: u8 = 0x04;
/// Deleted messages: `T 05 sid !mid` -> `MsgBody` (with `deleted_at`).
/// Out of every view; kept for export.
pub(crate) const DELETED: u8 = 0x05;
/// Sessions of an agent, newest id first: `T 10 agent !sid` -> uid.
pub(crate) const BY_AGENT: u8 = 0x10;
/// Sessions of a tenant by activity: `T 11 !time !sid` -> uid.
pub(crate) const RECENT: u8 = 0x11;
/// Sessions of an agent by activity: `T 12 agent !time !sid` -> uid.
pub(crate) const AGENT_RECENT: u8 = 0x12;
/// Sessions of a member: `T 13 uid sid` -> agent(8) time(8).
pub(crate) const BY_MEMBER: u8 = 0x13;
/// N-gram postings: `T 20 field len gram uid` -> empty.
pub(crate) const GRAM: u8 = 0x20;
/// N-gram posting counts: `T 21 field len gram` -> u64.
pub(crate) const GRAM_COUNT: u8 = 0x21;
/// Message text postings of store format 1 only (read, never written):
/// `T 22 len gram !mid sid` -> empty, newest message first (the session is
/// in the key: a caller may reuse a message id in another session).
pub(crate) const TEXT: u8 = 0x22;
/// Message text posting counts of store format 1 only: `T 23 len gram` -> u64.
pub(crate) const TEXT_COUNT: u8 = 0x23;
/// Message text postings in blocks (store format 3): `T 24 len gram !mid
/// sid` (the block's oldest posting) -> a block (see `postings.rs`).
pub(crate) const TEXT_BLOCK: u8 = 0x24;
/// Message text postings not yet in blocks, a key per message (store
/// format 5): `T 25 !mid sid` -> the message's grams and their offsets (see
/// `postings.rs`, "The pending list").
pub(crate) const TEXT_PENDING: u8 = 0x25;
/// Counters: `T 30 kind [agent]` -> u64.
pub(crate) const COUNTER: u8 = 0x30;
/// Writes applied for another process: `T 40 request-id(16)` -> applied
/// at (unix seconds, 8) and result (8). A retried request finds its entry
/// and is not applied twice; entries older than an hour are pruned.
pub(crate) const REQUEST: u8 = 0x40;

/// Meta-space prefix of the cascading deletes under way:
/// `cascade/ T kind id` -> empty (see `write::cascade_step`).
pub(crate) const CASCADE_PREFIX: &[u8] = b"cascade/";

/// `cascade/ T kind id`: the marker of a cascading delete under way.
pub(crate) fn cascade(t: u64, kind: u8, id: u64) -> Vec<u8> {
    let mut k = CASCADE_PREFIX.to_vec();
    k.extend_from_slice(&t.to_be_bytes());
    k.push(kind);
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The tenant, kind and id of a [`cascade`] marker.
pub(crate) fn parse_cascade(k: &[u8]) -> Option<(u64, u8, u64)> {
    let rest = k.strip_prefix(CASCADE_PREFIX)?;
    if rest.len() != 17 {
        return None;
    }
    Some((u64_at(rest, 0), rest[8], u64_at(rest, 9)))
}

/// What a store's format fixes about its keys, beside the key layout
/// itself (see `engine::STORE_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    /// The store keeps the message-text index.
    pub text_index: bool,
    /// Nicknames and mobiles are indexed by grams of every length from one
    /// character (formats 3 and 4), not from three (formats 1 and 2).
    pub short_grams: bool,
    /// The most bytes of message-text postings a tenant keeps pending
    /// (`Options::text_pending_bytes`).
    pub pending_bytes: usize,
}

/// Which text an n-gram posting indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub(crate) enum Field {
    /// The normalized nickname.
    Nick = 0,
    /// The mobile's digit variants.
    Mobile = 1,
}

/// The kinds of per-tenant counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub(crate) enum Counter {
    /// Number of members.
    Members = 1,
    /// Number of sessions.
    Sessions = 2,
    /// Number of messages.
    Messages = 3,
    /// One more than the greatest session id ever written.
    NextSession = 4,
    /// One more than the greatest message id ever written.
    NextMessage = 5,
    /// Number of sessions of one agent (keyed with the agent id).
    AgentSessions = 6,
    /// Number of agents.
    Agents = 7,
}

/// Encodes a signed time so that byte order is numeric order.
pub(crate) fn time_bits(t: i64) -> u64 {
    (t as u64) ^ (1 << 63)
}

/// Inverse of [`time_bits`].
pub(crate) fn time_from_bits(b: u64) -> i64 {
    (b ^ (1 << 63)) as i64
}

/// A key under construction.
#[derive(Debug, Clone)]
pub(crate) struct Key(Vec<u8>);

impl Key {
    /// Starts a key with the tenant and space.
    pub(crate) fn new(tenant: u64, space: u8) -> Key {
        let mut v = Vec::with_capacity(40);
        v.extend_from_slice(&tenant.to_be_bytes());
        v.push(space);
        Key(v)
    }
    /// Appends a big-endian u64.
    pub(crate) fn u64(mut self, x: u64) -> Key {
        self.0.extend_from_slice(&x.to_be_bytes());
        self
    }
    /// Appends an inverted big-endian u64 (descending order).
    pub(crate) fn desc(self, x: u64) -> Key {
        self.u64(!x)
    }
    /// Appends an inverted time (newest first).
    pub(crate) fn time_desc(self, t: i64) -> Key {
        self.u64(!time_bits(t))
    }
    /// Appends one byte.
    pub(crate) fn byte(mut self, b: u8) -> Key {
        self.0.push(b);
        self
    }
    /// Appends a length-prefixed string (at most 255 bytes).
    pub(crate) fn short_str(mut self, s: &str) -> Key {
        debug_assert!(s.len() < 256);
        self.0.push(s.len() as u8);
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    /// The bytes.
    pub(crate) fn into_vec(self) -> Vec<u8> {
        self.0
    }
}

impl AsRef<[u8]> for Key {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// `T 40 id`
/// Where an import chunk sent by another process records how far it got,
/// in the meta space (an import spans tenants): `chatstore.import/` and the
/// chunk's id (16 bytes BE) -> applied-at (u64 BE), then the progress.
pub(crate) fn import_progress(id: u128) -> Vec<u8> {
    let mut k = IMPORT_PROGRESS_PREFIX.to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

/// The prefix of [`import_progress`] keys.
pub(crate) const IMPORT_PROGRESS_PREFIX: &[u8] = b"chatstore.import/";

pub(crate) fn request(t: u64, id: u128) -> Key {
    let mut k = Key::new(t, REQUEST);
    k.0.extend_from_slice(&id.to_be_bytes());
    k
}

/// `T 01 uid`
pub(crate) fn member(t: u64, uid: u64) -> Key {
    Key::new(t, MEMBER).u64(uid)
}
/// `T 02 id`
pub(crate) fn agent(t: u64, id: u64) -> Key {
    Key::new(t, AGENT).u64(id)
}
/// `T 03 !sid`
pub(crate) fn session(t: u64, sid: u64) -> Key {
    Key::new(t, SESSION).desc(sid)
}
/// `T 04 sid !mid`
pub(crate) fn message(t: u64, sid: u64, mid: u64) -> Key {
    Key::new(t, MESSAGE).u64(sid).desc(mid)
}
/// `T 05 sid !mid`
pub(crate) fn deleted(t: u64, sid: u64, mid: u64) -> Key {
    Key::new(t, DELETED).u64(sid).desc(mid)
}
/// `T 05 sid`: prefix of a session's deleted messages.
pub(crate) fn deleted_of(t: u64, sid: u64) -> Key {
    Key::new(t, DELETED).u64(sid)
}
/// `T 04 sid`: prefix of a session's messages.
pub(crate) fn messages_of(t: u64, sid: u64) -> Key {
    Key::new(t, MESSAGE).u64(sid)
}
/// `T 10 agent !sid`
pub(crate) fn by_agent(t: u64, agent: u64, sid: u64) -> Key {
    Key::new(t, BY_AGENT).u64(agent).desc(sid)
}
/// `T 11 !time !sid`
pub(crate) fn recent(t: u64, time: i64, sid: u64) -> Key {
    Key::new(t, RECENT).time_desc(time).desc(sid)
}
/// `T 12 agent !time !sid`
pub(crate) fn agent_recent(t: u64, agent: u64, time: i64, sid: u64) -> Key {
    Key::new(t, AGENT_RECENT)
        .u64(agent)
        .time_desc(time)
        .desc(sid)
}
/// `T 13 uid sid`
pub(crate) fn by_member(t: u64, uid: u64, sid: u64) -> Key {
    Key::new(t, BY_MEMBER).u64(uid).u64(sid)
}
/// `T 13 uid`: prefix of a member's sessions.
pub(crate) fn sessions_of_member(t: u64, uid: u64) -> Key {
    Key::new(t, BY_MEMBER).u64(uid)
}
/// `T 20 field len gram uid`
pub(crate) fn gram(t: u64, field: Field, gram: &str, uid: u64) -> Key {
    gram_prefix(t, field, gram).u64(uid)
}
/// `T 24 len gram !mid sid`: the block of a gram's postings whose oldest
/// posting is message `mid` of session `sid`.
pub(crate) fn text_block(t: u64, gram: &str, mid: u64, sid: u64) -> Key {
    text_block_prefix(t, gram).desc(mid).u64(sid)
}
/// `T 24 len gram`: prefix of one gram's posting blocks.
pub(crate) fn text_block_prefix(t: u64, gram: &str) -> Key {
    Key::new(t, TEXT_BLOCK).short_str(gram)
}
/// `T 25 !mid sid`: the pending postings of message `mid` of session
/// `sid`.
pub(crate) fn text_pending(t: u64, mid: u64, sid: u64) -> Key {
    Key::new(t, TEXT_PENDING).desc(mid).u64(sid)
}
/// `T 25`: prefix of a tenant's pending postings.
pub(crate) fn text_pending_prefix(t: u64) -> Key {
    Key::new(t, TEXT_PENDING)
}
/// The message id and session of a [`text_pending`] key, if it is one.
pub(crate) fn parse_text_pending(k: &[u8]) -> Option<(u64, u64)> {
    (k.len() == 25 && k[8] == TEXT_PENDING).then(|| (!u64_at(k, 9), u64_at(k, 17)))
}
/// `T 20 field len gram`: prefix of one gram's postings.
pub(crate) fn gram_prefix(t: u64, field: Field, gram: &str) -> Key {
    Key::new(t, GRAM).byte(field as u8).short_str(gram)
}
/// `T 21 field len gram`
pub(crate) fn gram_count(t: u64, field: Field, gram: &str) -> Key {
    Key::new(t, GRAM_COUNT).byte(field as u8).short_str(gram)
}
/// `T 30 kind`
pub(crate) fn counter(t: u64, kind: Counter) -> Key {
    Key::new(t, COUNTER).byte(kind as u8)
}
/// `T 30 06 agent`
pub(crate) fn agent_sessions(t: u64, agent: u64) -> Key {
    counter(t, Counter::AgentSessions).u64(agent)
}

/// Reads the big-endian u64 at `at` of a key.
pub(crate) fn u64_at(k: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&k[at..at + 8]);
    u64::from_be_bytes(b)
}

/// Reads the big-endian u64 that ends a key.
pub(crate) fn last_u64(k: &[u8]) -> u64 {
    u64_at(k, k.len() - 8)
}

/// Reads the inverted u64 that ends a key (session and message ids).
pub(crate) fn last_desc(k: &[u8]) -> u64 {
    !last_u64(k)
}

/// Reads an inverted time at `at`.
pub(crate) fn time_desc_at(k: &[u8], at: usize) -> i64 {
    time_from_bits(!u64_at(k, at))
}

/// The smallest key greater than every key starting with `prefix`
/// (`None` when the prefix is all `0xff`).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut v = prefix.to_vec();
    while let Some(last) = v.pop() {
        if last < 0xff {
            v.push(last + 1);
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_numerically_and_by_time() {
        // Newest first: greater ids and later times sort first.
        assert!(session(1, 256).as_ref() < session(1, 255).as_ref());
        assert!(session(1, 0).as_ref() < session(2, u64::MAX).as_ref());
        assert!(recent(1, 0, 1).as_ref() < recent(1, -5, 9).as_ref());
        assert!(recent(1, 1, 0).as_ref() < recent(1, 0, 1).as_ref());
        assert!(recent(1, 7, 2).as_ref() < recent(1, 7, 1).as_ref());
        assert_eq!(time_from_bits(time_bits(-42)), -42);
        assert_eq!(time_desc_at(recent(1, -42, 3).as_ref(), 9), -42);
        assert_eq!(last_desc(message(1, 2, 3).as_ref()), 3);
    }

    #[test]
    fn gram_prefixes_do_not_overlap_longer_grams() {
        let ab = gram_prefix(1, Field::Nick, "ab");
        let abc = gram(1, Field::Nick, "abc", 7);
        assert!(!abc.as_ref().starts_with(ab.as_ref()));
    }

    #[test]
    fn prefix_end_carries() {
        assert_eq!(prefix_end(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_end(&[0xff]), None);
    }
}
