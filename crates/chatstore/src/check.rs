//! `check()`: verifies every invariant of the store and reports each
//! violation. It reads everything once in key order, looking up what each
//! record implies (index entries, n-grams, counters) and what each index entry
//! claims (its record), so its memory stays bounded by the agents of a tenant.
//!
//! Reads only; it recomputes what `write` maintains and may not change it.

use std::collections::HashMap;

use serde::Serialize;

use crate::codec::{self, AgentRec, MemberRec, MsgBody, SessionRec};
use crate::error::Result;
use crate::keys::{self, Counter, Field};
use crate::model::Account;
use crate::read::Snap;
use crate::storage::Bytes;
use crate::text::postings;
use crate::text::search;
use crate::write;

/// The outcome of [`crate::Store::check`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct CheckReport {
    /// True when no violation was found.
    pub ok: bool,
    /// Keys read.
    pub keys: u64,
    /// Tenants seen.
    pub tenants: u64,
    /// Each violation, in words.
    pub violations: Vec<String>,
}

/// The gram of a `T 22 len gram ...` or `T 23 len gram` key.
fn key_gram(k: &[u8]) -> String {
    let len = k.get(9).copied().unwrap_or(0) as usize;
    String::from_utf8_lossy(k.get(10..10 + len).unwrap_or_default()).into_owned()
}

#[derive(Default)]
struct Tally {
    members: u64,
    agents: u64,
    sessions: u64,
    messages: u64,
    max_session: u64,
    max_message: u64,
    agent_sessions: HashMap<u64, u64>,
    /// Per message-text gram, the postings the visible messages call for:
    /// how many, and the wrapping sum of a hash of each (message, session,
    /// offsets). A multiset compared with [`Tally::text_found`] in linear
    /// time: every posting present once, nothing else.
    text_expected: HashMap<String, (u64, u64)>,
    /// The same over the postings in the blocks.
    text_found: HashMap<String, (u64, u64)>,
    /// Per gram, the total its first block states.
    text_totals: HashMap<String, u64>,
    /// The gram and place of the last posting of the previous block.
    text_last: Option<(String, postings::Order)>,
    /// Per gram, its postings in pending entries (not in a block's total).
    text_pending: HashMap<String, u64>,
    /// The bytes of the tenant's pending entries.
    pending_bytes: usize,
}

/// The hash a posting adds to its gram's multiset.
fn posting_hash(mid: u64, sid: u64, offsets: &[u32]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::hash::DefaultHasher::new();
    (mid, sid, offsets).hash(&mut h);
    h.finish()
}

fn add_posting(to: &mut HashMap<String, (u64, u64)>, g: &str, mid: u64, sid: u64, offsets: &[u32]) {
    let e = to.entry(g.to_string()).or_default();
    e.0 += 1;
    e.1 = e.1.wrapping_add(posting_hash(mid, sid, offsets));
}

struct Checker<'a, 't> {
    store: &'a Snap<'t>,
    report: CheckReport,
    /// Gram whose postings are being counted: (tenant, field, gram key prefix).
    run: Option<(Vec<u8>, u64, u64)>,
}

