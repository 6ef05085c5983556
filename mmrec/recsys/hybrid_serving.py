"""Training the hybrid from a database, and serving recommendations with it.

``mmrec train`` fits :class:`mmrec.recsys.hybrid.HybridRecommender` on the stored
interactions (each user's last positive interaction held out for early
stopping) and keeps the checkpoint in the database (table ``hybrid_models``).
At recommendation time the user tower reads the user's *live* history from
the ``users`` table, so interactions recorded after training count at once;
items ingested after training are scored through the content projection.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrec.names import MODALITIES
from mmrec.recsys.data import InteractionData
from mmrec.recsys.splits import leave_last_out
from mmrec.store.items import Store

if TYPE_CHECKING:
    from mmrec.recsys.hybrid import HybridConfig

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


def train_hybrid(
    store: Store, data: InteractionData | None, config: HybridConfig | None = None, *, log: Any = None
) -> HybridTrainReport:
    """Fit a hybrid on ``data`` and save it as the next checkpoint version in ``store``.

    Parameters
    ----------
    store : Store
        Where the checkpoint is saved (table ``hybrid_models``).
    data : InteractionData or None
        The database's interactions (:func:`mmrec.recsys.data.interaction_data`); ``None`` when it has none.
    config : HybridConfig, optional
    log : callable, optional
        Receives one line per validation.
    """
    current = max((c["version"] for c in store.checkpoints("hybrid")), default=0)
    if data is None:
        return HybridTrainReport(
            False, current, "no interactions recorded: the hybrid recommender needs some (mmrec import-interactions)"
        )
    split = leave_last_out(data)
    users = len(np.unique(split.valid.users))
    if users < MIN_HYBRID_USERS:
        return HybridTrainReport(
            False,
            current,
            f"too few users to train the hybrid: {users} have 3 or more positive interactions, at least {MIN_HYBRID_USERS} are needed; recommendations use profiles",
        )
    from mmrec.recsys.hybrid import HybridRecommender

    rec = HybridRecommender(config)
    rec.fit(split.train, split.valid, log=log)
    best = max((h["valid_ndcg@10"] for h in rec.history), default=float("nan"))
    version = current + 1
    metrics = {
        "users": data.n_users,
        "items": data.n_items,
        "interactions": len(data),
        "epochs": rec.history[-1]["epoch"] if rec.history else 0,
        "seconds": round(rec.seconds, 2),
        "valid_ndcg@10": round(best, 4),
    }
    with store.writer.hold("saving the trained hybrid"):
        version = max((c["version"] for c in store.checkpoints("hybrid")), default=0) + 1  # again, under the lock
        store.save_checkpoint(
            "hybrid", version, {"name": "hybrid", "version": version}, rec.to_bytes(data.item_ids), metrics
        )
    msg = f"trained hybrid v{version} in {rec.seconds:.1f} s ({metrics['epochs']} epochs, {data.n_users} users, {len(data)} interactions); validation NDCG@10 {best:.4f}"
    return HybridTrainReport(True, version, msg, metrics)


class HybridScorer:
    """A loaded hybrid checkpoint aligned with the database's current items.

    Parameters
    ----------
    store : Store
    version : int
        The checkpoint version to load.
    dim : int
        Dimension of the fused vectors.
    """

    def __init__(self, store: Store, version: int, dim: int) -> None:
        from mmrec.recsys.hybrid import HybridRecommender

        self.version = version
        self.table_version = store.version()
        self.rec, model_ids = HybridRecommender.from_bytes(store.checkpoint_weights("hybrid", version))
        rows = store.list(limit=None, columns=["id", "fused_vec", *(f"has_{m}" for m in MODALITIES)])
        self.ids = [r["id"] for r in rows]
        self.index = {i: n for n, i in enumerate(self.ids)}
        self.has = {m: np.array([bool(r[f"has_{m}"]) for r in rows]) for m in MODALITIES}
        self.fused = np.zeros((len(rows), dim), np.float32)
        for n, r in enumerate(rows):
            if r["fused_vec"] is not None:
                self.fused[n] = r["fused_vec"]
        model_index = {i: n for n, i in enumerate(model_ids)}
        known = np.array([model_index.get(i, -1) for i in self.ids], np.int64)
        self.table = self.rec.extended_table(known, self.fused)

    def scores(self, history: list[str]) -> np.ndarray:
        """``(n_items,)`` scores for a user whose positive history is ``history`` (oldest first)."""
        seq = np.array([self.index[i] for i in history if i in self.index], np.int64)
        return self.rec.score_sequences([seq], table=self.table)[0]


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
        with self._lock:
            cached = self._scorer
            if cached is None or cached.version != version or cached.table_version != self.store.version():
                cached = self._scorer = HybridScorer(self.store, version, self.dim)
        return cached

    def drop(self) -> None:
        """Forget the loaded scorer (the next :meth:`current` loads it again)."""
        with self._lock:
            self._scorer = None
