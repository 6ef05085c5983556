"""Model selection for serving: the candidate that wins on validation is saved and served.

Two hand-made data sets with a known right answer: one where only co-occurrence with items liked
long ago carries signal (ALS or item-kNN must win: the sequence models' window does not reach it),
one where only the order does (the hybrid must win).
"""

from __future__ import annotations

import numpy as np
import pytest

from mmrec.recsys.data import InteractionData
from mmrec.recsys.hybrid import HybridConfig
from mmrec.recsys.selection import Blend, fit_candidates, winner
from mmrec.recsys.served import BaselineWeights, baseline_to_bytes
from mmrec.recsys.splits import leave_last_out

# 60 epochs: with 30 the hybrid's fit on the chains ends half-learnt and its score against ALS's depends on
# the dropout draws (0.83 vs 0.83); with 60 it learns the walk (valid NDCG@10 1.0, about a second).
FAST = HybridConfig(
    dim=32, max_len=10, blocks=1, heads=2, dropout=0.1, lr=1e-2, epochs=60, eval_every=5, patience=2, device="cpu"
)


def _data(users, items, ts, n_items, seed=0) -> InteractionData:
    n_users = max(users) + 1
    rng = np.random.default_rng(seed)
    return InteractionData(
        [f"u{u}" for u in range(n_users)],
        [f"i{i}" for i in range(n_items)],
        np.array(users, np.int32),
        np.array(items, np.int32),
        np.array(ts, np.int64),
        np.ones(len(users), np.float32),
        rng.normal(size=(n_items, 8)).astype(np.float32),  # content carries no signal here
    )


def groups(n_users=150, n_groups=5, per_group=12, early=6, shared=10, seed=0) -> InteractionData:
    """Who a user is shows only in what they liked long ago: co-occurrence over the whole history.

    Each user likes ``early`` items of their group's ``per_group``, then every one of ``shared`` items
    that all users like, then two more of their group's (the validation and the test items), each part
    in a random order. The sequence models' window (``FAST.max_len`` = 10) holds only the shared items
    before a held-out one, and in training a group item never follows them, so nothing in the window
    tells the group; a matrix factorisation or item-kNN reads the whole history, and the group in it.
    """
    rng = np.random.default_rng(seed)
    users, items, ts = [], [], []
    first_shared = n_groups * per_group
    for u in range(n_users):
        g = u % n_groups
        mine = rng.choice(per_group, early + 2, replace=False) + g * per_group
        picked = [*mine[:early], *(rng.permutation(shared) + first_shared), *mine[early:]]
        for t, i in enumerate(picked):
            users.append(u)
            items.append(int(i))
            ts.append(1_700_000_000 + 60 * t)
    return _data(users, items, ts, first_shared + shared, seed)


def chains(n_users=150, n_items=40, length=8, seed=0) -> InteractionData:
    """Users walk i → i+1 (mod n) from a random start.

    Co-occurrence cannot tell the next item from the one before the history (both neighbour it);
    only the order can.
    """
    rng = np.random.default_rng(seed)
    users, items, ts = [], [], []
    for u in range(n_users):
        start = rng.integers(0, n_items)
        for t in range(length):
            users.append(u)
            items.append(int((start + t) % n_items))
            ts.append(1_700_000_000 + 60 * t)
    return _data(users, items, ts, n_items, seed)


@pytest.fixture(scope="module")
def on_groups():
    split = leave_last_out(groups())
    return split, fit_candidates(split.train, split.valid, ("hybrid", "als", "itemknn", "popular"), FAST)


@pytest.fixture(scope="module")
def on_chains():
    split = leave_last_out(chains())
    return split, fit_candidates(split.train, split.valid, ("hybrid", "blend", "als", "itemknn", "popular"), FAST)


def test_where_only_co_occurrence_counts_a_collaborative_baseline_is_served(on_groups):
    _, cands = on_groups
    best = winner(cands)
    scores = {c.name: c.metrics["valid_ndcg@10"] for c in cands}
    assert best.name in ("als", "itemknn"), scores
    assert scores[best.name] > scores["popular"] + 0.1


