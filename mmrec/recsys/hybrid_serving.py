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
from typing import TYPE_CHECKING, Any

import numpy as np

from encoders.base import MODALITIES

if TYPE_CHECKING:
    from mmrec.engine import Engine
    from mmrec.recsys.hybrid import HybridConfig

#: Users with a validation interaction needed before a hybrid is worth training.
MIN_HYBRID_USERS = 20


def train_hybrid(engine: Engine, config: HybridConfig | None = None, *, log: Any = None) -> dict[str, Any]:
    """Fit, save and activate a hybrid; returns ``{"saved", "message", "version", …metrics}``."""
    from mmrec.errors import InvalidArgumentError
    from mmrec.recsys.evaluation import interaction_data, leave_last_out
    from mmrec.recsys.hybrid import HybridRecommender

    store = engine.store
    current = [c["version"] for c in store.checkpoints("hybrid")]
    try:
        data = interaction_data(engine)
    except InvalidArgumentError:
        return {
            "saved": False,
            "version": max(current, default=0),
            "message": "no interactions recorded: the hybrid recommender needs some (mmrec import-interactions)",
        }
    split = leave_last_out(data)
    users = len(np.unique(split.valid.users))
    if users < MIN_HYBRID_USERS:
        return {
            "saved": False,
            "version": max(current, default=0),
            "message": f"too few users to train the hybrid: {users} have 3 or more positive interactions, at least {MIN_HYBRID_USERS} are needed; recommendations use profiles",
        }
    rec = HybridRecommender(config)
    rec.fit(split.train, split.valid, log=log)
    best = max((h["valid_ndcg@10"] for h in rec.history), default=float("nan"))
    version = max(current, default=0) + 1
    metrics = {
        "users": data.n_users,
        "items": data.n_items,
        "interactions": len(data),
        "epochs": rec.history[-1]["epoch"] if rec.history else 0,
        "seconds": round(rec.seconds, 2),
        "valid_ndcg@10": round(best, 4),
    }
    store.save_checkpoint(
        "hybrid", version, {"name": "hybrid", "version": version}, rec.to_bytes(data.item_ids), metrics
    )
    engine.drop_hybrid_cache()
    msg = f"trained hybrid v{version} in {rec.seconds:.1f} s ({metrics['epochs']} epochs, {data.n_users} users, {len(data)} interactions); validation NDCG@10 {best:.4f}"
    return {"saved": True, "version": version, "message": msg, **metrics}


class HybridScorer:
    """A loaded hybrid checkpoint aligned with the database's current items."""

    def __init__(self, engine: Engine, version: int) -> None:
        from mmrec.recsys.hybrid import HybridRecommender

        store = engine.store
        self.version = version
        self.table_version = store.version()
        self.rec, model_ids = HybridRecommender.from_bytes(store.checkpoint_weights("hybrid", version))
        rows = store.list(limit=None, columns=["id", "fused_vec", *(f"has_{m}" for m in MODALITIES)])
        self.ids = [r["id"] for r in rows]
        self.index = {i: n for n, i in enumerate(self.ids)}
        self.has = {m: np.array([bool(r[f"has_{m}"]) for r in rows]) for m in MODALITIES}
        dim = engine.users().dim
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


_LOCK = threading.Lock()


def scorer_for(engine: Engine) -> HybridScorer | None:
    """The engine's cached scorer for the newest hybrid checkpoint (rebuilt when the catalog changed)."""
    checkpoints = engine.store.checkpoints("hybrid")
    if not checkpoints:
        return None
    version = checkpoints[-1]["version"]
    with _LOCK:
        cached = engine._hybrid
        if cached is None or cached.version != version or cached.table_version != engine.store.version():
            cached = engine._hybrid = HybridScorer(engine, version)
    return cached
