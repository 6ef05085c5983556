"""The evaluation harness and the baselines, on tiny hand-made data with metric values worked out by hand."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from mmrec.errors import InvalidArgumentError
from mmrec.names import MODEL_NAMES
from mmrec.recsys.baselines import ALS, BPR, ContentKNN, ItemKNN, MostPopular, Random
from mmrec.recsys.data import InteractionData, concat, interaction_data, user_item_matrix
from mmrec.recsys.evaluation import build_model, compare, evaluate, format_markdown, to_json, tune
from mmrec.recsys.metrics import rank_metrics, tie_order, top_k
from mmrec.recsys.models import MODELS, model_spec, parse_models
from mmrec.recsys.splits import Split, global_temporal, item_cold_start, leave_last_out, random_split


def make_data(rows: list[tuple[int, int, int, float]], n_users: int, n_items: int, dim: int = 2) -> InteractionData:
    """``rows`` = (user, item, ts, weight)."""
    arr = np.array(rows, dtype=np.float64).reshape(-1, 4)
    return InteractionData(
        user_ids=[f"u{i}" for i in range(n_users)],
        item_ids=[f"i{i}" for i in range(n_items)],
        users=arr[:, 0].astype(np.int32),
        items=arr[:, 1].astype(np.int32),
        ts=arr[:, 2].astype(np.int64),
        weights=arr[:, 3].astype(np.float32),
        item_vectors=np.zeros((n_items, dim), np.float32),
    )


class Table:
    """A fixed score table: ``score`` returns its rows."""

    name = "Table"

    def __init__(self, scores: list[list[float]]) -> None:
        self.scores = np.asarray(scores, np.float32)

    def fit(self, train: InteractionData, valid: InteractionData | None = None) -> None:
        pass

    def score(self, users: np.ndarray, history: InteractionData) -> np.ndarray:
        return self.scores[users]


def metrics_of(scores, history_rows, target_rows, n_items, kmax=5, candidates=None, ties="index", n_users=1):
    history = make_data(history_rows, n_users, n_items)
    targets = make_data(target_rows, n_users, n_items)
    return rank_metrics(Table(scores), history, targets, candidates, kmax=kmax, ties=ties)


# --------------------------------------------------------------------------- metrics by hand

SCORES_5 = [[0.9, 0.8, 0.7, 0.6, 0.5]]  # ranking: item 0, 1, 2, 3, 4


def test_one_relevant_item_at_rank_3():
    res = metrics_of(SCORES_5, [], [(0, 2, 0, 1.0)], 5)
    assert res.users == 1
    assert res.at("ndcg", 5) == pytest.approx(1 / math.log2(4))  # = 0.5
    assert res.at("mrr", 5) == pytest.approx(1 / 3)
    assert res.at("hit", 1) == 0 and res.at("hit", 2) == 0 and res.at("hit", 3) == 1
    assert res.at("ndcg", 2) == 0 and res.at("mrr", 2) == 0
    assert res.at("recall", 5) == 1 and res.at("precision", 5) == pytest.approx(0.2)
    assert res.at("map", 5) == pytest.approx(1 / 3)  # precision@3 = 1/3, one target


def test_two_relevant_items_at_ranks_1_and_3():
    res = metrics_of(SCORES_5, [], [(0, 0, 0, 1.0), (0, 2, 0, 1.0)], 5)
    ideal3 = 1 + 1 / math.log2(3)
    assert res.at("ndcg", 3) == pytest.approx((1 + 1 / math.log2(4)) / ideal3)
    assert res.at("ndcg", 1) == pytest.approx(1.0)
    assert res.at("recall", 1) == pytest.approx(0.5) and res.at("recall", 3) == pytest.approx(1.0)
    assert res.at("precision", 3) == pytest.approx(2 / 3)
    assert res.at("mrr", 5) == pytest.approx(1.0)
    assert res.at("map", 3) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert res.at("map", 1) == pytest.approx(1.0)  # normalised by min(K, |targets|) = 1


def test_f1_by_hand_two_targets_one_hit():
    # targets items 1 and 4; ranking 0, 1, 2, 3, 4: at K=2 one hit → P = 1/2, R = 1/2, F1 = 1/2;
    # at K=5 two hits → P = 2/5, R = 1, F1 = 2·(2/5)·1 / (2/5 + 1) = 4/7; at K=1 no hit → 0
    res = metrics_of(SCORES_5, [], [(0, 1, 1, 1.0), (0, 4, 1, 1.0)], 5)
    assert res.at("f1", 1) == 0.0
    assert res.at("f1", 2) == pytest.approx(0.5)
    assert res.at("f1", 5) == pytest.approx(4 / 7)
    assert res.at("f1", 3) == pytest.approx(2 * (1 / 3) * (1 / 2) / (1 / 3 + 1 / 2))


def test_f1_is_averaged_over_users_and_per_user_values_are_kept():
    scores = [[0.9, 0.8, 0.7], [0.9, 0.8, 0.7]]
    # user 0: target item 0 (F1@1 = 1); user 1: target item 2 (F1@1 = 0)
    history = make_data([], 2, 3)
    targets = make_data([(0, 0, 1, 1.0), (1, 2, 1, 1.0)], 2, 3)
    res = rank_metrics(Table(scores), history, targets, kmax=3, ties="index", per_user=(1, 3))
    assert res.at("f1", 1) == pytest.approx(0.5)
    assert res.user_values["f1@1"].tolist() == [1.0, 0.0]
    assert res.user_values["recall@3"].tolist() == [1.0, 1.0]
    assert res.user_values["f1@3"] == pytest.approx([0.5, 0.5])  # 2·1 / (3 + 1)


def test_bootstrap_ci_by_hand():
    from mmrec.recsys.metrics import bootstrap_ci

    # every user the same value: every resample gives it
    assert bootstrap_ci(np.full(50, 0.3)) == pytest.approx((0.3, 0.3))
    # ratio of sums: squared errors 4 over 1 rating and 0 over 3 ratings, RMSE = sqrt(4/4) = 1 pooled
    lo, hi = bootstrap_ci(np.array([4.0, 0.0] * 50), np.array([1.0, 3.0] * 50), transform=np.sqrt, seed=1)
    assert lo < 1.0 < hi and hi - lo < 0.4
    # 0/1 values, mean 0.5 over 400 users: the 95 % interval is about ±1.96·sqrt(.25/400) = ±0.049
    lo, hi = bootstrap_ci(np.array([0.0, 1.0] * 200), n_boot=2000)
    assert lo == pytest.approx(0.451, abs=0.015) and hi == pytest.approx(0.549, abs=0.015)
    assert np.isnan(bootstrap_ci(np.zeros(0))[0])
    with pytest.raises(InvalidArgumentError, match="level"):
        bootstrap_ci(np.ones(3), level=1.5)


def test_seen_items_are_masked_and_move_the_target_up():
    # Item 0 (best score) is in the user's history: masked, so target 2 moves from rank 3 to rank 2.
    res = metrics_of(SCORES_5, [(0, 0, 0, 1.0)], [(0, 2, 1, 1.0)], 5)
    assert res.at("ndcg", 5) == pytest.approx(1 / math.log2(3))
    assert res.at("mrr", 5) == pytest.approx(0.5)
    # A disliked item is seen too: masked, even though it is not a positive.
    res = metrics_of(SCORES_5, [(0, 1, 0, -4.0)], [(0, 2, 1, 1.0)], 5)
    assert res.at("mrr", 5) == pytest.approx(0.5)


def test_targets_already_in_history_and_negative_targets_do_not_count():
    # Target item 0 is in the history (a repeat): not a target; item 3 is a dislike: not a target.
    res = metrics_of(SCORES_5, [(0, 0, 0, 1.0)], [(0, 0, 1, 1.0), (0, 3, 1, -4.0), (0, 4, 1, 1.0)], 5)
    assert res.users == 1
    assert res.at("recall", 5) == 1.0 and res.at("mrr", 5) == pytest.approx(1 / 4)
    # A user whose only target is masked is not evaluated at all.
    assert metrics_of(SCORES_5, [(0, 0, 0, 1.0)], [(0, 0, 1, 1.0)], 5).users == 0


def test_ties_index_order_and_random_order():
    flat = [[1.0, 1.0, 1.0, 1.0]]
    res = metrics_of(flat, [], [(0, 2, 0, 1.0)], 4, kmax=4, ties="index")
    assert res.at("mrr", 4) == pytest.approx(1 / 3)  # ties go to the lower index: 0, 1, 2, 3
    # Random ties: user 0's order is the seeded permutation rotated by its offset.
    perm, offsets = tie_order(4, 1, "random", seed=0)
    order = perm[(np.arange(4) + offsets[0]) % 4]
    rank = int(np.flatnonzero(order == 2)[0]) + 1
    res = metrics_of(flat, [], [(0, 2, 0, 1.0)], 4, kmax=4, ties="random")
    assert res.at("mrr", 4) == pytest.approx(1 / rank)


def test_a_constant_scorer_is_random_over_users_not_one_list():
    n_users, n_items = 1000, 50
    scores = np.ones((n_users, n_items))
    targets = [(u, u % n_items, 0, 1.0) for u in range(n_users)]
    res = metrics_of(scores, [], targets, n_items, kmax=10, n_users=n_users, ties="random")
    assert res.at("coverage", 10) == 1.0  # different users see different tied items
    assert res.at("hit", 10) == pytest.approx(10 / n_items, abs=0.05)  # the expectation of a random list
    again = metrics_of(scores, [], targets, n_items, kmax=10, n_users=n_users, ties="random")
    assert again.at("ndcg", 10) == res.at("ndcg", 10)  # seeded


def test_top_k_is_exact_at_a_tied_boundary():
    s = np.array([[0.5, 0.9, 0.5, 0.5, 0.1], [3.0, -np.inf, 2.0, 2.0, 2.0]], np.float32)
    assert top_k(s, 2).tolist() == [[1, 0], [0, 2]]
    assert top_k(s, 4).tolist() == [[1, 0, 2, 3], [0, 2, 3, 4]]
    assert top_k(s, 5).tolist() == [[1, 0, 2, 3, 4], [0, 2, 3, 4, 1]]


def test_coverage_and_novelty_on_three_items():
    # Two users, three items. History: u0 has item 0, u1 has item 0 → n = (2, 0, 0).
    # Scores: u0 ranks 1 > 2, u1 ranks 2 > 1 (item 0 masked for both).
    scores = [[0.0, 0.9, 0.1], [0.0, 0.1, 0.9]]
    history = [(0, 0, 0, 1.0), (1, 0, 0, 1.0)]
    targets = [(0, 1, 1, 1.0), (1, 1, 1, 1.0)]
    res = metrics_of(scores, history, targets, 3, kmax=2, n_users=2)
    assert res.at("coverage", 1) == pytest.approx(2 / 3)  # items 1 and 2 in someone's top 1
    assert res.at("coverage", 2) == pytest.approx(2 / 3)  # item 0 is masked everywhere
    info_unseen = -math.log2((0 + 1) / (2 + 1))  # items 1 and 2: Laplace-smoothed share of users
    assert res.at("novelty", 1) == pytest.approx(info_unseen)
    assert res.at("hit", 1) == pytest.approx(0.5) and res.at("hit", 2) == pytest.approx(1.0)
    # Recommending the popular item instead lowers novelty: -log2(3/3) = 0 for item 0.
    res = metrics_of([[0.9, 0.1, 0.0]], [(0, 1, 0, 1.0)], [(0, 2, 1, 1.0)], 3, kmax=1)
    assert res.at("novelty", 1) == pytest.approx(-math.log2((0 + 1) / 2))


def test_candidates_restrict_the_ranking():
    # Items 0 and 1 score highest but are not candidates; among {2, 3, 4} target 3 is second.
    res = metrics_of(SCORES_5, [], [(0, 3, 0, 1.0), (0, 0, 0, 1.0)], 5, kmax=3, candidates=np.array([2, 3, 4]))
    assert res.at("mrr", 3) == pytest.approx(0.5)
    assert res.at("recall", 3) == 1.0  # item 0 is not a candidate, so not a target
    assert res.at("coverage", 1) == pytest.approx(1 / 3)


def test_wrong_score_shape_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        metrics_of([[1.0, 2.0]], [], [(0, 0, 0, 1.0)], 3)


# --------------------------------------------------------------------------- splits


def test_leave_last_out_breaks_time_ties_by_item_index():
    rows = [
        # user 0: items 5 and 3 share the newest time: 3 then 5 (index order) → test 5, valid 3
        (0, 5, 30, 1.0),
        (0, 3, 30, 1.0),
        (0, 1, 10, 1.0),
        (0, 2, 20, 1.0),
        (0, 4, 40, -1.0),  # a skip after the test positive: test, never a target
        # user 1: two positives only → all train
        (1, 0, 1, 1.0),
        (1, 1, 2, 1.0),
        # user 2: three positives, a dislike between validation and test
        (2, 0, 1, 1.0),
        (2, 1, 2, 1.0),
        (2, 3, 3, -4.0),
        (2, 2, 4, 1.0),
        (2, 4, 0, 1.0),
    ]
    data = make_data(rows, 3, 6)
    s = leave_last_out(data)
    assert sorted(zip(s.test.users.tolist(), s.test.items.tolist(), strict=True)) == [(0, 4), (0, 5), (2, 2)]
    assert sorted(zip(s.valid.users.tolist(), s.valid.items.tolist(), strict=True)) == [(0, 3), (2, 1), (2, 3)]
    assert sorted(s.train.items[s.train.users == 0].tolist()) == [1, 2]
    assert sorted(s.train.items[s.train.users == 1].tolist()) == [0, 1]
    assert sorted(s.train.items[s.train.users == 2].tolist()) == [0, 4]
    assert len(s.train) + len(s.valid) + len(s.test) == len(data)


def test_global_temporal_and_random_splits():
    rows = [(u, i, u * 10 + i, 1.0) for u in range(4) for i in range(5)]
    data = make_data(rows, 4, 5)
    s = global_temporal(data, test_fraction=0.2, valid_fraction=0.1)
    assert (len(s.train), len(s.valid), len(s.test)) == (14, 2, 4)
    assert s.train.ts.max() <= s.valid.ts.min() and s.valid.ts.max() <= s.test.ts.min()
    r1, r2 = random_split(data, 0.2, 0.1, seed=3), random_split(data, 0.2, 0.1, seed=3)
    assert (len(r1.train), len(r1.valid), len(r1.test)) == (14, 2, 4)
    assert np.array_equal(r1.test.ts, r2.test.ts)  # seeded
    keys = {
        (int(u), int(i)) for part in (r1.train, r1.valid, r1.test) for u, i in zip(part.users, part.items, strict=True)
    }
    assert len(keys) == 20  # a partition
    with pytest.raises(InvalidArgumentError):
        global_temporal(data, 0.6, 0.5)


def test_item_cold_start_holds_items_out_and_ranks_only_them():
    rows = [(u, i, i, 1.0) for u in range(6) for i in range(10)]
    data = make_data(rows, 6, 10)
    s = item_cold_start(data, fraction=0.2, seed=1, valid_fraction=0.1)
    test_items = set(s.test_candidates.tolist())
    assert len(test_items) == 2 and len(s.valid_candidates) == 1
    assert test_items.isdisjoint(s.train.items.tolist()) and test_items.isdisjoint(s.valid.items.tolist())
    assert set(s.test.items.tolist()) == test_items and len(s.test) == 12  # every interaction with them
    assert set(s.valid.items.tolist()) == set(s.valid_candidates.tolist())
    # A constant scorer is random among the 2 candidates; item 0 … 9 outside them are never ranked.
    res = rank_metrics(MostPopular_fitted(s.train), concat(s.train, s.valid), s.test, s.test_candidates, kmax=2)
    assert res.users == 6 and res.at("recall", 2) == 1.0 and res.at("coverage", 2) == 1.0


def MostPopular_fitted(train: InteractionData) -> MostPopular:
    m = MostPopular()
    m.fit(train)
    return m


# --------------------------------------------------------------------------- baselines


def toy() -> InteractionData:
    """Users 0–2 like items {0,1}, {0,1,2}, {1,2}; user 3 viewed item 3 then disliked it."""
    rows = [(0, 0, 1, 1.0), (0, 1, 2, 1.0), (1, 0, 1, 1.0), (1, 1, 2, 1.0), (1, 2, 3, 1.0), (2, 1, 1, 1.0)]
    rows += [(2, 2, 2, 1.0), (3, 3, 1, 1.0), (3, 3, 2, -4.0)]
    data = make_data(rows, 4, 4)
    data.item_vectors = np.array([[1, 0], [1, 1], [0, 1], [-1, 0]], np.float32)
    return data


def test_positive_matrix_never_turns_a_dislike_into_a_positive():
    m = user_item_matrix(toy())
    assert m[3].nnz == 0  # view (+1) then dislike (−4): net negative
    assert m.sum() == 7 and set(m.data.tolist()) == {1.0}
    assert user_item_matrix(toy(), positive=False)[3].nnz == 1  # but it is seen (masked)


def test_most_popular_and_item_knn_by_hand():
    data = toy()
    pop = MostPopular()
    pop.fit(data)
    assert pop.score(np.array([0, 1]), data).tolist() == [[2, 3, 2, 1]] * 2  # counts_per_item: positives
    knn = ItemKNN(k=1, shrinkage=0.0)
    knn.fit(data)
    # co-occurrence: (0,1)=2, (1,2)=2, (0,2)=1; |U0|=2, |U1|=3, |U2|=2.
    # cos(0,1) = 2/√6 ≈ 0.816, cos(1,2) = 2/√6, cos(0,2) = 1/2; k=1 keeps each item's best neighbour.
    sim = knn.sim.toarray()
    assert sim[0, 1] == pytest.approx(2 / math.sqrt(6)) and sim[0, 2] == 0
    assert sim[2, 1] == pytest.approx(2 / math.sqrt(6)) and sim[2, 0] == 0
    # user 2 has {1, 2}: score(1) = sim[1,1] + sim[2,1] = 0 + 2/√6; nobody is similar to item 3
    s = knn.score(np.array([2]), data)[0]
    assert s[1] == pytest.approx(2 / math.sqrt(6)) and s[3] == 0
    shrunk = ItemKNN(k=5, shrinkage=10.0)
    shrunk.fit(data)
    assert shrunk.sim.toarray()[0, 1] == pytest.approx(2 / (math.sqrt(6) + 10))


def test_content_knn_weights_recent_items():
    data = toy()
    recent = ContentKNN(half_life=0.01)  # only the newest item counts
    recent.fit(data)
    s = recent.score(np.array([0]), data)[0]  # user 0: item 0 then item 1 (newest)
    assert int(np.argmax(s)) == 1
    flat = ContentKNN(half_life=None)
    flat.fit(data)
    prof = flat.profiles(np.array([0, 3]), data)
    assert prof[0] == pytest.approx(
        np.array([1 + 1 / math.sqrt(2), 1 / math.sqrt(2)]) / np.linalg.norm([1 + 1 / math.sqrt(2), 1 / math.sqrt(2)])
    )
    assert np.all(prof[1] == 0)  # no positive history: zero profile, zero scores


def test_matrix_factorisation_fits_and_scores_tiny_data():
    rng = np.random.default_rng(0)
    rows = [
        (u, i, t, 1.0) for t, (u, i) in enumerate(zip(rng.integers(0, 20, 300), rng.integers(0, 15, 300), strict=True))
    ]
    data = make_data(rows, 20, 15)
    for model in (
        ALS(factors=4, iterations=3),
        ALS(factors=4, iterations=3, fold_in=False),
        BPR(factors=4, iterations=5),
    ):
        model.fit(data)
        s = model.score(np.array([0, 1, 2]), data)
        assert s.shape == (3, 15) and s.dtype == np.float32 and np.isfinite(s).all()
    a, b = ALS(factors=4, iterations=3, random_state=7), ALS(factors=4, iterations=3, random_state=7)
    a.fit(data)
    b.fit(data)
    assert np.allclose(a.score(np.arange(5), data), b.score(np.arange(5), data))  # fixed random_state


def test_random_is_seeded():
    data = toy()
    a, b = Random(seed=1), Random(seed=1)
    a.fit(data)
    b.fit(data)
    assert np.array_equal(a.score(np.arange(3), data), b.score(np.arange(3), data))


# --------------------------------------------------------------------------- evaluate, tune, names


def planted() -> InteractionData:
    """8 users; each user's items follow a ring: user u interacts with u, u+1, u+2, u+3 (mod 8), in order."""
    rows = [(u, (u + j) % 8, j, 1.0) for u in range(8) for j in range(4)]
    data = make_data(rows, 8, 8)
    angles = np.arange(8) * 2 * np.pi / 8
    data.item_vectors = np.stack([np.cos(angles), np.sin(angles)], 1).astype(np.float32)
    return data


