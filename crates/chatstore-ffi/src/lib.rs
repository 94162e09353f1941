//! The C ABI of chatstore: an opaque store handle, JSON in and out, `int32_t`
//! status codes with a thread-local last error, owned buffers only through
//! out-parameters freed by [`cs_string_free`], and every export guarded so a
//! panic becomes [`CsStatus::Internal`] instead of unwinding into the host.
//!
//! This crate only converts; every rule lives in the `chatstore` core.
#![allow(clippy::missing_safety_doc)] // the header documents each contract

mod error;
mod guard;

use std::ffi::{c_char, CStr, CString};
use std::path::PathBuf;

use chatstore::{Options, Reader, Store};

/// mimalloc (feature `mimalloc`): faster writes; off by default so valgrind
/// sees every allocation.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

pub use error::{CsStatus, FfiError};
use guard::{guard, store_ref, Out};

/// Version of this ABI; changes whenever a signature or a code changes.
pub const CS_ABI_VERSION: u32 = 1;

/// An open store. Opaque to C.
pub struct CsStore(Store);

fn text<'a>(p: *const c_char, len: usize, what: &'static str) -> Result<&'a str, FfiError> {
    if p.is_null() {
        return Err(FfiError::Null(what));
    }
    // SAFETY: the caller passes `len` readable bytes at `p` (documented).
    let bytes = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len) };
    std::str::from_utf8(bytes).map_err(|_| FfiError::Utf8(what))
}

fn cstr<'a>(p: *const c_char, what: &'static str) -> Result<&'a str, FfiError> {
    if p.is_null() {
        return Err(FfiError::Null(what));
    }
    // SAFETY: the caller passes a NUL-terminated string (documented).
    unsafe { CStr::from_ptr(p) }
        .to_str()
        .map_err(|_| FfiError::Utf8(what))
}

fn json_arg(
    p: *const c_char,
    len: usize,
    what: &'static str,
) -> Result<serde_json::Value, FfiError> {
    let t = text(p, len, what)?;
    Ok(chatstore::parse_json(t.as_bytes(), what)?)
}

/// Runs a query taking JSON parameters and answering JSON text.
fn json_query(
    store: *const CsStore,
    params_json: *const c_char,
    len: usize,
    out_json: *mut *mut c_char,
    query: fn(&Store, &serde_json::Value) -> chatstore::Result<String>,
) -> i32 {
    guard(|| {
        let out = Out::new(out_json, "out_json")?;
        let s = store_ref(store)?;
        let params = json_arg(params_json, len, "params")?;
        out.set_string(query(s, &params)?)
    })
}

/// Decodes the record at `json` and applies `write` to it on the store.
fn write_record<T: serde::de::DeserializeOwned, R>(
    store: *const CsStore,
    json: *const c_char,
    len: usize,
    what: &str,
    write: impl FnOnce(&Store, &T) -> chatstore::Result<R>,
) -> Result<R, FfiError> {
    let s = store_ref(store)?;
    let record: T = chatstore::parse_json(text(json, len, "json")?.as_bytes(), what)?;
    Ok(write(s, &record)?)
}

