//! Python binding of chatstore: the native module `chatstore._chatstore`.
//!
//! Conversion only: dicts travel as JSON (Python's `json` module on this side,
//! the core's record types on the other), every rule lives in the core. Every
//! call that touches the store runs with the GIL released (`py.detach`).
#![forbid(unsafe_code)]

use std::cell::Cell;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex, Once, RwLock};

use chatstore::{ErrorKind, HistoryParams, HistoryRequest, MessageSearch, Options, Reader};
use pyo3::create_exception;
use pyo3::exceptions::PyException;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyType};

mod args;
use args::{Signed, StorePath, Text, Whole};

/// mimalloc: sled allocates per key; the system allocator cost about a
/// quarter of the write path's cycles.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

create_exception!(
    chatstore,
    Error,
    PyException,
    "Base of every chatstore error."
);
create_exception!(
    chatstore,
    LockedError,
    Error,
    "The store is held by another process or Store."
);
create_exception!(
    chatstore,
    NotFoundError,
    Error,
    "A record the call refers to does not exist."
);
create_exception!(
    chatstore,
    ConflictError,
    Error,
    "The write would break a rule of the data model."
);
create_exception!(chatstore, ClosedError, Error, "The store was closed.");
create_exception!(
    chatstore,
    StorageError,
    Error,
    "I/O failed, the store is damaged, or it has a newer format."
);

/// `chatstore.InvalidInputError`: made at import (`create_exception!`
/// takes one base) so that it is also a `ValueError` and a `TypeError`,
/// what Python code expects of a bad argument.
static INVALID_INPUT: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// An `InvalidInputError` with `msg`.
fn invalid(msg: impl Into<String>) -> PyErr {
    let msg = msg.into();
    Python::attach(|py| match INVALID_INPUT.get(py) {
        Some(t) => PyErr::from_type(t.bind(py).clone(), msg),
        None => pyo3::exceptions::PyValueError::new_err(msg),
    })
}

fn make_invalid_input(py: Python<'_>) -> PyResult<Py<PyType>> {
    let ns = PyDict::new(py);
    ns.set_item("Error", py.get_type::<Error>())?;
    py.run(
        cr#"
class InvalidInputError(Error, ValueError, TypeError):
    """Malformed input: an argument or field of the wrong type, out of range or too long."""

    __module__ = "chatstore"

    def __str__(self):
        # A bad argument is named by the note Python's binding layer adds
        # ("while processing 'pagesize'", Python 3.11+).
        text = super().__str__()
        for note in getattr(self, "__notes__", ()):
            if note.startswith("while processing '") and note.endswith("'"):
                return "argument " + note[len("while processing "):] + ": " + text
        return text
"#,
        Some(&ns),
        None,
    )?;
    Ok(ns
        .get_item("InvalidInputError")?
        .ok_or_else(|| pyo3::exceptions::PyRuntimeError::new_err("InvalidInputError"))?
        .cast_into::<PyType>()?
        .unbind())
}

fn to_py(e: chatstore::Error) -> PyErr {
    let msg = e.to_string();
    match e.kind() {
        ErrorKind::Locked => LockedError::new_err(msg),
        ErrorKind::NotFound => NotFoundError::new_err(msg),
        ErrorKind::InvalidInput => invalid(msg),
        ErrorKind::Conflict => ConflictError::new_err(msg),
        ErrorKind::Closed => ClosedError::new_err(msg),
        _ => StorageError::new_err(msg),
    }
}

thread_local! {
    /// This thread is inside a call into chatstore (see [`guarded`]).
    static IN_CALL: Cell<bool> = const { Cell::new(false) };
}

