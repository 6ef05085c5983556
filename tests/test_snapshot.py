"""The serving snapshot: answers from memory, folds new versions in incrementally, sees other writers within 1 s."""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from conftest import REPO

from mmrec import Engine
from mmrec.recsys import snapshot as snapshot_mod
from mmrec.recsys.retrieval import AllowList, ColumnIndex
from mmrec.store.items import Store

sys.path.insert(0, str(REPO / "benchmarks"))
from recommend_latency import build_synthetic, synthetic_vectors  # noqa: E402

N = 1500
#: Seconds within which another process's write must be served. The design bound is 1 s (a check every 0.25 s
#: plus an incremental fold of a few rows, ~0.3 s on an idle box); the slack is for the 2-core CI box under
#: full load, where a single refresh thread can wait that long for the CPU.
FRESH = 1.5


@pytest.fixture
def synth(tmp_path):
    db = str(tmp_path / "db")
    build_synthetic(db, N, clusters=20)
    return db


def _exact(vectors: np.ndarray, q: np.ndarray, k: int, banned: set[int] = frozenset()) -> list[int]:
    s = vectors @ q
    s[list(banned)] = -np.inf
    return np.argsort(-s, kind="stable")[:k].tolist()


class _NoDatabase:
    def __getattr__(self, name):
        raise AssertionError(f"a request touched LanceDB ({name})")


def _other_writer(db: str, rows: list[dict]) -> None:
    """What another process does: its own Store (its own writer), an upsert of full rows."""
    other = Store(db)
    with other.writer.hold("test"):
        other.upsert(rows)


def _row(store: Store, item_id: str, vec: np.ndarray, title: str) -> dict:
    now = datetime.now(timezone.utc)
    row = {f.name: None for f in store.items().schema}
    row.update(
        id=item_id,
        catalog="synthetic",
        title=title,
        has_text=True,
        has_image=False,
        has_audio=False,
        fused_vec=vec.astype(np.float32),
        text_shared=vec.astype(np.float32),
        fusion_weights=np.array([1, 0, 0], np.float32),
        created_at=now,
        updated_at=now,
    )
    return row


def test_answers_match_exact_search_and_need_no_database_call(synth):
    engine = Engine(synth)
    vectors = synthetic_vectors(N, clusters=20)
    ids = [f"s{i:07d}" for i in range(N)]
    got = [m.id for m in engine.similar(item=ids[3], k=10)]
    assert got == [ids[i] for i in _exact(vectors, vectors[3], 10, {3})]
    engine.recommend("nobody", 3)  # cold start: the newest items
    cache = engine._snapshots
    cache.check_every = 1e9  # no version check in this window
    engine.count("has_text")  # a filter seen once is read once, then cached
    engine.store._db, engine.store._items = _NoDatabase(), _NoDatabase()
    assert [m.id for m in engine.similar(item=ids[3], k=10)] == got
    assert engine.count() == N and engine.count("has_text") == N
    assert len(engine.items(limit=5, offset=10)) == 5 and engine.items(limit=1)[0]["id"] == ids[0]
    assert engine.media_flags([ids[0], "nope"]) == {ids[0]: (False, False)}
    assert engine.recommend("nobody", 3).strategy == "newest"


def test_other_writers_are_seen_within_a_second_incrementally(synth, monkeypatch):
    engine = Engine(synth)
    vectors = synthetic_vectors(N, clusters=20)
    assert engine.count() == N
    loads = []
    real_init = snapshot_mod.ItemSide.__init__
    monkeypatch.setattr(
        snapshot_mod.ItemSide, "__init__", lambda self, *a, **kw: (loads.append(1), real_init(self, *a, **kw))[1]
    )
    store = engine.store
    # Another process adds an item right on top of item 7, and changes item 8 to point elsewhere.
    q = vectors[7]
    _other_writer(synth, [_row(store, "new/near-7", q, "new one"), _row(store, "s0000008", -vectors[8], "moved")])
    t0 = time.monotonic()
    while "new/near-7" not in [m.id for m in engine.similar(item="s0000007", k=3)]:
        assert time.monotonic() - t0 < FRESH, "another process's new item not served in time"
        time.sleep(0.02)
    assert not loads  # folded into the snapshot, not reloaded
    assert engine.count() == N + 1
    assert engine.snapshot().items.rows(["s0000008"])["s0000008"]["title"] == "moved"
    # Another process deletes an item and cleans every old version: the service keeps answering.
    other = Store(synth)
    with other.writer.hold("test"):
        other.delete(["s0000007"])
        other.optimize(timedelta(0))
    t0 = time.monotonic()
    while engine.count() != N:
        assert time.monotonic() - t0 < FRESH
        time.sleep(0.02)
    assert "s0000007" not in [m.id for m in engine.similar(item="new/near-7", k=5)]