def test_where_order_matters_the_hybrid_is_served(on_chains):
    _, cands = on_chains
    best = winner(cands)
    scores = {c.name: c.metrics["valid_ndcg@10"] for c in cands}
    assert best.name in ("hybrid", "blend"), scores
    assert scores["hybrid"] > max(scores["als"], scores["itemknn"], scores["popular"]), scores


def test_every_candidate_reports_its_validation_metrics(on_chains):
    _, cands = on_chains
    assert [c.name for c in cands] == ["hybrid", "blend", "als", "itemknn", "popular"]
    for c in cands:
        assert {"valid_ndcg@10", "valid_recall@10", "valid_mrr@10", "fit_seconds"} <= set(c.metrics)


def test_ties_go_to_the_first_candidate():
    from mmrec.recsys.selection import Candidate

    a = Candidate("hybrid", None, {"valid_ndcg@10": 0.5})  # type: ignore[arg-type]
    b = Candidate("als", None, {"valid_ndcg@10": 0.5})  # type: ignore[arg-type]
    assert winner([a, b]).name == "hybrid" and winner([b, a]).name == "als"


def test_served_baselines_score_like_the_fitted_models(on_groups):
    split, cands = on_groups
    seqs = split.train.sequences()
    users = np.arange(10)
    for c in cands:
        if c.name == "hybrid":
            continue
        served = BaselineWeights(baseline_to_bytes(c.name, c.model, split.train.item_ids))
        assert served.item_ids == split.train.item_ids
        want = c.model.score(users, split.train)
        got = np.stack([served.scores(seqs[u]) for u in users])
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3, err_msg=c.name)


def test_blend_weight_is_chosen_on_validation(on_chains):
    split, cands = on_chains
    blend = next(c.model for c in cands if c.name == "blend")
    # SASRec is not among these candidates: the blend is the hybrid and ALS, one weight on the grid
    assert isinstance(blend, Blend) and list(blend.parts) == ["hybrid", "als"] and len(blend.trials) == 4
    assert blend.weights["hybrid"] == 1.0
    assert blend.weights in [t["weights"] for t in blend.trials]
    best = max(t["ndcg@10"] for t in blend.trials)
    chosen = next(t["ndcg@10"] for t in blend.trials if t["weights"] == blend.weights)
    assert chosen >= best - 0.05  # within noise of the best (the one-standard-error rule, tested below)


class _Fixed:
    """Scores given by hand: ``(n_users, n_items)``."""

    name = "fixed"

    def __init__(self, scores):
        self.scores = np.asarray(scores, np.float32)

    def fit(self, train, valid=None):
        return None

    def score(self, users, history):
        return self.scores[users]


def test_blend_adds_a_part_only_where_it_helps_on_validation():
    # 4 users, 5 items; each user's validation target is item 4 - u. The first model ranks it last
    # for users 0 and 1; the second ranks it first for everyone: adding it must win on validation.
    n_users, n_items = 4, 5
    train = _data([0, 1, 2, 3], [0, 0, 0, 0], [0, 0, 0, 0], n_items)
    valid = _data([0, 1, 2, 3], [4, 3, 2, 1], [1, 1, 1, 1], n_items)
    first = np.tile(np.arange(n_items, dtype=np.float32), (n_users, 1))  # item 4 first, item 1 last
    first[0, 4], first[1, 3] = -1.0, -1.0
    second = np.zeros((n_users, n_items), np.float32)
    second[np.arange(4), [4, 3, 2, 1]] = 10.0
    blend = Blend({"hybrid": _Fixed(first), "sasrec": _Fixed(second)})
    blend.fit(train, valid)
    assert [t["weights"]["sasrec"] for t in blend.trials] == [0.0, 0.25, 0.5, 1.0]
    assert blend.weights["sasrec"] > 0
    alone = blend.trials[0]["ndcg@10"]
    assert max(t["ndcg@10"] for t in blend.trials) > alone
    z = lambda s: (s - s.mean(1, keepdims=True)) / (s.std(1, keepdims=True) + 1e-6)  # noqa: E731
    want = z(first) + blend.weights["sasrec"] * z(second)
    np.testing.assert_allclose(blend.score(np.arange(4), train), want, rtol=1e-5, atol=1e-5)
    # a part that only adds noise keeps weight 0 (ties go to the smaller weight)
    useless = Blend({"hybrid": _Fixed(second), "als": _Fixed(first)})
    useless.fit(train, valid)
    assert useless.weights["als"] == 0.0
    # the search kept the first model alone, so the blend competes with that model's own score
    assert useless.cross_fitted_ndcg == useless.trials[0]["ndcg@10"]
    assert blend.params["cross_fitted_ndcg@10"] == blend.cross_fitted_ndcg


