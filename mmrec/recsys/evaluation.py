"""Offline evaluation: evaluating, tuning and comparing models on a split.

Everything works on an :class:`~mmrec.recsys.data.InteractionData` and any
:class:`~mmrec.recsys.data.Recommender`. The parts live in their own modules:
:mod:`mmrec.recsys.data` (reading a database: :func:`~mmrec.recsys.data.interaction_data`),
:mod:`mmrec.recsys.splits` (the protocols), :mod:`mmrec.recsys.metrics` (ranking and the
metrics) and :mod:`mmrec.recsys.models` (the named models and their grids); this module
fits, tunes and reports::

    engine = Engine("movielens.db")
    data = interaction_data(engine.store, engine.users())
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
  :func:`~mmrec.recsys.metrics.tie_order`), not by item index: in MovieLens
  the item id is strongly anti-correlated with popularity, so an index
  tie-break would reward a model that gives many items the same score
  (MostPopular and ALS on cold items).
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
import os
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any

import numpy as np

from mmrec.errors import InvalidArgumentError
from mmrec.recsys.content_choice import CONTENT_MODELS, choose_content_column, split_with_content
from mmrec.recsys.data import InteractionData, Recommender
from mmrec.recsys.metrics import METRIC_LABELS, METRICS, StageResult, bootstrap_ci, rank_metrics
from mmrec.recsys.models import DEFAULT_MODELS, model_spec, parse_models
from mmrec.recsys.splits import Split, make_split

# --------------------------------------------------------------------------- evaluate, tune


def _name(model: Recommender) -> str:
    return str(getattr(model, "name", type(model).__name__))


def _stage_summary(res: StageResult, ks: Sequence[int]) -> dict[str, Any]:
    out: dict[str, Any] = {"users": res.users, "seconds": round(res.seconds, 3)}
    for m in METRICS:
        for k in ks:
            out[f"{m}@{k}"] = round(res.at(m, k), 6)
    # 95 % bootstrap interval over the evaluated users of every per-user metric (rank_metrics kept their values)
    for key, values in res.user_values.items():
        out[f"{key}_ci"] = [round(x, 6) for x in bootstrap_ci(values)]
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
        See :func:`~mmrec.recsys.metrics.rank_metrics`.
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
            res = rank_metrics(
                model, history, targets, cands, kmax=kmax, batch=batch, ties=ties, seed=seed, per_user=tuple(ks)
            )
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


# --------------------------------------------------------------------------- comparisons


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
    fitted_out: dict[str, Recommender] | None = None,
    parallel: bool | None = None,
) -> dict[str, Any]:
    """Split ``data``, fit (tuning the baselines on validation) and evaluate named models.

    Parameters
    ----------
    data : InteractionData
    protocol : str
        One of :data:`mmrec.names.PROTOCOLS` (ignored when ``split`` is given).
    models : sequence of str
        Names from :data:`mmrec.names.MODEL_NAMES` (:mod:`mmrec.recsys.models`).
    ks, curve, batch :
        See :func:`evaluate`.
    seed : int
        Split (random, cold-start), model and tie-break seed.
    tune_models : bool
        Tune models with a grid by validation NDCG@10 (:func:`tune`); else use the first grid point.
    split : Split, optional
        A ready split.
    log : callable, optional
    fitted_out : dict, optional
        Receives the fitted models by their table name (e.g. to blend them afterwards).
    parallel : bool, optional
        Fit the torch models (hybrid, SASRec) in child processes, each with its share of the
        cores, while this process fits the baselines (:func:`_parallel_torch_fits`). None: when
        two or more of them are asked for on a CPU-only machine with two or more cores.

    Returns
    -------
    dict
        :func:`evaluate`'s result plus, per model, ``fit_seconds``, ``params`` and ``tuning`` trials.
    """
    names = parse_models(models)
    split = split or make_split(data, protocol, seed=seed)
    choice = None
    if any(n in CONTENT_MODELS for n in names):  # the column the content models get, chosen on validation
        choice = choose_content_column(split.train, split.valid, split.valid_candidates, seed=seed)
        split = split_with_content(split, choice.column)
        if log and choice.scores:
            log(f"content vectors: {choice.column} (content validation NDCG@10 {choice.to_dict()['content_choice']})")
    fitted: dict[str, Recommender] = {}
    extra: dict[str, dict[str, Any]] = {}
    for name in names:
        model_spec(name, seed)  # an unavailable model fails here, before any fit starts
    apart = {n: build_model(n, seed) for n in _parallel_names(names, seed)} if parallel is not False else {}
    if parallel is None and sum(len(_fits_of(m)) for m in apart.values()) < 2:
        apart = {}
    pool = _parallel_torch_fits(apart, split, log) if apart else None
    try:
        _fit_here([n for n in names if n not in apart], split, seed, tune_models, fitted, extra, log)
        if pool is not None:
            for name in pool.futures:
                model, seconds = pool.result(name)
                fitted[name], extra[name] = model, {"fit_seconds": round(seconds, 3), "fitted_apart": True}
                if params := default_params(name, seed):  # as _fit_here reports a grid's only point
                    extra[name]["params"] = params
                extra[name].update(_epochs(model))
    finally:
        if pool is not None:
            pool.executor.shutdown(wait=True, cancel_futures=True)
    # The table in the order asked for, each model under its own name.
    fitted_named = {_name(fitted[n]): fitted[n] for n in names}
    extra = {_name(fitted[n]): extra[n] for n in names}
    out = evaluate(fitted_named, split, ks, batch, fit=False, curve=curve, seed=seed, log=log)
    if fitted_out is not None:
        fitted_out.update(fitted_named)
    for key, info in extra.items():
        out["models"][key].update(info)
    out["seed"] = seed
    if choice is not None:
        out.update(choice.to_dict())
    return out


def _fit_here(
    names: Sequence[str],
    split: Split,
    seed: int,
    tune_models: bool,
    fitted: dict[str, Recommender],
    extra: dict[str, dict[str, Any]],
    log: Callable[[str], None] | None,
) -> None:
    """Fit (tuning on validation when there is a grid) each named model in this process, into ``fitted``."""
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
            model = build_model(name, seed, params)
            model.fit(split.train, split.valid)
            info = {"params": params} if params else {}
        info["fit_seconds"] = round(time.perf_counter() - t0, 3)
        fitted[name] = model
        extra[name] = {**info, **_epochs(model)}


def build_model(name: str, seed: int, params: Mapping[str, Any] | None = None) -> Recommender:
    """An unfitted named model at one point of its grid (default: the grid's first point, or none).

    The one builder of this module: fits in this process and in child processes both use it.
    """
    factory, _grid = model_spec(name, seed)
    return factory(**(default_params(name, seed) if params is None else params))


def default_params(name: str, seed: int) -> dict[str, Any]:
    """The first point of a named model's grid (``{}``: no grid), what a fit without tuning uses."""
    points = grid_points(model_spec(name, seed)[1])
    return dict(points[0]) if points else {}


def _epochs(model: Recommender) -> dict[str, Any]:
    """Epochs run, the best one and those averaged into the kept weights, for models that keep a validation
    history (the torch models)."""
    history = getattr(model, "history", None)
    if not history:
        return {}
    kept = getattr(model, "best_epoch", None)  # the epoch the fit kept (its early stop may judge a smoothed score)
    if kept is None:
        kept = max(history, key=lambda h: h.get("valid_ndcg@10", float("-inf")))["epoch"]
    out: dict[str, Any] = {"epochs": int(history[-1]["epoch"]), "best_epoch": int(kept)}
    if getattr(model, "averaged_epochs", None):
        out["averaged_epochs"] = [int(e) for e in model.averaged_epochs]  # type: ignore[attr-defined]
    if getattr(model, "member_epochs", None) and len(model.member_epochs) > 1:  # type: ignore[attr-defined]
        out["members"] = model.member_epochs  # type: ignore[attr-defined]
    return out


def _parallel_names(names: Sequence[str], seed: int) -> list[str]:
    """The torch models among ``names`` that can be fitted in a child process (CPU only, no grid)."""
    from mmrec.recsys.fit_apart import can_fit_apart
    from mmrec.recsys.models import TORCH_MODELS

    apart = [n for n in names if n in TORCH_MODELS and len(grid_points(model_spec(n, seed)[1])) <= 1]
    return apart if apart and can_fit_apart() else []


def _fits_of(model: Recommender) -> list[Any]:
    """The separate fits a model is made of: an ensemble's members (:meth:`~mmrec.recsys.hybrid_ensemble.
    HybridEnsemble.member_models`), else the model itself."""
    members = getattr(model, "member_models", None)
    return members() if callable(members) else [model]


@dataclass
class _ApartFits:
    """Fits running in child processes (:func:`_parallel_torch_fits`)."""

    executor: Any
    models: dict[str, Recommender]
    futures: dict[str, list[Future]]
    started: float
    ended: dict[Future, float]

    def result(self, name: str) -> tuple[Recommender, float]:
        """The fitted model and the wall seconds until its last fit ended."""
        fitted = [f.result()[0] for f in self.futures[name]]
        model = self.models[name]
        seconds = max(self.ended.get(f, time.perf_counter()) for f in self.futures[name]) - self.started
        if hasattr(model, "adopt"):
            model.adopt(fitted, seconds)  # type: ignore[attr-defined]
        else:
            model = fitted[0]
        return model, seconds


def _parallel_torch_fits(models: dict[str, Recommender], split: Split, log: Callable[[str], None] | None) -> _ApartFits:
    """Start fitting the unfitted named ``models`` (an ensemble: each of its members) in child processes
    (:mod:`mmrec.recsys.fit_apart`).

    At most one fit per core runs at once, each child with ``cores // fits left`` torch threads, and a
    child takes the cores of the fits that have ended after each of its epochs.
    """
    from mmrec.recsys.fit_apart import start_fits

    jobs = {n: _fits_of(m) for n, m in models.items()}
    flat = [j for fits in jobs.values() for j in fits]
    if log:
        log(
            f"{split.protocol}: fitting "
            + ", ".join(f"{n}" + (f" ({len(f)} members)" if len(f) > 1 else "") for n, f in jobs.items())
            + f" in {len(flat)} child process(es), {os.cpu_count() or 1} core(s)"
        )
    started = time.perf_counter()
    executor, futures = start_fits(flat, split.train, split.valid)
    ended: dict[Future, float] = {}
    for f in futures:
        f.add_done_callback(lambda done: ended.__setitem__(done, time.perf_counter()))
    per_name, at = {}, 0
    for n, fits in jobs.items():
        per_name[n], at = futures[at : at + len(fits)], at + len(fits)
    return _ApartFits(executor, models, per_name, started, ended)


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
