"""Interactions: what users did with items, validated and deduplicated.

An interaction is ``(user, item, event, weight, timestamp)``. Events carry a
default weight (negative for ``skip`` and ``dislike``); a ``rating`` on a
1–5 scale becomes an event ``rating`` of weight ``2 × (rating − 3)``: 5 → +4
(as strong as a like), 4 → +2, 3 → 0 (seen, no preference), 2 → −2, 1 → −4
(as strong as a dislike). The same ``(user, item, event, timestamp)`` is
stored once, so importing a file twice does not double-count.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from mmrec.errors import InvalidArgumentError
from mmrec.names import EVENT_WEIGHTS, EVENTS, MAX_ID_LENGTH
from mmrec.recsys.profiles import event_key

#: How far in the future an event may be dated (clocks drift; a year-9999 event is a bug, not a clock).
MAX_FUTURE_SKEW = timedelta(days=1)
EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Interaction:
    user: str
    item: str
    event: str
    weight: float
    ts: datetime

    @property
    def key(self) -> str:
        """Deduplication key: the same user, item, event and time is one interaction."""
        return event_key(self.user, self.item, self.event, self.ts)

    def to_row(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "item": self.item,
            "event": self.event,
            "weight": self.weight,
            "ts": self.ts,
            "key": self.key,
        }


@dataclass(frozen=True)
class BadRow:
    row: int
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.reason}"


def rating_weight(rating: float) -> float:
    """Weight of a 1–5 star rating (see the module docstring)."""
    return 2.0 * (rating - 3.0)


def parse_timestamp(value: Any) -> datetime:
    """A UTC datetime from ISO 8601 text, Unix seconds (or milliseconds), or a datetime.

    Raises
    ------
    ValueError
        With a reason, for anything else.
    """
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, bool) or value is None or value == "":
        raise ValueError("missing timestamp")
    if isinstance(value, (int, float)) or (isinstance(value, str) and _is_number(value)):
        x = float(value)
        if not math.isfinite(x):
            raise ValueError(f"timestamp {value!r} is not finite")
        if abs(x) > 1e11:  # milliseconds
            x /= 1000.0
        try:
            return datetime.fromtimestamp(x, tz=timezone.utc)
        except (OverflowError, OSError, ValueError) as e:
            raise ValueError(f"timestamp {value!r} is out of range") from e
    if isinstance(value, str):
        text = value.strip().replace("Z", "+00:00")
        try:
            dt = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"unparseable timestamp {value!r} (use ISO 8601 or Unix seconds)") from None
        return dt if dt.tzinfo else dt.replace(tzinfo=timezone.utc)
    raise ValueError(f"unparseable timestamp {value!r}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def make_interaction(
    user: Any,
    item: Any,
    event: Any = None,
    *,
    weight: Any = None,
    rating: Any = None,
    ts: Any = None,
    now: datetime | None = None,
    max_future: timedelta = MAX_FUTURE_SKEW,
) -> Interaction:
    """Validate one interaction; raises ``ValueError`` with a reason.

    Timestamps must lie between 1970 and ``now + max_future`` (:func:`check_time`); weights and
    ratings must be finite.
    """
    user_s = "" if user is None else str(user).strip()
    item_s = "" if item is None else str(item).strip()
    if not user_s:
        raise ValueError("missing user")
    if not item_s:
        raise ValueError("missing item")
    if len(user_s) > MAX_ID_LENGTH or len(item_s) > MAX_ID_LENGTH:
        raise ValueError(f"user or item id longer than {MAX_ID_LENGTH} characters")
    if _CONTROL.search(user_s) or _CONTROL.search(item_s):
        # \x1f separates the parts of the deduplication key; no id may contain a control character
        raise ValueError("user and item ids may not contain control characters")
    has_rating = rating not in (None, "")
    event_s = str(event).strip().lower() if event not in (None, "") else ("rating" if has_rating else "view")
    if event_s not in EVENT_WEIGHTS:
        raise ValueError(f"unknown event {event!r}; valid events: {', '.join(EVENTS)}")
    if event_s == "rating":
        if not has_rating:
            raise ValueError("event 'rating' needs a rating value")
        try:
            r = float(rating)
        except (TypeError, ValueError):
            raise ValueError(f"unparseable rating {rating!r}") from None
        if not math.isfinite(r) or not 0.0 <= r <= 5.0:
            raise ValueError(f"rating {rating!r} is outside 0–5")
        w = rating_weight(r)
    else:
        w = EVENT_WEIGHTS[event_s]
    if weight not in (None, ""):
        try:
            w = float(weight)
        except (TypeError, ValueError):
            raise ValueError(f"unparseable weight {weight!r}") from None
        if not math.isfinite(w) or abs(w) > 1000:
            raise ValueError(f"weight {weight!r} must be a finite number within ±1000")
    when = (now or datetime.now(timezone.utc)) if ts in (None, "") and now is not None else parse_timestamp(ts)
    check_time(when, now, max_future)
    # In UTC: the stored timestamp is UTC, and the key (dedup and fold tie-break) must be the same
    # whether it is computed from the input or from the stored row.
    return Interaction(user_s, item_s, event_s, float(w), when.astimezone(timezone.utc))


def check_time(when: datetime, now: datetime | None = None, max_future: timedelta = MAX_FUTURE_SKEW) -> None:
    """Refuse timestamps before 1970 or more than ``max_future`` ahead of ``now``.

    One event dated 9999-12-31 would otherwise become the reference time of the "recently popular"
    window for every user and freeze its own user's profile (later events would count as older).
    """
    if when < EPOCH:
        raise ValueError(f"timestamp {when.isoformat()} is before 1970")
    limit = (now or datetime.now(timezone.utc)) + max_future
    if when > limit:
        raise ValueError(
            f"timestamp {when.isoformat()} is more than {_days(max_future)} in the future "
            f"(latest accepted: {limit.isoformat(timespec='seconds')})"
        )


def _days(d: timedelta) -> str:
    days = d.total_seconds() / 86400.0
    return f"{days:g} day" + ("" if days == 1 else "s")


def read_rows(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """Rows of a CSV, JSONL or Parquet file as ``(row number, dict)``; row numbers count from 1 (CSV: the header is row 1).

    Raises
    ------
    InvalidArgumentError
        When the file cannot be read at all (missing, unknown format, not UTF-8, corrupt Parquet).
    """
    p = Path(path)
    if not p.is_file():
        raise InvalidArgumentError(f"interactions file {str(path)!r} does not exist")
    suffix = p.suffix.lower()
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        try:
            table = pq.read_table(p)
        except Exception as e:  # pyarrow raises ArrowInvalid/OSError for corrupt files
            raise InvalidArgumentError(f"cannot read Parquet file {str(path)!r}: {e}") from e
        return list(enumerate(table.to_pylist(), start=1))
    if suffix not in (".csv", ".jsonl", ".ndjson", ".tsv"):
        raise InvalidArgumentError(
            f"unknown interactions format {suffix or '(none)'!r}; use .csv, .tsv, .jsonl or .parquet"
        )
    try:
        text = p.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InvalidArgumentError(f"interactions file {str(path)!r} is not UTF-8 (byte {e.start})") from e
    if suffix in (".jsonl", ".ndjson"):
        rows: list[tuple[int, Any]] = []
        for n, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                rows.append((n, json.loads(line)))
            except json.JSONDecodeError as e:
                rows.append((n, ValueError(f"invalid JSON: {e.msg}")))
        return rows
    reader = csv.DictReader(io.StringIO(text), delimiter="\t" if suffix == ".tsv" else ",")
    return [(n, {(k or "").strip().lower(): v for k, v in row.items()}) for n, row in enumerate(reader, start=2)]


def parse_rows(rows: Iterable[tuple[int, Any]], known_items: set[str]) -> tuple[list[Interaction], list[BadRow]]:
    """Validate rows (columns user, item, event and/or rating, weight, timestamp); bad rows are reported, not raised."""
    good: list[Interaction] = []
    bad: list[BadRow] = []
    for n, row in rows:
        if isinstance(row, Exception):
            bad.append(BadRow(n, str(row)))
            continue
        if not isinstance(row, dict):
            bad.append(BadRow(n, f"expected an object, got {type(row).__name__}"))
            continue
        r = {str(k).strip().lower(): v for k, v in row.items()}
        ts = next((r[k] for k in ("timestamp", "ts", "time", "at") if k in r), None)
        try:
            inter = make_interaction(
                r.get("user", r.get("user_id")),
                r.get("item", r.get("item_id")),
                r.get("event"),
                weight=r.get("weight"),
                rating=r.get("rating"),
                ts=ts,
            )
        except ValueError as e:
            bad.append(BadRow(n, str(e)))
            continue
        if inter.item not in known_items:
            bad.append(BadRow(n, f"unknown item {inter.item!r}"))
            continue
        good.append(inter)
    return good, bad
