"""Recommendations without a usable profile: near an onboarding text, recently popular, or newest.

A user with no positive history gets items near an onboarding text when one is given, else
the recently popular items (decayed with the profile half-life), else the newest items. The
filter, the media flags and the newest items come from the serving snapshot.
"""

from __future__ import annotations

from collections.abc import Callable

from mmrec.errors import InvalidArgumentError
from mmrec.recsys.profiles import Profile
from mmrec.recsys.results import Recommendation, RecommendResult
from mmrec.recsys.search import Match
from mmrec.recsys.snapshot import Snapshot, newest
from mmrec.recsys.userbook import UserBook
from mmrec.store.items import Store

#: ``search_text(text, k, modality, where, exclude)``: items near a sentence (the Engine's text search),
#: leaving out the ``exclude`` item ids.
TextSearch = Callable[[str, int, str, "str | None", "list[str]"], list[Match]]


def cold_start(
    store: Store,
    snapshot: Snapshot,
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
        Read only for a filter not seen before in this version.
    snapshot : Snapshot
        The serving snapshot: items, flags, the popular items.
    book : UserBook
        For the recently popular items (computed once per events version).
    search_text : callable
        ``(text, k, modality, where, exclude) -> list[Match]``, used for the onboarding ``query``.
    user : str
    profile : Profile or None
        ``None`` for an unknown user; a profile with only negative events otherwise.
    """
    who = f"unknown user {user!r}" if profile is None else f"user {user!r} has no positive history yet"
    seen = set() if profile is None or include_seen else set(profile.seen)
    if query is not None:
        if not query.strip():
            raise InvalidArgumentError("the onboarding query is empty")
        matches = search_text(query, k, modality, where, sorted(seen))
        items = [Recommendation(m.id, m.title, m.score, 0, matched=m.matched) for m in matches]
        return RecommendResult(user, items, "query", f"{who}: items near the onboarding text")
    side = snapshot.items
    allow = side.allow(store, where)

    def ok(item: str) -> bool:
        n = side.index.get(item)
        return (
            n is not None
            and item not in seen
            and (allow is None or bool(allow.mask[n]))
            and (modality == "any" or bool(side.has[modality][n]))
        )

    popular = snapshot.popular(book)
    if popular:
        items = [Recommendation(i, side.titles[side.index[i]], round(s, 6), 0) for i, s in popular if ok(i)][:k]
        if items:
            return RecommendResult(user, items, "popular", f"{who}: recently popular items")
    rows = [n for n in newest(side, allow, modality, k + len(seen)) if side.ids[n] not in seen][:k]
    items = [Recommendation(side.ids[n], side.titles[n], 0.0, 0) for n in rows]
    return RecommendResult(user, items, "newest", f"{who}: newest items (no interactions recorded yet)")
