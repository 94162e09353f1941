#![no_main]
//! See checks/ffi.rs.
#[path = "../checks/ffi.rs"]
mod checks;
libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::ffi_params(data));
