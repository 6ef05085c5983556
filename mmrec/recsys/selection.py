"""Never serve a loser: ``mmrec train`` fits every candidate and serves the one that wins on validation.

The stored interactions are split in time (:func:`~mmrec.recsys.splits.leave_last_out`: each
user's newest positive is the validation target, everything before it is training). Every
candidate is fitted on the training part — the hybrid and ID-only SASRec (early-stopped on
validation), ALS and item-kNN (their grids tuned on validation, :func:`~mmrec.recsys.evaluation.tune`),
MostPopular, and the blend of the hybrid with SASRec and ALS (weights chosen on validation,
:mod:`mmrec.recsys.hybrid_blend`) — and ranked on validation by NDCG@10 (all items, the
training history masked; the blend by its weight search's *cross-fitted* score,
:func:`~mmrec.recsys.hybrid_blend.cross_fitted_scores`, since the best of its 16 grid points scored on
the same users is optimistic against a single model's score). The winner is saved as the next checkpoint of the served-model table
(``hybrid_models``; the identity names the model) with every candidate's validation metrics, and
``recommend`` names it in its strategy. A user's data decides, not our defaults: on a catalog
where co-occurrence is all there is, ALS is served; where order matters, the hybrid.

Ties go to the earlier candidate in :data:`CANDIDATES` order (the hybrid first).

Before any fit, the content vectors the hybrid gets are chosen on the same validation split
(:mod:`mmrec.recsys.content_choice`: the fused vectors or a modality's raw encoder vectors that
every item has); the checkpoint's identity names the column (``content_column``), so that serving
scores items, old and new, from the vectors the model was trained on.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrec.errors import InvalidArgumentError
from mmrec.recsys.content_choice import CONTENT_MODELS, ContentChoice, choose_content_column, split_with_content
from mmrec.recsys.data import InteractionData, Recommender
from mmrec.recsys.hybrid_blend import Blend
from mmrec.recsys.hybrid_serving import MIN_HYBRID_USERS, HybridTrainReport
from mmrec.recsys.metrics import rank_metrics
from mmrec.recsys.served import SERVED_BASELINES, baseline_to_bytes, blend_to_bytes, stored_parts
from mmrec.recsys.splits import leave_last_out
from mmrec.store.items import Store

if TYPE_CHECKING:
    from mmrec.recsys.hybrid import HybridConfig

#: What ``mmrec train`` may serve, in tie-break order. The blend adds to the hybrid those of
#: :data:`BLEND_PARTS` that are candidates too (:class:`~mmrec.recsys.hybrid_blend.Blend`).
CANDIDATES: tuple[str, ...] = ("hybrid", "blend", "sasrec", "als", "itemknn", "popular")
SELECTABLE: tuple[str, ...] = CANDIDATES
#: The models the blend may add to the hybrid, each with a weight chosen on validation.
BLEND_PARTS: tuple[str, ...] = ("sasrec", "als")


@dataclass
class Candidate:
    """One fitted candidate and its validation figures."""

    name: str
    model: Recommender
    metrics: dict[str, float]


def _validate(model: Recommender, train: InteractionData, valid: InteractionData) -> dict[str, float]:
    res = rank_metrics(model, train, valid, kmax=10, batch=1024)
    return {f"valid_{m}@10": round(res.at(m, 10), 4) for m in ("ndcg", "recall", "mrr")}


def fit_candidates(
    train: InteractionData,
    valid: InteractionData,
    names: Sequence[str] = CANDIDATES,
    config: HybridConfig | None = None,
    *,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
) -> list[Candidate]:
    """Fit each named candidate on ``train`` (tuned / early-stopped on ``valid``) and validate it.

    Raises
    ------
    InvalidArgumentError
        For a name not in :data:`SELECTABLE`.
    """
    from mmrec.recsys.evaluation import tune
    from mmrec.recsys.models import model_spec

    bad = [n for n in names if n not in SELECTABLE]
    if bad or not names:
        raise InvalidArgumentError(
            f"unknown candidate(s) {', '.join(map(repr, bad)) or '(none given)'}; valid: {', '.join(SELECTABLE)}"
        )
    fitted: dict[str, Recommender] = {}
    out: list[Candidate] = []
    seconds: dict[str, float] = {}

    def get(name: str) -> Recommender:
        if name in fitted:
            return fitted[name]
        t0 = time.perf_counter()
        if name in ("hybrid", "sasrec"):
            from mmrec.recsys.hybrid import HybridConfig

            cfg = config or HybridConfig(seed=seed)
            if name == "sasrec":
                from mmrec.recsys.sasrec import SASRec

                model: Recommender = SASRec(cfg)
            else:
                from mmrec.recsys.hybrid_ensemble import HybridEnsemble

                model = HybridEnsemble(cfg)  # config.members fits, side by side when the cores allow
            model.fit(train, valid, log=log)  # type: ignore[call-arg]
        else:
            factory, grid = model_spec(name, seed)
            model = tune(factory, grid, train, valid, seed=seed).model if grid else factory()
            if not grid:
                model.fit(train, valid)
        seconds[name] = round(time.perf_counter() - t0, 2)
        fitted[name] = model
        return model

    for name in names:
        if name == "blend":
            parts = {n: get(n) for n in ("hybrid", *BLEND_PARTS) if n == "hybrid" or n in names}
            t1 = time.perf_counter()
            model = Blend(parts)
            model.fit(train, valid)
            # the parts' own fits are reported on their rows; this is the weight search alone
            seconds["blend"] = round(time.perf_counter() - t1, 2)
        else:
            model = get(name)
        metrics = {**_validate(model, train, valid), "fit_seconds": seconds[name]}
        if isinstance(model, Blend) and model.cross_fitted_ndcg is not None:
            # The blend competes with its weight search's cross-fitted score, not the in-sample best point's
            # (the winner's curse of a 16-point grid; mmrec.recsys.hybrid_blend); both are reported.
            metrics["valid_ndcg@10_in_sample"] = metrics["valid_ndcg@10"]
            metrics["valid_ndcg@10"] = round(model.cross_fitted_ndcg, 4)
        if getattr(model, "params", None):
            metrics["params"] = dict(model.params)  # type: ignore[assignment]
        out.append(Candidate(name, model, metrics))
        if log:
            log(f"candidate {name:<8} validation NDCG@10 {metrics['valid_ndcg@10']:.4f} ({seconds[name]:.1f} s)")
    return out


def winner(candidates: Sequence[Candidate]) -> Candidate:
    """The best validation NDCG@10; the first listed wins ties."""
    return max(candidates, key=lambda c: (c.metrics["valid_ndcg@10"], -candidates.index(c)))


def checkpoint_bytes(chosen: Candidate, item_ids: list[str]) -> bytes:
    """The served-model weights of the chosen candidate (see :mod:`mmrec.recsys.served`)."""
    if chosen.name in ("hybrid", "sasrec"):
        return chosen.model.to_bytes(item_ids)  # type: ignore[attr-defined]
    if chosen.name == "blend":
        blend: Blend = chosen.model  # type: ignore[assignment]
        stored = stored_parts(blend.parts, blend.weights)  # a weight-0 part is not even serialised
        parts = {
            n: baseline_to_bytes(n, m, item_ids) if n in SERVED_BASELINES else m.to_bytes(item_ids)  # type: ignore[attr-defined]
            for n, m in blend.parts.items()
            if n in stored
        }
        return blend_to_bytes(parts, blend.weights)
    if chosen.name in SERVED_BASELINES:
        return baseline_to_bytes(chosen.name, chosen.model, item_ids)
    raise InvalidArgumentError(f"model {chosen.name!r} cannot be served")


def train_and_select(
    store: Store,
    data: InteractionData | None,
    config: HybridConfig | None = None,
    *,
    candidates: Sequence[str] = CANDIDATES,
    log: Callable[[str], None] | None = None,
) -> HybridTrainReport:
    """Fit the candidates on a time-ordered validation split of ``data``; save and serve the winner.

    Parameters
    ----------
    store : Store
        Where the checkpoint is saved (table ``hybrid_models``, identity ``{"name": winner}``).
    data : InteractionData or None
        The database's interactions; ``None`` when it has none.
    config : HybridConfig, optional
        The hybrid's (and SASRec's) configuration.
    candidates : sequence of str
        From :data:`SELECTABLE`; ``("hybrid",)`` trains and serves the hybrid alone.
    log : callable, optional
        Training lines and one line per candidate.

    Returns
    -------
    HybridTrainReport
        ``metrics["served"]`` names the winner, ``metrics["candidates"]`` holds every candidate's
        validation metrics.
    """
    current = max((c["version"] for c in store.checkpoints("hybrid")), default=0)
    if data is None:
        return HybridTrainReport(
            False, current, "no interactions recorded: the trained recommenders need some (mmrec import-interactions)"
        )
    split = leave_last_out(data)
    users = len(np.unique(split.valid.users))
    if users < MIN_HYBRID_USERS:
        return HybridTrainReport(
            False,
            current,
            f"too few users to train a recommender: {users} have 3 or more positive interactions, at least {MIN_HYBRID_USERS} are needed; recommendations use profiles",
        )
    t0 = time.perf_counter()
    choice = ContentChoice(data.content_column)
    if any(n in CONTENT_MODELS for n in candidates):
        choice = choose_content_column(split.train, split.valid)
        split = split_with_content(split, choice.column)
        if log and choice.scores:
            log(f"content vectors: {choice.column} (content validation NDCG@10 {choice.to_dict()['content_choice']})")
    fitted = fit_candidates(split.train, split.valid, candidates, config, log=log)
    chosen = winner(fitted)
    weights = checkpoint_bytes(chosen, data.item_ids)
    seconds = time.perf_counter() - t0
    hybrid = next((c for c in fitted if c.name == "hybrid"), None)
    metrics: dict[str, Any] = {
        "users": data.n_users,
        "items": data.n_items,
        "interactions": len(data),
        "served": chosen.name,
        "seconds": round(seconds, 2),
        "valid_ndcg@10": chosen.metrics["valid_ndcg@10"],
        "candidates": {c.name: c.metrics for c in fitted},
        **choice.to_dict(),
    }
    if hybrid is not None:
        rec = hybrid.model
        metrics["epochs"] = rec.history[-1]["epoch"] if rec.history else 0  # type: ignore[attr-defined]
        metrics["hybrid_seconds"] = round(rec.seconds, 2)  # type: ignore[attr-defined]
        if len(getattr(rec, "member_epochs", [])) > 1:
            metrics["hybrid_members"] = rec.member_epochs  # type: ignore[attr-defined]
    with store.writer.hold("saving the selected recommender"):
        version = max((c["version"] for c in store.checkpoints("hybrid")), default=0) + 1  # again, under the lock
        identity = {"name": chosen.name, "version": version, "content_column": choice.column}
        store.save_checkpoint("hybrid", version, identity, weights, metrics)
    others = ", ".join(f"{c.name} {c.metrics['valid_ndcg@10']:.4f}" for c in fitted if c is not chosen)
    msg = (
        f"serving {chosen.name} v{version} (validation NDCG@10 {chosen.metrics['valid_ndcg@10']:.4f}"
        + (f"; {others}" if others else "")
        + f"), {len(fitted)} candidate(s) fitted in {seconds:.1f} s on {data.n_users} users, {len(data)} interactions"
    )
    return HybridTrainReport(True, version, msg, metrics)
