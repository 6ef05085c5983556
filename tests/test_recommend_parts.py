"""The pure parts of recommendation, tested without an Engine or a model: quotas, merging with MMR,
explanation ranking, the one tag parser and the shared names."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from mmrec.names import EVENTS, MODEL_NAMES, PROTOCOLS, SEARCH_MODALITIES, STRATEGIES, parse_tags
from mmrec.recsys.explain import decayed_positive_weights, matched_modality, modality_weights, rank_reasons
from mmrec.recsys.profiles import Profile
from mmrec.recsys.recommend import merge, quotas


class _Pools:
    """Candidate pools over a small item table: each item a row of ``vectors`` (a zero row and valid=False
    for an item without a fused vector), as the snapshot hands them to :func:`merge`."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.vecs: list[list[float]] = []
        self.ok: list[bool] = []

    def row(self, item: str, vec: list[float] | None) -> int:
        if item not in self.ids:
            self.ids.append(item)
            self.vecs.append([0.0, 0.0] if vec is None else vec)
            self.ok.append(vec is not None)
        return self.ids.index(item)

    def pool(self, cands: list[tuple[float, str, list[float] | None]]) -> tuple[np.ndarray, np.ndarray]:
        rows = np.array([self.row(i, v) for _, i, v in cands], np.int64)
        return rows, np.array([s for s, _, _ in cands], np.float32)

    def merge(self, pools: list, slots: list[int], k: int, diversity: float) -> list[tuple[int, float, str]]:
        arrays = [self.pool(p) for p in pools]
        vectors, valid = np.array(self.vecs, np.float32), np.array(self.ok, bool)
        picked = merge(arrays, slots, k, diversity, lambda rows: (vectors[rows], valid[rows]))
        return [(i, s, self.ids[r]) for i, s, r in picked]


# --------------------------------------------------------------------------- quotas


@pytest.mark.parametrize(
    ("weights", "k", "expected"),
    [
        ([], 5, []),
        ([1.0], 7, [7]),
        ([3.0, 1.0], 10, [7, 3]),  # 1 each, then the 8 left split 6 : 2
        ([1.0, 1.0, 1.0], 2, [1, 1, 0]),  # fewer slots than interests: the first ones get one each
        ([0.0, 0.0], 4, [2, 2]),  # no weight at all: an even split
        ([10.0, 0.1, 0.1], 5, [3, 1, 1]),  # a minor interest still gets its slot
    ],
)
def test_quotas_share_the_slots_by_weight(weights, k, expected):
    assert quotas(weights, k) == expected
    assert sum(quotas(weights, k)) == (k if weights else 0)


def test_quotas_use_the_largest_remainders():
    # 1 each, then 7 left at 0.5 : 0.3 : 0.2 = 3.5, 2.1, 1.4 -> 3, 2, 1 and the one left goes to the largest remainder
    assert quotas([0.5, 0.3, 0.2], 10) == [5, 3, 2]


# --------------------------------------------------------------------------- merge and MMR


def test_merge_fills_each_quota_then_sorts_by_score():
    a = [(0.9, "a1", [1, 0]), (0.8, "a2", [1, 0]), (0.7, "a3", [1, 0])]
    b = [(0.5, "b1", [0, 1]), (0.4, "b2", [0, 1])]
    picked = _Pools().merge([a, b], [2, 1], 3, 0.0)
    assert [r for _, _, r in picked] == ["a1", "a2", "b1"]
    assert [i for i, _, _ in picked] == [0, 0, 1]


def test_merge_tops_up_from_other_interests_when_one_runs_out():
    a = [(0.9, "a1", [1, 0])]
    b = [(0.5, "b1", [0, 1]), (0.4, "b2", [0, 1]), (0.3, "b3", [0, 1])]
    picked = _Pools().merge([a, b], [3, 1], 4, 0.0)
    assert [r for _, _, r in picked] == ["a1", "b1", "b2", "b3"]


def test_merge_never_repeats_an_item_shared_by_two_interests():
    picked = _Pools().merge([[(0.9, "x", [1, 0])], [(0.8, "x", [1, 0]), (0.1, "y", [0, 1])]], [1, 1], 2, 0.0)
    assert sorted(r for _, _, r in picked) == ["x", "y"]


def test_merge_skips_taken_rows_without_changing_them_and_keeps_tie_order():
    taken = {1, 3}
    pools = [([1, 2, 3, 4], [0.9, 0.8, 0.8, 0.7]), ([5, 2, 6], [0.8, 0.6, 0.5])]
    picked = merge(pools, [2, 2], 4, 0.0, taken=taken)
    # rows 1 and 3 consumed; row 2 already chosen by interest 0; equal scores keep their pick order (2, then 5)
    assert picked == [(0, 0.8, 2), (1, 0.8, 5), (0, 0.7, 4), (1, 0.5, 6)]
    assert taken == {1, 3}


