"""LanceDB's own IVF_PQ index on the items table: its settings, scaled with the table.

This index is the search path for a catalog whose vectors are not held in memory (the serving
snapshot's faiss index, :mod:`mmrec.recsys.retrieval`, is the other): :meth:`mmrec.store.items.Store.nearest`
searches with it. Its recall depends on three numbers that must grow with the table, not stay fixed
(fixed at 20 probes of ``rows / 4096`` partitions it fell to a recall@10 of 0.857 at 300k items):

* **partitions** ≈ √rows (LanceDB's guidance), at most ``rows / 256`` (Lance trains each partition on
  at least 256 vectors and trains fewer otherwise);
* **nprobes**: a fixed share of the partitions (:data:`PARTITIONS_PER_PROBE`), at least :data:`MIN_NPROBES`;
* **refine_factor**: the PQ candidates re-ranked with the exact vectors, ``refine_factor × k`` of them:
  product quantisation orders near neighbours only roughly, and a larger table has more near rivals per
  true neighbour, so it grows with (rows / 100k)² from :data:`REFINE_FACTOR`, at most
  :data:`MAX_REFINE_FACTOR`.

Measured by ``benchmarks/recommend_latency.py --path lancedb`` (recall@10 against an exact scan, 100–200
queries, synthetic clustered 384-d vectors whose neighbours within a cluster are nearly equidistant, hard
for PQ): at 20k rows 1.000 from refine factor 10 up; at 100k (316 partitions, 32 probed) 0.936 with 10
whatever the probes (20, 32, 64) and 0.994 with 20; at 300k (548 partitions, 55 probed) 0.64 with 35,
0.877 with 80, 0.996 with 160 (and 110 probes) and 0.999 with 320. The probes never mattered; the refine
factor did, faster than linearly in the rows. Beyond 300k the cap makes it a bound on cost, not a
measured recall: a larger catalog needs finer codes (more sub-vectors, or IVF_SQ) — not measured yet.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

__all__ = ["INDEX_MIN_ROWS", "IndexPlan", "build_index", "ensure_id_index", "indexed_rows", "plan", "search_rows"]

#: Below this many items an exact scan is fast and exact; from here on the fused vectors get an ANN index.
INDEX_MIN_ROWS = 50_000
#: Lance trains an IVF partition on at least this many vectors.
PARTITION_SAMPLES = 256
#: One partition in this many is probed per query, and at least :data:`MIN_NPROBES`.
PARTITIONS_PER_PROBE = 10
MIN_NPROBES = 20
#: PQ candidates re-ranked exactly per result wanted, up to 100k rows (then times (rows / 100k)², at most
#: :data:`MAX_REFINE_FACTOR`: 180 at 300k, where 160 gave recall@10 0.996).
REFINE_FACTOR = 20
MAX_REFINE_FACTOR = 500
#: Dimensions per PQ sub-vector (8 bits each; LanceDB's guidance): 384-d vectors take 48 bytes of codes.
DIMS_PER_SUB_VECTOR = 8
#: A filter keeping at most this many rows is searched by an exact scan of its rows (their vectors read:
#: 30 MB at 384-d), as the in-memory search does (``retrieval.EXACT_ALLOW_CAP``); a broader one through the
#: index with more partitions probed the fewer rows it keeps (a filter keeping a share s of the rows leaves
#: about s of each partition: 20 probes of 78 partitions kept recall@10 at 0.64 for a 1 % filter at 20k).
EXACT_FILTER_ROWS = 20_000
#: A search for more rows than this (a recommendation asks for a few dozen candidates per interest)
#: re-ranks as many PQ candidates as a search for this many would, not more: the refine factors hold
#: recall@10 for k of 10-20, and 180 x 50 candidates re-ranked per query cost 530 ms at 300k items on the
#: loaded box (116 ms at 180 x 10; recall@10 of recommend 0.996 either way, 0.96 at 100k with 10, so 20).
REFINED_FOR_K = 20


@dataclass(frozen=True)
class IndexPlan:
    """The IVF_PQ settings of a table of some size (see the module docstring)."""

    partitions: int
    sub_vectors: int
    nprobes: int
    refine_factor: int


def plan(rows: int, dim: int) -> IndexPlan:
    """The settings for an index over ``rows`` vectors of ``dim`` dimensions (built and searched alike)."""
    partitions = max(1, min(round(math.sqrt(rows)), rows // PARTITION_SAMPLES))
    sub_vectors = max(1, dim // DIMS_PER_SUB_VECTOR)
    while dim % sub_vectors:  # PQ splits a vector into equal parts
        sub_vectors -= 1
    nprobes = min(partitions, max(MIN_NPROBES, -(-partitions // PARTITIONS_PER_PROBE)))
    refine = min(MAX_REFINE_FACTOR, max(REFINE_FACTOR, math.ceil(REFINE_FACTOR * (rows / 100_000) ** 2)))
    return IndexPlan(partitions, sub_vectors, nprobes, refine)


def build_index(tbl: Any, column: str, rows: int) -> IndexPlan:
    """(Re)build the cosine IVF_PQ index of ``column`` in the LanceDB table ``tbl`` of ``rows`` rows."""
    settings = plan(rows, tbl.schema.field(column).type.list_size)
    from lancedb.index import IvfPq

    config = IvfPq(distance_type="cosine", num_partitions=settings.partitions, num_sub_vectors=settings.sub_vectors)
    tbl.create_index(column, config=config, replace=True)
    return settings


def ensure_id_index(tbl: Any) -> bool:
    """Give ``id`` a BTREE index when it has none (returns whether one was built).

    Reads by id (``id IN (…)``: the vectors a LanceDB-served snapshot needs, :meth:`Store.rows`) then look
    the rows up instead of scanning every id: 8-11 ms against 40-50 ms at 300k rows, built in 0.2 s.
    """
    if any(getattr(ix, "columns", []) == ["id"] for ix in tbl.list_indices()):
        return False
    from lancedb.index import BTree

    tbl.create_index("id", config=BTree())
    return True


def indexed_rows(tbl: Any, column: str) -> int:
    """Rows covered by the vector index of ``column`` (0: none); the search settings are planned for them."""
    for ix in tbl.list_indices():
        if column in getattr(ix, "columns", []):
            return max(1, int(getattr(ix, "num_indexed_rows", 0) or 0) + int(getattr(ix, "num_unindexed_rows", 0) or 0))
    return 0


def search_rows(
    tbl: Any,
    query: Any,
    column: str,
    columns: list[str],
    limit: int,
    indexed: int,
    where: str | None,
    queries: int,
    allowed: int | None = None,
) -> Any:
    """One LanceDB vector search of ``tbl`` (cosine), with the probes and refine factor planned for its index.

    ``where`` is a prefilter keeping ``allowed`` rows (when known): up to :data:`EXACT_FILTER_ROWS` they are
    scanned exactly, above it more partitions are probed the fewer they are. When the filter still starves
    the probed partitions (fewer than ``limit`` rows for some query), the filtered rows are scanned exactly:
    a selective filter yields ``limit`` rows, as in the in-memory search.

    Parameters
    ----------
    tbl : lancedb.table.Table
        The items table (a handle at the version to search).
    query : array-like
        One ``(D,)`` vector, or ``queries`` of them as a list of ``(D,)`` vectors.
    column : str
        The vector column searched.
    columns : list of str
        The columns returned besides ``_distance``.
    limit : int
        Rows wanted per query.
    indexed : int
        Rows the column's index covers (:func:`indexed_rows`; 0: no index, an exact scan).
    where : str or None
        A checked SQL filter, applied inside the search.
    queries : int
        How many vectors ``query`` holds.
    allowed : int, optional
        Rows passing ``where``, when known.

    Returns
    -------
    pyarrow.Table
        ``columns`` and ``_distance`` (cosine distance, ``1 - cosine``), best first per query, plus
        ``query_index`` (whose row it is) for several queries.
    """

    def run(exact: bool) -> Any:
        q = tbl.search(query, vector_column_name=column).metric("cosine")
        q = q.select([*columns, "_distance"]).limit(limit)
        if exact:
            q = q.bypass_vector_index()
        elif indexed:
            settings = plan(indexed, len(query[0]) if queries > 1 else len(query))
            nprobes = settings.nprobes
            if where and allowed is not None:
                share = max(allowed / indexed, 1e-6)
                nprobes = min(settings.partitions, math.ceil(nprobes / min(1.0, 2 * share)))
            refine = max(2, math.ceil(settings.refine_factor * REFINED_FOR_K / max(limit, REFINED_FOR_K)))
            q = q.nprobes(nprobes).refine_factor(refine)
        if where:
            q = q.where(where, prefilter=True)
        return q.to_arrow()

    if indexed and where and allowed is not None and allowed <= EXACT_FILTER_ROWS:
        return run(exact=True)
    rows = run(exact=False)
    if indexed and where:
        per = [0] * queries
        several = queries > 1 and "query_index" in rows.schema.names  # (an empty result may lack the column)
        for n in rows.column("query_index").to_pylist() if several else [0] * len(rows):
            per[n] += 1
        if min(per) < limit:
            rows = run(exact=True)
    return rows
