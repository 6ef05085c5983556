"""Operating the service: real `mmrec serve` processes on loopback ports.

Docs from the server alone, Prometheus metrics, request ids and JSON logs, config precedence, slow
clients (slowloris, stalled bodies), aborted uploads, SIGTERM during a slow request, error bodies
without server paths, /health, DELETE /users/{id}.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from conftest import DEMO, free_port

from mmrec import Engine

pytestmark = pytest.mark.skipif(not DEMO.is_dir(), reason="demo catalog not present")
pytest.importorskip("fastapi")
from fastapi.testclient import TestClient  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from mmrec.errors import InvalidArgumentError  # noqa: E402
from mmrec.service import create_app  # noqa: E402
from mmrec.service.settings import ServeSettings, load_settings, setting_keys  # noqa: E402

KEY = "ops-key"
MANIFEST = "/tmp/xyz/items.lance/_versions/3.manifest"


# ----------------------------------------------------------------------------- a real server


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without any MMREC_* setting of the machine running the tests, plus ``extra``."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("MMREC_")}, **extra}


class Server:
    """``python -m mmrec.cli serve`` in a subprocess on a free loopback port, stderr kept in a file."""

    def __init__(self, db: Path, log: Path, *flags: str, env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = log
        cmd = [sys.executable, "-m", "mmrec.cli", "serve", "--db", str(db), "--port", str(self.port), *flags]
        self._err = open(log, "wb")
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=self._err, env=clean_env(**(env or {})))

    def wait_ready(self, timeout: float = 300) -> Server:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"the server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base}/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        pytest.fail("the server did not become ready")

    def lines(self) -> list[str]:
        return self.log.read_text().splitlines()

    def records(self) -> list[dict]:
        """The JSON log records so far (every line must be one)."""
        return [json.loads(line) for line in self.lines() if line.strip()]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._err.close()
        return self.proc.returncode


@pytest.fixture(scope="module")
def server(service_db, tmp_path_factory) -> Iterator[Server]:
    """One JSON-logging server with metrics and short client timeouts, shared by the tests that only read."""
    log = tmp_path_factory.mktemp("ops-log") / "server.log"
    flags = ("--metrics", "--log-format", "json", "--header-timeout", "2", "--body-timeout", "2")
    srv = Server(service_db, log, *flags).wait_ready()
    yield srv
    assert srv.stop() == 0


def metric(text: str, name: str, **labels: str) -> float:
    """The value of one sample in a Prometheus text exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


# ----------------------------------------------------------------------------- docs


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if value and name in ("src", "href", "spec-url", "data-openapi-url"):
                self.refs.append(value)


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_and_every_asset_come_from_the_server(server, page):
    with httpx.Client(base_url=server.base, timeout=30) as c:
        r = c.get(page)
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "default-src 'self'" in r.headers["content-security-policy"]
        assert not re.search(r"https?://", r.text), "the page references another host"
        parser = _Refs()
        parser.feed(r.text)
        assert any(ref.endswith(".js") for ref in parser.refs) and any("openapi.json" in ref for ref in parser.refs)
        for ref in parser.refs:
            assert ref.startswith("/"), ref
            a = c.get(ref)
            assert a.status_code == 200 and len(a.content) > 0, ref
            if ref.endswith(".js"):
                assert "javascript" in a.headers["content-type"], ref
            elif ref.endswith(".css"):
                assert "text/css" in a.headers["content-type"], ref
        assert c.get("/openapi.json").json()["info"]["title"] == "mmrec"


# ----------------------------------------------------------------------------- metrics


def test_metrics_parse_and_the_request_counter_rises(server):
    with httpx.Client(base_url=server.base, timeout=30) as c:
        before = c.get("/metrics")
        assert before.status_code == 200 and before.headers["content-type"].startswith("text/plain")
        n0 = metric(before.text, "mmrec_http_requests_total", method="GET", route="/items", status="2xx")
        assert c.get("/items", params={"limit": 2}).status_code == 200
        assert c.get("/items/animals/cow").status_code == 200
        assert c.get("/items/no/such/item").status_code == 404
        after = c.get("/metrics").text
    assert metric(after, "mmrec_http_requests_total", method="GET", route="/items", status="2xx") == n0 + 1
    # Ids are folded into the route template: one series for every item.
    assert metric(after, "mmrec_http_requests_total", method="GET", route="/items/{item_id:path}", status="2xx") >= 1
    assert metric(after, "mmrec_http_requests_total", method="GET", route="/items/{item_id:path}", status="4xx") >= 1
    assert metric(after, "mmrec_http_errors_total", kind="not_found") >= 1
    assert metric(after, "mmrec_http_request_duration_seconds_count", method="GET", route="/items", status="2xx") >= 1
    assert metric(after, "mmrec_items") == 45
    assert metric(after, "mmrec_table_version", table="items") >= 1
    assert metric(after, "mmrec_data_readable") == 1
    assert metric(after, "mmrec_data_refresh_age_seconds") >= 0
    assert metric(after, "mmrec_recommender_info", model="profile") == 1
    assert metric(after, "mmrec_encoder_info", modality="text", encoder="minilm-l6-onnx") == 1
    assert metric(after, "mmrec_http_requests_in_flight") == 1  # the scrape itself
    assert metric(after, "process_resident_memory_bytes") > 0


