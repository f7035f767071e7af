"""What a statement produced, the same from both doors."""

from __future__ import annotations

from typing import Any, Dict, Iterator, List


class Result:
    """Columns, rows (lists of values: ids as ``str``, timestamps as ``int``
    epoch milliseconds) and stats (``rows``, ``micros``)."""

    __slots__ = ("columns", "rows", "stats")

    def __init__(self, columns: List[str], rows: List[List[Any]], stats: Dict[str, int]) -> None:
        self.columns = columns
        self.rows = rows
        self.stats = stats

    def dicts(self) -> List[Dict[str, Any]]:
        """The rows as dicts keyed by column."""
        columns = self.columns
        return [dict(zip(columns, row)) for row in self.rows]

    def value(self) -> Any:
        """The first column of the first row (None when there is no row)."""
        return self.rows[0][0] if self.rows and self.rows[0] else None

    def __iter__(self) -> Iterator[List[Any]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Result)
            and self.columns == other.columns
            and self.rows == other.rows
        )

    def __repr__(self) -> str:
        return f"Result(columns={self.columns!r}, rows={self.rows!r}, stats={self.stats!r})"
