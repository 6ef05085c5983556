"""The contract between interaction data, recommender models and the evaluation harness.

Every model evaluated by ``mmrec evaluate`` — the baselines and the trained
hybrid — implements :class:`Recommender`: ``fit`` on an
:class:`InteractionData`, then ``score`` users against every item. Users and
items are dense indices into ``user_ids`` / ``item_ids``.

:func:`interaction_data` reads one from a database; :func:`concat` and
:func:`user_item_matrix` are the helpers that splits, metrics and models share.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from mmrec.errors import InvalidArgumentError
from mmrec.names import FUSED_COLUMN, MODALITIES, item_vector_columns
from mmrec.names import vector_column as raw_vector_column

if TYPE_CHECKING:
    import scipy.sparse as sp

    # Annotations only: neither module imports this one, so there is no cycle either way.
    from mmrec.recsys.userbook import UserBook
    from mmrec.store.items import Store


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
        ``(n_items, D)`` float32 content vectors (zeros where an item has none): the
        ``content_column`` of the items table, ``fused_vec`` unless another was chosen.
    content_column : str
        Which stored column ``item_vectors`` holds (what a served model must read again).
    vector_options : dict of str to np.ndarray
        Other stored columns the models may be given instead, column → ``(n_items, D_c)``
        (:func:`mmrec.recsys.content_choice.choose_content_column` picks one on validation);
        empty when there is no choice.
    """

    user_ids: list[str]
    item_ids: list[str]
    users: np.ndarray
    items: np.ndarray
    ts: np.ndarray
    weights: np.ndarray
    item_vectors: np.ndarray
    _order: np.ndarray | None = field(default=None, repr=False)
    content_column: str = FUSED_COLUMN
    vector_options: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

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
            content_column=self.content_column,
            vector_options=self.vector_options,
        )

    def content_choices(self) -> dict[str, np.ndarray]:
        """Every content column on offer, the current one first: column → ``(n_items, D_c)``."""
        return {self.content_column: self.item_vectors, **self.vector_options}

    def with_content(self, column: str) -> InteractionData:
        """The same interactions with ``column``'s vectors as ``item_vectors`` (the others stay on offer).

        Raises
        ------
        InvalidArgumentError
            When ``column`` is not one of :meth:`content_choices`.
        """
        choices = self.content_choices()
        if column not in choices:
            raise InvalidArgumentError(f"content column {column!r} is not on offer; valid: {', '.join(choices)}")
        if column == self.content_column:
            return self
        others = {c: v for c, v in choices.items() if c != column}
        return replace(self, item_vectors=choices[column], content_column=column, vector_options=others, _order=None)

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


# --------------------------------------------------------------------------- helpers


def concat(*parts: InteractionData) -> InteractionData:
    """The interactions of several parts of one split, in one :class:`InteractionData` (same index space)."""
    first = parts[0]
    return InteractionData(
        first.user_ids,
        first.item_ids,
        np.concatenate([p.users for p in parts]),
        np.concatenate([p.items for p in parts]),
        np.concatenate([p.ts for p in parts]),
        np.concatenate([p.weights for p in parts]),
        first.item_vectors,
        content_column=first.content_column,
        vector_options=first.vector_options,
    )


def user_item_matrix(data: InteractionData, *, positive: bool = True) -> sp.csr_matrix:
    """``(n_users, n_items)`` float32 CSR of the user–item pairs.

    Parameters
    ----------
    data : InteractionData
    positive : bool
        True: 1 where the pair's *summed* weight is > 0, so a view followed by a dislike
        is not a positive and negative events never become positives for matrix
        factorisation. False: 1 for every pair with any interaction (what is masked).
    """
    shape = (data.n_users, data.n_items)
    vals = data.weights.astype(np.float32) if positive else np.ones(len(data), np.float32)
    import scipy.sparse as sp  # here, so that reading interactions (and the Engine) does not import scipy

    m = sp.coo_matrix((vals, (data.users, data.items)), shape=shape).tocsr()  # duplicates are summed
    m.sum_duplicates()
    m.data = (m.data > 0).astype(np.float32)
    m.eliminate_zeros()
    return m


