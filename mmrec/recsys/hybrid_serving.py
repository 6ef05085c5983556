"""Serving the trained recommender from a database.

``mmrec train`` (:func:`mmrec.recsys.selection.train_and_select`) fits the hybrid and the
baselines on the stored interactions (each user's last positive interaction held out), and
keeps the validation winner as a checkpoint in the database (table ``hybrid_models``; the
identity names the model). At recommendation time the model reads the user's *live* history
from the ``users`` table, so interactions recorded after training count at once; items
ingested after training are scored through the hybrid's content projection.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmrec.names import FUSED_COLUMN, MODALITIES
from mmrec.recsys.served import SERVED_BASELINES, BaselineWeights, blend_from_bytes, blended
from mmrec.store.items import Store

# mmrec.recsys.hybrid (torch) is imported inside the functions that need it, so that importing the
# serving layer (and `mmrec items`, `mmrec info`) does not pay for torch.

#: Users with a validation interaction needed before a hybrid is worth training.
MIN_HYBRID_USERS = 20


@dataclass
class HybridTrainReport:
    """What training the hybrid did (``to_dict`` is what ``mmrec train --json`` prints)."""

    saved: bool
    version: int
    message: str
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"saved": self.saved, "version": self.version, "message": self.message, **self.metrics}


class HybridScorer:
    """A loaded served-model checkpoint aligned with the database's current items.

    The model is whichever ``mmrec train`` selected (:mod:`mmrec.recsys.selection`): the hybrid
    or SASRec (torch), a baseline (:mod:`mmrec.recsys.served`), or the blend of the hybrid with SASRec
    and/or ALS (:mod:`mmrec.recsys.hybrid_blend`).

    Parameters
    ----------
    store : Store
    version : int
        The checkpoint version to load.
    dim : int
        Dimension of the fused vectors.
    model : str
        The checkpoint identity's ``name`` (``"hybrid"`` for checkpoints that predate selection).
    content_column : str
        The item vectors the model was trained on (identity ``content_column``,
        :mod:`mmrec.recsys.content_choice`); items ingested later are scored from the same column
        (an item without it gets a zero content vector, i.e. its ID-free bias).
    """

    def __init__(
        self, store: Store, version: int, dim: int, model: str = "hybrid", content_column: str = FUSED_COLUMN
    ) -> None:
        self.version = version
        self.model = model
        self.content_column = content_column
        #: The ``strategy`` of the recommendations this model makes (:data:`mmrec.names.STRATEGIES`).
        self.strategy = model
        self.table_version = store.version()
        weights = store.checkpoint_weights("hybrid", version)
        self.rec: Any = None
        self.baseline: BaselineWeights | None = None
        #: A blend's weights: ``hybrid`` (the ``rec``) 1, ``sasrec`` (``second``) and ``als`` (``baseline``).
        self.blend_weights: dict[str, float] = {}
        self.second: Any = None
        if model in SERVED_BASELINES:
            self.baseline = BaselineWeights(weights)
            model_ids = self.baseline.item_ids
        else:
            from mmrec.recsys.hybrid import HybridRecommender
            from mmrec.recsys.hybrid_ensemble import load_hybrid

            if model == "blend":
                parts, self.blend_weights = blend_from_bytes(weights)
                hybrid_bytes = parts["hybrid"]
                if "als" in parts:
                    self.baseline = BaselineWeights(parts["als"])
                if "sasrec" in parts:
                    self.second, _ = HybridRecommender.from_bytes(parts["sasrec"])
            else:
                hybrid_bytes = weights
            self.rec, model_ids = load_hybrid(hybrid_bytes)  # one fit or an ensemble of them
        columns = list(dict.fromkeys(["id", FUSED_COLUMN, content_column, *(f"has_{m}" for m in MODALITIES)]))
        rows = store.list(limit=None, columns=columns)
        self.ids = [r["id"] for r in rows]
        self.index = {i: n for n, i in enumerate(self.ids)}
        self.has = {m: np.array([bool(r[f"has_{m}"]) for r in rows]) for m in MODALITIES}
        #: ``(n_items, dim)`` the current items' fused vectors (the profiles' space: negative feedback).
        self.fused = _stacked(rows, FUSED_COLUMN, dim)
        #: ``(n_items, D)`` their ``content_column`` vectors, what the model scores new items from.
        self.content = self.fused
        if content_column != FUSED_COLUMN:
            width = self.rec.content_dim if self.rec is not None else dim
            self.content = _stacked(rows, content_column, width)
        model_index = {i: n for n, i in enumerate(model_ids)}
        known = np.array([model_index.get(i, -1) for i in self.ids], np.int64)
        if self.rec is not None:
            self.table = self.rec.extended_table(known, self.content)
        if self.second is not None:
            # trained on the same split as the hybrid, so the same item order
            self.second_table = self.second.extended_table(known, self.content)
        if self.baseline is not None:
            base_index = {i: n for n, i in enumerate(self.baseline.item_ids)}
            self._base_known = np.array([base_index.get(i, -1) for i in self.ids], np.int64)
            self._base_of = base_index

    def _baseline_scores(self, history: list[str]) -> np.ndarray:
        """The baseline's scores over the current items; items it never saw get its lowest score."""
        assert self.baseline is not None
        raw = self.baseline.scores(np.array([self._base_of[i] for i in history if i in self._base_of], np.int64))
        known = self._base_known >= 0
        out = np.full(len(self.ids), float(raw.min(initial=0.0)) - 1.0, np.float32)
        out[known] = raw[self._base_known[known]]
        return out

    def scores(self, history: list[str]) -> np.ndarray:
        """``(n_items,)`` scores for a user whose positive history is ``history`` (oldest first)."""
        if self.rec is None:
            return self._baseline_scores(history)
        seq = np.array([self.index[i] for i in history if i in self.index], np.int64)
        hybrid = self.rec.score_sequences([seq], table=self.table)[0]
        if self.model != "blend":
            return hybrid
        part_scores = {
            "hybrid": lambda: hybrid,
            "sasrec": lambda: self.second.score_sequences([seq], table=self.second_table)[0],
            "als": lambda: self._baseline_scores(history),
        }
        return blended((w, part_scores[name]) for name, w in self.blend_weights.items())


