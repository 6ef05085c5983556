"""Recommendations for a user: retrieval per interest, fair merge, diversity, explanations, cold start.

* Everything is read from the serving snapshot (:mod:`mmrec.recsys.snapshot`):
  the profile, the vectors, the filter's allow-list; no LanceDB call when
  nothing changed.
* All interest vectors of the profile retrieve their candidates in one search
  call over the fused vectors (or one modality's shared vectors), with the
  metadata filter applied *inside* the search and consumed items over-fetched
  and dropped, so a selective filter still yields k results.
* Candidates are re-scored: similarity to the interest minus the negative
  vector's pull (skips and dislikes push similar items down).
* Interests share the k slots in proportion to their weight (at least one
  each while slots last), so a minor interest is not drowned by a major one.
* Optional MMR re-ranking trades score for variety (``diversity`` 0–1).
* Explanations name the history items most responsible (their similarity to
  the recommended item times their decayed event weight) and the modalities
  that carried the match (the item's fusion attention weights and which of its
  modality vectors is closest to the interest).
* Cold start: a user with no positive history gets items near an onboarding
  text when given, else recently popular items, else the newest items.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrec.errors import InvalidArgumentError
from mmrec.names import MODALITIES, shared_column
from mmrec.recsys.cold_start import TextSearch, cold_start
from mmrec.recsys.explain import HistoryExplainer, matched_modality, modality_weights
from mmrec.recsys.profiles import Profile
from mmrec.recsys.rating import RatingCache, with_predicted_ratings
from mmrec.recsys.results import Recommendation, RecommendResult
from mmrec.recsys.search import check_search
from mmrec.recsys.snapshot import Snapshot
from mmrec.recsys.userbook import UserBook
from mmrec.store.items import Store

if TYPE_CHECKING:  # the hybrid's serving layer is handed in by the Engine; nothing here loads it
    from mmrec.recsys.hybrid_serving import HybridCache, HybridScorer

__all__ = ["OVERFETCH", "UserRecommender", "merge", "quotas"]

#: Candidates fetched per slot, for re-scoring and diversity.
OVERFETCH = 4
#: Columns every candidate row needs: scoring, diversity and explanations.
CANDIDATE_COLUMNS = ["id", "title", "fused_vec", "fusion_weights", *(shared_column(m) for m in MODALITIES)]


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
        if profile is None or not profile.has_interests:
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
        options = {"k": k, "where": where, "modality": modality, "diversity": diversity, "explain": explain}
        if scorer is not None:
            result = self._by_hybrid(snap, scorer, profile, include_seen=include_seen, **options)
        else:
            result = self._by_profile(snap, profile, include_seen=include_seen, **options)
        return with_predicted_ratings(result, snap.memo("rating", self.ratings.current))

    # ----------------------------------------------------------------- strategies

    def _by_profile(
        self,
        snap: Snapshot,
        profile: Profile,
        *,
        k: int,
        where: str | None,
        modality: str,
        diversity: float,
        explain: bool,
        include_seen: bool,
    ) -> RecommendResult:
        """Each interest retrieves its candidates; negatives push down; interests share the slots."""
        column = "fused_vec" if modality == "any" else shared_column(modality)
        items = snap.items
        seen = sorted(profile.seen) if not include_seen else []
        negative = profile.negative_direction()
        penalty = self.book.config.negative_penalty
        interests = profile.interests()
        slots = quotas([w for _, w in interests], k)
        active = [i for i, q in enumerate(slots) if q > 0]
        limit = max(slots) * OVERFETCH + k
        if column not in items.vectors or not items.ids:
            return RecommendResult(profile.user, [], "profile")
        queries = np.stack([interests[i][0] for i in active])
        found = items.nearest(self.store, column, queries, limit, where, seen)  # one call for all interests
        results = dict(zip(active, found, strict=True))
        pools: list[list[tuple[float, dict[str, Any]]]] = []
        for i in range(len(interests)):
            rows = np.array([n for n, _ in results.get(i, [])], np.int64)
            scores = np.array([sc for _, sc in results.get(i, [])], np.float64)
            if negative is not None and len(rows) and "fused_vec" in items.vectors:
                neg_dir, strength = negative
                pull = items.vectors["fused_vec"][rows].astype(np.float32) @ np.asarray(neg_dir, np.float32)
                pull = np.where(items.valid["fused_vec"][rows], np.maximum(pull, 0.0), 0.0)
                scores = scores - penalty * strength * pull
            order = np.argsort(-scores, kind="stable")
            if diversity == 0:  # merge() takes the quota and at most k more from a pool: build only those rows
                order = order[: slots[i] + k]
            pools.append([(float(scores[j]), items.row(int(rows[j]), CANDIDATE_COLUMNS)) for j in order])
        picked = merge(pools, slots, k, diversity)
        explainer = self._explainer(snap, profile) if explain else None
        recs = [_recommendation(interests[idx][0], idx, score, row, explainer) for idx, score, row in picked]
        return RecommendResult(profile.user, recs, "profile")

    def _by_hybrid(
        self,
        snap: Snapshot,
        scorer: HybridScorer,
        profile: Profile,
        *,
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
        scores = (raw - raw.mean()) / (raw.std() + 1e-6)
        allowed = np.ones(len(scores), bool)
        if modality != "any":
            allowed &= scorer.has[modality]
        allow = snap.items.allow(self.store, where)
        if allow is not None:
            index = snap.items.index
            allowed &= np.array([i in index and bool(allow.mask[index[i]]) for i in scorer.ids])
        if not include_seen:
            for item in profile.seen:
                if item in scorer.index:
                    allowed[scorer.index[item]] = False
        negative = profile.negative_direction()
        if negative is not None:
            neg_dir, strength = negative
            scores = scores - 2.0 * self.book.config.negative_penalty * strength * np.maximum(
                0.0, scorer.fused @ neg_dir
            )
        scores = np.where(allowed, scores, -np.inf)
        n_cand = min(int(allowed.sum()), k * OVERFETCH)
        if n_cand == 0:
            return RecommendResult(profile.user, [], scorer.strategy, "no item matches the filter")
        top = np.argpartition(-scores, n_cand - 1)[:n_cand]
        top = top[np.argsort(-scores[top])]
        rows = snap.items.rows([scorer.ids[i] for i in top], CANDIDATE_COLUMNS)
        pool = [(float(scores[i]), rows[scorer.ids[i]]) for i in top if scorer.ids[i] in rows]
        picked = merge([pool], [k], k, diversity)
        interests = profile.interests() or [(np.zeros(scorer.fused.shape[1], np.float32), 1.0)]
        explainer = self._explainer(snap, profile) if explain else None
        recs = [_recommendation(interests[0][0], 0, score, row, explainer) for _, score, row in picked]
        return RecommendResult(profile.user, recs, scorer.strategy)

    def _explainer(self, snap: Snapshot, profile: Profile) -> HistoryExplainer:
        # The snapshot answers the explainer's row reads (titles and fused vectors) from memory.
        return HistoryExplainer(snap.items, profile, self.book.config.half_life_days)  # type: ignore[arg-type]


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
    pools: list[list[tuple[float, dict[str, Any]]]], slots: list[int], k: int, diversity: float
) -> list[tuple[int, float, dict[str, Any]]]:
    """Fill each interest's quota from its pool (MMR within the pool when ``diversity`` > 0), then top up.

    Parameters
    ----------
    pools : list of list of (score, row)
        Per interest, its candidates best first; a row has ``id`` and ``fused_vec`` ``(D,)`` (or ``None``).
    slots : list of int
        Per interest, how many items it gets (:func:`quotas`).
    k : int
        Items wanted.
    diversity : float
        0 = relevance only; up to 1 = MMR, relevance traded against the largest cosine to the chosen items.

    Returns
    -------
    list of (interest, score, row)
        At most ``k``; sorted by score when ``diversity`` is 0, else in pick order.
    """
    chosen: list[tuple[int, float, dict[str, Any]]] = []
    taken: set[str] = set()

    def pick(idx: int, pool: list[tuple[float, dict[str, Any]]], n: int) -> None:
        cands = [(s, r) for s, r in pool if r["id"] not in taken]
        while n > 0 and cands:
            best = cands[0]
            chosen_vecs = (  # only MMR reads them: relevance-only picks skip the k² copies
                [np.asarray(c[2]["fused_vec"], np.float32) for c in chosen if c[2].get("fused_vec") is not None]
                if diversity > 0
                else []
            )
            if diversity > 0 and chosen_vecs:
                # MMR: relevance against redundancy with what is already chosen
                picked = np.stack(chosen_vecs)
                best_value = -np.inf
                for c in cands:
                    v = c[1].get("fused_vec")
                    redundancy = float(np.max(picked @ np.asarray(v, np.float32))) if v is not None else 0.0
                    value = (1 - diversity) * c[0] - diversity * redundancy
                    if value > best_value:
                        best, best_value = c, value
            cands.remove(best)
            chosen.append((idx, best[0], best[1]))
            taken.add(best[1]["id"])
            n -= 1

    for idx, (pool, quota) in enumerate(zip(pools, slots, strict=True)):
        pick(idx, pool, quota)
    if len(chosen) < k:  # an interest ran out of candidates: others fill its slots
        merged = sorted(((s, r, i) for i, pool in enumerate(pools) for s, r in pool), key=lambda x: -x[0])
        for s, r, i in merged:
            if len(chosen) >= k:
                break
            if r["id"] not in taken:
                chosen.append((i, s, r))
                taken.add(r["id"])
    if diversity == 0:
        chosen.sort(key=lambda c: -c[1])
    return chosen[:k]


def _recommendation(
    direction: np.ndarray, idx: int, score: float, row: dict[str, Any], explainer: HistoryExplainer | None
) -> Recommendation:
    because = explainer(row) if explainer is not None else []
    # explained: the modalities that carried *this* match; else the item's fusion attention weights
    mods = explainer.modalities(row, because) if explainer is not None and because else modality_weights(row)
    return Recommendation(
        row["id"],
        row.get("title") or "",
        round(score, 6),
        idx,
        because,
        mods,
        matched_modality(direction, row),
    )
