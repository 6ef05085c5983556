"""The single writer's lock, conflict retries and filter checks, without models."""

from __future__ import annotations

import threading
import time

import pytest

from mmrec.errors import InvalidArgumentError, WriterBusyError
from mmrec.store.sql import check_where
from mmrec.store.writer import LOCK_NAME, Writer, describe_lock, retry_conflicts


def test_the_lock_is_reentrant_in_one_thread_and_exclusive_across_threads(tmp_path):
    writer = Writer(str(tmp_path / "db"))
    order: list[str] = []
    with writer.hold("outer"):
        with writer.hold("inner"):  # an ingest's optimise inside the ingest
            assert (tmp_path / "db" / LOCK_NAME).exists()
            assert describe_lock(str(tmp_path / "db"))["what"] == "outer"

        def other() -> None:
            with writer.hold("other"):
                order.append("other")

        t = threading.Thread(target=other)
        t.start()
        time.sleep(0.2)
        order.append("outer done")
    t.join(timeout=5)
    assert order == ["outer done", "other"]
    assert describe_lock(str(tmp_path / "db")) is None  # released and cleared


def test_two_writers_of_one_database_exclude_each_other(tmp_path):
    a, b = Writer(str(tmp_path)), Writer(str(tmp_path), wait=False)
    with a.hold("ingest"):
        with pytest.raises(WriterBusyError, match="ingest"):
            with b.hold("import"):
                pass
    with b.hold("import"):  # free again
        pass


def test_a_waiting_writer_says_so_once(tmp_path):
    messages: list[str] = []
    a, b = Writer(str(tmp_path)), Writer(str(tmp_path), on_wait=messages.append)
    done = threading.Event()

    def hold() -> None:
        with a.hold("train"):
            done.wait(2)

    t = threading.Thread(target=hold)
    t.start()
    time.sleep(0.2)
    threading.Timer(0.3, done.set).start()
    with b.hold("import"):
        pass
    t.join()
    assert len(messages) == 1 and "waiting for another writer" in messages[0] and "train" in messages[0]


def test_remote_databases_lock_a_file_on_this_machine(tmp_path, monkeypatch):
    monkeypatch.setenv("MMREC_LOCK_DIR", str(tmp_path / "locks"))
    with Writer("s3://bucket/db").hold("ingest"):
        assert describe_lock("s3://bucket/db")["what"] == "ingest"
    assert describe_lock("s3://bucket/db") is None


def test_conflicts_are_retried_and_other_errors_are_not():
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] < 3:
            raise RuntimeError("Commit conflict for version 7: retryable")
        return "ok"

    assert retry_conflicts(flaky, base_delay=0.001) == "ok" and calls["n"] == 3

    def broken() -> None:
        calls["n"] += 1
        raise RuntimeError("schema mismatch")

    calls["n"] = 0
    with pytest.raises(RuntimeError, match="schema"):
        retry_conflicts(broken, base_delay=0.001)
    assert calls["n"] == 1


@pytest.mark.parametrize(
    ("where", "ok"),
    [
        ("has_image", True),
        ("title = 'a;b'", True),
        ("title = 'it''s; fine'", True),
        ("1=1; DROP TABLE items", False),
        ("has_text;", False),
        ("x\x00", False),
        ("a" * 2001, False),
    ],
)
def test_one_condition_only(where, ok):
    if ok:
        assert check_where(where) == where
    else:
        with pytest.raises(InvalidArgumentError):
            check_where(where)


def test_empty_filters_are_no_filter():
    assert check_where(None) is None and check_where("   ") is None
    with pytest.raises(InvalidArgumentError, match="string"):
        check_where(3)  # type: ignore[arg-type]
