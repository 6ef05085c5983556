"""Offline evaluation: splits, full-ranking metrics, tuning and model comparison.

Everything works on an :class:`~mmrec.recsys.InteractionData` and any
:class:`~mmrec.recsys.Recommender`::

    data = interaction_data(Engine("movielens.db"))
    split = leave_last_out(data)
    results = evaluate([MostPopular(), ALS()], split, ks=(10, 20))
    print(format_markdown(results, ks=(10, 20)))

Protocol, stated once because it decides the numbers:

* **Full ranking.** A user's scores over *all* items (or over the split's
  candidate set, for item cold-start) are ranked; no sampled negatives. Items
  the user already interacted with are masked: the training interactions when
  validating, training + validation when testing.
* **Targets** are the user's positive (weight > 0) interactions in the
  evaluated part, minus items already in the masked history (a repeat of a
  known item cannot be recommended, so it cannot count). Users with no target
  left are not evaluated.
* **Ties** in the scores are broken in a seeded random order (a random
  permutation of the items, rotated by a random offset per user:
  :func:`tie_order`), not by item index: in MovieLens the item id is strongly
  anti-correlated with popularity, so an index tie-break would reward a model
  that gives many items the same score (MostPopular and ALS on cold items).
  ``ties="index"`` gives the deterministic lower-index-first order (tests).
* **Metrics** at K (per user, then averaged over evaluated users):
  Recall = hits / |targets|; Precision = hits / K; HitRate = 1 if any hit;
  NDCG = DCG / ideal DCG with ``1/log2(rank + 1)`` gains and the ideal list of
  ``min(K, |targets|)`` hits; MRR = 1 / rank of the first hit (0 beyond K);
  MAP = Σ_{hits at rank i ≤ K} Precision@i / min(K, |targets|). Over the lists:
  Coverage = share of candidate items that appear in anyone's top K; Novelty =
  mean self-information ``-log2 p(i)`` of the recommended items, with ``p(i)``
  the Laplace-smoothed share of users who have ``i`` in the masked history
  (``(n_i + 1) / (n_users + 1)``, finite for never-seen items).
* The top ``max(ks, curve)`` is computed once per batch and every metric at
  every K up to it comes from cumulative sums, so NDCG@1…50 costs one ranking.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from mmrec.errors import InvalidArgumentError
from mmrec.names import MODEL_NAMES, PROTOCOLS
from mmrec.recsys.data import InteractionData, Recommender

if TYPE_CHECKING:
    from mmrec.engine import Engine

#: Metrics reported per K, in table order.
METRICS = ("recall", "ndcg", "precision", "hit", "mrr", "map", "coverage", "novelty")
METRIC_LABELS = {
    "recall": "Recall",
    "ndcg": "NDCG",
    "precision": "Precision",
    "hit": "HR",
    "mrr": "MRR",
    "map": "MAP",
    "coverage": "Coverage",
    "novelty": "Novelty",
}


# --------------------------------------------------------------------------- data helpers


def concat(*parts: InteractionData) -> InteractionData:
    """The interactions of several parts of one split, in one :class:`InteractionData` (same index space)."""
    first = parts[0]
    return InteractionData(
        first.user_ids,
        first.item_ids,
        np.concatenate([p.users for p in parts]),
        np.concatenate([p.items for p in parts]),
        np.concatenate([p.ts for p in parts]),
        np.concatenate([p.weights for p in parts]),
        first.item_vectors,
    )


def user_item_matrix(data: InteractionData, *, positive: bool = True) -> sp.csr_matrix:
    """``(n_users, n_items)`` float32 CSR of the user–item pairs.

    Parameters
    ----------
    data : InteractionData
    positive : bool
        True: 1 where the pair's *summed* weight is > 0, so a view followed by a dislike
        is not a positive and negative events never become positives for matrix
        factorisation. False: 1 for every pair with any interaction (what is masked).
    """
    shape = (data.n_users, data.n_items)
    vals = data.weights.astype(np.float32) if positive else np.ones(len(data), np.float32)
    m = sp.coo_matrix((vals, (data.users, data.items)), shape=shape).tocsr()  # duplicates are summed
    m.sum_duplicates()
    m.data = (m.data > 0).astype(np.float32)
    m.eliminate_zeros()
    return m


def _natural_key(s: str) -> list[Any]:
    # "movie/2" before "movie/10": item order decides tie-breaks in time (leave-last-out), so it
    # must follow the numbers in the ids, not their spelling.
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def interaction_data(engine: Engine, *, implicit: bool = False) -> InteractionData:
    """The database's interactions and fused item vectors as an :class:`InteractionData`.

    Items are every stored item (with or without interactions), users every user with at least
    one interaction on a stored item; both are indexed in natural id order ("movie/2" before
    "movie/10"). Interactions on items no longer in the catalog are dropped.

    Parameters
    ----------
    engine : Engine
    implicit : bool
        Treat every interaction as a positive of weight 1 (the standard implicit-feedback
        protocol, e.g. "every MovieLens rating is an interaction"); by default the stored event
        weights are kept (skips, dislikes and low ratings are negative or zero).

    Raises
    ------
    InvalidArgumentError
        When the database has no interactions.
    """
    import pyarrow.compute as pc

    store = engine.store
    tbl = store.items().search().select(["id", "fused_vec"]).limit(None).to_arrow()
    raw_ids = tbl.column("id").to_pylist()
    order = sorted(range(len(raw_ids)), key=lambda i: _natural_key(raw_ids[i]))
    item_ids = [raw_ids[i] for i in order]
    col = tbl.column("fused_vec").combine_chunks()
    dim = col.type.list_size
    # .values includes the slots of null vectors (as NaN or garbage); zero them as the contract says.
    vecs = np.asarray(col.values.to_numpy(zero_copy_only=False), np.float32)[col.offset * dim :]
    vecs = vecs[: len(col) * dim].reshape(len(col), dim)
    vecs = np.where(np.asarray(col.is_valid())[:, None], np.nan_to_num(vecs), 0.0).astype(np.float32)
    item_vectors = vecs[order]

    inter = engine.users().interactions()
    if inter is None or inter.count_rows() == 0:
        raise InvalidArgumentError(f"database {store.uri!r} has no interactions; import some first")
    t = inter.search().select(["user", "item", "weight", "ts"]).limit(None).to_arrow()
    item_index = {iid: i for i, iid in enumerate(item_ids)}
    items_all = np.array([item_index.get(x, -1) for x in t.column("item").to_pylist()], np.int64)
    keep = items_all >= 0
    users_raw = np.asarray(t.column("user").to_pylist(), dtype=object)[keep]
    user_ids = sorted(set(users_raw.tolist()), key=_natural_key)
    user_index = {u: i for i, u in enumerate(user_ids)}
    ts_us = pc.cast(t.column("ts"), "int64").to_numpy(zero_copy_only=False)[keep]
    weights = np.asarray(t.column("weight").to_numpy(zero_copy_only=False), np.float32)[keep]
    if implicit:
        weights = np.ones_like(weights)
    return InteractionData(
        user_ids=user_ids,
        item_ids=item_ids,
        users=np.array([user_index[u] for u in users_raw], np.int32),
        items=items_all[keep].astype(np.int32),
        ts=(ts_us // 1_000_000).astype(np.int64),
        weights=weights,
        item_vectors=item_vectors,
    )


# --------------------------------------------------------------------------- splits


@dataclass
class Split:
    """Train / validation / test parts of one :class:`InteractionData` (same index space).

    Attributes
    ----------
    protocol : str
        One of :data:`PROTOCOLS`.
    train, valid, test : InteractionData
    valid_candidates, test_candidates : np.ndarray or None
        ``(C,)`` item indices ranked when validating / testing; ``None`` = every item.
    """

    protocol: str
    train: InteractionData
    valid: InteractionData
    test: InteractionData
    valid_candidates: np.ndarray | None = None
    test_candidates: np.ndarray | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def stage(self, name: str) -> tuple[InteractionData, InteractionData, np.ndarray | None]:
        """``(history, targets, candidates)`` for ``"valid"`` (history = train) or ``"test"`` (train + valid)."""
        if name == "valid":
            return self.train, self.valid, self.valid_candidates
        if name == "test":
            return concat(self.train, self.valid), self.test, self.test_candidates
        raise ValueError(f"unknown stage {name!r}; use 'valid' or 'test'")

    def describe(self) -> dict[str, Any]:
        """Sizes of the parts, for reports."""
        out: dict[str, Any] = {"protocol": self.protocol, **self.params}
        for name in ("train", "valid", "test"):
            part: InteractionData = getattr(self, name)
            out[name] = {"interactions": len(part), "users": int(len(np.unique(part.users)))}
        for name in ("valid_candidates", "test_candidates"):
            cands = getattr(self, name)
            out[name] = None if cands is None else len(cands)
        return out


def _parts(data: InteractionData, part: np.ndarray) -> tuple[InteractionData, InteractionData, InteractionData]:
    return data.subset(part == 0), data.subset(part == 1), data.subset(part == 2)


def leave_last_out(data: InteractionData) -> Split:
    """Per user in time order (ties by item index): last positive → test, second-last → validation.

    Users with fewer than 3 positive interactions keep everything in train. Non-positive
    interactions (skips, dislikes) are never targets; they go to the part of the time they
    happened in: after the test positive → test, after the validation positive → validation,
    else train (so nothing from the future leaks into the history).
    """
    o = data.chronological()
    u = data.users[o]
    pos = data.weights[o] > 0
    n_pos = np.bincount(u[pos], minlength=data.n_users)
    start = np.concatenate([[0], np.cumsum(n_pos)[:-1]])  # first global positive number of each user
    pidx = np.full(len(o), -1, np.int64)
    pidx[pos] = (np.cumsum(pos) - 1)[pos] - start[u[pos]]  # index within the user's positive sequence
    eligible = n_pos[u] >= 3
    is_test = pos & eligible & (pidx == n_pos[u] - 1)
    is_valid = pos & eligible & (pidx == n_pos[u] - 2)
    # positions (in chronological order) of each user's test and validation positives
    where = np.arange(len(o))
    test_at = np.full(data.n_users, len(o) + 1, np.int64)
    valid_at = np.full(data.n_users, len(o) + 1, np.int64)
    test_at[u[is_test]] = where[is_test]
    valid_at[u[is_valid]] = where[is_valid]
    role = np.zeros(len(o), np.int8)
    role[~pos & (where > valid_at[u])] = 1
    role[~pos & (where > test_at[u])] = 2
    role[is_valid] = 1
    role[is_test] = 2
    part = np.empty(len(o), np.int8)
    part[o] = role
    return Split("leave-last-out", *_parts(data, part))


def _check_fractions(test_fraction: float, valid_fraction: float) -> None:
    if not (0 < test_fraction < 1 and 0 <= valid_fraction < 1 and test_fraction + valid_fraction < 1):
        raise InvalidArgumentError(
            f"need 0 < test_fraction < 1, 0 <= valid_fraction < 1 and their sum < 1; "
            f"got {test_fraction} and {valid_fraction}"
        )


def global_temporal(data: InteractionData, test_fraction: float = 0.1, valid_fraction: float = 0.1) -> Split:
    """One time cut for everyone: the newest ``test_fraction`` of interactions → test, the ``valid_fraction`` before → validation.

    Interactions are ordered by (time, user, item), so ties at a cut are split deterministically.
    Test users may have no training history (they are evaluated as cold users).
    """
    _check_fractions(test_fraction, valid_fraction)
    o = np.lexsort((data.items, data.users, data.ts))
    n = len(o)
    n_test, n_valid = round(n * test_fraction), round(n * valid_fraction)
    role = np.zeros(n, np.int8)
    role[n - n_test - n_valid : n - n_test] = 1
    role[n - n_test :] = 2
    part = np.empty(n, np.int8)
    part[o] = role
    return Split(
        "global-temporal",
        *_parts(data, part),
        params={"test_fraction": test_fraction, "valid_fraction": valid_fraction},
    )


def random_split(
    data: InteractionData, test_fraction: float = 0.1, valid_fraction: float = 0.1, seed: int = 0
) -> Split:
    """Interactions assigned to test / validation / train uniformly at random (seeded)."""
    _check_fractions(test_fraction, valid_fraction)
    n = len(data)
    perm = np.random.default_rng(seed).permutation(n)
    n_test, n_valid = round(n * test_fraction), round(n * valid_fraction)
    part = np.zeros(n, np.int8)
    part[perm[:n_test]] = 2
    part[perm[n_test : n_test + n_valid]] = 1
    return Split(
        "random",
        *_parts(data, part),
        params={"test_fraction": test_fraction, "valid_fraction": valid_fraction, "seed": seed},
    )


def item_cold_start(data: InteractionData, fraction: float = 0.2, seed: int = 0, valid_fraction: float = 0.1) -> Split:
    """Hold items out of training entirely: a model must recommend items nobody has touched.

    ``fraction`` of all items (seeded draw) are test items: every interaction with them goes to
    test, and at test time only they are ranked. Another ``valid_fraction`` of all items, drawn
    from the rest, are validation items in the same way (for tuning and early stopping on cold
    items). Training holds the interactions with the remaining items.
    """
    _check_fractions(fraction, valid_fraction)
    perm = np.random.default_rng(seed).permutation(data.n_items)
    n_test, n_valid = round(data.n_items * fraction), round(data.n_items * valid_fraction)
    test_items, valid_items = np.sort(perm[:n_test]), np.sort(perm[n_test : n_test + n_valid])
    item_part = np.zeros(data.n_items, np.int8)
    item_part[valid_items] = 1
    item_part[test_items] = 2
    return Split(
        "item-cold-start",
        *_parts(data, item_part[data.items]),
        valid_candidates=valid_items.astype(np.int32) if n_valid else None,
        test_candidates=test_items.astype(np.int32),
        params={"fraction": fraction, "valid_fraction": valid_fraction, "seed": seed},
    )


def make_split(data: InteractionData, protocol: str, seed: int = 0) -> Split:
    """The split for a protocol name (:data:`PROTOCOLS`) with its default fractions."""
    if protocol == "leave-last-out":
        return leave_last_out(data)
    if protocol == "global-temporal":
        return global_temporal(data)
    if protocol == "random":
        return random_split(data, seed=seed)
    if protocol == "item-cold-start":
        return item_cold_start(data, seed=seed)
    raise InvalidArgumentError(f"unknown protocol {protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")


# --------------------------------------------------------------------------- ranking and metrics


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

    def __init__(self, kmax: int, n_candidates: int, info: np.ndarray) -> None:
        self.kmax = kmax
        self.n_candidates = n_candidates
        self.info = info  # (n_items,) self-information of each item
        self.sums = {m: np.zeros(kmax) for m in ("recall", "ndcg", "precision", "hit", "mrr", "map")}
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
        s = self.sums
        s["precision"] += (cum / ranks).sum(axis=0)
        s["recall"] += (cum / n_rel).sum(axis=0)
        s["hit"] += (cum > 0).sum(axis=0)
        dcg = np.cumsum(hits * self.discount, axis=1)
        ideal = self.ideal[np.minimum(n_rel, ranks).astype(np.int64) - 1]
        s["ndcg"] += (dcg / ideal).sum(axis=0)
        first = np.where(hits.any(axis=1), hits.argmax(axis=1), self.kmax)[:, None]  # 0-based rank of first hit
        s["mrr"] += np.where(first < ranks, 1.0 / (first + 1.0), 0.0).sum(axis=0)
        ap = np.cumsum(hits * (cum / ranks), axis=1)
        s["map"] += (ap / np.minimum(n_rel, ranks)).sum(axis=0)
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


@dataclass
class StageResult:
    """Metrics of one model on one part of a split."""

    users: int
    metrics: dict[str, np.ndarray]  # metric → (kmax,) at K = 1…kmax
    seconds: float

    def at(self, metric: str, k: int) -> float:
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
    in_cands = np.zeros(n_items, bool)
    in_cands[cands] = True
    relevant = (relevant @ sp.diags(in_cands.astype(np.float32))).tocsr()
    relevant = (relevant - relevant.multiply(seen)).tocsr()  # a known item cannot be a target
    relevant.eliminate_zeros()
    n_rel_all = np.diff(relevant.indptr)
    users = np.flatnonzero(n_rel_all > 0)
    # Novelty: popularity among users in the history the model was given.
    info = -np.log2((np.diff(seen.tocsc().indptr) + 1.0) / (history.n_users + 1.0))
    acc = _Accumulator(kmax, c, info)
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
    return StageResult(len(users), acc.result(), time.perf_counter() - t0)


# --------------------------------------------------------------------------- evaluate, tune


def _name(model: Recommender) -> str:
    return str(getattr(model, "name", type(model).__name__))


def _stage_summary(res: StageResult, ks: Sequence[int]) -> dict[str, Any]:
    out: dict[str, Any] = {"users": res.users, "seconds": round(res.seconds, 3)}
    for m in METRICS:
        for k in ks:
            out[f"{m}@{k}"] = round(res.at(m, k), 6)
    return out


def evaluate(
    models: Sequence[Recommender] | Mapping[str, Recommender],
    split: Split,
    ks: Sequence[int] = (5, 10, 20),
    batch: int = 256,
    *,
    fit: bool = True,
    curve: int = 50,
    stages: Sequence[str] = ("valid", "test"),
    ties: str = "random",
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Fit (optionally) and evaluate models on a split.

    Parameters
    ----------
    models : sequence of Recommender, or mapping name → Recommender
        Sequence entries are named by their ``name`` attribute.
    split : Split
    ks : sequence of int
        The K values reported for every metric.
    batch : int
        Users per ``score`` call.
    fit : bool
        Call ``model.fit(split.train, split.valid)`` first (False for models already fitted,
        e.g. by :func:`tune`).
    curve : int
        Also report NDCG@K for K = 1…curve (0 for none); the top ``max(ks, curve)`` is ranked once.
    stages : sequence of {"valid", "test"}
    ties, seed :
        See :func:`rank_metrics`.
    log : callable, optional
        Progress lines.

    Returns
    -------
    dict
        ``{"split": split.describe(), "ks": [...], "models": {name: {"fit_seconds": …,
        "valid": {"users": …, "ndcg@10": …}, "test": {…}, "ndcg_curve": [… curve values on test]}}}``.
    """
    if not ks or min(ks) < 1:
        raise InvalidArgumentError(f"ks must be positive integers, got {list(ks)}")
    if isinstance(models, Mapping):
        named = dict(models)
    else:
        named = {}
        for m in models:  # two models of one class (e.g. two ALS settings) must not overwrite each other
            name, n = _name(m), 2
            while name in named:
                name, n = f"{_name(m)} #{n}", n + 1
            named[name] = m
    kmax = max(max(ks), curve)
    out: dict[str, Any] = {"split": split.describe(), "ks": list(ks), "models": {}}
    for name, model in named.items():
        entry: dict[str, Any] = {}
        if fit:
            t0 = time.perf_counter()
            model.fit(split.train, split.valid)
            entry["fit_seconds"] = round(time.perf_counter() - t0, 3)
        for stage in stages:
            history, targets, cands = split.stage(stage)
            res = rank_metrics(model, history, targets, cands, kmax=kmax, batch=batch, ties=ties, seed=seed)
            entry[stage] = _stage_summary(res, ks)
            if stage == "test" and curve:
                entry["ndcg_curve"] = [round(float(x), 6) for x in res.metrics["ndcg"][:curve]]
        if hasattr(model, "params"):
            entry.setdefault("params", dict(model.params))
        out["models"][name] = entry
        if log:
            shown = [f"{s} NDCG@{ks[0]} {entry[s][f'ndcg@{ks[0]}']:.4f}" for s in stages]
            log(f"{name}: " + ", ".join(shown))
    return out


