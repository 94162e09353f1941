//! Records in and out of this process's engine: an import applies a
//! stream of JSON Lines in batches, an export reads the store by key in
//! chunks.
//!
//! Import streams: it holds one batch of records at a time (constant memory
//! for any file), applies each batch in one transaction, and on a refused
//! line commits the lines before it and reports `line N: reason`. Records are
//! upserts by key, so re-running an interrupted import is safe.

use std::io::{BufRead, Read};
use std::ops::Bound;

use super::{new_session_hash, Engine};
use crate::codec::{self, AgentRec, MemberRec, MsgBody, SessionRec};
use crate::error::{Error, Result};
use crate::jsonl::{
    ImportSummary, ReadMark, Record, IMPORT_BATCH, IMPORT_BATCH_BYTES, IMPORT_BATCH_TEXT,
    MAX_LINE_BYTES,
};
use crate::keys;
use crate::model::Reader;
use crate::storage::{Space, Tree};
use crate::write::{self, put_all, Tx};

/// Which import a batch belongs to: an import chunk's id (see
/// `Engine::import_jsonl`) and where the chunk starts.
#[derive(Debug, Clone, Copy)]
struct Chunk {
    once: Option<u128>,
    first_line: u64,
}

/// How far an import chunk got: its last line applied and what it counted.
/// Stored as the applied-at time (u64 BE, for pruning) and this as JSON.
#[derive(serde::Serialize, serde::Deserialize)]
struct Progress {
    through: u64,
    summary: ImportSummary,
}

struct Pending {
    line: u64,
    record: Record,
    /// Hash for a new session written without one.
    hash: String,
}

fn apply(tx: &Tx, p: &Pending) -> write::TxResult<()> {
    match &p.record {
        Record::Member(m) => write::upsert_member(tx, m),
        Record::Agent(a) => write::upsert_agent(tx, a),
        Record::Session(s) => write::upsert_session(tx, s, &p.hash).map(|_| ()),
        Record::Message(m) => write::append_message(tx, m).map(|_| ()),
        Record::Read(r) => {
            write::mark_read(tx, r.tenant, r.session_id, Reader::Agent, r.agent_read_upto)?;
            write::mark_read(
                tx,
                r.tenant,
                r.session_id,
                Reader::Member,
                r.member_read_upto,
            )
            .map(|_| ())
        }
        Record::Account(_) => unreachable!("accounts are written outside data batches"),
    }
}

