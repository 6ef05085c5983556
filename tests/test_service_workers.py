"""``mmrec serve --workers N``: the ``workers`` setting, and a real two-worker server.

The server helpers are those of ``tests/test_service_ops.py`` (a subprocess on a free loopback port).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import DEMO

from mmrec import Engine

pytestmark = pytest.mark.skipif(not DEMO.is_dir(), reason="demo catalog not present")
pytest.importorskip("fastapi")

from test_service_ops import KEY, Server, _multipart, _raw_post, _read_response, _toml, clean_env  # noqa: E402

from mmrec.errors import InvalidArgumentError  # noqa: E402
from mmrec.service.settings import ServeSettings, load_settings  # noqa: E402


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory, real_encoders) -> Path:
    db = tmp_path_factory.mktemp("workers") / "db"
    Engine(str(db)).ingest(DEMO)
    return db


def test_workers_setting_follows_the_precedence_and_refuses_bad_values(tmp_path):
    f = _toml(tmp_path, "workers = 3\n")
    assert ServeSettings().workers == 1  # one process unless asked (measured: no faster on 2 cores)
    assert load_settings({}, {}, f).workers == 3  # file > default
    assert load_settings({}, {"MMREC_WORKERS": "2"}, f).workers == 2  # env > file
    assert load_settings({"workers": 4}, {"MMREC_WORKERS": "2"}, f).workers == 4  # flag > env
    assert load_settings({"workers": 0}, {}).workers == 0  # 0: one per CPU core
    for flags, env, message in (
        ({"workers": -1}, {}, "--workers must be at least 1 (or 0 for one per CPU core), got -1"),
        ({}, {"MMREC_WORKERS": "two"}, "MMREC_WORKERS: expected an integer, got 'two'"),
    ):
        with pytest.raises(InvalidArgumentError, match=re.escape(message)) as e:
            load_settings(flags, env)
        assert "\n" not in str(e.value)
    r = subprocess.run(
        [sys.executable, "-m", "mmrec.cli", "serve", "--workers", "-1"],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
    )
    assert r.returncode == 1 and r.stderr.strip() == (
        "mmrec: error: --workers must be at least 1 (or 0 for one per CPU core), got -1"
    ), r.stderr


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    out = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_file.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            out.append(int(stat_file.parent.name))
    return out


@pytest.mark.slow  # two worker processes load the models: about 25 s on 2 cores
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_two_workers_serve_share_writes_time_out_slow_headers_and_stop_with_0(demo_db, tmp_path):
    db = tmp_path / "db"
    shutil.copytree(demo_db, db)
    flags = ("--workers", "2", "--log-format", "json", "--header-timeout", "2", "--shutdown-timeout", "10")
    srv = Server(db, tmp_path / "workers.log", *flags, env={"MMREC_API_KEY": KEY}).wait_ready()
    try:
        workers = [p for p in _children(srv.proc.pid) if b"spawn_main" in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(workers) == 2
        # The key reached the workers through the environment, never through a command line.
        assert not any(KEY.encode() in Path(f"/proc/{p}/cmdline").read_bytes() for p in [srv.proc.pid, *workers])
        with httpx.Client(base_url=srv.base, timeout=30) as c:
            assert c.get("/health").json()["ready"] is True
            similar = c.post("/similar", json={"item": "animals/cow", "k": 3}).json()["results"]
            assert len(similar) == 3 and "animals/cow" not in [r["id"] for r in similar]
            event = {"user": "w/1", "item": "animals/cow", "event": "like"}
            assert c.post("/interactions", json=event).status_code == 401  # each worker has the key
            assert c.post("/interactions", json=event, headers={"X-API-Key": KEY}).status_code == 200
            # A write made by one worker reaches the other's snapshot: every answer soon knows the user.
            deadline, answers = time.monotonic() + 15, []
            while time.monotonic() < deadline:
                with httpx.Client(base_url=srv.base, timeout=30) as fresh:  # new connections: either worker
                    answers = [fresh.get("/users/w/1/recommendations", params={"k": 3}).json() for _ in range(6)]
                if not any(a["cold_start"] for a in answers):
                    break
                time.sleep(0.5)
            assert answers and not any(a["cold_start"] for a in answers), answers
            assert all(a["items"] and "animals/cow" not in [i["id"] for i in a["items"]] for a in answers)
        # The header timeout holds in the workers too.
        slow_head = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        slow_head.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        status, _, _ = _read_response(slow_head)
        slow_head.close()
        assert status == 408
        # SIGTERM: the request in progress in a worker finishes, then the server exits 0.
        png = (DEMO / "animals" / "owl.png").read_bytes()
        ctype, body = _multipart("image", "owl.png", png)
        upload = _raw_post(srv.port, "/similar", ctype, len(body), body[:1000])
        time.sleep(0.5)
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(1.0)
        upload.sendall(body[1000:])
        status, _, answer = _read_response(upload)
        upload.close()
        assert status == 200 and json.loads(answer)["results"], answer
        assert srv.proc.wait(timeout=60) == 0, srv.log.read_text()[-2000:]
    finally:
        srv.stop()
    records = srv.records()
    assert sum("loading models" in r["message"] for r in records) == 2  # each worker warmed its own engine
    assert not any("Traceback" in line for line in srv.lines())


def test_worker_config_pickles_and_finds_each_workers_metrics():
    """A spawned worker gets the config by pickle; its header-timeout counter is the app it built."""
    import pickle
    from types import SimpleNamespace

    from fastapi import FastAPI
    from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

    from mmrec.service.server import TimedConfig, _metrics_hook

    config = TimedConfig("mmrec.service.app:app_from_env", factory=True, header_timeout=1.5, on_header_timeout=print)
    copy = pickle.loads(pickle.dumps(config))
    assert copy.header_timeout == 1.5 and copy.on_header_timeout is None  # this process's hook stays here
    app, hits = FastAPI(), []
    app.state.service = SimpleNamespace(metrics=SimpleNamespace(count_error=hits.append))
    _metrics_hook(ProxyHeadersMiddleware(app))()
    assert hits == ["header_timeout"]
    app.state.service = SimpleNamespace(metrics=None)
    assert _metrics_hook(ProxyHeadersMiddleware(app)) is None
