"""The embedded door: the engine in this process (``onedb.open``)."""

from __future__ import annotations

import json
import os
from collections import deque
from typing import Any, Deque, Iterable, List, Optional, Tuple, Union

from . import _onedb, _wire
from ._errors import Cancelled
from ._events import EventStream, Position
from ._result import Result

Query = Union[str, Tuple[str, dict]]


class Session:
    """One person's session on an embedded database: its LET variables,
    current org (``USE ORG``) and open ``BEGIN`` block. Use one session per
    thread; calls on one session from several threads take turns."""

    def __init__(self, inner: "_onedb.Session") -> None:
        self._inner = inner

    def query(self, text: str, /, **params: Any) -> Result:
        """Runs ``text`` (one or more statements) with ``params`` bound as
        ``$name``: the last statement's result, or raises ``onedb.Error``."""
        columns, rows, stats = self._inner.query(text, params or None)
        return Result(columns, rows, stats)

    def query_many(self, queries: Iterable[Query]) -> List[Result]:
        """Runs many queries (texts, or ``(text, params)`` pairs) in order in
        one call; raises the first error (its ``.index`` is its place)."""
        return [Result(c, r, s) for c, r, s in self._inner.query_many(_wire.items(queries))]

    def subscribe(self, text: str, /, after: Optional[int] = None, **params: Any) -> "Events":
        """The events an ``EVENTS`` statement asks for, as they commit, in
        the current org; ``after`` also replays those committed after it."""
        return Events(self._inner, text, params, after)

    def cancel(self) -> None:
        """Stops the query running on this session (from another thread)."""
        self._inner.cancel()

    @property
    def org(self) -> Optional[str]:
        """The current org's slug (None: the platform)."""
        return self._inner.org

    def close(self) -> None:
        self._inner.close()

    def __enter__(self) -> "Session":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Database(Session):
    """An open data directory (``onedb.open``). Its own queries run on one
    session (root, or ``as_email``); ``session()`` makes more."""

    def __init__(
        self,
        path: Union[str, "os.PathLike[str]"],
        durability: str = "sync",
        as_email: Optional[str] = None,
        store: str = "rocks",
    ) -> None:
        self._engine = _onedb.Engine(os.fspath(path), durability, store)
        try:
            super().__init__(self._engine.session(as_email))
        except BaseException:
            self._engine.close()
            raise

    def session(self, as_email: Optional[str] = None) -> Session:
        """A new session as root (local mode) or as ``as_email``."""
        return Session(self._engine.session(as_email))

    def close(self) -> None:
        """Closes this database's session and the data directory (once the
        sessions made by ``session()`` are closed too)."""
        super().close()
        self._engine.close()


class Events(EventStream):
    """An iterator of event dicts in commit order. A subscription that falls
    behind its queue is made again after the last event delivered, so
    iteration goes on without a gap or a duplicate."""

    def __init__(self, session: "_onedb.Session", text: str, params: dict, after: Optional[int]) -> None:
        self._session = session
        self._text = text
        self._params = params or None
        self._buffer: Deque[dict] = deque()
        self._position = Position(after)
        self._events = self._subscribe(after)
        self._position.start = self._events.start

    def _subscribe(self, after: Optional[int]) -> "_onedb.Events":
        return self._session.subscribe(self._text, self._params, after)

    def next(self, timeout: Optional[float] = None) -> Optional[dict]:
        while not self._buffer:
            try:
                batch = self._events.take(timeout)
            except Cancelled as e:
                if e.last_seq is None:
                    raise
                self._position.ended_at(e.last_seq)
                self._events = self._subscribe(self._position.resume_after())
                continue
            if batch is None:
                raise StopIteration
            if not batch:
                return None
            for line in batch:
                event = json.loads(line)
                if self._position.fresh(event):
                    self._buffer.append(event)
        return self._buffer.popleft()

    def close(self) -> None:
        self._events.close()
