"""The TCP door, blocking: ``onedb.connect`` and ``onedb.pool``.

A connection is plain Python (socket + json): a request is one line out,
its answer one line back, so the client's own cost is a small, fixed part
of a round trip (docs/performance.md measures it against a bare socket).
"""

from __future__ import annotations

import itertools
import queue
import socket
import threading
import time
from collections import deque
from contextlib import contextmanager
from typing import Any, Deque, Dict, Iterable, Iterator, List, Optional

from . import _wire
from ._errors import Cancelled, Error, IoError
from ._events import EventStream, Position
from ._result import Result
from ._wire import Tls


class _Lines:
    """A socket read line by line, with a timeout per read that leaves no
    half-read state behind (unlike a file object after a timeout)."""

    __slots__ = ("sock", "buf")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = bytearray()

    def readline(self) -> bytes:
        buf = self.buf
        while True:
            end = buf.find(b"\n")
            if end >= 0:
                line = bytes(buf[:end])
                del buf[: end + 1]
                return line
            if len(buf) > _wire.MAX_LINE:
                raise _wire.closed("the server sent a line longer than 1 GiB")
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise _wire.closed("the server closed the connection")
            buf += chunk


def _open(addr: str, tls: Tls, timeout: Optional[float]) -> socket.socket:
    host, port = _wire.address(addr)
    try:
        sock = socket.create_connection((host, port), timeout=timeout)
    except OSError as e:
        raise IoError("IO_ERROR", f"cannot connect to {addr}: {e}") from None
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    context = _wire.tls_context(tls)
    if context is not None:
        try:
            sock = context.wrap_socket(sock, server_hostname=host)
        except (OSError, ValueError) as e:
            sock.close()
            raise IoError("IO_ERROR", f"TLS with {addr} failed: {e}") from None
    sock.settimeout(None)
    return sock


