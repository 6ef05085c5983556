"""Recommendations for a user: retrieval per interest, fair merge, diversity, explanations, cold start.

* Each interest vector of the profile retrieves candidates from the fused
  vectors (or one modality's shared vectors) with the metadata filter and the
  exclusion of consumed items applied *inside* the search, so a selective
  filter still yields k results.
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

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from encoders.base import MODALITIES
from mmrec.errors import InvalidArgumentError
from mmrec.names import MAX_K, SEARCH_MODALITIES
from mmrec.names import shared_column
from mmrec.store.items import sql_quote

if TYPE_CHECKING:
    from mmrec.engine import Engine
    from mmrec.recsys.profiles import Profile

#: Candidates fetched per slot, for re-scoring and diversity.
OVERFETCH = 4
#: Consumed items excluded in the search filter itself; beyond this, extra candidates are fetched instead.
MAX_EXCLUDE_IN_FILTER = 2000


@dataclass(frozen=True)
class Because:
    item: str
    title: str
    event: str
    contribution: float


@dataclass(frozen=True)
class Recommendation:
    id: str
    title: str
    score: float
    interest: int
    because: list[Because] = field(default_factory=list)
    modalities: dict[str, float] = field(default_factory=dict)
    matched: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RecommendResult:
    user: str
    items: list[Recommendation]
    #: "hybrid" (trained towers), "profile" (interest vectors), "query", "popular" or "newest".
    strategy: str
    message: str = ""

    @property
    def cold_start(self) -> bool:
        return self.strategy not in ("profile", "hybrid")

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "strategy": self.strategy,
            "cold_start": self.cold_start,
            "message": self.message,
            "items": [r.to_dict() for r in self.items],
        }


def _check(k: int, modality: str, diversity: float) -> None:
    if not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidArgumentError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    if modality not in SEARCH_MODALITIES:
        raise InvalidArgumentError(f"unknown modality {modality!r}; valid: {', '.join(SEARCH_MODALITIES)}")
    if not 0.0 <= float(diversity) <= 1.0:
        raise InvalidArgumentError(f"diversity must be between 0 and 1, got {diversity!r}")


def _search(
    engine: Engine, vectors: list[np.ndarray], column: str, limit: int, filters: list[str]
) -> list[list[dict[str, Any]]]:
    """Nearest items to each of ``vectors`` in one batched search: one list of rows per vector."""
    cols = ["id", "title", "fused_vec", "fusion_weights", *(shared_column(m) for m in MODALITIES)]
    return engine.store.nearest(vectors, column, cols, limit, filters)


def recommend(
    engine: Engine,
    user: str,
    *,
    k: int = 10,
    where: str | None = None,
    modality: str = "any",
    diversity: float = 0.0,
    explain: bool = False,
    include_seen: bool = False,
    query: str | None = None,
) -> RecommendResult:
    """See :meth:`mmrec.engine.Engine.recommend`."""
    _check(k, modality, diversity)
    book = engine.users()
    profile = book.profile(user)
    if profile is None or not profile.has_interests:
        return cold_start(
            engine, user, profile, k=k, where=where, modality=modality, include_seen=include_seen, query=query
        )

    from mmrec.recsys.hybrid_serving import scorer_for

    scorer = scorer_for(engine)
    if scorer is not None:
        return _recommend_hybrid(
            engine,
            scorer,
            profile,
            k=k,
            where=where,
            modality=modality,
            diversity=diversity,
            explain=explain,
            include_seen=include_seen,
        )

    column = "fused_vec" if modality == "any" else shared_column(modality)
    seen = sorted(profile.seen) if not include_seen else []
    filters = [where] if where else []
    exclude_later: set[str] = set()
    if seen and len(seen) <= MAX_EXCLUDE_IN_FILTER:
        filters.append(f"id NOT IN ({', '.join(sql_quote(i) for i in seen)})")
    elif seen:
        exclude_later = set(seen)
    negative = profile.negative_direction()
    penalty = engine.users().config.negative_penalty
    interests = profile.interests()
    quotas = _quotas([w for _, w in interests], k)
    pools: list[list[tuple[float, dict[str, Any]]]] = []
    active = [i for i, q in enumerate(quotas) if q > 0]
    limit = max(quotas) * OVERFETCH + len(exclude_later) + k
    found = _search(engine, [interests[i][0] for i in active], column, limit, filters)
    results = dict(zip(active, found, strict=True))
    for i in range(len(interests)):
        rows = [r for r in results.get(i, []) if r["id"] not in exclude_later]
        scored = []
        for r in rows:
            s = 1.0 - float(r["_distance"])
            if negative is not None and r.get("fused_vec") is not None:
                neg_dir, strength = negative
                s -= penalty * strength * max(0.0, float(np.dot(neg_dir, r["fused_vec"])))
            scored.append((s, r))
        scored.sort(key=lambda x: -x[0])
        pools.append(scored)
    picked = _merge(pools, quotas, k, diversity)
    explainer = HistoryExplainer(engine, profile) if explain else None
    recs = [_recommendation(engine, profile, interests, idx, score, row, explainer) for idx, score, row in picked]
    return RecommendResult(user, recs, "profile")


def _recommend_hybrid(
    engine: Engine,
    scorer: Any,
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
    if where:
        ok = {r["id"] for r in engine.store.list(limit=None, where=where, columns=["id"])}
        allowed &= np.array([i in ok for i in scorer.ids])
    if not include_seen:
        for item in profile.seen:
            if item in scorer.index:
                allowed[scorer.index[item]] = False
    negative = profile.negative_direction()
    if negative is not None:
        neg_dir, strength = negative
        scores = scores - 2.0 * engine.users().config.negative_penalty * strength * np.maximum(
            0.0, scorer.fused @ neg_dir
        )
    scores = np.where(allowed, scores, -np.inf)
    n_cand = min(int(allowed.sum()), k * OVERFETCH)
    if n_cand == 0:
        return RecommendResult(profile.user, [], "hybrid", "no item matches the filter")
    top = np.argpartition(-scores, n_cand - 1)[:n_cand]
    top = top[np.argsort(-scores[top])]
    cols = ["id", "title", "fused_vec", "fusion_weights", *(shared_column(m) for m in MODALITIES)]
    rows = engine.store.rows([scorer.ids[i] for i in top], columns=cols)
    pool = [(float(scores[i]), rows[scorer.ids[i]]) for i in top if scorer.ids[i] in rows]
    picked = _merge([pool], [k], k, diversity)
    interests = profile.interests() or [(np.zeros(scorer.fused.shape[1], np.float32), 1.0)]
    explainer = HistoryExplainer(engine, profile) if explain else None
    recs = [_recommendation(engine, profile, interests, 0, score, row, explainer) for _, score, row in picked]
    return RecommendResult(profile.user, recs, "hybrid")


def _quotas(weights: list[float], k: int) -> list[int]:
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


def _merge(
    pools: list[list[tuple[float, dict[str, Any]]]], quotas: list[int], k: int, diversity: float
) -> list[tuple[int, float, dict[str, Any]]]:
    """Fill each interest's quota from its pool (MMR within the pool when ``diversity`` > 0), then top up."""
    chosen: list[tuple[int, float, dict[str, Any]]] = []
    taken: set[str] = set()

    def pick(idx: int, pool: list[tuple[float, dict[str, Any]]], n: int) -> None:
        cands = [(s, r) for s, r in pool if r["id"] not in taken]
        while n > 0 and cands:
            best = cands[0]
            chosen_vecs = [
                np.asarray(c[2]["fused_vec"], np.float32) for c in chosen if c[2].get("fused_vec") is not None
            ]
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

    for idx, (pool, quota) in enumerate(zip(pools, quotas, strict=True)):
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
    engine: Engine,
    profile: Profile,
    interests: list[tuple[np.ndarray, float]],
    idx: int,
    score: float,
    row: dict[str, Any],
    explainer: HistoryExplainer | None,
) -> Recommendation:
    weights = row.get("fusion_weights")
    modalities = (
        {m: round(float(w), 4) for m, w in zip(MODALITIES, weights, strict=True) if w > 0}
        if weights is not None
        else {}
    )
    direction = interests[idx][0]
    per = {
        m: float(np.dot(direction, row[shared_column(m)])) for m in MODALITIES if row.get(shared_column(m)) is not None
    }
    matched = max(per, key=per.get) if per else ""
    because = explainer(row) if explainer is not None else []
    return Recommendation(row["id"], row.get("title") or "", round(score, 6), idx, because, modalities, matched)