def test_tune_picks_the_best_grid_point():
    split = leave_last_out(planted())
    res = tune(ContentKNN, {"half_life": [None, 0.01]}, split.train, split.valid, k=1)
    # The next item on the ring is nearest to the newest one: recency wins.
    assert res.params == {"half_life": 0.01} and res.score == pytest.approx(1.0)
    assert [t["params"] for t in res.trials] == [{"half_life": None}, {"half_life": 0.01}]
    assert res.model.half_life == 0.01


def test_evaluate_and_reports():
    split = leave_last_out(planted())
    results = evaluate(
        [MostPopular(), ContentKNN(half_life=0.01), ContentKNN(half_life=None)], split, ks=(1, 5), curve=5
    )
    models = results["models"]
    assert list(models) == ["MostPopular", "Content", "Content #2"]
    assert models["Content"]["test"]["ndcg@1"] == pytest.approx(1.0)
    assert models["Content"]["test"]["users"] == 8 and len(models["Content"]["ndcg_curve"]) == 5
    assert models["Content"]["params"] == {"half_life": 0.01}
    assert models["Content"]["test"]["ndcg@1_ci"] == pytest.approx([1.0, 1.0])  # every user hits: no spread
    lo, hi = models["MostPopular"]["test"]["f1@5_ci"]
    assert lo <= models["MostPopular"]["test"]["f1@5"] <= hi
    table = format_markdown(results, metrics=("ndcg", "hit"))
    assert table.splitlines()[0] == "| model | NDCG@1 | HR@1 | NDCG@5 | HR@5 |"
    assert "| Content | 1.0000 | 1.0000 |" in table
    assert json.loads(to_json(results))["split"]["test"]["interactions"] == 8


