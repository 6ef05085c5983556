"""The recommenders' content column is chosen on validation, and the served model reads it again."""

from __future__ import annotations

import numpy as np
import pytest

from mmrec.errors import InvalidArgumentError
from mmrec.recsys.content_choice import choose_content_column, split_with_content
from mmrec.recsys.data import InteractionData
from mmrec.recsys.hybrid import HybridConfig, HybridRecommender
from mmrec.recsys.splits import leave_last_out


def taste_groups(n_users=80, n_groups=4, per_group=10, length=6, seed=0) -> tuple[InteractionData, np.ndarray]:
    """Users like items of one group only, in random order; returns the data and a vector per item that
    names its group (plus a little noise). Random vectors carry nothing."""
    rng = np.random.default_rng(seed)
    n_items = n_groups * per_group
    users, items, ts = [], [], []
    for u in range(n_users):
        g = u % n_groups
        for t, i in enumerate(rng.choice(per_group, length, replace=False) + g * per_group):
            users += [u]
            items += [int(i)]
            ts += [1_700_000_000 + 60 * t]
    groups = np.eye(n_groups, dtype=np.float32)[np.arange(n_items) // per_group]
    informative = np.hstack([groups, 0.05 * rng.normal(size=(n_items, 4))]).astype(np.float32)
    data = InteractionData(
        [f"u{u}" for u in range(n_users)],
        [f"i{i}" for i in range(n_items)],
        np.array(users, np.int32),
        np.array(items, np.int32),
        np.array(ts, np.int64),
        np.ones(len(users), np.float32),
        rng.normal(size=(n_items, 6)).astype(np.float32),
    )
    return data, informative


def test_the_column_whose_content_ranks_validation_best_is_chosen():
    data, informative = taste_groups()
    noisy = data.item_vectors
    offered = InteractionData(**{**_fields(data), "vector_options": {"text_vec": informative}})
    split = leave_last_out(offered)
    choice = choose_content_column(split.train, split.valid)
    assert choice.column == "text_vec"
    assert list(choice.scores) == ["fused_vec", "text_vec"] and choice.scores["text_vec"] > choice.scores["fused_vec"]
    assert choice.to_dict()["content_column"] == "text_vec"
    # the other way round: the current column keeps its place when it is the informative one
    swapped = InteractionData(**{**_fields(data), "item_vectors": informative, "vector_options": {"text_vec": noisy}})
    split = leave_last_out(swapped)
    assert choose_content_column(split.train, split.valid).column == "fused_vec"
    # a tie goes to the current column; nothing on offer: no scoring at all
    same = InteractionData(**{**_fields(data), "vector_options": {"text_vec": noisy.copy()}})
    split = leave_last_out(same)
    assert choose_content_column(split.train, split.valid).column == "fused_vec"
    split = leave_last_out(data)
    alone = choose_content_column(split.train, split.valid)
    assert alone.column == "fused_vec" and alone.scores == {}


def test_a_split_moves_to_the_chosen_column_and_keeps_the_others_on_offer():
    data, informative = taste_groups()
    offered = InteractionData(**{**_fields(data), "vector_options": {"text_vec": informative}})
    split = split_with_content(leave_last_out(offered), "text_vec")
    for part in (split.train, split.valid, split.test):
        assert part.content_column == "text_vec" and part.item_vectors is informative
        assert list(part.content_choices()) == ["text_vec", "fused_vec"]
    assert split.params["content_column"] == "text_vec" and split.describe()["content_column"] == "text_vec"
    test_history, _, _ = split.stage("test")  # train + valid keep the column too
    assert test_history.content_column == "text_vec" and test_history.item_vectors is informative
    with pytest.raises(InvalidArgumentError, match=r"'image_vec' is not on offer; valid: fused_vec, text_vec"):
        offered.with_content("image_vec")


class _Store:
    """What :class:`~mmrec.recsys.hybrid_serving.HybridScorer` reads: one checkpoint and the item rows."""

    def __init__(self, weights: bytes, rows: list[dict]) -> None:
        self.weights, self.rows = weights, rows

    def version(self) -> int:
        return 1

    def checkpoint_weights(self, kind: str, version: int) -> bytes:
        return self.weights

    def list(self, limit=None, columns=()):
        return [{c: r.get(c) for c in columns} for r in self.rows]


def test_the_served_hybrid_scores_from_the_column_it_was_trained_on():
    import torch

    from mmrec.recsys.hybrid_serving import HybridScorer

    data, informative = taste_groups(n_users=40)
    wide = np.hstack([informative, np.ones((len(informative), 4), np.float32)])  # 12 wide; the fused are 6
    offered = InteractionData(**{**_fields(data), "vector_options": {"text_vec": wide}}).with_content("text_vec")
    cfg = HybridConfig(dim=16, max_len=10, blocks=1, epochs=3, batch_tokens=64, device="cpu")
    rec = HybridRecommender(cfg)
    rec.fit(offered, None)
    flags = {"has_text": True, "has_image": False, "has_audio": False}
    rows = [
        {"id": i, "fused_vec": f, "text_vec": t, **flags}
        for i, f, t in zip(data.item_ids, data.item_vectors, wide, strict=True)
    ]
    new_text = np.linspace(-1, 1, 12).astype(np.float32)
    rows.append({"id": "new", "fused_vec": np.ones(6, np.float32), "text_vec": new_text, **flags})  # after training
    scorer = HybridScorer(_Store(rec.to_bytes(data.item_ids), rows), 1, 6, "hybrid", "text_vec")  # type: ignore[arg-type]
    assert scorer.content.shape == (41, 12) and scorer.fused.shape == (41, 6)
    np.testing.assert_array_equal(scorer.fused[:40], data.item_vectors)
    seqs = offered.sequences()
    users = np.arange(4)
    got = np.stack([scorer.scores([data.item_ids[i] for i in seqs[u]]) for u in users])
    np.testing.assert_allclose(got[:, :40], rec.score(users, offered), rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        new_row = rec.model.content_rows(torch.from_numpy(new_text[None]))[0]
    np.testing.assert_allclose(scorer.table[-1].numpy(), new_row.numpy(), rtol=1e-5, atol=1e-6)


def _fields(data: InteractionData) -> dict:
    return {
        "user_ids": data.user_ids,
        "item_ids": data.item_ids,
        "users": data.users,
        "items": data.items,
        "ts": data.ts,
        "weights": data.weights,
        "item_vectors": data.item_vectors,
    }
