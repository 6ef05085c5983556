"""Recommendations for a user: retrieval per interest, fair merge, diversity, explanations, cold start.

* Everything is read from the serving snapshot (:mod:`mmrec.recsys.snapshot`):
  the profile, the vectors, the filter's allow-list; no LanceDB call when
  nothing changed. A catalog served with ``serving="lancedb"`` goes through the
  same code: its item side searches LanceDB and reads the few vectors a step
  needs by id (:meth:`~mmrec.recsys.item_side.ItemRows.vectors_of`).
* All interest vectors of the profile retrieve their candidates in one search
  call over the fused vectors (or one modality's shared vectors), with the
  metadata filter applied *inside* the search and consumed items over-fetched
  and dropped, so a selective filter still yields k results.
* Candidates are re-scored: similarity to the interest minus the negative
  vector's pull (skips and dislikes push similar items down).
* Interests share the k slots in proportion to their weight (at least one
  each while slots last), so a minor interest is not drowned by a major one.
* Optional MMR re-ranking trades score for variety (``diversity`` 0–1).
* Candidates stay row positions and score arrays until the final k are
  picked; only those become :class:`Recommendation` objects (per-call cost
  near the ANN library's own, ``benchmarks/recommend_latency.py``).
* Explanations name the history items most responsible (their similarity to
  the recommended item times their decayed event weight) and the modalities
  that carried the match (the item's fusion attention weights and which of its
  modality vectors is closest to the interest).
* Cold start: a user with no positive history gets items near an onboarding
  text when given, else recently popular items, else the newest items.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from operator import itemgetter
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrec.errors import InvalidArgumentError
from mmrec.names import FUSED_COLUMN, MODALITIES, shared_column
from mmrec.recsys.cold_start import TextSearch, cold_start
from mmrec.recsys.explain import HistoryExplainer, matched_modality, modality_weights
from mmrec.recsys.profiles import Profile
from mmrec.recsys.rating import RatingCache, with_predicted_ratings
from mmrec.recsys.results import Recommendation, RecommendResult, recommendations
from mmrec.recsys.search import check_search
from mmrec.recsys.served import standardise
from mmrec.recsys.snapshot import ItemRows, Snapshot
from mmrec.recsys.userbook import UserBook
from mmrec.store.items import Store

if TYPE_CHECKING:  # the hybrid's serving layer is handed in by the Engine; nothing here loads it
    from mmrec.recsys.hybrid_serving import HybridCache, HybridScorer

__all__ = ["OVERFETCH", "UserRecommender", "merge", "quotas"]

#: Candidates fetched per slot, for re-scoring and diversity.
OVERFETCH = 4
#: Columns every candidate row needs: scoring, diversity and explanations.
CANDIDATE_COLUMNS = ["id", "title", FUSED_COLUMN, "fusion_weights", *(shared_column(m) for m in MODALITIES)]
_NOTHING: frozenset[int] = frozenset()


class UserRecommender:
    """Recommendations for users, from their live profiles (or the trained hybrid when there is one).

    Parameters
    ----------
    store : Store
        Read only for a filter not seen before in the current version.
    snapshot : callable
        Returns the current serving :class:`~mmrec.recsys.snapshot.Snapshot` (items, vectors, profiles).
    book : UserBook
        The profile settings and the popular items of a cold start.
    hybrid : HybridCache or None
        The trained hybrid model aligned with the current items; ``None`` ranks by profiles only.
    search_text : callable
        ``(text, k, modality, where) -> list[Match]`` for the onboarding text of a cold-start user.
    """

    def __init__(
        self,
        store: Store,
        snapshot: Callable[[], Snapshot],
        book: UserBook,
        hybrid: HybridCache | None,
        search_text: TextSearch,
    ) -> None:
        self.store = store
        self.snapshot = snapshot
        self.book = book
        self.hybrid = hybrid
        self.search_text = search_text
        self.ratings = RatingCache(store)

    def recommend(
        self,
        user: str,
        k: int = 10,
        *,
        where: str | None = None,
        modality: str = "any",
        diversity: float = 0.0,
        explain: bool = False,
        include_seen: bool = False,
        query: str | None = None,
    ) -> RecommendResult:
        """See :meth:`mmrec.engine.Engine.recommend`."""
        check_search(k, modality)
        if not 0.0 <= float(diversity) <= 1.0:
            raise InvalidArgumentError(f"diversity must be between 0 and 1, got {diversity!r}")
        snap = self.snapshot()
        profile = snap.profile(user)
        if profile is None or not snap.taste(profile).has_interests:
            return cold_start(
                self.store,
                snap,
                self.book,
                self.search_text,
                user,
                profile,
                k=k,
                where=where,
                modality=modality,
                include_seen=include_seen,
                query=query,
            )
        # Looked up once per snapshot: a new checkpoint changes the snapshot's versions.
        scorer = snap.memo("hybrid", self.hybrid.current) if self.hybrid is not None else None
        by = self._by_hybrid if scorer is not None else self._by_profile
        result = by(snap, scorer, profile, k, where, modality, diversity, explain, include_seen)
        model = snap.memo("rating", self.ratings.current)
        return result if model is None else with_predicted_ratings(result, model)

    # ----------------------------------------------------------------- strategies

    def _by_profile(
        self,
        snap: Snapshot,
        _scorer: None,
        profile: Profile,
        k: int,
        where: str | None,
        modality: str,
        diversity: float,
        explain: bool,
        include_seen: bool,
    ) -> RecommendResult:
        """Each interest retrieves its candidates; negatives push down; interests share the slots."""
        column = FUSED_COLUMN if modality == "any" else shared_column(modality)
        items = snap.items
        if not items.searchable(column):
            return RecommendResult(profile.user, [], "profile")
        taste = snap.taste(profile)
        directions, weights = taste.directions, taste.weights
        slots = taste.slots.get(k) or taste.slots.setdefault(k, quotas(weights, k))
        # Consumed items are over-fetched and skipped by merge(); the filter applies inside the search.
        seen = _NOTHING if include_seen else taste.seen
        # quotas() gives the first min(k, I) interests a slot each and only those: they search, in one call.
        queries = directions[: min(k, len(weights))]
        found = items.candidates(self.store, column, queries, max(slots) * OVERFETCH + k + len(seen), where)
        pools = found + [([], [])] * (len(weights) - len(found))
        negative = taste.negative
        if negative is not None and FUSED_COLUMN in items.valid:
            pools = self._penalised(items, pools, negative)
        picked = merge(pools, slots, k, diversity, _fused(items), taken=seen)
        return RecommendResult(profile.user, self._results(snap, profile, picked, directions, explain), "profile")

    def _penalised(
        self, items: ItemRows, pools: list[tuple[list[int], list[float]]], negative: tuple[np.ndarray, float]
    ) -> list[tuple[list[int], list[float]]]:
        """The pools re-scored by the negative vector's pull (skips and dislikes push similar items down), re-sorted."""
        neg_dir, strength = negative
        rows = np.array([r for pool, _ in pools for r in pool], np.int64)
        vecs, has = items.vectors_of(rows, [FUSED_COLUMN])[FUSED_COLUMN]
        pull = np.where(has, np.maximum(vecs @ np.asarray(neg_dir, np.float32), 0.0), 0.0)
        penalty = (self.book.config.negative_penalty * strength * pull).tolist()
        out, start = [], 0
        for r, s in pools:
            scored = sorted(
                zip((x - p for x, p in zip(s, penalty[start : start + len(r)], strict=True)), r, strict=True),
                key=lambda c: -c[0],
            )
            start += len(r)
            out.append(([n for _, n in scored], [x for x, _ in scored]))
        return out

    def _by_hybrid(
        self,
        snap: Snapshot,
        scorer: HybridScorer,
        profile: Profile,
        k: int,
        where: str | None,
        modality: str,
        diversity: float,
        explain: bool,
        include_seen: bool,
    ) -> RecommendResult:
        """Rank every item with the trained towers, then apply exclusions, filter, negatives, diversity."""
        history = [item for item, _event, weight, _ts in profile.history if weight > 0]
        raw = scorer.scores(history)
        # Standardise so that the negative-vector penalty below has the same scale for every user.
        scores = standardise(raw)
        allowed = np.ones(len(scores), bool)
        if modality != "any":
            allowed &= scorer.has[modality]
        # The scorer's items as snapshot rows (-1: not in this snapshot), mapped once per snapshot.
        at = snap.memo("hybrid_rows", lambda: np.array([snap.items.index.get(i, -1) for i in scorer.ids], np.int64))
        allow = snap.items.allow(self.store, where)
        if allow is not None:
            allowed &= (at >= 0) & allow.mask[np.maximum(at, 0)]
        if not include_seen:
            for item in profile.seen:
                if item in scorer.index:
                    allowed[scorer.index[item]] = False
        negative = snap.taste(profile).negative  # computed once per profile and snapshot
        if negative is not None:
            neg_dir, strength = negative
            scores = scores - 2.0 * self.book.config.negative_penalty * strength * np.maximum(
                0.0, scorer.fused @ neg_dir
            )
        scores = np.where(allowed & (at >= 0), scores, -np.inf)
        n_cand = min(int(np.isfinite(scores).sum()), k * OVERFETCH)
        if n_cand == 0:
            return RecommendResult(profile.user, [], scorer.strategy, "no item matches the filter")
        top = np.argpartition(-scores, n_cand - 1)[:n_cand]
        top = top[np.argsort(-scores[top])]
        picked = merge([(at[top], scores[top])], [k], k, diversity, _fused(snap.items))
        directions = snap.taste(profile).directions[:1]
        if not len(directions):
            directions = np.zeros((1, scorer.fused.shape[1]), np.float32)
        return RecommendResult(profile.user, self._results(snap, profile, picked, directions, explain), scorer.strategy)

    def _results(
        self,
        snap: Snapshot,
        profile: Profile,
        picked: list[tuple[int, float, int]],
        directions: np.ndarray,
        explain: bool,
    ) -> list[Recommendation]:
        """The :class:`Recommendation` of each picked ``(interest, score, row)``: fields gathered for these rows only.

        ``directions`` ``(I, D)``: the interests' unit vectors (the hybrid passes one, for every pick).
        """
        if not picked:
            return []
        items = snap.items
        interests, scores, rows = zip(*picked, strict=True)
        last = len(directions) - 1
        if explain:
            explainer = self._explainer(snap, profile)
            out = []
            # The picked rows' vectors in one read (one LanceDB query when the vectors are not in memory); the
            # matched modality is taken from the same rows rather than from a second read of their vectors.
            for (idx, score, _n), row in zip(picked, items.rows_at(rows, CANDIDATE_COLUMNS), strict=True):
                because = explainer(row)
                # explained: the modalities that carried *this* match; else the item's fusion attention weights
                mods = explainer.modalities(row, because) if because else modality_weights(row)
                m = matched_modality(directions[min(idx, last)], row)
                out.append(Recommendation(row["id"], row["title"], round(score, 6), idx, because, mods, m))
            return out
        matched = items.closest_modality(rows, lambda: directions[[min(i, last) for i in interests]])
        # Rounded as the explained path and similar() round (Python's round: no NumPy call after the search).
        scores = [round(s, 6) for s in scores]
        return recommendations(items.ids, items.titles, rows, scores, interests, items.fusion_weights(rows), matched)

    def _explainer(self, snap: Snapshot, profile: Profile) -> HistoryExplainer:
        # The snapshot's item side answers the explainer's row reads (titles, vectors): memory, or one LanceDB query.
        return HistoryExplainer(snap.items, profile, self.book.config.half_life_days)  # type: ignore[arg-type]


