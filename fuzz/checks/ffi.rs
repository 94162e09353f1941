//! Properties checked by the fuzz target `ffi_params` and by the corpus replay
//! test `crates/chatstore-ffi/tests/fuzz_corpus.rs` (which includes this
//! file): arbitrary bytes as the parameters of the C ABI's read calls
//! (history-list, hischat, member search, message search) never
//! crash and never reach a panic (`CS_STATUS_INTERNAL`); a call answers either
//! OK with valid JSON or an error code with a message, never both.
#![allow(dead_code)]

use std::ffi::CStr;
use std::os::raw::c_char;
use std::ptr;

use chatstore_ffi::*;

struct Seeded {
    _dir: tempfile::TempDir,
    store: *mut CsStore,
}

impl Drop for Seeded {
    fn drop(&mut self) {
        // SAFETY: the handle came from cs_store_open and is closed once.
        unsafe { cs_store_close(self.store) };
    }
}

thread_local! {
    static STORE: Seeded = seeded();
}

fn seeded() -> Seeded {
    let dir = tempfile::tempdir().unwrap();
    let seeds = dir.path().join("seeds.jsonl");
    std::fs::write(&seeds, chatstore::demo::SEED_JSONL).unwrap();
    let path = std::ffi::CString::new(dir.path().join("db").to_str().unwrap()).unwrap();
    let mut store = ptr::null_mut();
    // SAFETY: NUL-terminated paths that outlive the calls, a writable out
    // pointer, and the handle the open returned.
    unsafe {
        assert_eq!(cs_store_open(path.as_ptr(), ptr::null(), &mut store), 0);
        let file = std::ffi::CString::new(seeds.to_str().unwrap()).unwrap();
        assert_eq!(cs_import_jsonl(store, file.as_ptr(), ptr::null_mut()), 0);
    }
    Seeded { _dir: dir, store }
}

fn answered(rc: i32, out: *mut c_char) {
    assert_ne!(
        rc,
        CsStatus::Internal as i32,
        "a panic reached the C boundary"
    );
    if rc == 0 {
        assert!(!out.is_null());
        // SAFETY: on OK the call wrote a NUL-terminated string to `out`.
        let text = unsafe { CStr::from_ptr(out) }
            .to_str()
            .expect("UTF-8 output");
        serde_json::from_str::<serde_json::Value>(text).expect("JSON output");
        // SAFETY: a string the library returned, freed once.
        unsafe { cs_string_free(out) };
    } else {
        assert!(out.is_null(), "output on error");
        // SAFETY: the last error message is a NUL-terminated string owned by
        // the library, valid until the next call on this thread.
        let msg = unsafe { CStr::from_ptr(cs_last_error_message()) };
        assert!(!msg.to_bytes().is_empty(), "an error without a message");
    }
}

/// First byte: which call; the rest: its parameters.
pub(crate) fn ffi_params(data: &[u8]) {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    STORE.with(|s| {
        let mut out: *mut c_char = ptr::null_mut();
        let p = rest.as_ptr() as *const c_char;
        // SAFETY: a live handle, `rest.len()` readable bytes at `p`, and a
        // writable out pointer.
        let rc = unsafe {
            match which % 4 {
                0 => cs_history_list(s.store, p, rest.len(), &mut out),
                1 => cs_hischat(s.store, 218, p, rest.len(), 1, &mut out),
                2 => cs_search_members(s.store, 2, p, rest.len(), &mut out),
                _ => cs_search_messages(s.store, p, rest.len(), &mut out),
            }
        };
        answered(rc, out);
    });
}
