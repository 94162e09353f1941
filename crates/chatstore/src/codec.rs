//! Value encoding: one format-version byte, then bincode 2 (standard config).
//!
//! The stored record types live here too. They wrap the public model types and
//! add what the engine keeps beside them: normalized search forms, counters and
//! the denormalized last message, and room for the read state, recall and soft
//! delete planned next (zero until those features write them).

use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::model::{Agent, Member, Message, Sender, Session};

/// Version byte that begins every stored value of this format.
pub(crate) const VALUE_VERSION: u8 = 1;

/// `MsgBody::flags`: the message was recalled.
pub(crate) const MSG_RECALLED: u8 = 1;

/// Encodes a value behind the version byte.
pub(crate) fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    let mut out = vec![VALUE_VERSION];
    // Encoding plain structs of strings and integers into a Vec cannot fail.
    let body = bincode::serde::encode_to_vec(v, bincode::config::standard())
        .expect("bincode encoding of a plain struct");
    out.extend_from_slice(&body);
    out
}

/// Decodes a value written by [`encode`]; `what` names it in errors.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T> {
    decode_borrowed(bytes, what)
}

/// [`decode`] for a type that borrows its strings from `bytes` (no copies).
pub(crate) fn decode_borrowed<'a, T: Deserialize<'a>>(bytes: &'a [u8], what: &str) -> Result<T> {
    match bytes.split_first() {
        Some((&VALUE_VERSION, body)) => {
            bincode::serde::borrow_decode_from_slice(body, bincode::config::standard())
                .map(|(v, _)| v)
                .map_err(|e| Error::corrupt(format!("{what}: {e}")))
        }
        Some((v, _)) => Err(Error::Format {
            reason: format!("{what} has value version {v}, this build reads {VALUE_VERSION}"),
        }),
        None => Err(Error::corrupt(format!("{what}: empty value"))),
    }
}

/// Encodes a counter.
pub(crate) fn encode_u64(x: u64) -> [u8; 8] {
    x.to_be_bytes()
}

/// Decodes a counter (absent = 0).
pub(crate) fn decode_u64(v: Option<&[u8]>) -> Result<u64> {
    match v {
        None => Ok(0),
        Some(b) if b.len() == 8 => {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok(u64::from_be_bytes(a))
        }
        Some(_) => Err(Error::corrupt("counter is not 8 bytes")),
    }
}

/// A stored member.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MemberRec {
    /// The member as written.
    pub member: Member,
    /// `search::normalize(nickname)`, kept to verify candidates and to delete
    /// the old n-grams deterministically.
    pub norm_nick: String,
    /// The mobile's digit variants (see `search::phone_variants`).
    pub phones: Vec<String>,
    /// Number of sessions of this member.
    pub session_count: u64,
}

/// A stored agent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct AgentRec {
    /// The agent as written. (Its session count is a counter key.)
    pub agent: Agent,
}

/// A stored message body (tenant, session and id are in the key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct MsgBody {
    /// 0 member, 1 agent, 2 system.
    pub sender: u8,
    /// Writer id.
    pub sender_id: u64,
    /// Content.
    pub content: String,
    /// 0..=3.
    pub content_type: u8,
    /// Link.
    pub link: String,
    /// Unix seconds.
    pub time: i64,
    /// IPv4 as an integer, `None` when empty.
    pub ip: Option<u32>,
    /// Reserved: bit 0 recalled, bit 1 deleted, bit 2 read by the other side.
    pub flags: u8,
    /// Reserved: soft-delete time.
    pub deleted_at: i64,
}

/// A stored [`MsgBody`] read in place, its strings borrowed from the value:
/// what verifying a message-search candidate reads. Same fields, same order
/// (the unit test `msg_body_ref_reads_msg_body` holds them together).
#[derive(Debug, Deserialize)]
#[allow(dead_code)] // bincode reads fields by position: every one must be here.
pub(crate) struct MsgBodyRef<'a> {
    /// 0 member, 1 agent, 2 system.
    pub sender: u8,
    /// Writer id.
    pub sender_id: u64,
    /// Content.
    pub content: &'a str,
    /// 0..=3.
    pub content_type: u8,
    /// Link.
    pub link: &'a str,
    /// Unix seconds.
    pub time: i64,
    /// IPv4 as an integer.
    pub ip: Option<u32>,
    /// See [`MsgBody::flags`].
    pub flags: u8,
    /// Soft-delete time.
    pub deleted_at: i64,
}

impl MsgBodyRef<'_> {
    /// Whether the message was recalled.
    pub(crate) fn recalled(&self) -> bool {
        self.flags & MSG_RECALLED != 0
    }
}

impl MsgBody {
    /// Builds the body of a message (validated before).
    pub(crate) fn from_message(m: &Message) -> MsgBody {
        MsgBody {
            sender: match m.sender {
                Sender::Member => 0,
                Sender::Agent => 1,
                Sender::System => 2,
            },
            sender_id: m.sender_id,
            content: m.content.clone(),
            content_type: m.content_type,
            link: m.link.clone(),
            time: m.time,
            ip: if m.ip.is_empty() {
                None
            } else {
                m.ip.parse::<std::net::Ipv4Addr>().ok().map(u32::from)
            },
            flags: if m.recalled { MSG_RECALLED } else { 0 },
            deleted_at: m.deleted_at,
        }
    }

