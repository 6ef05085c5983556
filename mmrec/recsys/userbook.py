"""The ``interactions`` and ``users`` tables, and recording interactions.

``interactions`` is append-only (one row per distinct user, item, event and
timestamp); ``users`` holds each user's live profile (:mod:`mmrec.recsys.profiles`),
updated in the same call that records an interaction, so the next
recommendation sees it at once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmrec.config import ProfileConfig
from mmrec.recsys.interactions import BadRow, Interaction
from mmrec.recsys.profiles import Profile
from mmrec.store.items import Store
from mmrec.store.users import UserTables


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
    """Interactions and live profiles in one database.

    Parameters
    ----------
    store : Store
    dim : int
        Dimension of the shared space (the profile vectors').
    config : ProfileConfig, optional
    """

    def __init__(self, store: Store, dim: int, config: ProfileConfig | None = None) -> None:
        self.tables = UserTables(store, dim)
        self.dim = dim
        self.config = config or ProfileConfig()

    def interactions(self, create: bool = False) -> Any:
        """The ``interactions`` table (``None`` before the first interaction)."""
        return self.tables.interactions(create)

    def users(self, create: bool = False) -> Any:
        """The ``users`` table (``None`` before the first interaction)."""
        return self.tables.users(create)

    # ----------------------------------------------------------------- reads

    def interaction_columns(self, columns: list[str]) -> Any:
        """Every stored interaction as an Arrow table of ``columns`` (``None`` when there are none)."""
        return self.tables.interaction_columns(columns)

    def profile(self, user: str) -> Profile | None:
        rows = self.tables.profile_rows([user])
        return Profile.from_row(rows[0], self.dim) if rows else None

    def profiles(self, users: list[str]) -> dict[str, Profile]:
        return {r["user"]: Profile.from_row(r, self.dim) for r in self.tables.profile_rows(users)}

    def existing_keys(self, users: list[str]) -> set[str]:
        return self.tables.existing_keys(users)

    def popular(self, since_days: float = 30.0, limit: int = 200) -> list[tuple[str, float]]:
        """Items by recent positive interactions, decayed with the profile half-life: ``[(item, score)]``."""
        tbl = self.interaction_columns(["item", "weight", "ts"])
        rows = [] if tbl is None else tbl.to_pylist()
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
        self.tables.append_interactions([i.to_row() for i in fresh])
        self.tables.upsert_profiles([p.to_row() for p in touched.values()])
        return len(fresh), duplicates, len(touched)
