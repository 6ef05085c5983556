"""Full-ranking metrics of one fitted model on one part of a split.

:func:`rank_metrics` scores every candidate item for every user with a target, masks what the
user has already seen, breaks ties in a seeded order (:func:`tie_order`) and accumulates
Recall, NDCG, Precision, F1, HitRate, MRR, MAP, Coverage and Novelty at every K = 1…kmax from one
ranking. :func:`bootstrap_ci` gives the confidence interval over users of any per-user figure
(``rank_metrics(..., per_user=(10,))`` keeps the per-user values it needs). The protocol (what is masked, what counts as a target, the exact formulas) is stated
in :mod:`mmrec.recsys.evaluation`.

Models may import this module (the hybrid validates with :func:`rank_metrics` during training);
it imports nothing but :mod:`mmrec.recsys.data`, so that never makes a cycle.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from mmrec.errors import InvalidArgumentError
from mmrec.recsys.data import InteractionData, Recommender, user_item_matrix

#: Metrics reported per K, in table order.
METRICS = ("recall", "ndcg", "precision", "f1", "hit", "mrr", "map", "coverage", "novelty")
#: The metrics that are a mean over users (Coverage and Novelty are over the lists, not per user).
USER_METRICS = ("recall", "ndcg", "precision", "f1", "hit", "mrr", "map")
METRIC_LABELS = {
    "recall": "Recall",
    "ndcg": "NDCG",
    "precision": "Precision",
    "f1": "F1",
    "hit": "HR",
    "mrr": "MRR",
    "map": "MAP",
    "coverage": "Coverage",
    "novelty": "Novelty",
}


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of the ``k`` highest scores per row, best first; ties go to the lower column.

    Exact under ties: a plain ``argpartition`` picks an arbitrary subset of the items tied at
    the k-th score, so the boundary is resolved explicitly by column order.

    Parameters
    ----------
    scores : np.ndarray
        ``(B, C)`` finite or ``-inf`` scores (no NaN).
    k : int
        ``1 <= k <= C``.

    Returns
    -------
    np.ndarray
        ``(B, k)`` int64 column indices.
    """
    b, c = scores.shape
    rows = np.arange(b)[:, None]
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    kth = scores[rows, part].min(axis=1, keepdims=True)  # the k-th highest score of each row
    above = scores > kth
    tied = scores == kth
    need = k - above.sum(axis=1, keepdims=True)
    take = above | (tied & (np.cumsum(tied, axis=1) <= need))
    cols = np.nonzero(take)[1].reshape(b, k)  # in column order, so ties stay in column order below
    order = np.argsort(-scores[rows, cols], axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1)


class _Accumulator:
    """Sums of per-user metrics at every K = 1…kmax, plus coverage and novelty over the lists."""

    def __init__(self, kmax: int, n_candidates: int, info: np.ndarray, keep: tuple[int, ...] = ()) -> None:
        self.kmax = kmax
        self.n_candidates = n_candidates
        self.info = info  # (n_items,) self-information of each item
        self.sums = {m: np.zeros(kmax) for m in USER_METRICS}
        self.keep = tuple(k for k in keep if 1 <= k <= kmax)  # cut-offs whose per-user values are kept
        self.per_user: dict[str, list[np.ndarray]] = {f"{m}@{k}": [] for m in USER_METRICS for k in self.keep}
        self.info_sum = np.zeros(kmax)
        self.info_count = np.zeros(kmax)
        self.first_rank = np.full(len(info), kmax, np.int64)  # best rank any user saw each item at
        self.users = 0
        ranks = np.arange(1, kmax + 1)
        self.ranks = ranks
        self.discount = 1.0 / np.log2(ranks + 1.0)
        self.ideal = np.cumsum(self.discount)

    def add(self, top: np.ndarray, valid: np.ndarray, hits: np.ndarray, n_rel: np.ndarray) -> None:
        """One batch: ``top``/``valid``/``hits`` ``(B, kmax)`` (item, real entry, relevant), ``n_rel`` ``(B,)`` > 0."""
        ranks = self.ranks
        hits = hits & valid
        cum = np.cumsum(hits, axis=1)
        n_rel = n_rel[:, None].astype(np.float64)
        per: dict[str, np.ndarray] = {}  # metric → (B, kmax) per-user values
        per["precision"] = cum / ranks
        per["recall"] = cum / n_rel
        # F1 per user, then averaged: 2PR / (P + R) = 2 hits / (K + |targets|), 0 without a hit.
        per["f1"] = 2.0 * cum / (ranks + n_rel)
        per["hit"] = (cum > 0).astype(np.float64)
        dcg = np.cumsum(hits * self.discount, axis=1)
        ideal = self.ideal[np.minimum(n_rel, ranks).astype(np.int64) - 1]
        per["ndcg"] = dcg / ideal
        first = np.where(hits.any(axis=1), hits.argmax(axis=1), self.kmax)[:, None]  # 0-based rank of first hit
        per["mrr"] = np.where(first < ranks, 1.0 / (first + 1.0), 0.0)
        ap = np.cumsum(hits * (cum / ranks), axis=1)
        per["map"] = ap / np.minimum(n_rel, ranks)
        for m, v in per.items():
            self.sums[m] += v.sum(axis=0)
            for k in self.keep:
                self.per_user[f"{m}@{k}"].append(v[:, k - 1])
        info = np.where(valid, self.info[np.where(valid, top, 0)], 0.0)
        self.info_sum += np.cumsum(info, axis=1).sum(axis=0)
        self.info_count += np.cumsum(valid, axis=1).sum(axis=0)
        pos = np.broadcast_to(np.arange(self.kmax), top.shape)
        np.minimum.at(self.first_rank, top[valid], pos[valid])
        self.users += len(n_rel)

    def result(self) -> dict[str, np.ndarray]:
        """Metric → ``(kmax,)`` values at K = 1…kmax."""
        n = max(self.users, 1)
        out = {m: v / n for m, v in self.sums.items()}
        out["coverage"] = np.array([(self.first_rank < k).sum() for k in self.ranks]) / max(self.n_candidates, 1)
        out["novelty"] = self.info_sum / np.maximum(self.info_count, 1)
        return out

    def user_values(self) -> dict[str, np.ndarray]:
        """``"metric@k"`` → ``(users,)`` per-user values at the kept cut-offs."""
        return {key: np.concatenate(v) if v else np.zeros(0) for key, v in self.per_user.items()}


