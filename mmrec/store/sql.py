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


#: Longest filter accepted anywhere (CLI, Python API, HTTP).
MAX_WHERE_CHARS = 2000


def check_where(where: str | None) -> str | None:
    """A ``--where`` filter checked the same way on every path: one SQL predicate, nothing else.

    Returns the filter stripped (``None`` for an empty one).

    Raises
    ------
    InvalidArgumentError
        For a filter that is not a string, is too long, holds a ``;`` outside a quoted literal
        (several statements; LanceDB would silently ignore what follows), or a NUL character.
    """
    from mmrec.errors import InvalidArgumentError

    if where is None:
        return None
    if not isinstance(where, str):
        raise InvalidArgumentError(f"a filter must be a string, got {type(where).__name__}")
    text = where.strip()
    if not text:
        return None
    if len(text) > MAX_WHERE_CHARS:
        raise InvalidArgumentError(f"filter too long ({len(text)} characters; at most {MAX_WHERE_CHARS})")
    if "\x00" in text:
        raise InvalidArgumentError("invalid filter: it contains a NUL character")
    if _outside_quotes(text, ";"):
        raise InvalidArgumentError(
            f"invalid filter {where!r}: one SQL condition only (a ';' would start a second statement)"
        )
    return text


def _outside_quotes(text: str, char: str) -> bool:
    """Whether ``char`` occurs outside single-quoted SQL literals (``''`` is an escaped quote)."""
    quoted = False
    for c in text:
        if c == "'":
            quoted = not quoted
        elif c == char and not quoted:
            return True
    return False