def test_compare_by_name_on_a_toy_split():
    results = compare(planted(), "leave-last-out", ["popular", "content"], ks=(1,), curve=0)
    assert results["models"]["Content"]["params"] == {"half_life": 0.5}  # the grid's first best point
    assert "tuning" in results["models"]["Content"] and results["seed"] == 0


def test_model_names_are_checked():
    assert parse_models("popular, ALS,als") == ["popular", "als"]
    with pytest.raises(
        InvalidArgumentError, match="valid models: random, popular, itemknn, als, bpr, content, hybrid, sasrec"
    ):
        parse_models("popular,nope")
    with pytest.raises(InvalidArgumentError, match="valid models"):
        model_spec("nope")
    assert set(MODEL_NAMES) >= {"random", "popular", "itemknn", "als", "bpr", "content", "hybrid"}


def test_model_registry_holds_exactly_the_model_names():
    # One factory per name of mmrec.names.MODEL_NAMES: no name without a model, no model without a name.
    assert MODELS.names() == sorted(MODEL_NAMES)
    assert len(MODELS) == len(MODEL_NAMES) == len(set(MODEL_NAMES))
    with pytest.raises(InvalidArgumentError, match="unknown model 'nope'; valid models: random, popular, itemknn"):
        model_spec("nope")
    make, grid = model_spec("als", seed=3)
    assert grid["factors"] == [32, 64, 128] and make(factors=8).params["factors"] == 8


