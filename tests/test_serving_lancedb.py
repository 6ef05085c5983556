"""Serving with the item vectors left in LanceDB (``serving="lancedb"``): the same answers as the in-memory
snapshot, filters pushed down, the choice of ``"auto"``, other writers seen, bad values refused in one line."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from mmrec import Engine
from mmrec.errors import InvalidArgumentError
from mmrec.recsys import item_side_lance
from mmrec.recsys.interactions import make_interaction
from mmrec.recsys.item_side import ItemSide
from mmrec.recsys.item_side_lance import LanceItemSide
from mmrec.recsys.serving import ServingConfig
from mmrec.store import vector_index
from mmrec.store.items import Store

N = 240
DIM = 32
#: Seconds within which another process's write must be served (as tests/test_snapshot.py's FRESH).
FRESH = 1.5
#: Scores of the two paths agree to float16 rounding of unit vectors (memory holds float16, LanceDB float32).
TOL = 2e-3


def _unit(v: np.ndarray) -> np.ndarray:
    """A unit vector rounded to float16 values: the memory snapshot's float16 copy then equals what LanceDB
    stores (to 1e-5), so the two paths rank alike instead of swapping near ties (float16 errs by ~1e-3)."""
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float16).astype(np.float32)


def _rows(store: Store, n: int, seed: int = 0, prefix: str = "i") -> list[dict]:
    """``n`` items in 8 clusters: every one with text, every second with an image, every fifth with audio;
    the fused vector is the normalised mean of its modalities' vectors (as the fusion layer's output is)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(8, DIM))
    now = datetime.now(timezone.utc)
    out = []
    for j in range(n):
        c = centres[j % 8]
        mods = {"text": _unit(c + 0.7 * rng.normal(size=DIM))}
        if j % 2 == 0:
            mods["image"] = _unit(c + 0.7 * rng.normal(size=DIM))
        if j % 5 == 0:
            mods["audio"] = _unit(c + 0.7 * rng.normal(size=DIM))
        row = {f.name: None for f in store.items().schema}
        weights = np.array([1.0 if m in mods else 0.0 for m in ("text", "image", "audio")], np.float32)
        row.update(
            id=f"{prefix}{j:04d}",
            catalog="synthetic",
            title=f"item {j} (cluster {j % 8})",
            has_text=True,
            has_image="image" in mods,
            has_audio="audio" in mods,
            fused_vec=_unit(sum(mods.values())),
            fusion_weights=weights / weights.sum(),
            created_at=now + timedelta(seconds=j),
            updated_at=now,
            **{f"{m}_shared": v for m, v in mods.items()},
        )
        out.append(row)
    return out


def _create(db: str) -> Store:
    from encoders.base import EncoderIdentity
    from encoders.registry import DEFAULT_ENCODERS
    from mmrec.space import DEFAULT_FUSION

    store = Store(db)
    idents = {
        "text": EncoderIdentity("minilm-l6", "synthetic", "synthetic", DIM),
        "image": EncoderIdentity("efficientnet-lite0", "synthetic", "synthetic", 16),
        "audio": EncoderIdentity("yamnet", "synthetic", "synthetic", 16),
    }
    with store.writer.hold("test"):
        store.create_items(
            idents, dict(DEFAULT_ENCODERS), {}, {"name": DEFAULT_FUSION, "version": 0, "fingerprint": "t"}
        )
    return store


@pytest.fixture(scope="module")
def catalog(tmp_path_factory):
    """A small catalog with users: 3 of them with histories (likes, and one dislike), one never seen."""
    db = str(tmp_path_factory.mktemp("serving") / "db")
    store = _create(db)
    with store.writer.hold("test"):
        store.upsert(_rows(store, N))
    t = 1_760_000_000
    events = [
        make_interaction(u, f"i{j:04d}", "like", ts=t + n)
        for u, items in {"u1": [0, 8, 16, 3], "u2": [5, 13, 21, 29, 2, 10], "u3": [7, 15]}.items()
        for n, j in enumerate(items)
    ]
    Engine(db).record_interactions([*events, make_interaction("u2", "i0011", "dislike", ts=t + 100)])
    return db


def _pairs(a: list, b: list) -> list[tuple]:
    """The results of both lists with the same id, side by side (a near tie may have swapped them)."""
    theirs = {y.id: y for y in b}
    return [(x, theirs[x.id]) for x in a if x.id in theirs]


