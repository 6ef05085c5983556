"""The parts the benchmark catalog builders share (benchmarks/catalogs): the one catalog check behind
``build_catalog.py --verify`` and ``build_eval_catalogs.py`` validation, and the per-item guard that
leaves no half-written item behind. Tiny files made here; no package sources needed."""

from __future__ import annotations

import json
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "benchmarks"))
from catalogs import common  # noqa: E402
from catalogs.verify import validate_catalog, verify_catalog  # noqa: E402

sf = pytest.importorskip("soundfile")
Image = pytest.importorskip("PIL.Image")


def _item(root: Path, key: str, seconds: float = 1.5, category: str | None = None) -> Path:
    """One image + audio + text item with a sidecar that both kinds of catalog accept."""
    folder = root / key.split("/")[0]
    folder.mkdir(parents=True, exist_ok=True)
    base = folder / key.split("/")[1]
    Image.new("RGB", (16, 16), (200, 30, 30)).save(base.with_suffix(".png"))
    t = np.arange(int(8000 * seconds)) / 8000
    sf.write(base.with_suffix(".wav"), (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32), 8000)
    base.with_suffix(".txt").write_text("A red square.\n", encoding="utf-8")
    meta = {"title": "Red", "category": category or key.split("/")[0], "tags": ["red"], "keywords": ["red"]}
    base.with_suffix(".json").write_text(json.dumps(meta), encoding="utf-8")
    return base


MODALITIES = ["image", "audio", "text"]


def test_a_complete_catalog_passes_both_checks(tmp_path):
    _item(tmp_path, "animals/cat")
    _item(tmp_path, "music/piano")
    assert verify_catalog(str(tmp_path)) == 0
    assert validate_catalog(str(tmp_path), MODALITIES) == []


def test_a_missing_file_is_named_with_what_was_expected(tmp_path):
    _item(tmp_path, "animals/cat").with_suffix(".wav").unlink()
    _item(tmp_path, "music/piano")
    assert validate_catalog(str(tmp_path), MODALITIES) == ["animals/cat: 0 audio file(s), expected 1"]
    assert verify_catalog(str(tmp_path)) == 1
    # an audio-free catalog (openclipart, openmoji) does not ask for one
    assert validate_catalog(str(tmp_path), ["image", "text"]) == ["music/piano: 1 audio file(s), expected 0"]


def test_each_catalog_keeps_its_own_rules(tmp_path, capsys):
    """The media catalog wants 0.9-41 s clips; the labelled one takes any decodable sound but wants
    the sidecar's category to be the item's folder."""
    short = _item(tmp_path, "animals/cat", seconds=0.5)
    _item(tmp_path, "music/piano", category="animals")
    problems = validate_catalog(str(tmp_path), MODALITIES)
    assert problems == [f"{tmp_path / 'music' / 'piano.json'}: category 'animals' is not its folder"]
    capsys.readouterr()
    assert verify_catalog(str(tmp_path)) == 1
    logged = capsys.readouterr().out
    assert "1 problem(s)" in logged
    assert f"{short.with_suffix('.wav')}: suspicious audio (duration 0.50 s)" in logged


def test_a_bad_sidecar_and_a_stray_file_are_reported(tmp_path):
    base = _item(tmp_path, "animals/cat")
    base.with_suffix(".json").write_text("{not json", encoding="utf-8")
    (tmp_path / "animals" / "cat.xyz").write_bytes(b"?")
    problems = validate_catalog(str(tmp_path), MODALITIES)
    assert problems[0] == f"animals/cat: unexpected files [{str(tmp_path / 'animals' / 'cat.xyz')!r}]"
    assert problems[1].startswith(f"{base.with_suffix('.json')}: bad sidecar: ")
    assert len(problems) == 2


def test_a_failed_item_leaves_no_files(tmp_path):
    def work(written: list[str]) -> dict:
        p = tmp_path / "half.png"
        p.write_bytes(b"x")
        written.append(str(p))
        raise ValueError("bad svg")

    assert common.guarded(5, work) == {"ok": False, "reason": "ValueError: bad svg"}
    assert list(tmp_path.iterdir()) == []


def test_an_item_over_its_time_is_stopped_and_removed(tmp_path):
    def work(written: list[str]) -> dict:
        p = tmp_path / "slow.png"
        p.write_bytes(b"x")
        written.append(str(p))
        time.sleep(5)
        return {"ok": True}

    # the handler the worker processes install (common.worker_init), here for this test only
    previous = signal.signal(signal.SIGALRM, common.on_alarm)
    try:
        t0 = time.monotonic()
        assert common.guarded(1, work) == {"ok": False, "reason": "timeout"}
        assert time.monotonic() - t0 < 4
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert list(tmp_path.iterdir()) == []
