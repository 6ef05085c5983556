"""Explanations: attribution on a hand-made case with a known answer, and discrimination on the demo user."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from mmrec.names import shared_column
from mmrec.recsys.explain import Because, closest_modality, modality_shares, rank_reasons

DEMO = Path(__file__).resolve().parent.parent / "assets" / "demo"


def unit(*xs: float) -> np.ndarray:
    v = np.asarray(xs, np.float32)
    return v / np.linalg.norm(v)


def test_leave_one_out_attribution_by_hand():
    # history: a (weight 2) along x, b (weight 1) along y; the taste u = (2, 1)
    items = [("a", "A", "like", 2.0), ("b", "B", "view", 1.0)]
    vectors = np.stack([unit(1, 0), unit(0, 1)])
    # target x: cos(x, u) = 2/√5; without a the taste is y (cos 0), without b it is x (cos 1)
    reasons = rank_reasons(items, vectors, unit(1, 0))
    assert [b.item for b in reasons] == ["a"]
    assert reasons[0].contribution == pytest.approx(2 / np.sqrt(5), abs=1e-4)
    # target y: only b (without a the taste moves *to* y: a's contribution is negative)
    reasons = rank_reasons(items, vectors, unit(0, 1))
    assert [b.item for b in reasons] == ["b"] and reasons[0].contribution == pytest.approx(1 / np.sqrt(5), abs=1e-4)
    # target at 45°: both count the same, 3/√10 − 1/√2
    reasons = rank_reasons(items, vectors, unit(1, 1))
    assert sorted(b.item for b in reasons) == ["a", "b"]
    assert [b.contribution for b in reasons] == pytest.approx([3 / np.sqrt(10) - 1 / np.sqrt(2)] * 2, abs=1e-4)


def test_modality_shares_by_hand():
    # the item matches history item h1 in its image and h2 in its audio; h1 weighs 3, h2 weighs 1
    row = {shared_column("image"): unit(1, 0), shared_column("audio"): unit(0, 1), shared_column("text"): None}
    h1 = {"image": unit(1, 0), "audio": unit(1, 0), "text": unit(1, 1)}  # image cos 1, audio cos 0
    h2 = {"image": unit(-1, 0), "audio": unit(0, 1)}  # image cos −1 (counts 0), audio cos 1
    shares = modality_shares(row, [(3.0, h1), (1.0, h2)])
    assert shares == pytest.approx({"image": 0.75, "audio": 0.25})
    assert list(shares) == ["image", "audio"]  # strongest first; text: the item has none
    assert modality_shares(row, [(1.0, {"image": unit(-1, 0)})]) == {}


def test_closest_modality_is_where_the_history_item_stands_out():
    # audio: the item sounds like every history item (cos 0.9 to h, 0.88-0.89 to the others):
    # z = (0.9 - 0.885) / std(0.9, 0.88, 0.89) = 1.84; image: it looks like h (0.6) and not like
    # the others (0.0, 0.05): z = 0.575 / 0.271 = 2.12. Raw cosine says audio, the standardised
    # one image, which is what sets h apart.
    def at(c: float) -> np.ndarray:
        return np.array([c, np.sqrt(1 - c * c)], np.float32)

    row = {shared_column("audio"): unit(1, 0), shared_column("image"): unit(1, 0), shared_column("text"): None}
    h = {"audio": at(0.9), "image": at(0.6)}
    others = [{"audio": at(0.88), "image": at(0.0)}, {"audio": at(0.89), "image": at(0.05)}]
    assert closest_modality(row, h) == "audio"  # no others: the raw cosine
    assert closest_modality(row, h, others) == "image"
    assert closest_modality(row, {"text": unit(1, 0)}, others) == ""  # the item has no text


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory, real_encoders) -> Path:
    from mmrec.cli.main import main

    db = tmp_path_factory.mktemp("explain") / "demo-db"
    assert main(["demo", "--db", str(db), "-q"]) == 0
    return db


@pytest.mark.skipif(not DEMO.is_dir(), reason="demo catalog not present")
def test_demo_user_reasons_discriminate_between_items(demo_db, capsys):
    from mmrec import Engine

    capsys.readouterr()
    rec = Engine(str(demo_db)).recommend("demo-user", 10, explain=True)
    assert len(rec.items) == 10
    reasons = []
    for r in rec.items:
        assert r.because and all(isinstance(b, Because) for b in r.because)
        assert r.modalities and sum(r.modalities.values()) == pytest.approx(1.0, abs=1e-3)
        # the reason list: which history items, in which order, each with the modality it matches in
        assert all(b.modality in ("text", "image", "audio") for b in r.because)
        reasons.append(tuple((b.item, b.modality) for b in r.because))
    pairs = list(itertools.combinations(reasons, 2))
    same = sum(a == b for a, b in pairs)
    assert same <= len(pairs) / 5, reasons
