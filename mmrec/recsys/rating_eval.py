"""Rating prediction from a database: reading the ratings, k-fold cross-validation, training the served model.

Protocol of ``mmrec evaluate --task rating`` (stated once because it decides the numbers):

* **Data**: the stored ``rating`` events only (other events carry no star value). A rating is
  stored as weight ``2 × (stars − 3)`` (:func:`mmrec.recsys.interactions.rating_weight`), so
  stars = weight / 2 + 3. A user who rated one item several times counts with the latest rating.
* **Split**: the ratings are shuffled with the stated seed and cut into ``folds`` equal parts;
  each part is the test set once, the model is fitted on the others (random k-fold, as Surprise's
  ``cross_validate``). Test pairs whose user or item has no training rating are predicted with
  the models' fallbacks, like any other pair.
* **Metrics** over every test rating of a fold: MAE = mean |r̂ − r|, MSE = mean (r̂ − r)², RMSE = √MSE,
  predictions clipped to the 1–5 scale. Reported as the mean over folds (± standard deviation over
  folds) and, over the pooled out-of-fold predictions of all folds (each rating predicted once),
  a 95 % bootstrap interval over users (:func:`mmrec.recsys.metrics.bootstrap_ci`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrec.errors import InvalidArgumentError
from mmrec.names import FUSED_COLUMN
from mmrec.recsys.metrics import bootstrap_ci
from mmrec.recsys.rating import RATING_MODELS, RatingCache, Ratings, make_rating_model, with_predicted_ratings

__all__ = [
    "RatingCache",
    "cross_validate",
    "kfold",
    "rating_data",
    "rating_task",
    "train_rating",
    "with_predicted_ratings",
]

if TYPE_CHECKING:
    from mmrec.recsys.userbook import UserBook
    from mmrec.store.items import Store

#: Ratings needed before ``mmrec train`` fits a rating model.
MIN_RATINGS = 50
#: The model ``mmrec train`` fits and ``recommend`` serves.
SERVED_MODEL = "hybrid"


def rating_data(store: Store, book: UserBook) -> Ratings | None:
    """The database's ``rating`` events as :class:`Ratings` (``None`` when it has none).

    Items are the stored items that were rated, users the users who rated one; both in first-seen
    order sorted by id. The content vectors are the items' fused vectors (zeros when missing).
    """
    t = book.interaction_columns(["user", "item", "event", "weight", "ts"])
    if t is None:
        return None
    events = np.asarray(t.column("event").to_pylist(), dtype=object)
    keep = events == "rating"
    if not keep.any():
        return None
    users = np.asarray(t.column("user").to_pylist(), dtype=object)[keep]
    items = np.asarray(t.column("item").to_pylist(), dtype=object)[keep]
    stars = np.asarray(t.column("weight").to_numpy(zero_copy_only=False), np.float64)[keep] / 2.0 + 3.0
    import pyarrow.compute as pc

    ts = pc.cast(t.column("ts"), "int64").to_numpy(zero_copy_only=False)[keep]
    raw_ids, vecs = store.item_vectors(FUSED_COLUMN)
    vec_index = {i: n for n, i in enumerate(raw_ids)}
    stored = np.array([i in vec_index for i in items], bool)
    users, items, stars, ts = users[stored], items[stored], stars[stored], ts[stored]
    if len(users) == 0:
        return None
    user_ids = sorted(set(users.tolist()))
    item_ids = sorted(set(items.tolist()))
    uidx = {u: n for n, u in enumerate(user_ids)}
    iidx = {i: n for n, i in enumerate(item_ids)}
    u = np.array([uidx[x] for x in users], np.int64)
    i = np.array([iidx[x] for x in items], np.int64)
    # the latest rating of a (user, item) pair wins: sort by time, keep the last of each pair
    order = np.lexsort((ts, i, u))
    pair = u[order] * len(item_ids) + i[order]
    last = np.r_[pair[1:] != pair[:-1], True]
    sel = order[last]
    vectors = np.stack([np.asarray(vecs[vec_index[x]], np.float32) for x in item_ids])
    return Ratings(user_ids, item_ids, u[sel], i[sel], stars[sel].astype(np.float32), np.nan_to_num(vectors))


def kfold(n: int, folds: int = 5, seed: int = 0) -> list[np.ndarray]:
    """Test positions of each fold: a seeded permutation of ``range(n)`` cut into ``folds`` near-equal parts."""
    if folds < 2 or folds > n:
        raise InvalidArgumentError(f"folds must be between 2 and the number of ratings ({n}), got {folds}")
    return np.array_split(np.random.default_rng(seed).permutation(n), folds)


def _errors(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    e = pred.astype(np.float64) - true
    mse = float(np.mean(e**2))
    return {"mae": float(np.mean(np.abs(e))), "mse": mse, "rmse": float(np.sqrt(mse))}


def cross_validate(
    data: Ratings,
    models: Sequence[str] = tuple(RATING_MODELS),
    *,
    folds: int = 5,
    seed: int = 0,
    n_boot: int = 1000,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Random k-fold cross-validation of rating models (protocol in the module docstring).

    Parameters
    ----------
    data : Ratings
    models : sequence of str
        Names from :data:`mmrec.recsys.rating.RATING_MODELS`.
    folds : int
    seed : int
        Fold and model seed.
    n_boot : int
        Bootstrap resamples of the interval over users.
    log : callable, optional
        One line per fitted fold.

    Returns
    -------
    dict
        ``{"task": "rating", "folds", "seed", "ratings", "users", "items", "models": {name: {"mae", "mse",
        "rmse", "rmse_std", …, "rmse_ci": [lo, hi], "mae_ci", "mse_ci", "fit_seconds", "per_fold": [...]}}}``.
    """
    for name in models:
        make_rating_model(name, seed)  # unknown names fail before any fitting
    parts = kfold(len(data), folds, seed)
    out: dict[str, Any] = {
        "task": "rating",
        "protocol": f"random {folds}-fold cross-validation (seed {seed})",
        "folds": folds,
        "seed": seed,
        "ratings": len(data),
        "users": data.n_users,
        "items": data.n_items,
        "models": {},
    }
    for name in models:
        pooled = np.zeros(len(data), np.float32)
        per_fold, seconds = [], []
        for f, test in enumerate(parts):
            train = np.setdiff1d(np.arange(len(data)), test, assume_unique=True)
            model = make_rating_model(name, seed)
            t0 = time.perf_counter()
            model.fit(data.subset(train))
            seconds.append(time.perf_counter() - t0)
            pooled[test] = model.predict(data.users[test], data.items[test])
            per_fold.append({k: round(v, 5) for k, v in _errors(pooled[test], data.values[test]).items()})
            if log:
                log(f"{name} fold {f + 1}/{folds}: RMSE {per_fold[-1]['rmse']:.4f} ({seconds[-1]:.1f} s)")
        entry: dict[str, Any] = {}
        for m in ("mae", "mse", "rmse"):
            vals = np.array([p[m] for p in per_fold])
            entry[m] = round(float(vals.mean()), 5)
            entry[f"{m}_std"] = round(float(vals.std()), 5)
        err = pooled.astype(np.float64) - data.values
        n = np.bincount(data.users, minlength=data.n_users).astype(np.float64)
        sq = np.bincount(data.users, err**2, minlength=data.n_users)
        ab = np.bincount(data.users, np.abs(err), minlength=data.n_users)
        has = n > 0
        entry["mae_ci"] = [round(x, 5) for x in bootstrap_ci(ab[has], n[has], n_boot=n_boot, seed=seed)]
        entry["mse_ci"] = [round(x, 5) for x in bootstrap_ci(sq[has], n[has], n_boot=n_boot, seed=seed)]
        ci = bootstrap_ci(sq[has], n[has], transform=np.sqrt, n_boot=n_boot, seed=seed)
        entry["rmse_ci"] = [round(x, 5) for x in ci]
        entry["fit_seconds"] = round(float(np.mean(seconds)), 2)
        entry["per_fold"] = per_fold
        out["models"][model.name] = entry
    return out