def test_split_stages():
    s = leave_last_out(planted())
    hist, tgt, cands = s.stage("test")
    assert len(hist) == len(s.train) + len(s.valid) and tgt is s.test and cands is None
    assert isinstance(s, Split) and s.describe()["test"]["users"] == 8
    with pytest.raises(ValueError):
        s.stage("train")


# --------------------------------------------------------------------------- from a database, and the CLI


@pytest.fixture(scope="module")
def movie_db(tmp_path_factory, real_encoders):
    """Eight text-only items from a manifest; users with views, a rating and a dislike."""
    from mmrec import Engine

    root = tmp_path_factory.mktemp("evaldb")
    titles = ["space opera", "galaxy war", "robot uprising", "love in paris", "wedding comedy", "summer romance"]
    titles += ["", "", "pirate ship", "lost treasure"]  # m/9 and m/10: no interactions; "m/10" sorts after "m/9"
    manifest = "".join(
        json.dumps({"id": f"m/{i}", "title": t, "text": f"A film about {t}."}) + "\n"
        for i, t in enumerate(titles, 1)
        if t
    )
    (root / "catalog").mkdir()
    (root / "catalog" / "catalog.jsonl").write_text(manifest)
    lines = ["user,item,event,rating,timestamp"]
    for u in range(4):
        for j, item in enumerate([1, 2, 3] if u % 2 == 0 else [4, 5, 6]):
            lines.append(f"u{u},m/{item},view,,{1000 + 10 * u + j}")
    lines += ["u1,m/1,dislike,,1", "u2,m/4,,1,2"]  # a dislike; a 1-star rating
    engine = Engine(str(root / "db"))
    engine.ingest(root / "catalog")
    (root / "i.csv").write_text("\n".join(lines) + "\n")
    engine.import_interactions(root / "i.csv")
    return root / "db"


