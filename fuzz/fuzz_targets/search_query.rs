#![no_main]
//! See checks/core.rs.
#[path = "../checks/core.rs"]
mod checks;
libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::search_query(data));
