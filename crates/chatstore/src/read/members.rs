//! Member search: a tenant's members whose nickname or mobile matches a
//! query (CONTRACT §4), through the n-gram index, every candidate verified.

use super::Snap;
use crate::codec::{self, MemberRec};
use crate::error::Result;
use crate::keys::{self, Counter};
use crate::limits;
use crate::model::Member;
use crate::text::search::Query;

impl Snap<'_> {
    /// Members of a tenant whose nickname or mobile matches `q` (CONTRACT §4),
    /// by uid. An empty query or one that normalizes to nothing finds nobody.
    pub(crate) fn search_members(&self, tenant: u64, q: &str) -> Result<Vec<Member>> {
        limits::query(q)?;
        let Some(query) = Query::parse(q) else {
            return Ok(Vec::new());
        };
        let members = self.counter(&keys::counter(tenant, Counter::Members))?;
        let mut out = Vec::new();
        match self.candidates(tenant, &query, members)? {
            Some(uids) => {
                for uid in uids {
                    if let Some(m) = self.member_rec(tenant, uid)? {
                        out.push(m.member);
                    }
                }
                out.sort_by_key(|m| m.uid);
            }
            None => {
                for v in self
                    .data
                    .scan_prefix(keys::Key::new(tenant, keys::MEMBER))
                    .map(|r| r.map(|e| e.1))
                {
                    let m: MemberRec = codec::decode(&v?, "member")?;
                    if query.matches(&m.norm_nick, &m.phones) {
                        out.push(m.member);
                    }
                }
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::testing::{engine, member};

    #[test]
    fn every_candidate_is_verified_and_tenants_stay_apart() {
        let e = engine();
        member(&e, 2, 1, "李小龙", "185 1669 0005");
        member(&e, 2, 2, "小李", "");
        member(&e, 3, 1, "李小龙", "");
        let uids = |t, q| -> Vec<u64> {
            e.search_members(t, q)
                .unwrap()
                .iter()
                .map(|m| m.uid)
                .collect()
        };
        assert_eq!(uids(2, "小龙"), [1]);
        assert_eq!(uids(2, "小"), [1, 2]);
        // Both grams are there, in the wrong order: not a match.
        assert!(uids(2, "龙小").is_empty());
        assert_eq!(uids(2, "18516690005"), [1]);
        assert_eq!(uids(3, "小龙"), [1]);
        assert!(uids(2, "").is_empty());
    }
}
