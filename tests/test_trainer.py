"""The generic training loop (fusion.trainer): epochs, validation cadence, patience, best-state restore."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fusion.trainer import Trainer, TrainerResult


class Scripted:
    """A one-weight model whose "training" sets the weight to the epoch number and whose scores are scripted.

    So the weight tells which epoch's state the model holds, and the scores decide the early stopping.
    """

    def __init__(self, scores: list[float]) -> None:
        self.module = nn.Linear(1, 1, bias=False)
        with torch.no_grad():
            self.module.weight.fill_(0.0)
        self.scores = list(scores)
        self.trained: list[int] = []
        self.validated: list[int] = []

    def train_epoch(self, epoch: int) -> float:
        with torch.no_grad():
            self.module.weight.fill_(float(epoch))
        self.trained.append(epoch)
        return 10.0 / epoch

    def validate(self) -> float:
        self.validated.append(self.trained[-1])
        return self.scores.pop(0)

    @property
    def weight(self) -> float:
        return float(self.module.weight.item())


def test_early_stop_after_patience_and_best_state_restored():
    m = Scripted([0.1, 0.3, 0.2, 0.25, 0.29, 0.9])  # best at epoch 2, then 3 validations without a better one
    result = Trainer(epochs=6, patience=3).fit(m.module, m.train_epoch, m.validate)
    assert m.trained == [1, 2, 3, 4, 5]  # stopped before epoch 6 could show its 0.9
    assert result.epochs == 5 and result.stopped_early
    assert result.improved and result.best_epoch == 2 and result.best_score == 0.3
    assert m.weight == 2.0  # the epoch-2 weights are back, not the last epoch's
    assert [h["epoch"] for h in result.history] == [1, 2, 3, 4, 5]
    assert result.history[1] == {"epoch": 2, "loss": 5.0, "score": 0.3}
    assert result.seconds >= 0


def test_patience_resets_on_improvement():
    m = Scripted([0.1, 0.05, 0.2, 0.1, 0.15, 0.3, 0.0, 0.0])
    result = Trainer(epochs=8, patience=2).fit(m.module, m.train_epoch, m.validate)
    # 0.05 (bad 1), 0.2 (reset), 0.1 (1), 0.15 (2) → stop at epoch 5; the 0.3 of epoch 6 is never seen
    assert m.trained == [1, 2, 3, 4, 5] and result.best_epoch == 3 and m.weight == 3.0


def test_validate_every_is_honoured_and_the_last_epoch_is_always_validated():
    m = Scripted([0.1, 0.2, 0.3])
    result = Trainer(epochs=7, patience=5, validate_every=3).fit(m.module, m.train_epoch, m.validate)
    assert m.trained == list(range(1, 8))
    assert m.validated == [3, 6, 7]  # every third epoch, plus the last one
    assert [h["epoch"] for h in result.history] == [3, 6, 7]
    assert result.best_epoch == 7 and not result.stopped_early and m.weight == 7.0


def test_patience_counts_validations_not_epochs():
    m = Scripted([0.5, 0.4, 0.3, 0.2])
    result = Trainer(epochs=20, patience=2, validate_every=5).fit(m.module, m.train_epoch, m.validate)
    assert m.validated == [5, 10, 15] and result.epochs == 15 and result.best_epoch == 5 and m.weight == 5.0


@pytest.mark.parametrize(
    ("lower_is_better", "best_epoch"),
    [(False, 3), (True, 1)],
)
def test_lower_is_better_or_higher_is_better(lower_is_better, best_epoch):
    m = Scripted([0.2, 0.5, 0.9, 0.4])
    result = Trainer(epochs=4, patience=10, lower_is_better=lower_is_better).fit(m.module, m.train_epoch, m.validate)
    assert result.best_epoch == best_epoch and m.weight == float(best_epoch)
    assert result.best_score == (0.2 if lower_is_better else 0.9)


def test_baseline_and_min_delta():
    # A loss that never beats the untrained baseline by more than min_delta: nothing improves,
    # the last weights stay (the caller keeps its own untrained copy) and best_score is the baseline.
    m = Scripted([1.0, 0.99995, 1.2])
    result = Trainer(epochs=3, patience=2, lower_is_better=True, min_delta=1e-4).fit(
        m.module, m.train_epoch, m.validate, baseline=1.0
    )
    assert not result.improved and result.best_epoch == 0 and result.best_score == 1.0
    assert m.trained == [1, 2] and m.weight == 2.0


def test_nan_scores_never_improve():
    m = Scripted([math.nan, math.nan])
    result = Trainer(epochs=5, patience=2).fit(m.module, m.train_epoch, m.validate)
    assert not result.improved and result.epochs == 2 and result.best_score == -math.inf


def test_without_validation_every_epoch_runs_and_the_last_state_stays():
    m = Scripted([])
    result = Trainer(epochs=4, patience=1).fit(m.module, m.train_epoch, None)
    assert m.trained == [1, 2, 3, 4] and m.weight == 4.0
    assert isinstance(result, TrainerResult) and result.history == [] and not result.improved


def test_history_is_appended_to_and_logged():
    lines: list[str] = []
    history = [{"epoch": 0, "val_loss": 2.0}]
    m = Scripted([1.5, 1.0])
    trainer = Trainer(epochs=2, patience=1, lower_is_better=True, loss_key="train_loss", score_key="val_loss")
    trainer.log = lines.append
    result = trainer.fit(m.module, m.train_epoch, m.validate, baseline=2.0, history=history)
    assert result.history is history and [h["epoch"] for h in history] == [0, 1, 2]
    assert history[2] == {"epoch": 2, "train_loss": 5.0, "val_loss": 1.0}
    assert lines == ["epoch   1  train_loss 10.0000  val_loss 1.5000", "epoch   2  train_loss 5.0000  val_loss 1.0000"]
    custom: list[str] = []
    Trainer(epochs=1, patience=1, log=custom.append, message=lambda e, loss, s: f"{e}|{loss:.1f}|{s:.2f}").fit(
        Scripted([0.5]).module, Scripted([]).train_epoch, lambda: 0.5
    )
    assert custom == ["1|10.0|0.50"]


def test_best_state_is_a_copy_not_a_view():
    # Training after the best epoch changes the parameters in place; the kept state must not follow.
    module = nn.Linear(2, 1)
    opt = torch.optim.SGD(module.parameters(), lr=0.5)
    x, y = torch.ones(4, 2), torch.zeros(4, 1)
    snapshots: list[torch.Tensor] = []

    def train_epoch(epoch: int) -> float:
        loss = ((module(x) - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        snapshots.append(module.weight.detach().clone())
        return float(loss.detach())

    scores = iter([1.0, 0.0, 0.0])
    Trainer(epochs=3, patience=5).fit(module, train_epoch, lambda: next(scores))
    assert torch.equal(module.weight, snapshots[0]) and not torch.equal(snapshots[0], snapshots[2])


def test_time_budget_stops_after_the_epoch_that_ends_past_it_and_validates_it():
    import time

    module = nn.Linear(1, 1)
    seen = []

    def epoch(e):
        seen.append(e)
        time.sleep(0.02)
        return 1.0

    trainer = Trainer(epochs=100, patience=100, validate_every=50, max_seconds=0.05)
    result = trainer.fit(module, epoch, lambda: float(len(seen)))
    assert 3 <= result.epochs < 10 and result.stopped_early
    assert [r["epoch"] for r in result.history] == [result.epochs]  # validated although not a 50th epoch


def test_the_best_epochs_weights_averaged():
    # Scores by epoch: 0.1, 0.3, 0.2, 0.25, 0.29, then patience 3 stops after epoch 5.
    m = Scripted([0.1, 0.3, 0.2, 0.25, 0.29])
    result = Trainer(epochs=9, patience=3, average_best=3).fit(m.module, m.train_epoch, m.validate)
    assert result.averaged_epochs == [2, 5, 4]  # the three best, best first
    assert m.weight == pytest.approx((2 + 5 + 4) / 3)  # weights of epoch n are n
    assert result.best_epoch == 2 and result.best_score == 0.3  # the best single epoch is still reported


def test_averaging_leaves_out_epochs_below_the_baseline_and_nan_scores():
    m = Scripted([0.2, float("nan"), 0.6, 0.4, 0.0])
    result = Trainer(epochs=5, patience=9, average_best=4).fit(m.module, m.train_epoch, m.validate, baseline=0.3)
    assert result.averaged_epochs == [3, 4] and m.weight == pytest.approx(3.5)


def test_averaging_one_good_epoch_keeps_it_as_is():
    m = Scripted([0.1, 0.5, 0.0])
    result = Trainer(epochs=3, patience=9, average_best=5).fit(m.module, m.train_epoch, m.validate, baseline=0.2)
    assert result.averaged_epochs == [] and m.weight == 2.0


def test_averaging_a_loss_keeps_the_lowest():
    m = Scripted([3.0, 1.0, 2.0, 0.5])
    result = Trainer(epochs=4, patience=9, lower_is_better=True, average_best=2).fit(
        m.module, m.train_epoch, m.validate
    )
    assert result.averaged_epochs == [4, 2] and m.weight == pytest.approx(3.0)
