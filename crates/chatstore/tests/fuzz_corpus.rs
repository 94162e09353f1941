//! Replays the fuzz corpora of `jsonl_record` and `search_query`
//! (`fuzz/corpus/*`) through the same checks the fuzz targets run, so a
//! regression on any input the fuzzer ever kept fails CI.
#![allow(clippy::unwrap_used)] // a failed unwrap here is a failed test or run

#[path = "../../../fuzz/checks/core.rs"]
mod checks;

fn replay(target: &str, check: fn(&[u8])) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        check(&std::fs::read(&path).unwrap());
        n += 1;
    }
    assert!(n > 0, "empty corpus {}", dir.display());
}

#[test]
fn jsonl_record_corpus() {
    replay("jsonl_record", checks::jsonl_record);
}

#[test]
fn search_query_corpus() {
    replay("search_query", checks::search_query);
}

#[path = "../../../fuzz/checks/model.rs"]
mod model;

#[test]
fn model_ops_corpus() {
    replay("model_ops", model::model_ops);
}
