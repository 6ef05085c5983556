"""The hybrid candidate: the average of ``members`` hybrid fits from different seeds.

Each member is a :class:`~mmrec.recsys.hybrid.HybridRecommender` with its own seed
(:func:`member_seed`; member 0 has the run's seed, so it is the single fit of that seed), trained and
early-stopped on the same split. The ensemble's score of an item is the mean of the members' per-user
standardised scores (:func:`~mmrec.recsys.served.standardise`, the blend's scale): two fits from
different starting points make different mistakes, and averaging them ranks better than either.
Measured on validation (``benchmarks/README.md``, issue 11 eleventh pass): on ML-100k leave-last-out every
pair of seeds 0–2 beat the mean of its members, by 2.5–4.3 %.

Not the default (``HybridConfig.members`` is 1): on 2 cores it costs 1.6x one fit's wall time for +1.6 %
validation NDCG@10 on ML-100k, past the training-time budget; ``mmrec train --members 2`` turns it on.

Cost: ``members`` fits. On a CPU with two or more cores and a training set big enough for a child
process to pay (:data:`PARALLEL_MIN_INTERACTIONS`), the members train side by side, each on its
share of the cores (:mod:`mmrec.recsys.fit_apart`), which on 2 cores costs about one fit's wall time at
1 thread; elsewhere (a GPU, one core, a small data set) one after the other. Serving scores every
member (one forward pass each).
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import torch

from mmrec.errors import InvalidArgumentError, StoreError
from mmrec.recsys.data import InteractionData
from mmrec.recsys.hybrid import HybridConfig, HybridRecommender
from mmrec.recsys.served import standardise

#: Seeds of members ``k ≥ 1`` are ``seed + k * MEMBER_SEED_STRIDE``: far from the run seeds 0, 1, 2…, so
#: two runs' ensembles share no member.
MEMBER_SEED_STRIDE = 1000
#: Below this many training interactions the members are fitted in this process: a spawned child takes
#: ~3 s to import torch, more than a fit of a few thousand interactions.
PARALLEL_MIN_INTERACTIONS = 20_000


def member_seed(seed: int, k: int) -> int:
    """The seed of member ``k`` of an ensemble run with ``seed``."""
    return seed + k * MEMBER_SEED_STRIDE


class HybridEnsemble:
    """:class:`~mmrec.recsys.data.Recommender` averaging ``config.members`` hybrid fits.

    Parameters
    ----------
    config : HybridConfig, optional
        The members' configuration; ``members`` is how many (≥ 1), ``seed`` member 0's seed.
    """

    name = "Hybrid"

    def __init__(self, config: HybridConfig | None = None) -> None:
        self.config = config or HybridConfig()
        if not isinstance(self.config.members, int) or self.config.members < 1:
            raise InvalidArgumentError(f"members must be an integer ≥ 1, got {self.config.members!r}")
        self.members: list[HybridRecommender] = []
        self.seconds = 0.0

    # ----------------------------------------------------------------- training

    def member_models(self) -> list[HybridRecommender]:
        """The unfitted members (for a caller that fits them elsewhere, then :meth:`adopt` s them)."""
        return [
            HybridRecommender(replace(self.config, seed=member_seed(self.config.seed, k), members=1))
            for k in range(self.config.members)
        ]

    def adopt(self, members: Sequence[HybridRecommender], seconds: float) -> None:
        """Take fitted ``members`` (from :meth:`member_models`, in order) as this ensemble's."""
        if len(members) != self.config.members or any(m.model is None for m in members):
            raise InvalidArgumentError(f"an ensemble of {self.config.members} needs as many fitted members")
        self.members = list(members)
        self.config = replace(self.config, max_len=members[0].config.max_len)
        self.seconds = seconds

    def fit(
        self,
        train: InteractionData,
        valid: InteractionData | None = None,
        log: Callable[[str], None] | None = None,
    ) -> None:
        """Fit every member on ``train``, each early-stopped on ``valid`` (see :meth:`HybridRecommender.fit`)."""
        from mmrec.recsys.fit_apart import can_fit_apart, start_fits

        members = self.member_models()
        t0 = time.perf_counter()
        if len(members) > 1 and len(train) >= PARALLEL_MIN_INTERACTIONS and can_fit_apart():
            if log:
                log(f"fitting {len(members)} hybrid members side by side in child processes")
            executor, futures = start_fits(members, train, valid)
            try:
                members = []
                for k, future in enumerate(futures):
                    member, seconds = future.result()
                    members.append(member)
                    if log:
                        log(f"member {k} (seed {member.config.seed}): {_summary(member)} in {seconds:.1f} s")
            finally:
                executor.shutdown(wait=True, cancel_futures=True)
        else:
            for k, member in enumerate(members):
                tag = f"member {k}: " if len(members) > 1 else ""
                member.fit(train, valid, log=(lambda line, tag=tag: log(tag + line)) if log else None)
        self.adopt(members, time.perf_counter() - t0)

    # ----------------------------------------------------------------- what the trainer reports

    @property
    def history(self) -> list[dict[str, float]]:
        """Member 0's validation history (the reports' epochs; every member has its own)."""
        return self.members[0].history if self.members else []

    @property
    def best_epoch(self) -> int:
        return self.members[0].best_epoch if self.members else 0

    @property
    def averaged_epochs(self) -> list[int]:
        return self.members[0].averaged_epochs if self.members else []

    @property
    def member_epochs(self) -> list[dict[str, Any]]:
        """Per member: its seed, epochs run, best epoch and best validation NDCG@10."""
        return [
            {
                "seed": m.config.seed,
                "epochs": int(m.history[-1]["epoch"]) if m.history else 0,
                "best_epoch": int(m.best_epoch),
                "valid_ndcg@10": _best_valid(m),
            }
            for m in self.members
        ]

    # ----------------------------------------------------------------- scoring

    def _fitted(self) -> list[HybridRecommender]:
        if not self.members:
            raise RuntimeError("HybridEnsemble used before fit")
        return self.members

    def score(self, users: np.ndarray, history: InteractionData) -> np.ndarray:
        """``(B, n_items)``: the mean of the members' per-user standardised scores."""
        members = self._fitted()
        return _mean_standardised([m.score(users, history) for m in members])

    def score_sequences(self, sequences: list[np.ndarray], table: Sequence[torch.Tensor] | None = None) -> np.ndarray:
        """``(B, n_items)`` for item-index sequences; ``table``: one per member (:meth:`extended_table`)."""
        members = self._fitted()
        tables: Sequence[torch.Tensor | None] = table if table is not None else [None] * len(members)
        return _mean_standardised([m.score_sequences(sequences, t) for m, t in zip(members, tables, strict=True)])

    def extended_table(self, known: np.ndarray, content: np.ndarray) -> list[torch.Tensor]:
        """Each member's :meth:`HybridRecommender.extended_table`."""
        return [m.extended_table(known, content) for m in self._fitted()]

    @property
    def content_dim(self) -> int:
        return self._fitted()[0].content_dim

    # ----------------------------------------------------------------- persistence

    def to_bytes(self, item_ids: list[str]) -> bytes:
        """An ensemble checkpoint; one member's is that fit's own (:meth:`HybridRecommender.to_bytes`), the format
        every checkpoint had before ensembles, so a default (one-fit) checkpoint reads anywhere it did."""
        members = self._fitted()
        if len(members) == 1:
            return members[0].to_bytes(item_ids)
        buf = io.BytesIO()
        torch.save({"members": [m.to_bytes(item_ids) for m in members], "item_ids": item_ids}, buf)
        return buf.getvalue()


