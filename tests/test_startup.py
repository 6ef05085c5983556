"""Start-up in proportion to the work: what a command loads, asserted on what got loaded (not on timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from encoders.base import Encoder, EncoderIdentity, EncoderOutput
from encoders.lazy import LazyEncoders
from mmrec import Engine
from mmrec.errors import EncoderMismatchError

REPO = Path(__file__).resolve().parent.parent


def _tamper(db: str, modality: str) -> None:
    """Rewrite the items table as if ``modality``'s vectors had been made by other weights."""
    import pyarrow as pa

    from mmrec.store.items import Store

    store = Store(db)
    tbl = store.items()
    meta = json.loads(tbl.schema.metadata[b"mmrec.encoders"])
    meta[modality]["fingerprint"] = "0" * 16
    data = tbl.to_arrow()
    schema = pa.schema(data.schema, metadata={**tbl.schema.metadata, b"mmrec.encoders": json.dumps(meta).encode()})
    store.db.drop_table("items")
    store.db.create_table("items", schema=schema).add(data.cast(schema), on_bad_vectors="null")


# --------------------------------------------------------------------------- through the Engine


def test_a_no_op_reingest_loads_no_encoder_and_no_space(catalog, db, real_encoders):
    Engine(db).ingest(catalog)
    engine = Engine(db)
    report = engine.ingest(catalog)
    assert (report.added, report.updated, report.unchanged, report.wrote) == (0, 0, 5, False)
    assert engine.encoders().loaded() == set()
    assert engine._space is None  # neither the fusion layer nor the bridges were built
    # ... yet the identities that a weights file gives were checked (image and audio here; MiniLM's
    # fingerprint is of its loaded tensors, so it is checked when the model first runs)
    assert engine.encoders().check_without_loading() == {"image", "audio"}


def test_a_changed_text_loads_only_the_text_encoder(catalog, db, real_encoders):
    Engine(db).ingest(catalog)
    (catalog / "recipes" / "pasta.txt").write_text("Simmer the sauce for an hour before adding the pasta.")
    engine = Engine(db)
    report = engine.ingest(catalog)
    assert (report.updated, report.encoded["text"], report.encoded["image"]) == (1, 1, 0)
    assert engine.encoders().loaded() == {"text"}


def test_a_text_query_loads_only_the_text_encoder(catalog, db, real_encoders):
    Engine(db).ingest(catalog)
    engine = Engine(db)
    matches = engine.similar(text="a duck on a pond", k=2)
    assert matches[0].id == "birds/duck"
    assert engine.encoders().loaded() == {"text"}
    # an item query runs no model at all
    other = Engine(db)
    other.similar(item="birds/owl", k=2)
    assert other.encoders().loaded() == set()


def test_an_image_query_loads_the_image_encoder_and_the_cached_bridge_only(catalog, db, real_encoders, tmp_path):
    Engine(db, cache_dir=tmp_path / "cache").ingest(catalog)
    engine = Engine(db, cache_dir=tmp_path / "cache")  # the bridge was built (and cached) by the ingest
    engine.similar(image=catalog / "recipes" / "board.png", k=2)
    assert engine.encoders().loaded() == {"image"}


def test_a_mismatch_that_needs_the_model_is_caught_at_its_first_use(catalog, db, real_encoders):
    Engine(db).ingest(catalog)
    _tamper(db, "text")
    Engine(db).ingest(catalog)  # nothing to encode: MiniLM's identity needs its tensors, so no check yet
    with pytest.raises(EncoderMismatchError, match="text vectors made by"):
        Engine(db).similar(text="an owl", k=1)
    (catalog / "recipes" / "pasta.txt").write_text("Changed text: the text encoder must run now.")
    with pytest.raises(EncoderMismatchError, match="text vectors made by"):
        Engine(db).ingest(catalog)
    assert Engine(db).store.count() == 5  # refused before anything was written


# --------------------------------------------------------------------------- as processes


def _run(code: str, env_extra: dict[str, str] | None = None) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", **(env_extra or {})}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_help_imports_no_numpy():
    res = _run(
        "import contextlib, io, json, sys\n"
        "from mmrec.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        "    main(['--help'])\n"
        "print(json.dumps(sorted(m for m in ('numpy', 'lancedb', 'torch') if m in sys.modules)))\n"
    )
    assert res == []


