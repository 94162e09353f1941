#![no_main]
//! See checks/model.rs.
#[path = "../checks/model.rs"]
mod checks;
libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::model_ops(data));