def _mean_standardised(scores: list[np.ndarray]) -> np.ndarray:
    if len(scores) == 1:
        return scores[0]
    return sum(standardise(s) for s in scores) / len(scores)  # type: ignore[return-value]


def _best_valid(member: HybridRecommender) -> float | None:
    values = [h["valid_ndcg@10"] for h in member.history if "valid_ndcg@10" in h]
    return round(float(max(values)), 4) if values else None


def _summary(member: HybridRecommender) -> str:
    best = _best_valid(member)
    epochs = int(member.history[-1]["epoch"]) if member.history else 0
    return f"{epochs} epochs, best {member.best_epoch}" + (f" (valid NDCG@10 {best:.4f})" if best is not None else "")


def load_hybrid(data: bytes) -> tuple[HybridRecommender | HybridEnsemble, list[str]]:
    """A served hybrid from its checkpoint bytes: an ensemble's (:meth:`HybridEnsemble.to_bytes`) or one
    fit's (:meth:`HybridRecommender.to_bytes`, also what checkpoints from before ensembles hold)."""
    import pickle

    try:
        blob = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        if not isinstance(blob, dict):
            raise TypeError(f"a {type(blob).__name__}, not a dict")
        if "members" not in blob:
            return HybridRecommender.from_blob(blob)
        members = [HybridRecommender.from_bytes(b)[0] for b in blob["members"]]
        item_ids = list(blob["item_ids"])
    except (RuntimeError, EOFError, pickle.UnpicklingError, KeyError, TypeError, ValueError) as e:
        raise StoreError(f"unreadable hybrid checkpoint: {e}") from e
    if not members:
        raise StoreError("unreadable hybrid checkpoint: an ensemble without members")
    ensemble = HybridEnsemble(replace(members[0].config, members=len(members)))
    ensemble.adopt(members, 0.0)
    return ensemble, item_ids
