"""The package's exceptions: ``onedb.Error`` and one subclass per stable code.

Both doors raise these: the embedded engine through ``make`` (called from
the extension), the TCP client from the server's error objects.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Type


class Error(Exception):
    """A failed statement or request. Match on ``code`` (stable), not on
    ``message``. ``line``/``col`` point into the statement text,
    ``statement`` is the failing statement's index in a text of several,
    ``last_seq`` where a subscription ended, ``retry_after_ms`` how long a
    locked-out login waits."""

    code: str = "ERROR"

    def __init__(self, code: str, message: str, **details: Any) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.line: Optional[int] = details.get("line")
        self.col: Optional[int] = details.get("col")
        self.statement: Optional[int] = details.get("statement")
        self.last_seq: Optional[int] = details.get("last_seq")
        self.retry_after_ms: Optional[int] = details.get("retry_after_ms")
        #: The place of the failed request in a ``query_many`` batch.
        self.index: Optional[int] = details.get("index")


class ParseError(Error):
    """The text is not OQL (``line``, ``col``)."""


class UnknownType(Error):
    """A type not in the vocabulary (the message has a "did you mean")."""


class NotAuthenticated(Error):
    """Wrong login, revoked or expired token, or not logged in."""


class Forbidden(Error):
    """The person's role may not do this."""


class LimitReached(Error):
    """An org limit, or a server limit (connections, subscriptions)."""


class InvalidTransition(Error):
    """A status change the lifecycle does not allow."""


class NotFound(Error):
    """No such record, org, person, running query or subscription."""


class Conflict(Error):
    """A duplicate, or a block rolled back by an earlier error."""


class Timeout(Error):
    """The statement ran past its time."""


class Cancelled(Error):
    """A query stopped by ``cancel``; a subscription that fell behind."""


class TooLarge(Error):
    """A result or value past its size limit."""


class InvalidArgument(Error):
    """A malformed request or a bad argument or parameter."""


class Corruption(Error):
    """Stored bytes that do not decode (never expected: report it)."""


class IoError(Error):
    """The storage engine, the file system or the network failed."""


class OutcomeUnknown(Error):
    """A commit failed in a way that leaves unknown whether it happened
    (the store lost its connection mid-commit): read back before retrying."""


#: Stable code → exception class.
CODES: Dict[str, Type[Error]] = {
    "PARSE_ERROR": ParseError,
    "UNKNOWN_TYPE": UnknownType,
    "NOT_AUTHENTICATED": NotAuthenticated,
    "FORBIDDEN": Forbidden,
    "LIMIT_REACHED": LimitReached,
    "INVALID_TRANSITION": InvalidTransition,
    "NOT_FOUND": NotFound,
    "CONFLICT": Conflict,
    "TIMEOUT": Timeout,
    "CANCELLED": Cancelled,
    "TOO_LARGE": TooLarge,
    "INVALID_ARGUMENT": InvalidArgument,
    "CORRUPTION": Corruption,
    "IO_ERROR": IoError,
    "OUTCOME_UNKNOWN": OutcomeUnknown,
}

for _code, _class in CODES.items():
    _class.code = _code


def make(code: str, message: str, details: Optional[Dict[str, Any]] = None) -> Error:
    """The exception for an error code (an unknown code: ``Error``)."""
    return CODES.get(code, Error)(code, message, **(details or {}))


def from_wire(error: Dict[str, Any]) -> Error:
    """The exception for a protocol error object."""
    details = {k: v for k, v in error.items() if k not in ("code", "message")}
    return make(str(error.get("code", "ERROR")), str(error.get("message", "")), details)
