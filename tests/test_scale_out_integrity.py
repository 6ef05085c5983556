"""The Ray ingest's write path under concurrency and crashes, joining a running cluster, and GPU requests.

The writes of a ``--engine ray`` ingest go through the single writer in one commit
(:func:`mmrec.store.fragments.commit_fragments`); these tests check that a crash at any point leaves
a state the next run repairs (data never lost or doubled), that two ingests of one database at once
store each id once, and that ``--ray-address`` joins a cluster and leaves it running.

One Ray is started for the module (``ray.init`` in this process, 2 CPUs). The default tests run the
ingest in this process against it, with the named crash points (``ray:before-commit``,
``ray:after-commit``) turned into an exception, so no second Ray start is paid. The ``slow`` tests
run the CLI in subprocesses that join the same cluster with ``--ray-address``: real ``os._exit``
crashes (``MMREC_CRASH_AT``), two concurrent ingests, and the join itself.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from media_factory import small_catalog, write_text

from mmrec import Engine
from mmrec.config import IngestConfig
from mmrec.errors import InvalidArgumentError
from mmrec.ingest import distributed
from mmrec.ingest.distributed import plan_resources
from mmrec.store.writer import CRASH_ENV, CRASH_STATUS

REPO = Path(__file__).resolve().parent.parent
VECTORS = ("text_vec", "image_vec", "audio_vec", "fused_vec", "text_shared", "image_shared", "audio_shared")


# --------------------------------------------------------------------------- no Ray needed


def test_gpus_are_asked_for_only_when_the_cluster_reports_them():
    auto = IngestConfig(engine="ray")  # ray_gpus_per_worker None: decided by the cluster
    assert plan_resources({"CPU": 2.0, "memory": 8e9, "object_store_memory": 1e9}, auto) == (2, 1.0, 0.0, "cpu")
    assert plan_resources({"CPU": 16.0, "GPU": 2.0}, auto) == (2, 1.0, 1.0, "cuda")  # one actor per GPU
    assert plan_resources({"CPU": 16.0, "GPU": 0.0}, auto) == (16, 1.0, 0.0, "cpu")
    assert plan_resources({"CPU": 16.0, "GPU": 2.0}, replace(auto, ray_gpus_per_worker=0.0)) == (16, 1.0, 0.0, "cpu")
    assert plan_resources({"CPU": 16.0, "GPU": 2.0}, replace(auto, ray_gpus_per_worker=0.5)) == (4, 1.0, 0.5, "cuda")
    assert plan_resources({"CPU": 8.0, "GPU": 4.0}, replace(auto, ray_workers=3, ray_cpus_per_worker=2.0)) == (
        3,
        2.0,
        1.0,
        "cuda",
    )
    with pytest.raises(InvalidArgumentError, match=r"ray_gpus_per_worker=1.0 but the Ray cluster reports no GPU"):
        plan_resources({"CPU": 4.0}, replace(auto, ray_gpus_per_worker=1.0))


def test_a_commit_replaces_rows_that_another_ingest_committed_after_this_one_planned(tmp_path, catalog, real_encoders):
    """Two ingests of one catalog both plan every item as new: the later commit must replace, not append."""
    pytest.importorskip("lance")
    from mmrec.store.fragments import commit_fragments, fragment_target, write_fragment

    engine = Engine(tmp_path / "db")
    engine.ingest(catalog)  # the ingest that committed first
    store = engine.store
    ids = sorted(r["id"] for r in store.list(None, columns=["id"]))
    rows = store.rows(ids)
    target = fragment_target(store)
    # The second ingest's two workers, each with part of the catalog, all of it planned as new.
    frags = [write_fragment(target, [rows[i] for i in ids[:2]]), write_fragment(target, [rows[i] for i in ids[2:]])]
    before = store.version()
    with store.writer.hold("test"):
        assert commit_fragments(store, frags, ids) == before + 1  # one commit
    assert store.count() == len(ids) == 5 and store.duplicate_ids() == []
    for i, row in store.rows(ids).items():
        np.testing.assert_allclose(row["fused_vec"], rows[i]["fused_vec"])
    assert len(engine.similar(item="birds/owl", k=4)) == 4


# --------------------------------------------------------------------------- one Ray for the module


class Crash(BaseException):
    """An injected crash: nothing after the crash point runs (a BaseException: no handler catches it)."""


@pytest.fixture(scope="module")
def cluster():
    """A Ray with 2 CPUs started once in this process; its address, for subprocesses to join."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("lance")
    if ray.is_initialized():
        pytest.skip("Ray is already initialised in this test process")
    mode = os.environ.get("RAY_AUTH_MODE")  # ray.init may turn token authentication on in os.environ
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        if mode is None:
            os.environ.pop("RAY_AUTH_MODE", None)
        else:
            os.environ["RAY_AUTH_MODE"] = mode


