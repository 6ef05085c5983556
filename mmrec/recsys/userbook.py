"""The ``interactions`` and ``users`` tables, and recording interactions.

``interactions`` is append-only (one row per distinct user, item, event and
timestamp); ``users`` holds each user's live profile (:mod:`mmrec.recsys.profiles`),
updated in the same call that records an interaction, so the next
recommendation sees it at once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from mmrec.recsys.interactions import BadRow, Interaction
from mmrec.recsys.profiles import Profile, ProfileConfig, interactions_schema, users_schema
from mmrec.store.items import sql_quote

if TYPE_CHECKING:
    from mmrec.store.items import Store

INTERACTIONS_TABLE = "interactions"
USERS_TABLE = "users"


@dataclass
class ImportReport:
    """What an interaction import did."""

    rows: int = 0
    added: int = 0
    duplicates: int = 0
    users: int = 0
    bad: list[BadRow] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "added": self.added,
            "duplicates": self.duplicates,
            "users_updated": self.users,
            "bad_rows": [{"row": b.row, "reason": b.reason} for b in self.bad],
            "seconds": round(self.seconds, 3),
        }

    def format(self, max_bad: int = 30) -> str:
        lines = [
            f"rows     {self.rows}: {self.added} added, {self.duplicates} already stored, {len(self.bad)} rejected",
            f"users    {self.users} profiles updated",
            f"time     {self.seconds:.2f} s",
        ]
        for b in self.bad[:max_bad]:
            lines.append(f"  - {b}")
        if len(self.bad) > max_bad:
            lines.append(f"  … and {len(self.bad) - max_bad} more (--json lists all)")
        return "\n".join(lines)


class UserBook:
    """Interactions and profiles in one database."""

    def __init__(self, store: Store, dim: int, config: ProfileConfig | None = None) -> None:
        self.store = store
        self.dim = dim
        self.config = config or ProfileConfig()

    def _table(self, name: str, schema: Any, create: bool) -> Any:
        if name in self.store.table_names():
            return self.store.db.open_table(name)
        if not create:
            return None
        return self.store.db.create_table(name, schema=schema)

    def interactions(self, create: bool = False) -> Any:
        return self._table(INTERACTIONS_TABLE, interactions_schema(), create)

    def users(self, create: bool = False) -> Any:
        return self._table(USERS_TABLE, users_schema(self.dim), create)

    # ----------------------------------------------------------------- reads

    def profile(self, user: str) -> Profile | None:
        tbl = self.users()
        if tbl is None:
            return None
        rows = tbl.search().where(f"user = {sql_quote(user)}").limit(1).to_arrow().to_pylist()
        return Profile.from_row(rows[0], self.dim) if rows else None

    def profiles(self, users: list[str]) -> dict[str, Profile]:
        tbl = self.users()
        out: dict[str, Profile] = {}
        if tbl is None or not users:
            return out
        for s in range(0, len(users), 500):
            chunk = users[s : s + 500]
            q = tbl.search().where(f"user IN ({', '.join(sql_quote(u) for u in chunk)})").limit(None)
            for r in q.to_arrow().to_pylist():
                out[r["user"]] = Profile.from_row(r, self.dim)
        return out

    def existing_keys(self, users: list[str]) -> set[str]:
        tbl = self.interactions()
        keys: set[str] = set()
        if tbl is None or not users:
            return keys
        for s in range(0, len(users), 500):
            chunk = users[s : s + 500]
            q = tbl.search().where(f"user IN ({', '.join(sql_quote(u) for u in chunk)})").select(["key"]).limit(None)
            keys.update(r["key"] for r in q.to_arrow().to_pylist())
        return keys

    def popular(self, since_days: float = 30.0, limit: int = 200) -> list[tuple[str, float]]:
        """Items by recent positive interactions, decayed with the profile half-life: ``[(item, score)]``."""
        tbl = self.interactions()
        if tbl is None:
            return []
        rows = tbl.search().select(["item", "weight", "ts"]).limit(None).to_arrow().to_pylist()
        if not rows:
            return []
        newest = max(r["ts"] for r in rows)
        half = self.config.half_life_days * 86400.0
        score: dict[str, float] = defaultdict(float)
        for r in rows:
            age = (newest - r["ts"]).total_seconds()
            if r["weight"] > 0 and age <= since_days * 86400.0:
                score[r["item"]] += 0.5 ** (age / half)
        return sorted(score.items(), key=lambda x: -x[1])[:limit]

    # ----------------------------------------------------------------- writes

    def record(self, interactions: list[Interaction], vectors: dict[str, np.ndarray | None]) -> tuple[int, int, int]:
        """Store new interactions and fold them into their users' profiles, in time order.

        Parameters
        ----------
        interactions : list of Interaction
        vectors : dict
            Item id → fused vector ``(D,)`` (or ``None``) for every item referenced.

        Returns
        -------
        (added, duplicates, users)
        """
        import pyarrow as pa

        users = sorted({i.user for i in interactions})
        known = self.existing_keys(users)
        fresh: list[Interaction] = []
        for inter in interactions:
            if inter.key in known:
                continue
            known.add(inter.key)
            fresh.append(inter)
        duplicates = len(interactions) - len(fresh)
        if not fresh:
            return 0, duplicates, 0
        profiles = self.profiles(users)
        touched: dict[str, Profile] = {}
        for inter in sorted(fresh, key=lambda i: i.ts):
            prof = touched.get(inter.user) or profiles.get(inter.user) or Profile(inter.user, self.dim)
            prof.add(inter.item, inter.event, inter.weight, inter.ts, vectors.get(inter.item), self.config)
            touched[inter.user] = prof
        # Interactions first, then profiles: a crash in between leaves a profile one batch behind its log,
        # which `rebuild` repairs; the other order could count a batch twice.
        schema = interactions_schema()
        self.interactions(create=True).add(pa.Table.from_pylist([i.to_row() for i in fresh], schema=schema))
        rows = [p.to_row() for p in touched.values()]
        users_tbl = self.users(create=True)
        data = pa.Table.from_pylist(rows, schema=users_schema(self.dim))
        users_tbl.merge_insert("user").when_matched_update_all().when_not_matched_insert_all().execute(
            data, on_bad_vectors="null"
        )
        return len(fresh), duplicates, len(touched)
