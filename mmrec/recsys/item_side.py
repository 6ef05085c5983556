"""The items of one serving snapshot: ids, flags, listing columns, and the vectors or the way to them.

:class:`ItemRows` is one version of the ``items`` table as a request reads it (see :mod:`mmrec.recsys.snapshot`,
which makes and refreshes it): row positions ``0 … N-1`` index every array; a row is *dead* once a later
version deleted or replaced it (a fold appends the new copy). Everything but the vectors is held in memory
(ids, titles, flags, fusion weights, listing columns, which rows have each vector), and every vector need
goes through two methods of its two implementations, chosen once per snapshot:

* :class:`ItemSide` holds the float16 vectors and answers searches through a
  :class:`~mmrec.recsys.retrieval.ColumnIndex` per vector column (``serving = "memory"``);
* :class:`~mmrec.recsys.item_side_lance.LanceItemSide` holds none: it searches with LanceDB's own index and
  reads a handful of rows' vectors by id in one query, at the snapshot's table version (``"lancedb"``).

:meth:`ItemRows.candidates` is the search, :meth:`ItemRows.vectors_of` the per-row read; the result fields
(:meth:`ItemRows.fusion_weights`, :meth:`ItemRows.closest_modality`, :meth:`ItemRows.modality_sims`) are
gathered for the rows a request returns only. Filters are allow-lists (one LanceDB query per filter and
version) where a request needs them outside a search.
"""

from __future__ import annotations

import threading
from array import array
from collections.abc import Callable, Collection, Sequence
from typing import Any

import numpy as np

from mmrec.errors import InvalidArgumentError, StoreError
from mmrec.names import FUSED_COLUMN, LISTING_COLUMNS, MODALITIES, shared_column
from mmrec.recsys.retrieval import LRU, AllowList, ColumnIndex
from mmrec.store.items import ITEMS_TABLE, Store
from mmrec.store.sql import check_where

__all__ = [
    "FILTER_CACHE",
    "ItemRows",
    "ItemSide",
    "VECTOR_COLUMNS",
    "bytes_per_item",
    "estimated_bytes",
    "newest",
    "read_items",
]

#: Vector columns held: the fused vector and each modality's shared-space vector.
VECTOR_COLUMNS = [FUSED_COLUMN, *(shared_column(m) for m in MODALITIES)]
#: Filters (allow-lists) and item details cached per items version.
FILTER_CACHE = 256


