"""One training loop with validation, early stopping and best-state restore.

RecBole style: a model (with its loss and its optimiser) supplies *one epoch of training*
and *one validation score*; :class:`Trainer` owns everything around them — how many epochs,
when to validate, patience, keeping the best weights and putting them back, the history and
the timing. The fusion layer's contrastive training (:func:`fusion.train.train_fusion`,
held-out loss, lower is better) and the hybrid recommender (``mmrec.recsys.hybrid``,
validation NDCG@10, higher is better) both run on it::

    trainer = Trainer(epochs=40, patience=6, lower_is_better=True, min_delta=1e-4)
    result = trainer.fit(model, train_epoch=lambda epoch: one_epoch(model), validate=lambda: held_out(model))
    result.improved, result.best_epoch, result.history

It lives in ``fusion`` because that is the lower package: ``mmrec`` may import ``fusion``,
``fusion`` never imports ``mmrec``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

#: ``(epoch, train_loss, score) → log line``.
Formatter = Callable[[int, float, float], str]


@dataclass
class TrainerResult:
    """What one :meth:`Trainer.fit` did.

    Attributes
    ----------
    improved : bool
        Whether any validation beat the baseline; only then were the best weights restored.
    best_score : float
        The best validation score, or the baseline (``±inf`` when none was given) if nothing beat it.
    best_epoch : int
        Epoch of ``best_score`` (0: the baseline, nothing improved).
    epochs : int
        Epochs run (fewer than asked when stopped early).
    stopped_early : bool
        Whether patience ran out before the last epoch.
    seconds : float
        Wall time of the loop, restoring the best weights included.
    history : list of dict
        One record per validation: ``{"epoch", loss_key, score_key}`` (appended to the list
        passed to :meth:`Trainer.fit`, which is this very list).
    """

    improved: bool
    best_score: float
    best_epoch: int
    epochs: int
    stopped_early: bool
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)
    #: The epochs whose weights were averaged into the kept ones, best first (``Trainer.average_best``).
    averaged_epochs: list[int] = field(default_factory=list)


def average_states(states: list[dict[str, Any]]) -> dict[str, Any]:
    """The uniform average of ``states`` (state dicts of one module); tensors not floating come from the first."""
    out = {}
    for name, first in states[0].items():
        if first.is_floating_point():
            out[name] = sum(s[name] for s in states[1:]) / len(states) + first / len(states)
        else:
            out[name] = first
    return out


@dataclass
class Trainer:
    """Epochs, periodic validation, patience and best-state restore around a model's own epoch.

    Parameters
    ----------
    epochs : int
        Most epochs to run (numbered from 1).
    patience : int
        Validations in a row without improvement before stopping (validations, not epochs:
        with ``validate_every=5`` and ``patience=3`` training stops 15 epochs after the best).
    validate_every : int
        Validate after every ``validate_every``-th epoch, and always after the last one.
    lower_is_better : bool
        True for a loss, False for a ranking metric.
    min_delta : float
        How much a score must beat the best one to count as an improvement.
    loss_key, score_key : str
        Keys of the training loss and the validation score in the history records.
    log : callable, optional
        Receives one line per validation.
    message : callable, optional
        ``(epoch, train_loss, score) → line`` for ``log``; default
        ``"epoch   3  {loss_key} 0.1234  {score_key} 0.5678"``.
    max_seconds : float, optional
        A time budget: the first epoch that ends past it is validated (whatever
        ``validate_every`` says) and is the last one. None: no budget.
    smooth : float
        Judge improvements, patience and the kept state on an exponentially smoothed score,
        ``s = (1 - smooth) · score + smooth · s_previous`` (the first validation's score as is),
        instead of the raw one: a noisy score (a ranking metric on a few hundred users jumps by
        ±10 % between epochs) then neither stops a fit on one unlucky epoch nor keeps one lucky
        one. 0: off (the fusion training's setting). The history keeps the raw scores, and the
        smoothed ones under ``score_key + "_smoothed"``; ``best_score`` is then a smoothed score.
    average_best : int
        Keep the uniform average of the weights of the ``average_best`` best-validated epochs instead
        of the best epoch's alone (1: the best epoch's, the fusion training's setting). The best epoch is
        the one its validation score picked out of many noisy ones, so its score overstates it; the
        average of a few good epochs' weights is a flatter, better-generalising point of the same run
        (``mmrec.recsys.hybrid``: measured one step back in time, see ``benchmarks/README.md``). Floating
        tensors are averaged; others (integer buffers) are the best epoch's. ``best_epoch`` and
        ``best_score`` stay the best single epoch's; ``averaged_epochs`` names the averaged ones.
    """

    epochs: int
    patience: int
    validate_every: int = 1
    lower_is_better: bool = False
    min_delta: float = 0.0
    loss_key: str = "loss"
    score_key: str = "score"
    log: Callable[[str], None] | None = None
    message: Formatter | None = None
    max_seconds: float | None = None
    smooth: float = 0.0
    average_best: int = 1

    def better(self, score: float, best: float) -> bool:
        """Whether ``score`` beats ``best`` by more than ``min_delta`` (NaN never does)."""
        if self.lower_is_better:
            return score < best - self.min_delta
        return score > best + self.min_delta

    def _line(self, epoch: int, loss: float, score: float) -> str:
        if self.message is not None:
            return self.message(epoch, loss, score)
        return f"epoch {epoch:3d}  {self.loss_key} {loss:.4f}  {self.score_key} {score:.4f}"

    def fit(
        self,
        module: nn.Module,
        train_epoch: Callable[[int], float],
        validate: Callable[[], float] | None = None,
        *,
        baseline: float | None = None,
        history: list[dict[str, Any]] | None = None,
    ) -> TrainerResult:
        """Run the epochs; on return ``module`` holds the best validated weights (if any improved).

        Parameters
        ----------
        module : nn.Module
            Whose ``state_dict()`` is copied at every improvement and loaded back at the end.
        train_epoch : callable
            ``train_epoch(epoch)`` trains one epoch (1-based) and returns its training loss; it
            sets the module's train/eval mode itself.
        validate : callable, optional
            ``validate()`` → the current model's score. None: no validation and no early
            stopping; the last epoch's weights are kept.
        baseline : float, optional
            The score to beat, e.g. the untrained model's. Default: ``+inf`` for
            lower-is-better, ``-inf`` otherwise, so the first real score is an improvement.
        history : list of dict, optional
            A list to append the records to (e.g. with an epoch-0 record already in it).

        Returns
        -------
        TrainerResult
        """
        if baseline is None:
            best = math.inf if self.lower_is_better else -math.inf
        else:
            best = baseline
        baseline_score = best  # an epoch that does not beat the baseline is never averaged in
        records: list[dict[str, Any]] = [] if history is None else history
        best_state: dict[str, Any] | None = None
        #: (judged score, epoch, state) of the best ``average_best`` validated epochs so far, best first.
        top: list[tuple[float, int, dict[str, Any]]] = []
        best_epoch, bad, epochs, stopped = 0, 0, 0, False
        smoothed: float | None = None
        t0 = time.perf_counter()
        for epoch in range(1, self.epochs + 1):
            loss = train_epoch(epoch)
            epochs = epoch
            out_of_time = self.max_seconds is not None and time.perf_counter() - t0 >= self.max_seconds
            if validate is None:
                if out_of_time:
                    stopped = epoch < self.epochs
                    break
                continue
            if epoch % self.validate_every != 0 and epoch != self.epochs and not out_of_time:
                continue
            score = validate()
            records.append({"epoch": epoch, self.loss_key: loss, self.score_key: score})
            if self.log:
                self.log(self._line(epoch, loss, score))
            judged = score
            if self.smooth > 0 and math.isfinite(score):  # a NaN neither improves nor enters the average
                judged = smoothed = score if smoothed is None else (1 - self.smooth) * score + self.smooth * smoothed
                records[-1][f"{self.score_key}_smoothed"] = smoothed
            if self.average_best > 1 and math.isfinite(judged) and self.better(judged, baseline_score):
                kept = len(top) < self.average_best or self.better(judged, top[-1][0])
                if kept:
                    top.append((judged, epoch, copy.deepcopy(module.state_dict())))
                    top.sort(key=lambda t: t[0], reverse=not self.lower_is_better)  # stable: ties keep the earlier
                    del top[self.average_best :]
            if self.better(judged, best):
                # A deep copy: state_dict() returns views of the live parameters.
                best, best_epoch, bad = judged, epoch, 0
                best_state = copy.deepcopy(module.state_dict())
            else:
                bad += 1
                if bad >= self.patience:
                    stopped = epoch < self.epochs
                    break
            if out_of_time:
                stopped = epoch < self.epochs
                break
        averaged: list[int] = []
        if best_state is not None and len(top) > 1:
            best_state = average_states([state for _, _, state in top])
            averaged = [e for _, e, _ in top]
        if best_state is not None:
            module.load_state_dict(best_state)
        return TrainerResult(
            improved=best_state is not None,
            best_score=best,
            best_epoch=best_epoch,
            epochs=epochs,
            stopped_early=stopped,
            seconds=time.perf_counter() - t0,
            history=records,
            averaged_epochs=averaged,
        )