def test_cross_fitted_scores_score_each_user_at_the_point_chosen_without_them():
    from mmrec.recsys.hybrid_blend import cross_fitted_scores

    points = [(0.0,), (1.0,)]
    # One fold per user (folds = users), so the cut does not matter. Point 1 gains 1 on three users and
    # loses 3 on the fourth: in sample the two tie (mean 0) and the simpler point 0 is kept. Out of fold,
    # each of the three is scored at point 0 (the others' mean gain is -1/3) and the fourth at point 1
    # (the other three gain 1 each, no spread): the search itself is worth -0.75 on users it did not see.
    hurt = [np.zeros(4), np.array([1.0, 1.0, 1.0, -3.0])]
    np.testing.assert_allclose(cross_fitted_scores(points, hurt, folds=4, repeats=3), [0, 0, 0, -3])
    # A point better for every user is chosen on every fold: out of fold is its own values.
    better = [np.zeros(4), np.array([1.0, 2.0, 1.0, 2.0])]
    np.testing.assert_allclose(cross_fitted_scores(points, better, folds=4), [1, 2, 1, 2])
    # Fewer than 2 users: nothing to cross-fit; the chosen point's values.
    np.testing.assert_allclose(cross_fitted_scores(points, [np.zeros(1), np.ones(1)]), [1.0])


def test_a_grid_of_pure_noise_is_worth_nothing_out_of_fold():
    from mmrec.recsys.hybrid_blend import cross_fitted_scores

    rng = np.random.default_rng(7)
    points = [(w,) for w in range(16)]
    # 16 points whose per-user values are the same distribution (true mean 0.5): the best in-sample mean
    # is 0.5 plus luck; the cross-fitted estimate is not, and is below the in-sample winner.
    per_user = [rng.random(300) for _ in points]
    best_in_sample = max(v.mean() for v in per_user)
    honest = cross_fitted_scores(points, per_user).mean()
    assert best_in_sample > 0.52 and honest < best_in_sample - 0.01
    assert abs(honest - 0.5) < 0.04


def test_the_blend_competes_with_its_cross_fitted_score(on_chains):
    _, cands = on_chains
    row = next(c for c in cands if c.name == "blend")
    assert row.metrics["valid_ndcg@10"] == round(row.model.cross_fitted_ndcg, 4)
    assert "valid_ndcg@10_in_sample" in row.metrics


def test_blend_checkpoint_round_trip_and_the_older_format():
    import io
    import json

    from mmrec.recsys.served import blend_from_bytes, blend_to_bytes

    parts = {"hybrid": b"h-bytes", "sasrec": b"s-bytes", "als": b"a-bytes"}
    got_parts, got_weights = blend_from_bytes(blend_to_bytes(parts, {"hybrid": 1.0, "sasrec": 0.5, "als": 0.0}))
    # a part of weight 0 is not stored
    assert got_parts == {"hybrid": b"h-bytes", "sasrec": b"s-bytes"} and got_weights == {"hybrid": 1.0, "sasrec": 0.5}
    buf = io.BytesIO()
    old_meta = np.array(json.dumps({"weight": 0.25}))
    np.savez(buf, meta=old_meta, hybrid=np.frombuffer(b"h", np.uint8), als=np.frombuffer(b"a", np.uint8))
    assert blend_from_bytes(buf.getvalue()) == ({"hybrid": b"h", "als": b"a"}, {"hybrid": 1.0, "als": 0.25})


