"""The multilingual text encoder: queries in French and Chinese find items described in English,
and a whole database (ingest, zero-shot bridges, search) works through it."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import DEMO

from encoders import shared_encoder

#: The multilingual encoder chosen by measurement (README "Models"); e5 is checked for the same property.
MULTILINGUAL = "use-multilingual"
BOTH = ("use-multilingual", "multilingual-e5-small")

ITEMS = [
    "A cat sleeping on a sofa.",
    "Fresh bread from the bakery.",
    "A red car driving on the motorway.",
    "A violin playing a slow melody.",
    "Rain falling on the roof.",
    "A dog barking at the postman.",
    "A cup of hot coffee.",
    "An aeroplane taking off from the airport.",
]
QUERIES = {
    "fr": [
        "un chat qui dort sur un canapé",
        "du pain frais de la boulangerie",
        "une voiture rouge sur l'autoroute",
        "un violon qui joue une mélodie lente",
        "la pluie qui tombe sur le toit",
        "un chien qui aboie après le facteur",
        "une tasse de café chaud",
        "un avion qui décolle de l'aéroport",
    ],
    "zh": [
        "猫在沙发上睡觉",
        "面包店的新鲜面包",
        "高速公路上的红色汽车",
        "小提琴演奏缓慢的旋律",
        "雨落在屋顶上",
        "狗对着邮递员叫",
        "一杯热咖啡",
        "飞机从机场起飞",
    ],
}


@pytest.mark.parametrize("name", BOTH)
@pytest.mark.parametrize("lang", ["fr", "zh"])
def test_a_translated_query_finds_its_english_item(name, lang):
    enc = shared_encoder(name, "text")
    items, queries = enc.encode(ITEMS), enc.encode(QUERIES[lang])
    top = (queries @ items.T).argmax(1)
    assert (top == np.arange(len(ITEMS))).mean() >= 0.75


def test_minilm_does_not_cross_languages_as_well():
    """The reason for the multilingual encoder: the English model ranks Chinese queries far worse."""
    hits = {}
    for name in ("minilm-l6", *BOTH):
        enc = shared_encoder(name, "text")
        top = (enc.encode(QUERIES["zh"]) @ enc.encode(ITEMS).T).argmax(1)
        hits[name] = (top == np.arange(len(ITEMS))).mean()
    assert min(hits[name] for name in BOTH) > hits["minilm-l6"]


def test_a_demo_database_works_through_the_multilingual_encoder(tmp_path, real_encoders):
    from mmrec import Engine
    from mmrec.config import EncoderConfig

    db = str(tmp_path / "db")
    engine = Engine(db, encoders=EncoderConfig(text=MULTILINGUAL), cache_dir=tmp_path / "cache")
    report = engine.ingest(DEMO)
    assert report.added >= 40 and report.encoded["text"] > 0 and report.encoded["image"] > 0
    assert Engine(db).encoder_specs()["text"] == MULTILINGUAL
    dim = engine.encoders()["text"].dim
    # the zero-shot bridges: class names through the multilingual encoder
    space = engine.space()
    assert space.bridge("image").class_embeddings.shape == (1000, dim)
    assert space.bridge("audio").class_embeddings.shape == (521, dim)
    # a French sentence finds the cat among the text vectors, and search across modalities runs
    hits = [m.id for m in engine.similar(text="un chat qui miaule", k=5, modality="text")]
    assert "animals/cat" in hits
    assert engine.similar(text="une voiture", k=5, modality="image")
    owl = engine.similar(item="animals/cat", k=3)
    assert owl and all(m.id != "animals/cat" for m in owl)
