"""The serving snapshot: what a request needs, held in memory per database version.

A :class:`Snapshot` holds the items' ids, titles, media flags, listing columns and fusion weights, the
fused and per-modality shared-space vectors (float16: half the memory of float32 at the same recall,
``benchmarks/ann_choice.py``), a search structure per vector column (:mod:`mmrec.recsys.retrieval`),
and every user's profile with its history (what explanations need). Requests read it and make no
LanceDB call; the only reads left are a filter seen for the first time in this version (one query,
then cached) and the popular items of a cold start after new events (one scan, cached per version).
A catalog too large for memory is served with its vectors left in LanceDB (``serving``,
:mod:`mmrec.recsys.serving`): the items are then a :class:`~mmrec.recsys.item_side_lance.LanceItemSide`,
whose searches and vector reads are LanceDB queries at the snapshot's version; everything else is the same.

:class:`SnapshotCache` (one per Engine, so one per service worker) keeps the current snapshot and
checks the table versions at most every :data:`CHECK_EVERY` seconds in a background thread, so a
request never waits on the check; a write made through this process is seen by the next request at
once. A new version is folded in incrementally: rows whose ``updated_at`` is new are read (one query),
deleted ones are dropped, and the vector index is reused with the new rows searched exactly until they
are worth a rebuild. A snapshot lives wholly in memory, so another process cleaning old versions
cannot break a request; a failed refresh keeps the last snapshot and is tried again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import numpy as np

from mmrec.errors import MMRecError, StoreError
from mmrec.recsys.item_side import (
    VECTOR_COLUMNS,
    ItemRows,
    ItemSide,
    _fresh,
    estimated_bytes,
    newest,
    read_items,
    scalar_selection,
)
from mmrec.recsys.item_side_lance import LanceItemSide
from mmrec.recsys.profiles import Profile
from mmrec.recsys.serving import ServingConfig
from mmrec.recsys.userbook import UserBook
from mmrec.store.items import ITEMS_TABLE, Store
from mmrec.store.location import is_local, local_path

__all__ = [
    "CHECK_EVERY",
    "ItemRows",
    "ItemSide",
    "LanceItemSide",
    "Snapshot",
    "SnapshotCache",
    "Taste",
    "VECTOR_COLUMNS",
    "count_items",
    "newest",
]

log = logging.getLogger("mmrec.snapshot")

#: Seconds between two version checks (another process's writes are served within about twice this).
#: A snapshot checked longer ago than this is checked again before it answers (other writers seen within 1 s).
STALE_AFTER = 0.75
CHECK_EVERY = 0.25
#: Seconds without a request after which the version-checking thread stops (the next request restarts it).
WATCH_IDLE = 5.0
#: Seconds a request after this process's own write waits for a refresh already running (an index rebuild).
WRITE_WAIT = 2.0
#: Rows whose ``updated_at`` is within this of the newest one seen are read again on a change: writers
#: stamp rows with their own clock before taking the writer lock, so commits may land slightly out of order.
CLOCK_MARGIN = timedelta(minutes=10)
#: The popular items (cold start) are recomputed at most this often after new events.
POPULAR_EVERY = 5.0


class Taste:
    """A profile in the form a request searches with (see :meth:`Snapshot.taste`).

    Attributes
    ----------
    directions : np.ndarray
        ``(I, D)`` float32 unit interest vectors, largest share first.
    weights : list of float
        Their shares of the positive mass.
    seen : set of int
        The snapshot rows of the items the user consumed.
    slots : dict
        ``k`` → the interests' quotas (filled by the recommender).
    has_interests : bool
        :attr:`Profile.has_interests`, looked up once.
    negative : tuple or None
        :meth:`Profile.negative_direction`, computed once.
    """

    __slots__ = ("directions", "has_interests", "negative", "profile", "seen", "slots", "weights")

    def __init__(self, profile: Profile, items: ItemRows) -> None:
        pairs = profile.interests()
        self.profile = profile
        self.has_interests = profile.has_interests
        self.negative = profile.negative_direction()
        self.directions = np.ascontiguousarray(
            np.stack([d for d, _ in pairs]) if pairs else np.zeros((0, 0)), np.float32
        )
        self.weights = [float(w) for _, w in pairs]
        self.seen = items.positions(profile.seen)
        self.slots: dict[int, list[int]] = {}


class Snapshot:
    """The items and the users of one database version, as a request reads them (see the module docstring).

    Attributes
    ----------
    items : ItemRows
        :class:`ItemSide` (vectors in memory) or :class:`LanceItemSide` (vectors in LanceDB).
    profiles : dict
        User id → :class:`~mmrec.recsys.profiles.Profile`.
    versions : dict
        What it was made from: the tables' versions and the fusion fingerprint.
    """

    def __init__(
        self,
        items: ItemRows,
        profiles: dict[str, Profile],
        stamps: dict[str, int],
        versions: dict[str, Any],
        popular: tuple[Any, float, list[tuple[str, float]]] | None = None,
    ) -> None:
        self.items = items
        self.profiles = profiles
        self.stamps = stamps
        self.versions = versions
        self._popular = popular
        self._memo: dict[str, Any] = {}
        self._tastes: dict[str, Taste] = {}

    def profile(self, user: str) -> Profile | None:
        return self.profiles.get(user)

    def taste(self, profile: Profile) -> Taste:
        """``profile`` as a request searches with it (:class:`Taste`), made once per profile and snapshot:
        a changed profile is a new object in a new snapshot."""
        found = self._tastes.get(profile.user)
        if found is None or found.profile is not profile:
            found = self._tastes[profile.user] = Taste(profile, self.items)
        return found

    def memo(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()`` once per snapshot (e.g. the hybrid scorer, whose checkpoints table is in :attr:`versions`)."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]

    def popular(self, book: UserBook) -> list[tuple[str, float]]:
        """Recently popular items (:meth:`UserBook.popular`): one scan of the events per events version, at most
        every :data:`POPULAR_EVERY` seconds once there are some (a popularity ranking moves slowly)."""
        version = self.versions.get("interactions")
        cached = self._popular
        stale = cached is not None and cached[0] != version
        if cached is None or (stale and (not cached[2] or time.monotonic() - cached[1] >= POPULAR_EVERY)):
            cached = self._popular = (version, time.monotonic(), book.popular() if version is not None else [])
        return cached[2]


#: The tables a snapshot is made from (their versions key it).
TABLES = (ITEMS_TABLE, "interactions", "users", "hybrid_models", "rating_models")
#: A local database whose folders changed less than this long ago is checked in full (file times are coarse).
RECENT_NS = 1_000_000_000


def _disk_stamp(store: Store) -> tuple[int, ...] | None:
    """A local database's folder and table version folders' modification times (``None`` for an object store).

    Every commit adds a manifest to ``<table>.lance/_versions`` and a new table a folder, so an unchanged
    stamp that is not recent means unchanged versions: a check then costs a few ``stat`` calls instead of
    opening every table (15 ms of LanceDB calls, with the GIL handed back and forth, every check).
    """
    if not is_local(store.uri):
        return None
    root = local_path(store.uri)
    try:
        stamp = [os.stat(root).st_mtime_ns]
        for name in TABLES:
            try:
                stamp.append(os.stat(root / f"{name}.lance" / "_versions").st_mtime_ns)
            except FileNotFoundError:
                stamp.append(0)
    except OSError:
        return None
    return tuple(stamp)


def _read_versions(store: Store, users: UserBook | None) -> dict[str, Any]:
    """The tables' newest versions (fresh handles: another process's commits are seen at once) and the fusion fingerprint."""
    names = set(store.table_names())
    out: dict[str, Any] = {}
    for name in TABLES:
        out[name] = int(store.db.open_table(name).version) if name in names else None
    out["fusion"] = (store.fusion_identity() or {}).get("fingerprint") if ITEMS_TABLE in names else None
    return out


def _items_table(store: Store, where: str | None = None, columns: list[str] | None = None) -> Any:
    """Every column a memory snapshot holds (or ``columns``), as one Arrow table (rows matching ``where``)."""
    names = set(store.column_names())
    cols = columns or [*scalar_selection(names), *(c for c in VECTOR_COLUMNS if c in names)]

    def read() -> Any:
        q = _fresh(store).search().select(cols).limit(None)
        if where:
            q = q.where(where)
        return q.to_arrow()

    return store.read(read)


def _full_side(store: Store, version: int | None, fusion: str, kind: str = "memory") -> ItemRows:
    """The items at ``version`` read in full: vectors too for ``kind="memory"`` (one streaming scan,
    :func:`read_items`), none for ``"lancedb"``."""
    if kind == "lancedb":
        return LanceItemSide.load(store, version, fusion)
    names = set(store.column_names())
    table, vectors = read_items(store, scalar_selection(names))
    return ItemSide(table, version, fusion, vectors=vectors)


def _timestamp(us: int) -> str:
    return f"CAST('{np.datetime64(int(us), 'us').astype(str)}' AS TIMESTAMP)"


class SnapshotCache:
    """The current :class:`Snapshot` of one database, kept fresh (see the module docstring).

    Parameters
    ----------
    store : Store
    users : callable
        Returns the :class:`UserBook` (called only once the database has items).
    check_every : float
        Seconds between two version checks.
    serving : ServingConfig, optional
        Where the item vectors are held (default ``"auto"``: memory within the budget).
    """

    def __init__(
        self,
        store: Store,
        users: Callable[[], UserBook],
        check_every: float = CHECK_EVERY,
        serving: ServingConfig | None = None,
    ) -> None:
        self.store = store
        self.users = users
        self.check_every = check_every
        self.serving = serving or ServingConfig()
        self._snap: Snapshot | None = None
        self._checked = -float("inf")
        self._stamp: tuple[int, ...] | None = None  # the database's file times at the last full check
        self._lock = threading.RLock()  # one refresh at a time
        self._watcher: threading.Thread | None = None
        self._watch_lock = threading.Lock()
        self._used = time.monotonic()  # when a request last asked for the snapshot
        self._writes = 0
        self._seen_writes = -1

        # A write of this process: the next request refreshes first. Counted when the write starts and
        # again when it ends, so a refresh that ran while it was under way (and saw the old versions)
        # does not count as having seen it.
        def counted(hook: Callable[[], None] | None) -> Callable[[], None]:
            def count() -> None:
                if hook is not None:
                    hook()
                self._writes += 1

            return count

        store.writer.on_acquire = counted(store.writer.on_acquire)
        store.writer.on_release = counted(store.writer.on_release)

    def current(self) -> Snapshot:
        """The snapshot to serve now: refreshed first after a write of this process, else at most ``check_every`` old."""
        snap = self._snap
        if snap is None:
            return self.refresh()
        if self._seen_writes != self._writes:
            # This process wrote: refresh before answering, unless a refresh (an index rebuild of a large
            # catalog) is already running for longer than a request should wait; then serve the last one.
            if self._lock.acquire(timeout=WRITE_WAIT):
                try:
                    return self.refresh()
                finally:
                    self._lock.release()
            return snap
        now = time.monotonic()
        age = now - self._checked
        if age >= STALE_AFTER:
            # Idle for a while (no request started a background check): what another process wrote since must be
            # seen by this request, so check now, unless a long refresh is already running.
            if self._lock.acquire(timeout=WRITE_WAIT):
                try:
                    return self._refreshed_or(snap)
                finally:
                    self._lock.release()
            return snap
        self._used = now
        if age >= self.check_every and self._watcher is None:
            self._watch()
        return snap

    def _watch(self) -> None:
        """Start the thread that checks the versions every ``check_every`` seconds while requests come.

        One long-lived thread, not one per check: starting a thread cost about 5 ms on the loaded 2-core
        box, every 0.25 s, in the request that started it. It ends once no request came for
        :data:`WATCH_IDLE` seconds (the next request restarts it) or when the cache is dropped.
        """
        with self._watch_lock:  # not the refresh lock: a request never waits on a refresh here
            if self._watcher is not None:
                return
            self._watcher = threading.Thread(
                target=_watch, args=(weakref.ref(self),), name="mmrec-snapshot", daemon=True
            )
            self._watcher.start()

    def _refreshed_or(self, snap: Snapshot) -> Snapshot:
        """A refreshed snapshot, or ``snap`` when the refresh fails (logged; the next check tries again)."""
        try:
            return self.refresh()
        except (MMRecError, OSError, RuntimeError, ValueError) as e:  # LanceDB raises the latter on cleaned files
            log.warning("could not refresh the serving snapshot: %s", (str(e).strip() or type(e).__name__)[:300])
            self.store.reopen()
            return snap

    def _refresh_quietly(self) -> None:
        try:
            self.refresh()
        except Exception as e:  # keep serving the last snapshot; the next check tries again
            log.warning(
                "could not refresh the serving snapshot: %s",
                str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__,
            )
            self.store.reopen()

    def refresh(self) -> Snapshot:
        """Bring the snapshot to the database's current versions (incrementally when one exists)."""
        with self._lock:  # re-entrant: current() may hold it already
            writes = self._writes
            self._checked = time.monotonic()
            old = self._snap
            stamp = _disk_stamp(self.store)
            if (
                old is not None
                and writes == self._seen_writes
                and stamp is not None
                and stamp == self._stamp
                and time.time_ns() - max(stamp) > RECENT_NS
            ):
                return old  # no table changed since the last full check (and none is changing now)
            book = self.users() if self.store.has_items() else None
            versions = _read_versions(self.store, book)
            if old is not None and old.versions == versions:
                self._seen_writes, self._stamp = writes, stamp
                return old
            if versions[ITEMS_TABLE] is None:
                self.store.items()  # raises the one-line "no items yet"
            kind, rows = self._kind(old, versions)
            if (
                old is None
                or old.versions["fusion"] != versions["fusion"]
                or old.versions[ITEMS_TABLE] is None
                or old.items.kind != kind
            ):
                items = self._full(versions[ITEMS_TABLE], versions["fusion"], kind)
            elif old.versions[ITEMS_TABLE] != versions[ITEMS_TABLE]:
                items = self._fold_items(old.items, versions[ITEMS_TABLE], rows)
            else:
                items = old.items
            if old is None:
                profiles, stamps = self._read_profiles(book, None, {}, {})
            elif old.versions["users"] != versions["users"]:
                profiles, stamps = self._read_profiles(book, old.versions["users"], old.profiles, old.stamps)
            else:
                profiles, stamps = old.profiles, old.stamps
            popular = old._popular if old is not None else None
            self._snap = Snapshot(items, profiles, stamps, versions, popular)
            self._seen_writes, self._stamp = writes, stamp  # only after a refresh that succeeded
            return self._snap

    def _kind(self, old: Snapshot | None, versions: dict[str, Any]) -> tuple[str, int | None]:
        """Where the items of ``versions`` are served from (:meth:`ServingConfig.choose`), and their row count
        when it was read for that (the fold that follows needs it too).

        ``"auto"`` counts the rows (only when the items changed) and prices them at the current memory
        snapshot's own bytes per item, at what a LanceDB-served one's flags say a memory one would hold
        (no probe of the vector columns: one of a column no row has scans it all, seconds per million rows),
        or at :func:`estimated_bytes` before there is a snapshot. A change of mode is a full load.
        """
        if self.serving.mode != "auto":
            return self.serving.mode, None
        if old is not None and old.versions[ITEMS_TABLE] == versions[ITEMS_TABLE]:
            return old.items.kind, None
        items = old.items if old is not None and old.items.index else None
        known = None
        if isinstance(items, LanceItemSide):
            known = items.memory_bytes_per_item()
        elif items is not None:
            known = items.nbytes() / len(items.index)
        rows, per_item = estimated_bytes(self.store, known)
        return self.serving.choose(rows, per_item, current=items.kind if items is not None else None), rows

    def _full(self, version: int | None, fusion: str, kind: str) -> ItemRows:
        items = _full_side(self.store, version, fusion, kind)
        log.info(
            "serving %d items with their vectors %s",
            len(items.index),
            "in memory" if kind == "memory" else "in LanceDB",
        )
        return items

    def _fold_items(self, old: ItemRows, version: int | None, total: int | None = None) -> ItemRows:
        """``old`` with the rows changed up to ``version`` (``total``: the table's row count, if already read)."""
        since = int(old.updated.max()) - int(CLOCK_MARGIN / timedelta(microseconds=1)) if len(old.updated) else 0
        # First the ids and stamps of the recent rows only (no vectors), then the full rows of the changed ones.
        recent = _items_table(self.store, f"updated_at >= {_timestamp(since)}", ["id", "updated_at"])
        stamp = dict(zip(old.ids, old.updated.tolist(), strict=True)) if len(recent) else {}
        ids = recent.column("id").to_pylist()
        ts = recent.column("updated_at").cast("int64").to_pylist()
        keep = {i: t for i, t in zip(ids, ts, strict=True) if i not in old.index or stamp.get(i) != t}
        held = scalar_selection(self.store.column_names()) if old.kind == "lancedb" else None
        if keep:
            full = _items_table(self.store, f"updated_at >= {_timestamp(min(keep.values()) - 1_000_000)}", held)
            rows = [
                n
                for n, (i, t) in enumerate(
                    zip(full.column("id").to_pylist(), full.column("updated_at").cast("int64").to_pylist(), strict=True)
                )
                if keep.get(i) == t
            ]
            changed = full.take(np.array(rows, np.int64))
        else:
            changed = _items_table(self.store, "false", held)
        new_ids = sum(1 for i in keep if i not in old.index)
        if total is None:
            total = self.store.read(lambda: int(_fresh(self.store).count_rows()))
        deleted: set[str] = set()
        if total != len(old.index) + new_ids:  # some rows went: find which
            current = set(
                self.store.read(
                    lambda: _fresh(self.store).search().select(["id"]).limit(None).to_arrow().column("id").to_pylist()
                )
            )
            deleted = {i for i in old.index if i not in current}
        if len(changed) + len(deleted) > 0.5 * max(len(old.index), 1):
            return self._full(version, old.fusion, old.kind)  # most rows changed: a full load is cheaper
        return type(old).folded(old, changed, deleted, version)

    def _read_profiles(
        self, book: UserBook | None, old_version: int | None, old: dict[str, Profile], stamps: dict[str, int]
    ) -> tuple[dict[str, Profile], dict[str, int]]:
        tbl = book.tables.users() if book is not None else None
        if tbl is None:
            return {}, {}
        if old_version is None or not stamps:
            rows = self.store.read(lambda: tbl.search().limit(None).to_arrow())
            profiles: dict[str, Profile] = {}
            new_stamps: dict[str, int] = {}
        else:
            since = max(stamps.values()) - int(CLOCK_MARGIN / timedelta(microseconds=1))
            rows = self.store.read(
                lambda: tbl.search().where(f"updated_at >= {_timestamp(since)}").limit(None).to_arrow()
            )
            profiles, new_stamps = dict(old), dict(stamps)
        ts = rows.column("updated_at").cast("int64").to_pylist()
        for n, r in enumerate(rows.to_pylist()):
            if new_stamps.get(r["user"]) != ts[n]:
                profiles[r["user"]] = Profile.from_row(r, book.dim)
                new_stamps[r["user"]] = ts[n]
        if old_version is not None and len(profiles) != int(tbl.count_rows()):  # some profiles went (forget)
            current = set(
                self.store.read(lambda: tbl.search().select(["user"]).limit(None).to_arrow().column("user").to_pylist())
            )
            for user in [u for u in profiles if u not in current]:
                del profiles[user], new_stamps[user]
        return profiles, new_stamps


def _watch(ref: weakref.ReferenceType[SnapshotCache]) -> None:
    """The body of :meth:`SnapshotCache._watch` (holding the cache only while it checks)."""
    while True:
        cache = ref()
        if cache is None:
            return
        now = time.monotonic()
        if now - cache._used > WATCH_IDLE:
            cache._watcher = None
            return
        wait = cache._checked + cache.check_every - now
        if wait <= 0:
            cache._refresh_quietly()
            wait = cache.check_every
        del cache
        time.sleep(max(wait, 0.01))


def count_items(snapshot: Callable[[], Snapshot], store: Store, where: str | None) -> int:
    """Items passing ``where`` in the current snapshot; 0 for a database without items yet."""
    try:
        return snapshot().items.count(store, where)
    except StoreError:
        if not store.has_items():
            return 0
        raise