def test_a_no_op_reingest_process_imports_no_model_library(catalog, db, real_encoders):
    Engine(db).ingest(catalog)
    res = _run(
        "import json, sys\n"
        "from mmrec.cli import main\n"
        f"rc = main(['ingest', {str(catalog)!r}, '--db', {db!r}, '--quiet', '--json'])\n"
        "heavy = ('torch', 'transformers', 'sentence_transformers', 'onnxruntime', 'torchvision')\n"
        "print(json.dumps({'rc': rc, 'imported': sorted(m for m in heavy if m in sys.modules)}))\n"
    )
    assert res == {"rc": 0, "imported": []}


# --------------------------------------------------------------------------- the mapping itself


class _Fake(Encoder):
    modality = "text"
    registry_name = "fake"

    def __init__(self, fingerprint: str = "f" * 16, cheap: bool = False) -> None:
        self.fingerprint, self.cheap, self.loads = fingerprint, cheap, 0

    @property
    def dim(self) -> int:
        return 2

    @property
    def identity(self) -> EncoderIdentity:
        self.loads += 1
        return EncoderIdentity("fake", "fake model", self.fingerprint, 2)

    def identity_without_loading(self) -> EncoderIdentity | None:
        return EncoderIdentity("fake", "fake model", self.fingerprint, 2) if self.cheap else None

    def prepare(self, item):
        return item

    def encode_prepared(self, batch):
        return EncoderOutput(np.ones((len(batch), 2), np.float32) / np.sqrt(2))


def _lazy(fake: _Fake, stored_fp: str = "f" * 16):
    checked: list[tuple[str, str]] = []

    def check(m: str, ident: EncoderIdentity) -> None:
        checked.append((m, ident.fingerprint))
        if ident.fingerprint != stored_fp:
            raise EncoderMismatchError(f"{m}: {ident.fingerprint} is not {stored_fp}")

    stored = {"text": EncoderIdentity("fake", "fake model", stored_fp, 2)}
    return LazyEncoders({"text": "fake"}, lambda spec, m: fake, stored, check), checked


def test_lazy_encoders_answer_from_the_stored_identity_and_check_once_at_first_use():
    fake = _Fake()
    encs, checked = _lazy(fake)
    enc = encs["text"]
    assert enc is encs["text"] and list(encs) == ["text"] and len(encs) == 1
    assert (enc.dim, enc.identity.fingerprint, fake.loads, encs.loaded()) == (2, "f" * 16, 0, set())
    enc.prepare("x")
    assert checked == []  # preprocessing needs no weights
    enc.encode(["a", "b"])
    enc.encode_batch(["c"])
    assert checked == [("text", "f" * 16)] and encs.loaded() == {"text"}
    assert encs.check_without_loading() == set()  # this one cannot tell without loading


def test_lazy_encoders_refuse_other_weights_before_encoding():
    encs, _ = _lazy(_Fake("e" * 16))
    with pytest.raises(EncoderMismatchError):
        encs["text"].encode(["a"])
    cheap, checked = _lazy(_Fake("e" * 16, cheap=True))
    with pytest.raises(EncoderMismatchError):
        cheap.check_without_loading()
    assert checked == [("text", "e" * 16)] and cheap["text"].inner.loads == 0


def test_library_versions_are_the_modules_own_without_importing_them():
    import onnx
    import onnxruntime
    import torch

    from encoders import onnx_cache

    expected = {"torch": torch.__version__, "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__}
    assert onnx_cache.library_versions() == expected
    res = _run(
        "import json, sys\nfrom encoders.onnx_cache import library_versions\n"
        "v = library_versions()\nprint(json.dumps([v, 'torch' in sys.modules, 'onnxruntime' in sys.modules]))\n"
    )
    assert res == [expected, False, False]


def test_fingerprints_are_remembered_per_file_state(tmp_path, monkeypatch):
    from encoders import onnx_cache

    monkeypatch.setenv(onnx_cache.CACHE_ENV, str(tmp_path / "cache"))
    f = tmp_path / "weights.bin"
    f.write_bytes(b"abc" * 1000)
    calls = []

    def compute() -> str:
        calls.append(1)
        return onnx_cache.hashlib.sha256(f.read_bytes()).hexdigest()[:16]

    first = onnx_cache.remembered(f, "file:16", compute)
    assert onnx_cache.remembered(f, "file:16", compute) == first and len(calls) == 1
    assert onnx_cache.weights_fingerprint(f) == first  # the same value as hashing the file
    f.write_bytes(b"abd" * 1001)  # another size (and mtime): hashed again
    assert onnx_cache.remembered(f, "file:16", compute) != first and len(calls) == 2


def test_imagenet_names_without_torchvision_are_torchvision_s():
    from torchvision.models import ResNet50_Weights

    from encoders.image_efficientnet import imagenet_categories

    assert imagenet_categories() == tuple(ResNet50_Weights.IMAGENET1K_V2.meta["categories"])
