"""The ``interactions`` and ``users`` tables: the append-only event log and the stored profiles.

This module knows the tables' schemas and how to read and write them; what a profile *is*
(and how events fold into it) is :mod:`mmrec.recsys.profiles` and :mod:`mmrec.recsys.userbook`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from mmrec.store.items import Store
from mmrec.store.sql import id_in, in_chunks, sql_quote

INTERACTIONS_TABLE = "interactions"
USERS_TABLE = "users"


def users_schema(dim: int) -> Any:
    """Arrow schema of the ``users`` table (profiles with ``dim``-dimensional vectors)."""
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    vec = pa.list_(pa.float32(), dim)
    hist = pa.struct([("item", pa.string()), ("event", pa.string()), ("weight", pa.float32()), ("ts", ts)])
    return pa.schema(
        [
            pa.field("user", pa.string(), nullable=False),
            pa.field("ref_time", ts),
            pa.field("events", pa.int64()),
            pa.field("interest_sums", pa.list_(vec)),
            pa.field("interest_masses", pa.list_(pa.float32())),
            pa.field("interest_counts", pa.list_(pa.int32())),
            pa.field("negative", vec),
            pa.field("negative_mass", pa.float32()),
            pa.field("seen", pa.list_(pa.string())),
            pa.field("history", pa.list_(hist)),
            pa.field("updated_at", ts),
        ]
    )


def interactions_schema() -> Any:
    """Arrow schema of the append-only ``interactions`` table."""
    import pyarrow as pa

    ts = pa.timestamp("us", tz="UTC")
    return pa.schema(
        [
            pa.field("user", pa.string(), nullable=False),
            pa.field("item", pa.string(), nullable=False),
            pa.field("event", pa.string()),
            pa.field("weight", pa.float32()),
            pa.field("ts", ts),
            pa.field("key", pa.string()),
        ]
    )


class UserTables:
    """Reads and writes of the ``interactions`` and ``users`` tables of one database.

    Parameters
    ----------
    store : Store
        The database.
    dim : int
        Dimension of the profile vectors (the shared space's).
    """

    def __init__(self, store: Store, dim: int) -> None:
        self.store = store
        self.dim = dim

    def _table(self, name: str, schema: Any, create: bool) -> Any:
        db = self.store.db
        if name in self.store.table_names():
            return db.open_table(name)
        if not create:
            return None
        return db.create_table(name, schema=schema)

    def interactions(self, create: bool = False) -> Any:
        """The raw ``interactions`` table (``None`` when absent and not ``create``)."""
        return self._table(INTERACTIONS_TABLE, interactions_schema(), create)

    def users(self, create: bool = False) -> Any:
        """The raw ``users`` table (``None`` when absent and not ``create``)."""
        return self._table(USERS_TABLE, users_schema(self.dim), create)

    # ----------------------------------------------------------------- reads

    def count_interactions(self) -> int:
        tbl = self.interactions()
        return 0 if tbl is None else int(tbl.count_rows())

    def count_users(self) -> int:
        tbl = self.users()
        return 0 if tbl is None else int(tbl.count_rows())

    def profile_rows(self, users: Sequence[str]) -> list[dict[str, Any]]:
        """Stored profile rows of ``users`` (absent users are left out)."""
        tbl = self.users()
        if tbl is None or not users:
            return []
        if len(users) == 1:  # the hot path of a recommendation: one user, one row
            return tbl.search().where(f"user = {sql_quote(users[0])}").limit(1).to_arrow().to_pylist()
        out: list[dict[str, Any]] = []
        for chunk in in_chunks(list(users)):
            out += tbl.search().where(id_in(chunk, "user")).limit(None).to_arrow().to_pylist()
        return out

    def existing_keys(self, users: Sequence[str]) -> set[str]:
        """Deduplication keys of the stored interactions of ``users``."""
        tbl = self.interactions()
        keys: set[str] = set()
        if tbl is None or not users:
            return keys
        for chunk in in_chunks(list(users)):
            q = tbl.search().where(id_in(chunk, "user")).select(["key"]).limit(None)
            keys.update(r["key"] for r in q.to_arrow().to_pylist())
        return keys

    def interaction_columns(self, columns: Sequence[str]) -> Any:
        """Every stored interaction, as an Arrow table of ``columns`` (``None`` when there are none)."""
        tbl = self.interactions()
        if tbl is None or tbl.count_rows() == 0:
            return None
        return tbl.search().select(list(columns)).limit(None).to_arrow()

    # ----------------------------------------------------------------- writes

    def append_interactions(self, rows: list[dict[str, Any]]) -> None:
        """Append rows to the event log, in one commit."""
        import pyarrow as pa

        schema = interactions_schema()
        self.interactions(create=True).add(pa.Table.from_pylist(rows, schema=schema))

    def upsert_profiles(self, rows: list[dict[str, Any]]) -> None:
        """Insert or replace profile rows by user, in one commit."""
        import pyarrow as pa

        data = pa.Table.from_pylist(rows, schema=users_schema(self.dim))
        self.users(create=True).merge_insert("user").when_matched_update_all().when_not_matched_insert_all().execute(
            data, on_bad_vectors="null"
        )