/// Installs, once, a panic hook that stays quiet for panics [`guarded`]
/// catches (the exception carries the message; a host's stderr gets no
/// backtrace) and leaves every other panic to the hook before it.
fn quiet_panics_in_calls() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_CALL.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs `f` as one call into chatstore. A panic in it (chatstore's, or a
/// library's under it: sled on a damaged file) becomes `StorageError`,
/// which `except chatstore.Error` catches, instead of pyo3's
/// `PanicException`, which even `except Exception` misses.
fn guarded<T>(f: impl FnOnce() -> chatstore::Result<T>) -> PyResult<T> {
    let was = IN_CALL.with(|c| c.replace(true));
    let r = catch_unwind(AssertUnwindSafe(f));
    IN_CALL.with(|c| c.set(was));
    match r {
        Ok(r) => r.map_err(to_py),
        Err(p) => Err(StorageError::new_err(format!(
            "internal error in chatstore (please report it): {}",
            chatstore::panic_message(p.as_ref())
        ))),
    }
}

fn dumps(obj: &Bound<'_, PyAny>) -> PyResult<String> {
    let json = obj.py().import("json")?;
    json.call_method1("dumps", (obj,))
        .map_err(|e| invalid(format!("invalid argument: {e}")))?
        .extract()
}

fn loads<'py>(py: Python<'py>, text: &str) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (text,))
}

fn to_json_text(v: &impl serde::Serialize) -> PyResult<String> {
    serde_json::to_string(v).map_err(|e| StorageError::new_err(e.to_string()))
}

fn record<T: serde::de::DeserializeOwned>(obj: &Bound<'_, PyAny>, what: &str) -> PyResult<T> {
    chatstore::parse_json(dumps(obj)?.as_bytes(), what).map_err(to_py)
}

/// An open chatstore. Use it as a context manager, or call close().
#[pyclass(module = "chatstore")]
struct Store {
    inner: RwLock<Option<Arc<chatstore::Store>>>,
}

impl Store {
    fn get(&self) -> PyResult<Arc<chatstore::Store>> {
        self.inner
            .read()
            .map_err(|_| StorageError::new_err("store lock poisoned"))?
            .clone()
            .ok_or_else(|| ClosedError::new_err("store is closed"))
    }

    /// Runs `f` on the store with the GIL released.
    fn run<T: Send>(
        &self,
        py: Python<'_>,
        f: impl FnOnce(&chatstore::Store) -> chatstore::Result<T> + Send,
    ) -> PyResult<T> {
        let store = self.get()?;
        py.detach(move || guarded(|| f(&store)))
    }
}

