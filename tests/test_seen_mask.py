"""Leaving the items a training position has already seen out of the hybrid's softmax (``mask_seen``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mmrec.recsys.data import InteractionData
from mmrec.recsys.hybrid import HybridConfig, HybridModel, HybridRecommender
from mmrec.recsys.seen_mask import SeenMask


def brute_force(prior: list[np.ndarray], inputs: torch.Tensor, targets: torch.Tensor, n: int) -> torch.Tensor:
    b, width = inputs.shape
    want = torch.zeros(b, width, n, dtype=torch.bool)
    for r in range(b):
        for c in range(width):
            if targets[r, c] == 0:  # padding: no row
                continue
            seen = {int(v) for v in prior[r]} | {int(v) for v in inputs[r, : c + 1] if v > 0}
            seen.discard(int(targets[r, c]))
            for v in seen:
                want[r, c, v - 1] = True
    return want


def test_the_mask_holds_the_window_s_earlier_inputs_and_the_items_before_it():
    rng = np.random.default_rng(0)
    n, b, width = 12, 6, 9
    inputs = torch.from_numpy(rng.integers(1, n + 1, (b, width)))
    targets = torch.from_numpy(rng.integers(1, n + 1, (b, width)))
    inputs[0, :4] = targets[0, :4] = 0  # a left-padded window
    targets[1, 5] = inputs[1, 2]  # a repeat: its own target stays rankable
    prior = [rng.integers(1, n + 1, k) for k in (0, 3, 0, 7, 1, 2)]
    block = SeenMask(prior, n + 1).excluded(np.arange(b), inputs, targets)
    real = targets > 0
    want = brute_force(prior, inputs, targets, n)[real]  # (P, n), positions numbered as h[targets > 0]
    assert torch.equal(block(0, len(want)), want)
    assert torch.equal(torch.cat([block(0, 7), block(7, 20), block(20, len(want))]), want)  # any blocks
    at_1_5 = int(real[:1].sum()) + 5  # row 1, column 5: a repeat of its input at column 2
    assert not want[at_1_5, targets[1, 5] - 1] and want[at_1_5 - 1, inputs[1, 2] - 1]


def test_sampled_candidates_follow_the_same_rule_and_keep_each_own_target():
    rng = np.random.default_rng(1)
    n, b, width = 12, 5, 7
    inputs = torch.from_numpy(rng.integers(1, 9, (b, width)))  # inputs and targets from items 1..8
    targets = torch.from_numpy(rng.integers(1, 9, (b, width)))
    inputs[2, :3] = targets[2, :3] = 0
    prior = [rng.integers(1, n + 1, k) for k in (2, 0, 5, 1, 3)]  # the prior reaches the negatives' items too
    negatives = torch.tensor([9, 10, 11, 12, 3])  # 3 may be a row's own target: only its own column is kept
    real = targets > 0
    own = targets[real]
    got = SeenMask(prior, n + 1).excluded_candidates(np.arange(b), inputs, targets, torch.cat([own, negatives]))
    want = brute_force(prior, inputs, targets, n)[real]
    p = len(own)
    assert got.shape == (p, p + len(negatives))
    assert not got[torch.arange(p), torch.arange(p)].any()
    for j, item in enumerate(negatives.tolist()):
        rows = own != item  # where the negative is not the row's own target, brute force says the same
        assert torch.equal(got[rows, p + j], want[rows, item - 1])


def test_only_the_newest_prior_items_are_kept():
    mask = SeenMask([np.array([1, 2, 3, 4])], 6, prior_cap=2)
    inputs, targets = torch.tensor([[5]]), torch.tensor([[1]])
    assert mask.excluded(np.array([0]), inputs, targets)(0, 1)[0].tolist() == [False, False, True, True, True]


def test_windows_past_int16_positions_are_counted_in_int32():
    width = 40_000  # a hand-set max_len this long: int16 columns would overflow
    inputs = torch.zeros((1, width), dtype=torch.int64)
    targets = torch.zeros((1, width), dtype=torch.int64)
    inputs[0, -2], targets[0, -2], targets[0, -1] = 1, 2, 3  # item 1 at column width - 2, then targets 2 and 3
    block = SeenMask([np.zeros(0, np.int64)], 4).excluded(np.array([0]), inputs, targets)
    # The first real position (column width - 2) has seen item 1; so has the one after it.
    assert block(0, 2).tolist() == [[True, False, False], [True, False, False]]


def histories(seed: int = 0) -> InteractionData:
    """Six users over 7 items, with repeats, some longer than the window (so windows have items before them)."""
    rng = np.random.default_rng(seed)
    users, items = [], []
    for u, length in enumerate((5, 9, 14, 25, 3, 11)):
        users += [u] * length
        items += list(rng.integers(0, 7, length))
    ts = 1_700_000_000 + 60 * np.arange(len(users))
    content = rng.normal(size=(7, 8)).astype(np.float32)
    return InteractionData(
        [f"u{u}" for u in range(6)], [f"i{i}" for i in range(7)], np.array(users, np.int32),
        np.array(items, np.int32), ts.astype(np.int64), np.ones(len(users), np.float32), content,
    )  # fmt: skip


def hand_loss(model: HybridModel, data: InteractionData, max_len: int, masked: bool) -> float:
    """Mean next-item cross-entropy over every training position, as the fit defines it, computed per position."""
    table = model.item_table()
    losses = []
    for s in data.sequences():
        # The fit's windows: the newest max_len + 1 items, then the max_len + 1 before them, …; positions count
        # from the window's newest input, so each window goes through the tower whole.
        for end in range(len(s), 1, -max_len):
            start = max(0, end - max_len - 1)
            x = torch.from_numpy(np.asarray(s[start : end - 1], np.int64) + 1).unsqueeze(0)
            hidden = model.user_vectors(x, table)[0]
            for column, t in enumerate(range(start + 1, end)):
                logits = (hidden[column] @ table[1:].T).double()
                if masked:  # everything the user had before t: the window's inputs and the items before it
                    seen = {int(v) for v in s[:t]} - {int(s[t])}
                    logits[list(seen)] = float("-inf")
                losses.append(float(torch.logsumexp(logits, 0) - logits[int(s[t])]))
    return float(np.mean(losses))


@pytest.mark.parametrize("masked", [False, True])
def test_the_training_loss_leaves_out_what_each_position_has_seen(masked):
    """With the learning rate 0 and no dropout, the first epoch's loss is the initial model's: computed by hand."""
    data = histories()
    cfg = HybridConfig(
        dim=8, max_len=6, blocks=1, heads=2, dropout=0.0, lr=0.0, epochs=1, batch_tokens=16, mask_seen=masked,
        average_best=1, device="cpu",
    )  # fmt: skip
    rec = HybridRecommender(cfg)
    rec.fit(data, data.subset(np.r_[True, np.zeros(len(data) - 1, bool)]))
    torch.manual_seed(cfg.seed)  # the initial weights, as fit draws them
    start = HybridModel(data.n_items, 8, cfg)
    start.content_vectors[1:] = torch.from_numpy(data.item_vectors)
    with torch.no_grad():
        want = hand_loss(start, data, 6, masked)
        other = hand_loss(start, data, 6, not masked)
    assert rec.history[0]["loss"] == pytest.approx(want, rel=1e-4)
    assert abs(want - other) > 0.05  # the mask changes the loss on this data


def test_a_masked_fit_with_sampled_negatives_is_finite_and_learns():
    data = histories(1)
    cfg = HybridConfig(
        dim=8, max_len=6, blocks=1, heads=2, dropout=0.0, lr=1e-2, epochs=3, mask_seen=True,
        full_softmax_max_items=3, n_negatives=4, device="cpu",
    )  # fmt: skip
    rec = HybridRecommender(cfg)
    rec.fit(data, data.subset(np.r_[True, np.zeros(len(data) - 1, bool)]))
    losses = [h["loss"] for h in rec.history]
    assert len(losses) == 3 and all(np.isfinite(losses)) and losses[-1] < losses[0]


@pytest.mark.parametrize(("n", "chunk"), [(10, 3), (10, 256), (64, 16), (1, 1)])
def test_the_fused_loss_and_its_gradients_equal_cross_entropy(n, chunk):
    import torch.nn.functional as F

    from mmrec.recsys.fused_softmax import linear_cross_entropy

    gen = torch.Generator().manual_seed(n)
    hidden = torch.randn(n, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    table = torch.randn(13, 8, generator=gen, dtype=torch.float64, requires_grad=True)
    targets = torch.randint(0, 13, (n,), generator=gen)
    want = F.cross_entropy(hidden @ table.T, targets)
    want_h, want_t = torch.autograd.grad(2.5 * want, (hidden, table))
    got = linear_cross_entropy(hidden, table, targets, chunk=chunk)
    got_h, got_t = torch.autograd.grad(2.5 * got, (hidden, table))  # an outer factor reaches both gradients
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-12)
    assert torch.allclose(got_h, want_h, atol=1e-12) and torch.allclose(got_t, want_t, atol=1e-12)


def test_the_fused_loss_leaves_out_the_excluded_classes():
    from mmrec.recsys.fused_softmax import linear_cross_entropy

    hidden = torch.randn(4, 3, dtype=torch.float64, requires_grad=True)
    table = torch.randn(5, 3, dtype=torch.float64, requires_grad=True)
    targets = torch.tensor([0, 1, 2, 3])
    out = torch.zeros(4, 5, dtype=torch.bool)
    out[0, 1] = out[0, 2] = out[3, 4] = True
    got = linear_cross_entropy(hidden, table, targets, chunk=3, excluded=lambda a, b: out[a:b].clone())
    logits = (hidden @ table.T).masked_fill(out, float("-inf"))
    want = torch.nn.functional.cross_entropy(logits, targets)
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-12)
    g_got = torch.autograd.grad(got, table)[0]
    g_want = torch.autograd.grad(want, table)[0]
    assert torch.allclose(g_got, g_want, atol=1e-12)


def test_no_positions_give_a_zero_loss_with_zero_gradients():
    from mmrec.recsys.fused_softmax import linear_cross_entropy

    table = torch.randn(5, 3, requires_grad=True)
    loss = linear_cross_entropy(torch.zeros(0, 3), table, torch.zeros(0, dtype=torch.int64))
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.equal(table.grad, torch.zeros(5, 3))
