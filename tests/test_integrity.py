"""Data integrity with real LanceDB and real processes: one writer, crash consistency, profiles as a fold
over the event log, readers that see other writers, forgetting a user, and bad input refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from mmrec import Engine
from mmrec.errors import InvalidArgumentError, StoreError, WriterBusyError
from mmrec.recsys.interactions import make_interaction
from mmrec.store.writer import CRASH_ENV, CRASH_STATUS

REPO = Path(__file__).resolve().parent.parent
T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)


def run_cli(*args: str, crash: str | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(CRASH_ENV, None)
    if crash:
        env[CRASH_ENV] = crash
    return subprocess.run(
        [sys.executable, "-m", "mmrec.cli", *args], capture_output=True, text=True, env=env, timeout=timeout
    )


def run_py(code: str, timeout: float = 300) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop(CRASH_ENV, None)
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def base_db(tmp_path_factory, real_encoders):
    """A small ingested catalog (5 items); tests copy it instead of ingesting again."""
    from media_factory import small_catalog

    root = tmp_path_factory.mktemp("integrity")
    cat = small_catalog(root / "catalog")
    Engine(str(root / "db")).ingest(cat)
    return root / "db", cat


def copy_db(base: Path, tmp_path: Path, name: str = "db") -> str:
    target = tmp_path / name
    shutil.copytree(base, target)
    return str(target)


def items_of(db: str) -> list[str]:
    return [r["id"] for r in Engine(db).store.list(limit=None, columns=["id"])]


def profile_state(engine: Engine, user: str) -> dict:
    p = engine.users().profile(user)
    assert p is not None
    return {
        "events": p.events,
        "seen": sorted(p.seen),
        "counts": p.counts,
        "masses": np.round(p.masses, 5).tolist(),
        "sums": [np.round(s, 5).tolist() for s in p.sums],
        "negative": None if p.negative is None else np.round(p.negative, 5).tolist(),
        "history": [(i, e, round(w, 5), t.isoformat()) for i, e, w, t in p.history],
    }


def files_containing(root: Path, needle: bytes) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and needle in p.read_bytes())


# --------------------------------------------------------------------------- one writer


def test_two_concurrent_ingests_store_each_item_once(tmp_path, base_db):
    _, cat = base_db
    db = str(tmp_path / "db")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mmrec.cli", "ingest", str(cat), "--db", db],
            env={**os.environ, "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    engine = Engine(db)
    ids = items_of(db)
    assert len(ids) == len(set(ids)) == 5
    assert engine.store.count() == 5
    assert engine.similar(item="birds/owl", k=4) and len({m.id for m in engine.similar(item="birds/owl", k=4)}) == 4


def test_a_second_writer_fails_at_once_with_no_wait(tmp_path, base_db):
    db = copy_db(base_db[0], tmp_path)
    release = tmp_path / "release"
    # The holder keeps the lock until told to let go, so the check below does not
    # depend on how fast a CLI process starts on a loaded machine.
    holder = run_py(
        f"""
        import os, time
        from mmrec.store.items import Store
        store = Store({db!r})
        with store.writer.hold("a long import"):
            print("held", flush=True)
            deadline = time.time() + 240
            while not os.path.exists({str(release)!r}) and time.time() < deadline:
                time.sleep(0.05)
        """
    )
    assert holder.stdout.readline().strip() == "held"
    busy = run_cli("interact", "u1", "birds/owl", "--db", db, "--no-wait")
    assert busy.returncode == 1
    assert holder.poll() is None, "--no-wait returned only after the holder let go"
    assert busy.stderr.count("\n") == 1 and "being written by another process" in busy.stderr
    assert "a long import" in busy.stderr
    letting_go = threading.Timer(8.0, release.touch)
    letting_go.start()
    try:
        waited = run_cli("interact", "u1", "birds/owl", "--db", db)  # waits, then writes
    finally:
        letting_go.cancel()
        release.touch()
    assert waited.returncode == 0, waited.stderr
    assert "waiting for another writer" in waited.stderr or holder.poll() is not None
    holder.wait(timeout=30)
    with pytest.raises(WriterBusyError):
        engine = Engine(db, wait=False)
        with engine.store.writer.hold("outer"):
            # another thread of this process cannot write meanwhile without waiting
            errors = []

            def write() -> None:
                try:
                    engine.interact("u2", "birds/owl")
                except WriterBusyError as e:
                    errors.append(e)

            t = threading.Thread(target=write)
            t.start()
            t.join()
            raise errors[0]


def _events(user: str, n: int, offset: int, items: list[str], seed: int) -> list[dict]:
    rng = np.random.default_rng(seed)
    kinds = ["view", "click", "like", "purchase", "skip"]
    return [
        {
            "user": user,
            "item": items[int(rng.integers(len(items)))],
            "event": kinds[int(rng.integers(len(kinds)))],
            "at": (T0 + timedelta(seconds=2 * k + offset)).isoformat(),
        }
        for k in range(n)
    ]


def test_two_processes_writing_one_user_give_the_sequential_profile(tmp_path, base_db):
    concurrent = copy_db(base_db[0], tmp_path, "concurrent")
    sequential = copy_db(base_db[0], tmp_path, "sequential")
    items = items_of(concurrent)
    a, b = _events("u", 200, 0, items, 1), _events("u", 200, 1, items, 2)
    script = """
        import json, sys
        from mmrec import Engine
        from mmrec.recsys.interactions import make_interaction
        engine = Engine({db!r})
        events = json.loads({events!r})
        for s in range(0, len(events), 10):
            batch = [make_interaction(e["user"], e["item"], e["event"], ts=e["at"]) for e in events[s : s + 10]]
            engine.record_interactions(batch)
        """
    procs = [run_py(script.format(db=concurrent, events=json.dumps(ev))) for ev in (a, b)]
    for p in procs:
        out, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    seq = Engine(sequential)
    seq.record_interactions([make_interaction(e["user"], e["item"], e["event"], ts=e["at"]) for e in a + b])
    conc = Engine(concurrent)
    assert conc.users().interactions().count_rows() == 400
    assert profile_state(conc, "u") == profile_state(seq, "u")
    assert conc.users().profile("u").events == 400
    assert [r.id for r in conc.recommend("u", 3, include_seen=True).items] == [
        r.id for r in seq.recommend("u", 3, include_seen=True).items
    ]


def test_events_arriving_out_of_order_give_the_same_profile(tmp_path, base_db):
    in_order = Engine(copy_db(base_db[0], tmp_path, "a"))
    shuffled = Engine(copy_db(base_db[0], tmp_path, "b"))
    events = [
        make_interaction(e["user"], e["item"], e["event"], ts=e["at"])
        for e in _events("v", 60, 0, items_of(str(tmp_path / "a")), 3)
    ]
    in_order.record_interactions(events)
    order = np.random.default_rng(0).permutation(len(events))
    for s in range(0, len(events), 7):
        shuffled.record_interactions([events[i] for i in order[s : s + 7]])
    assert profile_state(shuffled, "v") == profile_state(in_order, "v")
    assert shuffled.rebuild_profiles(["v"]) == 1
    assert profile_state(shuffled, "v") == profile_state(in_order, "v")


# --------------------------------------------------------------------------- crashes


def _write_events_csv(path: Path, items: list[str]) -> Path:
    lines = ["user,item,event,timestamp"]
    for n in range(30):
        lines.append(f"user{n % 3},{items[n % len(items)]},{['view', 'like', 'skip'][n % 3]},{1767225600 + 60 * n}")
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize("step", ["interactions:after-events", "interactions:after-profiles"])
def test_a_crash_inside_an_import_is_repaired_by_the_next_command(tmp_path, base_db, step):
    reference = copy_db(base_db[0], tmp_path, "reference")
    crashed = copy_db(base_db[0], tmp_path, "crashed")
    events = _write_events_csv(tmp_path / "events.csv", items_of(reference))
    assert run_cli("import-interactions", str(events), "--db", reference).returncode == 0
    died = run_cli("import-interactions", str(events), "--db", crashed, crash=step)
    assert died.returncode == CRASH_STATUS
    info = json.loads(run_cli("info", "--db", crashed, "--json").stdout)
    assert info["consistency"]["profiles_behind_events"] is True  # reported, not yet repaired
    again = run_cli("import-interactions", str(events), "--db", crashed)  # the next command
    assert again.returncode == 0, again.stderr
    assert "0 added, 30 already stored" in again.stdout
    ref, rec = Engine(reference), Engine(crashed)
    assert rec.users().interactions().count_rows() == 30
    for user in ("user0", "user1", "user2"):
        assert profile_state(rec, user) == profile_state(ref, user)
    assert rec.consistency()["ok"]


@pytest.mark.parametrize("step", ["ingest:after-batch", "ingest:before-problems", "ingest:before-optimize"])
def test_a_crash_inside_an_ingest_is_repaired_by_the_next_run(tmp_path, base_db, step):
    reference, cat = base_db
    db = str(tmp_path / "db")
    assert run_cli("ingest", str(cat), "--db", db, crash=step).returncode == CRASH_STATUS
    Engine(db).ingest(cat)  # the next run (in this process: the models are already loaded here)
    got, want = Engine(db), Engine(str(reference))
    cols = ["id", "fused_vec", "text_vec", "image_vec", "audio_vec", "item_hash"]
    rows = {r["id"]: r for r in got.store.list(limit=None, columns=cols)}
    expected = {r["id"]: r for r in want.store.list(limit=None, columns=cols)}
    assert sorted(rows) == sorted(expected)
    for i, r in rows.items():
        assert r["item_hash"] == expected[i]["item_hash"]
        for c in cols[1:-1]:
            if expected[i][c] is None:
                assert r[c] is None
            else:
                np.testing.assert_allclose(r[c], expected[i][c], atol=1e-5)
    assert {(p["path"], p["reason"]) for p in got.store.problems()} == {
        (p["path"], p["reason"]) for p in want.store.problems()
    }
    assert got.store.count() == 5


@pytest.fixture(scope="module")
def shapes_db(tmp_path_factory, real_encoders):
    from test_training import shapes_catalog

    root = tmp_path_factory.mktemp("train-crash")
    shapes_catalog(root / "cat", copies=4)
    Engine(str(root / "db")).ingest(root / "cat")
    return root / "db", root / "cat"


@pytest.mark.parametrize("step", ["train:after-checkpoint", "train:after-pending-label", "train:after-vectors"])
def test_a_crash_inside_train_leaves_vectors_and_label_that_the_next_write_brings_in_step(tmp_path, shapes_db, step):
    base, cat = shapes_db
    db = copy_db(base, tmp_path)
    died = run_cli("train", "--db", db, "--only", "fusion", "--epochs", "4", "--device", "cpu", "-q", crash=step)
    assert died.returncode == CRASH_STATUS, died.stderr
    engine = Engine(db)
    assert engine.consistency()["fusion_refit_pending"] is True
    assert engine.space().version in (0, 1)  # readers get a layer they can use meanwhile
    assert engine.ingest(cat).unchanged == 120  # any write command repairs first
    engine = Engine(db)
    ident = engine.store.fusion_identity()
    assert ident["version"] == 1 and not ident.get("pending")
    assert engine.consistency()["ok"]
    space = engine.space()
    rows = engine.store.list(
        limit=None, columns=["id", "text_vec", "image_vec", "image_scores", "audio_vec", "audio_scores", "fused_vec"]
    )
    for row, values in zip(rows, space.fusion_values(rows), strict=True):
        np.testing.assert_allclose(row["fused_vec"], values["fused_vec"], atol=1e-5)


def test_duplicate_rows_left_by_old_concurrent_writers_are_repaired(tmp_path, base_db):
    import pyarrow as pa

    db = copy_db(base_db[0], tmp_path)
    engine = Engine(db)
    tbl = engine.store.items()
    rows = tbl.search().where("id = 'birds/owl'").limit(None).to_arrow()
    tbl.add(pa.Table.from_pylist(rows.to_pylist(), schema=tbl.schema), on_bad_vectors="null")
    assert engine.store.duplicate_ids() == ["birds/owl"]
    assert engine.consistency()["duplicate_item_rows"] == 1
    assert engine.repair()["duplicate_rows"] == 1
    assert engine.store.count() == 5 and engine.store.duplicate_ids() == []


# --------------------------------------------------------------------------- readers see other writers


def test_a_long_lived_engine_sees_other_processes_and_survives_cleanup(tmp_path, base_db):
    db = copy_db(base_db[0], tmp_path)
    reader = Engine(db)
    assert reader.recommend("w1", 3).cold_start
    writer = run_py(
        f"""
        from datetime import timedelta
        from mmrec import Engine
        e = Engine({db!r})
        e.interact("w1", "birds/owl", "like")
        e.store.optimize(timedelta(0))  # every old version removed, under the reader's feet
        print("done", flush=True)
        """
    )
    out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    time.sleep(1.0)
    result = reader.recommend("w1", 3)
    assert not result.cold_start and result.strategy == "profile"
    assert reader.count() == 5 and reader.items(limit=2)
    assert reader.health_problem() is None


# --------------------------------------------------------------------------- forget


def test_forget_removes_the_user_from_every_file(tmp_path, base_db):
    db = copy_db(base_db[0], tmp_path)
    engine = Engine(db)
    secret = "alice-7f3e9d"
    for k, item in enumerate(items_of(db)):
        engine.interact(secret, item, "like", at=(T0 + timedelta(minutes=k)).isoformat())
        engine.interact("bob", item, "view", at=(T0 + timedelta(minutes=k)).isoformat())
    engine.store.optimize(timedelta(hours=1))  # compacted fragments and several versions, as in real use
    assert files_containing(Path(db), secret.encode())
    bob_before = profile_state(engine, "bob")
    out = run_cli("forget", secret, "--db", db, "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["events"] == 5 and report["profiles"] == 1 and report["found"]
    assert files_containing(Path(db), secret.encode()) == []
    fresh = Engine(db)
    assert fresh.users().profile(secret) is None
    assert fresh.recommend(secret, 3).cold_start
    assert profile_state(fresh, "bob") == bob_before
    assert fresh.store.count() == 5  # items are never touched
    for name in ("interactions", "users"):
        assert len(fresh.store.db.open_table(name).list_versions()) == 1
    assert fresh.consistency()["ok"]
    again = run_cli("forget", secret, "--db", db)
    assert again.returncode == 0 and "nothing removed" in again.stdout


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"ts": "9999-12-31T00:00:00Z"}, "in the future"),
        ({"ts": "1969-12-31T23:59:59Z"}, "before 1970"),
        ({"rating": "nan", "event": "rating"}, "outside 0–5"),
        ({"rating": "inf", "event": "rating"}, "outside 0–5"),
        ({"weight": "nan"}, "finite"),
        ({"weight": "-inf"}, "finite"),
        ({"user": "a\x1fb"}, "control characters"),
    ],
)
def test_bad_events_are_refused(row, reason):
    args = {"user": "u", "item": "i", "event": "view", "ts": "2026-01-01T00:00:00Z", **row}
    with pytest.raises(ValueError, match=reason):
        make_interaction(
            args["user"],
            args["item"],
            args["event"],
            rating=args.get("rating"),
            weight=args.get("weight"),
            ts=args["ts"],
        )


def test_a_future_event_cannot_freeze_a_profile_or_shrink_popular(tmp_path, base_db):
    db = copy_db(base_db[0], tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text("user,item,event,timestamp\nu,birds/owl,like,9999-12-31T00:00:00Z\nu,birds/owl,like,nonsense\n")
    out = run_cli("import-interactions", str(bad), "--db", db)
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "no row" in out.stderr
    assert "row 2: timestamp 9999-12-31" in out.stdout and "row 3:" in out.stdout
    assert Engine(db).users().interactions() is None  # nothing stored


def test_where_allows_one_condition_only_everywhere(tmp_path, base_db):
    engine = Engine(str(base_db[0]))
    hostile = "1=1; DROP TABLE items"
    for call in (
        lambda: engine.items(where=hostile),
        lambda: engine.count(where=hostile),
        lambda: engine.similar(item="birds/owl", where=hostile),
        lambda: engine.recommend("nobody", where=hostile),
    ):
        with pytest.raises(InvalidArgumentError, match="one SQL condition"):
            call()
    # a quoted ';' is a literal, not a second statement
    assert len(engine.items(where="title = 'a;b' OR has_text")) == len(engine.items(where="has_text")) > 0
    out = run_cli("items", "--db", str(base_db[0]), "--where", hostile)
    assert out.returncode == 1 and out.stderr.count("\n") == 1


def test_read_commands_on_a_missing_or_foreign_path_create_nothing(tmp_path):
    missing = tmp_path / "no-such-db"
    for cmd in (["items"], ["info"], ["recommend", "u"], ["similar", "--item", "x"], ["forget", "u"]):
        out = run_cli(*cmd, "--db", str(missing))
        assert out.returncode == 1 and out.stderr.count("\n") == 1, (cmd, out.stderr)
        assert "Traceback" not in out.stderr
    assert not missing.exists()
    a_file = tmp_path / "file.txt"
    a_file.write_text("not a database")
    out = run_cli("items", "--db", str(a_file))
    assert out.returncode == 1 and out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    with pytest.raises(StoreError, match="no database"):
        Engine(str(missing)).items()
    assert not missing.exists()