def test_fast_recommendations_equal_the_constructor():
    from dataclasses import fields

    from mmrec.recsys.results import Recommendation, recommendations

    ids, titles = ["a", "b", "c"], ["A", "B", "C"]
    fast = recommendations(ids, titles, [2, 0], [0.5, 0.25], [1, 0], [{"text": 1.0}, {}], ["text", ""])
    slow = [Recommendation("c", "C", 0.5, 1, [], {"text": 1.0}, "text"), Recommendation("a", "A", 0.25, 0, [], {}, "")]
    assert fast == slow and [r.to_dict() for r in fast] == [r.to_dict() for r in slow]
    assert set(vars(fast[0])) == {f.name for f in fields(Recommendation)}  # a new field must be set there too
    with pytest.raises(AttributeError):
        fast[0].score = 1.0  # type: ignore[misc]  # still frozen


def test_item_side_fusion_weights_and_closest_modality_per_row():
    import pyarrow as pa

    from mmrec.recsys.item_side import ItemSide

    t0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
    vec = pa.list_(pa.float32(), 2)
    table = pa.table(
        {
            "id": ["x", "y", "z"],
            "title": ["X", None, "Z"],
            "created_at": pa.array([t0] * 3, pa.timestamp("us", tz="UTC")),
            "updated_at": pa.array([t0] * 3, pa.timestamp("us", tz="UTC")),
            "has_text": [True, True, False],
            "has_image": [False, True, True],
            "has_audio": [False, False, False],
            "fusion_weights": pa.array([[1.0, 0.0, 0.0], [0.123456, 0.876544, 0.0], None], pa.list_(pa.float32(), 3)),
            "fused_vec": pa.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], vec),
            "text_shared": pa.array([[1.0, 0.0], [1.0, 0.0], None], vec),
            "image_shared": pa.array([None, [0.0, 1.0], [1.0, 0.0]], vec),
        }
    )
    side = ItemSide(table, 1, "test")
    # rounded to 4 decimals; only positive weights; a row without weights gives {}
    assert side.fusion_weights([1, 0, 2]) == [{"text": 0.1235, "image": 0.8765}, {"text": 1.0}, {}]
    directions = np.array([[0.0, 1.0], [1.0, 0.0], [0.0, 1.0]], np.float32)
    assert side.closest_modality([1, 0, 2], lambda: directions) == ["image", "text", "image"]
    text_only = ItemSide(table.drop_columns(["image_shared"]), 1, "test")
    assert text_only.present == ["text"]
    assert text_only.closest_modality([2, 0], lambda: directions) == ["", "text"]  # z has no text vector


def test_mmr_trades_relevance_for_variety():
    near_dupes = [(0.90, "a", [1, 0]), (0.89, "a-copy", [1, 0]), (0.60, "other", [0, 1])]
    plain = _Pools().merge([near_dupes], [2], 2, 0.0)
    assert [r for _, _, r in plain] == ["a", "a-copy"]
    diverse = _Pools().merge([near_dupes], [2], 2, 0.5)
    # second pick: a-copy = 0.5*0.89 - 0.5*1.0 < other = 0.5*0.60 - 0.5*0.0
    assert [r for _, _, r in diverse] == ["a", "other"]


def test_mmr_across_interests_counts_the_items_other_interests_chose():
    # Interest 1's best is a copy of interest 0's pick: with diversity it takes its second candidate instead.
    first = [(0.9, "a", [1, 0])]
    second = [(0.8, "a-copy", [1, 0]), (0.5, "b", [0, 1])]
    assert [r for _, _, r in _Pools().merge([first, second], [1, 1], 2, 0.6)] == ["a", "b"]
    assert [r for _, _, r in _Pools().merge([first, second], [1, 1], 2, 0.0)] == ["a", "a-copy"]


def test_mmr_keeps_items_without_vectors_as_candidates():
    pool = [(0.9, "a", [1, 0]), (0.5, "no-vector", None)]
    assert [r for _, _, r in _Pools().merge([pool], [2], 2, 1.0)] == ["a", "no-vector"]


# --------------------------------------------------------------------------- explanations


def test_rank_reasons_orders_by_similarity_times_weight_and_drops_faint_ones():
    items = [("cow", "Cow", "like", 4.0), ("violin", "Violin", "like", 4.0), ("sheep", "Sheep", "view", 1.0)]
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]], np.float32)
    target = np.array([1.0, 0.0], np.float32)
    reasons = rank_reasons(items, vectors, target)
    # leave-one-out on the taste u = 4 cow + 4 violin + sheep = (4.9, 4.1): cos(x, u) = 0.767; without cow
    # 0.214 (cow: +0.553); without violin 0.9998 (violin: negative); without sheep 0.707 (+0.060, under a quarter)
    assert [b.item for b in reasons] == ["cow"]
    assert reasons[0].contribution == pytest.approx(0.5525, abs=1e-3)