class Connection:
    """A logged-in connection (``onedb.connect``). Its session lives as long
    as the connection: LET variables, ``USE ORG`` and ``BEGIN`` blocks.
    One thread at a time queries on it (``cancel`` may come from another);
    a pool (``onedb.pool``) gives each thread its own."""

    def __init__(
        self,
        address: str,
        *,
        email: Optional[str] = None,
        password: Optional[str] = None,
        token: Optional[str] = None,
        tls: Tls = None,
        org: Optional[str] = None,
        timeout: Optional[float] = 30.0,
    ) -> None:
        self.address = address
        self._auth = _wire.login(email, password, token)
        self._tls = tls
        self._timeout = timeout
        self._write = threading.Lock()
        # next() on a count is atomic under the GIL: ids need no lock.
        self._ids = itertools.count(1)
        #: The query waiting for its answer (what ``cancel`` targets).
        self._running: Optional[int] = None
        self._sock = _open(address, tls, timeout)
        self._lines = _Lines(self._sock)
        try:
            answer = self._call(dict(self._auth))
        except BaseException:
            self._sock.close()
            raise
        self.person: str = answer.get("person", "")
        self.role: str = answer.get("role", "")
        self.org: Optional[str] = answer.get("org")
        if org is not None and org != self.org:
            self.query("USE ORG " + org)

    def _id(self) -> int:
        return next(self._ids)

    def _send(self, data: bytes) -> None:
        try:
            with self._write:
                self._sock.sendall(data)
        except OSError as e:
            raise _wire.closed(f"sending to {self.address} failed: {e}") from None

    def _answer(self, id: int) -> Dict[str, Any]:
        """Reads lines until the answer to ``id`` (answers come in order)."""
        while True:
            try:
                line = self._lines.readline()
            except OSError as e:
                raise _wire.closed(f"reading from {self.address} failed: {e}") from None
            answer = _wire.parse(line)
            got = answer.get("id")
            if got == id:
                return answer
            if got is None and not answer.get("ok", True):
                # About the connection (idle timeout, too large): it is closed.
                raise _wire.failure(answer)
            # Another id: a cancel's answer, which nobody waits for.

    def _call(self, fields: Dict[str, Any]) -> Dict[str, Any]:
        id = self._id()
        fields["id"] = id
        self._send(_wire.request(fields))
        return _wire.checked(self._answer(id))

    def query(self, text: str, /, **params: Any) -> Result:
        """Runs ``text`` (one or more statements) with ``params`` bound as
        ``$name``: the last statement's result, or raises ``onedb.Error``."""
        id = self._id()
        try:
            self._send(_wire.query(id, text, params))
            # Only now may a cancel name it: the cancel follows it on the wire.
            self._running = id
            return _wire.result(self._answer(id))
        finally:
            self._running = None

    def query_many(self, queries: Iterable[Any]) -> List[Result]:
        """Pipelines many queries (texts, or ``(text, params)`` pairs): sends
        them ahead of their answers, then reads the answers in order. All
        run; then the first error is raised (its ``.index`` is its place)."""
        items = _wire.items(queries)
        answers: List[Dict[str, Any]] = []
        waiting: Deque[int] = deque()
        sent = 0
        while len(answers) < len(items):
            batch = []
            while sent < len(items) and len(waiting) < _wire.WINDOW:
                id = self._id()
                text, params = items[sent]
                batch.append(_wire.query(id, text, params))
                waiting.append(id)
                sent += 1
            if batch:
                self._send(b"".join(batch))
            answers.append(self._answer(waiting.popleft()))
        return _wire.results(answers)

    def cancel(self) -> bool:
        """Stops the query this connection waits for (call it from another
        thread): that query raises ``onedb.Cancelled``. False when none runs."""
        target = self._running
        if target is None:
            return False
        id = self._id()
        self._send(_wire.request({"id": id, "op": "cancel", "target": target}))
        return True

    def ping(self) -> None:
        self._call({"op": "ping"})

    def current_org(self) -> Optional[str]:
        """The org this connection's statements run in now."""
        row = self.query("WHOAMI").dicts()
        return row[0].get("org") if row else None

    def subscribe(self, text: str, /, after: Optional[int] = None, **params: Any) -> "Subscription":
        """The events an ``EVENTS`` statement asks for, as they commit, in
        this connection's current org, on a connection of their own that
        reconnects and resumes after the last event received."""
        return Subscription(self, text, params, after)

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass

    def __enter__(self) -> "Connection":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