@dataclass
class TuneResult:
    """The best model of a grid (already fitted on train) and every combination's validation score."""

    model: Recommender
    params: dict[str, Any]
    score: float
    trials: list[dict[str, Any]]
    seconds: float


def grid_points(grid: Mapping[str, Sequence[Any]]) -> list[dict[str, Any]]:
    """Every combination of a parameter grid, in order: ``{"a": [1, 2], "b": [3]}`` → ``[{a:1,b:3}, {a:2,b:3}]``."""
    keys = list(grid)
    return [dict(zip(keys, vals, strict=True)) for vals in itertools.product(*(grid[k] for k in keys))]


def tune(
    model_factory: Callable[..., Recommender],
    grid: Mapping[str, Sequence[Any]],
    train: InteractionData,
    valid: InteractionData,
    *,
    candidates: np.ndarray | None = None,
    k: int = 10,
    batch: int = 256,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> TuneResult:
    """Fit ``model_factory(**params)`` for every grid point on ``train``; keep the best NDCG@k on ``valid``.

    Validation ranks with ``train`` as the history (masked), over ``candidates`` (all items by
    default). The first best point wins ties, so grids should list the cheaper setting first.
    """
    t0 = time.perf_counter()
    best: tuple[float, Recommender, dict[str, Any]] | None = None
    trials: list[dict[str, Any]] = []
    for params in grid_points(grid) or [{}]:
        model = model_factory(**params)
        t1 = time.perf_counter()
        model.fit(train, valid)
        res = rank_metrics(model, train, valid, candidates, kmax=k, batch=batch, seed=seed)
        score = res.at("ndcg", k)
        trials.append({"params": params, f"ndcg@{k}": round(score, 6), "seconds": round(time.perf_counter() - t1, 3)})
        if log:
            log(f"  {_name(model)} {params}: valid NDCG@{k} {score:.4f}")
        if best is None or score > best[0]:
            best = (score, model, params)
    assert best is not None
    return TuneResult(best[1], best[2], best[0], trials, time.perf_counter() - t0)


# --------------------------------------------------------------------------- named models and comparisons

#: Model names accepted by ``mmrec evaluate --models`` and :func:`compare`.
DEFAULT_MODELS = MODEL_NAMES


def model_spec(name: str, seed: int = 0) -> tuple[Callable[..., Recommender], dict[str, list[Any]]]:
    """``(factory, tuning grid)`` of a named model; ``hybrid`` is imported only when asked for.

    Raises
    ------
    InvalidArgumentError
        For an unknown name (the message lists the valid ones), or ``hybrid`` when
        :mod:`mmrec.recsys.hybrid` cannot be imported.
    """
    from mmrec.recsys import baselines as b

    specs: dict[str, tuple[Callable[..., Recommender], dict[str, list[Any]]]] = {
        "random": (lambda: b.Random(seed=seed), {}),
        "popular": (b.MostPopular, {}),
        "itemknn": (b.ItemKNN, {"k": [50, 200], "shrinkage": [0.0, 10.0]}),
        "als": (
            lambda **p: b.ALS(random_state=seed, **p),
            {"factors": [32, 64, 128], "regularization": [0.01, 0.1], "iterations": [15]},
        ),
        "bpr": (lambda **p: b.BPR(random_state=seed, **p), {"factors": [32, 64], "learning_rate": [0.01, 0.05]}),
        "content": (b.ContentKNN, {"half_life": [0.5, 1.0, 2.0, 5.0, None]}),
    }
    if name in specs:
        return specs[name]
    if name == "hybrid":
        try:
            from mmrec.recsys.hybrid import HybridRecommender
        except ImportError as e:
            raise InvalidArgumentError(f"model 'hybrid' is not available: cannot import mmrec.recsys.hybrid ({e})") from e
        return (lambda: HybridRecommender(config=None)), {}
    raise InvalidArgumentError(f"unknown model {name!r}; valid models: {', '.join(MODEL_NAMES)}")


def parse_models(text: str | Iterable[str]) -> list[str]:
    """``"popular, als"`` → ``["popular", "als"]``, checked against :data:`MODEL_NAMES`."""
    names = [n.strip().lower() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    bad = [n for n in names if n not in MODEL_NAMES]
    if bad or not names:
        raise InvalidArgumentError(
            f"unknown model(s) {', '.join(repr(n) for n in bad) or '(none given)'}; valid models: {', '.join(MODEL_NAMES)}"
        )
    return list(dict.fromkeys(names))


def hybrid_available() -> bool:
    """Whether ``mmrec.recsys.hybrid`` imports (the trained hybrid is optional in a comparison)."""
    try:
        import mmrec.recsys.hybrid  # noqa: F401
    except ImportError:
        return False
    return True


def default_models() -> list[str]:
    """Every model name; ``hybrid`` only when it imports (asking for it by name gives a clear error instead)."""
    return [n for n in MODEL_NAMES if n != "hybrid" or hybrid_available()]


def compare(
    data: InteractionData,
    protocol: str = "leave-last-out",
    models: Sequence[str] = DEFAULT_MODELS,
    *,
    ks: Sequence[int] = (5, 10, 20),
    seed: int = 0,
    tune_models: bool = True,
    curve: int = 50,
    batch: int = 256,
    split: Split | None = None,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Split ``data``, fit (tuning the baselines on validation) and evaluate named models.

    Parameters
    ----------
    data : InteractionData
    protocol : str
        One of :data:`PROTOCOLS` (ignored when ``split`` is given).
    models : sequence of str
        Names from :data:`MODEL_NAMES`.
    ks, curve, batch :
        See :func:`evaluate`.
    seed : int
        Split (random, cold-start), model and tie-break seed.
    tune_models : bool
        Tune models with a grid by validation NDCG@10 (:func:`tune`); else use the first grid point.
    split : Split, optional
        A ready split.
    log : callable, optional

    Returns
    -------
    dict
        :func:`evaluate`'s result plus, per model, ``fit_seconds``, ``params`` and ``tuning`` trials.
    """
    names = parse_models(models)
    split = split or make_split(data, protocol, seed=seed)
    fitted: dict[str, Recommender] = {}
    extra: dict[str, dict[str, Any]] = {}
    for name in names:
        factory, grid = model_spec(name, seed)
        points = grid_points(grid)
        if log:
            log(f"{split.protocol}: fitting {name} ({max(len(points), 1)} setting(s))")
        t0 = time.perf_counter()
        if tune_models and len(points) > 1:
            res = tune(factory, grid, split.train, split.valid, candidates=split.valid_candidates, seed=seed, log=log)
            model, info = res.model, {"params": res.params, "tuning": res.trials}
        else:
            params = points[0] if points else {}
            model = factory(**params)
            model.fit(split.train, split.valid)
            info = {"params": params} if params else {}
        info["fit_seconds"] = round(time.perf_counter() - t0, 3)
        key = _name(model)
        fitted[key] = model
        extra[key] = info
    out = evaluate(fitted, split, ks, batch, fit=False, curve=curve, seed=seed, log=log)
    for key, info in extra.items():
        out["models"][key].update(info)
    out["seed"] = seed
    return out


# --------------------------------------------------------------------------- reporting


def format_markdown(
    results: dict[str, Any],
    ks: Sequence[int] | None = None,
    metrics: Sequence[str] = METRICS,
    stage: str = "test",
) -> str:
    """A markdown table: one row per model, one column per metric@K (``ks`` default: the results' ks)."""
    ks = list(ks or results["ks"])
    cols = [(m, k) for k in ks for m in metrics]
    head = "| model | " + " | ".join(f"{METRIC_LABELS.get(m, m)}@{k}" for m, k in cols) + " |"
    lines = [head, "|---|" + "---:|" * len(cols)]
    for name, entry in results["models"].items():
        vals = entry.get(stage, {})
        cells = []
        for m, k in cols:
            v = vals.get(f"{m}@{k}")
            cells.append("–" if v is None else f"{v:.2f}" if m == "novelty" else f"{v:.4f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def to_json(results: dict[str, Any]) -> str:
    """JSON text of a results dict (NaN and infinities become null)."""

    def clean(x: Any) -> Any:
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, (np.integer,)):
            return int(x)
        if isinstance(x, (float, np.floating)):
            return None if not math.isfinite(float(x)) else float(x)
        return x

    return json.dumps(clean(results), indent=2)
