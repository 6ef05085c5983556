"""Checkpoints of the non-neural models that ``mmrec train`` may select and serve.

:mod:`mmrec.recsys.selection` serves whichever candidate wins on validation: the hybrid, SASRec,
a blend of the hybrid with SASRec and/or ALS, or a baseline (ALS, item-kNN, MostPopular). A baseline
checkpoint lives in the same versioned table as the hybrid's (``hybrid_models``; its identity
names the model), so versions, forgetting and the serving cache treat every served model alike.

The weights are an ``.npz`` (no pickle: a database must not be able to run code when loaded):

* ``popular`` — ``counts`` ``(n,)`` positive interactions per item.
* ``itemknn`` — the top-k similarity matrix as CSR ``sim_data``, ``sim_indices``, ``sim_indptr``.
* ``als`` — ``item_factors`` ``(n, f)``, ``regularization`` and ``alpha``: a user's factors are
  solved from their live history at request time (the exact fold-in ALS itself does), so new
  interactions count without retraining.

Every model scores item *indices of its training catalog*; :class:`ServedBaseline` maps a live
history of item ids onto them and gives items ingested after training the lowest score.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from mmrec.errors import StoreError

#: Baselines that can be saved and served.
SERVED_BASELINES = ("popular", "itemknn", "als")


def baseline_to_bytes(name: str, model: Any, item_ids: list[str]) -> bytes:
    """The ``.npz`` weights of a fitted baseline (``name`` from :data:`SERVED_BASELINES`) over ``item_ids``."""
    arrays: dict[str, np.ndarray] = {"item_ids": np.array(item_ids, dtype=str)}
    if name == "popular":
        arrays["counts"] = np.asarray(model.counts, np.float32)
    elif name == "itemknn":
        sim = model.sim.tocsr()
        arrays.update(sim_data=sim.data.astype(np.float32), sim_indices=sim.indices, sim_indptr=sim.indptr)
    elif name == "als":
        arrays["item_factors"] = np.asarray(model.model.item_factors, np.float32)
        arrays["regularization"] = np.float32(model.params["regularization"])
        arrays["alpha"] = np.float32(model.params["alpha"])
    else:
        raise ValueError(f"cannot save model {name!r}; servable baselines: {', '.join(SERVED_BASELINES)}")
    buf = io.BytesIO()
    np.savez(buf, name=np.array(name), **arrays)
    return buf.getvalue()


class BaselineWeights:
    """A loaded baseline checkpoint: scores over its training catalog from item-index histories.

    Parameters
    ----------
    data : bytes
        What :func:`baseline_to_bytes` wrote.
    """

    def __init__(self, data: bytes) -> None:
        try:
            z = np.load(io.BytesIO(data), allow_pickle=False)
            self.name = str(z["name"])
            self.arrays = {k: z[k] for k in z.files if k not in ("name", "item_ids")}
            self.item_ids = [str(x) for x in z["item_ids"]]
        except (ValueError, KeyError, OSError) as e:
            raise StoreError(f"unreadable baseline checkpoint: {e}") from e
        if self.name not in SERVED_BASELINES:
            raise StoreError(
                f"baseline checkpoint of unknown model {self.name!r}; known: {', '.join(SERVED_BASELINES)}"
            )
        if self.name == "itemknn":
            import scipy.sparse as sp

            a = self.arrays
            n = len(a["sim_indptr"]) - 1
            self.sim = sp.csr_matrix((a["sim_data"], a["sim_indices"], a["sim_indptr"]), shape=(n, n))
        if self.name == "als":
            y = self.arrays["item_factors"].astype(np.float64)
            self._y = y
            self._yty = y.T @ y + float(self.arrays["regularization"]) * np.eye(y.shape[1])

    @property
    def n_items(self) -> int:
        a = self.arrays
        if self.name == "popular":
            return len(a["counts"])
        if self.name == "itemknn":
            return len(a["sim_indptr"]) - 1
        return len(a["item_factors"])

    def scores(self, items: np.ndarray) -> np.ndarray:
        """``(n_items,)`` float32 scores for a user whose positive history is ``items`` (model indices)."""
        items = np.unique(np.asarray(items, np.int64))
        if self.name == "popular":
            return self.arrays["counts"].astype(np.float32)
        if self.name == "itemknn":
            if not len(items):
                return np.zeros(self.n_items, np.float32)
            return np.asarray(self.sim[items].sum(axis=0), np.float32).ravel()
        # ALS fold-in with confidence alpha on each history item (implicit's recalculate_user):
        # (YᵀY + λI + Σ (c - 1) y yᵀ) u = Σ c y.
        if not len(items):
            return np.zeros(self.n_items, np.float32)
        c = float(self.arrays["alpha"])
        yh = self._y[items]
        u = np.linalg.solve(self._yty + (c - 1.0) * yh.T @ yh, c * yh.sum(axis=0))
        return (self._y @ u).astype(np.float32)


def stored_parts(names: Iterable[str], weights: Mapping[str, float]) -> list[str]:
    """The blend parts a checkpoint stores: the hybrid, and every other part whose weight is not 0."""
    return [n for n in names if n == "hybrid" or weights.get(n, 0.0)]


def blend_to_bytes(parts: dict[str, bytes], weights: dict[str, float]) -> bytes:
    """A blend checkpoint: every part's checkpoint bytes (``hybrid`` first, then ``sasrec``/``als``) and weights.

    The hybrid and SASRec parts hold :meth:`~mmrec.recsys.hybrid.HybridRecommender.to_bytes`, ALS the
    ``.npz`` of :func:`baseline_to_bytes`; parts of weight 0 are not stored (:func:`stored_parts`).
    """
    kept = {n: parts[n] for n in stored_parts(parts, weights)}
    meta = json.dumps({"weights": {n: float(weights.get(n, 1.0)) for n in kept}})
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(meta), **{n: np.frombuffer(b, np.uint8) for n, b in kept.items()})
    return buf.getvalue()


def blend_from_bytes(data: bytes) -> tuple[dict[str, bytes], dict[str, float]]:
    """``(parts, weights)`` of a blend checkpoint (also of the older hybrid + ALS one, ``{"weight": w}``)."""
    try:
        z = np.load(io.BytesIO(data), allow_pickle=False)
        meta = json.loads(str(z["meta"]))
        if "weights" not in meta:  # the hybrid + ALS blend of the release before
            return {"hybrid": z["hybrid"].tobytes(), "als": z["als"].tobytes()}, {"hybrid": 1.0, "als": meta["weight"]}
        weights = {str(n): float(w) for n, w in meta["weights"].items()}
        return {n: z[n].tobytes() for n in weights}, weights
    except (ValueError, KeyError, OSError) as e:
        raise StoreError(f"unreadable blend checkpoint: {e}") from e


def standardise(scores: np.ndarray) -> np.ndarray:
    """Per row ``(s - mean) / std``: puts two models' scores on one scale before they are added."""
    s = np.asarray(scores, np.float32)
    mean = s.mean(axis=-1, keepdims=True)
    std = s.std(axis=-1, keepdims=True)
    return (s - mean) / (std + 1e-6)


def blended(parts: Iterable[tuple[float, Callable[[], np.ndarray]]]) -> np.ndarray:
    """``Σ w · standardise(scores())`` over ``(w, scores)`` parts: the blend's one formula.

    Used by :class:`~mmrec.recsys.hybrid_blend.Blend` (evaluation, selection) and by the served blend, so the
    model chosen on validation is the model served. A part of weight 0 is not scored (``scores`` not called).
    """
    out: np.ndarray | None = None
    for w, scores in parts:
        if w:
            z = w * standardise(scores())
            out = z if out is None else out + z
    if out is None:
        raise ValueError("a blend needs a part with a non-zero weight")
    return out
