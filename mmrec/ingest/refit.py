"""``mmrec train``: learn the fusion layer from the catalog's stored vectors.

The encoders stay frozen and no media is decoded again: the inputs are the
stored per-modality vectors and class scores. A trained layer that beats the
untrained one on held-out items is saved as a new checkpoint version in the
database (table ``fusion_models``); then every item's fused and shared-space
vectors are recomputed with it and the fused column's metadata names it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrec.config import IngestConfig
from mmrec.names import MODALITIES, fusion_columns, scores_column, vector_column
from mmrec.space import SharedSpace
from mmrec.store.items import Store
from mmrec.store.writer import crash_point

if TYPE_CHECKING:
    from fusion.train import TrainConfig

#: Items with two or more modalities needed to learn anything (contrastive batches need negatives).
#: Starting from the pretrained layer, a small catalog fine-tunes at a lower rate with early
#: stopping on held-out items (see ``fusion.train.TrainConfig.small_catalog``).
MIN_TRAIN_ITEMS = 10


@dataclass
class TrainReport:
    """What ``mmrec train`` did."""

    items: int
    multimodal_items: int
    saved: bool
    message: str
    version: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "multimodal_items": self.multimodal_items,
            "saved": self.saved,
            "version": self.version,
            "message": self.message,
            **self.metrics,
        }


def _training_columns() -> list[str]:
    cols = ["id"]
    for m in MODALITIES:
        cols += [vector_column(m), scores_column(m)] if m != "text" else [vector_column(m)]
    return cols


def train_space(
    store: Store,
    space: SharedSpace,
    config: TrainConfig | None = None,
    *,
    log: Any = None,
    item_ids: list[str] | None = None,
) -> tuple[TrainReport, SharedSpace]:
    """Train a fusion layer on ``store``'s items; save it and refit every item's fused vectors when it is better.

    ``space`` is not changed: the returned space is the new one when a layer was saved, else ``space``.

    Parameters
    ----------
    store : Store
    space : SharedSpace
        The space that made the stored fused vectors (its layer is the starting point).
    config : fusion.train.TrainConfig, optional
    log : callable, optional
        Receives one line per epoch.
    item_ids : list of str, optional
        Train on these items only (e.g. to hold items out for evaluation).
        Every item's vectors are recomputed all the same.
    """
    from fusion.train import TrainConfig, train_fusion

    config = config or TrainConfig()
    schema_names = set(store.column_names())
    columns = [c for c in _training_columns() if c in schema_names]
    rows = store.list(limit=None, columns=columns)
    all_rows = rows
    if item_ids is not None:
        wanted = set(item_ids)
        rows = [r for r in rows if r["id"] in wanted]
    data = space.inputs_from_rows(rows)
    multimodal = int((data.mask.sum(axis=1) >= 2).sum())
    if multimodal < MIN_TRAIN_ITEMS:
        report = TrainReport(
            items=len(rows),
            multimodal_items=multimodal,
            saved=False,
            message=(
                f"too few items to train on: {multimodal} have two or more modalities, at least {MIN_TRAIN_ITEMS} are needed; "
                f"keeping the {_describe(space)} fusion"
            ),
            version=space.version,
        )
        return report, space
    # Items with one modality teach nothing about alignment; keep them out of the batches.
    data = data.subset(np.flatnonzero(data.mask.sum(axis=1) >= 2))
    if space.version or space.pretrained:  # fine-tuning: a gentler rate, more held out (TrainConfig.for_finetuning)
        config = config.for_finetuning()
    result = train_fusion(space.layer, data, config, log=log)
    # What the new layer was fine-tuned from (a trained checkpoint, the pretrained layer or the untrained mean).
    metrics = {**result.summary(), "started_from": _describe(space)}
    if not result.improved:
        report = TrainReport(
            len(rows),
            multimodal,
            False,
            f"training did not beat the current fusion on held-out items (loss {result.val_loss_untrained:.4f}); kept it",
            space.version,
            metrics,
        )
        return report, space
    with store.writer.hold("saving the trained fusion layer"):
        version = max([c["version"] for c in store.checkpoints("fusion")] + [space.version]) + 1
        identity = {"name": result.layer.registry_name, "version": version, "fingerprint": result.layer.fingerprint()}
        store.save_checkpoint("fusion", version, identity, result.layer.to_bytes(), metrics)
        crash_point("train:after-checkpoint")
        trained = space.with_layer(result.layer, version)
        apply_space(store, trained, rows=all_rows)
    msg = (
        f"trained fusion v{version} in {result.seconds:.1f} s ({result.epochs} epochs, {result.train_items} items); "
        f"held-out loss {result.val_loss_untrained:.4f} → {result.val_loss_trained:.4f}"
    )
    return TrainReport(len(rows), multimodal, True, msg, version, metrics), trained


def _describe(space: SharedSpace) -> str:
    if space.version:
        return f"trained v{space.version}"
    return f"pretrained {space.pretrained}" if space.pretrained else "untrained"


def apply_space(store: Store, space: SharedSpace, rows: list[dict[str, Any]] | None = None) -> None:
    """Rewrite every item's fusion columns with ``space`` and label them with its identity, crash-safely.

    The label is written first as *pending* (naming the target layer, whose checkpoint is already
    saved), then the vectors, then the final label. A crash in between leaves a pending label:
    readers load the target layer, ``mmrec info`` reports it, and the next write finishes the job
    (:func:`finish_pending`), so vectors and label never silently disagree.
    """
    with store.writer.hold("rewriting the fused vectors"):
        identity = space.identity()
        store.set_fusion_identity({**identity, "pending": True})
        crash_point("train:after-pending-label")
        if rows is None:
            rows = store.list(limit=None, columns=[c for c in _training_columns() if c in set(store.column_names())])
        refresh_fused_columns(store, space, rows)
        crash_point("train:after-vectors")
        store.set_fusion_identity(identity)
        if store.vector_indexed():
            store.ensure_vector_index(rebuild=True)  # every vector moved: the partitions must be learnt again
        store.optimize(IngestConfig().keep_versions)


def pending_refit(store: Store) -> int | None:
    """The fusion checkpoint an interrupted ``mmrec train`` did not finish applying (``None`` when all is in step).

    Either the label is *pending* (the vectors are half rewritten), or a checkpoint newer than the
    label was saved and the process died before it was applied (``train`` saves only layers that
    beat the current one, so a newer checkpoint is always meant to be applied).
    """
    if not store.has_items():
        return None
    ident = store.fusion_identity() or {}
    labelled = int(ident.get("version", 0))
    if ident.get("pending"):
        return labelled
    newest = max((int(c["version"]) for c in store.checkpoints("fusion")), default=0)
    return newest if newest > labelled else None


def finish_pending(store: Store, space: SharedSpace) -> bool:
    """Apply the checkpoint an interrupted train left (:func:`pending_refit`); returns whether there was one.

    ``space`` supplies the encoders and bridges; its layer is replaced by the checkpoint's.
    """
    from fusion.layers import fusion_from_bytes

    if pending_refit(store) is None:
        return False
    with store.writer.hold("finishing an interrupted refit"):
        version = pending_refit(store)
        if version is None:  # another writer finished it while we waited
            return False
        layer, _ = fusion_from_bytes(store.checkpoint_weights("fusion", version))
        apply_space(store, space.with_layer(layer, version))
        return True


def refresh_fused_columns(store: Store, space: SharedSpace, rows: list[dict[str, Any]], batch: int = 2048) -> None:
    """Recompute the fusion columns of ``rows`` (with their vector and score columns) with ``space``'s layer."""
    for start in range(0, len(rows), batch):
        part = rows[start : start + batch]
        updates = []
        for row, values in zip(part, space.fusion_values(part), strict=True):
            updates.append({"id": row["id"], **{c: values[c] for c in fusion_columns()}})
        store.update_columns(updates)
