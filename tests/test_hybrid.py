"""The trained hybrid: sequence user tower, content-plus-ID item tower, and serving it from a database."""

from __future__ import annotations

import shutil
from dataclasses import replace

import numpy as np
import pytest
from conftest import DEMO

from mmrec.recsys.data import InteractionData
from mmrec.recsys.hybrid import HybridConfig, HybridRecommender, auto_max_len

SMALL = HybridConfig(
    dim=32, max_len=10, blocks=1, heads=2, dropout=0.1, lr=1e-2, epochs=40, eval_every=5, patience=3, device="cpu"
)


def chains(n_users: int = 120, n_warm: int = 30, n_cold: int = 10, length: int = 8, seed: int = 0) -> InteractionData:
    """Users walk item i → i+1 (mod n_warm); cold items exist but nobody touched them."""
    rng = np.random.default_rng(seed)
    users, items, ts = [], [], []
    for u in range(n_users):
        start = rng.integers(0, n_warm)
        for t in range(length):
            users.append(u)
            items.append((start + t) % n_warm)
            ts.append(1_700_000_000 + 60 * t)
    n = n_warm + n_cold
    content = rng.normal(size=(n, 16)).astype(np.float32)
    content[n_warm] = content[8]  # the first cold item looks exactly like warm item 8
    return InteractionData(
        [f"u{u}" for u in range(n_users)],
        [f"i{i}" for i in range(n)],
        np.array(users, np.int32),
        np.array(items, np.int32),
        np.array(ts, np.int64),
        np.ones(len(users), np.float32),
        content,
    )


@pytest.fixture(scope="module")
def fitted():
    data = chains()
    order = data.chronological()
    last = np.zeros(len(data), bool)
    last[order[np.r_[np.diff(data.users[order]) != 0, True]]] = True
    rec = HybridRecommender(SMALL)
    rec.fit(data.subset(~last), data.subset(last))
    return rec, data


def test_learns_the_order_of_events(fitted):
    rec, _ = fitted
    scores = rec.score_sequences([np.array([5, 6, 7]), np.array([20, 21]), np.array([28, 29])])
    assert [int(np.argmax(s[:30])) for s in scores] == [8, 22, 0]
    assert rec.history and rec.history[-1]["valid_ndcg@10"] > 0.8


def test_the_kept_weights_average_the_best_epochs(fitted):
    rec, data = fitted
    scores = {int(h["epoch"]): h["valid_ndcg@10"] for h in rec.history}
    averaged = rec.averaged_epochs
    assert 1 < len(averaged) <= SMALL.average_best and averaged[0] == rec.best_epoch
    assert sorted((scores[e] for e in averaged), reverse=True) == [scores[e] for e in averaged]
    assert all(scores[e] <= scores[averaged[-1]] for e in scores if e not in averaged)
    # The same fit keeping the best epoch alone (same seed, same run): its weights score what the history says,
    # and the averaged fit holds other weights.
    order = data.chronological()
    last = np.zeros(len(data), bool)
    last[order[np.r_[np.diff(data.users[order]) != 0, True]]] = True
    train, valid = data.subset(~last), data.subset(last)
    single = HybridRecommender(replace(SMALL, average_best=1))
    single.fit(train, valid)
    assert single.averaged_epochs == [] and single.best_epoch == rec.best_epoch
    assert single._validation_ndcg(train, valid) == pytest.approx(scores[rec.best_epoch], abs=1e-9)
    import torch

    assert not torch.equal(single.model.ids.weight, rec.model.ids.weight)


def test_cold_items_fall_back_to_content(fitted):
    rec, _ = fitted
    s = rec.score_sequences([np.array([5, 6, 7])])[0]
    cold = s[30:]
    assert int(np.argmax(cold)) == 0  # the content twin of the expected next item wins among cold items


def test_score_uses_the_latest_history(fitted):
    rec, data = fitted
    s = rec.score(np.array([0, 1]), data)
    seqs = data.sequences()
    np.testing.assert_allclose(s, rec.score_sequences([seqs[0], seqs[1]]), atol=1e-5)


def test_checkpoint_round_trip(fitted):
    rec, data = fitted
    restored, ids = HybridRecommender.from_bytes(rec.to_bytes(data.item_ids))
    assert ids == data.item_ids
    seq = [np.array([3, 4])]
    np.testing.assert_allclose(restored.score_sequences(seq), rec.score_sequences(seq), atol=1e-5)


