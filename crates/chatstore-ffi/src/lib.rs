//! The C ABI of chatstore: an opaque store handle, JSON in and out, `int32_t`
//! status codes with a thread-local last error, owned buffers only through
//! out-parameters freed by [`cs_string_free`], and every export guarded so a
//! panic becomes [`CsStatus::Internal`] instead of unwinding into the host.
//!
//! This crate only converts; every rule lives in the `chatstore` core.
#![deny(
    unsafe_op_in_unsafe_fn,
    clippy::undocumented_unsafe_blocks,
    clippy::missing_safety_doc
)]

mod error;
mod guard;

use std::ffi::{c_char, CString};
use std::path::PathBuf;

use chatstore::{Options, Reader, Store};

/// mimalloc (feature `mimalloc`): faster writes; off by default so valgrind
/// sees every allocation.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use error::{CsStatus, FfiError};
use guard::{guard, Bytes, CText, Out, StoreArg};

/// Version of this ABI; changes whenever a signature or a code changes.
pub const CS_ABI_VERSION: u32 = 1;

/// An open store. Opaque to C.
pub struct CsStore(Store);

fn json_arg(params: &Bytes<'_>, what: &'static str) -> Result<serde_json::Value, FfiError> {
    Ok(chatstore::parse_json(params.str(what)?.as_bytes(), what)?)
}

/// Runs a query taking JSON parameters and answering JSON text.
fn json_query(
    store: StoreArg<'_>,
    params_json: Bytes<'_>,
    out_json: Out<'_, *mut c_char>,
    query: fn(&Store, &serde_json::Value) -> chatstore::Result<String>,
) -> i32 {
    guard(|| {
        let out = out_json.required("out_json")?;
        let s = store.get()?;
        let params = json_arg(&params_json, "params")?;
        out.set_string(query(s, &params)?)
    })
}

/// Decodes the record at `json` and applies `write` to it on the store.
fn write_record<T: serde::de::DeserializeOwned, R>(
    store: StoreArg<'_>,
    json: Bytes<'_>,
    what: &str,
    write: impl FnOnce(&Store, &T) -> chatstore::Result<R>,
) -> Result<R, FfiError> {
    let s = store.get()?;
    let record: T = chatstore::parse_json(json.str("json")?.as_bytes(), what)?;
    Ok(write(s, &record)?)
}

/// [`write_record`] for writes that return an id, written to `out_id`
/// unless it is NULL.
fn write_record_id<T: serde::de::DeserializeOwned>(
    store: StoreArg<'_>,
    json: Bytes<'_>,
    what: &str,
    out_id: Out<'_, u64>,
    write: impl FnOnce(&Store, &T) -> chatstore::Result<u64>,
) -> Result<(), FfiError> {
    let id = write_record(store, json, what, write)?;
    out_id.set(id);
    Ok(())
}

fn to_json(v: &impl serde::Serialize) -> Result<String, FfiError> {
    serde_json::to_string(v).map_err(|e| FfiError::Internal(e.to_string()))
}

/// The ABI version ([`CS_ABI_VERSION`]).
#[no_mangle]
pub extern "C" fn cs_abi_version() -> u32 {
    CS_ABI_VERSION
}

/// The library version, e.g. "0.1.0" (borrowed, static).
#[no_mangle]
pub extern "C" fn cs_version() -> *const c_char {
    static V: &str = concat!(env!("CARGO_PKG_VERSION"), "\0");
    V.as_ptr().cast()
}

/// The message of the last failed call on this thread (borrowed; valid until
/// the next call on this thread; "" after a successful call).
#[no_mangle]
pub extern "C" fn cs_last_error_message() -> *const c_char {
    error::last_message()
}

/// The status of the last call on this thread.
#[no_mangle]
pub extern "C" fn cs_last_error_code() -> i32 {
    error::last_code()
}

/// Frees a string returned through an out-parameter. NULL is a no-op.
///
/// # Safety
///
/// `s` is NULL or a string this library returned through an out-parameter,
/// not freed before.
#[no_mangle]
pub unsafe extern "C" fn cs_string_free(s: *mut c_char) {
    if !s.is_null() {
        // SAFETY: `s` came from CString::into_raw in this library (documented).
        drop(unsafe { CString::from_raw(s) });
    }
}