class Subscription(EventStream):
    """An iterator of event dicts in commit order. When its connection
    drops, or the server ends it for falling behind, it connects again and
    resumes after the last event delivered: no gap, no duplicate."""

    #: How long reconnecting is tried before the subscription gives up.
    RECONNECT_FOR = 30.0

    def __init__(self, origin: Connection, text: str, params: Dict[str, Any], after: Optional[int]) -> None:
        self._address = origin.address
        self._auth = origin._auth
        self._tls = origin._tls
        self._org = origin.current_org()
        self._home = origin.org
        self._text = text
        self._params = params
        self._position = Position(after)
        self._buffer: Deque[dict] = deque()
        self._closed = False
        self._sock: Optional[socket.socket] = None
        self._start(after)

    def _start(self, after: Optional[int]) -> None:
        sock = _open(self._address, self._tls, 30.0)
        self._sock = sock
        self._lines = _Lines(sock)
        ids = 0

        def call(fields: Dict[str, Any]) -> Dict[str, Any]:
            nonlocal ids
            ids += 1
            fields["id"] = ids
            sock.sendall(_wire.request(fields))
            while True:
                answer = _wire.parse(self._lines.readline())
                if answer.get("id") == ids:
                    return _wire.checked(answer)
                if answer.get("id") is None:
                    raise _wire.failure(answer)

        call(dict(self._auth))
        if self._org is not None and self._org != self._home:
            call({"op": "query", "text": "USE ORG " + self._org})
        fields: Dict[str, Any] = {"op": "subscribe", "text": self._text}
        if self._params:
            fields["params"] = self._params
        if after is not None:
            fields["after"] = after
        answer = call(fields)
        if self._position.start is None:
            self._position.start = answer.get("seq")
        self._sub = answer.get("sub")

    def _reconnect(self, why: Exception) -> None:
        self._drop()
        deadline = time.monotonic() + self.RECONNECT_FOR
        pause = 0.05
        while True:
            if self._closed:
                raise StopIteration
            try:
                self._start(self._position.resume_after())
                return
            except (IoError, OSError) as e:
                self._drop()
                if time.monotonic() > deadline:
                    raise IoError("IO_ERROR", f"the subscription lost its connection ({why}) and could not resume: {e}") from None
            time.sleep(pause)
            pause = min(pause * 2, 1.0)

    def _drop(self) -> None:
        if self._sock is not None:
            try:
                self._sock.close()
            except OSError:
                pass
            self._sock = None

    def next(self, timeout: Optional[float] = None) -> Optional[dict]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while not self._buffer:
            if self._closed:
                raise StopIteration
            if self._sock is None:
                self._reconnect(IoError("IO_ERROR", "not connected"))
            try:
                if deadline is not None:
                    left = deadline - time.monotonic()
                    if left <= 0 and not self._lines.buf:
                        return None
                    self._sock.settimeout(max(left, 0.0001))  # type: ignore[union-attr]
                line = self._lines.readline()
            except socket.timeout:
                return None
            except (IoError, OSError) as e:
                if self._closed:
                    raise StopIteration
                self._reconnect(e)
                continue
            finally:
                if self._sock is not None and deadline is not None:
                    self._sock.settimeout(None)
            message = _wire.parse(line)
            event = message.get("event")
            if isinstance(event, dict):
                if self._position.fresh(event):
                    self._buffer.append(event)
                continue
            if message.get("ok") is False:
                error = _wire.failure(message)
                if isinstance(error, Cancelled) and error.last_seq is not None:
                    self._position.ended_at(error.last_seq)
                    self._reconnect(error)
                    continue
                raise error
        return self._buffer.popleft()

    def close(self) -> None:
        self._closed = True
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._drop()



class Pool:
    """Connections for threads (``onedb.pool``): each ``query`` borrows an
    idle connection (or opens one, up to ``size``), so threads query in
    parallel. ``org`` is entered on every connection it opens."""

    def __init__(self, address: str, *, size: int = 8, **connect: Any) -> None:
        if size < 1:
            raise Error("INVALID_ARGUMENT", "a pool holds at least one connection")
        self._address = address
        self._connect = connect
        self._idle: "queue.LifoQueue[Connection]" = queue.LifoQueue()
        self._slots = threading.BoundedSemaphore(size)
        self._all: List[Connection] = []
        self._lock = threading.Lock()

    @contextmanager
    def connection(self) -> Iterator[Connection]:
        """A connection of the pool for this block (its session state stays
        with the connection, which the pool lends again)."""
        self._slots.acquire()
        conn: Optional[Connection] = None
        try:
            try:
                conn = self._idle.get_nowait()
            except queue.Empty:
                conn = Connection(self._address, **self._connect)
                with self._lock:
                    self._all.append(conn)
            yield conn
        except IoError:
            if conn is not None:
                conn.close()
                with self._lock:
                    self._all.remove(conn)
                conn = None
            raise
        finally:
            if conn is not None:
                self._idle.put(conn)
            self._slots.release()

    def query(self, text: str, /, **params: Any) -> Result:
        with self.connection() as conn:
            return conn.query(text, **params)

    def query_many(self, queries: Iterable[Any]) -> List[Result]:
        with self.connection() as conn:
            return conn.query_many(queries)

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()

    def __enter__(self) -> "Pool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
