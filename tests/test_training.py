"""``mmrec train`` end to end: real encoders, a generated catalog, checkpoints in the database."""

from __future__ import annotations

import numpy as np
import pytest
from media_factory import write_text
from PIL import Image, ImageDraw

from fusion.train import TrainConfig
from mmrec import Engine

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (40, 60, 220),
    "yellow": (240, 220, 40),
    "black": (15, 15, 15),
    "purple": (130, 40, 160),
}
SHAPES = ["circle", "square", "triangle", "stripes", "cross"]


def draw(shape: str, colour: tuple[int, int, int], size: int = 160) -> Image.Image:
    img = Image.new("RGB", (size, size), "white")
    d = ImageDraw.Draw(img)
    s = size
    if shape == "circle":
        d.ellipse((s * 0.15, s * 0.15, s * 0.85, s * 0.85), fill=colour)
    elif shape == "square":
        d.rectangle((s * 0.2, s * 0.2, s * 0.8, s * 0.8), fill=colour)
    elif shape == "triangle":
        d.polygon([(s * 0.5, s * 0.1), (s * 0.9, s * 0.85), (s * 0.1, s * 0.85)], fill=colour)
    elif shape == "stripes":
        for x in range(0, s, 24):
            d.rectangle((x, 0, x + 11, s), fill=colour)
    else:
        d.rectangle((s * 0.42, s * 0.1, s * 0.58, s * 0.9), fill=colour)
        d.rectangle((s * 0.1, s * 0.42, s * 0.9, s * 0.58), fill=colour)
    return img


def shapes_catalog(root, copies: int = 4):
    """6 colours x 5 shapes x ``copies`` items, each an image and its caption."""
    rng = np.random.default_rng(0)
    n = 0
    for c, rgb in COLOURS.items():
        for shape in SHAPES:
            for k in range(copies):
                size = int(rng.integers(120, 220))
                jitter = tuple(int(v) for v in np.clip(np.array(rgb) + rng.integers(-25, 25, 3), 0, 255))
                (root / c).mkdir(parents=True, exist_ok=True)
                draw(shape, jitter, size).save(root / c / f"{shape}-{k}.png")
                write_text(root / c / f"{shape}-{k}.txt", f"A {c} {shape} drawn on a white background.")
                n += 1
    return n


@pytest.fixture(scope="module")
def trained(tmp_path_factory, real_encoders):
    root = tmp_path_factory.mktemp("shapes")
    n = shapes_catalog(root / "cat")
    engine = Engine(str(root / "db"))
    engine.ingest(root / "cat")
    before = {r["id"]: np.asarray(r["fused_vec"]) for r in engine.store.list(limit=None, columns=["id", "fused_vec"])}
    report = engine.train(TrainConfig(epochs=25, batch_size=64, device="cpu"))
    return engine, root, n, before, report


def test_training_saves_a_better_checkpoint(trained):
    engine, _, n, _, report = trained
    assert report.items == n and report.multimodal_items == n
    assert report.saved, report.message
    assert report.version == 1
    assert report.metrics["val_loss_trained"] < report.metrics["val_loss_untrained"]
    checkpoints = engine.store.checkpoints("fusion")
    assert [c["version"] for c in checkpoints] == [1]
    assert engine.store.fusion_identity()["version"] == 1


def test_every_fused_vector_is_recomputed_with_the_new_layer(trained):
    engine, root, _, before, _ = trained
    fresh = Engine(str(root / "db"))  # loads the checkpoint from the database
    space = fresh.space()
    assert space.version == 1
    rows = fresh.store.list(
        limit=None, columns=["id", "text_vec", "image_vec", "image_scores", "audio_vec", "audio_scores", "fused_vec"]
    )
    expected = space.fusion_values(rows)
    changed = 0
    for row, values in zip(rows, expected, strict=True):
        np.testing.assert_allclose(row["fused_vec"], values["fused_vec"], atol=1e-5)
        changed += not np.allclose(row["fused_vec"], before[row["id"]], atol=1e-4)
    assert changed == len(rows)


def test_items_ingested_after_training_use_the_trained_layer(trained):
    engine, root, _, _, _ = trained
    draw("circle", (200, 40, 40)).save(root / "cat" / "red" / "late.png")
    write_text(root / "cat" / "red" / "late.txt", "A red circle added after training.")
    fresh = Engine(str(root / "db"))
    assert fresh.ingest(root / "cat").added == 1
    row = fresh.store.get("red/late")
    expected = fresh.space().fusion_values([row])[0]["fused_vec"]
    np.testing.assert_allclose(row["fused_vec"], expected, atol=1e-5)


def test_trained_layer_aligns_captions_with_drawings(trained):
    engine, root, _, _, _ = trained
    fresh = Engine(str(root / "db"))
    hits = 0
    for c in COLOURS:
        for shape in SHAPES:
            top = fresh.similar(text=f"a {c} {shape}", k=4, modality="image")
            hits += sum(m.id.startswith(f"{c}/{shape}") for m in top)
    assert hits / (len(COLOURS) * len(SHAPES) * 4) > 0.3  # random: 4 of 120 → 0.03


def test_too_small_a_catalog_keeps_the_untrained_fusion(catalog, db, real_encoders):
    engine = Engine(db)
    engine.ingest(catalog)
    report = engine.train(TrainConfig(epochs=2, device="cpu"))
    assert not report.saved and "too few items" in report.message
    assert engine.store.checkpoints("fusion") == []
    assert engine.store.fusion_identity()["version"] == 0


def test_cli_train_and_similar(capsys, catalog, db, real_encoders):
    import json

    from mmrec.cli import main

    assert main(["ingest", str(catalog), "--db", db, "-q"]) == 0
    capsys.readouterr()
    assert main(["train", "--db", db]) == 0
    assert "too few items" in capsys.readouterr().out
    assert main(["similar", "--db", db, "--text", "owl at night", "-k", "2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["id"] == "birds/owl" and set(out[0]) == {"id", "title", "score", "matched", "modality_scores"}
    assert main(["similar", "--db", db, "--item", "birds/owl", "--modality", "image"]) == 0
    assert "birds/owl " not in capsys.readouterr().out
    assert main(["train", "--db", db, "--epochs", "0"]) == 1
    assert "--epochs" in capsys.readouterr().err
    assert main(["train", "--db", db, "--members", "0"]) == 1
    err = capsys.readouterr().err
    assert "--members must be at least 1, got 0" in err and len(err.strip().splitlines()) == 1
