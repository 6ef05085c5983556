"""Cross-modal search on the real demo catalog with the real encoders."""

from __future__ import annotations

import pytest
from conftest import DEMO

from encoders.base import MODALITIES
from mmrec import Engine
from mmrec.errors import InvalidArgumentError, ItemNotFoundError, MediaError

pytestmark = pytest.mark.skipif(not DEMO.is_dir(), reason="demo catalog not present")


@pytest.fixture(scope="module")
def engine(tmp_path_factory, real_encoders):
    engine = Engine(str(tmp_path_factory.mktemp("similar") / "db"))
    engine.ingest(DEMO)
    return engine


def ids(matches):
    return [m.id for m in matches]


def test_text_finds_the_described_item(engine):
    assert ids(engine.similar(text="an owl hooting at night", k=3))[0] == "animals/owl"
    assert ids(engine.similar(text="a steaming cup of espresso coffee", k=3))[0] == "photos/espresso"


def test_a_sound_finds_its_own_item_through_any_modality(engine):
    matches = engine.similar(audio=DEMO / "animals" / "dog.mp3", k=5)
    assert matches[0].id == "animals/dog"
    assert matches[0].matched == "audio"
    audio_only = engine.similar(audio=DEMO / "animals" / "dog.mp3", k=5, modality="audio")
    assert audio_only[0].id == "animals/dog" and audio_only[0].score > 0.999


def test_image_query_restricted_to_images(engine):
    matches = engine.similar(image=DEMO / "photos" / "chelsea_the_cat.jpg", k=4, modality="image")
    assert matches[0].id == "photos/chelsea_the_cat" and matches[0].score > 0.999
    for m in matches:
        assert engine.item(m.id)["has_image"]


def test_photo_to_sound_crosses_modalities(engine):
    # "sounds like this photo": only items with audio are candidates, ranked by their audio vectors
    matches = engine.similar(image=DEMO / "photos" / "chelsea_the_cat.jpg", k=27, modality="audio")
    assert len(matches) == 27  # every item that has a sound
    assert all(engine.item(m.id)["has_audio"] for m in matches)
    assert all(m.matched in MODALITIES for m in matches)


def test_item_query_excludes_the_item_and_ranks_by_score(engine):
    matches = engine.similar(item="music/piano", k=5)
    assert "music/piano" not in ids(matches)
    scores = [m.score for m in matches]
    assert scores == sorted(scores, reverse=True)


def test_filter_applies_inside_the_search(engine):
    matches = engine.similar(text="an owl hooting at night", k=5, where="id LIKE 'music/%'")
    assert len(matches) == 5  # k results although the nearest items are animals
    assert all(m.id.startswith("music/") for m in matches)
    assert engine.similar(text="anything", k=5, where="id = 'nope'") == []


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"text": "   "}, InvalidArgumentError, "empty"),
        ({"text": "owl", "item": "animals/owl"}, InvalidArgumentError, "exactly one"),
        ({}, InvalidArgumentError, "exactly one"),
        ({"item": "no/such"}, ItemNotFoundError, "no item with id"),
        ({"image": "/no/such/file.png"}, MediaError, "cannot open"),
        ({"text": "owl", "k": 0}, InvalidArgumentError, "k must be"),
        ({"text": "owl", "modality": "smell"}, InvalidArgumentError, "unknown modality"),
        ({"text": "owl", "where": "no_such_column > 1"}, InvalidArgumentError, "invalid filter"),
    ],
)
def test_bad_queries_are_clear_errors(engine, kwargs, error, message):
    with pytest.raises(error, match=message):
        engine.similar(**kwargs)


def test_corrupt_query_files(engine, tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(MediaError):
        engine.similar(image=tmp_path / "bad.jpg")
    (tmp_path / "bad.wav").write_bytes(b"RIFF garbage")
    with pytest.raises(MediaError):
        engine.similar(audio=tmp_path / "bad.wav")
    (tmp_path / "empty.ogg").touch()
    with pytest.raises(MediaError, match="empty"):
        engine.similar(audio=tmp_path / "empty.ogg")


def test_fused_vectors_and_weights_are_stored(engine):
    cow = engine.item("animals/cow", vectors=True)
    assert len(cow["fused_vec"]) == 384
    assert set(cow["fusion_weights"]) == {"text", "image", "audio"}
    assert abs(sum(cow["fusion_weights"].values()) - 1) < 1e-3
    text_only = engine.item("vehicles/steam_train")
    assert set(text_only["fusion_weights"]) == {"text"}
