"""Known right answers from the real pretrained text and image encoders."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DEMO
from media_factory import pattern_image

from encoders import shared_encoder


@pytest.fixture(scope="module")
def text():
    return shared_encoder("minilm-l6", "text")


@pytest.fixture(scope="module")
def image():
    return shared_encoder("efficientnet-lite0", "image")


def test_text_similarity_follows_meaning(text):
    v = text.encode(
        [
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "The girl is carrying a baby.",
            "A man is riding a horse.",
        ]
    )
    sims = v @ v.T
    assert sims[0, 1] > sims[0, 2]
    assert sims[0, 1] > sims[0, 3]


def test_text_past_the_model_window_still_counts(text):
    filler = "the committee reviewed the quarterly budget figures in detail. " * 40  # ~360 words > 256 word pieces
    a, b, query = text.encode(
        [
            filler + "Then everyone went to see the owls hooting in the forest.",
            filler + "Then everyone baked chocolate cakes in the kitchen.",
            "owls hooting in a forest",
        ]
    )
    assert not np.allclose(a, b)
    assert query @ a > query @ b


def test_image_classes_are_imagenet(image):
    assert len(image.class_names) == 1000
    assert image.class_names[281] == "tabby"


@pytest.mark.skipif(not (DEMO / "photos").is_dir(), reason="demo photos not present")
def test_real_photos_are_recognised(image):
    from PIL import Image

    photos = {p.stem: p for p in (DEMO / "photos").iterdir() if p.suffix.lower() in (".jpg", ".png")}
    expect = {"chelsea": ("cat", "tabby", "tiger", "lynx"), "espresso": ("espresso", "cup", "coffee")}
    checked = 0
    for stem, words in expect.items():
        match = [p for s, p in photos.items() if stem in s]
        if not match:
            continue
        out = image.encode_batch([Image.open(match[0]).convert("RGB")])
        top5 = [image.class_names[i].lower() for i in np.argsort(-out.class_scores[0])[:5]]
        assert any(w in name for name in top5 for w in words), (stem, top5)
        checked += 1
    assert checked, "no known photo found in the demo catalog"


def test_same_picture_at_another_resolution_is_near(image):
    large = pattern_image("gradient", (640, 480))
    small = large.resize((320, 240))
    other = pattern_image("checker", (640, 480))
    v = image.encode([large, small, other])
    assert float(v[0] @ v[1]) > 0.95
    assert float(v[0] @ v[1]) > float(v[0] @ v[2]) + 0.1
