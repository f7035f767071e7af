"""Resuming a subscription without gaps, for every door.

Events come in commit order, each with ``seq`` (its commit). After a cut
the subscription is made again with ``after`` = the last seen ``seq`` minus
one, and the events of that commit already delivered are skipped by id —
docs/protocol.md's rule, so a cut in the middle of a commit loses nothing.
"""

from __future__ import annotations

from typing import Any, Dict, Optional, Set


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