@pytest.mark.skipif(not DEMO.is_dir(), reason="demo catalog not present")
def test_the_user_vector_alone_equals_the_last_hidden_state():
    # Scoring runs the top block for the newest position only; it must give the full pass's values,
    # with padding (short sequences), an empty sequence and every tower.
    import torch

    from mmrec.recsys.hybrid import HybridModel

    torch.manual_seed(0)
    for tower in ("residual", "gated", "id"):
        model = HybridModel(30, 8, HybridConfig(dim=16, max_len=12, blocks=2, heads=2, item_tower=tower)).eval()
        model.content_vectors[1:] = torch.randn(30, 8)
        seqs = torch.randint(1, 31, (5, 12))
        seqs[1, :7] = 0
        seqs[2, :11] = 0
        seqs[3] = 0
        with torch.no_grad():
            table = model.item_table()
            full = model.user_vectors(seqs, table)[:, -1]
            last = model.user_vectors(seqs, table, last_only=True)
        assert last.shape == (5, 1, 16)
        torch.testing.assert_close(last[:, 0], full, rtol=1e-5, atol=1e-5)


def test_validation_scores_without_dropout(fitted):
    # The trainer validates between epochs with the model in train mode: the score must not depend
    # on dropout draws (two calls agree, and equal the eval-mode score), and train mode comes back.
    rec, data = fitted
    order = data.chronological()
    last = np.zeros(len(data), bool)
    last[order[np.r_[np.diff(data.users[order]) != 0, True]]] = True
    train, valid = data.subset(~last), data.subset(last)
    noisy = HybridRecommender(rec.config)
    noisy.model = rec.model
    rec.model.eval()
    want = noisy._validation_ndcg(train, valid)
    rec.model.train()
    try:
        assert noisy._validation_ndcg(train, valid) == want == noisy._validation_ndcg(train, valid)
        assert rec.model.training
    finally:
        rec.model.eval()


def test_cold_validation_targets_are_ranked_among_the_untouched_items():
    # Item cold-start: every validation target is an item nobody touched in training, so the early
    # stop must rank them among the untouched items (as the test will), not below every warm item.
    data = chains(n_users=30)
    seen: list = []

    class Spy(HybridRecommender):
        def _validation_ndcg(self, train, valid, k=10, candidates=None):
            seen.append(candidates)
            return super()._validation_ndcg(train, valid, k, candidates)

    cold_valid = data.subset(np.arange(len(data)) < 30)
    cold_valid.items[:] = 30 + np.arange(30) % 10  # the cold items 30…39
    cfg = HybridConfig(dim=16, max_len=10, blocks=1, epochs=1, batch_tokens=64, device="cpu")
    Spy(cfg).fit(data, cold_valid)
    np.testing.assert_array_equal(seen[-1], np.arange(30, 40))
    Spy(cfg).fit(data, data.subset(np.arange(len(data)) < 30))  # warm targets: all items
    assert seen[-1] is None


def test_window_follows_the_history_lengths():
    # the 90th percentile, rounded up to a multiple of 10, within 10…50
    assert auto_max_len(np.arange(1, 41)) == 40  # p90 = 36.1 → 40
    assert auto_max_len(np.arange(1, 101)) == 50  # p90 = 90.1 → 100, capped
    assert auto_max_len(np.arange(1, 101), high=200) == 100
    assert auto_max_len(np.full(50, 3)) == 10 and auto_max_len(np.full(50, 900)) == 50
    assert auto_max_len(np.array([], np.int64)) == 10
    rec = HybridRecommender(HybridConfig(dim=16, max_len=None, blocks=1, epochs=1, batch_tokens=64, device="cpu"))
    data = chains(n_users=20, length=25)
    rec.fit(data, None)
    assert rec.config.max_len == 30  # every history is 25 long: the window is the 30 after it
    assert rec.model is not None and rec.model.pos.num_embeddings == 30
    again, _ = HybridRecommender.from_bytes(rec.to_bytes(data.item_ids))
    assert again.config.max_len == 30
    seq = [np.arange(20) % 30]
    assert np.allclose(again.score_sequences(seq), rec.score_sequences(seq), atol=1e-5)