def rating_task(
    store: Store,
    book: UserBook,
    task: str,
    models: str | Sequence[str] | None = None,
    *,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """``Engine.evaluate(task="rating")``: check the task and model names, read the ratings, cross-validate.

    Raises
    ------
    InvalidArgumentError
        For a task other than ``"rating"``, an unknown model name, or a database without star ratings.
    """
    if task != "rating":
        raise InvalidArgumentError(f"unknown evaluation task {task!r}; valid tasks: ranking, rating")
    if isinstance(models, str):
        models = [m.strip() for m in models.split(",") if m.strip()]
    names = list(models) if models else list(RATING_MODELS)
    for name in names:
        make_rating_model(name, seed)
    data = rating_data(store, book)
    if data is None or len(data) < MIN_RATINGS:
        n = 0 if data is None else len(data)
        raise InvalidArgumentError(
            f"database {store.uri!r} has {n} star ratings (events 'rating'); at least {MIN_RATINGS} are needed "
            "for the rating task (import a file with a 'rating' column)"
        )
    return cross_validate(data, names, seed=seed, log=log)


def format_rating_table(results: dict[str, Any]) -> str:
    """A markdown table of :func:`cross_validate`'s result: RMSE (± over folds, bootstrap interval), MAE, MSE, fit time."""
    lines = [
        "| model | RMSE | RMSE 95 % CI (users) | MAE | MSE | fit s / fold |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, e in results["models"].items():
        lo, hi = e["rmse_ci"]
        lines.append(
            f"| {name} | {e['rmse']:.4f} ± {e['rmse_std']:.4f} | {lo:.4f}–{hi:.4f} | {e['mae']:.4f} | "
            f"{e['mse']:.4f} | {e['fit_seconds']:.1f} |"
        )
    return "\n".join(lines)


# --------------------------------------------------------------------------- training and serving


def train_rating(store: Store, book: UserBook, *, seed: int = 0, log: Callable[[str], None] | None = None) -> dict:
    """Fit the served rating model on every stored rating and save it (checkpoint kind ``"rating"``).

    Returns a report dict ``{"saved", "version", "message", …}``; nothing is saved (``saved`` false)
    when the database has fewer than :data:`MIN_RATINGS` ratings.
    """
    current = max((c["version"] for c in store.checkpoints("rating")), default=0)
    data = rating_data(store, book)
    if data is None or len(data) < MIN_RATINGS:
        n = 0 if data is None else len(data)
        return {
            "saved": False,
            "version": current,
            "message": f"{n} star ratings stored, at least {MIN_RATINGS} are needed for a rating model",
        }
    model = make_rating_model(SERVED_MODEL, seed)
    if log is not None and hasattr(model, "log"):
        model.log = log
    t0 = time.perf_counter()
    model.fit(data)
    seconds = time.perf_counter() - t0
    metrics = {"ratings": len(data), "users": data.n_users, "items": data.n_items, "seconds": round(seconds, 2)}
    if np.isfinite(getattr(model, "valid_rmse", np.nan)):
        metrics["valid_rmse"] = round(float(model.valid_rmse), 4)
    with store.writer.hold("saving the rating model"):
        version = max((c["version"] for c in store.checkpoints("rating")), default=0) + 1
        store.save_checkpoint(
            "rating", version, {"name": model.name, "version": version}, model.factors.to_bytes(), metrics
        )
    valid = f"; validation RMSE {metrics['valid_rmse']:.4f}" if "valid_rmse" in metrics else ""
    msg = f"trained rating model v{version} ({model.name}) on {len(data)} ratings in {seconds:.1f} s{valid}"
    return {"saved": True, "version": version, "message": msg, **metrics}


def purge_user(store: Store, user: str) -> list[int]:
    """Remove ``user`` from every saved rating model (``mmrec forget``); the caller holds the writer.

    A rating checkpoint stores each user's id with their biases and factors, so it is personal
    data: every version that holds the user is deleted with the old table versions that still
    hold its weights, and the newest one is saved again without the user's row, as a new version
    (so serving keeps predicting, the user gets the unknown-user fallback). Its metrics say it was
    purged; the next ``mmrec train`` refits the item side without the user's ratings.

    Returns
    -------
    list of int
        The checkpoint versions that held the user (deleted).
    """
    from mmrec.recsys.rating import RatingFactors

    checkpoints = store.checkpoints("rating")
    holding, newest = [], None
    for c in checkpoints:
        version = int(c["version"])
        purged = RatingFactors.from_bytes(store.checkpoint_weights("rating", version)).without_user(user)
        if purged is not None:
            holding.append(version)
            if c is checkpoints[-1]:
                newest = (c, purged)
    if not holding:
        return []
    if newest is not None:
        c, purged = newest
        version = int(c["version"]) + 1
        metrics = {**c["metrics"], "purged_users": int(c["metrics"].get("purged_users", 0)) + 1}
        store.save_checkpoint("rating", version, {**c["identity"], "version": version}, purged.to_bytes(), metrics)
    store.delete_checkpoints("rating", holding)
    return holding