def test_interaction_data_from_the_database(movie_db):
    from mmrec import Engine

    engine = Engine(str(movie_db))
    data = interaction_data(engine.store, engine.users())
    assert data.item_ids == ["m/1", "m/2", "m/3", "m/4", "m/5", "m/6", "m/9", "m/10"]  # natural order
    assert data.user_ids == ["u0", "u1", "u2", "u3"]
    assert len(data) == 14 and data.item_vectors.shape == (8, 384)
    assert np.allclose(np.linalg.norm(data.item_vectors, axis=1), 1.0, atol=1e-3)
    w = dict(zip(zip(data.users.tolist(), data.items.tolist(), strict=True), data.weights.tolist(), strict=True))
    assert w[(1, 0)] == -4.0 and w[(2, 3)] == -4.0 and w[(0, 0)] == 1.0  # dislike; 1-star rating = 2·(1−3)
    assert data.ts.min() == 1 and data.ts.max() == 1000 + 10 * 3 + 2
    engine = Engine(str(movie_db))
    implicit = interaction_data(engine.store, engine.users(), implicit=True)
    assert set(implicit.weights.tolist()) == {1.0}


def test_interaction_data_reads_the_asked_vector_column(movie_db):
    from mmrec import Engine
    from mmrec.errors import InvalidArgumentError

    engine = Engine(str(movie_db))
    fused = interaction_data(engine.store, engine.users())
    text = interaction_data(engine.store, engine.users(), vector_column="text_shared")
    ids, stored = engine.store.item_vectors("text_shared")
    by_id = dict(zip(ids, stored, strict=True))
    assert np.array_equal(text.item_vectors, np.stack([by_id[i] for i in text.item_ids]))
    assert text.item_ids == fused.item_ids and np.array_equal(text.items, fused.items)
    # the pretrained space's fusion maps even a text-only item's token: the two columns differ
    assert not np.allclose(text.item_vectors, fused.item_vectors, atol=1e-3)
    with pytest.raises(InvalidArgumentError, match=r"'title'.*fused_vec, text_shared, .*, text_vec, image_vec"):
        interaction_data(engine.store, engine.users(), vector_column="title")


