"""Baseline recommenders for offline evaluation (:class:`~mmrec.recsys.Recommender` implementations).

* :class:`Random` — the floor.
* :class:`MostPopular` — positive interactions per item in train.
* :class:`ItemKNN` — item–item cosine on co-occurrence, top-k neighbours, shrinkage.
* :class:`ALS`, :class:`BPR` — matrix factorisation from ``implicit`` (CPU), binary positives.
* :class:`ContentKNN` — content vectors alone: recency-weighted mean of the history's item
  vectors, cosine to every item (what the fused vectors can do without any collaborative signal).

Collaborative models only ever see *positive* user–item pairs (summed event weight > 0):
a dislike or a 1-star rating must not turn into "liked" in a matrix. Grids for
:func:`mmrec.recsys.evaluation.tune` live in :mod:`mmrec.recsys.models`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from mmrec.recsys.data import InteractionData, user_item_matrix

#: implicit's parallel loops use this many threads: the benchmark machines have 2 cores, and a
#: fixed count keeps timings comparable (0 would mean "all cores" and oversubscribe with BLAS).
NUM_THREADS = 2


class _HistoryMatrix:
    """``user_item_matrix(history)`` built once per history object (``score`` is called batch by batch)."""

    def __init__(self) -> None:
        self._key: InteractionData | None = None
        self._matrix: sp.csr_matrix | None = None

    def __call__(self, history: InteractionData) -> sp.csr_matrix:
        if self._key is not history or self._matrix is None:
            self._key, self._matrix = history, user_item_matrix(history)
        return self._matrix


class Random:
    """Uniform random scores (seeded): what any model must beat."""

    name = "Random"

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        self.params: dict[str, Any] = {"seed": seed}
        self._rng = np.random.default_rng(seed)
        self._n_items = 0

    def fit(self, train: InteractionData, valid: InteractionData | None = None) -> None:
        self._rng = np.random.default_rng(self.seed)
        self._n_items = train.n_items

    def score(self, users: np.ndarray, history: InteractionData) -> np.ndarray:
        return self._rng.random((len(users), history.n_items), dtype=np.float32)


class MostPopular:
    """Items by their number of positive interactions in train; the same list for everyone."""

    name = "MostPopular"

    def __init__(self) -> None:
        self.params: dict[str, Any] = {}
        self.counts = np.zeros(0, np.float32)

    def fit(self, train: InteractionData, valid: InteractionData | None = None) -> None:
        self.counts = train.counts_per_item().astype(np.float32)

    def score(self, users: np.ndarray, history: InteractionData) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(users), len(self.counts))).copy()


class ItemKNN:
    """Item-based k-nearest neighbours (Sarwar et al. 2001; Deshpande & Karypis 2004).

    ``sim(i, j) = |U_i ∩ U_j| / (sqrt(|U_i|·|U_j|) + shrinkage)`` over the users with a positive
    interaction; each item keeps its ``k`` most similar items. A user's score for ``j`` is the sum
    of ``sim(i, j)`` over the items ``i`` in their history (the history given at scoring time,
    so validation items count at test time).

    Parameters
    ----------
    k : int
        Neighbours kept per item.
    shrinkage : float
        Added to the cosine denominator: damps similarities resting on few co-occurrences.
    """

    name = "ItemKNN"

    def __init__(self, k: int = 100, shrinkage: float = 0.0) -> None:
        self.k = k
        self.shrinkage = shrinkage
        self.params: dict[str, Any] = {"k": k, "shrinkage": shrinkage}
        self.sim: sp.csr_matrix | None = None
        self._history = _HistoryMatrix()

    def fit(self, train: InteractionData, valid: InteractionData | None = None) -> None:
        x = user_item_matrix(train)  # (U, I) binary positives
        co = (x.T @ x).tocsr().astype(np.float32)  # (I, I) co-occurrence counts
        norms = np.sqrt(co.diagonal()).astype(np.float32)
        co.setdiag(0)
        co.eliminate_zeros()
        co = co.tocoo()
        vals = co.data / (norms[co.row] * norms[co.col] + self.shrinkage)
        sim = sp.csr_matrix((vals.astype(np.float32), (co.row, co.col)), shape=co.shape)
        self.sim = _keep_top_k_per_row(sim, self.k)

    def score(self, users: np.ndarray, history: InteractionData) -> np.ndarray:
        assert self.sim is not None, "fit first"
        h = self._history(history)[users]  # (B, I)
        return np.asarray((h @ self.sim).toarray(), np.float32)


def _keep_top_k_per_row(m: sp.csr_matrix, k: int) -> sp.csr_matrix:
    """The ``k`` largest entries of each row of a CSR matrix (the rest dropped)."""
    m = m.tocsr()
    m.sort_indices()
    counts = np.diff(m.indptr)
    if counts.max(initial=0) <= k:
        return m
    rows, cols, vals = [], [], []
    for r in np.flatnonzero(counts):
        a, b = m.indptr[r], m.indptr[r + 1]
        d = m.data[a:b]
        keep = np.argpartition(-d, k - 1)[:k] if len(d) > k else np.arange(len(d))
        rows.append(np.full(len(keep), r, np.int32))
        cols.append(m.indices[a:b][keep])
        vals.append(d[keep])
    if not rows:
        return m
    return sp.csr_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=m.shape, dtype=np.float32
    )


class _Implicit:
    """Shared plumbing for the ``implicit`` models: binary positive CSR, BLAS pinned to one thread."""

    name = "MF"
    model: Any

    def _fit_matrix(self, train: InteractionData) -> sp.csr_matrix:
        x = user_item_matrix(train)  # positives only: negative weights never become confidence
        from threadpoolctl import threadpool_limits

        # implicit parallelises itself; a multi-threaded BLAS underneath oversubscribes the cores
        # (implicit warns about exactly this).
        with threadpool_limits(1, "blas"):
            self.model.fit(x, show_progress=False)
        return x

    def fit(self, train: InteractionData, valid: InteractionData | None = None) -> None:
        self._fit_matrix(train)


class ALS(_Implicit):
    """Implicit-feedback ALS (Hu, Koren & Volinsky 2008) via ``implicit.cpu.als``.

    Parameters
    ----------
    factors, regularization, iterations, alpha :
        As in :class:`implicit.cpu.als.AlternatingLeastSquares` (confidence ``1 + alpha·x``, x = 1).
    fold_in : bool
        Recompute each user's factors from the history given at scoring time (one exact
        least-squares solve, as ALS itself does), so test-time scoring uses the validation item too.
    random_state : int
    num_threads : int
    """

    name = "ALS"

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.01,
        iterations: int = 15,
        alpha: float = 1.0,
        fold_in: bool = True,
        random_state: int = 0,
        num_threads: int = NUM_THREADS,
    ) -> None:
        from implicit.cpu.als import AlternatingLeastSquares

        self.fold_in = fold_in
        self._history = _HistoryMatrix()
        self.params: dict[str, Any] = {
            "factors": factors,
            "regularization": regularization,
            "iterations": iterations,
            "alpha": alpha,
            "fold_in": fold_in,
        }
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):  # it checks (and warns about) the BLAS threads when built
            self.model = AlternatingLeastSquares(
                factors=factors,
                regularization=regularization,
                alpha=alpha,
                iterations=iterations,
                random_state=random_state,
                num_threads=num_threads,
            )

    def score(self, users: np.ndarray, history: InteractionData) -> np.ndarray:
        if self.fold_in:
            from threadpoolctl import threadpool_limits

            h = self._history(history)[users]
            with threadpool_limits(1, "blas"):
                uf = self.model.recalculate_user(np.asarray(users), h)
        else:
            uf = self.model.user_factors[users]
        return np.asarray(uf @ self.model.item_factors.T, np.float32)


class BPR(_Implicit):
    """Bayesian Personalised Ranking (Rendle et al. 2009) via ``implicit.cpu.bpr``.

    User factors come from training (BPR has no exact fold-in); items never seen in training
    keep their random initial factors, i.e. random scores. With ``num_threads > 1`` the SGD is
    Hogwild-parallel, so repeated runs differ in the last digits even with a fixed seed.
    """

    name = "BPR"

    def __init__(
        self,
        factors: int = 64,
        learning_rate: float = 0.01,
        regularization: float = 0.01,
        iterations: int = 100,
        random_state: int = 0,
        num_threads: int = NUM_THREADS,
    ) -> None:
        from implicit.cpu.bpr import BayesianPersonalizedRanking

        self.params: dict[str, Any] = {
            "factors": factors,
            "learning_rate": learning_rate,
            "regularization": regularization,
            "iterations": iterations,
        }
        self.model = BayesianPersonalizedRanking(
            factors=factors,
            learning_rate=learning_rate,
            regularization=regularization,
            iterations=iterations,
            random_state=random_state,
            num_threads=num_threads,
        )

    def score(self, users: np.ndarray, history: InteractionData) -> np.ndarray:
        return np.asarray(self.model.user_factors[users] @ self.model.item_factors.T, np.float32)


class ContentKNN:
    """Content vectors alone: cosine between a user profile and every item's fused vector.

    The profile is the weighted mean of the unit item vectors of the user's positive history
    (items whose summed event weight is > 0, in the order of their positive events), newest first with weight ``2^(-n / half_life)`` for the n-th newest (``half_life=None``:
    plain mean). Needs no training data, so it ranks cold items as well as warm ones.

    Parameters
    ----------
    half_life : float or None
        In interactions, not time: users' activity rates differ too much for a clock.
    """

    name = "Content"

    def __init__(self, half_life: float | None = 5.0) -> None:
        self.half_life = half_life
        self.params: dict[str, Any] = {"half_life": half_life}
        self.vectors = np.zeros((0, 0), np.float32)
        self._seqs: tuple[InteractionData, list[np.ndarray]] | None = None
        self._positive = _HistoryMatrix()

    def fit(self, train: InteractionData, valid: InteractionData | None = None) -> None:
        v = np.asarray(train.item_vectors, np.float32)
        norms = np.linalg.norm(v, axis=1, keepdims=True)
        self.vectors = v / np.maximum(norms, 1e-12)  # zero vectors stay zero: score 0

    def _sequences(self, history: InteractionData) -> list[np.ndarray]:
        # score() is called batch by batch with the same history; sort it once.
        if self._seqs is None or self._seqs[0] is not history:
            self._seqs = (history, history.sequences(positive_only=True))
        return self._seqs[1]

    def profiles(self, users: np.ndarray, history: InteractionData) -> np.ndarray:
        """``(B, D)`` unit profile vectors (zeros for users without positive history)."""
        seqs = self._sequences(history)
        net = self._positive(history)
        rows, cols, vals = [], [], []
        for r, u in enumerate(users):
            s = seqs[int(u)]
            # an item viewed and then disliked is in the positive sequence but not a positive pair
            s = s[np.isin(s, net.indices[net.indptr[u] : net.indptr[u + 1]])]
            age = np.arange(len(s) - 1, -1, -1, dtype=np.float64)  # 0 = newest
            w = np.ones(len(s)) if self.half_life is None else 0.5 ** (age / self.half_life)
            rows.append(np.full(len(s), r))
            cols.append(s)
            vals.append(w / max(w.sum(), 1e-12))
        n = len(users)
        if rows:
            w = sp.csr_matrix(
                (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
                shape=(n, history.n_items),
                dtype=np.float32,
            )
            prof = np.asarray(w @ self.vectors, np.float32)
        else:
            prof = np.zeros((n, self.vectors.shape[1]), np.float32)
        return prof / np.maximum(np.linalg.norm(prof, axis=1, keepdims=True), 1e-12)

    def score(self, users: np.ndarray, history: InteractionData) -> np.ndarray:
        return self.profiles(users, history) @ self.vectors.T
