"""The ``interactions`` and ``users`` tables: the append-only event log and the stored profiles.

This module knows the tables' schemas and how to read and write them; what a profile *is*
(and how events fold into it) is :mod:`mmrec.recsys.profiles` and :mod:`mmrec.recsys.userbook`.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from mmrec.store.items import Store
from mmrec.store.sql import id_in, in_chunks, sql_quote
from mmrec.store.writer import retry_conflicts

INTERACTIONS_TABLE = "interactions"
USERS_TABLE = "users"
#: Small key → JSON table of bookkeeping between tables (which event-log version the profiles reflect).
SYNC_TABLE = "sync"
#: Sync key: the version of the interactions table that every stored profile reflects.
PROFILES_AT = "profiles_at_events_version"


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


def sync_schema() -> Any:
    """Arrow schema of the ``sync`` table."""
    import pyarrow as pa

    return pa.schema([pa.field("key", pa.string(), nullable=False), pa.field("value", pa.string())])


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

    def events_version(self) -> int | None:
        """The interactions table's version (``None`` before the first event)."""
        tbl = self.interactions()
        return None if tbl is None else int(tbl.version)

    def events_of(self, users: Sequence[str]) -> list[dict[str, Any]]:
        """Every stored event of ``users`` (all columns)."""
        tbl = self.interactions()
        out: list[dict[str, Any]] = []
        if tbl is None or not users:
            return out
        for chunk in in_chunks(list(users)):
            out += tbl.search().where(id_in(chunk, "user")).limit(None).to_arrow().to_pylist()
        return out

    def users_changed_since(self, version: int) -> set[str] | None:
        """Users whose events differ between interactions ``version`` and now (appended or removed).

        ``None`` when that version was cleaned and cannot be compared.
        """
        tbl = self.interactions()
        if tbl is None:
            return set()
        try:
            old = self.store.db.open_table(INTERACTIONS_TABLE)
            old.checkout(int(version))
            before = {
                (r["user"], r["key"]) for r in old.search().select(["user", "key"]).limit(None).to_arrow().to_pylist()
            }
        except Exception:  # the version is gone (cleaned) or unreadable: the caller rebuilds everything
            return None
        now = {(r["user"], r["key"]) for r in tbl.search().select(["user", "key"]).limit(None).to_arrow().to_pylist()}
        return {user for user, _ in before ^ now}

    def all_event_users(self) -> set[str]:
        """Every user with at least one stored event."""
        tbl = self.interactions()
        if tbl is None:
            return set()
        return set(tbl.search().select(["user"]).limit(None).to_arrow().column("user").to_pylist())

    def profile_users(self) -> set[str]:
        """Every user with a stored profile."""
        tbl = self.users()
        if tbl is None:
            return set()
        return set(tbl.search().select(["user"]).limit(None).to_arrow().column("user").to_pylist())

    def sync_get(self, key: str) -> Any:
        """A bookkeeping value (``None`` when never set)."""
        tbl = self._table(SYNC_TABLE, sync_schema(), False)
        if tbl is None:
            return None
        rows = tbl.search().where(f"key = {sql_quote(key)}").limit(1).to_arrow().to_pylist()
        return json.loads(rows[0]["value"]) if rows else None

    # ----------------------------------------------------------------- writes

    def sync_set(self, key: str, value: Any) -> None:
        """Set a bookkeeping value (one commit)."""
        import pyarrow as pa

        data = pa.Table.from_pylist([{"key": key, "value": json.dumps(value)}], schema=sync_schema())
        tbl = self._table(SYNC_TABLE, sync_schema(), True)
        retry_conflicts(
            lambda: tbl.merge_insert("key").when_matched_update_all().when_not_matched_insert_all().execute(data)
        )

    def delete_profiles(self, users: Sequence[str]) -> None:
        """Delete the profiles of ``users`` (one commit per chunk)."""
        tbl = self.users()
        if tbl is None:
            return
        for chunk in in_chunks(list(users)):
            tbl.delete(id_in(chunk, "user"))

    def rewrite_without(self, user: str) -> tuple[int, int]:
        """Rewrite the interactions and users tables without ``user``'s rows: ``(events, profiles)`` removed.

        Each table is rewritten as a whole in one commit (new data files, no deletion vector and no
        delete predicate naming the user), so once old versions are cleaned the id is in no file.
        The event log goes first: a crash between the two leaves a profile without events, which
        :meth:`mmrec.recsys.userbook.UserBook.repair` removes.
        """
        removed = []
        for name, schema in ((INTERACTIONS_TABLE, interactions_schema()), (USERS_TABLE, users_schema(self.dim))):
            if name not in self.store.table_names():
                removed.append(0)
                continue
            tbl = self.store.db.open_table(name)
            n = int(tbl.count_rows(f"user = {sql_quote(user)}"))
            if n:
                keep = tbl.search().where(f"user != {sql_quote(user)}").limit(None).to_arrow()
                self.store.db.create_table(
                    name, keep.cast(schema), mode="overwrite", schema=schema, on_bad_vectors="null"
                )
            removed.append(n)
        return removed[0], removed[1]

    def cleanup_all_versions(self) -> int:
        """Remove every old version of the user tables (and files no version uses); returns versions removed."""
        removed = 0
        for name in (INTERACTIONS_TABLE, USERS_TABLE, SYNC_TABLE):
            if name in self.store.table_names():
                tbl = self.store.db.open_table(name)
                before = len(tbl.list_versions())
                with warnings.catch_warnings():  # "removes every version except the latest": that is the point
                    warnings.simplefilter("ignore", UserWarning)
                    # optimize (not cleanup_old_versions, which needs pylance): compaction, then every old
                    # version and every file no version references removed
                    tbl.optimize(cleanup_older_than=timedelta(0), delete_unverified=True)
                removed += max(0, before - 1)
        return removed

    def append_interactions(self, rows: list[dict[str, Any]]) -> None:
        """Append rows to the event log, in one commit."""
        import pyarrow as pa

        schema = interactions_schema()
        table = pa.Table.from_pylist(rows, schema=schema)
        tbl = self.interactions(create=True)
        # A conflicting append did not commit, so retrying it cannot store an event twice.
        retry_conflicts(lambda: tbl.add(table))

    def upsert_profiles(self, rows: list[dict[str, Any]]) -> None:
        """Insert or replace profile rows by user, in one commit."""
        import pyarrow as pa

        data = pa.Table.from_pylist(rows, schema=users_schema(self.dim))
        tbl = self.users(create=True)
        retry_conflicts(
            lambda: (
                tbl.merge_insert("user")
                .when_matched_update_all()
                .when_not_matched_insert_all()
                .execute(data, on_bad_vectors="null")
            )
        )