impl<'t> Checker<'_, 't> {
    fn bad(&mut self, msg: String) {
        self.report.violations.push(msg);
    }

    fn exists(&self, k: impl AsRef<[u8]>) -> Result<Option<Bytes<'t>>> {
        self.store.data.get(k)
    }

    fn expect_value(&mut self, k: keys::Key, want: &[u8], what: String) -> Result<()> {
        match self.exists(&k)? {
            None => self.bad(format!("{what}: index entry missing")),
            Some(v) if v.as_ref() != want => {
                self.bad(format!("{what}: index entry has a wrong value"))
            }
            Some(_) => {}
        }
        Ok(())
    }

    fn member(&mut self, t: u64, k: &[u8], v: &[u8], tally: &mut Tally) -> Result<()> {
        let uid = keys::last_u64(k);
        tally.members += 1;
        let rec: MemberRec = match codec::decode(v, "member") {
            Ok(r) => r,
            Err(e) => {
                self.bad(format!("member {uid} of tenant {t}: {e}"));
                return Ok(());
            }
        };
        let fresh = write::member_rec(&rec.member, rec.session_count);
        if fresh.norm_nick != rec.norm_nick || fresh.phones != rec.phones {
            self.bad(format!(
                "member {uid} of tenant {t}: stored search forms are stale"
            ));
        }
        for (f, g) in write::member_grams(&rec, self.store.short_grams) {
            if self.exists(keys::gram(t, f, &g, uid))?.is_none() {
                self.bad(format!(
                    "member {uid} of tenant {t}: n-gram {g:?} ({f:?}) missing"
                ));
            }
        }
        let n = self
            .store
            .data
            .scan_prefix(keys::sessions_of_member(t, uid))
            .count() as u64;
        if n != rec.session_count {
            self.bad(format!(
                "member {uid} of tenant {t}: session_count {} but {n} sessions",
                rec.session_count
            ));
        }
        Ok(())
    }

    fn session(&mut self, t: u64, k: &[u8], v: &[u8], tally: &mut Tally) -> Result<()> {
        let sid = keys::last_desc(k);
        tally.sessions += 1;
        tally.max_session = tally.max_session.max(sid);
        let rec: SessionRec = match codec::decode(v, "session") {
            Ok(r) => r,
            Err(e) => {
                self.bad(format!("session {sid} of tenant {t}: {e}"));
                return Ok(());
            }
        };
        let s = &rec.session;
        let what = format!("session {sid} of tenant {t}");
        if s.id != sid || s.tenant != t {
            self.bad(format!(
                "{what}: record names tenant {} id {}",
                s.tenant, s.id
            ));
        }
        *tally.agent_sessions.entry(s.agent_id).or_default() += 1;
        if self.exists(keys::member(t, s.uid))?.is_none() {
            self.bad(format!("{what}: member {} missing", s.uid));
        }
        if s.agent_id != 0 && self.exists(keys::agent(t, s.agent_id))?.is_none() {
            self.bad(format!("{what}: agent {} missing", s.agent_id));
        }
        let act = rec.activity_at();
        let uid = codec::encode_u64(s.uid);
        self.expect_value(
            keys::by_agent(t, s.agent_id, sid),
            &uid,
            format!("{what} (by agent)"),
        )?;
        self.expect_value(keys::recent(t, act, sid), &uid, format!("{what} (recent)"))?;
        self.expect_value(
            keys::agent_recent(t, s.agent_id, act, sid),
            &uid,
            format!("{what} (agent recent)"),
        )?;
        let mut bm = s.agent_id.to_be_bytes().to_vec();
        bm.extend_from_slice(&keys::time_bits(act).to_be_bytes());
        self.expect_value(
            keys::by_member(t, s.uid, sid),
            &bm,
            format!("{what} (by member)"),
        )?;
        let msgs = self.store.data.scan_prefix(keys::messages_of(t, sid));
        let mut count = 0u64;
        let mut last: Option<(u64, i64)> = None;
        let mut unread = SessionRec {
            unread_by_agent: 0,
            unread_by_member: 0,
            ..rec.clone()
        };
        for item in msgs {
            let (mk, mv) = item?;
            count += 1;
            let mid = keys::last_desc(&mk);
            match codec::decode::<MsgBody>(&mv, "message") {
                Ok(b) => {
                    // Newest first: the first message is the last one written.
                    if last.is_none() {
                        last = Some((mid, b.time));
                    }
                    if b.deleted_at != 0 {
                        self.bad(format!("message {mid} of {what}: deleted but visible"));
                    }
                    if unread.counts_unread(&b, mid) {
                        unread.bump_unread(b.sender, 1);
                    }
                }
                Err(e) => self.bad(format!("message {mid} of {what}: {e}")),
            }
        }
        if (unread.unread_by_agent, unread.unread_by_member)
            != (rec.unread_by_agent, rec.unread_by_member)
        {
            self.bad(format!(
                "{what}: unread counts {}/{} but {}/{} messages unread (agent/member)",
                rec.unread_by_agent,
                rec.unread_by_member,
                unread.unread_by_agent,
                unread.unread_by_member
            ));
        }
        if count != rec.msg_count {
            self.bad(format!(
                "{what}: message count {} but {count} messages",
                rec.msg_count
            ));
        }
        if last != rec.last {
            self.bad(format!(
                "{what}: denormalized last message is not the newest message"
            ));
        }
        Ok(())
    }

    fn session_index(&mut self, t: u64, space: u8, k: &[u8], v: &[u8]) -> Result<()> {
        let sid = if space == keys::BY_MEMBER {
            keys::last_u64(k)
        } else {
            keys::last_desc(k)
        };
        let what = format!("index entry {space:#04x} of session {sid} of tenant {t}");
        let Some(sv) = self.exists(keys::session(t, sid))? else {
            self.bad(format!("{what}: session missing"));
            return Ok(());
        };
        let Ok(rec) = codec::decode::<SessionRec>(&sv, "session") else {
            return Ok(()); // reported with the record
        };
        let s = &rec.session;
        let act = rec.activity_at();
        let expected = match space {
            keys::BY_AGENT => keys::by_agent(t, s.agent_id, sid),
            keys::RECENT => keys::recent(t, act, sid),
            keys::AGENT_RECENT => keys::agent_recent(t, s.agent_id, act, sid),
            _ => keys::by_member(t, s.uid, sid),
        };
        if expected.as_ref() != k {
            self.bad(format!(
                "{what}: stale (does not match the session's agent, member or time)"
            ));
        }
        let _ = v;
        Ok(())
    }

    fn gram(&mut self, t: u64, k: &[u8]) -> Result<()> {
        let uid = keys::last_u64(k);
        let prefix = k[..k.len() - 8].to_vec();
        let field = if k[9] == Field::Nick as u8 {
            Field::Nick
        } else {
            Field::Mobile
        };
        let gram = String::from_utf8_lossy(&k[11..k.len() - 8]).into_owned();
        match self.exists(keys::member(t, uid))? {
            None => self.bad(format!(
                "n-gram {gram:?} of tenant {t}: member {uid} missing"
            )),
            Some(v) => {
                if let Ok(rec) = codec::decode::<MemberRec>(&v, "member") {
                    if !write::member_grams(&rec, self.store.short_grams)
                        .contains(&(field, gram.clone()))
                    {
                        self.bad(format!(
                            "n-gram {gram:?} of tenant {t}: not in member {uid}'s text"
                        ));
                    }
                }
            }
        }
        match &mut self.run {
            Some((p, _, n)) if *p == prefix => *n += 1,
            _ => {
                self.end_run()?;
                self.run = Some((prefix, t, 1));
            }
        }
        Ok(())
    }

    fn end_run(&mut self) -> Result<()> {
        if let Some((prefix, t, n)) = self.run.take() {
            let mut ck = prefix.clone();
            ck[8] = keys::GRAM_COUNT;
            let stored = codec::decode_u64(self.exists(&ck)?.as_deref())?;
            if stored != n {
                self.bad(format!(
                    "n-gram count of tenant {t}: stored {stored}, postings {n}"
                ));
            }
        }
        Ok(())
    }

    fn gram_count(&mut self, t: u64, k: &[u8]) -> Result<()> {
        let mut pk = k.to_vec();
        pk[8] = keys::GRAM;
        if self.store.data.scan_prefix(&pk).next().is_none() {
            self.bad(format!("n-gram count of tenant {t} without postings"));
        }
        Ok(())
    }

    /// The message-text postings a visible message calls for.
    fn expect_text(&mut self, k: &[u8], v: &[u8], tally: &mut Tally) -> Result<()> {
        if !self.store.text_index {
            return Ok(());
        }
        let body = codec::decode::<MsgBody>(v, "message")?;
        if body.recalled() {
            return Ok(());
        }
        let (sid, mid) = (keys::u64_at(k, 9), keys::last_desc(k));
        for (g, offsets) in search::message_gram_positions(&search::normalize(&body.content)) {
            add_posting(&mut tally.text_expected, &g, mid, sid, &offsets);
        }
        Ok(())
    }

    /// A block of message-text postings: named by its last posting, in
    /// order after the gram's previous block, within its size, the total
    /// in the gram's first block only.
    fn text_block(&mut self, t: u64, k: &[u8], v: &[u8], tally: &mut Tally) -> Result<()> {
        let g = key_gram(k);
        let what = format!("text posting block of gram {g:?} of tenant {t}");
        if !self.store.text_index {
            self.bad(format!("{what} in a store without the text index"));
        }
        let (total, list) = match postings::decode(v) {
            Ok(b) => b,
            Err(e) => {
                self.bad(format!("{what}: {e}"));
                return Ok(());
            }
        };
        let Some(last) = list.last() else {
            self.bad(format!("{what}: empty"));
            return Ok(());
        };
        if postings::block_key(t, &g, last).as_ref() != k {
            self.bad(format!("{what}: its key does not name its last posting"));
        }
        if list.len() > 1 && v.len() > postings::BLOCK_BYTES + 20 {
            self.bad(format!("{what}: {} bytes", v.len()));
        }
        let first_of_gram = tally.text_last.as_ref().is_none_or(|(pg, _)| *pg != g);
        if !first_of_gram {
            let (_, prev) = tally.text_last.as_ref().expect("checked above");
            if postings::order(list[0].mid, list[0].sid) <= *prev {
                self.bad(format!("{what}: overlaps the block before it"));
            }
        }
        if first_of_gram {
            tally.text_totals.insert(g.clone(), total);
        } else if total != 0 {
            self.bad(format!("{what}: states a total but is not the first"));
        }
        for p in &list {
            add_posting(&mut tally.text_found, &g, p.mid, p.sid, &p.offsets);
        }
        tally.text_last = Some((g, postings::order(last.mid, last.sid)));
        Ok(())
    }

    /// A pending entry: a message's postings outside the blocks.
    fn text_pending(&mut self, t: u64, k: &[u8], v: &[u8], tally: &mut Tally) {
        let Some((mid, sid)) = keys::parse_text_pending(k) else {
            self.bad(format!(
                "tenant {t}: a pending text posting key of a wrong size"
            ));
            return;
        };
        let what = format!("pending text postings of message {mid} of session {sid} of tenant {t}");
        if !self.store.text_index {
            self.bad(format!("{what} in a store without the text index"));
        }
        let entry = match postings::decode_entry(v, |_| true) {
            Ok(e) => e,
            Err(e) => {
                self.bad(format!("{what}: {e}"));
                return;
            }
        };
        if entry.is_empty() {
            self.bad(format!("{what}: empty"));
        }
        tally.pending_bytes += v.len();
        for (g, offsets) in &entry {
            add_posting(&mut tally.text_found, g, mid, sid, offsets);
            *tally.text_pending.entry(g.clone()).or_default() += 1;
        }
    }

    fn finish_tenant(&mut self, t: u64, tally: &Tally) -> Result<()> {
        self.end_run()?;
        if tally.pending_bytes > crate::options::MAX_TEXT_PENDING_BYTES {
            self.bad(format!(
                "tenant {t}: {} bytes of pending text postings, over the {} a write may leave",
                tally.pending_bytes,
                crate::options::MAX_TEXT_PENDING_BYTES
            ));
        }
        let none = (0, 0);
        for (g, want) in &tally.text_expected {
            let found = tally.text_found.get(g).unwrap_or(&none);
            if found != want {
                self.bad(format!(
                    "tenant {t}: message text gram {g:?}: {} visible messages hold it, its \
                     postings name {}{}",
                    want.0,
                    found.0,
                    if found.0 == want.0 { " others" } else { "" }
                ));
            }
        }
        for (g, found) in &tally.text_found {
            if !tally.text_expected.contains_key(g) {
                self.bad(format!(
                    "tenant {t}: message text gram {g:?}: {} postings, no visible message holds it",
                    found.0
                ));
            }
        }
        for (g, total) in &tally.text_totals {
            let n = tally.text_found.get(g).map_or(0, |f| f.0)
                - tally.text_pending.get(g).copied().unwrap_or(0);
            if *total != n {
                self.bad(format!(
                    "tenant {t}: message text gram {g:?} states {total} postings but has {n}"
                ));
            }
        }
        let c = |s: &Self, kind| -> Result<u64> {
            codec::decode_u64(s.exists(keys::counter(t, kind))?.as_deref())
        };
        for (kind, real) in [
            (Counter::Members, tally.members),
            (Counter::Agents, tally.agents),
            (Counter::Sessions, tally.sessions),
            (Counter::Messages, tally.messages),
        ] {
            let stored = c(self, kind)?;
            if stored != real {
                self.bad(format!(
                    "tenant {t}: counter {kind:?} is {stored} but {real} exist"
                ));
            }
        }
        if tally.max_session > 0 && c(self, Counter::NextSession)? <= tally.max_session {
            self.bad(format!(
                "tenant {t}: next session id not above {}",
                tally.max_session
            ));
        }
        if tally.max_message > 0 && c(self, Counter::NextMessage)? <= tally.max_message {
            self.bad(format!(
                "tenant {t}: next message id not above {}",
                tally.max_message
            ));
        }
        for item in self
            .store
            .data
            .scan_prefix(keys::counter(t, Counter::AgentSessions))
        {
            let (k, v) = item?;
            let agent = keys::last_u64(&k);
            let stored = codec::decode_u64(Some(&v))?;
            let real = tally.agent_sessions.get(&agent).copied().unwrap_or(0);
            if stored != real {
                self.bad(format!(
                    "tenant {t}: agent {agent} session counter {stored} but {real} sessions"
                ));
            }
        }
        for (agent, real) in &tally.agent_sessions {
            if self.exists(keys::agent_sessions(t, *agent))?.is_none() {
                self.bad(format!(
                    "tenant {t}: agent {agent} has {real} sessions but no counter"
                ));
            }
        }
        Ok(())
    }
}

