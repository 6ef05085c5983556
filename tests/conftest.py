"""Shared fixtures. The real packaged models are loaded once per test session."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from media_factory import small_catalog  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "assets" / "demo"


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
