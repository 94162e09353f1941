//! Replays the fuzz corpus of `ffi_params` (`fuzz/corpus/ffi_params`) through
//! the checks the fuzz target runs.
#![allow(clippy::unwrap_used)] // a failed unwrap here is a failed test or run

#[path = "../../../fuzz/checks/ffi.rs"]
mod checks;

#[test]
fn ffi_params_corpus() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus/ffi_params");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        checks::ffi_params(&std::fs::read(entry.unwrap().path()).unwrap());
        n += 1;
    }
    assert!(n > 0, "empty corpus");
}
