"""Recommendations without a usable profile: near an onboarding text, recently popular, or newest.

A user with no positive history gets items near an onboarding text when one is given, else
the recently popular items (decayed with the profile half-life), else the newest items.
"""

from __future__ import annotations

from collections.abc import Callable

from mmrec.errors import InvalidArgumentError
from mmrec.recsys.profiles import Profile
from mmrec.recsys.results import Recommendation, RecommendResult
from mmrec.recsys.search import Match
from mmrec.recsys.userbook import UserBook
from mmrec.store.items import Store
from mmrec.store.sql import and_, id_in, sql_quote

#: ``search_text(text, k, modality, where)``: items near a sentence (the Engine's text search).
TextSearch = Callable[[str, int, str, "str | None"], list[Match]]
#: Consumed items excluded in the search filter itself.
MAX_EXCLUDE_IN_FILTER = 2000


def cold_start(
    store: Store,
    book: UserBook,
    search_text: TextSearch,
    user: str,
    profile: Profile | None,
    *,
    k: int,
    where: str | None,
    modality: str,
    include_seen: bool,
    query: str | None,
) -> RecommendResult:
    """Recommendations for ``user`` without a usable profile (see the module docstring).

    Parameters
    ----------
    store : Store
    book : UserBook
        For the recently popular items.
    search_text : callable
        ``(text, k, modality, where) -> list[Match]``, used for the onboarding ``query``.
    user : str
    profile : Profile or None
        ``None`` for an unknown user; a profile with only negative events otherwise.
    """
    who = f"unknown user {user!r}" if profile is None else f"user {user!r} has no positive history yet"
    seen = set() if profile is None or include_seen else set(profile.seen)
    filters = [where] if where else []
    if seen:
        filters.append(f"id NOT IN ({', '.join(sql_quote(i) for i in sorted(seen)[:MAX_EXCLUDE_IN_FILTER])})")
    if query is not None:
        if not query.strip():
            raise InvalidArgumentError("the onboarding query is empty")
        matches = search_text(query, k, modality, and_(filters))
        items = [Recommendation(m.id, m.title, m.score, 0, matched=m.matched) for m in matches]
        return RecommendResult(user, items, "query", f"{who}: items near the onboarding text")
    popular = book.popular()
    if popular:
        allowed = _allowed_ids(store, [i for i, _ in popular], filters, modality)
        items = [Recommendation(i, allowed[i], round(s, 6), 0) for i, s in popular if i in allowed][:k]
        if items:
            return RecommendResult(user, items, "popular", f"{who}: recently popular items")
    rows = store.list(limit=None, where=and_(filters + _has(modality)), columns=["id", "title", "created_at"])
    rows.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
    items = [Recommendation(r["id"], r.get("title") or "", 0.0, 0) for r in rows[:k]]
    return RecommendResult(user, items, "newest", f"{who}: newest items (no interactions recorded yet)")


def _has(modality: str) -> list[str]:
    return [] if modality == "any" else [f"has_{modality}"]


def _allowed_ids(store: Store, ids: list[str], filters: list[str], modality: str) -> dict[str, str]:
    rows = store.list(limit=None, where=and_([*filters, *_has(modality), id_in(ids)]), columns=["id", "title"])
    return {r["id"]: r.get("title") or "" for r in rows}
