"""ONNX and int8 encoders: exports cached and reused, vectors close to fp32, databases that refuse to mix.

The contract tests (``test_encoder_contract.py``) run these encoders like every other; here is what is
particular to them. The shared instances use the default cache folder (``~/.cache/mmrec/onnx``), so a
session exports each model once and later sessions reuse the files; the tests of the cache itself use
a folder of their own.
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from conftest import DEMO
from media_factory import pattern_image

from encoders import shared_encoder
from encoders.onnx_cache import cached_model, model_fingerprint, recipe_hash

TEXTS = [
    "an owl hooting at night",
    "boil pasta with tomato sauce and basil",
    "a violin concerto in D major",
    "a red sports car on a mountain road",
]


def _tiny_onnx() -> bytes:
    """A one-node ONNX model (Identity), so that the cache's canonicalisation has a real file to read."""
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "tiny", [x], [y])
    return helper.make_model(graph).SerializeToString()


def test_cached_model_is_built_once_per_recipe(tmp_path, monkeypatch):
    monkeypatch.setenv("MMREC_CACHE", str(tmp_path))
    calls = []

    def build(path):
        calls.append(path)
        path.write_bytes(_tiny_onnx())

    recipe = {"model": "m", "quantisation": {"weight_type": "QUInt8"}}
    first = cached_model("m-int8", recipe, build)
    again = cached_model("m-int8", dict(recipe), build)
    assert first == again and len(calls) == 1
    assert first.parent == tmp_path / "onnx" and recipe_hash(recipe) in first.name
    other = cached_model("m-int8", dict(recipe, quantisation=None), build)
    assert other != first and len(calls) == 2
    # no temporary file is left behind, and the file is readable by others sharing the cache
    assert sorted(p.name for p in (tmp_path / "onnx").iterdir()) == sorted([first.name, other.name])
    assert os.stat(first).st_mode & 0o044 == 0o044
    # the identity names the bytes and the recipe
    assert model_fingerprint(first, recipe) != model_fingerprint(first, dict(recipe, quantisation=None))


def test_a_failed_export_leaves_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("MMREC_CACHE", str(tmp_path))

    def build(path):
        path.write_bytes(b"half a model")
        raise RuntimeError("exporter crashed")

    with pytest.raises(RuntimeError, match="crashed"):
        cached_model("broken", {"x": 1}, build)
    assert list((tmp_path / "onnx").iterdir()) == []


def test_an_exported_model_is_reused_by_a_new_encoder(tmp_path, monkeypatch):
    """The second use loads the cached file: exporting again would fail here."""
    import encoders.image_onnx as image_onnx
    from encoders import create_encoder

    monkeypatch.setenv("MMREC_CACHE", str(tmp_path))
    first = create_encoder("efficientnet-lite0-onnx")
    ident = first.identity
    path = first.onnx_path
    assert path is not None and path.parent == tmp_path / "onnx"
    stamp = os.stat(path).st_mtime_ns

    def no_export(*args, **kwargs):
        raise AssertionError("exported again instead of reusing the cached file")

    monkeypatch.setattr(image_onnx, "_export_fp32", no_export)
    second = create_encoder("efficientnet-lite0-onnx")
    assert second.identity == ident and second.onnx_path == path
    assert os.stat(path).st_mtime_ns == stamp
    img = [pattern_image("stripes")]
    np.testing.assert_array_equal(first.encode(img), second.encode(img))


def test_onnx_fp32_matches_torch_and_int8_stays_close():
    torch_text, onnx_text, int8_text = (
        shared_encoder(n, "text") for n in ("minilm-l6", "minilm-l6-onnx", "minilm-l6-int8")
    )
    ref = torch_text.encode(TEXTS)
    np.testing.assert_allclose(onnx_text.encode(TEXTS), ref, atol=1e-4)
    assert ((int8_text.encode(TEXTS) * ref).sum(1) > 0.97).all()  # measured 0.99 mean on the demo texts

    images = [pattern_image("stripes"), pattern_image("checker", (300, 200)), pattern_image("gradient")]
    torch_img, onnx_img = (
        shared_encoder("efficientnet-lite0", "image"),
        shared_encoder("efficientnet-lite0-onnx", "image"),
    )
    ref_out = torch_img.encode_batch(images)
    out = onnx_img.encode_batch(images)
    np.testing.assert_allclose(out.vectors, ref_out.vectors, atol=1e-4)
    np.testing.assert_allclose(out.class_scores, ref_out.class_scores, atol=1e-4)
    # int8 on real pictures (synthetic stripes are far from ImageNet, where int8 errs most)
    from PIL import Image

    photos = [Image.open(DEMO / p).convert("RGB") for p in ("animals/cat.png", "food/pizza.png", "music/violin.png")]
    ref_out = torch_img.encode_batch(photos)
    int8 = shared_encoder("efficientnet-lite0-int8", "image").encode_batch(photos)
    assert int8.class_scores is not None and int8.class_scores.shape == (3, 1000)
    assert (int8.vectors * ref_out.vectors).sum(1).mean() > 0.85  # measured 0.93 mean on openclipart