/// [`write_record`] for writes that return an id, written to `out_id`
/// unless it is NULL.
fn write_record_id<T: serde::de::DeserializeOwned>(
    store: *const CsStore,
    json: *const c_char,
    len: usize,
    what: &str,
    out_id: *mut u64,
    write: impl FnOnce(&Store, &T) -> chatstore::Result<u64>,
) -> Result<(), FfiError> {
    let id = write_record(store, json, len, what, write)?;
    Out::optional(out_id).set(id);
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
#[no_mangle]
pub unsafe extern "C" fn cs_store_open(
    path: *const c_char,
    options_json: *const c_char,
    out: *mut *mut CsStore,
) -> i32 {
    guard(|| {
        let out = Out::new(out, "out")?;
        let path = PathBuf::from(cstr(path, "path")?);
        let options = if options_json.is_null() {
            Options::default()
        } else {
            let t = cstr(options_json, "options_json")?;
            Options::from_json(&chatstore::parse_json(t.as_bytes(), "options")?)?
        };
        let store = Store::open(path, options)?;
        out.set(Box::into_raw(Box::new(CsStore(store))));
        Ok(())
    })
}

/// Flushes and frees the handle. NULL is a no-op. The handle must not be used
/// afterwards, by any thread.
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
#[no_mangle]
pub unsafe extern "C" fn cs_store_is_owner(store: *const CsStore, out_owner: *mut i32) -> i32 {
    guard(|| {
        let out = Out::new(out_owner, "out_owner")?;
        out.set(i32::from(store_ref(store)?.is_owner()));
        Ok(())
    })
}

/// Makes every write so far durable.
#[no_mangle]
pub unsafe extern "C" fn cs_store_flush(store: *const CsStore) -> i32 {
    guard(|| Ok(store_ref(store)?.flush()?))
}

/// Inserts or replaces a member given as a JSON object (a JSONL member record
/// without "kind").
#[no_mangle]
pub unsafe extern "C" fn cs_upsert_member(
    store: *const CsStore,
    json: *const c_char,
    len: usize,
) -> i32 {
    guard(|| write_record(store, json, len, "member", Store::upsert_member))
}

/// Inserts or replaces an agent given as a JSON object.
#[no_mangle]
pub unsafe extern "C" fn cs_upsert_agent(
    store: *const CsStore,
    json: *const c_char,
    len: usize,
) -> i32 {
    guard(|| write_record(store, json, len, "agent", Store::upsert_agent))
}

/// Inserts or replaces a session given as a JSON object; `*out_id` (may be
/// NULL) receives its id, assigned when the record has none.
#[no_mangle]
pub unsafe extern "C" fn cs_upsert_session(
    store: *const CsStore,
    json: *const c_char,
    len: usize,
    out_id: *mut u64,
) -> i32 {
    guard(|| write_record_id(store, json, len, "session", out_id, Store::upsert_session))
}

/// Inserts or replaces an account (`{"sso_id","tenant","hash"}`).
#[no_mangle]
pub unsafe extern "C" fn cs_upsert_account(
    store: *const CsStore,
    json: *const c_char,
    len: usize,
) -> i32 {
    guard(|| write_record(store, json, len, "account", Store::upsert_account))
}

/// Deletes an account.
#[no_mangle]
pub unsafe extern "C" fn cs_delete_account(store: *const CsStore, sso_id: u64) -> i32 {
    guard(|| Ok(store_ref(store)?.delete_account(sso_id)?))
}

/// Appends a message given as a JSON object; `*out_id` (may be NULL)
/// receives its id.
#[no_mangle]
pub unsafe extern "C" fn cs_append_message(
    store: *const CsStore,
    json: *const c_char,
    len: usize,
    out_id: *mut u64,
) -> i32 {
    guard(|| write_record_id(store, json, len, "message", out_id, Store::append_message))
}

/// Deletes a session and its messages.
#[no_mangle]
pub unsafe extern "C" fn cs_delete_session(store: *const CsStore, tenant: u64, id: u64) -> i32 {
    guard(|| Ok(store_ref(store)?.delete_session(tenant, id)?))
}

/// Deletes a member, its sessions and their messages.
#[no_mangle]
pub unsafe extern "C" fn cs_delete_member(store: *const CsStore, tenant: u64, uid: u64) -> i32 {
    guard(|| Ok(store_ref(store)?.delete_member(tenant, uid)?))
}

/// Deletes an agent without sessions.
#[no_mangle]
pub unsafe extern "C" fn cs_delete_agent(store: *const CsStore, tenant: u64, id: u64) -> i32 {
    guard(|| Ok(store_ref(store)?.delete_agent(tenant, id)?))
}

/// The history-list response (first seed) for JSON parameters: tenant
/// (required), employee, user_name, page, pagesize, order ("id"/"recent"),
/// page_url, cursor. `*out_json` receives the whole response.
#[no_mangle]
pub unsafe extern "C" fn cs_history_list(
    store: *const CsStore,
    params_json: *const c_char,
    len: usize,
    out_json: *mut *mut c_char,
) -> i32 {
    json_query(store, params_json, len, out_json, Store::history_list_json)
}

/// Searches message text. `params_json`: tenant and q (required),
/// session_id, agent_id, page, pagesize. `*out_json` receives
/// `{"total","page","pagesize","data":[message...]}`, newest first, with the
/// exact total. A query too short for the index (one CJK character, fewer
/// than three others) needs a session_id.
#[no_mangle]
pub unsafe extern "C" fn cs_search_messages(
    store: *const CsStore,
    params_json: *const c_char,
    len: usize,
    out_json: *mut *mut c_char,
) -> i32 {
    json_query(
        store,
        params_json,
        len,
        out_json,
        Store::search_messages_json,
    )
}

/// The hischat response (second seed). A wrong or empty hash is a normal
/// response (status 0), not an error.
#[no_mangle]
pub unsafe extern "C" fn cs_hischat(
    store: *const CsStore,
    sso_id: u64,
    hash: *const c_char,
    hash_len: usize,
    page: i64,
    out_json: *mut *mut c_char,
) -> i32 {
    guard(|| {
        let out = Out::new(out_json, "out_json")?;
        let s = store_ref(store)?;
        let hash = text(hash, hash_len, "hash")?;
        out.set_string(s.hischat_text(sso_id, hash, page)?)
    })
}

/// A session's messages, newest first: `{"total","page","pagesize","data"}`.
#[no_mangle]
pub unsafe extern "C" fn cs_messages(
    store: *const CsStore,
    tenant: u64,
    session_id: u64,
    page: u64,
    pagesize: u64,
    out_json: *mut *mut c_char,
) -> i32 {
    guard(|| {
        let out = Out::new(out_json, "out_json")?;
        let s = store_ref(store)?;
        out.set_string(to_json(&s.messages(tenant, session_id, page, pagesize)?)?)
    })
}

/// A session's messages from JSON parameters (`tenant`, `session_id`,
/// `page`, `pagesize`; `params_len` bytes), checked as history-list's are:
/// ids must be non-negative integers (or strings of one), paging is
/// lenient. The same answer as [`cs_messages`].
#[no_mangle]
pub unsafe extern "C" fn cs_messages_json(
    store: *const CsStore,
    params_json: *const c_char,
    params_len: usize,
    out_json: *mut *mut c_char,
) -> i32 {
    json_query(store, params_json, params_len, out_json, |s, p| {
        let r = chatstore::MessagesRequest::from_json(p)?;
        serde_json::to_string(&s.messages(r.tenant, r.session_id, r.page, r.pagesize)?)
            .map_err(|e| chatstore::Error::invalid("params", e.to_string()))
    })
}

/// Recalls a message: it stays in history flagged `"recalled":true` (the
/// platform's `is_backed`) and stops counting as unread.
#[no_mangle]
pub unsafe extern "C" fn cs_recall_message(
    store: *const CsStore,
    tenant: u64,
    session_id: u64,
    message_id: u64,
) -> i32 {
    guard(|| Ok(store_ref(store)?.recall_message(tenant, session_id, message_id)?))
}

/// Deletes a message softly: it leaves every view (message lists, the
/// session's count and last message, unread counts) and is kept, with
/// `deleted_at`, for export.
#[no_mangle]
pub unsafe extern "C" fn cs_delete_message(
    store: *const CsStore,
    tenant: u64,
    session_id: u64,
    message_id: u64,
) -> i32 {
    guard(|| Ok(store_ref(store)?.delete_message(tenant, session_id, message_id)?))
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
#[no_mangle]
pub unsafe extern "C" fn cs_mark_read(
    store: *const CsStore,
    tenant: u64,
    session_id: u64,
    reader: i32,
    up_to: u64,
    out_unread: *mut u64,
) -> i32 {
    guard(|| {
        let out = Out::optional(out_unread);
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
        let n = store_ref(store)?.mark_read(tenant, session_id, reader, up_to)?;
        out.set(n);
        Ok(())
    })
}

/// An agent's live session list, newest activity first, each row with its
/// last message and read state (`read.unread_by_agent` is the platform's
/// `un_read_num`): `{"total","page","pagesize","data":[...]}`.
#[no_mangle]
pub unsafe extern "C" fn cs_live_sessions(
    store: *const CsStore,
    tenant: u64,
    agent_id: u64,
    page: u64,
    pagesize: u64,
    out_json: *mut *mut c_char,
) -> i32 {
    guard(|| {
        let out = Out::new(out_json, "out_json")?;
        let s = store_ref(store)?;
        out.set_string(to_json(
            &s.live_sessions(tenant, agent_id, page, pagesize)?,
        )?)
    })
}

/// Members whose nickname or mobile matches the query, as a JSON array.
#[no_mangle]
pub unsafe extern "C" fn cs_search_members(
    store: *const CsStore,
    tenant: u64,
    query: *const c_char,
    len: usize,
    out_json: *mut *mut c_char,
) -> i32 {
    guard(|| {
        let out = Out::new(out_json, "out_json")?;
        let s = store_ref(store)?;
        let q = text(query, len, "query")?;
        out.set_string(to_json(&s.search_members(tenant, q)?)?)
    })
}

/// Imports a JSON Lines file (NUL-terminated path); `*out_json` (may be
/// NULL) receives the summary. A refused line: CS_STATUS_INVALID_INPUT (or
/// NOT_FOUND) with "line N: reason"; the lines before it are stored.
#[no_mangle]
pub unsafe extern "C" fn cs_import_jsonl(
    store: *const CsStore,
    path: *const c_char,
    out_json: *mut *mut c_char,
) -> i32 {
    guard(|| {
        let s = store_ref(store)?;
        let summary = s.import_file(cstr(path, "path")?)?;
        let out = Out::optional(out_json);
        if out.is_set() {
            out.set_string(to_json(&summary)?)?;
        }
        Ok(())
    })
}

/// Exports every record to a JSON Lines file; `*out_count` (may be NULL)
/// receives the number of records.
#[no_mangle]
pub unsafe extern "C" fn cs_export_jsonl(
    store: *const CsStore,
    path: *const c_char,
    out_count: *mut u64,
) -> i32 {
    guard(|| {
        let s = store_ref(store)?;
        let path = cstr(path, "path")?;
        let f = std::fs::File::create(path).map_err(|e| FfiError::Core(chatstore::Error::Io(e)))?;
        let n = s.export_jsonl(std::io::BufWriter::new(f))?;
        Out::optional(out_count).set(n);
        Ok(())
    })
}

/// What the store was created as; `*out_json` receives
/// `{"format": N, "text_index": true|false}`.
#[no_mangle]
pub unsafe extern "C" fn cs_store_info(store: *const CsStore, out_json: *mut *mut c_char) -> i32 {
    guard(|| {
        let out = Out::new(out_json, "out_json")?;
        out.set_string(to_json(&store_ref(store)?.info()?)?)
    })
}

/// Verifies every invariant; `*out_json` receives the report
/// (`{"ok","keys","tenants","violations"}`). Returns OK even when violations
/// are found: read "ok".
#[no_mangle]
pub unsafe extern "C" fn cs_check(store: *const CsStore, out_json: *mut *mut c_char) -> i32 {
    guard(|| {
        let out = Out::new(out_json, "out_json")?;
        out.set_string(to_json(&store_ref(store)?.check()?)?)
    })
}
