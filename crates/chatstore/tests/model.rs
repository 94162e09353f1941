//! Model-based property test: random sequences of upserts, appends and
//! deletes go to the store and to a plain in-memory model; every query agrees
//! and `check()` passes after each sequence, after a reopen and after an
//! export -> import round trip. The model and the comparison live in
//! `fuzz/checks/model.rs`, shared with the fuzz target `model_ops`.
#![allow(clippy::unwrap_used)] // a failed unwrap here is a failed test or run

#[path = "../../../fuzz/checks/model.rs"]
mod model;

use model::{Op, MOBILES, NICKS};
use proptest::prelude::*;

fn op() -> impl Strategy<Value = Op> {
    let t = 1u64..=2;
    prop_oneof![
        3 => (t.clone(), 1u64..=6, 0..NICKS.len(), 0..MOBILES.len())
            .prop_map(|(t, uid, nick, mobile)| Op::Member { t, uid, nick, mobile }),
        1 => (t.clone(), 1u64..=3).prop_map(|(t, id)| Op::Agent { t, id }),
        3 => (t.clone(), prop_oneof![Just(0u64), 1u64..=4], 1u64..=6, 0u64..=3, prop_oneof![Just(0i64), 1i64..100])
            .prop_map(|(t, id, uid, agent, updated)| Op::Session { t, id, uid, agent, updated }),
        5 => (t.clone(), 1u64..=4, prop_oneof![Just(0u64), 1u64..=30], 1i64..120, 0u8..3)
            .prop_map(|(t, sid, id, time, sender)| Op::Message { t, sid, id, time, sender }),
        1 => (t.clone(), 1u64..=4).prop_map(|(t, sid)| Op::DeleteSession { t, sid }),
        1 => (t.clone(), 1u64..=6).prop_map(|(t, uid)| Op::DeleteMember { t, uid }),
        1 => (t.clone(), 1u64..=3).prop_map(|(t, id)| Op::DeleteAgent { t, id }),
        2 => (t.clone(), 1u64..=4, any::<bool>(), 0u64..=31)
            .prop_map(|(t, sid, agent, upto)| Op::MarkRead { t, sid, agent, upto }),
        // Recalls and deletes name a message by its place in its session
        // (Model::resolve), newest first.
        1 => (t.clone(), 1u64..=4, 0u64..=2).prop_map(|(t, sid, id)| Op::Recall { t, sid, id }),
        2 => (t, 1u64..=4, 0u64..=2).prop_map(|(t, sid, id)| Op::DeleteMessage { t, sid, id }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn store_agrees_with_model(ops in prop::collection::vec(op(), 1..80)) {
        model::run(&ops).map_err(TestCaseError::fail)?;
    }
}

/// The byte decoder the fuzz target uses yields every kind of op, and the
/// empty input decodes to no op.
#[test]
fn fuzz_decoder_covers_every_op() {
    let kinds: std::collections::HashSet<_> = (0..18u8)
        .map(|k| std::mem::discriminant(&Op::decode(&[k, 0, 0, 0, 0, 0, 0])[0]))
        .collect();
    assert_eq!(kinds.len(), 10);
    assert!(Op::decode(&[]).is_empty());
    // A member, a session of it, and a message: all succeed against the model.
    model::run(&Op::decode(&[
        0, 0, 0, 0, 0, 4, 0, 1, 0, 0, 5, 7, 0, 0, 0, 7, 0,
    ]))
    .unwrap();
}