/// Opens (creating when absent) the store at `path` (NUL-terminated).
/// `options_json` is NULL or a JSON object: durability ("buffered"/"sync"),
/// flush_every_ms, cache_capacity, media_base, default_avatar, utc_offset,
/// compression, linger_ms, attach_timeout_ms, text_index (false: a new
/// store keeps no message-text index; fixed when the store is created).
/// On success `*out` holds the handle; close it with cs_store_close().
/// Any number of processes may open one store: the first owns it and serves
/// the others over `PATH/chatstore.sock`. CS_STATUS_LOCKED only when the
/// store stays locked with nobody serving it for `attach_timeout_ms`
/// (10 s; also `linger_ms`, see ARCHITECTURE.md "Many processes").
///
/// # Safety
///
/// `path` is NULL or a NUL-terminated string; `options_json` is NULL or a
/// NUL-terminated string; `out` is NULL or points to a writable `cs_store *`.
#[no_mangle]
pub unsafe extern "C" fn cs_store_open(
    path: *const c_char,
    options_json: *const c_char,
    out: *mut *mut CsStore,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (path, options_json, out) =
        unsafe { (CText::new(path), CText::new(options_json), Out::new(out)) };
    guard(|| {
        let out = out.required("out")?;
        let path = PathBuf::from(path.str("path")?);
        let options = if options_json.is_null() {
            Options::default()
        } else {
            let t = options_json.str("options_json")?;
            Options::from_json(&chatstore::parse_json(t.as_bytes(), "options")?)?
        };
        let store = Store::open(path, options)?;
        out.set(Box::into_raw(Box::new(CsStore(store))));
        Ok(())
    })
}

/// Flushes and frees the handle. NULL is a no-op. The handle must not be used
/// afterwards, by any thread.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, closed once: no call
/// may use it after this one, from any thread.
#[no_mangle]
pub unsafe extern "C" fn cs_store_close(store: *mut CsStore) {
    if store.is_null() {
        return;
    }
    let _ = guard(|| {
        // SAFETY: `store` came from cs_store_open and is closed once (documented).
        let b = unsafe { Box::from_raw(store) };
        b.0.close()?;
        Ok(())
    });
}

/// Whether this process owns the store (holds it and serves the other
/// processes that open it): `*out_owner` is 1 or 0.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `out_owner` is NULL or points to a writable `int32_t`.
#[no_mangle]
pub unsafe extern "C" fn cs_store_is_owner(store: *const CsStore, out_owner: *mut i32) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, out_owner) = unsafe { (StoreArg::new(store), Out::new(out_owner)) };
    guard(|| {
        let out = out_owner.required("out_owner")?;
        out.set(i32::from(store.get()?.is_owner()));
        Ok(())
    })
}

/// Makes every write so far durable.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call.
#[no_mangle]
pub unsafe extern "C" fn cs_store_flush(store: *const CsStore) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let store = unsafe { StoreArg::new(store) };
    guard(|| Ok(store.get()?.flush()?))
}

/// Inserts or replaces a member given as a JSON object (a JSONL member record
/// without "kind").
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `json` is NULL or points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn cs_upsert_member(
    store: *const CsStore,
    json: *const c_char,
    len: usize,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, json) = unsafe { (StoreArg::new(store), Bytes::new(json, len)) };
    guard(|| write_record(store, json, "member", Store::upsert_member))
}

/// Inserts or replaces an agent given as a JSON object.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `json` is NULL or points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn cs_upsert_agent(
    store: *const CsStore,
    json: *const c_char,
    len: usize,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, json) = unsafe { (StoreArg::new(store), Bytes::new(json, len)) };
    guard(|| write_record(store, json, "agent", Store::upsert_agent))
}

/// Inserts or replaces a session given as a JSON object; `*out_id` (may be
/// NULL) receives its id, assigned when the record has none.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `json` is NULL or points to `len` readable bytes; `out_id` is NULL
/// or points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn cs_upsert_session(
    store: *const CsStore,
    json: *const c_char,
    len: usize,
    out_id: *mut u64,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, json, out_id) = unsafe {
        (
            StoreArg::new(store),
            Bytes::new(json, len),
            Out::new(out_id),
        )
    };
    guard(|| write_record_id(store, json, "session", out_id, Store::upsert_session))
}