impl Snap<'_> {
    /// Verifies every invariant: each index entry has its record and each
    /// record its index entries, counters equal real counts, n-grams match
    /// the stored text, denormalized last messages are right.
    pub(crate) fn check(&self) -> Result<CheckReport> {
        let mut ck = Checker {
            store: self,
            report: CheckReport::default(),
            run: None,
        };
        for item in self.accounts.iter() {
            let (_, v) = item?;
            ck.report.keys += 1;
            if let Err(e) = codec::decode::<Account>(&v, "account") {
                ck.bad(format!("{e}"));
            }
        }
        let mut current: Option<(u64, Tally)> = None;
        for item in self.data.iter() {
            let (k, v) = item?;
            ck.report.keys += 1;
            if k.len() < 9 {
                ck.bad(format!("key {:?} is too short", k.as_ref()));
                continue;
            }
            let t = keys::u64_at(&k, 0);
            if current.as_ref().is_none_or(|(ct, _)| *ct != t) {
                if let Some((ct, tally)) = current.take() {
                    ck.finish_tenant(ct, &tally)?;
                }
                ck.report.tenants += 1;
                current = Some((t, Tally::default()));
            }
            let tally = &mut current.as_mut().expect("set above").1;
            match k[8] {
                keys::MEMBER => ck.member(t, &k, &v, tally)?,
                keys::AGENT => {
                    tally.agents += 1;
                    if let Err(e) = codec::decode::<AgentRec>(&v, "agent") {
                        ck.bad(format!("agent of tenant {t}: {e}"));
                    }
                }
                keys::SESSION => ck.session(t, &k, &v, tally)?,
                keys::MESSAGE => {
                    ck.expect_text(&k, &v, tally)?;
                    tally.messages += 1;
                    tally.max_message = tally.max_message.max(keys::last_desc(&k));
                    let sid = keys::u64_at(&k, 9);
                    if ck.exists(keys::session(t, sid))?.is_none() {
                        ck.bad(format!(
                            "message {} of tenant {t}: session {sid} missing",
                            keys::last_desc(&k)
                        ));
                    }
                }
                keys::BY_AGENT | keys::RECENT | keys::AGENT_RECENT | keys::BY_MEMBER => {
                    ck.session_index(t, k[8], &k, &v)?
                }
                keys::DELETED => {
                    let (sid, mid) = (keys::u64_at(&k, 9), keys::last_desc(&k));
                    let what = format!("deleted message {mid} of session {sid} of tenant {t}");
                    match codec::decode::<MsgBody>(&v, "message") {
                        Ok(b) if b.deleted_at == 0 => ck.bad(format!("{what}: no deletion time")),
                        Ok(_) => {}
                        Err(e) => ck.bad(format!("{what}: {e}")),
                    }
                    if ck.exists(keys::session(t, sid))?.is_none() {
                        ck.bad(format!("{what}: session missing"));
                    }
                    if ck.exists(keys::message(t, sid, mid))?.is_some() {
                        ck.bad(format!("{what}: also visible"));
                    }
                }
                keys::GRAM => ck.gram(t, &k)?,
                keys::GRAM_COUNT => ck.gram_count(t, &k)?,
                keys::TEXT_BLOCK => ck.text_block(t, &k, &v, tally)?,
                keys::TEXT_PENDING => ck.text_pending(t, &k, &v, tally),
                keys::TEXT | keys::TEXT_COUNT => ck.bad(format!(
                    "tenant {t}: a message-text posting of the old layout (format 1) in a store \
                     of format {}",
                    if ck.store.text_index { 5 } else { 2 }
                )),
                keys::COUNTER | keys::REQUEST => {}
                other => ck.bad(format!("tenant {t}: unknown key space {other:#04x}")),
            }
        }
        if let Some((ct, tally)) = current.take() {
            ck.finish_tenant(ct, &tally)?;
        }
        ck.report.ok = ck.report.violations.is_empty();
        Ok(ck.report)
    }
}

