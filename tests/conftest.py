"""Shared fixtures. The real packaged models are loaded once per test session."""

from __future__ import annotations

import socket
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from media_factory import small_catalog  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "assets" / "demo"


def free_port() -> int:
    """A loopback port that was free a moment ago (the caller binds it next): for the servers tests start."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def real_encoders():
    """The default encoders, shared by every Engine in the session."""
    from encoders.registry import DEFAULT_ENCODERS, shared_encoder

    return {m: shared_encoder(spec, m) for m, spec in DEFAULT_ENCODERS.items()}


@pytest.fixture
def catalog(tmp_path: Path) -> Path:
    return small_catalog(tmp_path / "catalog")


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "db")


@pytest.fixture(scope="session")
def service_db(tmp_path_factory, real_encoders) -> Path:
    """The demo catalog ingested once for the service tests (tests/test_service*.py read it; writers copy it)."""
    from mmrec import Engine

    path = tmp_path_factory.mktemp("svc") / "db"
    Engine(str(path)).ingest(DEMO)
    return path


@pytest.fixture(scope="module")
def client(service_db):
    """The service tests' read-only client on :func:`service_db`, with an API key (writes need it, reads do not)."""
    from fastapi.testclient import TestClient
    from service_helpers import KEY

    from mmrec.service import create_app

    with TestClient(create_app(str(service_db), api_key=KEY)) as c:
        yield c


@pytest.fixture
def db_copy(service_db, tmp_path):
    """A copy of :func:`service_db` that a service test may write to."""
    import shutil

    copy = tmp_path / "db"
    shutil.copytree(service_db, copy)
    return copy
