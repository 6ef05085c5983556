"""The command line: output, JSON, and one-line errors with a non-zero exit."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from conftest import DEMO

from mmrec.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_is_instant_and_imports_no_heavy_library():
    code = "import sys, mmrec.cli; mmrec.cli.build_parser(); print(sorted(m for m in ('torch', 'lancedb', 'sentence_transformers', 'onnxruntime', 'PIL') if m in sys.modules))"
    t0 = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert time.perf_counter() - t0 < 5
    help_out = subprocess.run([sys.executable, "-m", "mmrec.cli", "--help"], capture_output=True, text=True)
    assert help_out.returncode == 0 and "ingest" in help_out.stdout


def test_ingest_items_info(capsys, catalog, db, real_encoders):
    code, out, _ = run(capsys, "ingest", str(catalog), "--db", db, "--quiet")
    assert code == 0
    assert "5 added" in out and "problems 0" in out
    code, out, _ = run(capsys, "ingest", str(catalog), "--db", db, "--json", "-q")
    summary = json.loads(out)
    assert summary["unchanged"] == 5 and summary["wrote"] is False
    code, out, _ = run(capsys, "items", "--db", db)
    assert code == 0 and "birds/owl" in out and "TIA" in out
    code, out, _ = run(capsys, "items", "--db", db, "--json", "--where", "has_audio")
    assert [r["id"] for r in json.loads(out)] == ["birds/owl", "sounds/rain"]
    code, out, _ = run(capsys, "items", "birds/owl", "--db", db)
    assert "Great horned owl" in out and "audio labels" in out
    code, out, _ = run(capsys, "items", "birds/owl", "--db", db, "--json")
    assert json.loads(out)["metadata"] == {"license": "CC0"}
    code, out, _ = run(capsys, "info", "--db", db)
    assert "items     5" in out and "minilm-l6" in out
    code, out, _ = run(capsys, "info", "--db", db, "--json")
    assert json.loads(out)["modalities"]["image"] == 3


@pytest.mark.parametrize(
    "argv, message",
    [
        (["ingest", "/definitely/not/here"], "does not exist"),
        (["items", "no/such/item"], "no item with id"),
        (["items", "--where", "nonsense ==="], "invalid filter"),
        (["items", "--limit", "-3"], "limit must be"),
        (["ingest", "CATALOG", "--threads", "0"], "--threads"),
        (["ingest", "CATALOG", "--image-encoder", "no-such"], "unknown encoder"),
        (["ingest", "CATALOG", "--image-encoder", "minilm-l6"], "encodes text, not image"),
    ],
)
def test_errors_are_one_line_and_non_zero(capsys, catalog, db, real_encoders, argv, message):
    if argv[0] == "items":
        assert main(["ingest", str(catalog), "--db", db, "-q"]) == 0
        capsys.readouterr()
    argv = [str(catalog) if a == "CATALOG" else a for a in argv]
    db_for_run = db if argv[0] == "items" or "--image-encoder" not in argv else db + "-new"
    code, out, err = run(capsys, *argv, "--db", db_for_run)
    assert code == 1
    assert err.startswith("mmrec: error:") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def test_items_on_an_empty_database(capsys, tmp_path):
    code, _, err = run(capsys, "items", "--db", str(tmp_path / "fresh"))
    assert code == 1 and "no items yet" in err


def test_strict_exit_code(capsys, tmp_path, db, real_encoders):
    (tmp_path / "cat").mkdir()
    (tmp_path / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    (tmp_path / "cat" / "ok.txt").write_text("fine")
    code, out, err = run(capsys, "ingest", str(tmp_path / "cat"), "--db", db, "--strict", "-q")
    assert code == 1 and "broken.png" in err and "2 added" in out
    code, _, _ = run(capsys, "ingest", str(tmp_path / "cat"), "--db", db, "-q")
    assert code == 0


def test_encoders_lists_the_registry(capsys):
    code, out, _ = run(capsys, "encoders")
    assert code == 0
    assert "minilm-l6" in out and "efficientnet-lite0" in out and "yamnet" in out and "(default)" in out


@pytest.mark.skipif(not DEMO.is_dir(), reason="demo catalog not present")
def test_demo(capsys, tmp_path, real_encoders):
    db = str(tmp_path / "demo-db")
    code, out, err = run(capsys, "demo", "--db", db, "-q")
    assert code == 0, err
    assert "problems 0" in out
    assert "animals/cow" in out
    # YAMNet hears the cow and the dog in the CC0 recordings
    lines = {line.split()[0]: line for line in out.splitlines() if line.startswith("  ")}
    assert "Cattle" in lines["animals/cow"] or "Moo" in lines["animals/cow"]
    code, out, _ = run(capsys, "demo", "--db", db, "-q")
    assert "0 added" in out