def _stacked(rows: list[dict[str, Any]], column: str, dim: int) -> np.ndarray:
    """``(len(rows), dim)`` float32 of the rows' ``column`` vectors, zeros where one is null."""
    out = np.zeros((len(rows), dim), np.float32)
    for n, r in enumerate(rows):
        if r.get(column) is not None:
            out[n] = r[column]
    return out


class HybridCache:
    """The scorer for the newest hybrid checkpoint, rebuilt when a new checkpoint or new items appear.

    One per :class:`~mmrec.engine.Engine`; safe to share between threads.

    Parameters
    ----------
    store : Store
    dim : int
        Dimension of the fused vectors.
    """

    def __init__(self, store: Store, dim: int) -> None:
        self.store = store
        self.dim = dim
        self._scorer: HybridScorer | None = None
        self._lock = threading.Lock()

    def current(self) -> HybridScorer | None:
        """The scorer of the newest checkpoint (``None`` when no hybrid was trained)."""
        checkpoints = self.store.checkpoints("hybrid")
        if not checkpoints:
            return None
        version = checkpoints[-1]["version"]
        identity = checkpoints[-1].get("identity", {})
        model = str(identity.get("name", "hybrid"))
        # checkpoints saved before the content column was chosen were trained on the fused vectors
        column = str(identity.get("content_column", FUSED_COLUMN))
        with self._lock:
            cached = self._scorer
            if cached is None or cached.version != version or cached.table_version != self.store.version():
                cached = self._scorer = HybridScorer(self.store, version, self.dim, model, column)
        return cached

    def drop(self) -> None:
        """Forget the loaded scorer (the next :meth:`current` loads it again)."""
        with self._lock:
            self._scorer = None
