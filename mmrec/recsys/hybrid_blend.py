"""The blend: the hybrid's per-user standardised scores plus weighted ones of other fitted models.

``z(hybrid) + Σ_j w_j · z(part_j)``, each model's scores standardised per user (mean 0, std 1)
so that a softmax logit and an ALS dot product can be added. The parts are models already
fitted on the same training data (ID-only SASRec, ALS); only the weights are learned, by a
small grid search on validation NDCG@10. Two sequence models trained from different
starting points make different mistakes, and ALS adds the co-occurrence signal a sequence
model under-uses; the grid keeps 0 for every part, and a part is added only when it beats the
hybrid alone on validation by more than one standard error (:func:`simplest_within_one_se`; on new
data it may still lose: :mod:`mmrec.recsys.selection` reports both).

The parts' validation scores are computed once and the grid is searched over the cached
``(users, items)`` matrices, so the search costs a ranking per grid point, not a forward pass.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

import numpy as np

from mmrec.recsys.data import InteractionData, Recommender
from mmrec.recsys.metrics import rank_metrics
from mmrec.recsys.served import blended

#: The weights each part beyond the first may take (0: left out).
BLEND_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)


def simplest_within_one_se(points: Sequence[Sequence[float]], per_user: Sequence[np.ndarray]) -> int:
    """The index of the simplest grid point whose score is within one standard error of the best one's.

    The one-standard-error rule (Breiman et al., CART; glmnet's ``lambda.1se``), with the error of the
    *paired* per-user difference to the best point: ``mean(best − p) ≤ std(best − p) / √n``.

    Parameters
    ----------
    points : sequence of weight tuples
        The grid points (weights of the parts beyond the first).
    per_user : sequence of np.ndarray
        ``(n_users,)`` validation NDCG@10 per user at each point, users in the same order.

    Returns
    -------
    int
        Among the points within one error of the best: the fewest non-zero weights, then the smallest
        sum of weights, then the earliest.
    """
    means = [float(v.mean()) if len(v) else 0.0 for v in per_user]
    best = int(np.argmax(means))

    def error(diff: np.ndarray) -> float:
        return float(diff.std(ddof=1) / np.sqrt(len(diff))) if len(diff) > 1 else 0.0

    near = [i for i in range(len(points)) if means[best] - means[i] <= error(per_user[best] - per_user[i])]
    return min(near, key=lambda i: (sum(1 for w in points[i] if w), float(sum(points[i])), i))


class CachedScores:
    """A recommender whose ``(n_users, n_items)`` scores for a fixed set of ``users`` are precomputed (the grid
    search's; the benchmarks' saved score matrices)."""

    name = "cached"

    def __init__(self, users: np.ndarray, scores: np.ndarray) -> None:
        self.row = {int(u): n for n, u in enumerate(users)}
        self.scores = scores

    def fit(self, train: InteractionData, valid: InteractionData | None = None) -> None:
        return None

    def score(self, users: np.ndarray, history: InteractionData) -> np.ndarray:
        return self.scores[[self.row[int(u)] for u in users]]


class Blend:
    """``z(first) + Σ weight_j · z(part_j)`` over fitted models' per-user standardised scores.

    Parameters
    ----------
    parts : mapping of str to Recommender
        Already fitted; the first one (the hybrid) has weight 1.
    weights : mapping of str to float, optional
        Weights of the other parts (default 0.5 each); :meth:`fit` chooses them on validation.
    """

    name = "Blend"

    def __init__(self, parts: Mapping[str, Recommender], weights: Mapping[str, float] | None = None) -> None:
        if not parts:
            raise ValueError("a blend needs at least one model")
        self.parts = dict(parts)
        first, *rest = self.parts
        self.first = first
        self.weights = {first: 1.0, **{n: float((weights or {}).get(n, 0.5)) for n in rest}}
        self.params: dict[str, Any] = {"weights": dict(self.weights)}
        self.trials: list[dict[str, Any]] = []

    def fit(
        self, train: InteractionData, valid: InteractionData | None = None, grid: Sequence[float] = BLEND_GRID
    ) -> None:
        """Choose the weights on validation NDCG@10 over ``grid`` for every part but the first.

        The parts are not refitted. The choice is the *simplest* grid point within one standard error
        of the best (:func:`simplest_within_one_se`): 16 points compared on a few hundred validation users
        let one win by noise, and a part added for a noise-sized gain cost 9–12 % on MovieLens' test split
        (``benchmarks/README.md``, issue 11 seventh pass); a part is only added when it helps beyond noise.
        """
        if valid is None or not len(valid):
            return
        users = np.unique(valid.users)
        raw = {n: m.score(users, train) for n, m in self.parts.items()}  # each part scored once
        rest = [n for n in self.parts if n != self.first]
        points = list(itertools.product(grid, repeat=len(rest)))
        per_user = []
        for point in points:
            weights = {self.first: 1.0, **dict(zip(rest, point, strict=True))}
            mixed = blended((w, partial(raw.__getitem__, n)) for n, w in weights.items())  # as score() mixes
            res = rank_metrics(CachedScores(users, mixed), train, valid, kmax=10, batch=1024, per_user=(10,))
            per_user.append(np.asarray(res.user_values["ndcg@10"], np.float64))
            self.trials.append({"weights": weights, "ndcg@10": round(res.at("ndcg", 10), 6)})
        chosen = self.trials[simplest_within_one_se(points, per_user)]["weights"]
        self.weights = dict(chosen)
        self.params = {"weights": dict(chosen)}

    def score(self, users: np.ndarray, history: InteractionData) -> np.ndarray:
        """``(B, n_items)`` blended scores (parts of weight 0 are not scored)."""
        return blended((w, partial(self.parts[name].score, users, history)) for name, w in self.weights.items())