class HistoryExplainer:
    """Names the history items most responsible for a recommendation: similarity × decayed positive weight.

    Built once per request: the user's positive history and its items' fused vectors are read
    once, then each recommended item is explained with one matrix-vector product.
    """

    def __init__(self, engine: Engine, profile: Profile, top: int = 3) -> None:
        self.top = top
        weights: dict[str, float] = {}
        half = engine.users().config.half_life_days * 86400.0
        ref = profile.ref_time or datetime.now(timezone.utc)
        for item, _event, weight, ts in profile.history:
            if weight > 0:
                weights[item] = weights.get(item, 0.0) + weight * 0.5 ** (max(0.0, (ref - ts).total_seconds()) / half)
        events = {item: event for item, event, _, _ in profile.history}
        rows = engine.store.rows(list(weights), columns=["id", "title", "fused_vec"]) if weights else {}
        kept = [i for i in weights if rows.get(i, {}).get("fused_vec") is not None]
        self.items = [(i, rows[i].get("title") or "", events[i], weights[i]) for i in kept]
        self.vectors = np.stack([np.asarray(rows[i]["fused_vec"], np.float32) for i in kept]) if kept else None

    def __call__(self, row: dict[str, Any]) -> list[Because]:
        if self.vectors is None or row.get("fused_vec") is None:
            return []
        sims = self.vectors @ np.asarray(row["fused_vec"], np.float32)
        scored = [
            Because(item, title, event, round(float(sim) * w, 4))
            for (item, title, event, w), sim in zip(self.items, sims, strict=True)
            if sim > 0
        ]
        scored.sort(key=lambda b: -b.contribution)
        # Name only the items that really drove it, not every liked item with a faint similarity.
        return [b for b in scored[: self.top] if b.contribution >= 0.5 * scored[0].contribution]


