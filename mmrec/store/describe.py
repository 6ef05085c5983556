"""Read-only descriptions of a database and its items, as plain JSON values (``mmrec info``, ``mmrec items ID``)."""

from __future__ import annotations

from typing import Any

import numpy as np

from encoders.registry import shared_encoder
from mmrec.names import MODALITIES, scores_column, vector_column
from mmrec.store.items import Store, jsonable_row


def describe_item(store: Store, item_id: str, *, vectors: bool = False, top_labels: int = 5) -> dict[str, Any]:
    """One item with its text, metadata, problems and top predicted class labels per modality.

    Parameters
    ----------
    store : Store
    item_id : str
    vectors : bool
        Include the raw per-modality vectors and class scores.
    top_labels : int
        How many class labels (image: ImageNet, audio: AudioSet) to show.
    """
    row = store.get(item_id)
    specs = store.encoder_specs() or {}
    labels: dict[str, list[dict[str, Any]]] = {}
    for m in MODALITIES:
        scores = row.get(scores_column(m))
        if scores is None or m not in specs:
            continue
        # The class names only: an encoder object is cheap until it encodes (its model loads lazily).
        names = shared_encoder(specs[m]["spec"], m).class_names or ()
        arr = np.asarray(scores, np.float32)
        top = np.argsort(-arr)[:top_labels]
        labels[m] = [{"label": names[i] if i < len(names) else str(i), "score": round(float(arr[i]), 4)} for i in top]
    hidden = ("_vec", "_scores", "_shared")
    out = jsonable_row({k: v for k, v in row.items() if vectors or not k.endswith(hidden)})
    out["labels"] = labels
    weights = row.get("fusion_weights")
    out["fusion_weights"] = (
        None if weights is None else {m: round(float(w), 4) for m, w in zip(MODALITIES, weights, strict=True) if w > 0}
    )
    return out


def describe_database(store: Store) -> dict[str, Any]:
    """Counts, catalogs, encoders, the fusion identity and the model checkpoints of ``store``."""
    if not store.exists():
        store.items()  # raises the one-line "no database at …" (and creates nothing)
    out: dict[str, Any] = {"db": store.uri, "items": store.count()}
    if not store.has_items():
        return out
    out["modalities"] = {m: store.count(f"has_{m}") for m in MODALITIES}
    catalogs: dict[str, int] = {}
    for r in store.list(limit=None, columns=["id", "catalog"]):
        catalogs[r["catalog"]] = catalogs.get(r["catalog"], 0) + 1
    out["catalogs"] = catalogs
    out["encoders"] = store.encoder_specs()
    out["vector_columns"] = {m: vector_column(m) for m in MODALITIES}
    out["version"] = store.version()
    out["fusion"] = store.fusion_identity()
    for kind in ("fusion", "hybrid"):
        out[f"{kind}_checkpoints"] = [
            {"version": c["version"], "created_at": c["created_at"].isoformat(), **c["metrics"]}
            for c in store.checkpoints(kind)
        ]
    return out