def test_identities_name_the_quantised_weights():
    idents = {n: shared_encoder(n, "text").identity for n in ("minilm-l6", "minilm-l6-onnx", "minilm-l6-int8")}
    assert len({i.fingerprint for i in idents.values()}) == 3
    assert "int8" in idents["minilm-l6-int8"].model
    image = {n: shared_encoder(n, "image").identity for n in ("efficientnet-lite0-onnx", "efficientnet-lite0-int8")}
    assert image["efficientnet-lite0-onnx"].fingerprint != image["efficientnet-lite0-int8"].fingerprint


@pytest.mark.parametrize("built, reopened", [("minilm-l6-int8", "minilm-l6"), ("minilm-l6", "minilm-l6-int8")])
def test_int8_and_fp32_databases_refuse_to_mix(catalog, db, real_encoders, built, reopened):
    from mmrec import Engine
    from mmrec.config import EncoderConfig
    from mmrec.errors import EncoderMismatchError

    report = Engine(db, encoders=EncoderConfig(text=built)).ingest(catalog)
    assert report.encoded["text"] > 0
    # by name: a new --text-encoder on an existing database
    with pytest.raises(EncoderMismatchError, match="use a new --db"):
        Engine(db, encoders=EncoderConfig(text=reopened)).encoders()
    # by identity: vectors of the other weights are refused even where the name would be accepted
    store = Engine(db).store
    with pytest.raises(EncoderMismatchError, match="holds text vectors made by"):
        store.check_encoders({"text": shared_encoder(reopened, "text").identity})
    store.check_encoders({"text": shared_encoder(built, "text").identity})  # its own identity is fine


def test_an_encoder_that_declares_the_same_vectors_gives_them():
    """``same_vectors_as`` is checked on real inputs for every registered encoder that declares it."""
    from PIL import Image

    from encoders.registry import ENCODERS, list_encoders

    photos = [Image.open(DEMO / p).convert("RGB") for p in ("animals/cat.png", "food/pizza.png", "music/violin.png")]
    inputs = {"text": TEXTS, "image": photos + [pattern_image("checker", (300, 200))]}
    declared = {n: ENCODERS.get(n).same_vectors_as for n in list_encoders() if ENCODERS.get(n).same_vectors_as}
    assert declared == {"minilm-l6-onnx": "minilm-l6", "efficientnet-lite0-onnx": "efficientnet-lite0"}
    for name, other in declared.items():
        modality = ENCODERS.get(name).modality
        enc, ref = shared_encoder(name, modality), shared_encoder(other, modality)
        a, b = enc.encode_batch(inputs[modality]), ref.encode_batch(inputs[modality])
        assert (a.vectors * b.vectors).sum(1).min() >= 0.9999, name
        if b.class_scores is not None:  # the bridges read class scores: those must agree too
            np.testing.assert_allclose(a.class_scores, b.class_scores, atol=1e-4)
        assert enc.vector_identity() == ref.identity and enc.identity != ref.identity
    for name in ("minilm-l6-int8", "efficientnet-lite0-int8"):  # int8 vectors differ: their own identity
        enc = shared_encoder(name, ENCODERS.get(name).modality)
        assert enc.same_vectors_as is None and enc.vector_identity() == enc.identity


def test_the_pretrained_layer_serves_fp32_onnx_but_not_int8(real_encoders):
    from fusion.pretrained import DEFAULT_PRETRAINED
    from mmrec.space import SharedSpace

    onnx = {m: shared_encoder(s, m) for m, s in (("text", "minilm-l6-onnx"), ("image", "efficientnet-lite0-onnx"))}
    space = SharedSpace.initial({**real_encoders, **onnx})
    assert space.pretrained == DEFAULT_PRETRAINED and space.note is None
    int8 = SharedSpace.initial({**real_encoders, "text": shared_encoder("minilm-l6-int8", "text")})
    assert int8.pretrained is None and "minilm-l6-int8" in (int8.note or "")
