//! `user_name` results equal a brute-force normalized-substring scan, for
//! random Chinese, Vietnamese and Latin names and mixed-format mobiles, and
//! queries of 1 to 6 characters (CONTRACT §4).
#![allow(clippy::unwrap_used)] // a failed unwrap here is a failed test or run

mod common;

use chatstore::search::normalize;
use chatstore::{HistoryQuery, Member, Session};
use proptest::prelude::*;

const CJK: &[&str] = &[
    "李", "小", "龙", "王", "芳", "张", "伟", "刘", "洋", "陈", "静",
];
const VI: &[&str] = &[
    "Nguyễn",
    "Trần",
    "Lê",
    "Phạm",
    "Văn",
    "Thị",
    "Đức",
    "Trường",
    "Hùng",
    "Dương",
    "Ánh",
];
const LATIN: &[&str] = &[
    "john", "Mary", "smith", "ANNA", "lee", "x_shop", "Zed", "bob99",
];

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(prop::sample::select(CJK), 2..=3).prop_map(|v| v.concat()),
        prop::collection::vec(prop::sample::select(VI), 2..=3).prop_map(|v| v.join(" ")),
        prop::collection::vec(prop::sample::select(LATIN), 1..=2).prop_map(|v| v.join("")),
    ]
}

fn mobile() -> impl Strategy<Value = String> {
    (0u8..5, 10_000_000u64..99_999_999).prop_map(|(fmt, n)| match fmt {
        0 => format!(
            "+84 9{:02} {:03} {:03}",
            n % 100,
            (n / 100) % 1000,
            (n / 100_000) % 1000
        ),
        1 => format!("09{n:08}"),
        2 => format!("+86 13{n:09}"),
        3 => format!(
            "13{:01}-{:04}-{:04}",
            n % 10,
            (n / 10) % 10000,
            (n / 100_000) % 10000
        ),
        _ => String::new(),
    })
}

fn digits(s: &str) -> String {
    chatstore::search::digits(s)
}

/// The rule of CONTRACT §4, written plainly.
fn brute_match(q: &str, m: &Member) -> bool {
    let nq = normalize(q.trim());
    if !nq.is_empty() && normalize(&m.nickname).contains(&nq) {
        return true;
    }
    let phone_like = q.chars().any(|c| c.is_ascii_digit())
        && q.chars()
            .all(|c| c.is_ascii_digit() || " +-.()".contains(c));
    if !phone_like {
        return false;
    }
    let national = |d: &str| -> Option<String> {
        if d.starts_with("84") && (11..=12).contains(&d.len()) {
            Some(format!("0{}", &d[2..]))
        } else if d.starts_with("86") && d.len() == 13 {
            Some(d[2..].to_string())
        } else {
            None
        }
    };
    let qd = digits(q);
    let stored = digits(&m.mobile);
    if stored.is_empty() {
        return false;
    }
    let mut qs = vec![qd.clone()];
    qs.extend(national(&qd));
    let mut ss = vec![stored.clone()];
    ss.extend(national(&stored));
    qs.iter().any(|q| ss.iter().any(|s| s.contains(q.as_str())))
}

fn query_from(
    members: &[Member],
    pick: usize,
    start: usize,
    len: usize,
    from_mobile: bool,
) -> String {
    let m = &members[pick % members.len()];
    let src: Vec<char> = if from_mobile && !m.mobile.is_empty() {
        m.mobile.chars().collect()
    } else {
        m.nickname.chars().collect()
    };
    if src.is_empty() {
        return "x".into();
    }
    let s = start % src.len();
    src[s..(s + len).min(src.len())].iter().collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn filter_equals_brute_force(
        people in prop::collection::vec((name(), mobile(), 0u64..3), 1..40),
        queries in prop::collection::vec((any::<usize>(), any::<usize>(), 1usize..=6, any::<bool>()), 1..12),
        odd in prop::collection::vec(prop::sample::select(vec!["duc", "truong", "ＶＡＮ", "小", "0912", "+84 9", "thi", "nguyen", "李小", "a", "9", "Lê", "ng", "Võ", "Đ", "e v", "13"]), 0..6),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let store = common::open(&dir);
        let t = 5;
        let mut members = Vec::new();
        for (i, (nick, mob, agent)) in people.iter().enumerate() {
            let m = Member { tenant: t, uid: i as u64 + 1, nickname: nick.clone(), mobile: mob.clone(), ..Default::default() };
            store.upsert_member(&m).unwrap();
            if *agent > 0 {
                store.upsert_agent(&chatstore::Agent { tenant: t, id: *agent, ..Default::default() }).unwrap();
            }
            store.upsert_session(&Session { tenant: t, uid: m.uid, agent_id: *agent, ..Default::default() }).unwrap();
            members.push((m, *agent));
        }
        // A second tenant with the same people must never leak in.
        for (m, _) in &members {
            let mut other = m.clone();
            other.tenant = t + 1;
            store.upsert_member(&other).unwrap();
            store.upsert_session(&Session { tenant: t + 1, uid: other.uid, ..Default::default() }).unwrap();
        }
        let plain: Vec<Member> = members.iter().map(|(m, _)| m.clone()).collect();
        let mut qs: Vec<String> = queries.iter().map(|(p, s, l, mob)| query_from(&plain, *p, *s, *l, *mob)).collect();
        qs.extend(odd.iter().map(|s| s.to_string()));
        for q in qs {
            for agent in [None, Some(1), Some(2)] {
                // "0" is no filter on history-list, as PHP's truthiness
                // has it on the platform (README, "user_name").
                let unfiltered = q.is_empty() || q == "0";
                let mut want: Vec<u64> = members.iter()
                    .filter(|(m, a)| agent.is_none_or(|x| x == *a) && (unfiltered || brute_match(&q, m)))
                    .map(|(m, _)| m.uid) // session id == uid here
                    .collect();
                want.sort_unstable_by(|a, b| b.cmp(a));
                let mut hq = HistoryQuery::new(t);
                hq.employee = agent;
                hq.user_name = Some(q.clone());
                hq.pagesize = 100;
                let page = store.history_list(&hq).unwrap();
                let got: Vec<u64> = page.rows.iter().map(|r| r.session.id).collect();
                prop_assert_eq!(page.total, want.len() as u64, "query {:?} agent {:?}", q, agent);
                prop_assert_eq!(&got, &want, "query {:?} agent {:?}", q, agent);
                prop_assert!(page.rows.iter().all(|r| r.session.tenant == t));
            }
            let mut found: Vec<u64> = store.search_members(t, &q).unwrap().iter().map(|m| m.uid).collect();
            found.sort_unstable();
            let want: Vec<u64> = plain.iter().filter(|m| brute_match(&q, m)).map(|m| m.uid).collect();
            prop_assert_eq!(found, want, "search_members {:?}", q);
        }
        prop_assert!(store.check().unwrap().ok);
    }
}
