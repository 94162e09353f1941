//! The data model of CONTRACT §1: the records users write and read.
//!
//! These structs are also the JSON Lines record shapes (§5): field names and
//! defaults are the import format's. Ids are unique within their tenant; an id
//! of 0 on a session or message means "assign the next id of the tenant".

use serde::{Deserialize, Serialize};

/// A shop's customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Member {
    /// The tenant (`uniacid` / shop account).
    pub tenant: u64,
    /// The member's id within the tenant.
    pub uid: u64,
    /// Display name; searched by `user_name`.
    #[serde(default)]
    pub nickname: String,
    /// Phone number in any format; searched by its digits.
    #[serde(default)]
    pub mobile: String,
    /// Avatar URL or platform path.
    #[serde(default)]
    pub avatar: String,
    /// E-mail address.
    #[serde(default)]
    pub email: String,
    /// Postal address.
    #[serde(default)]
    pub address: String,
    /// Whether the member is a registered user (`is_uservg`).
    #[serde(default)]
    pub registered: bool,
    /// Whether the member is online.
    #[serde(default)]
    pub online: bool,
}

/// A customer-service employee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Agent {
    /// The tenant.
    pub tenant: u64,
    /// The agent's (employee's) id within the tenant; never 0.
    pub id: u64,
    /// The agent's own member uid.
    #[serde(default)]
    pub uid: u64,
    /// Display name.
    #[serde(default)]
    pub nickname: String,
    /// Avatar URL.
    #[serde(default)]
    pub avatar: String,
}

/// One conversation between a member and an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Session {
    /// The tenant.
    pub tenant: u64,
    /// The session id; 0 on a write means "assign the next id".
    #[serde(default)]
    pub id: u64,
    /// The member's uid.
    pub uid: u64,
    /// The agent's id; 0 means unassigned.
    #[serde(default)]
    pub agent_id: u64,
    /// Creation time, unix seconds.
    #[serde(default)]
    pub created_at: i64,
    /// The stored last-update time, unix seconds (0 = never). The time a
    /// query reports is the larger of this and the last message's time.
    #[serde(default)]
    pub last_updated_at: i64,
    /// The product the conversation is about (0 = none).
    #[serde(default)]
    pub product_id: u64,
    /// 32 lowercase hex characters; generated when written empty.
    #[serde(default)]
    pub hash: String,
}

/// Who wrote a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Sender {
    /// The member (customer).
    #[default]
    Member,
    /// The agent.
    Agent,
    /// The system.
    System,
}

impl Sender {
    /// The name used in JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Sender::Member => "member",
            Sender::Agent => "agent",
            Sender::System => "system",
        }
    }

    /// Parses the JSON name.
    pub fn parse(s: &str) -> Option<Sender> {
        match s {
            "member" => Some(Sender::Member),
            "agent" => Some(Sender::Agent),
            "system" => Some(Sender::System),
            _ => None,
        }
    }
}

/// One message of a session.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Message {
    /// The tenant.
    pub tenant: u64,
    /// The session the message belongs to.
    pub session_id: u64,
    /// The message id; 0 on a write means "assign the next id".
    #[serde(default)]
    pub id: u64,
    /// Who wrote it.
    #[serde(default)]
    pub sender: Sender,
    /// The writer's id (member uid, agent id, or 0 for the system).
    #[serde(default)]
    pub sender_id: u64,
    /// The text, or the URL / payload of non-text messages.
    #[serde(default)]
    pub content: String,
    /// 0 text, 1 image, 2 goods, 3 order.
    #[serde(default)]
    pub content_type: u8,
    /// A link attached to the message.
    #[serde(default)]
    pub link: String,
    /// Unix seconds.
    #[serde(default)]
    pub time: i64,
    /// The sender's IPv4 address as text, or empty.
    #[serde(default)]
    pub ip: String,
    /// Recalled by its sender (the platform's `is_backed`): the message
    /// stays in history, flagged, and no longer counts as unread.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub recalled: bool,
    /// When it was deleted (unix seconds; 0: not deleted). A deleted message
    /// has left every view (lists, counts, last message, unread counts);
    /// only export carries it, so a store round-trips whole.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub deleted_at: i64,
}

fn is_zero(x: &i64) -> bool {
    *x == 0
}

/// A login of the second platform: `sso_id` with its `hash_setting`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Account {
    /// The admin account's id.
    pub sso_id: u64,
    /// The tenant whose conversations the account sees.
    pub tenant: u64,
    /// The account's `hash_setting`; compared in constant time.
    pub hash: String,
}

/// A session as queries return it: the record, its denormalized message state
/// and the member and agent it joins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionView {
    /// The stored session.
    pub session: Session,
    /// `max(session.last_updated_at, last message time)`.
    pub activity_at: i64,
    /// Number of messages in the session.
    pub message_count: u64,
    /// The message with the greatest id, if any.
    pub last_message: Option<Message>,
    /// The session's member (absent only in a damaged store).
    pub member: Option<Member>,
    /// The session's agent (absent when unassigned).
    pub agent: Option<Agent>,
    /// Read state: member messages the agent has not read, agent messages
    /// the member has not read, and how far each side has read.
    pub read: ReadState,
}

/// Who reads a session's messages: the agent reads the member's, the
/// member reads the agent's (system messages are nobody's to read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Hash)]
#[serde(rename_all = "lowercase")]
pub enum Reader {
    /// The agent, reading the member's messages.
    Agent,
    /// The member, reading the agent's messages.
    Member,
}

impl Reader {
    /// Parses `agent` or `member`.
    pub fn parse(s: &str) -> Option<Reader> {
        match s {
            "agent" => Some(Reader::Agent),
            "member" => Some(Reader::Member),
            _ => None,
        }
    }

    /// The sender whose messages this reader reads.
    pub fn reads(self) -> Sender {
        match self {
            Reader::Agent => Sender::Member,
            Reader::Member => Sender::Agent,
        }
    }
}

/// A session's read state, kept by counters in the same transaction as the
/// messages: a message of the member is unread by the agent while its id is
/// above `agent_read_upto`, and the other way round.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ReadState {
    /// Member messages the agent has not read (`un_read_num` of the agent's
    /// live list).
    pub unread_by_agent: u64,
    /// Agent messages the member has not read.
    pub unread_by_member: u64,
    /// The agent has read every member message up to this id.
    pub agent_read_upto: u64,
    /// The member has read every agent message up to this id.
    pub member_read_upto: u64,
}