def test_serving_from_a_database(tmp_path, real_encoders):
    from mmrec import Engine

    # The untrained (mean) fusion layer keeps this a test of what the hybrid learns from the sequences.
    engine = Engine(str(tmp_path / "db"), fusion="untrained")
    catalog = tmp_path / "cat"
    shutil.copytree(DEMO, catalog)
    engine.ingest(catalog)
    assert (
        "too few users" in engine.train_hybrid(SMALL)["message"]
        or "no interactions" in engine.train_hybrid(SMALL)["message"]
    )
    rows = ["user,item,event,timestamp"]
    animals = ["animals/cow", "animals/sheep", "animals/horse", "animals/pig", "animals/duck", "animals/dog"]
    music = ["music/violin", "music/cello", "music/piano", "music/flute", "music/trumpet", "music/drum_kit"]
    for u in range(40):
        seq = animals if u % 2 == 0 else music
        start = u % 3
        for t, item in enumerate(seq[start : start + 4]):
            rows.append(f"user{u},{item},like,{1_760_000_000 + 60 * t + u}")
    (tmp_path / "i.csv").write_text("\n".join(rows) + "\n")
    assert engine.import_interactions(tmp_path / "i.csv").added == 160
    result = engine.train_hybrid(SMALL, candidates=("hybrid",))
    assert result["saved"] and result["version"] == 1 and result["served"] == "hybrid"
    assert [c["version"] for c in engine.store.checkpoints("hybrid")] == [1]
    # the content column chosen on validation is named by the checkpoint and read again by the scorer
    assert result["content_column"] in result["content_choice"]
    assert engine.store.checkpoints("hybrid")[-1]["identity"]["content_column"] == result["content_column"]
    assert engine.hybrid().current().content_column == result["content_column"]

    rec = engine.recommend("user0", 4, explain=True)
    assert rec.strategy == "hybrid" and not rec.cold_start
    got = [r.id for r in rec.items]
    assert not set(got) & {"animals/cow", "animals/sheep", "animals/horse", "animals/pig"}
    assert sum(i.startswith("animals/") for i in got) >= 2, (got, [r.score for r in rec.items])
    assert all(r.because for r in rec.items if r.id.startswith("animals/"))
    assert all(
        i.startswith("household/")
        for i in [r.id for r in engine.recommend("user0", 3, where="id LIKE 'household/%'").items]
    )
    assert all(engine.item(r.id)["has_audio"] for r in engine.recommend("user0", 5, modality="audio").items)
    # the user tower reads the live history: new interactions change the list without retraining
    before = [r.id for r in engine.recommend("user1", 5).items]
    for t, item in enumerate(["animals/cow", "animals/sheep", "animals/horse"]):
        engine.interact("user1", item, "purchase", at=1_760_100_000 + t)
    assert [r.id for r in engine.recommend("user1", 5).items] != before
    # an item ingested after training is scored through its content
    shutil.copy(catalog / "animals" / "cow.png", catalog / "animals" / "calf.png")
    shutil.copy(catalog / "animals" / "cow.mp3", catalog / "animals" / "calf.mp3")
    (catalog / "animals" / "calf.txt").write_text("A young calf, a baby cow, mooing in a farm field.")
    engine.ingest(catalog)
    ids = [r.id for r in engine.recommend("user2", 40).items]
    assert "animals/calf" in ids
    # with every candidate, the validation winner is served and named in the strategy
    result = engine.train_hybrid(SMALL)
    assert set(result["candidates"]) == {"hybrid", "blend", "sasrec", "als", "itemknn", "popular"}
    assert result["served"] == max(result["candidates"], key=lambda n: result["candidates"][n]["valid_ndcg@10"])
    assert engine.recommend("user0", 4).strategy == result["served"]
    # an ensemble of two fits is saved, loaded and served the same way, the new item included
    result = engine.train_hybrid(replace(SMALL, members=2), candidates=("hybrid",))
    assert result["served"] == "hybrid" and [m["seed"] for m in result["hybrid_members"]] == [0, 1000]
    rec = engine.recommend("user0", 4)
    assert rec.strategy == "hybrid" and not set(r.id for r in rec.items) & {"animals/cow", "animals/sheep"}
    assert "animals/calf" in [r.id for r in engine.recommend("user2", 40).items]


def test_dropout_zeroes_a_share_p_and_rescales_the_rest():
    # The rand-based dropout must be nn.Dropout's distribution: a share p of zeros, the rest x / (1 - p),
    # the same mask in the gradient, and the identity in eval mode.
    import torch

    from mmrec.recsys.hybrid import _Dropout

    torch.manual_seed(0)
    drop = _Dropout(0.3)
    x = torch.full((200, 500), 2.0, requires_grad=True)
    y = drop(x)
    zero = (y == 0).float().mean().item()
    assert abs(zero - 0.3) < 0.01  # 100k draws: the standard error of the share is 0.0014
    assert torch.allclose(y[y != 0], torch.tensor(2.0 / 0.7))
    y.sum().backward()
    assert torch.equal(x.grad != 0, y != 0)
    assert torch.allclose(x.grad[x.grad != 0], torch.tensor(1.0 / 0.7))
    drop.eval()
    assert drop(x) is x
    assert _Dropout(0.0).train()(x) is x


