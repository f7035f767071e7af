"""docs/protocol.md's JSON lines, shared by the blocking and the asyncio
TCP clients: requests as bytes, answers as results or exceptions."""

from __future__ import annotations

import json
import ssl
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from . import _onedb
from ._errors import Error, IoError, InvalidArgument, from_wire
from ._result import Result

_dumps = json.dumps
_encode = _onedb.encode_json

#: Requests sent ahead of their answers in ``query_many`` (the server
#: queues 64 per connection before it stops reading).
WINDOW = 32

#: The longest answer line read (a result of the server's largest size fits).
MAX_LINE = 1 << 30

Tls = Union[None, bool, str, ssl.SSLContext]


def address(text: str) -> Tuple[str, int]:
    """``host:port`` (``[v6]:port`` too) as a pair."""
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidArgument("INVALID_ARGUMENT", f"address {text!r} is not host:port")
    return host.strip("[]") or "127.0.0.1", int(port)


def tls_context(tls: Tls) -> Optional[ssl.SSLContext]:
    """None (plain TCP), True (verified against the system's CAs), a CA
    file path, or a ready ``ssl.SSLContext``."""
    if tls is None or tls is False:
        return None
    if isinstance(tls, ssl.SSLContext):
        return tls
    if tls is True:
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=str(tls))


def login(email: Optional[str], password: Optional[str], token: Optional[str]) -> Dict[str, Any]:
    """The auth request's fields (password or token, not both)."""
    if token is not None:
        if email is not None or password is not None:
            raise InvalidArgument("INVALID_ARGUMENT", "log in with email and password, or with a token, not both")
        return {"op": "auth", "token": token}
    if email is None or password is None:
        raise InvalidArgument("INVALID_ARGUMENT", "connect needs email= and password=, or token=")
    return {"op": "auth", "email": email, "password": password}


def request(fields: Dict[str, Any]) -> bytes:
    """Any request as one line."""
    return _encode(fields).encode() + b"\n"


_texts: Dict[str, bytes] = {}


def _text(text: str) -> bytes:
    """A statement text as JSON, kept for the texts a program repeats."""
    encoded = _texts.get(text)
    if encoded is None:
        encoded = _dumps(text).encode()
        if len(_texts) >= 1024:
            _texts.clear()
        _texts[text] = encoded
    return encoded


def query(id: int, text: str, params: Optional[Dict[str, Any]]) -> bytes:
    """A query request (parameters encoded by the extension: numpy arrays
    are read in place, datetimes become epoch milliseconds)."""
    if params:
        return b'{"id":%d,"op":"query","text":%s,"params":%s}\n' % (id, _text(text), _encode(params).encode())
    return b'{"id":%d,"op":"query","text":%s}\n' % (id, _text(text))


def items(queries: Iterable[Any]) -> List[Tuple[str, Optional[Dict[str, Any]]]]:
    """``query_many``'s queries as ``(text, params)`` pairs."""
    return [(q, None) if isinstance(q, str) else (q[0], q[1]) for q in queries]


def results(answers: List[Dict[str, Any]]) -> List[Result]:
    """``query_many``'s answers as results, or the first error raised with
    its ``.index``."""
    out = []
    for index, answer in enumerate(answers):
        if not answer.get("ok"):
            error = failure(answer)
            error.index = index
            raise error
        out.append(result(answer))
    return out


def parse(line: bytes) -> Dict[str, Any]:
    try:
        answer = json.loads(line)
    except ValueError as e:
        raise IoError("IO_ERROR", f"the server sent a line that is not JSON: {e}") from None
    if not isinstance(answer, dict):
        raise IoError("IO_ERROR", "the server sent a line that is not a JSON object")
    return answer


def result(answer: Dict[str, Any]) -> Result:
    """A query answer as a result, or its error raised."""
    if answer.get("ok"):
        return Result(answer.get("columns", []), answer.get("rows", []), answer.get("stats", {}))
    raise failure(answer)


def failure(answer: Dict[str, Any]) -> Error:
    error = answer.get("error")
    if isinstance(error, dict):
        return from_wire(error)
    return IoError("IO_ERROR", f"the server sent an answer without ok or error: {answer!r}")


def checked(answer: Dict[str, Any]) -> Dict[str, Any]:
    if answer.get("ok"):
        return answer
    raise failure(answer)


def closed(why: str) -> IoError:
    return IoError("IO_ERROR", why)
