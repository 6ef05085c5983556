"""The blend: the hybrid's per-user standardised scores plus weighted ones of other fitted models.

``z(hybrid) + Σ_j w_j · z(part_j)``, each model's scores standardised per user (mean 0, std 1)
so that a softmax logit and an ALS dot product can be added. The parts are models already
fitted on the same training data (ID-only SASRec, ALS); only the weights are learned, by a
small grid search on validation NDCG@10. Two sequence models trained from different
starting points make different mistakes, and ALS adds the co-occurrence signal a sequence
model under-uses; the grid keeps 0 for every part, and a part is added only when it beats the
hybrid alone on validation by more than one standard error (:func:`simplest_within_one_se`; on new
data it may still lose: :mod:`mmrec.recsys.selection` reports both).

The blend's own validation NDCG@10 is the best of 16 grid points scored on the users that chose it, so it
is optimistic against the single models it competes with (the winner's curse): a point that wins by a few
users' luck looks like a gain. What the serving choice compares is therefore its *cross-fitted* score
(:func:`cross_fitted_scores`): the users are cut into folds, each fold is scored at the point the rule
picks on the other folds, and the out-of-fold values are averaged — an estimate of what the weight search
itself is worth on users it did not see, from the same per-user values (no extra ranking).

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
#: Folds and repeats of :func:`cross_fitted_scores` (5 x 4: each user is scored out of fold four times).
CROSS_FIT_FOLDS = 5
CROSS_FIT_REPEATS = 4


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


def cross_fitted_scores(
    points: Sequence[Sequence[float]],
    per_user: Sequence[np.ndarray],
    folds: int = CROSS_FIT_FOLDS,
    repeats: int = CROSS_FIT_REPEATS,
    seed: int = 0,
) -> np.ndarray:
    """Each user's validation score at the grid point the selection rule picks *without* that user.

    For each of ``repeats`` random cuts of the users into ``folds`` folds, every fold gets the point that
    :func:`simplest_within_one_se` picks on the other folds' users, and its users that point's values; a
    user's result is the mean over the repeats. The mean of the result estimates the validation score of
    "search the grid, then apply the choice" on new users, which the in-sample best point overstates.

    Parameters
    ----------
    points : sequence of weight tuples
        The grid points, as for :func:`simplest_within_one_se`.
    per_user : sequence of np.ndarray
        ``(n_users,)`` validation NDCG@10 per user at each point, users in the same order.
    folds, repeats : int
        Fewer than 2 users (or ``folds`` < 2): no cross-fitting, the chosen point's values are returned.
    seed : int
        Seeds the cuts (fixed by default, so a result reproduces).

    Returns
    -------
    np.ndarray
        ``(n_users,)`` float64 out-of-fold values.
    """
    values = np.stack([np.asarray(v, np.float64) for v in per_user])  # (points, users)
    n = values.shape[1]
    if n < 2 or folds < 2:
        return values[simplest_within_one_se(points, list(values))].copy()
    folds = min(folds, n)
    rng = np.random.default_rng(seed)
    out = np.zeros(n)
    for _ in range(max(1, repeats)):
        fold_of = rng.permutation(n) % folds
        for f in range(folds):
            held = fold_of == f
            chosen = simplest_within_one_se(points, list(values[:, ~held]))
            out[held] += values[chosen, held]
    return out / max(1, repeats)


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
        #: Validation NDCG@10 of the weight search, cross-fitted (:func:`cross_fitted_scores`); None before
        #: :meth:`fit` has validation data. What a serving choice should compare against single models.
        self.cross_fitted_ndcg: float | None = None

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
        first_trial = len(self.trials)  # trials accumulate over fits; this fit's start here
        per_user = []
        for point in points:
            weights = {self.first: 1.0, **dict(zip(rest, point, strict=True))}
            mixed = blended((w, partial(raw.__getitem__, n)) for n, w in weights.items())  # as score() mixes
            res = rank_metrics(CachedScores(users, mixed), train, valid, kmax=10, batch=1024, per_user=(10,))
            per_user.append(np.asarray(res.user_values["ndcg@10"], np.float64))
            self.trials.append({"weights": weights, "ndcg@10": round(res.at("ndcg", 10), 6)})
        chosen_trial = self.trials[first_trial + simplest_within_one_se(points, per_user)]
        chosen = chosen_trial["weights"]
        self.weights = dict(chosen)
        if any(chosen[n] for n in rest):
            self.cross_fitted_ndcg = round(float(cross_fitted_scores(points, per_user).mean()), 6)
        else:
            # The search kept the first model alone: the blend *is* that model, and scores as it does.
            self.cross_fitted_ndcg = chosen_trial["ndcg@10"]
        self.params = {"weights": dict(chosen), "cross_fitted_ndcg@10": self.cross_fitted_ndcg}

    def score(self, users: np.ndarray, history: InteractionData) -> np.ndarray:
        """``(B, n_items)`` blended scores (parts of weight 0 are not scored)."""
        return blended((w, partial(self.parts[name].score, users, history)) for name, w in self.weights.items())