impl Engine {
    /// Imports JSON Lines from a reader whose first line is line
    /// `first_line + 1` of the import (errors name lines that way).
    /// `progress` is called after each batch with the bytes read so far.
    ///
    /// With `once` (an import chunk sent by another process), every batch
    /// records in its own transaction how far the chunk got and what it
    /// counted (`keys::import_progress`); a retry of the chunk with the
    /// same id skips the lines already applied and returns the summary of
    /// one application.
    pub(crate) fn import_jsonl<R: BufRead>(
        &self,
        mut reader: R,
        first_line: u64,
        once: Option<u128>,
        mut progress: impl FnMut(u64),
    ) -> Result<ImportSummary> {
        self.live()?;
        let (applied_through, mut summary) = match once {
            Some(id) => self.import_progress(id)?,
            None => (0, ImportSummary::default()),
        };
        let chunk = Chunk { once, first_line };
        let mut batch: Vec<Pending> = Vec::with_capacity(IMPORT_BATCH);
        let mut raw: Vec<u8> = Vec::new();
        let (mut line_no, mut bytes) = (first_line, 0u64);
        let mut batch_text = 0usize;
        loop {
            raw.clear();
            // At most one byte past the longest line a record can take: a
            // longer line is refused without being held whole.
            let n = (&mut reader)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut raw)?;
            if n == 0 {
                break;
            }
            line_no += 1;
            bytes += n as u64;
            if line_no <= applied_through {
                // Applied (and counted) by an earlier attempt of this chunk.
                continue;
            }
            if n > MAX_LINE_BYTES {
                self.commit_batch(&mut batch, &mut summary, chunk)?;
                return Err(Error::Import {
                    line: line_no,
                    source: Box::new(Error::invalid(
                        "record",
                        format!(
                            "the line is longer than {MAX_LINE_BYTES} bytes, more than any \
                             record can take"
                        ),
                    )),
                });
            }
            let Ok(mut text) = std::str::from_utf8(&raw) else {
                self.commit_batch(&mut batch, &mut summary, chunk)?;
                return Err(Error::Import {
                    line: line_no,
                    source: Box::new(Error::invalid("record", "line is not valid UTF-8")),
                });
            };
            if line_no == first_line + 1 {
                // A byte order mark, as editors on Windows write one.
                text = text.strip_prefix('\u{feff}').unwrap_or(text);
            }
            let text = text.trim();
            if text.is_empty() {
                continue;
            }
            summary.lines += 1;
            let parsed = Record::parse(text).and_then(|r| r.validate().map(|_| r));
            let record = match parsed {
                Ok(r) => r,
                Err(e) => {
                    self.commit_batch(&mut batch, &mut summary, chunk)?;
                    return Err(Error::Import {
                        line: line_no,
                        source: Box::new(e),
                    });
                }
            };
            if let Record::Account(a) = &record {
                self.commit_batch(&mut batch, &mut summary, chunk)?;
                self.upsert_account(a).map_err(|e| Error::Import {
                    line: line_no,
                    source: Box::new(e),
                })?;
                summary.accounts += 1;
                continue;
            }
            let hash = match &record {
                Record::Session(s) if s.hash.is_empty() => new_session_hash()?,
                _ => String::new(),
            };
            if let Record::Message(m) = &record {
                batch_text += m.content.len();
            }
            batch.push(Pending {
                line: line_no,
                record,
                hash,
            });
            let text_limit = if self.text_index {
                IMPORT_BATCH_TEXT
            } else {
                IMPORT_BATCH_BYTES
            };
            if batch.len() >= IMPORT_BATCH || batch_text >= text_limit {
                batch_text = 0;
                self.commit_batch(&mut batch, &mut summary, chunk)?;
                progress(bytes);
            }
        }
        self.commit_batch(&mut batch, &mut summary, chunk)?;
        progress(bytes);
        Ok(summary)
    }

    /// How far an import chunk with this id got: the last line applied
    /// (0: none) and what it counted.
    fn import_progress(&self, id: u128) -> Result<(u64, ImportSummary)> {
        let txn = self.kv.read()?;
        match txn.get(Space::Meta, &keys::import_progress(id))? {
            None => Ok((0, ImportSummary::default())),
            Some(v) => {
                let p: Progress = serde_json::from_slice(&v[8.min(v.len())..])
                    .map_err(|e| Error::corrupt(format!("import progress record: {e}")))?;
                Ok((p.through, p.summary))
            }
        }
    }

    /// Applies a batch in one write transaction. When a record is refused,
    /// the records before it are committed and the error names its line.
    fn commit_batch(
        &self,
        batch: &mut Vec<Pending>,
        summary: &mut ImportSummary,
        chunk: Chunk,
    ) -> Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let failed = {
            let mut w = self.begin_write()?;
            let (failed, writes) = {
                let tx = Tx::new(w.as_read(), self.layout());
                let failed = batch
                    .iter()
                    .enumerate()
                    .find_map(|(i, p)| apply(&tx, p).err().map(|e| (i, e)));
                (failed, tx.into_writes())
            };
            if failed.is_none() {
                put_all(&mut *w, writes?)?;
                if let Some(id) = chunk.once {
                    // How far this chunk got, in the batch's own transaction.
                    let mut after = summary.clone();
                    for p in batch.iter() {
                        after.count(&p.record);
                    }
                    let through = batch.last().map_or(chunk.first_line, |p| p.line);
                    let mut v = super::unix_now().to_be_bytes().to_vec();
                    serde_json::to_writer(
                        &mut v,
                        &Progress {
                            through,
                            summary: after,
                        },
                    )
                    .map_err(|e| Error::internal(format!("import progress record: {e}")))?;
                    w.put(Space::Meta, &keys::import_progress(id), &v)?;
                }
                self.commit_write(w)?;
            }
            failed
        };
        match failed {
            None => {
                self.durable()?;
                for p in batch.iter() {
                    summary.count(&p.record);
                }
                batch.clear();
                Ok(())
            }
            Some((i, err)) => {
                let line = batch[i].line;
                batch.truncate(i);
                self.commit_batch(batch, summary, chunk)?;
                Err(Error::Import {
                    line,
                    source: Box::new(err),
                })
            }
        }
    }

    /// Every record of the store in export order: accounts by sso_id, then
    /// per tenant its members, agents, sessions and messages, each by key.
    pub(crate) fn export_records(&self) -> Result<LocalExport<'_>> {
        self.live()?;
        Ok(LocalExport::new(Box::new(move |space, after| {
            self.export_chunk(space, after)
        })))
    }

    /// Up to [`EXPORT_CHUNK`] entries of a space after key `after` (from
    /// the start when `None`), in one read transaction.
    pub(crate) fn export_chunk(&self, space: Space, after: Option<&[u8]>) -> Result<Vec<Raw>> {
        self.live()?;
        let txn = self.kv.read()?;
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        Tree::new(&*txn, space)
            .range(from, Bound::Unbounded)
            .take(EXPORT_CHUNK)
            .map(|item| item.map(|(k, v)| (k.to_vec(), v.to_vec())))
            .collect()
    }
}