def _same(a: list, b: list) -> None:
    """Two result lists: the same ids in the same order, scores within float16 tolerance.

    Only a near tie (two scores within :data:`TOL`) may come in either order: float16 rounding decides it.
    """
    assert len(a) == len(b)
    assert np.allclose([x.score for x in a], [x.score for x in b], atol=TOL)
    score = {x.id: x.score for x in a}
    for x, y in zip(a, b, strict=True):
        if x.id != y.id:
            near = abs(score[y.id] - x.score) if y.id in score else y.score - a[-1].score
            assert near <= TOL, ([x.id for x in a], [x.id for x in b])


def test_both_modes_give_the_same_answers(catalog, monkeypatch):
    memory, lance = Engine(catalog, serving="memory"), Engine(catalog, serving="lancedb")
    assert type(memory.snapshot().items) is ItemSide and type(lance.snapshot().items) is LanceItemSide
    # The LanceDB snapshot holds no vectors: flags, weights and listing columns only.
    held = {e: e.snapshot().items.nbytes() / N for e in (memory, lance)}
    assert held[lance] < held[memory] / 2
    for item in ("i0000", "i0003", "i0010", "i0101"):
        for kw in ({}, {"modality": "image"}, {"modality": "audio"}, {"where": "has_audio"}, {"k": 3}):
            a, b = memory.similar(item=item, **kw), lance.similar(item=item, **kw)
            _same(a, b)
            for x, y in _pairs(a, b):
                assert x.matched == y.matched
                assert x.modality_scores.keys() == y.modality_scores.keys()
                assert np.allclose(list(x.modality_scores.values()), list(y.modality_scores.values()), atol=TOL)
    # A media query goes through the same search once encoded (a stand-in encoder: no model here).
    probe = _unit(np.arange(DIM, dtype=np.float32))

    class _Space:
        def encode_query(self, kind, value):
            return probe, probe

    for e in (memory, lance):
        monkeypatch.setattr(e, "space", lambda: _Space())
    _same(memory.similar(text="a sentence"), lance.similar(text="a sentence"))
    for user in ("u1", "u2", "u3", "nobody"):
        for kw in (
            {},
            {"diversity": 0.6},
            {"explain": True},
            {"where": "has_image"},
            {"modality": "image"},
            {"include_seen": True},
            {"query": "onboarding words"},
        ):
            a, b = memory.recommend(user, **kw), lance.recommend(user, **kw)
            assert a.strategy == b.strategy
            _same(a.items, b.items)
            for x, y in _pairs(a.items, b.items):
                assert (x.interest, x.matched, x.modalities.keys()) == (y.interest, y.matched, y.modalities.keys())
                assert [r.item for r in x.because] == [r.item for r in y.because]
                assert [r.modality for r in x.because] == [r.modality for r in y.because]
    assert memory.recommend("u2", 8, explain=True).items[0].because  # explanations were compared, not empty
    assert memory.recommend("nobody", 5).strategy == "popular"  # cold start compared too


def test_where_filters_are_pushed_down_in_lancedb_mode(catalog):
    lance = Engine(catalog, serving="lancedb")
    got = lance.similar(item="i0001", k=10, where="has_audio AND NOT has_image")  # 1 item in 10
    assert len(got) == 10
    flags = lance.snapshot().items
    assert all(flags.has["audio"][flags.index[m.id]] and not flags.has["image"][flags.index[m.id]] for m in got)
    rec = lance.recommend("u1", 10, where="id LIKE '%7'")
    assert len(rec.items) == 10 and all(r.id.endswith("7") for r in rec.items)
    with pytest.raises(InvalidArgumentError, match="invalid filter 'no_such_column > 1'"):  # as the caller wrote it
        lance.similar(item="i0001", where="no_such_column > 1")


def test_auto_serves_from_lancedb_only_beyond_the_memory_budget(catalog):
    assert type(Engine(catalog).snapshot().items) is ItemSide  # 240 items fit any budget
    assert type(Engine(catalog, memory_budget_mb=0.001).snapshot().items) is LanceItemSide
    config = ServingConfig("auto", 100.0)
    assert config.choose(10_000, 2400) == "memory" and config.choose(100_000, 2400) == "lancedb"
    assert ServingConfig("memory", 0.001).choose(10**9, 2400) == "memory"
    assert ServingConfig().budget_mb > 0