def cold_start(
    engine: Engine,
    user: str,
    profile: Profile | None,
    *,
    k: int,
    where: str | None,
    modality: str,
    include_seen: bool,
    query: str | None,
) -> RecommendResult:
    """Recommendations without a usable profile (see the module docstring)."""
    who = f"unknown user {user!r}" if profile is None else f"user {user!r} has no positive history yet"
    seen = set() if profile is None or include_seen else set(profile.seen)
    filters = [where] if where else []
    if seen:
        filters.append(f"id NOT IN ({', '.join(sql_quote(i) for i in sorted(seen)[:MAX_EXCLUDE_IN_FILTER])})")
    if query is not None:
        if not query.strip():
            raise InvalidArgumentError("the onboarding query is empty")
        matches = engine.similar(
            text=query, k=k, modality=modality, where=" AND ".join(f"({f})" for f in filters) or None
        )
        items = [Recommendation(m.id, m.title, m.score, 0, matched=m.matched) for m in matches]
        return RecommendResult(user, items, "query", f"{who}: items near the onboarding text")
    popular = engine.users().popular()
    if popular:
        allowed = _allowed_ids(engine, [i for i, _ in popular], filters, modality)
        items = [Recommendation(i, allowed[i], round(s, 6), 0) for i, s in popular if i in allowed][:k]
        if items:
            return RecommendResult(user, items, "popular", f"{who}: recently popular items")
    rows = engine.store.list(
        limit=None,
        where=" AND ".join(f"({f})" for f in filters + _has(modality)) or None,
        columns=["id", "title", "created_at"],
    )
    rows.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
    items = [Recommendation(r["id"], r.get("title") or "", 0.0, 0) for r in rows[:k]]
    return RecommendResult(user, items, "newest", f"{who}: newest items (no interactions recorded yet)")


def _has(modality: str) -> list[str]:
    return [] if modality == "any" else [f"has_{modality}"]


def _allowed_ids(engine: Engine, ids: list[str], filters: list[str], modality: str) -> dict[str, str]:
    clauses = [*filters, *_has(modality), f"id IN ({', '.join(sql_quote(i) for i in ids)})"]
    rows = engine.store.list(limit=None, where=" AND ".join(f"({c})" for c in clauses), columns=["id", "title"])
    return {r["id"]: r.get("title") or "" for r in rows}