/// Inserts or replaces an account (`{"sso_id","tenant","hash"}`).
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `json` is NULL or points to `len` readable bytes.
#[no_mangle]
pub unsafe extern "C" fn cs_upsert_account(
    store: *const CsStore,
    json: *const c_char,
    len: usize,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, json) = unsafe { (StoreArg::new(store), Bytes::new(json, len)) };
    guard(|| write_record(store, json, "account", Store::upsert_account))
}

/// Deletes an account.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call.
#[no_mangle]
pub unsafe extern "C" fn cs_delete_account(store: *const CsStore, sso_id: u64) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let store = unsafe { StoreArg::new(store) };
    guard(|| Ok(store.get()?.delete_account(sso_id)?))
}

/// Appends a message given as a JSON object; `*out_id` (may be NULL)
/// receives its id.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `json` is NULL or points to `len` readable bytes; `out_id` is NULL
/// or points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn cs_append_message(
    store: *const CsStore,
    json: *const c_char,
    len: usize,
    out_id: *mut u64,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, json, out_id) = unsafe {
        (
            StoreArg::new(store),
            Bytes::new(json, len),
            Out::new(out_id),
        )
    };
    guard(|| write_record_id(store, json, "message", out_id, Store::append_message))
}

/// Deletes a session and its messages.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call.
#[no_mangle]
pub unsafe extern "C" fn cs_delete_session(store: *const CsStore, tenant: u64, id: u64) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let store = unsafe { StoreArg::new(store) };
    guard(|| Ok(store.get()?.delete_session(tenant, id)?))
}

/// Deletes a member, its sessions and their messages.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call.
#[no_mangle]
pub unsafe extern "C" fn cs_delete_member(store: *const CsStore, tenant: u64, uid: u64) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let store = unsafe { StoreArg::new(store) };
    guard(|| Ok(store.get()?.delete_member(tenant, uid)?))
}

/// Deletes an agent without sessions.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call.
#[no_mangle]
pub unsafe extern "C" fn cs_delete_agent(store: *const CsStore, tenant: u64, id: u64) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let store = unsafe { StoreArg::new(store) };
    guard(|| Ok(store.get()?.delete_agent(tenant, id)?))
}

/// The history-list response (first seed) for JSON parameters: tenant
/// (required), employee, user_name, page, pagesize, order ("id"/"recent"),
/// page_url, cursor. `*out_json` receives the whole response.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `params_json` is NULL or points to `len` readable bytes; `out_json`
/// is NULL or points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn cs_history_list(
    store: *const CsStore,
    params_json: *const c_char,
    len: usize,
    out_json: *mut *mut c_char,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, params_json, out_json) = unsafe {
        (
            StoreArg::new(store),
            Bytes::new(params_json, len),
            Out::new(out_json),
        )
    };
    json_query(store, params_json, out_json, Store::history_list_json)
}

/// Searches message text. `params_json`: tenant and q (required),
/// session_id, agent_id, page, pagesize. `*out_json` receives
/// `{"total","page","pagesize","data":[message...]}`, newest first, with the
/// exact total. A query too short for the index (one CJK character, fewer
/// than three others) needs a session_id.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `params_json` is NULL or points to `len` readable bytes; `out_json`
/// is NULL or points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn cs_search_messages(
    store: *const CsStore,
    params_json: *const c_char,
    len: usize,
    out_json: *mut *mut c_char,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, params_json, out_json) = unsafe {
        (
            StoreArg::new(store),
            Bytes::new(params_json, len),
            Out::new(out_json),
        )
    };
    json_query(store, params_json, out_json, Store::search_messages_json)
}

