"""Versioned model checkpoints kept inside the database: one table per kind of model.

A checkpoint is a row (version, identity, metrics, created_at, weights), so checkpoints travel with
the database, on a local folder and on object storage alike.
"""

from __future__ import annotations

import json
from typing import Any

from mmrec.errors import InvalidArgumentError, StoreError

#: Kind of model → its checkpoint table.
CHECKPOINT_TABLES = {"fusion": "fusion_models", "hybrid": "hybrid_models", "rating": "rating_models"}


def _table_name(kind: str) -> str:
    try:
        return CHECKPOINT_TABLES[kind]
    except KeyError:
        raise InvalidArgumentError(
            f"unknown checkpoint kind {kind!r}; valid kinds: {', '.join(CHECKPOINT_TABLES)}"
        ) from None


class CheckpointTables:
    """The checkpoint methods of :class:`mmrec.store.items.Store` (which provides ``db``, ``uri``, ``table_names``)."""

    db: Any
    uri: str

    def table_names(self) -> list[str]:  # pragma: no cover - provided by Store
        raise NotImplementedError

    def save_checkpoint(
        self, kind: str, version: int, identity: dict[str, Any], weights: bytes, metrics: dict[str, Any]
    ) -> None:
        """Keep a model checkpoint in the database (local folders and object storage alike).

        ``kind`` is ``"fusion"`` or ``"hybrid"``: each has its own versioned table.
        """
        from datetime import datetime, timezone

        import pyarrow as pa

        schema = pa.schema(
            [
                pa.field("version", pa.int64()),
                pa.field("identity", pa.string()),
                pa.field("metrics", pa.string()),
                pa.field("created_at", pa.timestamp("us", tz="UTC")),
                pa.field("weights", pa.large_binary()),
            ]
        )
        row = {
            "version": version,
            "identity": json.dumps(identity),
            "metrics": json.dumps(metrics),
            "created_at": datetime.now(timezone.utc),
            "weights": weights,
        }
        name = _table_name(kind)
        tbl = self.db.open_table(name) if name in self.table_names() else self.db.create_table(name, schema=schema)
        tbl.add(pa.Table.from_pylist([row], schema=schema))

    def checkpoints(self, kind: str) -> list[dict[str, Any]]:
        """Saved checkpoints of ``kind``, oldest first, without their weights."""
        name = _table_name(kind)
        if name not in self.table_names():
            return []
        q = self.db.open_table(name).search().select(["version", "identity", "metrics", "created_at"]).limit(None)
        rows = q.to_arrow().to_pylist()
        out = [{**r, "identity": json.loads(r["identity"]), "metrics": json.loads(r["metrics"])} for r in rows]
        return sorted(out, key=lambda r: r["version"])

    def checkpoint_weights(self, kind: str, version: int) -> bytes:
        name = _table_name(kind)
        rows = []
        if name in self.table_names():
            rows = self.db.open_table(name).search().where(f"version = {int(version)}").limit(1).to_arrow().to_pylist()
        if not rows:
            raise StoreError(f"database {self.uri!r} has no {kind} checkpoint version {version}")
        return rows[0]["weights"]

    def delete_checkpoints(self, kind: str, versions: list[int]) -> None:
        """Delete checkpoint versions of ``kind`` and every old table version that still holds their weights."""
        import warnings
        from datetime import timedelta

        name = _table_name(kind)
        if not versions or name not in self.table_names():
            return
        tbl = self.db.open_table(name)
        tbl.delete(f"version IN ({', '.join(str(int(v)) for v in versions)})")
        with warnings.catch_warnings():  # removing every old version is the point
            warnings.simplefilter("ignore", UserWarning)
            tbl.optimize(cleanup_older_than=timedelta(0), delete_unverified=True)  # native: no pylance needed