    /// Whether the message was recalled.
    pub(crate) fn recalled(&self) -> bool {
        self.flags & MSG_RECALLED != 0
    }

    /// Rebuilds the public message.
    pub(crate) fn to_message(&self, tenant: u64, session_id: u64, id: u64) -> Message {
        Message {
            tenant,
            session_id,
            id,
            sender: match self.sender {
                1 => Sender::Agent,
                2 => Sender::System,
                _ => Sender::Member,
            },
            sender_id: self.sender_id,
            content: self.content.clone(),
            content_type: self.content_type,
            link: self.link.clone(),
            time: self.time,
            ip: self
                .ip
                .map(|ip| std::net::Ipv4Addr::from(ip).to_string())
                .unwrap_or_default(),
            recalled: self.recalled(),
            deleted_at: self.deleted_at,
        }
    }
}

/// A stored session with its denormalized message state.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct SessionRec {
    /// The session as written (with its assigned id and hash).
    pub session: Session,
    /// Number of messages.
    pub msg_count: u64,
    /// The message with the greatest id: `(id, time)`. Only the id and time
    /// are kept here (the body is one get away): this record is rewritten by
    /// every append, and sled's write cost grows with value size.
    pub last: Option<(u64, i64)>,
    /// Reserved: member messages the agent has not read.
    pub unread_by_agent: u64,
    /// Reserved: agent messages the member has not read.
    pub unread_by_member: u64,
    /// Reserved: greatest message id the agent has read.
    pub agent_read_upto: u64,
    /// Reserved: greatest message id the member has read.
    pub member_read_upto: u64,
}

impl SessionRec {
    /// The public read state.
    pub(crate) fn read_state(&self) -> crate::model::ReadState {
        crate::model::ReadState {
            unread_by_agent: self.unread_by_agent,
            unread_by_member: self.unread_by_member,
            agent_read_upto: self.agent_read_upto,
            member_read_upto: self.member_read_upto,
        }
    }

    /// Whether a visible message counts as unread by its reader (a recalled
    /// one never does).
    pub(crate) fn counts_unread(&self, body: &MsgBody, mid: u64) -> bool {
        !body.recalled() && self.unread(body.sender, mid) == Some(true)
    }

    /// Whether a message of `sender` (stored code) with id `mid` is unread
    /// by its reader; `None` for system messages, which nobody reads.
    pub(crate) fn unread(&self, sender: u8, mid: u64) -> Option<bool> {
        match sender {
            0 => Some(mid > self.agent_read_upto),
            1 => Some(mid > self.member_read_upto),
            _ => None,
        }
    }

    /// Moves the unread count of `sender`'s reader by `delta`.
    pub(crate) fn bump_unread(&mut self, sender: u8, delta: i64) {
        let c = match sender {
            0 => &mut self.unread_by_agent,
            1 => &mut self.unread_by_member,
            _ => return,
        };
        *c = c.saturating_add_signed(delta);
    }

    /// The time the session is ordered by: the stored time or the last
    /// message's, whichever is larger.
    pub(crate) fn activity_at(&self) -> i64 {
        let msg = self.last.map(|(_, time)| time).unwrap_or(i64::MIN);
        self.session.last_updated_at.max(msg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_version_check() {
        let a = AgentRec {
            agent: Agent {
                tenant: 2,
                id: 2,
                uid: 2669,
                nickname: "客服0002".into(),
                avatar: String::new(),
            },
        };
        let bytes = encode(&a);
        assert_eq!(bytes[0], VALUE_VERSION);
        let back: AgentRec = decode(&bytes, "agent").unwrap();
        assert_eq!(back.agent, a.agent);
        let mut newer = bytes.clone();
        newer[0] = VALUE_VERSION + 1;
        assert!(matches!(
            decode::<AgentRec>(&newer, "agent"),
            Err(Error::Format { .. })
        ));
        assert!(matches!(
            decode::<AgentRec>(&bytes[..3], "agent"),
            Err(Error::Corrupt { .. })
        ));
    }

    #[test]
    fn msg_body_ref_reads_msg_body() {
        let body = MsgBody {
            sender: 1,
            sender_id: 2669,
            content: "您好，订单 #123 已发货".into(),
            content_type: 3,
            link: "https://example.com/a.png".into(),
            time: 1_601_000_001,
            ip: Some(0x2A72_2B7C),
            flags: MSG_RECALLED,
            deleted_at: -5,
        };
        let bytes = encode(&body);
        let r: MsgBodyRef<'_> = decode_borrowed(&bytes, "message").unwrap();
        assert_eq!(
            (r.sender, r.sender_id, r.content, r.content_type, r.link),
            (
                body.sender,
                body.sender_id,
                body.content.as_str(),
                body.content_type,
                body.link.as_str()
            )
        );
        assert_eq!(
            (r.time, r.ip, r.flags, r.deleted_at),
            (body.time, body.ip, body.flags, body.deleted_at)
        );
        assert!(r.recalled());
        assert!(matches!(
            decode_borrowed::<MsgBodyRef<'_>>(&bytes[..4], "message"),
            Err(Error::Corrupt { .. })
        ));
    }
}