def test_metrics_are_off_by_default_and_private_with_the_reads(service_db):
    with TestClient(create_app(str(service_db), warm=False)) as c:
        assert c.get("/metrics").status_code == 404
    with TestClient(create_app(str(service_db), api_key=KEY, warm=False, metrics=True)) as c:
        assert c.get("/metrics").status_code == 200  # reads are open: so are the metrics
    with TestClient(create_app(str(service_db), api_key=KEY, private=True, warm=False, metrics=True)) as c:
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers={"X-API-Key": KEY}).status_code == 200
        assert c.get("/metrics", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        assert c.get("/health").status_code == 200 and c.get("/docs").status_code == 200  # still open


# ----------------------------------------------------------------------------- request ids and logs


def test_request_id_round_trips_into_one_json_log_line(server):
    with httpx.Client(base_url=server.base, timeout=30) as c:
        r = c.get("/items", params={"limit": 1}, headers={"X-Request-ID": "trace-42.a"})
        assert r.headers["x-request-id"] == "trace-42.a"
        generated = c.get("/health").headers["x-request-id"]
        assert re.fullmatch(r"[0-9a-f]{32}", generated)
        # Not a sane token (spaces, too long): replaced, never echoed.
        bad = c.get("/health", headers={"X-Request-ID": "x" * 300}).headers["x-request-id"]
        assert bad != "x" * 300 and re.fullmatch(r"[0-9a-f]{32}", bad)
        c.get("/items/animals/cow", headers={"X-Request-ID": "trace-43"})
    time.sleep(0.3)
    records = server.records()  # every line of the log is one JSON object
    mine = [r for r in records if r.get("request_id") == "trace-42.a"]
    assert len(mine) == 1, mine
    line = mine[0]
    assert line["logger"] == "mmrec.access" and line["level"] == "info"
    assert (line["method"], line["route"], line["path"], line["status"]) == ("GET", "/items", "/items", 200)
    assert line["duration_ms"] > 0 and line["db_version"] >= 1 and "ts" in line
    item = next(r for r in records if r.get("request_id") == "trace-43")
    assert item["route"] == "/items/{item_id:path}" and item["path"] == "/items/animals/cow"
    assert any(r.get("request_id") == generated for r in records)
    assert not any("Traceback" in line for line in server.lines())


# ----------------------------------------------------------------------------- config


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mmrec.toml"
    path.write_text(text)
    return path


def test_config_precedence_flag_over_env_over_file_over_default(tmp_path):
    f = _toml(tmp_path, 'port = 8100\nthreads = 1\nheader_timeout = 3\nlog_format = "json"\nmetrics = true\n')
    env = {"MMREC_THREADS": "2", "MMREC_HEADER_TIMEOUT": "4", "MMREC_METRICS": "false", "MMREC_UNRELATED": "x"}
    s = load_settings({"threads": 3}, env, f)
    assert s.threads == 3  # flag > env > file
    assert s.header_timeout == 4.0 and s.metrics is False  # env > file
    assert s.port == 8100 and s.log_format == "json"  # file > default
    assert s.body_timeout == ServeSettings().body_timeout and s.db == ServeSettings().db  # default
    # Flags not given (None) leave the lower levels alone; an empty variable counts as unset.
    assert load_settings({"threads": None}, {"MMREC_THREADS": ""}, f).threads == 1
    # MMREC_CONFIG names the file when --config does not.
    assert load_settings({}, {"MMREC_CONFIG": str(f)}).port == 8100


@pytest.mark.parametrize(
    ("text", "env", "message"),
    [
        ("prot = 1\n", {}, "unknown key 'prot' in config file"),
        ('port = "8080"\n', {}, "mmrec.toml: port: expected an integer"),
        ("port = 0\n", {}, "mmrec.toml: port must be 1-65535"),
        ("private = true\n", {}, "--private needs an API key"),
        ("", {"MMREC_PORT": "eighty"}, "MMREC_PORT: expected an integer"),
        ("", {"MMREC_METRICS": "maybe"}, "MMREC_METRICS: expected true or false"),
        ("", {"MMREC_LOG_FORMAT": "xml"}, "MMREC_LOG_FORMAT must be one of text, json"),
        ("port = [\n", {}, "is not valid TOML"),
    ],
)
def test_bad_config_is_one_line_naming_the_source(tmp_path, text, env, message):
    f = _toml(tmp_path, text)
    with pytest.raises(InvalidArgumentError, match=re.escape(message)) as e:
        load_settings({}, env, f)
    assert "\n" not in str(e.value)
    if "unknown key" in message:
        assert all(k in str(e.value) for k in setting_keys())  # the valid keys are listed


def test_cli_reads_file_env_and_flags_and_refuses_unknown_keys(tmp_path, service_db):
    bad = _toml(tmp_path, "db = 'x'\nlog_fromat = 'json'\n")
    r = subprocess.run(
        [sys.executable, "-m", "mmrec.cli", "serve", "--config", str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean_env(),
    )
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "unknown key 'log_fromat'" in r.stderr and "log_format" in r.stderr and "header_timeout" in r.stderr

    # A real start: the settings it logs come from the flag, the variable and the file, in that order.
    port = free_port()
    good = _toml(
        tmp_path, f"db = '{service_db}'\nport = {port}\nthreads = 1\nheader_timeout = 3\nlog_format = 'json'\n"
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "mmrec.cli", "serve", "--config", str(good), "--threads", "3"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=clean_env(MMREC_THREADS="2", MMREC_HEADER_TIMEOUT="4"),
    )
    try:
        first = json.loads(proc.stderr.readline())
    finally:
        proc.kill()
        proc.wait()
    settings = first["settings"]
    assert (settings["db"], settings["port"], settings["threads"], settings["header_timeout"]) == (
        str(service_db),
        port,
        3,
        4.0,
    )
    assert settings["log_format"] == "json" and settings["body_timeout"] == 30.0


# ----------------------------------------------------------------------------- slow and broken clients


def test_slowloris_connections_are_closed_and_the_server_keeps_answering(server):
    """200 sockets sending their headers one byte at a time: all closed after the 2 s header timeout."""
    head = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slow\r\nX-Padding: " + b"a" * 200
    socks = []
    for _ in range(200):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.setblocking(False)
        socks.append(s)
    silent = socket.create_connection(("127.0.0.1", server.port), timeout=5)  # connects, never sends
    start = time.monotonic()
    closed: dict[int, float] = {}
    answered_408 = 0
    healthy: list[float] = []
    pos = 0
    while len(closed) < len(socks) and time.monotonic() - start < 15:
        for i, s in enumerate(socks):
            if i in closed:
                continue
            try:
                data = s.recv(4096)
            except BlockingIOError:
                data = None
            except OSError:
                data = b""
            if data is not None:
                answered_408 += data.startswith(b"HTTP/1.1 408")
                closed[i] = time.monotonic() - start
                continue
            try:
                s.send(head[pos % len(head) : pos % len(head) + 1])
            except (BlockingIOError, InterruptedError):
                pass
            except OSError:
                closed[i] = time.monotonic() - start
        pos += 1
        if pos % 10 == 0:  # the server still answers others promptly during the attack
            t0 = time.monotonic()
            assert httpx.get(f"{server.base}/health", timeout=5).status_code == 200
            healthy.append(time.monotonic() - t0)
        time.sleep(0.05)
    silent.settimeout(5)
    assert silent.recv(100) == b""  # closed without an answer: it sent nothing
    for s in [*socks, silent]:
        s.close()
    assert len(closed) == 200, f"only {len(closed)} of 200 slow connections were closed"
    assert max(closed.values()) < 2 + 4, max(closed.values())
    assert min(closed.values()) >= 1.5  # closed by the timeout, not at once
    assert answered_408 >= 190
    assert healthy and max(healthy) < 2
    text = httpx.get(f"{server.base}/metrics", timeout=10).text
    assert metric(text, "mmrec_http_errors_total", kind="header_timeout") >= 201


def _raw_post(port: int, path: str, ctype: str, length: int, first: bytes) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    s.sendall(
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: {ctype}\r\nContent-Length: {length}\r\n\r\n".encode()
        + first
    )
    return s


def _read_response(s: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            break
        body += chunk
    return int(lines[0].split()[1]), headers, body


def _multipart(field: str, name: str, content: bytes, boundary: str = "opsboundary") -> tuple[str, bytes]:
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; filename="{name}"\r\n'
        f"Content-Type: application/octet-stream\r\n\r\n".encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return f"multipart/form-data; boundary={boundary}", body


def test_stalled_body_is_408_and_aborted_upload_logs_no_traceback(server):
    png = (DEMO / "animals" / "owl.png").read_bytes()
    ctype, body = _multipart("image", "owl.png", png)
    # Stalled: half the body, then nothing for longer than the 2 s body timeout.
    s = _raw_post(server.port, "/similar", ctype, len(body), body[: len(body) // 2])
    status, headers, text = _read_response(s)
    s.close()
    assert status == 408 and headers.get("connection") == "close" and b"stalled" in text
    # Aborted: a tenth of a 2 MB upload, then the client goes away.
    big = body[:-20] + b"\0" * 2_000_000 + body[-20:]
    for _ in range(3):
        s = _raw_post(server.port, "/similar", ctype, len(big), big[:200_000])
        time.sleep(0.2)
        s.close()
    time.sleep(1.0)
    assert httpx.get(f"{server.base}/health", timeout=5).status_code == 200
    lines = server.lines()
    assert not any("Traceback" in line or "Exception in ASGI" in line for line in lines)
    records = [json.loads(line) for line in lines]
    aborted = [r for r in records if r.get("route") == "/similar" and r.get("status") == 499]
    assert len(aborted) == 3 and all("client disconnected" in r["message"] for r in aborted)
    assert any(r.get("route") == "/similar" and r.get("status") == 408 for r in records)


def test_sigterm_lets_the_request_in_progress_finish_then_exits_0(service_db, tmp_path):
    srv = Server(service_db, tmp_path / "stop.log", "--log-format", "json", "--shutdown-timeout", "10").wait_ready()
    png = (DEMO / "animals" / "owl.png").read_bytes()
    ctype, body = _multipart("image", "owl.png", png)
    slow = _raw_post(srv.port, "/similar", ctype, len(body), body[:1000])  # a slow upload, in progress
    stuck = _raw_post(srv.port, "/similar", ctype, len(body), body[:1000])  # one that never finishes
    time.sleep(0.5)
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    time.sleep(1.0)
    with pytest.raises(httpx.HTTPError):  # no new connections once stopping
        httpx.get(f"{srv.base}/health", timeout=2)
    slow.sendall(body[1000:])
    status, _, answer = _read_response(slow)
    slow.close()
    assert status == 200, answer
    assert json.loads(answer)["results"], "the request that was in progress got its full answer"
    code = srv.proc.wait(timeout=60)
    elapsed = time.monotonic() - t0
    stuck.settimeout(5)
    status, _, answer = _read_response(stuck)
    stuck.close()
    assert status == 503 and b"stopping" in answer  # cancelled at the shutdown timeout, told so
    assert code == 0, srv.log.read_text()[-2000:]
    assert elapsed < 10 + 15, elapsed  # bounded: the stuck request was cancelled after the shutdown timeout
    srv.stop()
    records = srv.records()
    assert any("SIGTERM" in r["message"] for r in records)
    assert any(r.get("route") == "/similar" and r.get("status") == 200 for r in records)
    assert any(r.get("route") == "/similar" and r.get("status") == 503 for r in records)
    assert not any("Traceback" in line or "Exception in ASGI" in line for line in srv.lines())


# ----------------------------------------------------------------------------- error bodies


def test_deeply_nested_json_is_422_not_500(service_db):
    nested = "[" * 100_000 + "]" * 100_000
    with TestClient(create_app(str(service_db), warm=False), raise_server_exceptions=False) as c:
        for path in ("/similar", "/interactions"):
            r = c.post(path, content=nested, headers={"Content-Type": "application/json"})
            assert r.status_code == 422, (path, r.text)
            assert "nested too deeply" in r.json()["detail"]


@pytest.mark.parametrize(
    ("exc", "status"),
    [
        (FileNotFoundError(2, "No such file or directory", MANIFEST), 503),
        (OSError(f"LanceError(IO): Generic LocalFileSystem error: Unable to open file {MANIFEST}"), 503),
        (RuntimeError(f"lance error: Not found: {MANIFEST}, /root/.cargo/registry/src/lance-table/src/io.rs:93"), 503),
        (ValueError(f"Table 'items' was not found: {MANIFEST}"), 503),
        (TypeError(f"a bug that mentions {MANIFEST}"), 500),
    ],
)
def test_leftover_errors_never_show_server_paths(service_db, monkeypatch, caplog, exc, status):
    engine = Engine(str(service_db))

    def fail(*args, **kwargs):
        raise exc

    monkeypatch.setattr(engine, "items", fail)
    monkeypatch.setattr(engine, "item", fail)
    with TestClient(create_app(engine, warm=False), raise_server_exceptions=False) as c:
        for url in ("/items", "/items/animals/cow"):
            r = c.get(url)
            assert r.status_code == status, r.text
            body = r.json()
            assert set(body) == {"detail"} and "\n" not in body["detail"]
            assert "/tmp" not in r.text and "_versions" not in r.text and "Traceback" not in r.text
            assert "xyz" not in r.text and r.headers.get("x-request-id")
    if status == 503:
        assert r.headers.get("retry-after") == "1"
        # A database failure is one log line, not a traceback (it is not a bug).
        assert not any(rec.exc_info for rec in caplog.records if rec.name == "mmrec.service")
    else:
        assert any(rec.exc_info for rec in caplog.records if rec.name == "mmrec.service")


def test_store_errors_do_not_name_the_database_location(service_db, monkeypatch):
    from mmrec.errors import StoreError

    engine = Engine(str(service_db))

    def fail(*args, **kwargs):
        raise StoreError(
            f"cannot read database {str(service_db)!r}: Not found: {service_db}/items.lance/_versions/9.manifest"
        )

    monkeypatch.setattr(engine, "items", fail)
    with TestClient(create_app(engine, warm=False)) as c:
        r = c.get("/items")
    assert r.status_code == 503 and str(service_db) not in r.text and "/_versions/" not in r.text
    assert r.json()["detail"].startswith("cannot read database")


# ----------------------------------------------------------------------------- health


def test_health_is_503_with_a_reason_when_the_database_cannot_be_read(service_db, monkeypatch):
    engine = Engine(str(service_db))
    with TestClient(create_app(engine, warm=False)) as c:
        ok = c.get("/health")
        assert ok.status_code == 200 and ok.json() == {"status": "ok", "version": ok.json()["version"], "ready": True}
        monkeypatch.setattr(engine, "health_problem", lambda: f"cannot read database {str(service_db)!r}: {MANIFEST}")
        time.sleep(1.1)  # the verdict is reused for a second
        bad = c.get("/health")
        assert bad.status_code == 503 and bad.headers["retry-after"] == "1"
        body = bad.json()
        assert body["status"] == "unavailable" and body["ready"] is False
        assert body["reason"].startswith("cannot read database") and "/tmp" not in body["reason"]
        assert str(service_db) not in bad.text
        calls = []
        monkeypatch.setattr(engine, "health_problem", lambda: calls.append(1))
        for _ in range(20):  # cheap: checked at most once per second however often it is polled
            c.get("/health")
        assert len(calls) <= 1


# ----------------------------------------------------------------------------- forgetting a user


def test_delete_user_needs_the_key_and_reports_what_it_removed(db_copy):
    app = create_app(str(db_copy), api_key=KEY, warm=False, metrics=True)
    auth = {"X-API-Key": KEY}
    with TestClient(app) as c:
        for item in ("animals/cow", "animals/sheep"):
            r = c.post("/interactions", json={"user": "erase/me", "item": item, "event": "like"}, headers=auth)
            assert r.status_code == 200, r.text
        assert c.delete("/users/erase/me").status_code == 401
        assert c.delete("/users/erase/me", headers={"X-API-Key": "wrong"}).status_code == 401
        r = c.delete("/users/erase/me", headers=auth)
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["user"] == "erase/me" and report["events"] == 2 and report["profiles"] == 1
        assert set(report) == {"user", "events", "profiles", "checkpoints_marked", "versions_removed", "seconds"}
        again = c.delete("/users/erase/me", headers=auth)
        assert again.status_code == 404 and "erase/me" in again.json()["detail"]
        recs = c.get("/users/erase/me/recommendations").json()
        assert recs["cold_start"] is True
        spec = c.get("/openapi.json").json()
        op = spec["paths"]["/users/{user_id}"]["delete"]
        assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("/ForgetResponse")
        assert "401" in op["responses"] and "404" in op["responses"]
        text = c.get("/metrics").text
    assert metric(text, "mmrec_job_duration_seconds_count", job="forget") == 2
    assert metric(text, "mmrec_recommendations_total", strategy=recs["strategy"]) == 1
