"""The event log and the live profiles: recording interactions, repairing and rebuilding profiles, forgetting users.

``interactions`` is append-only (one row per distinct user, item, event and timestamp) and is the
source of truth; ``users`` holds each user's profile, a deterministic function of their events
(:func:`mmrec.recsys.profiles.fold` in ``(ts, key)`` order), updated in the same call that records
an event so the next recommendation sees it at once.

Every write holds the database's writer (:class:`mmrec.store.writer.Writer`), so two processes
recording events for one user never both fold into the same old profile. A write goes events
first, then profiles, then the ``sync`` stamp naming the event-log version the profiles reflect;
a crash between any two leaves a stamp behind the log, and the next write (or ``mmrec info``)
sees it and rebuilds the profiles of the users whose events came after the stamp.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmrec.config import ProfileConfig
from mmrec.errors import InvalidArgumentError, UnknownItemsError
from mmrec.recsys.interactions import BadRow, Interaction, parse_rows, read_rows
from mmrec.recsys.profiles import Profile, fold
from mmrec.store.items import Store
from mmrec.store.users import PROFILES_AT, UserTables
from mmrec.store.writer import crash_point


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
        self.store = store
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

    def record_known(self, interactions: list[Interaction]) -> tuple[int, int, int]:
        """Record a batch of interactions, all or nothing, after checking every item is in the catalog.

        Returns
        -------
        (added, duplicates, users)
            New interactions stored, ones already stored (not counted twice), profiles updated.

        Raises
        ------
        UnknownItemsError
            When any interaction names an item that is not in the database; nothing is written.
            ``unknown`` lists ``(position, item_id)``.
        """
        vectors = self.store.fused_vectors([i.item for i in interactions])
        unknown = [(n, i.item) for n, i in enumerate(interactions) if i.item not in vectors]
        if unknown:
            raise UnknownItemsError(f"no item with id {unknown[0][1]!r}", unknown)
        if not interactions:
            return 0, 0, 0
        return self.record(interactions, vectors)

    def import_file(self, path: str | os.PathLike[str], *, strict: bool = False) -> ImportReport:
        """Import a CSV, TSV, JSONL or Parquet file of interactions (see :mod:`mmrec.recsys.interactions`).

        Bad rows are reported with their row numbers and skipped; with ``strict`` any bad row
        rejects the whole file (nothing is written). Rows already stored are not counted twice.
        """
        t0 = time.perf_counter()
        rows = read_rows(path)
        known = {r["id"] for r in self.store.list(limit=None, columns=["id"])}
        good, bad = parse_rows(rows, known)
        report = ImportReport(rows=len(rows), bad=bad)
        if strict and bad:
            raise InvalidArgumentError(
                f"{len(bad)} bad row(s) in {str(path)!r} (--strict: nothing imported); first: {bad[0]}"
            )
        if good:
            report.added, report.duplicates, report.users = self.record_known(good)
        report.seconds = time.perf_counter() - t0
        return report

    def record(self, interactions: list[Interaction], vectors: dict[str, np.ndarray | None]) -> tuple[int, int, int]:
        """Store new interactions and fold them into their users' profiles.

        A user's new events that all come after their profile's newest event (the usual case) are
        folded onto the stored profile; otherwise (events arriving late, out of order) the profile is
        rebuilt from the whole log, so the result never depends on arrival order.

        Parameters
        ----------
        interactions : list of Interaction
        vectors : dict
            Item id → fused vector ``(D,)`` (or ``None``) for every item referenced.

        Returns
        -------
        (added, duplicates, users)
        """
        with self.store.writer.hold("recording interactions"):
            self.repair()
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
            by_user: dict[str, list[Interaction]] = defaultdict(list)
            for inter in fresh:
                by_user[inter.user].append(inter)
            touched: dict[str, Profile] = {}
            late: list[str] = []
            for user, events in by_user.items():
                prof = profiles.get(user)
                last = prof.last_order if prof is not None else None
                if last is not None and min((e.ts, e.key) for e in events) <= last:
                    late.append(user)  # folded from the whole log below, once the events are stored
                    continue
                rows = [(e.item, e.event, e.weight, e.ts) for e in events]
                touched[user] = fold(user, self.dim, rows, vectors, self.config, start=prof)
            # Events first (the source of truth), then the profiles, then the stamp: a crash between
            # any two leaves the stamp behind the log, which repair() notices and rebuilds.
            self.tables.append_interactions([i.to_row() for i in fresh])
            crash_point("interactions:after-events")
            if late:
                touched.update(self._folded_from_log(late))
            self.tables.upsert_profiles([p.to_row() for p in touched.values()])
            crash_point("interactions:after-profiles")
            self._stamp()
            return len(fresh), duplicates, len(touched)

    def _stamp(self) -> None:
        """Record that the profiles reflect the log as it is now: its version and its number of events.

        The log is append-only (only ``forget`` rewrites it, and stamps again), so a count that differs
        from the stamp's means events the profiles have not seen; a compaction changes the version but
        not the count, and needs no repair.
        """
        self.tables.sync_set(
            PROFILES_AT, {"version": self.tables.events_version(), "events": self.tables.count_interactions()}
        )

    def out_of_step(self) -> bool:
        """Whether the stored profiles may lag the event log (a write was interrupted)."""
        if self.tables.events_version() is None:
            return False
        stamp = self.tables.sync_get(PROFILES_AT)
        return not isinstance(stamp, dict) or stamp.get("events") != self.tables.count_interactions()

    def repair(self) -> int:
        """Bring the profiles in step with the event log after an interrupted write; returns profiles rebuilt."""
        if not self.out_of_step():
            return 0
        with self.store.writer.hold("repairing profiles"):
            if not self.out_of_step():  # another writer repaired it while we waited
                return 0
            stamp = self.tables.sync_get(PROFILES_AT)
            version = stamp.get("version") if isinstance(stamp, dict) else None
            changed = None if version is None else self.tables.users_changed_since(int(version))
            if changed is None:  # no stamp yet (an older database) or its version was cleaned: all of them
                changed = self.tables.all_event_users() | self.tables.profile_users()
            n = self._rebuild(sorted(changed))
            self._stamp()
            return n

    def rebuild_profiles(self, users: list[str] | None = None) -> int:
        """Recompute profiles from the event log (every user's, or ``users``'); returns profiles written or removed."""
        with self.store.writer.hold("rebuilding profiles"):
            everyone = users is None
            if users is None:
                users = sorted(self.tables.all_event_users() | self.tables.profile_users())
            n = self._rebuild(list(users))
            if everyone and self.tables.events_version() is not None:  # every profile now reflects the whole log
                self._stamp()
            return n

    def forget(self, user: str) -> tuple[int, int]:
        """Delete ``user``'s events and profile from every file of the user tables: ``(events, profiles)`` removed.

        Both tables are rewritten without the user and every old version is removed, so the id
        is in no data file, deletion file, manifest or transaction of them afterwards.
        """
        with self.store.writer.hold("forgetting a user"):
            events, profiles = self.tables.rewrite_without(user)
            crash_point("forget:after-rewrite")
            if self.tables.events_version() is not None:
                self._stamp()
            return events, profiles

    def _rebuild(self, users: list[str]) -> int:
        if not users:
            return 0
        folded = self._folded_from_log(users)
        if folded:
            self.tables.upsert_profiles([p.to_row() for p in folded.values()])
        orphans = [u for u in users if u not in folded]
        if orphans:  # a profile whose events are gone (an interrupted forget)
            self.tables.delete_profiles(orphans)
        return len(folded) + len(orphans)

    def _folded_from_log(self, users: list[str]) -> dict[str, Profile]:
        """Profiles of ``users`` folded from scratch from their stored events (users without events are absent)."""
        rows = self.tables.events_of(users)
        vectors = self.store.fused_vectors(sorted({r["item"] for r in rows}))
        events: dict[str, list[tuple[str, str, float, Any]]] = defaultdict(list)
        for r in rows:
            events[r["user"]].append((r["item"], r["event"], float(r["weight"]), r["ts"]))
        return {u: fold(u, self.dim, ev, vectors, self.config) for u, ev in events.items()}
