"""onedb from Python: the same OQL, embedded in this process or over TCP.

>>> import onedb
>>> db = onedb.open("./onedb-data")                 # embedded, local mode (root)
>>> c = onedb.connect("127.0.0.1:7606", email="alice@acme.io", password="…")

Both give ``query(text, **params)`` → ``Result(columns, rows, stats)``,
``query_many``, ``subscribe`` and ``cancel``; a failed statement raises
``onedb.Error`` (``.code``, ``.message``), one subclass per stable code.
``onedb.aio.connect`` is the asyncio twin of ``connect``. docs/python.md
has the whole guide.
"""

from __future__ import annotations

import os
from typing import Any, Optional, Union

from . import aio  # noqa: F401 - `onedb.aio` after `import onedb`
from ._embedded import Database, Events, Session
from ._errors import (
    CODES,
    Cancelled,
    Conflict,
    Corruption,
    Error,
    Forbidden,
    InvalidArgument,
    InvalidTransition,
    IoError,
    LimitReached,
    NotAuthenticated,
    NotFound,
    OutcomeUnknown,
    ParseError,
    TooLarge,
    Timeout,
    UnknownType,
)
from ._result import Result
from ._tcp import Connection, Pool, Subscription

__version__ = "0.1.0"

__all__ = [
    "open", "connect", "pool", "aio", "Database", "Session", "Events", "Connection", "Pool",
    "Subscription", "Result", "Error", "CODES", "ParseError", "UnknownType",
    "NotAuthenticated", "Forbidden", "LimitReached", "InvalidTransition", "NotFound",
    "Conflict", "Timeout", "Cancelled", "TooLarge", "InvalidArgument", "Corruption", "IoError",
    "OutcomeUnknown",
]


def open(
    path: Union[str, "os.PathLike[str]"] = "./onedb-data",
    durability: str = "sync",
    as_email: Optional[str] = None,
    store: str = "rocks",
) -> Database:
    """Opens (creating if new) a data directory in this process. Its queries
    act as root (local mode), or as the person whose login is ``as_email``.
    ``durability``: ``"sync"`` (a commit survives power loss) or
    ``"relaxed"`` (survives a crash of the process). ``store``: ``"rocks"``
    (RocksDB in the directory) or ``"memory"`` (records in memory, gone
    when the database closes: for tests)."""
    return Database(path, durability, as_email, store)


#: ``onedb.connect("host:port", email=…, password=… | token=…, tls=None,
#: org=None, timeout=30.0)``: a logged-in ``Connection`` (see its docs).
connect = Connection


def pool(address: str, *, size: int = 8, **connect_args: Any) -> Pool:
    """A pool of up to ``size`` connections (same arguments as ``connect``)
    for threads: each ``query`` borrows one."""
    return Pool(address, size=size, **connect_args)