/// The hischat response (second seed). A wrong or empty hash is a normal
/// response (status 0), not an error.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `hash` is NULL or points to `hash_len` readable bytes; `out_json` is
/// NULL or points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn cs_hischat(
    store: *const CsStore,
    sso_id: u64,
    hash: *const c_char,
    hash_len: usize,
    page: i64,
    out_json: *mut *mut c_char,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, hash, out_json) = unsafe {
        (
            StoreArg::new(store),
            Bytes::new(hash, hash_len),
            Out::new(out_json),
        )
    };
    guard(|| {
        let out = out_json.required("out_json")?;
        let s = store.get()?;
        let hash = hash.str("hash")?;
        out.set_string(s.hischat_text(sso_id, hash, page)?)
    })
}

/// A session's messages, newest first: `{"total","page","pagesize","data"}`.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `out_json` is NULL or points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn cs_messages(
    store: *const CsStore,
    tenant: u64,
    session_id: u64,
    page: u64,
    pagesize: u64,
    out_json: *mut *mut c_char,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, out_json) = unsafe { (StoreArg::new(store), Out::new(out_json)) };
    guard(|| {
        let out = out_json.required("out_json")?;
        let s = store.get()?;
        out.set_string(to_json(&s.messages(tenant, session_id, page, pagesize)?)?)
    })
}

/// A session's messages from JSON parameters (`tenant`, `session_id`,
/// `page`, `pagesize`; `params_len` bytes), checked as history-list's are:
/// ids must be non-negative integers (or strings of one), paging is
/// lenient. The same answer as [`cs_messages`].
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `params_json` is NULL or points to `params_len` readable bytes;
/// `out_json` is NULL or points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn cs_messages_json(
    store: *const CsStore,
    params_json: *const c_char,
    params_len: usize,
    out_json: *mut *mut c_char,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, params_json, out_json) = unsafe {
        (
            StoreArg::new(store),
            Bytes::new(params_json, params_len),
            Out::new(out_json),
        )
    };
    json_query(store, params_json, out_json, |s, p| {
        let r = chatstore::MessagesRequest::from_json(p)?;
        serde_json::to_string(&s.messages(r.tenant, r.session_id, r.page, r.pagesize)?)
            .map_err(|e| chatstore::Error::invalid("params", e.to_string()))
    })
}

/// Recalls a message: it stays in history flagged `"recalled":true` (the
/// platform's `is_backed`) and stops counting as unread.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call.
#[no_mangle]
pub unsafe extern "C" fn cs_recall_message(
    store: *const CsStore,
    tenant: u64,
    session_id: u64,
    message_id: u64,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let store = unsafe { StoreArg::new(store) };
    guard(|| {
        Ok(store
            .get()?
            .recall_message(tenant, session_id, message_id)?)
    })
}

/// Deletes a message softly: it leaves every view (message lists, the
/// session's count and last message, unread counts) and is kept, with
/// `deleted_at`, for export.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call.
#[no_mangle]
pub unsafe extern "C" fn cs_delete_message(
    store: *const CsStore,
    tenant: u64,
    session_id: u64,
    message_id: u64,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let store = unsafe { StoreArg::new(store) };
    guard(|| {
        Ok(store
            .get()?
            .delete_message(tenant, session_id, message_id)?)
    })
}

/// Who reads, for cs_mark_read (passed as an int32_t).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsReader {
    /// The agent, reading the member's messages.
    Agent = 0,
    /// The member, reading the agent's messages.
    Member = 1,
}

/// Marks a session's messages read by `reader` (CS_READER_AGENT or
/// CS_READER_MEMBER) up to message id `up_to`; a read mark never moves back.
/// `*out_unread` (may be NULL) gets that reader's unread count after.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `out_unread` is NULL or points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn cs_mark_read(
    store: *const CsStore,
    tenant: u64,
    session_id: u64,
    reader: i32,
    up_to: u64,
    out_unread: *mut u64,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, out_unread) = unsafe { (StoreArg::new(store), Out::new(out_unread)) };
    guard(|| {
        let out = out_unread;
        let reader = match reader {
            0 => Reader::Agent,
            1 => Reader::Member,
            other => {
                return Err(chatstore::Error::invalid(
                    "reader",
                    format!("{other} is neither CS_READER_AGENT (0) nor CS_READER_MEMBER (1)"),
                )
                .into())
            }
        };
        let n = store.get()?.mark_read(tenant, session_id, reader, up_to)?;
        out.set(n);
        Ok(())
    })
}

