"""Large catalogs get an IVF_PQ index on the fused vectors; search and recommendations stay accurate."""

from __future__ import annotations

import sys

import numpy as np
from conftest import REPO

from mmrec import Engine
from mmrec.store.items import Store
from mmrec.store.vector_index import plan

sys.path.insert(0, str(REPO / "benchmarks"))
from recommend_latency import build_synthetic, exact  # noqa: E402


def test_index_is_built_used_and_accurate(tmp_path):
    db = str(tmp_path / "db")
    build_synthetic(db, 3000, clusters=30)
    store = Store(db)
    assert not store.vector_indexed()
    assert not store.ensure_vector_index(min_rows=5000)  # small tables stay exact
    assert store.ensure_vector_index(min_rows=1000)
    assert Store(db).vector_indexed()
    assert not Store(db).ensure_vector_index(min_rows=1000)  # already there

    engine = Engine(db)
    rows = engine.store.list(limit=None, columns=["id", "fused_vec"])
    ids = [r["id"] for r in rows]
    vectors = np.stack([np.asarray(r["fused_vec"], np.float32) for r in rows])
    index = {i: n for n, i in enumerate(ids)}
    recalls = []
    for u in range(10):
        seed = vectors[u * 97]
        near = np.argsort(-(vectors @ seed))[:8]
        for j, n in enumerate(near):
            engine.interact(f"u{u}", ids[n], "like", at=1_760_000_000 + j)
        got = {r.id for r in engine.recommend(f"u{u}", 10).items}
        truth = {ids[i] for i in exact(engine.users().profile(f"u{u}"), vectors, index, 10)}
        assert not got & {ids[n] for n in near}  # consumed items stay out with the index too
        recalls.append(len(got & truth) / 10)
    assert np.mean(recalls) >= 0.9
    similar = engine.similar(item=ids[0], k=5)
    assert ids[0] not in [m.id for m in similar] and len(similar) == 5

    # LanceDB's own index (Store.nearest, the search the lancedb serving path makes) keeps recall@10 >= 0.95
    rng = np.random.default_rng(1)
    step = rng.normal(size=(30, vectors.shape[1])).astype(np.float32)
    queries = vectors[rng.integers(0, len(ids), 30)] + 0.3 * step / np.linalg.norm(step, axis=1, keepdims=True)
    queries /= np.linalg.norm(queries, axis=1, keepdims=True)
    fresh = Store(db)  # discovers the index and plans its probes from the rows it covers
    found = fresh.nearest(list(queries), "fused_vec", ["id"], 10, [])
    recall = [
        len({r["id"] for r in got} & {ids[i] for i in np.argsort(-(vectors @ q))[:10]}) / 10
        for q, got in zip(queries, found, strict=True)
    ]
    assert fresh._indexed["fused_vec"] == 3000
    assert np.mean(recall) >= 0.95, recall


def test_index_settings_scale_with_the_table():
    for rows in (3_000, 20_000, 100_000, 300_000, 1_000_000, 10_000_000):
        p = plan(rows, 384)
        assert p.partitions == min(round(rows**0.5), rows // 256)  # about sqrt(rows), >= 256 vectors each
        assert p.nprobes == min(p.partitions, max(20, -(-p.partitions // 10)))  # a tenth of them, at least 20
        assert 384 % p.sub_vectors == 0 and 20 <= p.refine_factor <= 500
    assert plan(1_000_000, 384).nprobes == 100 and plan(1, 384).partitions == 1
    # refine 20 gave recall@10 0.994 at 100k, 160 gave 0.996 at 300k (benchmarks/recommend_latency.py --path lancedb)
    assert [plan(n, 384).refine_factor for n in (20_000, 100_000, 300_000, 1_000_000)] == [20, 20, 180, 500]
