"""The serving snapshot: what a request needs, held in memory per database version.

A :class:`Snapshot` holds the items' ids, titles, media flags, listing columns and fusion weights, the
fused and per-modality shared-space vectors (float16: half the memory of float32 at the same recall,
``benchmarks/ann_choice.py``), a search structure per vector column (:mod:`mmrec.recsys.retrieval`),
and every user's profile with its history (what explanations need). Requests read it and make no
LanceDB call; the only reads left are a filter seen for the first time in this version (one query,
then cached) and the popular items of a cold start after new events (one scan, cached per version).

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
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

import numpy as np

from mmrec.errors import InvalidArgumentError, MMRecError, StoreError
from mmrec.names import LISTING_COLUMNS, MODALITIES, shared_column
from mmrec.recsys.profiles import Profile
from mmrec.recsys.retrieval import AllowList, ColumnIndex
from mmrec.recsys.userbook import UserBook
from mmrec.store.items import ITEMS_TABLE, Store
from mmrec.store.sql import check_where

__all__ = ["CHECK_EVERY", "ItemSide", "Snapshot", "SnapshotCache", "VECTOR_COLUMNS"]

log = logging.getLogger("mmrec.snapshot")

#: Seconds between two version checks (another process's writes are served within about twice this).
#: A snapshot checked longer ago than this is checked again before it answers (other writers seen within 1 s).
STALE_AFTER = 0.75
CHECK_EVERY = 0.25
#: Vector columns held: the fused vector and each modality's shared-space vector.
VECTOR_COLUMNS = ["fused_vec", *(shared_column(m) for m in MODALITIES)]
#: Seconds a request after this process's own write waits for a refresh already running (an index rebuild).
WRITE_WAIT = 2.0
#: Rows whose ``updated_at`` is within this of the newest one seen are read again on a change: writers
#: stamp rows with their own clock before taking the writer lock, so commits may land slightly out of order.
CLOCK_MARGIN = timedelta(minutes=10)
#: Filters (allow-lists) and item details cached per items version.
FILTER_CACHE = 256
#: The popular items (cold start) are recomputed at most this often after new events.
POPULAR_EVERY = 5.0
_SCALAR = ["id", "title", "created_at", "updated_at", "fusion_weights", *(f"has_{m}" for m in MODALITIES)]


def _matrix(col: Any, normalise: bool = True, dtype: Any = np.float16) -> tuple[np.ndarray, np.ndarray]:
    """A fixed-size-list Arrow column as ``(vectors (n, D) float16, valid (n,) bool)``; zeros where null."""
    col = col.combine_chunks() if hasattr(col, "combine_chunks") else col
    dim = col.type.list_size
    valid = np.asarray(col.is_valid(), bool) if col.null_count else np.ones(len(col), bool)
    flat = np.asarray(col.values.to_numpy(zero_copy_only=False), np.float32)[col.offset * dim :]
    vecs = flat[: len(col) * dim].reshape(len(col), dim)
    vecs = np.where(valid[:, None], np.nan_to_num(vecs), 0.0)
    if normalise:  # stored unit vectors stay as they are; inner products are then cosines
        norms = np.linalg.norm(vecs, axis=1, keepdims=True)
        vecs = vecs / np.where(norms > 0, norms, 1.0)
    return vecs.astype(dtype), valid


class ItemSide:
    """The items of one version of the ``items`` table (immutable once made; caches fill on first use)."""

    def __init__(self, table: Any, version: int | None, fusion: str, base: ItemSide | None = None) -> None:
        self.version = version
        self.fusion = fusion
        names = set(table.schema.names)
        self.columns = [c for c in VECTOR_COLUMNS if c in names]
        self.ids: list[str] = table.column("id").to_pylist()
        self.titles: list[str] = [t or "" for t in table.column("title").to_pylist()]
        self.updated = np.asarray(table.column("updated_at").cast("int64").to_numpy(zero_copy_only=False))
        self.created = np.asarray(table.column("created_at").cast("int64").to_numpy(zero_copy_only=False))
        self.has = {
            m: np.asarray(table.column(f"has_{m}").fill_null(False).to_numpy(zero_copy_only=False), bool)
            for m in MODALITIES
        }
        weights = table.column("fusion_weights")
        self.weights, self.weights_valid = _matrix(weights, normalise=False, dtype=np.float32)
        self.vectors: dict[str, np.ndarray] = {}
        self.valid: dict[str, np.ndarray] = {}
        for c in self.columns:
            self.vectors[c], self.valid[c] = _matrix(table.column(c))
        self.listing = table.select([c for c in LISTING_COLUMNS if c in names])
        self.alive = np.ones(len(self.ids), bool)
        self._finish(base)

    def _finish(self, base: ItemSide | None) -> None:
        self.index = {i: n for n, i in enumerate(self.ids) if self.alive[n]}
        self.order = np.array(sorted(self.index.values(), key=lambda n: self.ids[n]), np.int64)
        self._search: dict[str, ColumnIndex] = {}
        self._base = base._search if base is not None else {}
        self._filters: OrderedDict[str, AllowList] = OrderedDict()
        self._details: OrderedDict[tuple[Any, ...], dict[str, Any]] = OrderedDict()
        self._newest: np.ndarray | None = None
        self._lock = threading.Lock()
        if len(self.ids) and "fused_vec" in self.columns:
            self.searcher("fused_vec")  # built here (in the refresh thread), not by the first request

    @classmethod
    def folded(cls, old: ItemSide, changed: Any, deleted: set[str], version: int | None) -> ItemSide:
        """``old`` with the rows of ``changed`` (an Arrow table: new or changed items) and without ``deleted``."""
        import pyarrow as pa

        new = object.__new__(cls)
        new.version, new.fusion, new.columns = version, old.fusion, old.columns
        replaced = [old.index[i] for i in changed.column("id").to_pylist() if i in old.index]
        replaced += [old.index[i] for i in deleted if i in old.index]
        alive = old.alive.copy()
        alive[replaced] = False
        # The changed rows appended in the layout of a full load; the old copies of changed rows are dead.
        ids = changed.column("id").to_pylist()
        new.ids = old.ids + ids
        new.titles = old.titles + [t or "" for t in changed.column("title").to_pylist()]
        new.updated = np.concatenate(
            [old.updated, changed.column("updated_at").cast("int64").to_numpy(zero_copy_only=False)]
        )
        new.created = np.concatenate(
            [old.created, changed.column("created_at").cast("int64").to_numpy(zero_copy_only=False)]
        )
        new.has = {
            m: np.concatenate(
                [
                    old.has[m],
                    np.asarray(changed.column(f"has_{m}").fill_null(False).to_numpy(zero_copy_only=False), bool),
                ]
            )
            for m in MODALITIES
        }
        w, wv = _matrix(changed.column("fusion_weights"), normalise=False, dtype=np.float32)
        new.weights, new.weights_valid = np.concatenate([old.weights, w]), np.concatenate([old.weights_valid, wv])
        new.vectors, new.valid = {}, {}
        for c in old.columns:
            v, ok = _matrix(changed.column(c))
            new.vectors[c], new.valid[c] = np.concatenate([old.vectors[c], v]), np.concatenate([old.valid[c], ok])
        new.listing = pa.concat_tables([old.listing, changed.select(old.listing.schema.names).cast(old.listing.schema)])
        new.alive = np.concatenate([alive, np.ones(len(ids), bool)])
        new._finish(old)
        return new

    # ----------------------------------------------------------------- search

    def searcher(self, column: str) -> ColumnIndex:
        """The search structure of ``column`` (made on first use, reusing the previous version's index)."""
        found = self._search.get(column)
        if found is None:
            with self._lock:
                found = self._search.get(column)
                if found is None:
                    usable = self.alive & self.valid[column]
                    found = self._search[column] = ColumnIndex(
                        column, self.vectors[column], usable, self._base.get(column)
                    )
        return found

    def allow(self, store: Store, where: str | None) -> AllowList | None:
        """The rows passing the SQL ``where`` (``None`` for no filter): one LanceDB query per filter and version."""
        where = check_where(where)
        if where is None:
            return None
        found = self._filters.get(where)
        if found is not None:
            self._filters.move_to_end(where)
            return found

        def read() -> list[str]:
            q = _fresh(store).search().select(["id"]).where(where).limit(None)
            return q.to_arrow().column("id").to_pylist()

        mask = np.zeros(len(self.ids), bool)
        rows = [self.index[i] for i in store.read(read, where) if i in self.index]
        mask[rows] = True
        found = AllowList(mask)
        with self._lock:
            self._filters[where] = found
            while len(self._filters) > FILTER_CACHE:
                self._filters.popitem(last=False)
        return found

    def nearest(
        self,
        store: Store,
        column: str,
        queries: np.ndarray,
        k: int,
        where: str | None = None,
        exclude: Sequence[str] = (),
    ) -> list[list[tuple[int, float]]]:
        """The ``k`` nearest rows of ``column`` to each of ``queries`` ``(Q, D)``, in one search call.

        ``where`` is applied inside the search; ``exclude`` (item ids) are left out, with as many extra
        candidates fetched so that ``k`` still come back. Returns per query ``[(row, cosine), …]`` best first.
        """
        allow = self.allow(store, where)
        search = self.searcher(column)
        queries = np.asarray(queries, np.float32)
        queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
        banned = {self.index[i] for i in exclude if i in self.index}
        if allow is not None:
            banned = {r for r in banned if allow.mask[r]}
        found = search.search(queries, k + len(banned), allow)
        return [
            [(r, sc) for r, sc in zip(rows.tolist(), scores.tolist(), strict=True) if r not in banned][:k]
            for rows, scores in found
        ]

    # ----------------------------------------------------------------- rows

    def row(self, n: int, columns: Sequence[str] = ()) -> dict[str, Any]:
        """Row ``n`` as the dict the recommenders read: id, title, fusion weights and vectors (float32, or ``None``)."""
        out: dict[str, Any] = {"id": self.ids[n], "title": self.titles[n]}
        out["fusion_weights"] = self.weights[n].copy() if self.weights_valid[n] else None
        for c in columns or self.columns:
            if c in self.vectors:
                out[c] = self.vectors[c][n].astype(np.float32) if self.valid[c][n] else None
        return out

    def rows(self, ids: Sequence[str], columns: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Like :meth:`Store.rows` for the columns held here: id → row (unknown ids are absent)."""
        return {i: self.row(self.index[i], columns or ()) for i in ids if i in self.index}

    def listing_rows(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """The listing columns (:data:`~mmrec.names.LISTING_COLUMNS`) of ``rows``, in that order."""
        return self.listing.take(rows).to_pylist() if len(rows) else []

    def detail(self, key: tuple[Any, ...], make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """An item's description, made once per items version (``make`` reads the database)."""
        found = self._details.get(key)
        if found is None:
            found = make()
            with self._lock:
                self._details[key] = found
                while len(self._details) > FILTER_CACHE:
                    self._details.popitem(last=False)
        return found

    def count(self, store: Store, where: str | None = None) -> int:
        """Items passing ``where`` (all alive items without one)."""
        allow = self.allow(store, where)
        return len(self.index) if allow is None else len(allow)

    def media_flags(self, ids: Sequence[str]) -> dict[str, tuple[bool, bool]]:
        """Item id → ``(has_image, has_audio)`` for the known ids among ``ids``."""
        img, aud = self.has["image"], self.has["audio"]
        return {i: (bool(img[n]), bool(aud[n])) for i in ids if (n := self.index.get(i)) is not None}

    def page(self, store: Store, limit: int | None, offset: int, where: str | None) -> list[dict[str, Any]]:
        """Listing rows sorted by id, ``offset`` and ``limit`` applied, optionally filtered (as :meth:`Store.list`)."""
        if limit is not None and limit < 0:
            raise InvalidArgumentError(f"limit must be >= 0, got {limit}")
        if offset < 0:
            raise InvalidArgumentError(f"offset must be >= 0, got {offset}")
        allow = self.allow(store, where)
        order = self.order if allow is None else self.order[allow.mask[self.order]]
        return self.listing_rows(order[offset : None if limit is None else offset + limit])

    def newest_order(self) -> np.ndarray:
        """Alive rows, newest first (``created_at``, then id, descending); sorted once per version."""
        if self._newest is None:
            rows = list(self.index.values())
            self._newest = np.array(sorted(rows, key=lambda n: (int(self.created[n]), self.ids[n]), reverse=True))
        return self._newest

    def nbytes(self) -> int:
        """Bytes held for the items: vectors, flags, listing columns and search structures (ids and titles apart)."""
        total = sum(v.nbytes + self.valid[c].nbytes for c, v in self.vectors.items())
        total += self.weights.nbytes + self.updated.nbytes + self.created.nbytes + self.alive.nbytes
        total += sum(h.nbytes for h in self.has.values()) + self.listing.nbytes
        return total + sum(s.nbytes() for s in self._search.values())


class Snapshot:
    """The items and the users of one database version, as a request reads them (see the module docstring).

    Attributes
    ----------
    items : ItemSide
    profiles : dict
        User id → :class:`~mmrec.recsys.profiles.Profile`.
    versions : dict
        What it was made from: the tables' versions and the fusion fingerprint.
    """

    def __init__(
        self,
        items: ItemSide,
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

    def profile(self, user: str) -> Profile | None:
        return self.profiles.get(user)

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


def _read_versions(store: Store, users: UserBook | None) -> dict[str, Any]:
    """The tables' newest versions (fresh handles: another process's commits are seen at once) and the fusion fingerprint."""
    names = set(store.table_names())
    out: dict[str, Any] = {}
    for name in (ITEMS_TABLE, "interactions", "users", "hybrid_models", "rating_models"):
        out[name] = int(store.db.open_table(name).version) if name in names else None
    out["fusion"] = (store.fusion_identity() or {}).get("fingerprint") if ITEMS_TABLE in names else None
    return out


def _items_table(store: Store, where: str | None = None, columns: list[str] | None = None) -> Any:
    """Every column the snapshot holds (or ``columns``), as one Arrow table (rows matching ``where``)."""
    names = set(store.column_names())
    cols = columns or list(
        dict.fromkeys(
            [*_SCALAR, *(c for c in LISTING_COLUMNS if c in names), *(c for c in VECTOR_COLUMNS if c in names)]
        )
    )

    def read() -> Any:
        q = _fresh(store).search().select(cols).limit(None)
        if where:
            q = q.where(where)
        return q.to_arrow()

    return store.read(read)


def _fresh(store: Store) -> Any:
    """The items table at its newest version. The Store's own handle may lag another process's commit by up
    to its read-consistency interval; data read through it could be older than the version just recorded."""
    store.items()  # the one-line error of a database without items
    return store.db.open_table(ITEMS_TABLE)


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
    """

    def __init__(self, store: Store, users: Callable[[], UserBook], check_every: float = CHECK_EVERY) -> None:
        self.store = store
        self.users = users
        self.check_every = check_every
        self._snap: Snapshot | None = None
        self._checked = -float("inf")
        self._lock = threading.RLock()  # one refresh at a time
        self._refreshing = False
        self._writes = 0
        self._seen_writes = -1
        previous = store.writer.on_acquire

        def on_acquire() -> None:  # a write of this process: the next request refreshes first
            if previous is not None:
                previous()
            self._writes += 1

        store.writer.on_acquire = on_acquire

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
        age = time.monotonic() - self._checked
        if age >= STALE_AFTER:
            # Idle for a while (no request started a background check): what another process wrote since must be
            # seen by this request, so check now, unless a long refresh is already running.
            if self._lock.acquire(timeout=WRITE_WAIT):
                try:
                    return self._refreshed_or(snap)
                finally:
                    self._lock.release()
            return snap
        if age >= self.check_every and not self._refreshing:
            self._refreshing = True
            threading.Thread(target=self._refresh_quietly, name="mmrec-snapshot", daemon=True).start()
        return snap

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
        finally:
            self._refreshing = False

    def refresh(self) -> Snapshot:
        """Bring the snapshot to the database's current versions (incrementally when one exists)."""
        with self._lock:  # re-entrant: current() may hold it already
            writes = self._writes
            self._checked = time.monotonic()
            old = self._snap
            book = self.users() if self.store.has_items() else None
            versions = _read_versions(self.store, book)
            if old is not None and old.versions == versions:
                self._seen_writes = writes
                return old
            if versions[ITEMS_TABLE] is None:
                self.store.items()  # raises the one-line "no items yet"
            if old is None or old.versions["fusion"] != versions["fusion"] or old.versions[ITEMS_TABLE] is None:
                items = ItemSide(_items_table(self.store), versions[ITEMS_TABLE], versions["fusion"])
            elif old.versions[ITEMS_TABLE] != versions[ITEMS_TABLE]:
                items = self._fold_items(old.items, versions[ITEMS_TABLE])
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
            self._seen_writes = writes
            return self._snap

    def _fold_items(self, old: ItemSide, version: int | None) -> ItemSide:
        since = int(old.updated.max()) - int(CLOCK_MARGIN / timedelta(microseconds=1)) if len(old.updated) else 0
        # First the ids and stamps of the recent rows only (no vectors), then the full rows of the changed ones.
        recent = _items_table(self.store, f"updated_at >= {_timestamp(since)}", ["id", "updated_at"])
        stamp = dict(zip(old.ids, old.updated.tolist(), strict=True)) if len(recent) else {}
        ids = recent.column("id").to_pylist()
        ts = recent.column("updated_at").cast("int64").to_pylist()
        keep = {i: t for i, t in zip(ids, ts, strict=True) if i not in old.index or stamp.get(i) != t}
        if keep:
            full = _items_table(self.store, f"updated_at >= {_timestamp(min(keep.values()) - 1_000_000)}")
            rows = [
                n
                for n, (i, t) in enumerate(
                    zip(full.column("id").to_pylist(), full.column("updated_at").cast("int64").to_pylist(), strict=True)
                )
                if keep.get(i) == t
            ]
            changed = full.take(np.array(rows, np.int64))
        else:
            changed = _items_table(self.store, "false")
        new_ids = sum(1 for i in keep if i not in old.index)
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
            return ItemSide(_items_table(self.store), version, old.fusion)  # most rows changed: a full load is cheaper
        return ItemSide.folded(old, changed, deleted, version)

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


def count_items(snapshot: Callable[[], Snapshot], store: Store, where: str | None) -> int:
    """Items passing ``where`` in the current snapshot; 0 for a database without items yet."""
    try:
        return snapshot().items.count(store, where)
    except StoreError:
        if not store.has_items():
            return 0
        raise


def newest(items: ItemSide, allow: AllowList | None, modality: str, k: int) -> list[int]:
    """Rows of the ``k`` newest items (by ``created_at``, then id, newest first) passing ``allow`` and having ``modality``."""
    mask = items.alive.copy()
    if allow is not None:
        mask &= allow.mask
    if modality != "any":
        mask &= items.has[modality]
    out: list[int] = []
    for n in items.newest_order():
        if mask[n]:
            out.append(int(n))
            if len(out) == k:
                break
    return out