def test_other_writers_are_seen_in_lancedb_mode(tmp_path):
    db = str(tmp_path / "db")
    store = _create(db)
    rows = _rows(store, 60)
    with store.writer.hold("test"):
        store.upsert(rows)
    engine = Engine(db, serving="lancedb")
    assert "new" not in [m.id for m in engine.similar(item="i0007", k=3)]
    # Another process (its own store and writer) adds an item on top of item 7 and turns item 8 around.
    other = Store(db)
    near = dict(rows[7], id="new", title="new one", created_at=datetime.now(timezone.utc))
    moved = dict(rows[8], title="moved", fused_vec=-rows[8]["fused_vec"], updated_at=datetime.now(timezone.utc))
    with other.writer.hold("test"):
        other.upsert([near, moved])
    t0 = time.monotonic()
    while [m.id for m in engine.similar(item="i0007", k=1)] != ["new"]:
        assert time.monotonic() - t0 < FRESH, "another process's new item not served in time"
        time.sleep(0.02)
    assert type(engine.snapshot().items) is LanceItemSide
    # The changed vector is the one searched with and found: no vector of the old version is kept.
    now = {r["id"]: r["fused_vec"] for r in [*rows, near, moved]}
    s = {i: float(v @ moved["fused_vec"]) for i, v in now.items() if i != "i0008"}
    assert [m.id for m in engine.similar(item="i0008", k=5)] == sorted(s, key=lambda i: -s[i])[:5]
    assert engine.snapshot().items.rows(["i0008"])["i0008"]["title"] == "moved"
    assert np.allclose(engine.snapshot().items.rows(["i0008"])["i0008"]["fused_vec"], moved["fused_vec"], atol=1e-6)
    # A delete and a cleanup of every old version: requests keep being answered, without the deleted item.
    with other.writer.hold("test"):
        other.delete(["i0007"])
        other.optimize(timedelta(0))
    t0 = time.monotonic()
    while engine.count() != 60:
        assert "i0007" not in [m.id for m in engine.similar(item="new", k=5)]  # the old version's files are gone
        assert time.monotonic() - t0 < FRESH
        time.sleep(0.02)
    assert "i0007" not in [m.id for m in engine.similar(item="new", k=5)]


