//! Documented size limits, enforced in the core so every binding inherits them,
//! and the validation of records before they are written.

use crate::error::{Error, Result};
use crate::model::{Account, Agent, Member, Message, Session};

/// Longest nickname, in bytes.
pub const MAX_NAME: usize = 255;
/// Longest mobile, in bytes.
pub const MAX_MOBILE: usize = 64;
/// Longest URL (avatar, link), in bytes.
pub const MAX_URL: usize = 2048;
/// Longest e-mail, in bytes.
pub const MAX_EMAIL: usize = 255;
/// Longest address, in bytes.
pub const MAX_ADDRESS: usize = 1024;
/// Longest message content, in bytes.
pub const MAX_CONTENT: usize = 64 * 1024;
/// Longest account hash, in bytes.
pub const MAX_ACCOUNT_HASH: usize = 255;
/// Longest search query, in bytes.
pub const MAX_QUERY: usize = 255;
/// Largest page size of history-list (larger requests are clamped).
pub const MAX_PAGESIZE: u64 = 100;
/// Rows per hischat page.
pub const HISCHAT_PAGESIZE: u64 = 30;

/// Largest id (tenant, uid, agent, session, message, sender, product,
/// account): 2^53 - 1, the largest integer JSON numbers keep exact in
/// JavaScript and in PHP's floats. Larger ids are refused at write, so an
/// explicit id near 2^64 cannot exhaust the ids the store gives out.
pub const MAX_ID: u64 = (1 << 53) - 1;
/// Earliest time, in Unix seconds: 0000-01-01T00:00:00Z.
pub const MIN_TIME: i64 = -62_167_219_200;
/// Latest time, in Unix seconds: 9999-12-31T23:59:59Z (times render as
/// `YYYY-MM-DD hh:mm:ss`).
pub const MAX_TIME: i64 = 253_402_300_799;

fn id(field: &str, value: u64) -> Result<()> {
    if value > MAX_ID {
        return Err(Error::invalid(
            field,
            format!("{value} is over the largest id, 2^53 - 1 ({MAX_ID})"),
        ));
    }
    Ok(())
}

fn time(field: &str, value: i64) -> Result<()> {
    if !(MIN_TIME..=MAX_TIME).contains(&value) {
        return Err(Error::invalid(
            field,
            format!("{value} is outside the years 0 to 9999 ({MIN_TIME} to {MAX_TIME} seconds)"),
        ));
    }
    Ok(())
}

fn text(field: &str, value: &str, max: usize) -> Result<()> {
    if value.len() > max {
        return Err(Error::invalid(
            field,
            format!("{} bytes, at most {max} allowed", value.len()),
        ));
    }
    if value.contains('\0') {
        return Err(Error::invalid(field, "contains a NUL character"));
    }
    Ok(())
}

/// Checks a member before writing.
pub fn member(m: &Member) -> Result<()> {
    id("tenant", m.tenant)?;
    id("uid", m.uid)?;
    text("nickname", &m.nickname, MAX_NAME)?;
    text("mobile", &m.mobile, MAX_MOBILE)?;
    text("avatar", &m.avatar, MAX_URL)?;
    text("email", &m.email, MAX_EMAIL)?;
    text("address", &m.address, MAX_ADDRESS)
}

/// Checks an agent before writing.
pub fn agent(a: &Agent) -> Result<()> {
    id("tenant", a.tenant)?;
    id("id", a.id)?;
    id("uid", a.uid)?;
    if a.id == 0 {
        return Err(Error::invalid("id", "agent id 0 means unassigned"));
    }
    text("nickname", &a.nickname, MAX_NAME)?;
    text("avatar", &a.avatar, MAX_URL)
}

/// Checks a session before writing.
pub fn session(s: &Session) -> Result<()> {
    id("tenant", s.tenant)?;
    id("id", s.id)?;
    id("uid", s.uid)?;
    id("agent_id", s.agent_id)?;
    id("product_id", s.product_id)?;
    time("created_at", s.created_at)?;
    time("last_updated_at", s.last_updated_at)?;
    if !s.hash.is_empty() && !is_session_hash(&s.hash) {
        return Err(Error::invalid(
            "hash",
            "must be 32 lowercase hex characters",
        ));
    }
    Ok(())
}

/// Whether `h` is 32 lowercase hex characters.
pub fn is_session_hash(h: &str) -> bool {
    h.len() == 32
        && h.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Checks a message before writing.
pub fn message(m: &Message) -> Result<()> {
    id("tenant", m.tenant)?;
    id("session_id", m.session_id)?;
    id("id", m.id)?;
    id("sender_id", m.sender_id)?;
    time("time", m.time)?;
    time("deleted_at", m.deleted_at)?;
    text("content", &m.content, MAX_CONTENT)?;
    text("link", &m.link, MAX_URL)?;
    if m.content_type > 3 {
        return Err(Error::invalid(
            "content_type",
            format!(
                "{} is not 0 (text), 1 (image), 2 (goods) or 3 (order)",
                m.content_type
            ),
        ));
    }
    if !m.ip.is_empty() && m.ip.parse::<std::net::Ipv4Addr>().is_err() {
        return Err(Error::invalid(
            "ip",
            format!("{:?} is not an IPv4 address", m.ip),
        ));
    }
    Ok(())
}

/// Checks an account before writing.
pub fn account(a: &Account) -> Result<()> {
    id("tenant", a.tenant)?;
    id("sso_id", a.sso_id)?;
    if a.hash.is_empty() {
        return Err(Error::invalid("hash", "an account needs a non-empty hash"));
    }
    text("hash", &a.hash, MAX_ACCOUNT_HASH)
}

/// Checks a search query.
pub fn query(q: &str) -> Result<()> {
    text("user_name", q, MAX_QUERY)
}

/// Checks a message search's text.
pub fn message_query(q: &str) -> Result<()> {
    text("q", q, MAX_QUERY)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_out_of_range() {
        let mut m = Message {
            content_type: 4,
            ..Default::default()
        };
        assert!(message(&m)
            .unwrap_err()
            .to_string()
            .contains("content_type"));
        m.content_type = 0;
        m.ip = "300.1.1.1".into();
        assert!(message(&m).unwrap_err().to_string().contains("ip"));
        let long = Member {
            nickname: "x".repeat(MAX_NAME + 1),
            ..Default::default()
        };
        assert!(member(&long).unwrap_err().to_string().contains("nickname"));
        let big = Message {
            id: MAX_ID + 1,
            ..Default::default()
        };
        assert!(message(&big).unwrap_err().to_string().contains("id: "));
        let late = Message {
            time: i64::MAX,
            ..Default::default()
        };
        assert!(message(&late).unwrap_err().to_string().contains("time"));
        assert!(message(&Message {
            id: MAX_ID,
            time: MAX_TIME,
            ..Default::default()
        })
        .is_ok());
        let s = Session {
            created_at: MIN_TIME - 1,
            ..Default::default()
        };
        assert!(session(&s).unwrap_err().to_string().contains("created_at"));
        assert!(is_session_hash("a18e6636339533c68691e5d782c85370"));
        assert!(!is_session_hash("A18E6636339533C68691E5D782C85370"));
    }
}
