"""Model selection for serving: the candidate that wins on validation is saved and served.

Two hand-made data sets with a known right answer: one where only co-occurrence carries
signal (ALS must win), one where only the order does (the hybrid must win).
"""

from __future__ import annotations

import numpy as np
import pytest

from mmrec.recsys.data import InteractionData
from mmrec.recsys.hybrid import HybridConfig
from mmrec.recsys.selection import Blend, fit_candidates, winner
from mmrec.recsys.served import BaselineWeights, baseline_to_bytes
from mmrec.recsys.splits import leave_last_out

FAST = HybridConfig(
    dim=32, max_len=10, blocks=1, heads=2, dropout=0.1, lr=1e-2, epochs=30, eval_every=5, patience=2, device="cpu"
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


def groups(n_users=150, n_groups=5, per_group=12, per_user=8, seed=0) -> InteractionData:
    """Each user likes ``per_user`` items of their group's ``per_group``, in a random order."""
    rng = np.random.default_rng(seed)
    users, items, ts = [], [], []
    for u in range(n_users):
        g = u % n_groups
        picked = rng.choice(per_group, per_user, replace=False) + g * per_group
        for t, i in enumerate(picked):
            users.append(u)
            items.append(int(i))
            ts.append(1_700_000_000 + 60 * t)
    return _data(users, items, ts, n_groups * per_group, seed)


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
    assert isinstance(blend, Blend) and len(blend.trials) == 4
    assert blend.weight == max(blend.trials, key=lambda t: t["ndcg@10"])["weight"]