/// An agent's live session list, newest activity first, each row with its
/// last message and read state (`read.unread_by_agent` is the platform's
/// `un_read_num`): `{"total","page","pagesize","data":[...]}`.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `out_json` is NULL or points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn cs_live_sessions(
    store: *const CsStore,
    tenant: u64,
    agent_id: u64,
    page: u64,
    pagesize: u64,
    out_json: *mut *mut c_char,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, out_json) = unsafe { (StoreArg::new(store), Out::new(out_json)) };
    guard(|| {
        let out = out_json.required("out_json")?;
        let s = store.get()?;
        out.set_string(to_json(
            &s.live_sessions(tenant, agent_id, page, pagesize)?,
        )?)
    })
}

/// Members whose nickname or mobile matches the query, as a JSON array.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `query` is NULL or points to `len` readable bytes; `out_json` is
/// NULL or points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn cs_search_members(
    store: *const CsStore,
    tenant: u64,
    query: *const c_char,
    len: usize,
    out_json: *mut *mut c_char,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, query, out_json) = unsafe {
        (
            StoreArg::new(store),
            Bytes::new(query, len),
            Out::new(out_json),
        )
    };
    guard(|| {
        let out = out_json.required("out_json")?;
        let s = store.get()?;
        let q = query.str("query")?;
        out.set_string(to_json(&s.search_members(tenant, q)?)?)
    })
}

/// Imports a JSON Lines file (NUL-terminated path); `*out_json` (may be
/// NULL) receives the summary. A refused line: CS_STATUS_INVALID_INPUT (or
/// NOT_FOUND) with "line N: reason"; the lines before it are stored.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `path` is NULL or a NUL-terminated string; `out_json` is NULL or
/// points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn cs_import_jsonl(
    store: *const CsStore,
    path: *const c_char,
    out_json: *mut *mut c_char,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, path, out_json) =
        unsafe { (StoreArg::new(store), CText::new(path), Out::new(out_json)) };
    guard(|| {
        let s = store.get()?;
        let summary = s.import_file(path.str("path")?)?;
        let out = out_json;
        if out.is_set() {
            out.set_string(to_json(&summary)?)?;
        }
        Ok(())
    })
}

/// Exports every record to a JSON Lines file; `*out_count` (may be NULL)
/// receives the number of records.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `path` is NULL or a NUL-terminated string; `out_count` is NULL or
/// points to a writable `uint64_t`.
#[no_mangle]
pub unsafe extern "C" fn cs_export_jsonl(
    store: *const CsStore,
    path: *const c_char,
    out_count: *mut u64,
) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, path, out_count) =
        unsafe { (StoreArg::new(store), CText::new(path), Out::new(out_count)) };
    guard(|| {
        let s = store.get()?;
        let path = path.str("path")?;
        let f = std::fs::File::create(path).map_err(|e| FfiError::Core(chatstore::Error::Io(e)))?;
        let n = s.export_jsonl(std::io::BufWriter::new(f))?;
        out_count.set(n);
        Ok(())
    })
}

/// What the store was created as; `*out_json` receives
/// `{"format": N, "text_index": true|false}`.
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `out_json` is NULL or points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn cs_store_info(store: *const CsStore, out_json: *mut *mut c_char) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, out_json) = unsafe { (StoreArg::new(store), Out::new(out_json)) };
    guard(|| {
        let out = out_json.required("out_json")?;
        out.set_string(to_json(&store.get()?.info()?)?)
    })
}

/// Verifies every invariant; `*out_json` receives the report
/// (`{"ok","keys","tenants","violations"}`). Returns OK even when violations
/// are found: read "ok".
///
/// # Safety
///
/// `store` is NULL or a handle from `cs_store_open`, not closed during the
/// call; `out_json` is NULL or points to a writable `char *`.
#[no_mangle]
pub unsafe extern "C" fn cs_check(store: *const CsStore, out_json: *mut *mut c_char) -> i32 {
    // SAFETY: the arguments are what `# Safety` above requires.
    let (store, out_json) = unsafe { (StoreArg::new(store), Out::new(out_json)) };
    guard(|| {
        let out = out_json.required("out_json")?;
        out.set_string(to_json(&store.get()?.check()?)?)
    })
}