@dataclass
class StageResult:
    """Metrics of one model on one part of a split."""

    users: int
    metrics: dict[str, np.ndarray]  # metric → (kmax,) at K = 1…kmax
    seconds: float
    #: ``"metric@k"`` → ``(users,)`` per-user values, for the cut-offs asked for with ``per_user``.
    user_values: dict[str, np.ndarray] = field(default_factory=dict)

    def at(self, metric: str, k: int) -> float:
        """The value of ``metric`` at K = ``k`` (``1 <= k <= kmax``)."""
        return float(self.metrics[metric][k - 1])


def tie_order(n_candidates: int, n_users: int, ties: str = "random", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The tie-break order of :func:`rank_metrics`: ``(perm, offsets)``.

    User ``u`` breaks ties in the order ``perm[(j + offsets[u]) % C]`` for j = 0, 1, …: one
    seeded random permutation of the candidates, rotated by a per-user random offset. One fixed
    order for everyone would give a constant scorer one list for all users (a lucky or unlucky
    draw); the rotation gives each user a different stretch of it at the cost of one gather,
    where a permutation per user would cost a sort.

    Returns
    -------
    perm : np.ndarray
        ``(C,)`` positions into the candidate array (identity for ``ties="index"``).
    offsets : np.ndarray
        ``(n_users,)`` rotations (zeros for ``ties="index"``).
    """
    if ties == "index":
        return np.arange(n_candidates), np.zeros(n_users, np.int64)
    if ties != "random":
        raise InvalidArgumentError(f"ties must be 'random' or 'index', got {ties!r}")
    rng = np.random.default_rng(seed)
    return rng.permutation(n_candidates), rng.integers(0, max(n_candidates, 1), n_users)


def rank_metrics(
    model: Recommender,
    history: InteractionData,
    targets: InteractionData,
    candidates: np.ndarray | None = None,
    *,
    kmax: int = 50,
    batch: int = 256,
    ties: str = "random",
    seed: int = 0,
    per_user: Sequence[int] = (),
) -> StageResult:
    """Rank every candidate for every user with a target and accumulate the metrics at K = 1…kmax.

    Parameters
    ----------
    model : Recommender
        Already fitted.
    history : InteractionData
        Passed to ``model.score``; every item in it is masked for its user.
    targets : InteractionData
        The held-out interactions; its positive ones (minus masked items) are the relevant items.
    candidates : np.ndarray, optional
        ``(C,)`` item indices to rank; default all items.
    kmax : int
        Largest K needed.
    batch : int
        Users scored per call of ``model.score`` (memory is about ``batch × n_items × 14`` bytes).
    ties : {"random", "index"}
        Tie-break order (:func:`tie_order`).
    seed : int
        Seed of the random tie-break order.
    per_user : sequence of int
        Cut-offs whose per-user values are kept in ``StageResult.user_values`` (for :func:`bootstrap_ci`).
    """
    if kmax < 1 or batch < 1:
        raise InvalidArgumentError(f"kmax and batch must be >= 1, got {kmax} and {batch}")
    n_items = history.n_items
    cands = np.arange(n_items) if candidates is None else np.asarray(candidates, np.int64)
    c = len(cands)
    perm, offsets = tie_order(c, history.n_users, ties, seed)
    cands = cands[perm]
    seen = user_item_matrix(history, positive=False)
    relevant = user_item_matrix(targets, positive=True)
    import scipy.sparse as sp  # here, not at import: the engine's start-up does not pay for scipy

    in_cands = np.zeros(n_items, bool)
    in_cands[cands] = True
    relevant = (relevant @ sp.diags(in_cands.astype(np.float32))).tocsr()
    relevant = (relevant - relevant.multiply(seen)).tocsr()  # a known item cannot be a target
    relevant.eliminate_zeros()
    n_rel_all = np.diff(relevant.indptr)
    users = np.flatnonzero(n_rel_all > 0)
    # Novelty: popularity among users in the history the model was given.
    info = -np.log2((np.diff(seen.tocsc().indptr) + 1.0) / (history.n_users + 1.0))
    acc = _Accumulator(kmax, c, info, tuple(per_user))
    k_eff = min(kmax, c)
    lo, hi = np.finfo(np.float32).min, np.finfo(np.float32).max
    t0 = time.perf_counter()
    for s in range(0, len(users), batch):
        ub = users[s : s + batch]
        rows = np.arange(len(ub))[:, None]
        raw = np.asarray(model.score(ub, history), dtype=np.float32)
        if raw.shape != (len(ub), n_items):
            raise ValueError(
                f"{getattr(model, 'name', model)}.score returned shape {raw.shape}, expected {(len(ub), n_items)}"
            )
        raw = np.nan_to_num(raw, nan=lo, posinf=hi, neginf=lo)  # -inf is reserved for masked items
        raw[seen[ub].toarray() > 0] = -np.inf
        # column j of user r holds item cands[(j + offset_r) % C]: top_k's column order is the tie order
        order = cands[(np.arange(c)[None, :] + offsets[ub][:, None]) % c]
        scores = raw[rows, order]
        top = np.zeros((len(ub), kmax), np.int64)
        valid = np.zeros((len(ub), kmax), bool)
        cols = top_k(scores, k_eff)
        top[:, :k_eff] = np.take_along_axis(order, cols, axis=1)  # item indices
        valid[:, :k_eff] = np.take_along_axis(scores, cols, axis=1) > -np.inf
        hits = np.take_along_axis(relevant[ub].toarray() > 0, top, axis=1) & valid
        acc.add(top, valid, hits, n_rel_all[ub])
    return StageResult(len(users), acc.result(), time.perf_counter() - t0, acc.user_values())


def bootstrap_ci(
    values: np.ndarray,
    counts: np.ndarray | None = None,
    *,
    transform: Callable[[np.ndarray], np.ndarray] | None = None,
    n_boot: int = 1000,
    level: float = 0.95,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap confidence interval over users of a per-user figure.

    Users are resampled with replacement ``n_boot`` times; each resample's statistic is
    ``Σ values / Σ counts`` over the drawn users (the mean when ``counts`` is omitted), passed
    through ``transform``. Resampling users, not interactions, keeps one user's correlated
    interactions together, which is what "another set of users" would vary.

    Parameters
    ----------
    values : np.ndarray
        ``(U,)`` per-user values (e.g. NDCG@10), or per-user sums (e.g. squared errors).
    counts : np.ndarray, optional
        ``(U,)`` per-user denominators (e.g. the number of ratings): the statistic is then a ratio
        of sums, as MAE and MSE over ratings are.
    transform : callable, optional
        Applied to the ``(n_boot,)`` statistics (``np.sqrt`` turns MSE into RMSE).
    n_boot : int
        Resamples (1,000 gives the 2.5 % / 97.5 % percentiles to about ±0.1 standard error).
    level : float
        Coverage of the interval, in (0, 1).
    seed : int

    Returns
    -------
    (low, high) : tuple of float
        ``(nan, nan)`` for no users.
    """
    v = np.asarray(values, np.float64)
    if counts is not None and np.shape(counts) != v.shape:
        raise InvalidArgumentError(f"counts must have the shape of values {v.shape}, got {np.shape(counts)}")
    if not 0.0 < level < 1.0 or n_boot < 1:
        raise InvalidArgumentError(f"level must be in (0, 1) and n_boot >= 1, got {level!r} and {n_boot!r}")
    if v.size == 0:
        return float("nan"), float("nan")
    c = np.ones_like(v) if counts is None else np.asarray(counts, np.float64)
    rng = np.random.default_rng(seed)
    # Drawn users as multiplicities per user: (chunk, U) @ (U,) is one matrix product, no gather;
    # chunks keep the draws near 40 MB whatever the number of users.
    chunk = max(1, 5_000_000 // len(v))
    parts = []
    for start in range(0, n_boot, chunk):
        draws = rng.multinomial(len(v), np.full(len(v), 1.0 / len(v)), size=min(chunk, n_boot - start))
        draws = draws.astype(np.float64)
        parts.append((draws @ v) / np.maximum(draws @ c, 1e-12))
    stats = np.concatenate(parts)
    if transform is not None:
        stats = transform(stats)
    alpha = (1.0 - level) / 2.0
    lo, hi = np.quantile(stats, [alpha, 1.0 - alpha])
    return float(lo), float(hi)