#[pymethods]
impl Store {
    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __exit__(
        &self,
        py: Python<'_>,
        _ty: Bound<'_, PyAny>,
        _value: Bound<'_, PyAny>,
        _tb: Bound<'_, PyAny>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    /// Imports a JSON Lines file; returns the summary (lines, members, ...).
    fn import_jsonl<'py>(&self, py: Python<'py>, path: StorePath) -> PyResult<Bound<'py, PyAny>> {
        let path = path.0;
        let s = self.run(py, move |s| s.import_file(&path))?;
        loads(py, &to_json_text(&s)?)
    }

    /// Writes every record to a JSON Lines file; returns the number of records.
    fn export_jsonl(&self, py: Python<'_>, path: StorePath) -> PyResult<u64> {
        let path = path.0;
        self.run(py, move |s| {
            let f = std::fs::File::create(&path).map_err(chatstore::Error::Io)?;
            s.export_jsonl(std::io::BufWriter::new(f))
        })
    }

    /// Iterates over every record as a dict shaped like a JSON Lines record.
    fn export(&self, py: Python<'_>) -> PyResult<ExportIterator> {
        let it = self.run(py, |s| s.export_records())?;
        Ok(ExportIterator {
            inner: Mutex::new(it),
        })
    }

    /// The whole history-list response (first seed) as a dict.
    #[pyo3(
        signature = (tenant, employee=None, user_name=None, page=Signed(1), pagesize=Signed(10), order=Text("id".into()), page_url=None, cursor=None),
        text_signature = "(self, tenant, employee=None, user_name=None, page=1, pagesize=10, order='id', page_url=None, cursor=None)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn history_list<'py>(
        &self,
        py: Python<'py>,
        tenant: Whole,
        employee: Option<Whole>,
        user_name: Option<Text>,
        page: Signed,
        pagesize: Signed,
        order: Text,
        page_url: Option<Text>,
        cursor: Option<Text>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tenant = tenant.0;
        let employee = employee.map(|v| v.0);
        let user_name = user_name.map(|v| v.0);
        let page = page.0;
        let pagesize = pagesize.0;
        let order = order.0;
        let page_url = page_url.map(|v| v.0);
        let cursor = cursor.map(|v| v.0);
        let req = HistoryRequest::new(HistoryParams {
            tenant,
            employee,
            user_name,
            page: Some(page),
            pagesize: Some(pagesize),
            order: Some(order),
            page_url,
            cursor,
        })
        .map_err(to_py)?;
        let text = self.run(py, move |s| s.history_list_text(&req))?;
        loads(py, &text)
    }

    /// The whole hischat response (second seed) as a dict; a wrong or empty
    /// hash is a refusal (status 0), not an exception.
    #[pyo3(signature = (sso_id, hash, page=Signed(1)), text_signature = "(self, sso_id, hash, page=1)")]
    fn hischat<'py>(
        &self,
        py: Python<'py>,
        sso_id: Whole,
        hash: Text,
        page: Signed,
    ) -> PyResult<Bound<'py, PyAny>> {
        let sso_id = sso_id.0;
        let hash = hash.0;
        let page = page.0;
        let text = self.run(py, move |s| s.hischat_text(sso_id, &hash, page))?;
        loads(py, &text)
    }

    /// Inserts or replaces a member (dict shaped like a JSONL member record).
    fn upsert_member(&self, py: Python<'_>, member: Bound<'_, PyAny>) -> PyResult<()> {
        let m: chatstore::Member = record(&member, "member")?;
        self.run(py, move |s| s.upsert_member(&m))
    }

    /// Inserts or replaces an agent.
    fn upsert_agent(&self, py: Python<'_>, agent: Bound<'_, PyAny>) -> PyResult<()> {
        let a: chatstore::Agent = record(&agent, "agent")?;
        self.run(py, move |s| s.upsert_agent(&a))
    }

    /// Inserts or replaces a session; returns its id (assigned when absent).
    fn upsert_session(&self, py: Python<'_>, session: Bound<'_, PyAny>) -> PyResult<u64> {
        let v: chatstore::Session = record(&session, "session")?;
        self.run(py, move |s| s.upsert_session(&v))
    }

    /// Inserts or replaces an account (sso_id, tenant, hash).
    fn upsert_account(&self, py: Python<'_>, account: Bound<'_, PyAny>) -> PyResult<()> {
        let a: chatstore::Account = record(&account, "account")?;
        self.run(py, move |s| s.upsert_account(&a))
    }

    /// Appends a message; returns its id (assigned when absent).
    fn append_message(&self, py: Python<'_>, message: Bound<'_, PyAny>) -> PyResult<u64> {
        let m: chatstore::Message = record(&message, "message")?;
        self.run(py, move |s| s.append_message(&m))
    }

    /// A session's messages, newest first: {"total","page","pagesize","data"}.
    #[pyo3(
        signature = (tenant, session_id, page=Whole(1), pagesize=Whole(20)),
        text_signature = "(self, tenant, session_id, page=1, pagesize=20)"
    )]
    fn messages<'py>(
        &self,
        py: Python<'py>,
        tenant: Whole,
        session_id: Whole,
        page: Whole,
        pagesize: Whole,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tenant = tenant.0;
        let session_id = session_id.0;
        let page = page.0;
        let pagesize = pagesize.0;
        let p = self.run(py, move |s| s.messages(tenant, session_id, page, pagesize))?;
        loads(py, &to_json_text(&p)?)
    }

    /// Marks a session's messages read by reader ("agent" reads the member's
    /// messages, "member" the agent's) up to message id up_to; a read mark
    /// never moves back. Returns that reader's unread count after.
    fn mark_read(
        &self,
        py: Python<'_>,
        tenant: Whole,
        session_id: Whole,
        reader: Text,
        up_to: Whole,
    ) -> PyResult<u64> {
        let tenant = tenant.0;
        let session_id = session_id.0;
        let reader = reader.0;
        let up_to = up_to.0;
        let reader = Reader::parse(&reader).ok_or_else(|| {
            invalid(format!(
                "invalid reader: {reader:?} is neither \"agent\" nor \"member\""
            ))
        })?;
        self.run(py, move |s| s.mark_read(tenant, session_id, reader, up_to))
    }

    /// Recalls a message: kept in history flagged "recalled" (the
    /// platform's is_backed), no longer unread.
    fn recall_message(
        &self,
        py: Python<'_>,
        tenant: Whole,
        session_id: Whole,
        message_id: Whole,
    ) -> PyResult<()> {
        let tenant = tenant.0;
        let session_id = session_id.0;
        let message_id = message_id.0;
        self.run(py, move |s| {
            s.recall_message(tenant, session_id, message_id)
        })
    }

    /// Deletes a message softly: out of every view (lists, counts, last
    /// message, unread counts), kept for export.
    fn delete_message(
        &self,
        py: Python<'_>,
        tenant: Whole,
        session_id: Whole,
        message_id: Whole,
    ) -> PyResult<()> {
        let tenant = tenant.0;
        let session_id = session_id.0;
        let message_id = message_id.0;
        self.run(py, move |s| {
            s.delete_message(tenant, session_id, message_id)
        })
    }

    /// An agent's live session list, newest activity first:
    /// {"total","page","pagesize","data"}; each row has session, member,
    /// agent, last_message and read (read["unread_by_agent"] is the
    /// platform's un_read_num).
    #[pyo3(
        signature = (tenant, agent_id, page=Whole(1), pagesize=Whole(20)),
        text_signature = "(self, tenant, agent_id, page=1, pagesize=20)"
    )]
    fn live_sessions<'py>(
        &self,
        py: Python<'py>,
        tenant: Whole,
        agent_id: Whole,
        page: Whole,
        pagesize: Whole,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tenant = tenant.0;
        let agent_id = agent_id.0;
        let page = page.0;
        let pagesize = pagesize.0;
        let p = self.run(py, move |s| {
            s.live_sessions(tenant, agent_id, page, pagesize)
        })?;
        loads(py, &to_json_text(&p)?)
    }

    /// Searches message text: {"total","page","pagesize","data"}, newest
    /// first, exact total; narrowed to a session or an agent when given.
    #[pyo3(
        signature = (tenant, q, session_id=None, agent_id=None, page=Whole(1), pagesize=Whole(20)),
        text_signature = "(self, tenant, q, session_id=None, agent_id=None, page=1, pagesize=20)"
    )]
    #[allow(clippy::too_many_arguments)]
    fn search_messages<'py>(
        &self,
        py: Python<'py>,
        tenant: Whole,
        q: Text,
        session_id: Option<Whole>,
        agent_id: Option<Whole>,
        page: Whole,
        pagesize: Whole,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tenant = tenant.0;
        let q = q.0;
        let session_id = session_id.map(|v| v.0);
        let agent_id = agent_id.map(|v| v.0);
        let page = page.0;
        let pagesize = pagesize.0;
        let search = MessageSearch {
            tenant,
            q,
            session_id,
            agent_id,
            page,
            pagesize,
        };
        let hits = self.run(py, move |s| s.search_messages(&search))?;
        loads(py, &to_json_text(&hits)?)
    }

    /// Members of the tenant whose nickname or mobile matches q.
    fn search_members<'py>(
        &self,
        py: Python<'py>,
        tenant: Whole,
        q: Text,
    ) -> PyResult<Bound<'py, PyAny>> {
        let tenant = tenant.0;
        let q = q.0;
        let found = self.run(py, move |s| s.search_members(tenant, &q))?;
        loads(py, &to_json_text(&found)?)
    }

    /// Deletes a session and its messages.
    fn delete_session(&self, py: Python<'_>, tenant: Whole, id: Whole) -> PyResult<()> {
        let tenant = tenant.0;
        let id = id.0;
        self.run(py, move |s| s.delete_session(tenant, id))
    }

    /// Deletes a member, its sessions and their messages.
    fn delete_member(&self, py: Python<'_>, tenant: Whole, uid: Whole) -> PyResult<()> {
        let tenant = tenant.0;
        let uid = uid.0;
        self.run(py, move |s| s.delete_member(tenant, uid))
    }

    /// Deletes an agent; ConflictError while it has sessions.
    fn delete_agent(&self, py: Python<'_>, tenant: Whole, id: Whole) -> PyResult<()> {
        let tenant = tenant.0;
        let id = id.0;
        self.run(py, move |s| s.delete_agent(tenant, id))
    }

    /// Deletes an account.
    fn delete_account(&self, py: Python<'_>, sso_id: Whole) -> PyResult<()> {
        let sso_id = sso_id.0;
        self.run(py, move |s| s.delete_account(sso_id))
    }

    /// What the store was created as: {"format","text_index"}.
    fn info<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let r = self.run(py, |s| s.info())?;
        loads(py, &to_json_text(&r)?)
    }

    /// Verifies every invariant: {"ok","keys","tenants","violations"}.
    fn check<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let r = self.run(py, |s| s.check())?;
        loads(py, &to_json_text(&r)?)
    }

    /// Whether this process owns the store (holds it and serves the other
    /// processes that open it).
    fn is_owner(&self, py: Python<'_>) -> PyResult<bool> {
        self.run(py, |s| Ok(s.is_owner()))
    }

    /// Makes every write so far durable.
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        self.run(py, |s| s.flush())
    }

    /// Flushes and releases the store. Idempotent; later calls raise ClosedError.
    /// Calls already running in other threads finish first.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self
            .inner
            .write()
            .map_err(|_| StorageError::new_err("store lock poisoned"))?
            .take();
        if let Some(store) = taken {
            py.detach(move || {
                guarded(|| {
                    let r = store.close();
                    drop(store);
                    r
                })
            })?;
        }
        Ok(())
    }

    /// Whether close() was called.
    #[getter]
    fn closed(&self) -> bool {
        self.inner.read().map(|g| g.is_none()).unwrap_or(true)
    }
}