def test_the_early_stop_judges_the_smoothed_validation_score():
    # Trainer(smooth=0.5): s = 0.5 · score + 0.5 · s_previous. Scores 0.1, 0.3, 0.1, 0.29, 0.28, 0, 0:
    # s = 0.1, 0.2, 0.15 (bad 1), 0.22 (best), 0.25 (best), 0.125, 0.0625 (bad 2: stop at 7, keep 5).
    # Judged raw, patience 2 stops at epoch 4 and keeps epoch 2 (one lucky 0.3). A NaN counts as bad
    # and leaves the average alone.
    import torch
    from torch import nn

    from fusion.trainer import Trainer

    def run(scores: list[float], **kw):
        module = nn.Linear(1, 1, bias=False)
        it = iter(scores)

        def train_epoch(epoch: int) -> float:
            with torch.no_grad():
                module.weight.fill_(float(epoch))  # the weight tells which epoch's state is held
            return 0.0

        result = Trainer(epochs=len(scores), patience=2, **kw).fit(module, train_epoch, lambda: next(it))
        return result, float(module.weight.item())

    scores = [0.1, 0.3, 0.1, 0.29, 0.28, 0.0, 0.0]
    raw, weight = run(scores)
    assert (raw.epochs, raw.best_epoch, weight) == (4, 2, 2.0)
    smooth, weight = run(scores, smooth=0.5)
    assert (smooth.epochs, smooth.best_epoch, weight) == (7, 5, 5.0)
    assert smooth.best_score == pytest.approx(0.25)
    assert [round(h["score_smoothed"], 4) for h in smooth.history] == [0.1, 0.2, 0.15, 0.22, 0.25, 0.125, 0.0625]
    assert [h["score"] for h in smooth.history] == scores  # the raw scores stay in the history
    nan, _ = run([0.2, float("nan"), 0.4, 0.0, 0.0], smooth=0.5)
    assert nan.best_epoch == 3 and nan.history[2]["score_smoothed"] == pytest.approx(0.3)
    assert "score_smoothed" not in nan.history[1]


@pytest.mark.parametrize(
    ("tower", "scale", "want"), [("residual", None, 5.0), ("residual", 2.0, 2.0), ("id", None, 1.0)]
)
def test_the_id_table_learns_at_its_own_rate(tower, scale, want):
    """Adam's first step moves every parameter that has a gradient by its learning rate (m / sqrt(v) = ±1)."""
    import torch

    from mmrec.recsys.hybrid import HybridModel

    data = chains(n_users=20, n_cold=1)
    cfg = HybridConfig(
        dim=8, max_len=10, blocks=1, heads=2, dropout=0.0, lr=1e-3, epochs=1, batch_size=1000,
        batch_tokens=100_000, item_tower=tower, id_lr_scale=scale, device="cpu",
    )  # fmt: skip
    rec = HybridRecommender(cfg)
    rec.fit(data)  # one epoch of one step: every window fits in one batch
    torch.manual_seed(cfg.seed)  # the initial weights, as fit draws them
    start = HybridModel(data.n_items, data.item_vectors.shape[1], cfg)
    step_ids = (rec.model.ids.weight - start.ids.weight).detach()[1:31].abs()  # the 30 warm items
    step_content = (rec.model.content.weight - start.content.weight).detach().abs()
    moved = step_ids[step_ids > 1e-7]
    assert len(moved) > 0.9 * step_ids.numel()  # (nearly) every item's row got a gradient
    assert torch.allclose(moved, torch.full_like(moved, 1e-3 * want), rtol=1e-3)
    if tower == "residual":  # the rest of the model steps at lr itself
        moved = step_content[step_content > 1e-7]
        assert torch.allclose(moved, torch.full_like(moved, 1e-3), rtol=1e-3)


def test_an_id_only_model_scores_untouched_items_zero():
    from mmrec.recsys.sasrec import SASRec

    data = chains(n_users=30)  # items 30..39 exist but nobody touched them
    rec = SASRec(replace(SMALL, epochs=2))
    rec.fit(data)
    scores = rec.score(np.arange(5), data)
    assert np.all(scores[:, 30:] == 0.0) and np.all(scores[:, :30] != 0.0)
