"""In-memory vector retrieval over one column of a serving snapshot: exact below a size, faiss IVF above it.

Rows are the snapshot's positions ``0 … N-1``; a row may be dead (deleted or replaced by a newer copy
in a later version) or invalid for the column (an item without that modality). A column is searched

* **exactly** (one float32 matrix product) below :data:`ANN_MIN_ROWS` rows, where that is faster than
  any index on this kind of machine;
* through a **faiss IVF index** (float16 storage) above it, built once over the rows valid at build time (its ids are
  the row positions), plus an exact scan of the rows appended since (the *tail*), merged. The index is
  never changed after it is built, so any number of threads search it while a newer snapshot is being
  made; dead rows are skipped with an ``IDSelectorBitmap`` inside the search. The owner rebuilds it when
  the tail or the dead rows grow large (:meth:`ColumnIndex.stale`).

A filter is an :class:`AllowList` (computed once per filter and table version by the snapshot). A
selective one (up to :meth:`ColumnIndex.exact_allow_max` rows) is searched exactly over its own rows; a broader one
goes inside the IVF search as a bitmap, with more lists probed the more selective it is, and falls back
to the exact scan when fewer than ``k`` results come back.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

import numpy as np

from mmrec.errors import InvalidArgumentError

__all__ = ["ANN_MIN_ROWS", "EXACT_ALLOW_MAX", "LRU", "AllowList", "ColumnIndex", "top_k"]

#: Rows from which a column is searched through the IVF index. Measured on the 2-core box: an exact float32
#: scan costs 0.14 ms at 2,000 rows (in cache) but 19 ms at 20,000 under load, the IVF call about 0.7 ms.
ANN_MIN_ROWS = 8_000
#: Allow-lists up to this many rows are searched exactly over their own rows (at least; see
#: :meth:`ColumnIndex.exact_allow_max`), and never more than the cap (a float32 copy per filter is kept).
EXACT_ALLOW_MAX = 4_000
EXACT_ALLOW_CAP = 20_000
#: IVF lists probed per query (scaled up for filters): recall@10 0.997 at 8 and 1.0 at 16 lists on 100k
#: clustered 384-d vectors (``benchmarks/ann_choice.py``).
NPROBE = 16
#: IVF lists per square root of the indexed rows (632 at 100k, 2,000 at 1M). The k-means training costs
#: samples x lists: 4 per root with 40 samples per list (the earlier choice) took 19 CPU-s to train and 4 to
#: add at 100k, 2 per root with 20 per list 2 and 2.5, at the same recall@10 (1.000 at ``NPROBE``) and about
#: 0.3 ms more per 2-query search on the loaded box (``benchmarks/ann_choice.py --ivf-grid``).
LISTS_PER_ROOT = 2
#: Training vectors per IVF list (faiss's k-means needs about 20 to place a centroid well on these vectors).
TRAIN_PER_LIST = 20
#: The index is rebuilt when appended rows exceed this share of its rows (or dead rows this share).
REBUILD_SHARE = 0.1

_NEG = np.float32(-np.inf)


def _faiss() -> Any:
    """faiss, searching with one thread in the calling thread. OpenMP's thread count is per native thread, so
    it is set once in each thread that searches: a request searches one profile, the service's thread pool
    runs requests side by side, and OpenMP threads per call would only contend with them."""
    import faiss

    if not getattr(_LOCAL, "single", False):
        faiss.omp_set_num_threads(1)
        _LOCAL.single = True
    return faiss


_LOCAL = threading.local()


def _search_c(index: Any, q: np.ndarray, k: int, params: Any) -> tuple[np.ndarray, np.ndarray]:
    """``index.search(q, k, params=params)`` through faiss's C entry point, as its Python ``search`` calls it,
    without that wrapper's per-call conversions: ``q`` ``(n, d)`` is C-contiguous float32 already.

    Returns ``(scores (n, k) float32, ids (n, k) int64)``.
    """
    faiss = _faiss()  # this thread's OpenMP setting
    n, d = q.shape
    if d != index.d or k < 1:  # what the wrapper asserts: the C code reads d floats per query
        raise InvalidArgumentError(f"queries of dimension {d} and k={k} for an index of dimension {index.d}")
    scores, ids = np.empty((n, k), np.float32), np.empty((n, k), np.int64)
    ptr = faiss.swig_ptr
    index.search_c(n, ptr(q), k, ptr(scores), ptr(ids), params)
    return scores, ids


def _flat_index(vecs: np.ndarray) -> Any:
    """An exact inner-product faiss index of ``vecs`` ``(n, D)`` (a float32 copy)."""
    faiss = _faiss()

    flat = faiss.IndexFlatIP(vecs.shape[1])
    if len(vecs):
        flat.add(np.ascontiguousarray(vecs, np.float32))
    return flat


def _bits(mask: np.ndarray) -> np.ndarray:
    return np.packbits(mask, bitorder="little")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest of ``scores`` ``(n,)``, best first (``-inf`` entries are never returned)."""
    n = min(k, int(np.isfinite(scores).sum()))
    if n <= 0:
        return np.empty(0, np.int64)
    part = np.argpartition(-scores, n - 1)[:n] if n < len(scores) else np.arange(len(scores))
    part = part[np.isfinite(scores[part])]
    return part[np.argsort(-scores[part], kind="stable")]


