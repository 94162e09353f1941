//! The JSON Lines format (CONTRACT §5): its records, their limits and the
//! summary of an import. Low: what applies records to a store is the
//! engine's (`engine::records`), what reads them from another process the
//! handle's.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::limits;
use crate::model::{Account, Agent, Member, Message, Session};

/// The longest line an import reads, in bytes: a message's 64 KiB of
/// content written as `\uXXXX` escapes (six bytes a byte) and its link,
/// with room to spare. A longer line is refused as `line N: ...` after
/// reading this much of it.
pub(crate) const MAX_LINE_BYTES: usize = 1 << 20;

/// Records per import transaction. A commit writes every page the batch
/// touched once (and on LMDB fsyncs once), so larger batches write less;
/// the batch and its overlay are in memory. At the medium scale on LMDB
/// (BENCHMARKS.md): 2,000 records cost 99 µs a message with 31 MB of
/// anonymous memory, 10,000 records 43 µs with 127 MB.
pub(crate) const IMPORT_BATCH: usize = 5_000;
/// Message text per import transaction, in bytes, in a store with the
/// message-text index: every gram of a message's text is a key, so a batch
/// is also cut by text (about 40k keys).
pub(crate) const IMPORT_BATCH_TEXT: usize = 512 * 1024;
/// Message text per import transaction without the text index: the bound
/// in bytes that keeps a batch of long messages (up to 64 KB each) from
/// holding hundreds of MB in memory or in one transaction.
pub(crate) const IMPORT_BATCH_BYTES: usize = 4 << 20;

/// One line of the JSON Lines format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Record {
    /// `{"kind":"account",...}`
    Account(Account),
    /// `{"kind":"member",...}`
    Member(Member),
    /// `{"kind":"agent",...}`
    Agent(Agent),
    /// `{"kind":"session",...}`
    Session(Session),
    /// `{"kind":"message",...}`
    Message(Message),
    /// `{"kind":"read",...}`: how far each side has read a session. Export
    /// writes one right after a session either side has read; files without
    /// them (all written before read state existed) import as unread.
    Read(ReadMark),
}

/// How far each side has read a session (the `read` JSON Lines record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadMark {
    /// The tenant.
    pub tenant: u64,
    /// The session.
    pub session_id: u64,
    /// The agent has read the member's messages up to this id.
    #[serde(default)]
    pub agent_read_upto: u64,
    /// The member has read the agent's messages up to this id.
    #[serde(default)]
    pub member_read_upto: u64,
}

impl Record {
    /// Parses one line.
    pub fn parse(line: &str) -> Result<Record> {
        // serde_json's " at line 1 column N" is cut: the importer names the line.
        crate::json::parse_typed(line.as_bytes(), "record")
    }

    /// Checks the record's fields against the limits.
    pub fn validate(&self) -> Result<()> {
        match self {
            Record::Account(a) => limits::account(a),
            Record::Member(m) => limits::member(m),
            Record::Agent(a) => limits::agent(a),
            Record::Session(s) => limits::session(s),
            Record::Message(m) => limits::message(m),
            Record::Read(_) => Ok(()),
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    /// Non-blank lines read.
    pub lines: u64,
    /// Account records applied.
    pub accounts: u64,
    /// Member records applied.
    pub members: u64,
    /// Agent records applied.
    pub agents: u64,
    /// Session records applied.
    pub sessions: u64,
    /// Message records applied.
    pub messages: u64,
    /// Read records applied.
    #[serde(default)]
    pub reads: u64,
}

impl std::ops::AddAssign for ImportSummary {
    /// Adds another summary's counts (an import sent in chunks).
    fn add_assign(&mut self, other: ImportSummary) {
        let ImportSummary {
            lines,
            accounts,
            members,
            agents,
            sessions,
            messages,
            reads,
        } = other;
        self.lines += lines;
        self.accounts += accounts;
        self.members += members;
        self.agents += agents;
        self.sessions += sessions;
        self.messages += messages;
        self.reads += reads;
    }
}

impl ImportSummary {
    /// Counts one applied record.
    pub(crate) fn count(&mut self, r: &Record) {
        match r {
            Record::Account(_) => self.accounts += 1,
            Record::Member(_) => self.members += 1,
            Record::Agent(_) => self.agents += 1,
            Record::Session(_) => self.sessions += 1,
            Record::Message(_) => self.messages += 1,
            Record::Read(_) => self.reads += 1,
        }
    }
}
