"""The contract between interaction data, recommender models and the evaluation harness.

Every model evaluated by ``mmrec evaluate`` — the baselines and the trained
hybrid — implements :class:`Recommender`: ``fit`` on an
:class:`InteractionData`, then ``score`` users against every item. Users and
items are dense indices into ``user_ids`` / ``item_ids``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

import numpy as np


@dataclass
class InteractionData:
    """Interactions as parallel arrays, plus the items' content vectors.

    Attributes
    ----------
    user_ids, item_ids : list of str
        Index → id. Items without interactions are included (they can be recommended).
    users, items : np.ndarray
        ``(E,)`` int32 indices of each interaction.
    ts : np.ndarray
        ``(E,)`` int64 Unix seconds.
    weights : np.ndarray
        ``(E,)`` float32 event weights (may be negative for skips and dislikes).
    item_vectors : np.ndarray
        ``(n_items, D)`` float32 fused content vectors (zeros where an item has none).
    """

    user_ids: list[str]
    item_ids: list[str]
    users: np.ndarray
    items: np.ndarray
    ts: np.ndarray
    weights: np.ndarray
    item_vectors: np.ndarray
    _order: np.ndarray | None = field(default=None, repr=False)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __len__(self) -> int:
        return len(self.users)

    def chronological(self) -> np.ndarray:
        """Interaction order by (user, time, item): ties in time broken by item index."""
        if self._order is None:
            self._order = np.lexsort((self.items, self.ts, self.users))
        return self._order

    def sequences(self, positive_only: bool = True) -> list[np.ndarray]:
        """Per user, their items in time order (ties by item index): ``n_users`` int32 arrays."""
        order = self.chronological()
        if positive_only:
            order = order[self.weights[order] > 0]
        users, items = self.users[order], self.items[order]
        bounds = np.searchsorted(users, np.arange(self.n_users + 1))
        return [items[bounds[u] : bounds[u + 1]].astype(np.int32) for u in range(self.n_users)]

    def subset(self, mask: np.ndarray) -> InteractionData:
        """The interactions where ``mask`` is true (same users and items index space)."""
        return InteractionData(
            self.user_ids,
            self.item_ids,
            self.users[mask],
            self.items[mask],
            self.ts[mask],
            self.weights[mask],
            self.item_vectors,
        )

    def counts_per_item(self) -> np.ndarray:
        """``(n_items,)`` number of positive interactions per item."""
        return np.bincount(self.items[self.weights > 0], minlength=self.n_items)


class Recommender(Protocol):
    """A model the evaluation harness can fit and score."""

    #: Short name used in tables ("MostPopular", "ALS", "Hybrid", …).
    name: str

    def fit(self, train: InteractionData, valid: InteractionData | None = None) -> None:
        """Learn from ``train``; ``valid`` (held-out next interactions) may be used for early stopping or tuning."""

    def score(self, users: np.ndarray, history: InteractionData) -> np.ndarray:
        """Scores of every item for ``users``.

        Parameters
        ----------
        users : np.ndarray
            ``(B,)`` user indices.
        history : InteractionData
            What is known about the users at prediction time (train, or train + validation for
            the final test); sequence models read the users' latest items from it.

        Returns
        -------
        np.ndarray
            ``(B, n_items)`` float32; higher is better. The harness masks seen items itself.
        """
        ...
