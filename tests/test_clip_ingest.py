"""A database whose text and image encoders are one CLIP model (open_clip), end to end.

No CLIP weights can be downloaded here, so a tiny open_clip architecture is
saved to disk and loaded back through the same spec users give
(``--clip ARCH//path/to/checkpoint.pt``).
"""

from __future__ import annotations

import json

import numpy as np
from tiny_clip import session_checkpoint

from mmrec import Engine
from mmrec.cli import main


def clip_spec() -> str:
    return session_checkpoint()[0]  # "ARCH//tmp/.../tiny-clip.pt", as a user writes it after --clip


def test_ingest_and_search_with_a_clip_pair(capsys, catalog, db, real_encoders):
    spec = clip_spec()
    assert main(["ingest", str(catalog), "--db", db, "--clip", spec, "-q"]) == 0
    capsys.readouterr()
    engine = Engine(db)
    encs = engine.encoder_specs()
    assert encs["text"] == f"open-clip-text:{spec}" and encs["image"] == f"open-clip-image:{spec}"
    space = engine.space()
    # CLIP images already live in the CLIP text space: no ConSE bridge for them; audio is still bridged
    assert space.aligned("image") and not space.aligned("audio")
    duck = engine.item("birds/duck", vectors=True)
    np.testing.assert_allclose(duck["image_shared"], duck["image_vec"], atol=1e-5)  # untrained head = identity
    assert len(duck["fused_vec"]) == engine.encoders()["text"].dim
    # the audio bridge uses the CLIP text tower for the AudioSet class names
    assert space.bridge("audio").class_embeddings.shape == (521, engine.encoders()["text"].dim)
    assert (
        main(["similar", "--db", db, "--image", str(catalog / "birds" / "duck.jpg"), "--modality", "image", "--json"])
        == 0
    )
    top = json.loads(capsys.readouterr().out)[0]
    assert top["id"] == "birds/duck" and top["score"] > 0.999
    assert main(["info", "--db", db, "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["encoders"]["image"]["model"].startswith("open_clip")


def test_clip_preset_cannot_be_mixed_with_explicit_encoders(capsys, catalog, db):
    code = main(
        ["ingest", str(catalog), "--db", db, "--clip", "ViT-B-32/openai", "--image-encoder", "efficientnet-lite0"]
    )
    assert code == 1 and "--clip" in capsys.readouterr().err