/// Iterator over the records of a store (see Store.export).
#[pyclass(module = "chatstore")]
struct ExportIterator {
    inner: Mutex<chatstore::ExportIter>,
}

#[pymethods]
impl ExportIterator {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyAny>>> {
        // One record per step: too short to be worth releasing the GIL.
        let mut inner = self
            .inner
            .lock()
            .map_err(|_| StorageError::new_err("iterator lock poisoned"))?;
        match guarded(|| inner.next().transpose())? {
            None => Ok(None),
            Some(r) => loads(py, &to_json_text(&r)?).map(Some),
        }
    }
}

/// Opens (creating when absent) the store at `path`. Options: those of
/// `Options::from_json` (durability, flush_every_ms, cache_capacity,
/// media_base, default_avatar, utc_offset, compression, linger_ms,
/// attach_timeout_ms, text_index, backend, map_size, group_access,
/// text_pending_bytes).
#[pyfunction]
#[pyo3(signature = (path, **options))]
fn open(py: Python<'_>, path: StorePath, options: Option<Bound<'_, PyDict>>) -> PyResult<Store> {
    let path = path.0;
    let options = match options {
        None => Options::default(),
        Some(d) => {
            let v: serde_json::Value =
                chatstore::parse_json(dumps(d.as_any())?.as_bytes(), "options").map_err(to_py)?;
            Options::from_json(&v).map_err(to_py)?
        }
    };
    let store = py.detach(move || guarded(|| chatstore::Store::open(path, options)))?;
    Ok(Store {
        inner: RwLock::new(Some(Arc::new(store))),
    })
}

