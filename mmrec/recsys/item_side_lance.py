"""The items of a serving snapshot whose vectors stay in LanceDB (``serving = "lancedb"``).

:class:`LanceItemSide` holds what :class:`~mmrec.recsys.item_side.ItemRows` holds (ids, titles, flags, fusion
weights, listing columns) and, per vector column, only which rows have a value, taken from the flags the
fusion layer writes with the vectors (a modality's shared vector exists where ``has_<modality>``, the fused
one where the fusion weights do): asking LanceDB ``fused_vec IS NOT NULL`` decodes the vectors, 1.6 s and
240 MB of resident memory per 100k rows against 0.2 s and 37 MB for the scalars alone. Its two vector accessors go to LanceDB,
through one table handle checked out at the snapshot's items version, so that every search and read sees
exactly the rows the snapshot's positions index (a newer version is a newer snapshot with its own handle;
nothing is cached across versions):

* :meth:`LanceItemSide.candidates`: :func:`~mmrec.store.vector_index.search_rows`, LanceDB's IVF_PQ index with
  the refine factor planned for its size (exact below :data:`~mmrec.store.vector_index.INDEX_MIN_ROWS` rows, where
  no index is built), the ``where`` filter pushed down as a prefilter, all queries of a request in one call;
* :meth:`LanceItemSide.vectors_of`: the rows' vectors by id, in one query per 500 ids.

A search returns its rows' vectors with them (what the result fields, the negative feedback, diversity and
explanations read next), kept in a small per-version cache (:data:`ROW_CACHE` rows): a recommendation is
then one LanceDB query, a similar-by-item two (the query item's vector, the search).

When another process has cleaned the version (its files are gone), the newest version is read instead and
rows unknown to the snapshot are skipped until the next refresh, a fraction of a second later.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mmrec.errors import StoreError
from mmrec.names import FUSED_COLUMN
from mmrec.recsys.item_side import (
    FILTER_CACHE,
    VECTOR_COLUMNS,
    ItemRows,
    _fresh,
    _matrix,
    bytes_per_item,
    scalar_selection,
)
from mmrec.recsys.retrieval import LRU
from mmrec.store.items import Store
from mmrec.store.sql import check_where, id_in, in_chunks
from mmrec.store.vector_index import indexed_rows, search_rows

__all__ = ["LanceItemSide"]

#: Rows whose vectors a snapshot keeps after a search or a read returned them (at most 4 x 1.5 kB each at 384-d).
ROW_CACHE = 4096


class LanceItemSide(ItemRows):
    """One version of the items, vectors left in LanceDB (see the module docstring).

    Parameters
    ----------
    store : Store
    table : pyarrow.Table
        The rows of :func:`~mmrec.recsys.item_side.scalar_selection` at ``version``.
    version : int or None
        The items table version ``table`` was read at (searches and reads are made at it).
    fusion : str
        The fusion layer's fingerprint.
    columns : list of str
        The items table's columns (its vector columns are searched).
    """

    kind = "lancedb"

    def __init__(self, store: Store, table: Any, version: int | None, fusion: str, columns: Sequence[str]) -> None:
        self.columns = [c for c in VECTOR_COLUMNS if c in columns]
        self._scalars(table, version, fusion)
        self.valid = self._flags()
        self._finish_lance(store)

    def _flags(self) -> dict[str, np.ndarray]:
        """Vector column → which rows have it (see the module docstring), from the flags held."""
        out = {}
        for c in self.columns:
            out[c] = self.weights_valid if c == FUSED_COLUMN else self.has[c.removesuffix("_shared")]
        return out

    @classmethod
    def load(cls, store: Store, version: int | None, fusion: str) -> LanceItemSide:
        """The items at ``version`` (one scan of the scalar columns at that version; no vector is read)."""

        def read() -> tuple[Any, list[str], int | None]:
            tbl = _at(store, version)
            names = tbl.schema.names
            at = version if version is None else int(tbl.version)  # newer when ``version`` was cleaned meanwhile
            return tbl.search().select(scalar_selection(names)).limit(None).to_arrow(), names, at

        table, names, at = store.read(read)
        return cls(store, table, at, fusion, names)

    @classmethod
    def folded(cls, old: LanceItemSide, changed: Any, deleted: set[str], version: int | None) -> LanceItemSide:
        """``old`` with the rows of ``changed`` (new or changed items, their
        :func:`~mmrec.recsys.item_side.scalar_selection`) and without ``deleted``."""
        new = object.__new__(cls)
        new._fold_scalars(old, changed, deleted, version)
        new.valid = new._flags()
        new._finish_lance(old._store)
        return new

    def _finish_lance(self, store: Store) -> None:
        self._finish()
        self._store = store
        self._table: Any = None  # the handle at this version, opened on first use
        self._indexed: dict[str, int] = {}  # column -> rows its LanceDB index covers (0: none)
        # The vector columns some row has (those a search carries back), and row -> column -> float32 unit vector.
        self._carried = [c for c in self.columns if self.valid[c].any()]
        self._rows: LRU[dict[str, np.ndarray]] = LRU(ROW_CACHE)
        self._dims: dict[str, int] = {}
        self._counts: LRU[int] = LRU(FILTER_CACHE)  # filter -> rows it keeps

    # ----------------------------------------------------------------- LanceDB at this version

    def _handle(self) -> Any:
        """The table handle at this version, opened on first use (one-line errors: :meth:`Store.read`)."""
        if self._table is None:
            self._table = self._store.read(lambda: _at(self._store, self.version))
        return self._table

    def _read(self, op: Any) -> Any:
        """``op(table handle)``; after a failure, once more on a handle opened anew: at this version while it
        exists (a passing error keeps the snapshot's pinned reads), else at the newest (it was cleaned)."""
        try:
            return op(self._handle())
        except StoreError:
            self._table, self._indexed = self._store.read(lambda: _at(self._store, self.version)), {}
            return op(self._table)

    def _allowed(self, tbl: Any, where: str) -> int:
        """Rows passing ``where`` (one count per filter and version)."""
        found = self._counts.get(where)
        if found is None:
            found = self._counts.put(where, self._store.read(lambda: int(tbl.count_rows(where)), where))
        return found

    def _filter_read(self, store: Store, op: Any, where: str) -> Any:
        """``op(handle)`` at this version, as the searches (:meth:`ItemRows.allow` reads its filters so)."""
        return self._read(lambda tbl: store.read(lambda: op(tbl), where))

    def _rows_indexed(self, tbl: Any, column: str) -> int:
        found = self._indexed.get(column)
        if found is None:
            found = self._indexed[column] = self._store.read(lambda: indexed_rows(tbl, column))
        return found

    # ----------------------------------------------------------------- the two vector accessors

    def candidates(
        self, store: Store, column: str, queries: np.ndarray, k: int, where: str | None = None
    ) -> list[tuple[list[int], list[float]]]:
        """See :meth:`ItemRows.candidates`: one LanceDB search for all ``(Q, D)`` queries, at this version;
        the found rows' vectors are kept for the reads that follow (:data:`ROW_CACHE`)."""
        where = check_where(where)
        q = np.ascontiguousarray(queries, np.float32)
        if not len(q) or column not in self._carried:  # no row has the column: nothing to find, no scan of nulls
            return [([], []) for _ in range(len(q))]

        query: Any = q[0] if len(q) == 1 else list(q)

        def search(tbl: Any) -> Any:
            n = self._rows_indexed(tbl, column)
            allowed = self._allowed(tbl, where) if where and n else None  # how the index is searched
            cols = ["id", *self._carried]
            return store.read(lambda: search_rows(tbl, query, column, cols, k, n, where, len(q), allowed), where)

        found = self._read(search)
        index = self.index
        at = [index.get(i, -1) for i in found.column("id").to_pylist()]
        self._keep(at, found)
        scores = (1.0 - found.column("_distance").to_numpy(zero_copy_only=False).astype(np.float64)).tolist()
        whose = found.column("query_index").to_pylist() if "query_index" in found.schema.names else [0] * len(at)
        out: list[tuple[list[int], list[float]]] = [([], []) for _ in range(len(q))]
        for n, s, j in zip(at, scores, whose, strict=True):
            if n >= 0:  # a row of a newer version (read after a cleanup) waits for the next snapshot
                out[j][0].append(n)
                out[j][1].append(s)  # cosine distance: 1 - cosine
        return out

    def _keep(self, rows: list[int], table: Any) -> dict[int, dict[str, np.ndarray]]:
        """Cache the vectors that ``table`` carries of ``rows`` (one per table row; ``-1``: unknown, skipped).

        Returns row → column → float32 unit vector for the rows read (as cached).
        """
        cols = [c for c in self._carried if c in table.schema.names]
        conv = {c: _matrix(table.column(c), normalise=True, dtype=np.float32) for c in cols}
        got = {n: {c: v[j] for c, (v, ok) in conv.items() if ok[j]} for j, n in enumerate(rows) if n >= 0}
        for n, vecs in got.items():
            self._rows.put(n, {**(self._rows.get(n) or {}), **vecs})
        return got

    def vectors_of(self, rows: Sequence[int], columns: Sequence[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """See :meth:`ItemRows.vectors_of`: ``(n, D)`` float32 per column, from the row cache, else read by id
        at this version (one query per 500 ids)."""
        cols = [c for c in columns if c in self.valid]
        at = np.asarray(rows, np.int64).tolist()
        if not cols:
            return {}
        # Per row what the cache has; rows that have a wanted vector the cache lacks are read, in one query.
        found = [dict(self._rows.get(n) or {}) for n in at]
        missing = [n for n, f in zip(at, found, strict=True) if any(c not in f and self.valid[c][n] for c in cols)]
        if missing:
            ids = list(dict.fromkeys(self.ids[n] for n in missing))

            def read(tbl: Any) -> list[Any]:
                def chunk_of(chunk: Sequence[str]) -> Any:
                    return tbl.search().where(id_in(chunk)).select(["id", *cols]).limit(None).to_arrow()

                return [self._store.read(lambda chunk=chunk: chunk_of(chunk)) for chunk in in_chunks(ids)]

            import pyarrow as pa

            table = pa.concat_tables(self._read(read))
            read_rows = self._keep([self.index.get(i, -1) for i in table.column("id").to_pylist()], table)
            found = [{**f, **read_rows.get(n, {})} for n, f in zip(at, found, strict=True)]
        out = {}
        for c in cols:
            vecs, ok = np.zeros((len(at), self._dim(c)), np.float32), np.zeros(len(at), bool)
            for j, f in enumerate(found):
                v = f.get(c)
                if v is not None:
                    vecs[j], ok[j] = v, True
            out[c] = (vecs, ok)
        return out

    def _dim(self, column: str) -> int:
        if column not in self._dims:
            self._dims[column] = int(self._handle().schema.field(column).type.list_size)
        return self._dims[column]

    def nbytes(self) -> int:
        """Bytes held for the items: flags, fusion weights and listing columns (ids and titles apart); no vectors."""
        return self._held_nbytes()

    def memory_bytes_per_item(self) -> float:
        """The bytes per item a memory snapshot of these items would hold (:func:`bytes_per_item`), priced
        from the flags held: no query of the vector columns (``"auto"`` asks at each new version)."""
        dims = {c: self._dim(c) for c in self.columns if (self.valid[c] & self.alive).any()}
        return bytes_per_item(dims, len(self.index))


def _at(store: Store, version: int | None) -> Any:
    """A handle of the items table checked out at ``version`` (the newest when ``None`` or already newest).

    When another process has cleaned ``version`` since it was recorded, the handle is at the newest version
    instead (its ``version`` says which): a snapshot made then, or opening its handle on first use, reads
    that one, as a search after a cleanup does (see the module docstring), rather than failing the request.
    """
    tbl = _fresh(store)
    if version is not None and int(tbl.version) != int(version):
        try:
            tbl.checkout(int(version))
        except (ValueError, OSError, RuntimeError):  # lancedb: "Version N no longer exists. Was it cleaned up?"
            tbl = _fresh(store)
    return tbl
