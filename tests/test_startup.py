"""Start-up in proportion to the work: what a command loads, asserted on what got loaded (not on timing)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from unittest.mock import Mock, patch

import numpy as np
import pytest

import mmrec.ingest.pipeline as pipeline
import mmrec.ingest.unchanged as unchanged
from encoders.base import Encoder, EncoderIdentity, EncoderOutput
from encoders.lazy import LazyEncoders
from mmrec import Engine
from mmrec.config import EncoderConfig
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
    # ... yet every identity was checked from the weights files (the ONNX exports' and YAMNet's)
    assert engine.encoders().check_without_loading() == {"text", "image", "audio"}


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
    torch_text = EncoderConfig(text="minilm-l6")  # its fingerprint is of its loaded tensors
    Engine(db, encoders=torch_text).ingest(catalog)
    _tamper(db, "text")
    Engine(db).ingest(catalog)  # nothing to encode: MiniLM's identity needs its tensors, so no check yet
    with pytest.raises(EncoderMismatchError, match="text vectors made by"):
        Engine(db).similar(text="an owl", k=1)
    (catalog / "recipes" / "pasta.txt").write_text("Changed text: the text encoder must run now.")
    with pytest.raises(EncoderMismatchError, match="text vectors made by"):
        Engine(db).ingest(catalog)
    assert Engine(db).store.count() == 5  # refused before anything was written
    # the ONNX export's identity is a hash of its file: a tampered database is caught before any model runs
    other = str(Path(db).parent / "onnx-db")
    Engine(other).ingest(catalog)
    _tamper(other, "text")
    engine = Engine(other)
    with pytest.raises(EncoderMismatchError, match="text vectors made by"):
        engine.ingest(catalog)
    assert engine.encoders().loaded() == set()


# --------------------------------------------------------------------------- defaults and old databases


def test_a_new_database_gets_the_onnx_encoders_and_the_pretrained_layer(catalog, db, real_encoders):
    engine = Engine(db)
    engine.ingest(catalog)
    specs = {m: s["spec"] for m, s in engine.store.encoder_specs().items()}
    assert specs == {"text": "minilm-l6-onnx", "image": "efficientnet-lite0-onnx", "audio": "yamnet"}
    from fusion.pretrained import DEFAULT_PRETRAINED

    assert engine.store.fusion_identity()["pretrained"] == DEFAULT_PRETRAINED  # same vectors as it was trained on
    assert engine.similar(text="a duck on a pond", k=1)[0].id == "birds/duck"


def test_a_database_made_with_the_torch_encoders_keeps_them(catalog, db, real_encoders):
    from encoders.image_efficientnet import EfficientNetLite0ImageEncoder
    from encoders.text_sentence_transformers import MiniLMTextEncoder
    from fusion.pretrained import DEFAULT_PRETRAINED

    Engine(db, encoders=EncoderConfig(text="minilm-l6", image="efficientnet-lite0")).ingest(catalog)
    engine = Engine(db)  # no encoders asked for: the stored ones
    assert engine.encoder_specs() == {"text": "minilm-l6", "image": "efficientnet-lite0", "audio": "yamnet"}
    assert engine.store.fusion_identity()["pretrained"] == DEFAULT_PRETRAINED
    assert engine.similar(text="a duck on a pond", k=1)[0].id == "birds/duck"
    (catalog / "birds" / "duck.txt").write_text("A mallard duck and her ducklings on a village pond.")
    assert engine.ingest(catalog).updated == 1
    encs = engine.encoders()
    assert isinstance(encs["text"].inner, MiniLMTextEncoder)
    assert isinstance(encs["image"].inner, EfficientNetLite0ImageEncoder)
    assert type(encs["image"].inner) is EfficientNetLite0ImageEncoder  # not its ONNX subclass
    with pytest.raises(EncoderMismatchError, match="use a new --db"):  # the defaults are not forced on it
        Engine(db, encoders=EncoderConfig()).encoders()


# --------------------------------------------------------------------------- a no-op re-ingest without the database


def test_an_unchanged_catalog_is_answered_without_opening_the_database(catalog, db, tmp_path, real_encoders):
    cache = tmp_path / "cache"
    first = Engine(db, cache_dir=cache).ingest(catalog)
    # a run that wrote keeps what the next run would say (its versions read while it still held the writer)
    assert first.added == 5 and len(list((cache / "ingest").glob("*.json"))) == 1
    engine = Engine(db, cache_dir=cache)
    after_write = engine.ingest(catalog)
    assert engine.store._db is None and engine._encoders is None  # neither LanceDB nor an encoder was opened
    for kept in (cache / "ingest").glob("*.json"):
        kept.unlink()
    second = Engine(db, cache_dir=cache).ingest(catalog)  # the full no-op run: kept
    engine = Engine(db, cache_dir=cache)
    third = engine.ingest(catalog)
    assert engine.store._db is None and engine._encoders is None
    same = {"seconds": 0, "items_per_second": 0}
    assert third.to_dict() | same == second.to_dict() | same == after_write.to_dict() | same
    # a changed file: the key no longer matches, the run sees the change (and walks the catalog's stats once)
    (catalog / "recipes" / "pasta.txt").write_text("Bake the pasta with cheese for twenty minutes.")
    engine = Engine(db, cache_dir=cache)
    walks = Mock(wraps=unchanged.catalog_signature)
    with patch.object(unchanged, "catalog_signature", walks), patch.object(pipeline, "catalog_signature", walks):
        assert engine.ingest(catalog).updated == 1 and engine.store._db is not None
    assert walks.call_count == 1
    Engine(db, cache_dir=cache).ingest(catalog)  # kept again
    # a write to the database by anything else (an interaction here): the versions moved
    Engine(db, cache_dir=cache).interact("ann", "birds/owl", "like")
    engine = Engine(db, cache_dir=cache)
    assert engine.ingest(catalog).unchanged == 5 and engine.store._db is not None
    # a file gone, a new file: seen
    Engine(db, cache_dir=cache).ingest(catalog)
    (catalog / "sounds" / "rain.flac").unlink()
    (catalog / "sounds" / "rain.md").unlink()
    report = Engine(db, cache_dir=cache).ingest(catalog)
    assert (report.missing, report.unchanged) == (1, 4)
    (catalog / "birds" / "gull.txt").write_text("A gull over the harbour.")
    assert Engine(db, cache_dir=cache).ingest(catalog).added == 1
    # other encoders asked for: the full run, which refuses them as before
    Engine(db, cache_dir=cache).ingest(catalog)
    with pytest.raises(EncoderMismatchError):
        Engine(db, cache_dir=cache, encoders=EncoderConfig(text="minilm-l6-int8")).ingest(catalog)


def test_a_run_during_which_the_database_changed_is_not_kept(catalog, db, tmp_path, real_encoders):
    from mmrec.ingest.report import IngestReport
    from mmrec.ingest.unchanged import UnchangedMemo, catalog_signature

    Engine(db).ingest(catalog)
    memo = UnchangedMemo(tmp_path / "cache", db, catalog, prune=False)
    signature = catalog_signature(memo.catalog)
    Engine(db).interact("ann", "birds/owl", "like")  # another writer commits while "the run" goes on
    report = IngestReport(catalog=str(catalog), db=db, unchanged=5)
    assert memo.remember(signature, report, {}) is False
    fresh = UnchangedMemo(tmp_path / "cache", db, catalog, prune=False)
    assert fresh.remember(signature, report, {}) is True and fresh.report(None) is not None
    (catalog / "birds" / "owl.txt").touch()  # only the modification time: the key is the stat, as the plan's
    assert UnchangedMemo(tmp_path / "cache", db, catalog, prune=False).report(None) is None


def test_table_versions_read_both_manifest_namings(tmp_path):
    from mmrec.ingest.unchanged import table_versions

    old, new = tmp_path / "a.lance" / "_versions", tmp_path / "b.lance" / "_versions"
    old.mkdir(parents=True)
    new.mkdir(parents=True)
    for v in (1, 2, 10):
        (old / f"{v}.manifest").write_bytes(b"x" * v)
        (new / f"{(1 << 64) - 1 - v:020d}.manifest").write_bytes(b"y" * v)
    (new / "latest_version_hint.json").write_text("{}")
    assert [row[:3] for row in table_versions(tmp_path)] == [["a.lance", 10, 10], ["b.lance", 10, 10]]
    assert table_versions(tmp_path / "missing") is None


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
    # that run was kept: the next one opens no database either (the CLI uses the default cache folder)
    res = _run(
        "import json, sys\n"
        "from mmrec.cli import main\n"
        f"rc = main(['ingest', {str(catalog)!r}, '--db', {db!r}, '--quiet', '--json'])\n"
        "heavy = ('torch', 'onnxruntime', 'lancedb', 'lance', 'pyarrow', 'mmrec.engine')\n"
        "print(json.dumps({'rc': rc, 'imported': sorted(m for m in heavy if m in sys.modules)}))\n"
    )
    assert res == {"rc": 0, "imported": []}


def test_a_text_query_process_imports_no_torch(catalog, db, real_encoders):
    Engine(db).ingest(catalog)  # default encoders: ONNX, and the pretrained layer read by NumPy
    res = _run(
        "import contextlib, io, json, sys\n"
        "from mmrec.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    rc = main(['similar', '--text', 'a duck on a pond', '--db', {db!r}, '-k', '1', '--json'])\n"
        "heavy = ('torch', 'transformers', 'sentence_transformers', 'onnxruntime', 'PIL.Image')\n"
        "print(json.dumps({'rc': rc, 'top': json.loads(out.getvalue())[0]['id'],\n"
        "                  'imported': sorted(m for m in heavy if m in sys.modules),\n"
        "                  'override_checks': getattr(sys.modules.get('overrides'), '__file__', None) is not None}))\n"
    )
    # lancedb's signature checks (the `overrides` package) are skipped in CLI processes on 3.11, as lancedb
    # itself skips them on 3.12+: the real package (a file) is not what lancedb got
    assert res == {"rc": 0, "top": "birds/duck", "imported": ["onnxruntime"], "override_checks": False}


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