def test_bad_serving_values_are_refused_in_one_line(catalog, capsys, monkeypatch):
    with pytest.raises(InvalidArgumentError, match=r"serving must be one of memory, lancedb, auto, got 'disk'"):
        Engine(catalog, serving="disk")
    with pytest.raises(InvalidArgumentError, match="memory_budget_mb must be a positive number"):
        Engine(catalog, memory_budget_mb=-1)
    from mmrec.cli.main import main

    assert main(["similar", "--item", "i0001", "--db", catalog, "--serving", "disk"]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'disk'" in err and "memory, lancedb, auto" in err
    from mmrec.service.settings import load_settings

    with pytest.raises(InvalidArgumentError, match=r"--serving must be one of memory, lancedb, auto, got 'disk'"):
        load_settings({"serving": "disk"}, env={})
    with pytest.raises(InvalidArgumentError, match=r"MMREC_SERVING must be one of"):
        load_settings({}, env={"MMREC_SERVING": "ram"})
    with pytest.raises(InvalidArgumentError, match=r"MMREC_MEMORY_BUDGET_MB"):
        load_settings({}, env={"MMREC_MEMORY_BUDGET_MB": "-5"})
    settings = load_settings({}, env={"MMREC_SERVING": "lancedb", "MMREC_MEMORY_BUDGET_MB": "512"})
    assert (settings.serving, settings.memory_budget_mb, settings.memory_budget) == ("lancedb", 512.0, 512.0)
    # 0 (the settings' default) is the engine's default budget: None, a quarter of physical memory.
    assert load_settings({}, env={}).memory_budget is None


def test_recall_through_lancedb_s_ivf_index(tmp_path, monkeypatch):
    """A few thousand vectors with a real IVF_PQ index (small partitions): recall@10 against exact search."""
    db = str(tmp_path / "db")
    store = _create(db)
    rows = _rows(store, 3000, seed=3)
    with store.writer.hold("test"):
        store.upsert(rows)
        assert store.ensure_vector_index(min_rows=0)  # 11 partitions of ~270 rows, PQ codes, refine factor 20
    assert any(ix.columns == ["id"] for ix in store.items().list_indices())  # reads by id look rows up
    engine = Engine(db, serving="lancedb")
    vecs = np.stack([r["fused_vec"] for r in rows])
    recalls = []
    for j in range(0, 3000, 97):
        s = vecs @ vecs[j]
        s[j] = -np.inf
        truth = {rows[i]["id"] for i in np.argsort(-s)[:10]}
        recalls.append(len(truth & {m.id for m in engine.similar(item=rows[j]["id"], k=10)}) / 10)
    assert np.mean(recalls) >= 0.95
    assert engine.snapshot().items._rows_indexed(engine.snapshot().items._handle(), "fused_vec") == 3000
    # A filter (300 rows) is scanned exactly; through the index once it keeps more than EXACT_FILTER_ROWS.
    keep = np.array([r["id"].endswith("7") for r in rows])
    for cap in (vector_index.EXACT_FILTER_ROWS, 100):
        monkeypatch.setattr(vector_index, "EXACT_FILTER_ROWS", cap)
        recalls = []
        for j in range(0, 3000, 293):
            s = np.where(keep, vecs @ vecs[j], -np.inf)
            s[j] = -np.inf
            got = [m.id for m in engine.similar(item=rows[j]["id"], k=10, where="id LIKE '%7'")]
            assert len(got) == 10 and all(i.endswith("7") for i in got)
            recalls.append(len({rows[i]["id"] for i in np.argsort(-s)[:10]} & set(got)) / 10)
        assert np.mean(recalls) >= 0.95, cap


def test_the_service_serves_from_lancedb(catalog):
    from fastapi.testclient import TestClient

    from mmrec.service.app import app_from_settings
    from mmrec.service.settings import ServeSettings

    app = app_from_settings(ServeSettings(db=catalog, serving="lancedb"), warm=False)
    memory = Engine(catalog, serving="memory")
    with TestClient(app) as client:
        r = client.post("/similar", json={"item": "i0003", "k": 5, "where": "has_image"})
        assert r.status_code == 200
        _same(memory.similar(item="i0003", k=5, where="has_image"), [_Hit(**m) for m in r.json()["results"]])
        r = client.get("/users/u1/recommendations", params={"k": 4, "explain": True})
        assert r.status_code == 200 and [x["id"] for x in r.json()["items"]] == [
            x.id for x in memory.recommend("u1", 4, explain=True).items
        ]
        assert client.post("/similar", json={"item": "i0003", "where": "nope > 1"}).status_code == 400


class _Hit:
    def __init__(self, id: str, score: float, **_: object) -> None:
        self.id, self.score = id, score


def test_a_version_cleaned_before_its_first_read_is_read_at_the_newest(tmp_path):
    """Another process's cleanup between a snapshot's scan and its first search (the table handle is opened
    on first use), or before the scan itself: answered from the newest version, never LanceDB's raw error."""
    db = str(tmp_path / "db")
    store = _create(db)
    rows = _rows(store, 40)
    with store.writer.hold("test"):
        store.upsert(rows)
    version = int(store.items().version)
    items = LanceItemSide.load(store, version, "t")
    other = Store(db)
    with other.writer.hold("test"):
        other.upsert([dict(rows[3], title="changed", updated_at=datetime.now(timezone.utc))])
        other.optimize(timedelta(0))  # the snapshot's version is gone
    ((found, scores),) = items.candidates(store, "fused_vec", rows[5]["fused_vec"][None], 3)
    assert items.ids[found[0]] == "i0005" and scores[0] == pytest.approx(1.0, abs=1e-5)
    vecs, has = items.vectors_of([items.index["i0007"]], ["fused_vec"])["fused_vec"]
    assert has.all() and np.allclose(vecs[0], rows[7]["fused_vec"], atol=1e-4)  # re-normalised float32
    again = LanceItemSide.load(store, version, "t")  # a scan at the cleaned version: the newest, and says so
    assert again.version > version and again.titles[again.index["i0003"]] == "changed"


def test_auto_follows_the_catalog_across_the_budget_both_ways(tmp_path, monkeypatch):
    """60 items (23 kB) fit a 52 kB budget, 240 (91 kB) do not: a write moves the snapshot to LanceDB, a
    delete back to memory, each a full load; a LanceDB snapshot is priced from its flags, no vector probe."""
    from mmrec.recsys import snapshot
    from mmrec.recsys.item_side import estimated_bytes

    db = str(tmp_path / "db")
    store = _create(db)
    rows = _rows(store, 240)
    with store.writer.hold("test"):
        store.upsert(rows[:60])
    assert estimated_bytes(store) == (60, 120 + 4 * (2 * DIM + 1))  # scalars, 4 float16 vectors and flags
    priced: list = []
    real = snapshot.estimated_bytes
    monkeypatch.setattr(
        snapshot, "estimated_bytes", lambda s, per_item=None: priced.append(per_item) or real(s, per_item)
    )
    engine = Engine(db, memory_budget_mb=0.05)
    assert type(engine.snapshot().items) is ItemSide
    with store.writer.hold("test"):
        store.upsert(rows[60:])
    t0 = time.monotonic()
    while type(engine.snapshot().items) is not LanceItemSide:
        assert time.monotonic() - t0 < FRESH, "auto did not move past the budget to LanceDB"
        time.sleep(0.02)
    assert len(engine.snapshot().items.index) == 240
    _same(Engine(db, serving="memory").similar(item="i0100"), engine.similar(item="i0100"))
    with store.writer.hold("test"):
        store.delete([r["id"] for r in rows[50:]])
    t0 = time.monotonic()
    while type(engine.snapshot().items) is not ItemSide:
        assert time.monotonic() - t0 < FRESH, "auto did not move back to memory"
        time.sleep(0.02)
    assert len(engine.snapshot().items.index) == 50
    assert priced[0] is None and priced[-1] == 120 + 4 * (2 * DIM + 1)  # the LanceDB snapshot's own price
    # Back to memory only within RETURN_SHARE of the budget: a catalog at the budget does not flip at each write.
    config, per = ServingConfig("auto", 1.0), 100
    at = int(0.95 * 2**20 / per)
    assert config.choose(at, per) == config.choose(at, per, current="memory") == "memory"
    assert config.choose(at, per, current="lancedb") == "lancedb"
    assert config.choose(int(0.85 * 2**20 / per), per, current="lancedb") == "memory"


def test_concurrent_requests_share_one_lancedb_snapshot(catalog, monkeypatch):
    """Eight threads on one snapshot, its row cache small enough to evict all along: the serial answers."""
    from concurrent.futures import ThreadPoolExecutor

    from mmrec.recsys import item_side_lance

    monkeypatch.setattr(item_side_lance, "ROW_CACHE", 16)
    engine = Engine(catalog, serving="lancedb")

    def ask(q: str) -> list[str]:
        found = engine.recommend(q, 5, diversity=0.5).items if q.startswith("u") else engine.similar(item=q, k=5)
        return [m.id for m in found]

    queries = [f"i{j:04d}" for j in range(0, N, 13)] + ["u1", "u2", "u3"]
    serial = {q: ask(q) for q in queries}
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda q: (q, ask(q)), queries * 3))
    assert all(serial[q] == ids for q, ids in got)
    assert len(engine.snapshot().items._rows) <= 16  # bounded