class _FakeStore:
    """What :class:`~mmrec.recsys.hybrid_serving.HybridScorer` reads from a store: one checkpoint, the items."""

    def __init__(self, weights: bytes, item_ids: list[str], vectors: np.ndarray) -> None:
        self.weights, self.item_ids, self.vectors = weights, item_ids, vectors

    def version(self) -> int:
        return 1

    def checkpoint_weights(self, kind: str, version: int) -> bytes:
        return self.weights

    def list(self, limit=None, columns=()):
        flags = {"has_text": True, "has_image": False, "has_audio": False}
        return [{"id": i, "fused_vec": v, **flags} for i, v in zip(self.item_ids, self.vectors, strict=True)]


def test_a_served_blend_of_hybrid_sasrec_and_als_scores_like_the_fitted_blend():
    from mmrec.recsys.hybrid_serving import HybridScorer
    from mmrec.recsys.selection import Candidate, checkpoint_bytes

    split = leave_last_out(chains(n_users=60, n_items=20))
    cands = fit_candidates(split.train, split.valid, ("blend", "hybrid", "sasrec", "als"), replace_epochs(FAST, 5))
    blend = cands[0].model
    assert list(blend.parts) == ["hybrid", "sasrec", "als"]
    blend.weights = {"hybrid": 1.0, "sasrec": 0.5, "als": 0.25}  # every part counts, whatever validation chose
    data = split.train
    store = _FakeStore(checkpoint_bytes(Candidate("blend", blend, {}), data.item_ids), data.item_ids, data.item_vectors)
    scorer = HybridScorer(store, 1, data.item_vectors.shape[1], "blend")  # type: ignore[arg-type]
    assert scorer.blend_weights == blend.weights and scorer.second is not None and scorer.baseline is not None
    seqs = data.sequences()
    users = np.arange(5)
    want = blend.score(users, data)
    got = np.stack([scorer.scores([data.item_ids[i] for i in seqs[u]]) for u in users])
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)


def replace_epochs(config: HybridConfig, epochs: int) -> HybridConfig:
    from dataclasses import replace

    return replace(config, epochs=epochs)


def test_the_blend_formula_skips_parts_of_weight_zero():
    from mmrec.recsys.served import blended, standardise

    a, b = np.array([[1.0, 2.0, 4.0]]), np.array([[3.0, 0.0, 1.0]])

    def never() -> np.ndarray:
        raise AssertionError("a part of weight 0 was scored")

    got = blended([(1.0, lambda: a), (0.0, never), (0.5, lambda: b)])
    np.testing.assert_allclose(got, standardise(a) + 0.5 * standardise(b), rtol=1e-6)
    with pytest.raises(ValueError, match="non-zero weight"):
        blended([(0.0, never)])


def test_the_blend_takes_the_simplest_weights_within_one_standard_error():
    from mmrec.recsys.hybrid_blend import simplest_within_one_se

    rng = np.random.default_rng(0)
    alone = rng.uniform(0, 1, 400)
    noise = alone + rng.normal(0, 0.2, 400)  # a point whose gain is noise: mean within one error
    noise += 0.5 * (noise - alone).std(ddof=1) / np.sqrt(400) - (noise - alone).mean()  # +0.5 error
    real = alone + 0.1  # a point that is better for every user
    # grid order: (0,), (0.25,), (0.5,): the noisy point is the best by its mean, alone is within one error
    assert simplest_within_one_se([(0.0,), (0.25,), (0.5,)], [alone, noise, alone - 0.001]) == 0
    assert simplest_within_one_se([(0.0,), (0.25,), (0.5,)], [alone, noise, real]) == 2
    # two points as good as the best: the one with fewer parts, then the smaller weights
    assert simplest_within_one_se([(0.5, 0.5), (0.0, 1.0), (0.25, 0.0)], [real, real, real]) == 2
    assert simplest_within_one_se([(0.5, 0.0), (0.25, 0.0)], [real, real]) == 1
