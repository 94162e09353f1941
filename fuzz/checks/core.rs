//! Properties checked by the fuzz targets `jsonl_record` and `search_query`,
//! and by the corpus replay test `crates/chatstore/tests/fuzz_corpus.rs`
//! (which includes this file), so CI re-checks every corpus entry.
#![allow(dead_code)]

use std::collections::HashSet;

use chatstore::search::{
    grams_cover, holds_query, message_gram_positions, nick_grams, normalize, phone_grams,
    phone_variants, Query,
};
use chatstore::Record;

/// A JSONL line: parsing never panics; a record that parses survives a
/// serialize -> parse round trip, and validating it never panics.
pub(crate) fn jsonl_record(data: &[u8]) {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(rec) = Record::parse(line) {
        let _ = rec.validate();
        let text = serde_json::to_string(&rec).expect("a record serializes");
        let again = Record::parse(&text).expect("a serialized record parses");
        assert_eq!(again, rec);
    }
}

/// Search, on `query \n nickname-or-mobile`: normalization and parsing never
/// panic; a normalized substring is a match; and the n-gram index cannot miss
/// it: every gram the planner would look up is among the stored text's grams.
/// The same input is then a message-text query and message ([`message_text`]).
pub(crate) fn search_query(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (q, stored) = text.split_once('\n').unwrap_or((text, ""));
    message_text(q, stored);
    let norm = normalize(stored);
    let phones = phone_variants(stored);
    let Some(query) = Query::parse(q) else {
        return;
    };
    let by_nick = !query.norm.is_empty() && norm.contains(&query.norm);
    assert!(
        !by_nick || query.matches(&norm, &phones),
        "{q:?} in {stored:?}"
    );
    // Both gram sets a store may have (formats 1-2 and 3-4).
    for short in [false, true] {
        if by_nick {
            if let Some(grams) = query.nick_grams(short) {
                let have: HashSet<String> = nick_grams(&norm, short).into_iter().collect();
                for g in grams {
                    assert!(
                        have.contains(&g),
                        "index misses {stored:?} for {q:?}: gram {g:?}"
                    );
                }
            }
        }
        if let Some(sides) = query.phone_grams(short) {
            let have: HashSet<String> = phone_grams(&phones, short).into_iter().collect();
            for (grams, p) in sides.iter().zip(&query.phones) {
                if phones.iter().any(|v| v.contains(p.as_str())) {
                    for g in grams {
                        assert!(
                            have.contains(g),
                            "index misses {stored:?} for {q:?}: gram {g:?}"
                        );
                    }
                }
            }
        }
    }
}

/// Message-text search on one message: a text holding the query holds every
/// query gram, at the query's offsets shifted by where it holds the query
/// (so the postings cannot miss it); and when the query's grams cover it,
/// the verification from gram offsets ([`holds_query`], what the engine does
/// without reading the message) says exactly whether the text holds it.
pub(crate) fn message_text(q: &str, stored: &str) {
    let text = normalize(stored);
    let norm = normalize(q.trim());
    if norm.is_empty() {
        return;
    }
    let query = message_gram_positions(&norm);
    let have = message_gram_positions(&text);
    let holds = text.contains(norm.as_str());
    let at: Vec<Option<&[u32]>> = query
        .iter()
        .map(|(g, _)| have.iter().find(|(h, _)| h == g).map(|(_, o)| o.as_slice()))
        .collect();
    if holds {
        assert!(
            at.iter().all(Option::is_some),
            "index misses {stored:?} for {q:?}"
        );
    }
    if grams_cover(&norm, &query) {
        let verified = match at.iter().copied().collect::<Option<Vec<&[u32]>>>() {
            Some(at) => holds_query(&query, &at),
            None => false,
        };
        assert_eq!(
            verified, holds,
            "offsets verify {q:?} in {stored:?} as {verified}"
        );
    }
}