/// Entries an export reads per read transaction: a long export never
/// holds one snapshot (which on LMDB would keep every page it replaced
/// alive), so records written while it runs may or may not be in it;
/// `chatstore backup` is the consistent copy.
pub(crate) const EXPORT_CHUNK: usize = 1000;

/// A key and value read for export.
pub(crate) type Raw = (Vec<u8>, Vec<u8>);

/// Reads the next chunk of a space after a key.
pub(crate) type Fetch<'e> = Box<dyn FnMut(Space, Option<&[u8]>) -> Result<Vec<Raw>> + Send + 'e>;

/// The records of this process's engine, read by key in chunks.
pub(crate) struct LocalExport<'e> {
    fetch: Fetch<'e>,
    /// The space being read: accounts, then data.
    space: Space,
    buf: std::collections::VecDeque<Raw>,
    /// The last key read of `space`.
    after: Option<Vec<u8>>,
    /// The read record of the session just returned, next.
    pending: Option<Record>,
}

impl std::fmt::Debug for LocalExport<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LocalExport")
    }
}

impl<'e> LocalExport<'e> {
    pub(crate) fn new(fetch: Fetch<'e>) -> Self {
        LocalExport {
            fetch,
            space: Space::Accounts,
            buf: Default::default(),
            after: None,
            pending: None,
        }
    }

    /// The next entry of the current space, `None` at its end.
    fn entry(&mut self) -> Result<Option<Raw>> {
        if self.buf.is_empty() {
            let chunk = (self.fetch)(self.space, self.after.as_deref())?;
            if let Some((k, _)) = chunk.last() {
                self.after = Some(k.clone());
            }
            self.buf.extend(chunk);
        }
        Ok(self.buf.pop_front())
    }
}

