"""Large catalogs get an IVF_PQ index on the fused vectors; search and recommendations stay accurate."""

from __future__ import annotations

import sys

import numpy as np
from conftest import REPO

from mmrec import Engine
from mmrec.store.items import Store

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