def edited_catalog(tmp_path: Path) -> tuple[str, Path, str]:
    """A database of a 5-item catalog (one broken file), then the catalog edited in place: one item
    changed, one added, one more broken file; and a reference database, the edit ingested locally.

    Returns ``(db, catalog, reference)``.
    """
    cat = small_catalog(tmp_path / "catalog")
    (cat / "broken.png").write_bytes(b"not an image")
    db, reference = tmp_path / "db", tmp_path / "reference"
    Engine(str(db)).ingest(cat)  # in this process: the session's models are shared
    shutil.copytree(db, reference)
    write_text(cat / "birds" / "duck.txt", "A mallard duck diving for weed in a cold lake.")
    write_text(cat / "notes" / "bells.txt", "Church bells ringing across the valley on a Sunday morning.")
    (cat / "broken2.jpg").write_bytes(b"neither")
    Engine(str(reference)).ingest(cat)
    return str(db), cat, str(reference)


def assert_same_items(db: str, reference: str) -> None:
    """Each id once, the same ids, vectors (cosine >= 0.999), hashes and problems as the reference."""
    from mmrec.store.items import Store

    got, want = Store(db), Store(reference)
    ids = sorted(r["id"] for r in want.list(None, columns=["id"]))
    assert sorted(r["id"] for r in got.list(None, columns=["id"])) == ids and got.duplicate_ids() == []
    a, b = got.rows(ids), want.rows(ids)
    for i in ids:
        assert a[i]["item_hash"] == b[i]["item_hash"] and a[i]["text"] == b[i]["text"], i
        for col in VECTORS:
            x, y = a[i].get(col), b[i].get(col)
            assert (x is None) == (y is None), (i, col)
            if x is not None:
                x, y = np.asarray(x), np.asarray(y)
                assert float(x @ y / (np.linalg.norm(x) * np.linalg.norm(y))) >= 0.999, (i, col)
    key = lambda p: (p["path"], p["reason"], p["item_id"] or "")  # noqa: E731
    assert sorted(map(key, got.problems())) == sorted(map(key, want.problems()))


def data_files(db: str) -> set[str]:
    return {str(p.relative_to(db)) for p in (Path(db) / "items.lance" / "data").rglob("*") if p.is_file()}


@pytest.fixture
def crash_at(monkeypatch):
    """``crash_at(step)``: the Ray path's crash point named ``step`` raises :class:`Crash` (as MMREC_CRASH_AT would exit)."""

    def arm(step: str) -> None:
        monkeypatch.setenv(CRASH_ENV, step)

        def point(name: str) -> None:
            if os.environ.get(CRASH_ENV) == name:
                raise Crash(name)

        monkeypatch.setattr(distributed, "crash_point", point)

    return arm


#: One actor: each actor of a run is a new process loading the models (the 2-worker path is test_scale_out's).
RAY = IngestConfig(engine="ray", ray_workers=1)


def test_a_crash_before_the_commit_changes_nothing_and_the_next_run_ingests_the_items(
    tmp_path, cluster, crash_at, real_encoders
):
    """The workers wrote their fragments, the driver died before committing: no version sees them."""
    db, cat, reference = edited_catalog(tmp_path)
    engine = Engine(db)
    n = engine.store.count()
    before = (engine.store.version(), engine.store.rows(["birds/duck"])["birds/duck"]["text"], data_files(db))
    crash_at("ray:before-commit")
    with pytest.raises(Crash):
        engine.ingest(cat, config=RAY)
    store = Engine(db).store
    assert store.version() == before[0] and store.count() == n and store.duplicate_ids() == []
    assert store.get("birds/duck")["text"] == before[1] and "notes/bells" not in {r["id"] for r in store.list(None)}
    orphans = data_files(db) - before[2]
    assert orphans, "the workers wrote their fragments' data files"
    os.environ.pop(CRASH_ENV)
    report = Engine(db).ingest(cat)  # the next run (a local one: the slow test below repairs with Ray)
    assert report.added == 2 and report.updated == 1 and sum(report.encoded.values()) > 0  # bells, broken2; duck
    assert_same_items(db, reference)
    assert Engine(db).store.count() == n + 2
    # The orphans are harmless: no version of the table refers to them (Lance deletes them once 7 days old).
    import lance

    ds = lance.dataset(str(Path(db) / "items.lance"))
    used = {f.path for frag in ds.get_fragments() for f in frag.metadata.data_files()}
    assert not {Path(o).name for o in orphans} & {Path(u).name for u in used}


