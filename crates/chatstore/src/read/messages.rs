//! A session's messages, newest first, one page read by key.

use super::Snap;
use crate::codec::{self, MsgBody};
use crate::error::{Error, Result};
use crate::keys::{self};
use crate::limits;
use crate::model::Message;

/// Rows of a page of a session's messages when none (or 0) is asked for.
pub(crate) const MESSAGES_PAGESIZE: u64 = 20;

/// One page of a session's messages, newest first. Serializes as
/// `{"total","page","pagesize","data":[message records]}`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MessagesPage {
    /// Messages in the session.
    pub total: u64,
    /// The page number.
    pub page: u64,
    /// Rows per page.
    pub pagesize: u64,
    /// The messages.
    #[serde(rename = "data")]
    pub messages: Vec<Message>,
}

impl Snap<'_> {
    /// A session's messages, newest (greatest id) first.
    pub(crate) fn messages(
        &self,
        tenant: u64,
        session_id: u64,
        page: u64,
        pagesize: u64,
    ) -> Result<MessagesPage> {
        let page = page.max(1);
        // 0 is the default, as history-list's paging treats it.
        let pagesize = match pagesize {
            0 => MESSAGES_PAGESIZE,
            n => n.min(limits::MAX_PAGESIZE),
        };
        let Some(rec) = self.session_rec(tenant, session_id)? else {
            return Err(Error::not_found(format!(
                "session {session_id} of tenant {tenant}"
            )));
        };
        let mut messages = Vec::new();
        for item in self
            .data
            .scan_prefix(keys::messages_of(tenant, session_id))
            .skip((page - 1).saturating_mul(pagesize).min(usize::MAX as u64) as usize)
            .take(pagesize as usize)
        {
            let (k, v) = item?;
            let body: MsgBody = codec::decode(&v, "message")?;
            messages.push(body.to_message(tenant, session_id, keys::last_desc(&k)));
        }
        Ok(MessagesPage {
            total: rec.msg_count,
            page,
            pagesize,
            messages,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{engine, member, message, session};

    #[test]
    fn a_page_is_newest_first_with_the_session_total() {
        let e = engine();
        member(&e, 2, 1, "n", "");
        let sid = session(&e, 2, 0, 1, 0);
        let ids: Vec<u64> = (0..5).map(|i| message(&e, 2, sid, "m", i)).collect();
        let p = e.messages(2, sid, 1, 2).unwrap();
        assert_eq!(p.total, 5);
        let got: Vec<u64> = p.messages.iter().map(|m| m.id).collect();
        assert_eq!(got, [ids[4], ids[3]]);
        let last = e.messages(2, sid, 3, 2).unwrap();
        assert_eq!(last.messages.len(), 1);
        assert_eq!(last.messages[0].id, ids[0]);
        assert!(e.messages(2, sid, 4, 2).unwrap().messages.is_empty());
    }
}