def test_a_passing_read_error_keeps_the_pinned_version_and_an_absent_modality_reads_nothing(tmp_path, monkeypatch):
    from mmrec.errors import StoreError

    db = str(tmp_path / "db")
    store = _create(db)
    rows = [dict(r, audio_shared=None, has_audio=False) for r in _rows(store, 40)]  # no item has audio
    with store.writer.hold("test"):
        store.upsert(rows)
    version = int(store.items().version)
    with store.writer.hold("test"):
        store.upsert([dict(rows[1], title="newer", updated_at=datetime.now(timezone.utc))])  # a newer version
    items = LanceItemSide.load(store, version, "t")
    real, failures = item_side_lance.search_rows, [StoreError("cannot read database 'db': a passing I/O error")]

    def flaky(*args, **kwargs):
        if failures:
            raise failures.pop()
        return real(*args, **kwargs)

    monkeypatch.setattr(item_side_lance, "search_rows", flaky)
    ((found, _),) = items.candidates(store, "fused_vec", rows[1]["fused_vec"][None], 1)
    assert items.ids[found[0]] == "i0001" and not failures
    assert int(items._handle().version) == version  # retried at the snapshot's version, not the newest
    # Filters are read at the snapshot's version too: its rows, not the newer title.
    assert not items.allow(store, "title = 'newer'").rows.size
    assert items.ids[int(items.allow(store, f"title = '{rows[1]['title']}'").rows[0])] == "i0001"
    monkeypatch.setattr(item_side_lance, "search_rows", lambda *a, **k: pytest.fail("searched a column no row has"))
    assert items.candidates(store, "audio_shared", rows[1]["fused_vec"][None], 5) == [([], [])]
