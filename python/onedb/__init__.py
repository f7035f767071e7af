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

from . import aio
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
    ParseError,
    TooLarge,
    Timeout,
    UnknownType,
)
from ._result import Result
from ._tcp import Connection, Pool, Subscription
from ._wire import Tls

__version__ = "0.1.0"

__all__ = [
    "open", "connect", "pool", "Database", "Session", "Events", "Connection", "Pool",
    "Subscription", "Result", "Error", "CODES", "ParseError", "UnknownType",
    "NotAuthenticated", "Forbidden", "LimitReached", "InvalidTransition", "NotFound",
    "Conflict", "Timeout", "Cancelled", "TooLarge", "InvalidArgument", "Corruption", "IoError",
]


def open(
    path: Union[str, "os.PathLike[str]"] = "./onedb-data",
    durability: str = "sync",
    as_email: Optional[str] = None,
) -> Database:
    """Opens (creating if new) a data directory in this process. Its queries
    act as root (local mode), or as the person whose login is ``as_email``.
    ``durability``: ``"sync"`` (a commit survives power loss) or
    ``"relaxed"`` (survives a crash of the process)."""
    return Database(path, durability, as_email)


def connect(
    address: str,
    *,
    email: Optional[str] = None,
    password: Optional[str] = None,
    token: Optional[str] = None,
    tls: Tls = None,
    org: Optional[str] = None,
    timeout: Optional[float] = 30.0,
) -> Connection:
    """Connects to ``onedb serve`` at ``host:port`` and logs in with email
    and password, or with an API token. ``tls``: True (verify against the
    system's CAs), a CA file, or an ``ssl.SSLContext``. ``org``: ``USE ORG``
    right after login. ``timeout``: for connecting (seconds)."""
    return Connection(address, email=email, password=password, token=token, tls=tls, org=org, timeout=timeout)


def pool(address: str, *, size: int = 8, **connect_args: Any) -> Pool:
    """A pool of up to ``size`` connections (same arguments as ``connect``)
    for threads: each ``query`` borrows one."""
    return Pool(address, size=size, **connect_args)
