"""chatstore: customer-service chat history in an embedded store.

Open a store with :func:`open`; a :class:`Store` answers the two platforms'
history endpoints (``history_list``, ``hischat``) with their exact JSON as
dicts, and takes records shaped like the JSON Lines import format::

    import chatstore
    with chatstore.open("shop.db", media_base="http://localhost:82") as store:
        store.import_jsonl("dump.jsonl")
        page = store.history_list(2, employee=2, user_name="185-1669")

Errors derive from :class:`chatstore.Error`.
"""

from ._chatstore import (
    ClosedError,
    ConflictError,
    Error,
    ExportIterator,
    InvalidInputError,
    LockedError,
    NotFoundError,
    StorageError,
    Store,
    __version__,
    open,
)

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
    "open",
]
