"""Type stubs of the native module chatstore._chatstore (checked by mypy.stubtest)."""

import os
from types import TracebackType
from typing import Any, Dict, List, Optional, Type, Union, final

from typing_extensions import TypeAlias

__all__ = [
    "ClosedError",
    "ConflictError",
    "Error",
    "ExportIterator",
    "InvalidInputError",
    "LockedError",
    "NotFoundError",
    "StorageError",
    "Store",
    "__version__",
    "_panic_in_a_call",
    "open",
]
__version__: str

_StrPath: TypeAlias = Union[str, "os.PathLike[str]"]

class Error(Exception):
    """Base of every chatstore error."""

class LockedError(Error):
    """The store is held by another process or Store."""

class NotFoundError(Error):
    """A record the call refers to does not exist."""

class InvalidInputError(Error, ValueError, TypeError):
    """Malformed input: an argument or field of the wrong type, out of range or too long."""

class ConflictError(Error):
    """The write would break a rule of the data model."""

class ClosedError(Error):
    """The store was closed."""

class StorageError(Error):
    """I/O failed, the store is damaged, or it has a newer format."""

@final
class ExportIterator:
    """Iterator over the records of a store (see Store.export)."""

    def __iter__(self) -> ExportIterator: ...
    def __next__(self) -> Dict[str, Any]: ...

@final
class Store:
    """An open chatstore. Use it as a context manager, or call close()."""

    @property
    def closed(self) -> bool:
        """Whether close() was called."""
    def __enter__(self) -> Store: ...
    def __exit__(
        self,
        _ty: Optional[Type[BaseException]],
        _value: Optional[BaseException],
        _tb: Optional[TracebackType],
    ) -> bool: ...
    def import_jsonl(self, path: _StrPath) -> Dict[str, int]:
        """Imports a JSON Lines file; returns the summary (lines, members, ...)."""
    def export_jsonl(self, path: _StrPath) -> int:
        """Writes every record to a JSON Lines file; returns the number of records."""
    def export(self) -> ExportIterator:
        """Iterates over every record as a dict shaped like a JSON Lines record."""
    def history_list(
        self,
        tenant: int,
        employee: Optional[int] = None,
        user_name: Optional[str] = None,
        page: int = 1,
        pagesize: int = 10,
        order: str = "id",
        page_url: Optional[str] = None,
        cursor: Optional[str] = None,
    ) -> Dict[str, Any]:
        """The whole history-list response (first seed) as a dict."""
    def hischat(self, sso_id: int, hash: str, page: int = 1) -> Dict[str, Any]:
        """The whole hischat response (second seed) as a dict."""
    def upsert_member(self, member: Dict[str, Any]) -> None:
        """Inserts or replaces a member (dict shaped like a JSONL member record)."""
    def upsert_agent(self, agent: Dict[str, Any]) -> None:
        """Inserts or replaces an agent."""
    def upsert_session(self, session: Dict[str, Any]) -> int:
        """Inserts or replaces a session; returns its id (assigned when absent)."""
    def upsert_account(self, account: Dict[str, Any]) -> None:
        """Inserts or replaces an account (sso_id, tenant, hash)."""
    def append_message(self, message: Dict[str, Any]) -> int:
        """Appends a message; returns its id (assigned when absent)."""
    def messages(self, tenant: int, session_id: int, page: int = 1, pagesize: int = 20) -> Dict[str, Any]:
        """A session's messages, newest first: {"total","page","pagesize","data"}."""
    def mark_read(self, tenant: int, session_id: int, reader: str, up_to: int) -> int:
        """Marks a session's messages read by reader ("agent" reads the member's
        messages, "member" the agent's) up to message id up_to; a read mark
        never moves back. Returns that reader's unread count after."""
    def recall_message(self, tenant: int, session_id: int, message_id: int) -> None:
        """Recalls a message: kept in history flagged "recalled" (the
        platform's is_backed), no longer unread."""
    def delete_message(self, tenant: int, session_id: int, message_id: int) -> None:
        """Deletes a message softly: out of every view (lists, counts, last
        message, unread counts), kept for export."""
    def live_sessions(
        self, tenant: int, agent_id: int, page: int = 1, pagesize: int = 20
    ) -> Dict[str, Any]:
        """An agent's live session list, newest activity first:
        {"total","page","pagesize","data"}; each row has session, member,
        agent, last_message and read (read["unread_by_agent"] is the
        platform's un_read_num)."""
    def search_messages(
        self,
        tenant: int,
        q: str,
        session_id: Optional[int] = None,
        agent_id: Optional[int] = None,
        page: int = 1,
        pagesize: int = 20,
    ) -> Dict[str, Any]:
        """Searches message text: {"total","page","pagesize","data"}, newest
        first, exact total; narrowed to a session or an agent when given."""
    def search_members(self, tenant: int, q: str) -> List[Dict[str, Any]]:
        """Members of the tenant whose nickname or mobile matches q."""
    def delete_session(self, tenant: int, id: int) -> None:
        """Deletes a session and its messages."""
    def delete_member(self, tenant: int, uid: int) -> None:
        """Deletes a member, its sessions and their messages."""
    def delete_agent(self, tenant: int, id: int) -> None:
        """Deletes an agent; ConflictError while it has sessions."""
    def delete_account(self, sso_id: int) -> None:
        """Deletes an account."""
    def info(self) -> Dict[str, Any]:
        """What the store was created as: {"format","text_index"}."""
    def check(self) -> Dict[str, Any]:
        """Verifies every invariant: {"ok","keys","tenants","violations"}."""
    def is_owner(self) -> bool:
        """Whether this process owns the store (holds it and serves the other
        processes that open it)."""
    def flush(self) -> None:
        """Makes every write so far durable."""
    def close(self) -> None:
        """Flushes and releases the store. Idempotent; later calls raise ClosedError."""

def open(path: _StrPath, **options: Any) -> Store:
    """Opens (creating when absent) the store at `path`. Options: durability
    ("buffered"|"sync"), flush_every_ms, cache_capacity, media_base,
    default_avatar, utc_offset, compression, linger_ms, attach_timeout_ms,
    text_index (False: a new store keeps no message-text index; fixed when
    the store is created)."""

def _panic_in_a_call() -> None:
    """Panics inside a guarded call (tests only: a panic reaches Python as StorageError)."""
