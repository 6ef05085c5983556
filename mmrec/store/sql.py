"""SQL helpers for LanceDB filters: quoting, ``IN`` lists in chunks, conjunctions, error lines."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

#: Ids per ``IN (…)`` list: long lists make slow filters, so large id sets are queried in chunks.
IN_CHUNK = 500


def sql_quote(value: str) -> str:
    """A SQL string literal for a LanceDB filter (single quotes doubled)."""
    return "'" + value.replace("'", "''") + "'"


def id_in(ids: Sequence[str], column: str = "id") -> str:
    """``column IN ('a', 'b', …)`` for the given ids."""
    return f"{column} IN ({', '.join(sql_quote(i) for i in ids)})"


def in_chunks(ids: Sequence[str], size: int = IN_CHUNK) -> Iterator[Sequence[str]]:
    """``ids`` in consecutive slices of at most ``size``."""
    for start in range(0, len(ids), size):
        yield ids[start : start + size]


def and_(filters: Sequence[str | None]) -> str | None:
    """The conjunction of the non-empty ``filters``, each parenthesised; ``None`` when there are none."""
    parts = [f"({f})" for f in filters if f]
    return " AND ".join(parts) or None


def first_line(e: BaseException) -> str:
    """The first line of an error's message (at most 300 characters), for one-line errors."""
    text = str(e).strip()
    return text.splitlines()[0][:300] if text else type(e).__name__