V = TypeVar("V")


class LRU(Generic[V]):
    """A thread-safe mapping holding at most ``size`` entries, the least recently used evicted first.

    What a snapshot computes per filter, item or row once per items version (allow-lists, counts,
    descriptions, vectors read back): a new version starts with empty caches, so an entry is never stale.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[Hashable, V] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            found = self._data.get(key)
            if found is not None:
                self._data.move_to_end(key)
            return found

    def put(self, key: Hashable, value: V) -> V:
        """Keep ``value`` under ``key`` (evicting the oldest past ``size``); returns ``value``."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while len(self._data) > self.size:
                self._data.popitem(last=False)
        return value

    def __len__(self) -> int:
        return len(self._data)


@dataclass
class AllowList:
    """The rows a filter lets through, in one snapshot: a boolean mask ``(N,)`` and its positions.

    Per column, the float32 vectors of its rows (for the exact scan of a selective filter) and the
    faiss bitmap selector (for a broad one) are made on first use and kept with it.
    """

    mask: np.ndarray
    rows: np.ndarray = field(init=False)
    _sub: dict[str, Any] = field(default_factory=dict, init=False, repr=False)
    _bits: np.ndarray | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __post_init__(self) -> None:
        self.rows = np.flatnonzero(self.mask)

    def __len__(self) -> int:
        return len(self.rows)

    def flat(self, column: str, vecs: np.ndarray) -> Any:
        """A faiss flat index of the allowed rows of ``column`` (``vecs`` is the column ``(N, D)``), made once."""
        sub = self._sub.get(column)
        if sub is None:
            with self._lock:
                sub = self._sub.get(column)
                if sub is None:
                    sub = self._sub[column] = _flat_index(vecs[self.rows])
        return sub

    def bits(self) -> np.ndarray:
        """The mask packed little-endian, as faiss's ``IDSelectorBitmap`` reads it."""
        if self._bits is None:
            self._bits = np.packbits(self.mask, bitorder="little")
        return self._bits