def test_rank_reasons_names_at_most_top_and_only_positive_similarities():
    items = [(f"i{n}", "", "like", 1.0) for n in range(5)]
    vectors = np.array([[1, 0], [0.9, 0.44], [0.7, 0.71], [0, 1], [-1, 0]], np.float32)
    reasons = rank_reasons(items, vectors, np.array([1.0, 0.0], np.float32), top=2)
    assert [b.item for b in reasons] == ["i0", "i1"]  # leave-one-out, strongest first; the opposite item is not named
    assert rank_reasons(items[-1:], vectors[-1:], np.array([1.0, 0.0], np.float32)) == []


def test_explanations_discriminate_between_recommended_items():
    items = [("cow", "", "like", 1.0), ("violin", "", "like", 1.0)]
    vectors = np.eye(2, dtype=np.float32)
    assert [b.item for b in rank_reasons(items, vectors, np.array([1.0, 0.1], np.float32))] == ["cow"]
    assert [b.item for b in rank_reasons(items, vectors, np.array([0.1, 1.0], np.float32))] == ["violin"]


def test_decayed_weights_halve_per_half_life_and_skip_negatives():
    now = datetime(2026, 1, 31, tzinfo=timezone.utc)
    p = Profile("u", 2, ref_time=now)
    p.history = [
        ("old", "like", 4.0, now - timedelta(days=30)),
        ("new", "like", 4.0, now),
        ("skipped", "skip", -1.0, now),
        ("new", "view", 1.0, now),
    ]
    w = decayed_positive_weights(p, half_life_days=30.0)
    assert w == pytest.approx({"old": 2.0, "new": 5.0})


def test_modality_weights_and_matched_modality():
    row = {
        "fusion_weights": np.array([0.5, 0.5, 0.0], np.float32),
        "text_shared": np.array([1.0, 0.0], np.float32),
        "image_shared": np.array([0.0, 1.0], np.float32),
        "audio_shared": None,
    }
    assert modality_weights(row) == {"text": 0.5, "image": 0.5}
    assert matched_modality(np.array([0.1, 1.0], np.float32), row) == "image"
    assert matched_modality(np.array([1.0, 0.0], np.float32), {"audio_shared": None}) == ""
    assert modality_weights({"fusion_weights": None}) == {}


# --------------------------------------------------------------------------- shared names


@pytest.mark.parametrize(
    ("value", "tags"),
    [
        ("a; b | c, d", ["a", "b", "c", "d"]),  # every separator, wherever the tags come from
        ("solo", ["solo"]),
        (" ;, |", []),
        (["x", " y ", "", None], ["x", "y"]),
        (None, []),
        (3, []),
    ],
)
def test_one_tag_parser(value, tags):
    assert parse_tags(value) == tags


def test_sidecar_and_manifest_split_tags_the_same_way(tmp_path):
    """The drift this parser fixed: sidecars split on `;` and `,` only, manifests on `;`, `|` and `,`."""
    from mmrec.catalog.scan import scan_catalog

    folder = tmp_path / "folder"
    folder.mkdir()
    (folder / "owl.txt").write_text("an owl")
    (folder / "owl.json").write_text('{"tags": "bird | night; forest"}')
    manifest = tmp_path / "manifest"
    manifest.mkdir()
    (manifest / "catalog.jsonl").write_text('{"id": "owl", "text": "an owl", "tags": "bird | night; forest"}\n')
    from mmrec.catalog.scan import read_sidecar

    sidecar_tags = parse_tags(read_sidecar(folder / "owl.json")["tags"])
    manifest_tags = scan_catalog(manifest).items[0].fields["tags"]
    assert sidecar_tags == manifest_tags == ["bird", "night", "forest"]


def test_the_http_schemas_and_the_cli_use_the_shared_names():
    import typing

    from mmrec.cli.parser import build_parser
    from mmrec.service import schemas

    assert typing.get_args(schemas.Modality) == SEARCH_MODALITIES
    assert typing.get_args(schemas.Event) == EVENTS
    assert typing.get_args(schemas.Strategy) == STRATEGIES
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "command").choices
    assert tuple(next(a for a in sub["evaluate"]._actions if a.dest == "protocol").choices) == PROTOCOLS
    assert tuple(next(a for a in sub["similar"]._actions if a.dest == "modality").choices) == SEARCH_MODALITIES
    assert set(MODEL_NAMES) >= {"popular", "als", "hybrid"}
