//! hischat's side of reading: the login (an account's hash, compared in
//! constant time) and the account's tenant's conversations, 30 a page by
//! activity. What the platform answers for each is `render`'s.

use subtle::ConstantTimeEq;

use super::{HistoryPage, HistoryQuery, Order, Snap};
use crate::codec;
use crate::error::Result;
use crate::limits;
use crate::model::Account;

/// Why a hischat login was refused (the platform answers each with its own
/// text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// No hash, or an empty one.
    NoHash,
    /// A wrong hash, or an account that does not exist (the same answer,
    /// in the same time, so a caller cannot tell which accounts exist).
    BadHash,
}

impl Snap<'_> {
    /// A tenant's sessions by activity (the hischat list), 30 a page.
    pub(crate) fn conversations(&self, tenant: u64, page: u64) -> Result<HistoryPage> {
        let mut q = HistoryQuery::new(tenant);
        q.order = Order::Recent;
        q.page = page.max(1);
        q.pagesize = limits::HISCHAT_PAGESIZE;
        self.history_list(&q)
    }

    /// An account by sso_id.
    pub(crate) fn get_account(&self, sso_id: u64) -> Result<Option<Account>> {
        match self.accounts.get(sso_id.to_be_bytes())? {
            None => Ok(None),
            Some(v) => codec::decode(&v, "account").map(Some),
        }
    }

    /// Checks the login and loads the page (`page` < 1 is page 1); a
    /// refusal is `Ok(Err(..))`.
    pub(crate) fn hischat_page(
        &self,
        sso_id: u64,
        hash: &str,
        page: i64,
    ) -> Result<std::result::Result<HistoryPage, Refusal>> {
        if hash.is_empty() {
            return Ok(Err(Refusal::NoHash));
        }
        let account = self.get_account(sso_id)?;
        // Compare against a dummy for unknown accounts so both refusals cost
        // the same.
        let stored = account
            .as_ref()
            .map_or("\u{0}unknown-account", |a| a.hash.as_str());
        let same: bool = stored.as_bytes().ct_eq(hash.as_bytes()).into();
        let Some(account) = account.filter(|_| same) else {
            return Ok(Err(Refusal::BadHash));
        };
        Ok(Ok(self.conversations(account.tenant, page.max(1) as u64)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::WriteOp;
    use crate::testing::{engine, member, session};

    #[test]
    fn the_login_decides_before_anything_is_read() {
        let e = engine();
        member(&e, 2, 1, "n", "");
        session(&e, 2, 0, 1, 0);
        e.apply(
            &WriteOp::UpsertAccount(Account {
                sso_id: 218,
                tenant: 2,
                hash: "5f4dcc3b".into(),
            }),
            None,
        )
        .unwrap();
        let login = |sso, hash: &str| e.read(|s| s.hischat_page(sso, hash, 1)).unwrap();
        assert_eq!(login(218, "").unwrap_err(), Refusal::NoHash);
        assert_eq!(login(218, "wrong").unwrap_err(), Refusal::BadHash);
        assert_eq!(login(999, "5f4dcc3b").unwrap_err(), Refusal::BadHash);
        let page = login(218, "5f4dcc3b").unwrap();
        assert_eq!((page.total, page.per_page), (1, limits::HISCHAT_PAGESIZE));
    }
}