def test_a_refresh_during_this_process_s_write_does_not_hide_it(synth):
    """A check that runs while a write of this process is under way sees the old versions; the request
    right after the write must still be answered from the new ones (the browser's like-then-reload)."""
    engine = Engine(synth)
    vectors = synthetic_vectors(N, clusters=20)
    assert engine.count() == N
    engine._snapshots.check_every = 1e9  # only this process's writes may trigger a refresh
    store = engine.store
    with store.writer.hold("test"):
        engine.snapshot()  # e.g. the background check, between the writer's start and the commit
        store.upsert([_row(store, "new/near-9", vectors[9], "new one")])
    assert engine.count() == N + 1
    assert "new/near-9" in [m.id for m in engine.similar(item="s0000009", k=3)]


def test_profiles_written_elsewhere_are_served(synth):
    engine = Engine(synth)
    assert engine.recommend("u1", 5).cold_start
    writer = Engine(synth)  # another process's engine: its own store and writer
    for j, i in enumerate(range(40, 46)):
        writer.interact("u1", f"s{i:07d}", "like", at=1_760_000_000 + j)
    t0 = time.monotonic()
    while engine.recommend("u1", 5).cold_start:
        assert time.monotonic() - t0 < FRESH
        time.sleep(0.02)
    result = engine.recommend("u1", 5, explain=True)
    assert result.strategy == "profile" and len(result.items) == 5
    assert not {r.id for r in result.items} & {f"s{i:07d}" for i in range(40, 46)}  # consumed stay out
    assert all(r.because for r in result.items)  # explained from the snapshot's histories
    # This process's own write is served by the very next call.
    engine.interact("u2", "s0000100", "like")
    assert engine.recommend("u2", 3).strategy == "profile"


def test_ivf_path_recall_filters_tail_and_dead_rows():
    x = synthetic_vectors(3000, clusters=30, seed=1)
    usable = np.ones(len(x), bool)
    index = ColumnIndex("fused_vec", x.astype(np.float16), usable, ann_min_rows=1000)
    assert index.ivf is not None
    rng = np.random.default_rng(0)
    qs = x[rng.integers(0, len(x), 50)]
    found = index.search(qs, 10)
    x16 = x.astype(np.float16).astype(np.float32)
    recall = np.mean([len(set(r.tolist()) & set(_exact(x16, q, 10))) / 10 for (r, _), q in zip(found, qs, strict=True)])
    assert recall >= 0.95
    # A broad filter goes inside the IVF search; a selective one is scanned exactly: k results either way.
    for share in (0.5, 0.01):
        allow = AllowList(rng.random(len(x)) < share)
        for rows, scores in index.search(qs[:10], 10, allow):
            assert allow.mask[rows].all() and len(rows) == min(10, len(allow))
            assert np.all(np.diff(scores) <= 1e-6)
    # Appended rows (the tail) are found; dead rows never come back.
    grown = np.concatenate([x, x[:5] * 1.0]).astype(np.float16)
    alive = np.ones(len(grown), bool)
    alive[:5] = False  # items 0-4 were replaced by rows 3000-3004
    later = ColumnIndex("fused_vec", grown, alive, base=index, ann_min_rows=1000)
    assert later.ivf is index.ivf and list(later.tail) == list(range(3000, 3005))
    rows, _ = later.search(x[2][None], 3)[0]
    assert rows[0] == 3002 and not set(rows.tolist()) & set(range(5))


def test_an_unchanged_local_database_is_checked_with_stat_calls_only(synth, monkeypatch):
    engine = Engine(synth)
    vectors = synthetic_vectors(N, clusters=20)
    engine.snapshot()
    cache = engine._snapshots
    cache.check_every = 1e9  # no background check: this test drives refresh() itself
    time.sleep(snapshot_mod.RECENT_NS / 1e9 + 0.1)  # the folders' times are no longer recent
    first = cache.refresh()  # one full check after the quiet second: the stamp is recorded
    real = snapshot_mod._read_versions
    monkeypatch.setattr(snapshot_mod, "_read_versions", lambda *a: (_ for _ in ()).throw(AssertionError("read")))
    assert cache.refresh() is first  # nothing changed: no LanceDB call
    monkeypatch.setattr(snapshot_mod, "_read_versions", real)
    _other_writer(synth, [_row(engine.store, "new/after-quiet", vectors[5], "late one")])
    assert "new/after-quiet" in cache.refresh().items.index  # a commit changes the stamp: read in full
