"""Keeping one database in step: repair after a crash, report what is out of step, health, versions.

Functions take the parts they touch (a :class:`~mmrec.store.items.Store`, a
:class:`~mmrec.recsys.userbook.UserBook`, a way to get the shared space); the Engine composes them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from mmrec.errors import MMRecError
from mmrec.ingest.refit import finish_pending, pending_refit
from mmrec.recsys.userbook import UserBook
from mmrec.space import SharedSpace
from mmrec.store.items import Store

__all__ = ["consistency", "health_problem", "repair", "table_versions"]


def repair(store: Store, users: Callable[[], UserBook], space: Callable[[], SharedSpace]) -> dict[str, int]:
    """Finish what an interrupted write left: duplicate item rows, a half-done refit, profiles behind the log.

    Returns
    -------
    dict
        ``duplicate_rows``, ``refit`` (1 when a pending refit was applied) and ``profiles`` repaired.
    """
    done = {"duplicate_rows": 0, "refit": 0, "profiles": 0}
    if not store.has_items():
        return done
    with store.writer.hold("repairing"):
        done["duplicate_rows"] = store.dedupe_ids()
        if pending_refit(store) is not None:
            done["refit"] = int(finish_pending(store, space()))
        done["profiles"] = users().repair()
    return done


def consistency(store: Store, users: Callable[[], UserBook]) -> dict[str, Any]:
    """What is out of step in the database (after a crash), without changing anything."""
    if not store.has_items():
        return {"ok": True}
    out: dict[str, Any] = {
        "duplicate_item_rows": len(store.duplicate_ids()),
        "fusion_refit_pending": pending_refit(store) is not None,
        "profiles_behind_events": users().out_of_step(),
    }
    out["ok"] = not (out["duplicate_item_rows"] or out["fusion_refit_pending"] or out["profiles_behind_events"])
    return out


def health_problem(store: Store) -> str | None:
    """``None`` when the database can be read (an empty one included), else a one-line reason without paths."""
    try:
        if store.has_items():
            store.count()
    except MMRecError as e:
        return str(e).replace(repr(store.uri), "the database").replace(store.uri, "the database")
    return None


def table_versions(store: Store, users: Callable[[], UserBook]) -> dict[str, int | None]:
    """The current version of each table (``None`` for an absent one): what a serving cache is keyed on."""
    t = users().tables if store.has_items() else None
    user_table = t.users() if t else None
    return {
        "items": store.version(),
        "interactions": t.events_version() if t else None,
        "users": None if user_table is None else int(user_table.version),
    }