/// Panics inside a guarded call: how the tests show that a panic under any
/// call (chatstore's or a library's) reaches Python as `StorageError`
/// without a backtrace on stderr. Not part of the API.
#[pyfunction]
fn _panic_in_a_call(py: Python<'_>) -> PyResult<()> {
    py.detach(|| guarded(|| -> chatstore::Result<()> { panic!("a test panic") }))
}

/// The native module.
#[pymodule]
fn _chatstore(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    quiet_panics_in_calls();
    m.add_function(wrap_pyfunction!(open, m)?)?;
    m.add_function(wrap_pyfunction!(_panic_in_a_call, m)?)?;
    m.add_class::<Store>()?;
    m.add_class::<ExportIterator>()?;
    m.add("Error", py.get_type::<Error>())?;
    m.add("LockedError", py.get_type::<LockedError>())?;
    m.add("NotFoundError", py.get_type::<NotFoundError>())?;
    let invalid_input = INVALID_INPUT.get_or_try_init(py, || make_invalid_input(py))?;
    m.add("InvalidInputError", invalid_input.bind(py))?;
    m.add("ConflictError", py.get_type::<ConflictError>())?;
    m.add("ClosedError", py.get_type::<ClosedError>())?;
    m.add("StorageError", py.get_type::<StorageError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
