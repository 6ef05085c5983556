"""The blend: the hybrid's per-user standardised scores plus weighted ones of other fitted models.

``z(hybrid) + Σ_j w_j · z(part_j)``, each model's scores standardised per user (mean 0, std 1)
so that a softmax logit and an ALS dot product can be added. The parts are models already
fitted on the same training data (ID-only SASRec, ALS); only the weights are learned, by a
small grid search on validation NDCG@10. Two sequence models trained from different
starting points make different mistakes, and ALS adds the co-occurrence signal a sequence
model under-uses; the grid keeps 0 for every part, so the blend is never worse than the hybrid
alone *on validation* (on new data it may be: :mod:`mmrec.recsys.selection` reports both).

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
from mmrec.recsys.served import blended, standardise

#: The weights each part beyond the first may take (0: left out).
BLEND_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0)


class _Cached:
    """A recommender whose scores for a fixed set of users are precomputed (the grid search's)."""

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
        """Choose the weights by validation NDCG@10 over ``grid`` for every part but the first.

        The parts are not refitted. Ties go to the earlier grid point (the smaller weights, as
        ``grid`` is increasing): a part is only added when it helps.
        """
        if valid is None or not len(valid):
            return
        users = np.unique(valid.users)
        z = {n: standardise(m.score(users, train)) for n, m in self.parts.items()}
        rest = [n for n in self.parts if n != self.first]
        best = -1.0
        chosen = dict(self.weights)
        for point in itertools.product(grid, repeat=len(rest)):
            weights = {self.first: 1.0, **dict(zip(rest, point, strict=True))}
            mixed = sum(w * z[n] for n, w in weights.items() if w)
            score = rank_metrics(_Cached(users, mixed), train, valid, kmax=10, batch=1024).at("ndcg", 10)
            self.trials.append({"weights": weights, "ndcg@10": round(score, 6)})
            if score > best:
                best, chosen = score, weights
        self.weights = chosen
        self.params = {"weights": dict(chosen)}

    def score(self, users: np.ndarray, history: InteractionData) -> np.ndarray:
        """``(B, n_items)`` blended scores (parts of weight 0 are not scored)."""
        return blended((w, partial(self.parts[name].score, users, history)) for name, w in self.weights.items())
