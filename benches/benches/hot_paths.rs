//! criterion benches of the hot paths: page render, n-gram query, key
//! encoding, search normalization.
#![allow(clippy::unwrap_used)] // a failed unwrap here is a failed test or run
#![allow(missing_docs)] // criterion_group! and criterion_main! generate undocumented functions

use chatstore::{HistoryQuery, HistoryRequest, Member, Options, Session, Store};
use criterion::{criterion_group, criterion_main, Criterion};

fn store_with(n: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), Options::default()).unwrap();
    let names = [
        "李小龙",
        "王芳",
        "Nguyễn Văn Đức",
        "Trần Thị Lan",
        "happy_panda",
        "张伟",
    ];
    for uid in 1..=n {
        store
            .upsert_member(&Member {
                tenant: 1,
                uid,
                nickname: format!("{}{uid}", names[(uid % 6) as usize]),
                mobile: format!("+86 139{uid:08}"),
                ..Default::default()
            })
            .unwrap();
        store
            .upsert_session(&Session {
                tenant: 1,
                uid,
                ..Default::default()
            })
            .unwrap();
    }
    (dir, store)
}

fn benches(c: &mut Criterion) {
    let (_d, store) = store_with(2000);
    let req = HistoryRequest {
        query: HistoryQuery::new(1),
        page_url: "/h".into(),
    };
    c.bench_function("history_list_page1_render", |b| {
        b.iter(|| store.history_list_text(&req).unwrap())
    });
    let mut q = HistoryQuery::new(1);
    q.user_name = Some("小龙".into());
    c.bench_function("ngram_query_cjk2", |b| {
        b.iter(|| store.history_list(&q).unwrap())
    });
    c.bench_function("search_normalize", |b| {
        b.iter(|| {
            chatstore::search::normalize(std::hint::black_box("Nguyễn Văn Đức ＶＡＮ 李小龙"))
        })
    });
    // Verifying a message-search candidate: its text, already in normal form.
    let message = "您好，请问这个商品什么时候发货？订单号是 20261122012345 谢谢 shop order";
    c.bench_function("verify_normalized_message", |b| {
        b.iter(|| chatstore::search::normalized(std::hint::black_box(message)).contains("发货"))
    });
    c.bench_function("nick_grams", |b| {
        b.iter(|| {
            chatstore::search::nick_grams(std::hint::black_box("nguyen van duc 李小龙"), true)
        })
    });
}

criterion_group!(hot, benches);
criterion_main!(hot);