#[cfg(test)]
mod tests {
    use crate::keys;
    use crate::storage::Space;
    use crate::testing::{agent, engine, member, message, session};

    /// A store with what each kind of record implies.
    fn store() -> (crate::engine::Engine, u64) {
        let e = engine();
        member(&e, 2, 7, "李小龙", "185 1669 0005");
        agent(&e, 2, 1);
        let sid = session(&e, 2, 0, 7, 1);
        message(&e, 2, sid, "订单 12345 已发货", 1);
        (e, sid)
    }

    fn damage(e: &crate::engine::Engine, f: impl FnOnce(&mut dyn crate::storage::WriteTxn)) {
        let mut w = e.begin_write().unwrap();
        f(&mut *w);
        w.commit().unwrap();
    }

    #[test]
    fn a_clean_store_checks_clean() {
        let (e, _) = store();
        let r = e.check().unwrap();
        assert!(r.ok, "{:?}", r.violations);
        assert_eq!(r.tenants, 1);
        assert!(r.keys > 10);
    }

    #[test]
    fn a_missing_index_entry_is_named() {
        let (e, sid) = store();
        damage(&e, |w| {
            w.delete(Space::Data, keys::by_agent(2, 1, sid).as_ref())
                .unwrap()
        });
        let r = e.check().unwrap();
        assert!(!r.ok);
        assert!(
            r.violations.iter().any(|v| v.contains(&format!("{sid}"))),
            "{:?}",
            r.violations
        );
    }

    #[test]
    fn a_record_that_does_not_decode_is_named() {
        let (e, _) = store();
        damage(&e, |w| {
            w.put(Space::Data, keys::member(2, 7).as_ref(), b"\xff\x00")
                .unwrap()
        });
        let r = e.check();
        let named = match r {
            Ok(r) => !r.ok && r.violations.iter().any(|v| v.contains("member")),
            Err(err) => err.kind() == crate::ErrorKind::Corrupt,
        };
        assert!(named);
    }
}