class ColumnIndex:
    """Nearest-neighbour search over one vector column of a snapshot (see the module docstring).

    Parameters
    ----------
    column : str
        The column's name (the key of its vectors in an :class:`AllowList`).
    vecs : np.ndarray
        ``(N, D)`` the column's vectors (float16 or float32; zeros for invalid rows).
    usable : np.ndarray
        ``(N,)`` bool: rows alive and valid for this column.
    base : ColumnIndex, optional
        The previous snapshot's index of this column: its IVF index is reused for the rows it covers,
        and the rows after them become the exact tail.
    ann_min_rows : int
        Usable rows from which the IVF index is used.
    """

    def __init__(
        self,
        column: str,
        vecs: np.ndarray,
        usable: np.ndarray,
        base: ColumnIndex | None = None,
        ann_min_rows: int = ANN_MIN_ROWS,
    ) -> None:
        self.column = column
        self.vecs = vecs
        self.usable = usable
        self.n_usable = int(usable.sum())
        self.ivf = None
        self.covered = 0  # rows [0, covered) are in the IVF index (the usable ones at build time)
        self._exact32: Any = None
        self._lock = threading.Lock()
        if self.n_usable >= ann_min_rows:
            if base is not None and base.ivf is not None and not base.stale(len(vecs), self.n_usable):
                self.ivf, self.covered, self.indexed = base.ivf, base.covered, base.indexed
            else:
                self._build()
            tail = np.arange(self.covered, len(vecs))
            self.tail = tail[usable[self.covered :]]
            self.tail32 = np.ascontiguousarray(vecs[self.tail], np.float32)
            # Rows indexed but dead or invalid now: skipped by a bitmap inside the search.
            self.gone = int(self.indexed - usable[: self.covered].sum())
            self._alive_bits = np.packbits(usable, bitorder="little") if self.gone else None
            self._plain_params = self._params(self._alive_bits)

    def _params(self, bits: np.ndarray | None) -> Any:
        """The search parameters of an unfiltered search (``bits``: the rows still alive, when some are not)."""
        faiss = _faiss()
        params = faiss.SearchParametersIVF()
        params.nprobe = min(self.ivf.nlist, NPROBE)
        if bits is not None:
            # SWIG does not keep the selector alive through ``params.sel``: the params object holds it.
            params.referenced_objects = [faiss.IDSelectorBitmap(len(self.usable), faiss.swig_ptr(bits)), bits]
            params.sel = params.referenced_objects[0]
        return params

    # ----------------------------------------------------------------- building

    def _build(self) -> None:
        import faiss

        # The build uses every core (it runs in the refresh thread; the setting is that thread's own).
        faiss.omp_set_num_threads(os.cpu_count() or 1)
        _LOCAL.single = False
        rows = np.flatnonzero(self.usable)
        n, d = len(rows), self.vecs.shape[1]
        nlist = max(1, int(LISTS_PER_ROOT * np.sqrt(n)))
        # SQfp16: the snapshot's vectors are float16 already, so the index stores them losslessly in half the
        # memory of IVF-Flat, and faiss's F16C decoding searches as fast.
        index = faiss.index_factory(d, f"IVF{nlist},SQfp16", faiss.METRIC_INNER_PRODUCT)
        rng = np.random.default_rng(0)  # a deterministic training sample: the same data gives the same index
        per = TRAIN_PER_LIST
        sample = rows if n <= per * nlist else np.sort(rng.choice(rows, per * nlist, replace=False))
        index.cp.niter = 10  # k-means converges well before faiss's default on these vectors; halves the build
        index.cp.min_points_per_centroid = min(per, max(1, len(sample) // nlist))  # no warning for a small sample
        index.train(np.ascontiguousarray(self.vecs[sample], np.float32))
        for start in range(0, n, 65536):  # in chunks: never a second float32 copy of the whole column
            part = rows[start : start + 65536]
            index.add_with_ids(np.ascontiguousarray(self.vecs[part], np.float32), part.astype(np.int64))
        self.ivf, self.covered, self.indexed = index, len(self.vecs), n
        faiss.omp_set_num_threads(1)
        _LOCAL.single = True

    def exact_allow_max(self) -> int:
        """Allow-lists up to this many rows are scanned exactly rather than through the IVF index.

        A filter keeping m of n rows makes the IVF search probe about ``NPROBE * n / (2 m)`` lists of
        ``n / nlist`` rows; the exact scan reads m rows. They cost the same at
        ``m = n * sqrt(NPROBE / (2 nlist))`` (11k of 100k, 63k of 1M rows): a 1 % filter at 1M took 11 ms
        through the index (800 lists probed) against well under 1 ms for its 10,000 rows scanned.
        """
        if self.ivf is None:
            return EXACT_ALLOW_MAX
        even = int(self.n_usable * np.sqrt(NPROBE / (2 * self.ivf.nlist)))
        return min(EXACT_ALLOW_CAP, max(EXACT_ALLOW_MAX, even))

    def stale(self, n_rows: int, n_usable: int) -> bool:
        """Whether a snapshot of ``n_rows`` rows (``n_usable`` usable) should rebuild this index rather than reuse it."""
        appended = n_rows - self.covered
        return appended > REBUILD_SHARE * self.indexed or (self.indexed - n_usable + appended) > (
            REBUILD_SHARE * self.indexed
        )

    # ----------------------------------------------------------------- searching

    def search(
        self, queries: np.ndarray, k: int, allow: AllowList | None = None
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """The ``k`` best rows for each query: one ``(rows (n,), scores (n,))`` pair per query, best first.

        Parameters
        ----------
        queries : np.ndarray
            ``(Q, D)`` float32 unit vectors, searched in one call.
        k : int
        allow : AllowList, optional
            Only these rows (a filter); dead and invalid rows are never returned either way.
        """
        q = np.ascontiguousarray(queries, np.float32)
        if self.ivf is None:
            return self._exact(q, k, allow)
        if allow is not None and len(allow) <= self.exact_allow_max():
            return self._exact(q, k, allow)
        found = self._ivf(q, k, allow)
        if allow is not None and any(len(r) < min(k, len(allow)) for r, _ in found):
            return self._exact(q, k, allow)  # the filter starved the probed lists: scan its rows
        return found

    def lists(self, queries: np.ndarray, k: int, allow: AllowList | None = None) -> list[tuple[list[int], list[float]]]:
        """:meth:`search` as Python lists: per query ``(rows, scores)``, best first.

        The common case (no filter, no appended rows) is one faiss call and two ``tolist``, the per-call cost
        that ``benchmarks/recommend_latency.py`` compares with the bare faiss call.
        """
        q = np.ascontiguousarray(queries, np.float32)
        if allow is None and self.ivf is not None and not len(self.tail):
            scores, ids = _search_c(self.ivf, q, k, self._plain_params)
        elif allow is None and self.ivf is None and len(self.usable) and self.n_usable == len(self.usable):
            flat = self._full32()
            scores, ids = _search_c(flat, q, min(k, flat.ntotal), None)
        else:
            return [(r.tolist(), s.tolist()) for r, s in self.search(q, k, allow)]
        rows, values = ids.tolist(), scores.tolist()
        for r in rows:
            if r and r[-1] < 0:  # faiss pads a short answer with -1 at the end
                cut = [sum(1 for x in r if x >= 0) for r in rows]
                return [(r[:n], v[:n]) for r, v, n in zip(rows, values, cut, strict=True)]
        return list(zip(rows, values, strict=True))

    def _exact(self, q: np.ndarray, k: int, allow: AllowList | None) -> list[tuple[np.ndarray, np.ndarray]]:
        faiss = _faiss()

        # faiss's flat scan, not NumPy's product: OpenBLAS wakes its threads for every call, which on a busy
        # 2-core machine cost 28 ms for 2,000 rows against 0.14 ms single-threaded (faiss runs one thread here).
        if allow is None:
            flat, rows, ok = self._full32(), None, self.usable
        else:
            flat, rows = allow.flat(self.column, self.vecs), allow.rows
            ok = self.usable[allow.rows]
        params, bits = None, None
        if not ok.all():
            bits = _bits(ok)  # held in this frame: faiss reads it through a raw pointer during the search
            params = faiss.SearchParameters(sel=faiss.IDSelectorBitmap(len(ok), faiss.swig_ptr(bits)))
        scores, ids = flat.search(q, min(k, flat.ntotal), params=params) if flat.ntotal else (None, None)
        out = []
        for n in range(len(q)):
            if ids is None:
                out.append((np.empty(0, np.int64), np.empty(0, np.float32)))
                continue
            keep = ids[n] >= 0
            found = ids[n][keep].astype(np.int64)
            out.append(((found if rows is None else rows[found]), scores[n][keep]))
        return out

    def _full32(self) -> Any:
        if self._exact32 is None:
            with self._lock:
                if self._exact32 is None:
                    self._exact32 = _flat_index(self.vecs)
        return self._exact32

    def _ivf(self, q: np.ndarray, k: int, allow: AllowList | None) -> list[tuple[np.ndarray, np.ndarray]]:
        faiss = _faiss()

        nlist = self.ivf.nlist
        if allow is None:
            params = self._plain_params  # made once: faiss only reads it, so threads share it
        else:
            params = faiss.SearchParametersIVF()
            bits = allow.bits() if not self.gone else np.packbits(allow.mask & self.usable, bitorder="little")
            share = max(len(allow) / max(self.n_usable, 1), 1e-6)
            # A filter keeping a share s of the rows leaves about s of each list: probe about 1/s times more.
            params.nprobe = int(min(nlist, np.ceil(NPROBE / min(1.0, share * 2))))
            sel = faiss.IDSelectorBitmap(len(self.usable), faiss.swig_ptr(bits))  # held in this frame (see _params)
            params.sel = sel
        scores, ids = self.ivf.search(q, k, params=params)
        tail_scores = None
        if len(self.tail):
            tail_scores = q @ self.tail32.T
            if allow is not None:
                tail_scores[:, ~allow.mask[self.tail]] = _NEG
        out = []
        for n in range(len(q)):
            r, s = ids[n], scores[n]
            if len(r) and r[-1] < 0:  # faiss pads a short answer with -1 at the end
                keep = r >= 0
                r, s = r[keep], s[keep]
            if tail_scores is not None:
                best = top_k(tail_scores[n], k)
                r = np.concatenate([r, self.tail[best]])
                s = np.concatenate([s, tail_scores[n][best]])
                order = np.argsort(-s, kind="stable")[:k]
                r, s = r[order], s[order]
            out.append((r, s))
        return out

    def nbytes(self) -> int:
        """Bytes held by the search structure itself (the IVF index, the tail and any float32 copy)."""
        total = 0
        if self.ivf is not None:
            total += self.indexed * (self.vecs.shape[1] * 2 + 8) + self.ivf.nlist * self.vecs.shape[1] * 4
            total += self.tail32.nbytes
        if self._exact32 is not None:
            total += self._exact32.ntotal * self.vecs.shape[1] * 4
        return total
