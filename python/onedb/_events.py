"""Resuming a subscription without gaps, for every door.

Events come in commit order, each with ``seq`` (its commit). After a cut
the subscription is made again with ``after`` = the last seen ``seq`` minus
one, and the events of that commit already delivered are skipped by id —
docs/protocol.md's rule, so a cut in the middle of a commit loses nothing.
"""

from __future__ import annotations

from typing import Any, Dict, Iterator, Optional, Set


class Position:
    """Where a subscription stands: the last delivered event's commit and
    the ids delivered from that commit."""

    __slots__ = ("seq", "ids", "start")

    def __init__(self, after: Optional[int]) -> None:
        self.seq: Optional[int] = None
        self.ids: Set[str] = set()
        #: The commit the subscription started after (known once answered).
        self.start: Optional[int] = after

    def fresh(self, event: Dict[str, Any]) -> bool:
        """Records ``event``; False when it was already delivered."""
        seq = event.get("seq")
        if seq is None:
            return True
        if self.seq is not None and seq < self.seq:
            return False
        if seq == self.seq:
            if event.get("id") in self.ids:
                return False
        else:
            self.seq = seq
            self.ids = set()
        self.ids.add(event.get("id"))
        return True

    def resume_after(self) -> Optional[int]:
        """The ``after`` to subscribe again with."""
        if self.seq is not None:
            return max(self.seq - 1, 0)
        return self.start

    def ended_at(self, last_seq: int) -> None:
        """A subscription that fell behind was sent every event up to
        ``last_seq``: with none delivered yet, resume right after it."""
        if self.seq is None:
            self.start = last_seq


class EventStream:
    """What a subscription is through either door: an iterator of event
    dicts over ``next``, with ``last_seq``, usable in a ``with`` block."""

    _position: Position

    def next(self, timeout: Optional[float] = None) -> Optional[dict]:
        """The next event, waiting at most ``timeout`` seconds (None: as
        long as it takes); None when none came in time."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    @property
    def last_seq(self) -> Optional[int]:
        """The ``seq`` of the last event delivered."""
        return self._position.seq

    def __iter__(self) -> Iterator[dict]:
        return self

    def __next__(self) -> dict:
        event = self.next()
        if event is None:  # pragma: no cover - no timeout given
            raise StopIteration
        return event

    def __enter__(self) -> "EventStream":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