def _fused(items: ItemRows) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None:
    """Rows → their ``(fused vectors (n, D) float32, has (n,))``, for MMR (``None``: no fused vectors)."""
    if FUSED_COLUMN not in items.valid:
        return None
    return lambda rows: items.vectors_of(rows, [FUSED_COLUMN])[FUSED_COLUMN]


# --------------------------------------------------------------------------- pure parts


def quotas(weights: list[float], k: int) -> list[int]:
    """Slots per interest: proportional to weight, at least one each while slots last (largest remainder)."""
    n = len(weights)
    if n == 0:
        return []
    base = [1 if i < k else 0 for i in range(n)]
    rest = k - sum(base)
    total = sum(weights) or 1.0
    raw = [rest * w / total for w in weights]
    extra = [int(x) for x in raw]
    left = rest - sum(extra)
    for i in sorted(range(n), key=lambda i: -(raw[i] - extra[i]))[:left]:
        extra[i] += 1
    return [b + e for b, e in zip(base, extra, strict=True)]


def merge(
    pools: Sequence[tuple[Sequence[int], Sequence[float]]],
    slots: list[int],
    k: int,
    diversity: float,
    fetch: Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None = None,
    taken: Collection[int] = (),
) -> list[tuple[int, float, int]]:
    """Fill each interest's quota from its pool (MMR within the pool when ``diversity`` > 0), then top up.

    Parameters
    ----------
    pools : list of (rows, scores)
        Per interest, its candidates best first: row positions and their scores (lists or arrays).
    slots : list of int
        Per interest, how many items it gets (:func:`quotas`).
    k : int
        Items wanted.
    diversity : float
        0 = relevance only; up to 1 = MMR, relevance traded against the largest cosine to the chosen items.
    fetch : callable, optional
        Rows ``(n,)`` → their ``(fused vectors (n, D) float32, has (n,) bool)`` (MMR reads them, once per pool;
        a row without one is redundant with nothing). ``None``: no diversity.
    taken : collection of int
        Rows never picked (the consumed items: the search over-fetched as many).

    Returns
    -------
    list of (interest, score, row)
        At most ``k``; sorted by score when ``diversity`` is 0, else in pick order.
    """
    chosen: list[tuple[int, float, int]] = []
    mmr = diversity > 0 and fetch is not None
    if not all(type(r) is list and type(s) is list for r, s in pools):  # noqa: E721  # (the search's are lists)
        pools = [(_plain(r), _plain(s)) for r, s in pools]
    if not mmr:
        _fill(pools, slots, chosen, taken)
        if len(chosen) >= k:  # the common case: every quota filled
            if diversity == 0:
                chosen.sort(key=_score, reverse=True)  # stable in reverse too: ties keep their pick order
            return chosen[:k]
    taken = {*taken, *(r for _, _, r in chosen)}
    picked_vecs: list[np.ndarray] = []  # the chosen rows' vectors (those that have one), for MMR

    def pick(idx: int, rows: list[int], scores: list[float], n: int) -> None:
        cands = [(r, s) for r, s in zip(rows, scores, strict=True) if r not in taken]
        if not cands:
            return
        vecs, has = fetch(np.array([r for r, _ in cands], np.int64))
        rel = np.array([s for _, s in cands], np.float64)
        # Per candidate, the largest cosine to what is chosen (-inf: nothing with a vector chosen yet).
        red = np.max(vecs @ np.stack(picked_vecs).T, axis=1) if picked_vecs else np.full(len(cands), -np.inf)
        open_ = np.ones(len(cands), bool)
        while n > 0 and open_.any():
            if picked_vecs:
                # MMR: relevance against redundancy with what is already chosen
                value = (1 - diversity) * rel - diversity * np.where(has, red, 0.0)
                best = int(np.argmax(np.where(open_, value, -np.inf)))
            else:
                best = int(np.flatnonzero(open_)[0])  # nothing to be redundant with: the most relevant
            open_[best] = False
            chosen.append((idx, cands[best][1], cands[best][0]))
            taken.add(cands[best][0])
            if has[best]:
                picked_vecs.append(vecs[best])
                red = np.maximum(red, vecs @ vecs[best])
            n -= 1

    if mmr:
        for idx, ((rows, scores), quota) in enumerate(zip(pools, slots, strict=True)):
            if quota > 0 and rows:
                pick(idx, rows, scores, quota)
    if len(chosen) < k:  # an interest ran out of candidates: others fill its slots
        merged = sorted(
            ((s, r, i) for i, (rows, scores) in enumerate(pools) for r, s in zip(rows, scores, strict=True)),
            key=lambda x: -x[0],
        )
        for s, r, i in merged:
            if len(chosen) >= k:
                break
            if r not in taken:
                chosen.append((i, s, r))
                taken.add(r)
    if diversity == 0:
        chosen.sort(key=_score, reverse=True)  # stable in reverse too: ties keep their pick order
    return chosen[:k]


_score = itemgetter(1)


def _fill(
    pools: list[tuple[list[int], list[float]]],
    slots: list[int],
    chosen: list[tuple[int, float, int]],
    taken: Collection[int],
) -> None:
    """Each interest's best ``slots[i]`` rows neither in ``taken`` nor chosen yet, appended to ``chosen`` as
    ``(interest, score, row)``.

    The hot path of :func:`merge` (no diversity): one plain loop walking each pool only as far as needed;
    ``taken`` (the consumed items) is read, not copied.
    """
    mine: set[int] = set()
    add, append = mine.add, chosen.append
    for idx, ((rows, scores), n) in enumerate(zip(pools, slots, strict=True)):
        if n <= 0:
            continue
        for r, s in zip(rows, scores, strict=True):
            if r not in taken and r not in mine:
                append((idx, s, r))
                add(r)
                n -= 1
                if n == 0:
                    break


def _plain(values: Sequence[Any]) -> list[Any]:
    """``values`` as a list of Python numbers (an array's ``tolist``)."""
    return values if isinstance(values, list) else values.tolist() if isinstance(values, np.ndarray) else list(values)