def _natural_key(s: str) -> list[Any]:
    # "movie/2" before "movie/10": item order decides tie-breaks in time (leave-last-out), so it
    # must follow the numbers in the ids, not their spelling.
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", s)]


def interaction_data(
    store: Store,
    book: UserBook,
    *,
    implicit: bool = False,
    vector_column: str = FUSED_COLUMN,
    content_choices: bool = False,
) -> InteractionData:
    """The database's interactions and item vectors (fused by default) as an :class:`InteractionData`.

    Items are every stored item (with or without interactions), users every user with at least
    one interaction on a stored item; both are indexed in natural id order ("movie/2" before
    "movie/10"). Interactions on items no longer in the catalog are dropped.

    Parameters
    ----------
    store : Store
        The database's items table (ids and fused vectors).
    book : UserBook
        The database's interactions (``Engine.users()``).
    implicit : bool
        Treat every interaction as a positive of weight 1 (the standard implicit-feedback
        protocol, e.g. "every MovieLens rating is an interaction"); by default the stored event
        weights are kept (skips, dislikes and low ratings are negative or zero).
    vector_column : str
        The content vector column: ``fused_vec`` (what training and serving use), one modality's
        shared-space vector (``text_shared``, …) or its raw encoder vector (``text_vec``, …), for
        benchmarks that compare what the recommender gets from each.
    content_choices : bool
        Also offer (``vector_options``) the raw encoder vectors of each modality that *every* item
        has, for the models to choose on validation: the fused vector of a one-modality catalog is
        that modality's vector seen through the fusion layer, which may lose what the recommender
        needs (``benchmarks/README.md``, issue 11, ninth pass). A modality some items lack is not
        offered: those items would have no content. Costs one more ``(n_items, D)`` array each.

    Raises
    ------
    InvalidArgumentError
        When the database has no interactions, or ``vector_column`` is not one of the columns above.
    """
    import pyarrow.compute as pc

    valid = item_vector_columns()
    if vector_column not in valid:
        raise InvalidArgumentError(f"unknown item vector column {vector_column!r}; valid columns: {', '.join(valid)}")
    raw_ids, vecs = store.item_vectors(vector_column)
    order = sorted(range(len(raw_ids)), key=lambda i: _natural_key(raw_ids[i]))
    item_ids = [raw_ids[i] for i in order]
    item_vectors = vecs[order]
    options: dict[str, np.ndarray] = {}
    if content_choices:
        flags = store.items().search().select(["id", *(f"has_{m}" for m in MODALITIES)]).limit(None).to_arrow()
        for m in MODALITIES:
            column = raw_vector_column(m)
            if column == vector_column or not len(flags) or not pc.all(flags.column(f"has_{m}")).as_py():
                continue
            ids_c, vecs_c = store.item_vectors(column)
            # a vector that failed to encode is null (zeros) though its media exists: not on every item then
            if ids_c == raw_ids and bool(np.all(np.any(vecs_c != 0, axis=1))):
                options[column] = vecs_c[order]

    t = book.interaction_columns(["user", "item", "weight", "ts"])
    if t is None:
        raise InvalidArgumentError(f"database {store.uri!r} has no interactions; import some first")
    item_index = {iid: i for i, iid in enumerate(item_ids)}
    items_all = np.array([item_index.get(x, -1) for x in t.column("item").to_pylist()], np.int64)
    keep = items_all >= 0
    users_raw = np.asarray(t.column("user").to_pylist(), dtype=object)[keep]
    user_ids = sorted(set(users_raw.tolist()), key=_natural_key)
    user_index = {u: i for i, u in enumerate(user_ids)}
    ts_us = pc.cast(t.column("ts"), "int64").to_numpy(zero_copy_only=False)[keep]
    weights = np.asarray(t.column("weight").to_numpy(zero_copy_only=False), np.float32)[keep]
    if implicit:
        weights = np.ones_like(weights)
    return InteractionData(
        user_ids=user_ids,
        item_ids=item_ids,
        users=np.array([user_index[u] for u in users_raw], np.int32),
        items=items_all[keep].astype(np.int32),
        ts=(ts_us // 1_000_000).astype(np.int64),
        weights=weights,
        item_vectors=item_vectors,
        content_column=vector_column,
        vector_options=options,
    )