def test_cli_evaluate(movie_db, capsys):
    from mmrec.cli import main

    code = main(["evaluate", "--db", str(movie_db), "--models", "popular,content", "--k", "1,3", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0 and set(out["models"]) == {"MostPopular", "Content"}
    assert out["split"]["test"]["users"] == 4 and "ndcg@3" in out["models"]["Content"]["test"]
    code = main(["evaluate", "--db", str(movie_db), "--models", "content", "-q"])
    text = capsys.readouterr().out
    assert code == 0 and "| Content |" in text and "NDCG@10" in text
    code = main(["evaluate", "--db", str(movie_db), "--models", "als,wrong"])
    err = capsys.readouterr().err
    assert code == 1 and "unknown model(s) 'wrong'; valid models: random, popular" in err


def test_one_builder_makes_a_named_model_at_a_grid_point():
    # The first point of the grid by default (what a model without tuning and a child-process fit get).
    assert build_model("itemknn", 0).params == {"k": 50, "shrinkage": 0.0}
    als = build_model("als", 3, {"factors": 32, "regularization": 0.1, "iterations": 15})
    assert isinstance(als, ALS) and als.params["factors"] == 32 and als.model.random_state == 3
    assert isinstance(build_model("popular", 0), MostPopular)
    with pytest.raises(InvalidArgumentError, match="unknown model 'nope'"):
        build_model("nope", 0)


@pytest.mark.slow  # four default-config fits of the torch models: ~1 min on 2 loaded cores
def test_torch_models_fitted_in_child_processes_match_fits_in_this_one():
    # compare() may fit the hybrid and SASRec in spawned processes while it fits the baselines here;
    # the figures must be those of fitting them here (each fit seeds itself), in the order asked for.
    pytest.importorskip("torch")
    names = ["hybrid", "popular", "sasrec"]
    here = compare(planted(), "leave-last-out", names, ks=(1, 5), curve=0, parallel=False)
    apart = compare(planted(), "leave-last-out", names, ks=(1, 5), curve=0, parallel=True)
    assert list(apart["models"]) == list(here["models"]) == ["Hybrid", "MostPopular", "SASRec"]
    for name in ("Hybrid", "SASRec"):
        assert apart["models"][name]["fitted_apart"] is True and "fitted_apart" not in here["models"][name]
        for stage in ("valid", "test"):
            assert apart["models"][name][stage]["ndcg@5"] == pytest.approx(
                here["models"][name][stage]["ndcg@5"], abs=1e-6
            )


def test_interaction_data_offers_the_raw_vectors_of_a_modality_every_item_has(movie_db):
    from mmrec import Engine

    engine = Engine(str(movie_db))
    plain = interaction_data(engine.store, engine.users())
    assert plain.vector_options == {} and plain.content_column == "fused_vec"
    offered = interaction_data(engine.store, engine.users(), content_choices=True)
    # text-only items: the raw text vectors are on offer; images and sounds exist on no item
    assert list(offered.content_choices()) == ["fused_vec", "text_vec"]
    ids, stored = engine.store.item_vectors("text_vec")
    by_id = dict(zip(ids, stored, strict=True))
    np.testing.assert_array_equal(offered.vector_options["text_vec"], np.stack([by_id[i] for i in offered.item_ids]))
    np.testing.assert_array_equal(offered.item_vectors, plain.item_vectors)