def test_a_crash_after_the_commit_is_finished_by_the_next_run_without_encoding(
    tmp_path, cluster, crash_at, real_encoders
):
    """Committed, but the problems table, compaction and index update not done: the next run does them."""
    db, cat, reference = edited_catalog(tmp_path)
    crash_at("ray:after-commit")
    with pytest.raises(Crash):
        Engine(db).ingest(cat, config=RAY)
    store = Engine(db).store
    assert store.count() == Engine(reference).store.count() and store.duplicate_ids() == []  # in, each once
    assert "broken2.jpg" not in {p["path"] for p in store.problems()}  # the problems table is behind
    assert store.items().stats()["fragment_stats"]["num_small_fragments"] > 1  # not compacted
    from mmrec.ingest.pipeline import upkeep_due

    assert upkeep_due(store)
    os.environ.pop(CRASH_ENV)
    report = Engine(db).ingest(cat, config=RAY)  # the next run: nothing to encode, so no Ray job either
    assert sum(report.encoded.values()) == 0 and report.added == report.updated == 0
    assert_same_items(db, reference)
    store = Engine(db).store
    assert store.items().stats()["fragment_stats"]["num_small_fragments"] == 1 and not upkeep_due(store)
    version = store.version()
    Engine(db).ingest(cat, config=RAY)
    assert Engine(db).store.version() == version  # repaired once; a further run writes nothing
    assert Engine(db).consistency()["ok"]


# --------------------------------------------------------------------------- subprocesses joining the cluster


def run_cli(*args: str, crash: str | None = None) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(CRASH_ENV, None)
    if crash:
        env[CRASH_ENV] = crash
    return subprocess.Popen(
        [sys.executable, "-m", "mmrec.cli", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


@pytest.mark.slow
def test_ray_address_joins_the_running_cluster_and_leaves_it_running(tmp_path, cluster, real_encoders):
    """``--ray-address`` joins (a job of this cluster, driven by the CLI process) and does not shut the cluster down."""
    import ray
    from ray._private import state

    cat = small_catalog(tmp_path / "catalog")
    local = str(tmp_path / "local")
    Engine(local).ingest(cat)
    jobs_before = {j["JobID"] for j in state.jobs()}
    db = str(tmp_path / "db")
    p = run_cli("ingest", str(cat), "--db", db, "--engine", "ray", "--ray-address", cluster, "--ray-workers", "2")
    out, err = p.communicate(timeout=600)
    assert p.returncode == 0, err
    new_jobs = [j for j in state.jobs() if j["JobID"] not in jobs_before]
    assert [j["DriverPid"] for j in new_jobs] == [p.pid] and new_jobs[0]["IsDead"]  # its job, finished
    assert ray.is_initialized() and ray.cluster_resources().get("CPU") == 2.0  # still running: not shut down by it
    assert_same_items(db, local)


@pytest.mark.slow
def test_two_ray_ingests_at_once_store_each_item_once(tmp_path, cluster, real_encoders):
    """Both plan every item as new and encode it; the commits take turns and the later one replaces."""
    cat = small_catalog(tmp_path / "catalog")
    local = str(tmp_path / "local")
    Engine(local).ingest(cat)
    db = str(tmp_path / "db")
    args = ("ingest", str(cat), "--db", db, "--engine", "ray", "--ray-address", cluster, "--ray-workers", "1")
    procs = [run_cli(*args, "--json") for _ in range(2)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [e for _, e in outs]
    assert_same_items(db, local)  # each id once, the same vectors and problems
    assert Engine(db).consistency()["ok"]


@pytest.mark.slow
@pytest.mark.parametrize("step", ["ray:before-commit", "ray:after-commit"])
def test_a_real_crash_of_the_ray_driver_is_repaired_by_the_next_run(tmp_path, cluster, real_encoders, step):
    """``MMREC_CRASH_AT`` kills the CLI process (os._exit) at the named point; the next run repairs."""
    db, cat, reference = edited_catalog(tmp_path)
    before = Engine(db).store.version()
    p = run_cli("ingest", str(cat), "--db", db, "--engine", "ray", "--ray-address", cluster, crash=step)
    _, err = p.communicate(timeout=600)
    assert p.returncode == CRASH_STATUS, err
    moved = Engine(db).store.version() != before
    assert moved == (step == "ray:after-commit")  # committed or not, never half
    Engine(db).ingest(cat, config=RAY)
    assert_same_items(db, reference)
    assert Engine(db).consistency()["ok"]
