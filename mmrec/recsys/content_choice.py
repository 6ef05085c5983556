"""Which stored content vectors the recommenders get, chosen on validation.

Search, profiles and explanations use the fused vector (``fused_vec``): the one vector every item
has, in the space where text, images and sounds meet. What helps a *recommender* can differ. On a
one-modality catalog the fused vector is that modality's vector seen through the fusion layer,
whose projections were trained for cross-modal retrieval, not for taste: on MovieLens-100k titles
the raw MiniLM vectors gave the content baseline +15 % and the hybrid +8 % validation NDCG@10 over
the fused ones (``benchmarks/README.md``, issue 11, ninth pass). On a catalog whose items have
images and sounds as well, the fused vector carries all of them and may well be better. The data
decides: :func:`choose_content_column` scores each column on offer
(:meth:`~mmrec.recsys.data.InteractionData.content_choices`) with the content-only recommender
(:class:`~mmrec.recsys.baselines.ContentKNN`, no training, a few matrix products) on the validation
split and keeps the best; the trained models are then fitted on that column, and the served model
reads it again at recommendation time (its checkpoint names it).

The content model is the proxy because fitting the hybrid once per column would double or treble
its training time; the column that ranks better by content alone is the one whose neighbourhoods
match the users' histories, which is what the hybrid's content projection starts from.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from mmrec.recsys.baselines import ContentKNN
from mmrec.recsys.data import InteractionData
from mmrec.recsys.metrics import rank_metrics
from mmrec.recsys.splits import Split

#: The models that read ``item_vectors`` (the others need no choice).
CONTENT_MODELS: tuple[str, ...] = ("hybrid", "content", "blend")
#: Metric the columns are compared by (validation, all candidate items, the training history masked).
CHOICE_METRIC = "ndcg@10"


@dataclass(frozen=True)
class ContentChoice:
    """The chosen content column and every column's validation score.

    Attributes
    ----------
    column : str
        The winner (the current column when nothing else is on offer or nothing beats it).
    scores : dict of str to float
        Column → the content model's validation NDCG@10, in offer order (the current column first).
    """

    column: str
    scores: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"content_column": self.column, "content_choice": {c: round(v, 4) for c, v in self.scores.items()}}


def choose_content_column(
    train: InteractionData,
    valid: InteractionData,
    candidates: np.ndarray | None = None,
    *,
    seed: int = 0,
) -> ContentChoice:
    """The content column whose content-only recommender ranks ``valid`` best (ties: the current one).

    Parameters
    ----------
    train : InteractionData
        The history (and the columns on offer: :meth:`~InteractionData.content_choices`).
    valid : InteractionData
        Held-out targets.
    candidates : np.ndarray, optional
        ``(C,)`` item indices ranked (the split's validation candidates); default all items.
    seed : int
        Tie-break seed of the ranking.

    Returns
    -------
    ContentChoice
    """
    choices = train.content_choices()
    if len(choices) == 1:
        return ContentChoice(train.content_column)
    scores: dict[str, float] = {}
    for column in choices:
        history = train.with_content(column)
        model = ContentKNN()
        model.fit(history, valid)
        res = rank_metrics(model, history, valid, candidates, kmax=10, batch=1024, seed=seed)
        scores[column] = res.at("ndcg", 10)
    best = max(scores, key=lambda c: (scores[c], c == train.content_column))
    return ContentChoice(best, scores)


def split_with_content(split: Split, column: str) -> Split:
    """``split`` with every part's ``item_vectors`` from ``column``."""
    if column == split.train.content_column:
        return split
    return replace(
        split,
        train=split.train.with_content(column),
        valid=split.valid.with_content(column),
        test=split.test.with_content(column),
        params={**split.params, "content_column": column},
    )