def _matrix(
    col: Any, normalise: bool = True, dtype: Any = np.float16, out: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """A fixed-size-list Arrow column as ``(vectors (n, D) float16, valid (n,) bool)``; zeros where null.

    Converted in chunks straight from the Arrow buffer (no per-row Python, no full-size float32 temporaries),
    into ``out`` when given (rows already zero). A fresh output starts as ``np.zeros`` (calloc), so a column
    with no values (a modality no item has) takes no memory until rows are written into it.
    """
    col = col.combine_chunks() if hasattr(col, "combine_chunks") else col
    n, dim = len(col), col.type.list_size
    valid = np.asarray(col.is_valid(), bool) if col.null_count else np.ones(n, bool)
    if out is None:
        out = np.zeros((n, dim), dtype)
    if not valid.any():
        return out, valid
    flat = col.values.to_numpy(zero_copy_only=False)[col.offset * dim : (col.offset + n) * dim].reshape(n, dim)
    for start in range(0, n, _CHUNK):
        v = np.array(flat[start : start + _CHUNK], np.float32)  # a copy: the Arrow buffer is read-only
        ok = valid[start : start + _CHUNK]
        finite = np.isfinite(v)
        if not finite.all():
            v[~finite] = 0.0
        v[~ok] = 0.0
        if normalise:  # stored unit vectors stay as they are; inner products are then cosines
            norms = np.sqrt(np.einsum("ij,ij->i", v, v))[:, None]
            v /= np.where(norms > 0, norms, 1.0)
        out[start : start + _CHUNK] = v
    return out, valid


#: Rows converted at a time by :func:`_matrix` (16k x 384 float32 = 25 MB of temporaries).
_CHUNK = 16384


class ItemRows:
    """The items of one version of the ``items`` table but their vectors (immutable once made; caches fill on
    first use). The base of :class:`ItemSide` (vectors in memory) and of
    :class:`~mmrec.recsys.item_side_lance.LanceItemSide` (vectors in LanceDB); see the module docstring.

    Attributes
    ----------
    kind : str
        ``"memory"`` or ``"lancedb"``: where the vectors are.
    columns : list of str
        The vector columns of the table (of :data:`VECTOR_COLUMNS`).
    valid : dict
        Vector column → ``(N,)`` bool: which rows have a value in it.
    """

    kind = ""
    columns: list[str]
    valid: dict[str, np.ndarray]

    def _scalars(self, table: Any, version: int | None, fusion: str) -> None:
        """The held columns of a full load (``table``: the items' non-vector columns as Arrow)."""
        self.version = version
        self.fusion = fusion
        self.ids: list[str] = table.column("id").to_pylist()
        self.titles: list[str] = [t or "" for t in table.column("title").to_pylist()]
        self.updated = np.asarray(table.column("updated_at").cast("int64").to_numpy(zero_copy_only=False))
        self.created = np.asarray(table.column("created_at").cast("int64").to_numpy(zero_copy_only=False))
        self.has = {
            m: np.asarray(table.column(f"has_{m}").fill_null(False).to_numpy(zero_copy_only=False), bool)
            for m in MODALITIES
        }
        self.weights, self.weights_valid = _matrix(table.column("fusion_weights"), normalise=False, dtype=np.float32)
        self.listing = table.select([c for c in LISTING_COLUMNS if c in table.schema.names])
        self.alive = np.ones(len(self.ids), bool)

    def _fold_scalars(self, old: ItemRows, changed: Any, deleted: set[str], version: int | None) -> list[str]:
        """The held columns of ``old`` with the rows of ``changed`` appended and the replaced or ``deleted`` ones dead.

        Returns the appended ids.
        """
        import pyarrow as pa

        self.version, self.fusion, self.columns = version, old.fusion, old.columns
        replaced = [old.index[i] for i in changed.column("id").to_pylist() if i in old.index]
        replaced += [old.index[i] for i in deleted if i in old.index]
        alive = old.alive.copy()
        alive[replaced] = False
        # The changed rows appended in the layout of a full load; the old copies of changed rows are dead.
        ids = changed.column("id").to_pylist()
        self.ids = old.ids + ids
        self.titles = old.titles + [t or "" for t in changed.column("title").to_pylist()]
        self.updated = np.concatenate(
            [old.updated, changed.column("updated_at").cast("int64").to_numpy(zero_copy_only=False)]
        )
        self.created = np.concatenate(
            [old.created, changed.column("created_at").cast("int64").to_numpy(zero_copy_only=False)]
        )
        self.has = {
            m: np.concatenate(
                [
                    old.has[m],
                    np.asarray(changed.column(f"has_{m}").fill_null(False).to_numpy(zero_copy_only=False), bool),
                ]
            )
            for m in MODALITIES
        }
        w, wv = _matrix(changed.column("fusion_weights"), normalise=False, dtype=np.float32)
        self.weights, self.weights_valid = np.concatenate([old.weights, w]), np.concatenate([old.weights_valid, wv])
        names = old.listing.schema.names
        self.listing = pa.concat_tables([old.listing, changed.select(names).cast(old.listing.schema)])
        self.alive = np.concatenate([alive, np.ones(len(ids), bool)])
        return ids

    def _finish(self) -> None:
        self.index = {i: n for n, i in enumerate(self.ids) if self.alive[n]}
        self.order = np.array(sorted(self.index.values(), key=lambda n: self.ids[n]), np.int64)
        self._filters: LRU[AllowList] = LRU(FILTER_CACHE)
        self._details: LRU[dict[str, Any]] = LRU(FILTER_CACHE)
        self._newest: np.ndarray | None = None
        self._rounded: array[float] | None = None  # (N, W) rounded fusion weights, flat
        self._weighted: list[str] = []  # the W modalities some row weighs
        self._has_one: bytes | None = None  # the one present modality's valid flags (N,)
        self._lock = threading.Lock()
        #: The modalities some alive row has a shared-space vector of (the others are never searched or matched).
        self.present = [
            m
            for m in MODALITIES
            if shared_column(m) in self.valid and (self.valid[shared_column(m)] & self.alive).any()
        ]

    # ----------------------------------------------------------------- the two vector accessors

    def searchable(self, column: str) -> bool:
        """Whether the items have vector ``column`` at all (and rows to search)."""
        return column in self.valid and bool(self.ids)

    def candidates(
        self, store: Store, column: str, queries: np.ndarray, k: int, where: str | None = None
    ) -> list[tuple[list[int], list[float]]]:
        """The ``k`` nearest rows of ``column`` to each of ``queries`` ``(Q, D)`` float32 unit vectors, in one call.

        ``where`` is applied inside the search. Returns per query ``(rows, cosines)`` best first, as lists:
        callers walk a few dozen candidates, which costs less in Python than NumPy calls on arrays that small.
        """
        raise NotImplementedError

    def vectors_of(self, rows: Sequence[int], columns: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Column → ``(float32 unit vectors (n, D), has (n,) bool)`` of ``rows`` (zeros where a row has none).

        Columns the table does not have are absent. The one read of per-row vectors (scoring, diversity,
        explanations, modality attribution): one call for all the rows a step needs.
        """
        raise NotImplementedError

    def nbytes(self) -> int:
        """Bytes held for the items (ids and titles apart)."""
        raise NotImplementedError

    def _held_nbytes(self) -> int:
        total = sum(v.nbytes for v in self.valid.values())
        total += self.weights.nbytes + self.updated.nbytes + self.created.nbytes + self.alive.nbytes
        total += sum(h.nbytes for h in self.has.values()) + self.listing.nbytes
        return (
            total
            + (self._rounded.itemsize * len(self._rounded) if self._rounded is not None else 0)
            + len(self._has_one or b"")
        )

    # ----------------------------------------------------------------- search

    def allow(self, store: Store, where: str | None) -> AllowList | None:
        """The rows passing the SQL ``where`` (``None`` for no filter): one LanceDB query per filter and version."""
        where = check_where(where)
        if where is None:
            return None
        found = self._filters.get(where)
        if found is not None:
            return found

        def read(tbl: Any) -> list[str]:
            return tbl.search().select(["id"]).where(where).limit(None).to_arrow().column("id").to_pylist()

        mask = np.zeros(len(self.ids), bool)
        mask[[self.index[i] for i in self._filter_read(store, read, where) if i in self.index]] = True
        return self._filters.put(where, AllowList(mask))

    def _filter_read(self, store: Store, op: Callable[[Any], Any], where: str) -> Any:
        """``op(items table handle)`` for a filter: at the newest version here (the rows outside this
        snapshot are skipped); a snapshot that searches LanceDB reads at its own version."""
        return store.read(lambda: op(_fresh(store)), where)

    def positions(self, ids: Collection[str]) -> set[int]:
        """The rows of the known ids among ``ids``."""
        index = self.index
        return {n for i in ids if (n := index.get(i)) is not None}

    def nearest(
        self,
        store: Store,
        column: str,
        queries: np.ndarray,
        k: int,
        where: str | None = None,
        exclude: Collection[str] = (),
    ) -> list[tuple[list[int], list[float]]]:
        """Like :meth:`candidates`, leaving out the items ``exclude`` (as many more fetched: ``k`` still come back)."""
        banned = self.positions(exclude)
        found = self.candidates(store, column, queries, k + len(banned), where)
        if not banned:
            return found
        out = []
        for rows, scores in found:
            kept = [j for j, r in enumerate(rows) if r not in banned][:k]
            out.append(([rows[j] for j in kept], [scores[j] for j in kept]))
        return out

    # ----------------------------------------------------------------- result fields (a few rows at a time)

    def fusion_weights(self, rows: Sequence[int]) -> list[dict[str, float]]:
        """Per row, its fusion attention weight per modality it has (rounded; ``{}`` without fused vector).

        Read with plain indexing of flat arrays, no NumPy call: a request asks after its faiss search,
        which has pushed NumPy's code and data out of the core's caches (10 rows: 23 µs this way against
        41 µs through a fancy index and ``tolist`` on the loaded 2-core box).
        """
        if self._rounded is None:  # once per version: rounded as the results show them, as float64
            rounded = np.round(self.weights.astype(np.float64), 4)
            rounded[~self.weights_valid] = 0.0  # a row without fused vector has no positive weight: {}
            weighs = (rounded > 0).any(axis=0).tolist()
            # Only the modalities some row weighs are walked per row (a text-only catalog: one).
            self._weighted = [m for m, w in zip(MODALITIES, weighs, strict=True) if w]
            cols = [MODALITIES.index(m) for m in self._weighted]
            self._rounded = array("d", np.ascontiguousarray(rounded[:, cols]).tobytes())
        flat, names = self._rounded, self._weighted
        width = len(names)
        out = []
        for n in rows:
            d = {}
            at = n * width
            for m in names:
                x = flat[at]
                if x > 0:
                    d[m] = x
                at += 1
            out.append(d)
        return out

    def modality_sims(self, rows: np.ndarray, directions: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Modality → ``(cosines (n,), has (n,) bool)``: each row's shared-space vector against its direction.

        ``directions`` is ``(n, D)`` (one per row) or ``(D,)`` (the same for all); modalities no row has are absent.
        """
        found = self.vectors_of(rows, [shared_column(m) for m in self.present])
        out = {}
        for m in self.present:
            vecs, has = found[shared_column(m)]
            out[m] = (vecs @ directions if directions.ndim == 1 else np.einsum("ij,ij->i", vecs, directions), has)
        return out

    def closest_modality(self, rows: Sequence[int], directions: Callable[[], np.ndarray]) -> list[str]:
        """Per row, its modality whose shared-space vector is closest to its direction (``""``: it has none).

        ``directions()`` gives the ``(n, D)`` directions, one per row (asked for only when the catalog
        has more than one modality: with one, that one is the closest wherever a row has it).
        """
        if len(self.present) == 1:
            m = self.present[0]
            if self._has_one is None:  # as bytes: indexed per row without a NumPy call (see fusion_weights)
                self._has_one = self.valid[shared_column(m)].tobytes()
            has = self._has_one
            return [m if has[n] else "" for n in rows]
        rows = np.asarray(rows, np.int64)
        best = np.full(len(rows), -np.inf, np.float32)
        names = [""] * len(rows)
        for m, (sims, has) in self.modality_sims(rows, directions()).items():
            better = has & (sims > best)  # strictly: the first modality wins a tie, as a max over a dict would
            best = np.where(better, sims, best)
            for j in np.flatnonzero(better).tolist():
                names[j] = m
        return names

    # ----------------------------------------------------------------- rows

    def rows_at(self, rows: Sequence[int], columns: Sequence[str] = ()) -> list[dict[str, Any]]:
        """Rows as the dicts the recommenders read: id, title, fusion weights and vectors (float32, or ``None``),
        the vectors of all of them read in one :meth:`vectors_of` call."""
        wanted = [c for c in (columns or self.columns) if c in self.valid]
        found = self.vectors_of(rows, wanted)
        out = []
        for j, n in enumerate(rows):
            row: dict[str, Any] = {"id": self.ids[n], "title": self.titles[n]}
            row["fusion_weights"] = self.weights[n].copy() if self.weights_valid[n] else None
            for c in wanted:
                vecs, has = found[c]
                row[c] = vecs[j] if has[j] else None
            out.append(row)
        return out

    def rows(self, ids: Sequence[str], columns: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
        """Like :meth:`Store.rows` for the columns held here: id → row (unknown ids are absent)."""
        known = [i for i in ids if i in self.index]
        return {r["id"]: r for r in self.rows_at([self.index[i] for i in known], columns or ())}

    def listing_rows(self, rows: np.ndarray) -> list[dict[str, Any]]:
        """The listing columns (:data:`~mmrec.names.LISTING_COLUMNS`) of ``rows``, in that order."""
        return self.listing.take(rows).to_pylist() if len(rows) else []

    def detail(self, key: tuple[Any, ...], make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """An item's description, made once per items version (``make`` reads the database)."""
        found = self._details.get(key)
        return found if found is not None else self._details.put(key, make())

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


class ItemSide(ItemRows):
    """The items of one version with their float16 vectors in memory, searched by faiss (``serving = "memory"``)."""

    kind = "memory"

    def __init__(
        self,
        table: Any,
        version: int | None,
        fusion: str,
        base: ItemSide | None = None,
        vectors: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    ) -> None:
        """``table``: the items' columns as Arrow; ``vectors``: column → ``(float16 (N, D), valid (N,))`` already
        converted (:func:`read_items` converts them batch by batch), else read from ``table``."""
        names = set(table.schema.names) | set(vectors or {})
        self.columns = [c for c in VECTOR_COLUMNS if c in names]
        self._scalars(table, version, fusion)
        self.vectors: dict[str, np.ndarray] = {}
        self.valid = {}
        for c in self.columns:
            self.vectors[c], self.valid[c] = vectors[c] if vectors and c in vectors else _matrix(table.column(c))
        self._finish_memory(base)

    def _finish_memory(self, base: ItemSide | None) -> None:
        self._finish()
        self._search: dict[str, ColumnIndex] = {}
        self._base = base._search if base is not None else {}
        if len(self.ids) and FUSED_COLUMN in self.columns:
            self.searcher(FUSED_COLUMN)  # built here (in the refresh thread), not by the first request

    @classmethod
    def folded(cls, old: ItemSide, changed: Any, deleted: set[str], version: int | None) -> ItemSide:
        """``old`` with the rows of ``changed`` (an Arrow table: new or changed items) and without ``deleted``."""
        new = object.__new__(cls)
        new._fold_scalars(old, changed, deleted, version)
        new.vectors, new.valid = {}, {}
        for c in old.columns:
            v, ok = _matrix(changed.column(c))
            new.vectors[c], new.valid[c] = np.concatenate([old.vectors[c], v]), np.concatenate([old.valid[c], ok])
        new._finish_memory(old)
        return new

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

    def candidates(
        self, store: Store, column: str, queries: np.ndarray, k: int, where: str | None = None
    ) -> list[tuple[list[int], list[float]]]:
        allow = self.allow(store, where) if where is not None else None
        search = self._search.get(column) or self.searcher(column)
        return search.lists(queries, k, allow)

    def vectors_of(self, rows: Sequence[int], columns: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        # One row (a similar-by-item's query) as a slice: a fancy index costs a few µs more per call.
        at: Any = slice(int(rows[0]), int(rows[0]) + 1) if len(rows) == 1 else np.asarray(rows, np.int64)
        return {c: (self.vectors[c][at].astype(np.float32), self.valid[c][at]) for c in columns if c in self.vectors}

    def nbytes(self) -> int:
        """Bytes held for the items: vectors, flags, listing columns and search structures (ids and titles apart).

        A vector column no row has a value in is not counted: its zeros were never written (calloc), so the
        operating system gives it no memory.
        """
        total = sum(v.nbytes for c, v in self.vectors.items() if self.valid[c].any()) + self._held_nbytes()
        return total + sum(s.nbytes() for s in self._search.values())


def read_items(store: Store, columns: Sequence[str]) -> tuple[Any, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Every row of the items table in one scan: ``columns`` that are not vectors as an Arrow table, and each
    of :data:`VECTOR_COLUMNS` as ``(float16 (N, D), valid (N,))``, converted batch by batch.

    Streaming keeps the float32 Arrow copy to one batch: a whole-table read held 6 kB per item at 384-d
    (null modality columns are materialised as zeros too) and left most of it with the allocator.
    """
    import pyarrow as pa

    def read() -> Any:
        tbl = _fresh(store)  # one handle: the count and the scans see the same version
        schema = tbl.schema
        held = [c for c in VECTOR_COLUMNS if c in schema.names]
        rest = [c for c in columns if c in schema.names and c not in held]
        n = int(tbl.count_rows())
        out = {c: (np.zeros((n, schema.field(c).type.list_size), np.float16), np.zeros(n, bool)) for c in held}
        # A modality no item has stays zeros (calloc: no memory) and is not scanned, which would cost its
        # full float32 size in scan buffers.
        vec = with_values(tbl, held)
        parts, start = [], 0
        for batch in tbl.search().select([*rest, *vec]).limit(None).to_batches():
            m = batch.num_rows
            if start + m > n:
                raise StoreError(f"database {store.uri!r} changed while it was read; try again")
            for c in vec:
                _, ok = _matrix(batch.column(c), out=out[c][0][start : start + m])
                out[c][1][start : start + m] = ok
            parts.append(pa.Table.from_batches([batch]).select(rest))
            start += m
        table = pa.concat_tables(parts) if parts else schema.empty_table().select(rest)
        return table, {c: (v[:start], ok[:start]) for c, (v, ok) in out.items()}

    return store.read(read)


#: The scalar columns every snapshot reads besides the listing ones (a vector's validity comes from the flags among them).
SCALAR_COLUMNS = ("id", "title", "created_at", "updated_at", "fusion_weights", *(f"has_{m}" for m in MODALITIES))


def scalar_selection(names: Collection[str]) -> list[str]:
    """The scalar and listing columns a snapshot reads from a table with these column ``names``; no vector."""
    return [c for c in dict.fromkeys([*SCALAR_COLUMNS, *LISTING_COLUMNS]) if c in names]


#: Bytes per item a memory snapshot holds besides its vectors (flags, weights, stamps, listing columns of a
#: catalog without long tags; ``ItemSide.nbytes`` measures it, about 100 on the synthetic catalogs).
SCALAR_BYTES = 120


def estimated_bytes(store: Store, per_item: float | None = None) -> tuple[int, float]:
    """``(rows, bytes per item)`` of a memory snapshot of the items table, before it is built.

    Per item: float16 values and a flag per vector column some row has a value in, the faiss index's copy
    of the fused vectors (float16 and an id) above :data:`~mmrec.recsys.retrieval.ANN_MIN_ROWS` rows, and
    :data:`SCALAR_BYTES`: 2,335 for the 384-d one-modality catalogs, where ``nbytes`` measured 2.4 kB.
    ``per_item`` given: only the rows are counted.
    """

    def read() -> tuple[int, float]:
        tbl = _fresh(store)
        rows = int(tbl.count_rows())
        if per_item is not None:
            return rows, per_item
        names = tbl.schema.names
        present = with_values(tbl, [c for c in VECTOR_COLUMNS if c in names])
        return rows, bytes_per_item({c: tbl.schema.field(c).type.list_size for c in present}, rows)

    return store.read(read)


def with_values(tbl: Any, columns: Sequence[str]) -> list[str]:
    """The vector ``columns`` of LanceDB table ``tbl`` that some row has a value in, in their order.

    Asked of the flag written with each vector (``fusion_weights`` for ``fused_vec``, ``has_<modality>`` for
    its shared vector): one probe for a first row of a vector column no row has reads the whole column
    (1.6 s per 100k 384-d rows), of its flag a few bytes per row. A table without the flag probes the vector.
    """
    names = tbl.schema.names
    out = []
    for c in columns:
        flag = "fusion_weights" if c == FUSED_COLUMN else f"has_{c.removesuffix('_shared')}"
        where = (f"{flag} IS NOT NULL" if c == FUSED_COLUMN else flag) if flag in names else f"{c} IS NOT NULL"
        if len(tbl.search().select(["id"]).where(where).limit(1).to_arrow()):
            out.append(c)
    return out


def bytes_per_item(dims: dict[str, int], rows: int) -> float:
    """The bytes per item of a memory snapshot of ``rows`` items whose vector columns with some value have
    ``dims`` (column → dimensions): see :func:`estimated_bytes`."""
    from mmrec.recsys.retrieval import ANN_MIN_ROWS

    total = float(SCALAR_BYTES)
    for c, dim in dims.items():
        total += 2 * dim + 1 + (2 * dim + 8 if c == FUSED_COLUMN and rows >= ANN_MIN_ROWS else 0)
    return total


def _fresh(store: Store) -> Any:
    """The items table at its newest version. The Store's own handle may lag another process's commit by up
    to its read-consistency interval; data read through it could be older than the version just recorded."""
    store.items()  # the one-line error of a database without items
    return store.db.open_table(ITEMS_TABLE)


def newest(items: ItemRows, allow: AllowList | None, modality: str, k: int) -> list[int]:
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