impl Iterator for LocalExport<'_> {
    type Item = Result<Record>;

    fn next(&mut self) -> Option<Result<Record>> {
        if let Some(r) = self.pending.take() {
            return Some(Ok(r));
        }
        loop {
            let (k, v) = match self.entry() {
                Ok(Some(kv)) => kv,
                Ok(None) if self.space == Space::Accounts => {
                    self.space = Space::Data;
                    self.after = None;
                    continue;
                }
                Ok(None) => return None,
                Err(e) => return Some(Err(e)),
            };
            if self.space == Space::Accounts {
                return Some(codec::decode(&v, "account").map(Record::Account));
            }
            if k.len() < 9 {
                continue;
            }
            let tenant = keys::u64_at(&k, 0);
            let r = match k[8] {
                keys::MEMBER => {
                    codec::decode::<MemberRec>(&v, "member").map(|r| Record::Member(r.member))
                }
                keys::AGENT => {
                    codec::decode::<AgentRec>(&v, "agent").map(|r| Record::Agent(r.agent))
                }
                keys::SESSION => codec::decode::<SessionRec>(&v, "session").map(|r| {
                    if r.agent_read_upto != 0 || r.member_read_upto != 0 {
                        self.pending = Some(Record::Read(ReadMark {
                            tenant,
                            session_id: r.session.id,
                            agent_read_upto: r.agent_read_upto,
                            member_read_upto: r.member_read_upto,
                        }));
                    }
                    Record::Session(r.session)
                }),
                keys::MESSAGE | keys::DELETED => codec::decode::<MsgBody>(&v, "message").map(|b| {
                    Record::Message(b.to_message(tenant, keys::u64_at(&k, 9), keys::last_desc(&k)))
                }),
                _ => continue,
            };
            return Some(r);
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::error::ErrorKind;
    use crate::testing::{engine, export};

    const LINES: &str = concat!(
        r#"{"kind":"member","tenant":2,"uid":7,"nickname":"李小龙"}"#,
        "\n",
        r#"{"kind":"session","tenant":2,"id":1,"uid":7}"#,
        "\n",
        r#"{"kind":"message","tenant":2,"session_id":1,"id":5,"content":"你好","time":1}"#,
        "\n",
    );

    #[test]
    fn an_import_round_trips_through_export() {
        let e = engine();
        let s = e.import_jsonl(LINES.as_bytes(), 0, None, |_| {}).unwrap();
        assert_eq!((s.lines, s.members, s.sessions, s.messages), (3, 1, 1, 1));
        let out = export(&e);
        let again = engine();
        again.import_jsonl(out.as_bytes(), 0, None, |_| {}).unwrap();
        assert_eq!(export(&again), out);
        // Re-running the same import changes nothing (every record has its key).
        e.import_jsonl(LINES.as_bytes(), 0, None, |_| {}).unwrap();
        assert_eq!(export(&e), out);
    }

    #[test]
    fn a_refused_line_keeps_the_lines_before_it_and_names_itself() {
        let e = engine();
        let bad = format!(
            "{LINES}{}\n{}\n",
            r#"{"kind":"message","tenant":2,"session_id":9,"content":"x"}"#,
            r#"{"kind":"member","tenant":2,"uid":8,"nickname":"after"}"#
        );
        let err = e.import_jsonl(bad.as_bytes(), 0, None, |_| {}).unwrap_err();
        assert!(err.to_string().starts_with("line 4: "), "{err}");
        assert_eq!(err.kind(), ErrorKind::NotFound);
        let stats = e.tenant_stats(2).unwrap();
        assert_eq!((stats.members, stats.messages), (1, 1));
        // Line numbers continue from `first_line` (an import sent in chunks).
        let err = e
            .import_jsonl("{\"kind\":\"nope\"}\n".as_bytes(), 41, None, |_| {})
            .unwrap_err();
        assert!(err.to_string().starts_with("line 42: "), "{err}");
        assert!(e.check().unwrap().ok);
    }

    #[test]
    fn a_chunk_retried_with_its_id_applies_once() {
        let e = engine();
        e.import_jsonl(LINES.as_bytes(), 0, None, |_| {}).unwrap();
        // Messages without ids: each application would store them anew.
        let chunk: String = (0..7)
            .map(|i| {
                format!(
                    "{{\"kind\":\"message\",\"tenant\":2,\"session_id\":1,\"content\":\"m{i}\",\"time\":{i}}}\n"
                )
            })
            .collect();
        let first = e
            .import_jsonl(chunk.as_bytes(), 3, Some(42), |_| {})
            .unwrap();
        let again = e
            .import_jsonl(chunk.as_bytes(), 3, Some(42), |_| {})
            .unwrap();
        assert_eq!(first, again, "the retry answers what the first attempt did");
        assert_eq!(first.messages, 7);
        assert_eq!(e.tenant_stats(2).unwrap().messages, 1 + 7);
        // Another id is another chunk.
        e.import_jsonl(chunk.as_bytes(), 3, Some(43), |_| {})
            .unwrap();
        assert_eq!(e.tenant_stats(2).unwrap().messages, 1 + 14);
        // Progress records are pruned like request records.
        assert_eq!(e.prune_requests(0).unwrap(), 0, "younger than the cutoff");
        assert!(e.check().unwrap().ok);
    }
}
