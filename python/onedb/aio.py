"""The asyncio twin of ``onedb.connect``.

>>> conn = await onedb.aio.connect("127.0.0.1:7606", token="…")
>>> result = await conn.query("MATCH (c:course) RETURN c.name")

Coroutines may query one connection concurrently: their requests are
pipelined and each awaits its own answer. ``subscribe`` is an async
iterator that reconnects and resumes like the blocking one.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any, AsyncIterator, Deque, Dict, Iterable, List, Optional

from . import _wire
from ._errors import Cancelled, Error, IoError
from ._events import Position
from ._result import Result
from ._wire import Tls

__all__ = ["connect", "Connection", "Subscription"]


async def _open(address: str, tls: Tls, timeout: Optional[float]):
    host, port = _wire.address(address)
    context = _wire.tls_context(tls)
    try:
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=context, server_hostname=host if context else None, limit=_wire.MAX_LINE),
            timeout,
        )
    except (OSError, asyncio.TimeoutError) as e:
        raise IoError("IO_ERROR", f"cannot connect to {address}: {e!r}") from None
    return reader, writer


async def _readline(reader: asyncio.StreamReader) -> Dict[str, Any]:
    try:
        line = await reader.readline()
    except (OSError, ValueError) as e:
        raise _wire.closed(f"reading failed: {e}") from None
    if not line:
        raise _wire.closed("the server closed the connection")
    return _wire.parse(line)


class Connection:
    """A logged-in asyncio connection (``await onedb.aio.connect(...)``)."""

    def __init__(self, address: str, auth: Dict[str, Any], tls: Tls, timeout: Optional[float]) -> None:
        self.address = address
        self._auth = auth
        self._tls = tls
        self._timeout = timeout
        self._next = 0
        self._waiting: Dict[int, "asyncio.Future[Dict[str, Any]]"] = {}
        self._running: Deque[int] = deque()
        self._reader_task: Optional["asyncio.Task[None]"] = None
        self._failed: Optional[Error] = None
        self.person = ""
        self.role = ""
        self.org: Optional[str] = None

    async def _start(self, org: Optional[str]) -> None:
        self._reader, self._writer = await _open(self.address, self._tls, self._timeout)
        self._reader_task = asyncio.ensure_future(self._read())
        answer = _wire.checked(await self._call(dict(self._auth)))
        self.person = answer.get("person", "")
        self.role = answer.get("role", "")
        self.org = answer.get("org")
        if org is not None and org != self.org:
            await self.query("USE ORG " + org)

    async def _read(self) -> None:
        """Hands each answer to the coroutine waiting for its id."""
        try:
            while True:
                answer = await _readline(self._reader)
                id = answer.get("id")
                future = self._waiting.pop(id, None) if id is not None else None
                if future is not None:
                    if not future.done():
                        future.set_result(answer)
                elif id is None and not answer.get("ok", True):
                    raise _wire.failure(answer)
        except Error as e:
            self._fail(e)
        except asyncio.CancelledError:
            self._fail(_wire.closed("the connection is closed"))
            raise

    def _fail(self, error: Error) -> None:
        self._failed = error
        for future in self._waiting.values():
            if not future.done():
                future.set_exception(error)
        self._waiting.clear()

    def _send(self, fields_or_line: Any, id: int) -> "asyncio.Future[Dict[str, Any]]":
        if self._failed is not None:
            raise self._failed
        future = asyncio.get_running_loop().create_future()
        self._waiting[id] = future
        self._writer.write(fields_or_line)
        return future

    def _id(self) -> int:
        self._next += 1
        return self._next

    async def _call(self, fields: Dict[str, Any]) -> Dict[str, Any]:
        id = self._id()
        fields["id"] = id
        return await self._send(_wire.request(fields), id)

    async def query(self, text: str, /, **params: Any) -> Result:
        """Runs ``text`` with ``params`` bound as ``$name``: the last
        statement's result, or raises ``onedb.Error``."""
        id = self._id()
        future = self._send(_wire.query(id, text, params), id)
        self._running.append(id)
        try:
            return _wire.result(await future)
        finally:
            self._running.remove(id)

    async def query_many(self, queries: Iterable[Any]) -> List[Result]:
        """Pipelines many queries (texts or ``(text, params)`` pairs); all
        run, then the first error is raised (``.index`` is its place)."""
        items = _wire.items(queries)
        answers: List[Dict[str, Any]] = []
        for start in range(0, len(items), _wire.WINDOW):
            futures = []
            for text, params in items[start : start + _wire.WINDOW]:
                id = self._id()
                futures.append(self._send(_wire.query(id, text, params), id))
            answers.extend([await f for f in futures])
        return _wire.results(answers)

    def cancel(self) -> bool:
        """Stops the queries this connection waits for: each raises
        ``onedb.Cancelled``. False when none runs."""
        if not self._running:
            return False
        for target in list(self._running):
            id = self._id()
            self._send(_wire.request({"id": id, "op": "cancel", "target": target}), id)
        return True

    async def current_org(self) -> Optional[str]:
        rows = (await self.query("WHOAMI")).dicts()
        return rows[0].get("org") if rows else None

    async def subscribe(self, text: str, /, after: Optional[int] = None, **params: Any) -> "Subscription":
        """The events an ``EVENTS`` statement asks for, in this connection's
        current org, on a connection of their own (see ``Subscription``)."""
        sub = Subscription(self, await self.current_org(), text, params, after)
        await sub._start(after)
        return sub

    async def close(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
        try:
            self._writer.close()
            await self._writer.wait_closed()
        except (OSError, AttributeError):
            pass

    async def __aenter__(self) -> "Connection":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()


async def connect(
    address: str,
    *,
    email: Optional[str] = None,
    password: Optional[str] = None,
    token: Optional[str] = None,
    tls: Tls = None,
    org: Optional[str] = None,
    timeout: Optional[float] = 30.0,
) -> Connection:
    """Connects and logs in, as ``onedb.connect`` does."""
    conn = Connection(address, _wire.login(email, password, token), tls, timeout)
    try:
        await conn._start(org)
    except BaseException:
        await conn.close()
        raise
    return conn


class Subscription:
    """An async iterator of event dicts in commit order that reconnects and
    resumes after the last event delivered (no gap, no duplicate)."""

    RECONNECT_FOR = 30.0

    def __init__(self, origin: Connection, org: Optional[str], text: str, params: Dict[str, Any], after: Optional[int]) -> None:
        self._origin = origin
        self._org = org
        self._text = text
        self._params = params
        self._position = Position(after)
        self._buffer: Deque[dict] = deque()
        self._writer: Optional[asyncio.StreamWriter] = None
        self._closed = False
        self._pending: "Optional[asyncio.Future[dict]]" = None

    async def _start(self, after: Optional[int]) -> None:
        o = self._origin
        self._reader, self._writer = await _open(o.address, o._tls, o._timeout)
        ids = 0

        async def call(fields: Dict[str, Any]) -> Dict[str, Any]:
            nonlocal ids
            ids += 1
            fields["id"] = ids
            self._writer.write(_wire.request(fields))  # type: ignore[union-attr]
            while True:
                answer = await _readline(self._reader)
                if answer.get("id") == ids:
                    return _wire.checked(answer)
                if answer.get("id") is None:
                    raise _wire.failure(answer)

        await call(dict(o._auth))
        if self._org is not None and self._org != o.org:
            await call({"op": "query", "text": "USE ORG " + self._org})
        fields: Dict[str, Any] = {"op": "subscribe", "text": self._text}
        if self._params:
            fields["params"] = self._params
        if after is not None:
            fields["after"] = after
        answer = await call(fields)
        if self._position.start is None:
            self._position.start = answer.get("seq")

    @property
    def last_seq(self) -> Optional[int]:
        return self._position.seq

    def _drop(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None

    async def _reconnect(self, why: Exception) -> None:
        self._drop()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.RECONNECT_FOR
        pause = 0.05
        while not self._closed:
            try:
                await self._start(self._position.resume_after())
                return
            except (IoError, OSError) as e:
                self._drop()
                if loop.time() > deadline:
                    raise IoError("IO_ERROR", f"the subscription lost its connection ({why}) and could not resume: {e}") from None
            await asyncio.sleep(pause)
            pause = min(pause * 2, 1.0)
        raise StopAsyncIteration

    def __aiter__(self) -> AsyncIterator[dict]:
        return self

    async def __anext__(self) -> dict:
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            if self._writer is None:
                await self._reconnect(IoError("IO_ERROR", "not connected"))
            try:
                message = await _readline(self._reader)
            except (IoError, OSError) as e:
                if self._closed:
                    raise StopAsyncIteration
                await self._reconnect(e)
                continue
            event = message.get("event")
            if isinstance(event, dict):
                if self._position.fresh(event):
                    self._buffer.append(event)
                continue
            if message.get("ok") is False:
                error = _wire.failure(message)
                if isinstance(error, Cancelled) and error.last_seq is not None:
                    self._position.ended_at(error.last_seq)
                    await self._reconnect(error)
                    continue
                raise error
        return self._buffer.popleft()

    async def next(self, timeout: Optional[float] = None) -> Optional[dict]:
        """The next event, or None after ``timeout`` seconds without one (the
        wait goes on in the background: the event is not lost)."""
        task = self._pending
        if task is None:
            task = self._pending = asyncio.ensure_future(self.__anext__())
        try:
            event = await asyncio.wait_for(asyncio.shield(task), timeout)
        except asyncio.TimeoutError:
            return None
        except BaseException:
            self._pending = None
            raise
        self._pending = None
        return event

    async def close(self) -> None:
        self._closed = True
        if self._pending is not None:
            self._pending.cancel()
        self._drop()

    async def __aenter__(self) -> "Subscription":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()
