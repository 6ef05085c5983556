"""Train / validation / test splits of an :class:`~mmrec.recsys.data.InteractionData`.

One function per protocol of :data:`mmrec.names.PROTOCOLS`, and :func:`make_split` to pick
one by name. Every split keeps the full user and item index space in all three parts, so a
model fitted on ``train`` scores the same items that ``valid`` and ``test`` name::

    split = leave_last_out(data)
    history, targets, candidates = split.stage("test")  # history = train + valid

The protocols (which interaction goes where) are documented on each function; how the parts
are ranked and scored is in :mod:`mmrec.recsys.evaluation`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mmrec.errors import InvalidArgumentError
from mmrec.names import PROTOCOLS
from mmrec.recsys.data import InteractionData, concat


@dataclass
class Split:
    """Train / validation / test parts of one :class:`InteractionData` (same index space).

    Attributes
    ----------
    protocol : str
        One of :data:`PROTOCOLS`.
    train, valid, test : InteractionData
    valid_candidates, test_candidates : np.ndarray or None
        ``(C,)`` item indices ranked when validating / testing; ``None`` = every item.
    """

    protocol: str
    train: InteractionData
    valid: InteractionData
    test: InteractionData
    valid_candidates: np.ndarray | None = None
    test_candidates: np.ndarray | None = None
    params: dict[str, Any] = field(default_factory=dict)

    def stage(self, name: str) -> tuple[InteractionData, InteractionData, np.ndarray | None]:
        """``(history, targets, candidates)`` for ``"valid"`` (history = train) or ``"test"`` (train + valid)."""
        if name == "valid":
            return self.train, self.valid, self.valid_candidates
        if name == "test":
            return concat(self.train, self.valid), self.test, self.test_candidates
        raise ValueError(f"unknown stage {name!r}; use 'valid' or 'test'")

    def describe(self) -> dict[str, Any]:
        """Sizes of the parts, for reports."""
        out: dict[str, Any] = {"protocol": self.protocol, **self.params}
        for name in ("train", "valid", "test"):
            part: InteractionData = getattr(self, name)
            out[name] = {"interactions": len(part), "users": int(len(np.unique(part.users)))}
        for name in ("valid_candidates", "test_candidates"):
            cands = getattr(self, name)
            out[name] = None if cands is None else len(cands)
        return out


def _parts(data: InteractionData, part: np.ndarray) -> tuple[InteractionData, InteractionData, InteractionData]:
    return data.subset(part == 0), data.subset(part == 1), data.subset(part == 2)


def leave_last_out(data: InteractionData) -> Split:
    """Per user in time order (ties by item index): last positive → test, second-last → validation.

    Users with fewer than 3 positive interactions keep everything in train. Non-positive
    interactions (skips, dislikes) are never targets; they go to the part of the time they
    happened in: after the test positive → test, after the validation positive → validation,
    else train (so nothing from the future leaks into the history).
    """
    o = data.chronological()
    u = data.users[o]
    pos = data.weights[o] > 0
    n_pos = np.bincount(u[pos], minlength=data.n_users)
    start = np.concatenate([[0], np.cumsum(n_pos)[:-1]])  # first global positive number of each user
    pidx = np.full(len(o), -1, np.int64)
    pidx[pos] = (np.cumsum(pos) - 1)[pos] - start[u[pos]]  # index within the user's positive sequence
    eligible = n_pos[u] >= 3
    is_test = pos & eligible & (pidx == n_pos[u] - 1)
    is_valid = pos & eligible & (pidx == n_pos[u] - 2)
    # positions (in chronological order) of each user's test and validation positives
    where = np.arange(len(o))
    test_at = np.full(data.n_users, len(o) + 1, np.int64)
    valid_at = np.full(data.n_users, len(o) + 1, np.int64)
    test_at[u[is_test]] = where[is_test]
    valid_at[u[is_valid]] = where[is_valid]
    role = np.zeros(len(o), np.int8)
    role[~pos & (where > valid_at[u])] = 1
    role[~pos & (where > test_at[u])] = 2
    role[is_valid] = 1
    role[is_test] = 2
    part = np.empty(len(o), np.int8)
    part[o] = role
    return Split("leave-last-out", *_parts(data, part))


def _check_fractions(test_fraction: float, valid_fraction: float) -> None:
    if not (0 < test_fraction < 1 and 0 <= valid_fraction < 1 and test_fraction + valid_fraction < 1):
        raise InvalidArgumentError(
            f"need 0 < test_fraction < 1, 0 <= valid_fraction < 1 and their sum < 1; "
            f"got {test_fraction} and {valid_fraction}"
        )


def global_temporal(data: InteractionData, test_fraction: float = 0.1, valid_fraction: float = 0.1) -> Split:
    """One time cut for everyone: the newest ``test_fraction`` of interactions → test, the ``valid_fraction`` before → validation.

    Interactions are ordered by (time, user, item), so ties at a cut are split deterministically.
    Test users may have no training history (they are evaluated as cold users).
    """
    _check_fractions(test_fraction, valid_fraction)
    o = np.lexsort((data.items, data.users, data.ts))
    n = len(o)
    n_test, n_valid = round(n * test_fraction), round(n * valid_fraction)
    role = np.zeros(n, np.int8)
    role[n - n_test - n_valid : n - n_test] = 1
    role[n - n_test :] = 2
    part = np.empty(n, np.int8)
    part[o] = role
    return Split(
        "global-temporal",
        *_parts(data, part),
        params={"test_fraction": test_fraction, "valid_fraction": valid_fraction},
    )


def random_split(
    data: InteractionData, test_fraction: float = 0.1, valid_fraction: float = 0.1, seed: int = 0
) -> Split:
    """Interactions assigned to test / validation / train uniformly at random (seeded)."""
    _check_fractions(test_fraction, valid_fraction)
    n = len(data)
    perm = np.random.default_rng(seed).permutation(n)
    n_test, n_valid = round(n * test_fraction), round(n * valid_fraction)
    part = np.zeros(n, np.int8)
    part[perm[:n_test]] = 2
    part[perm[n_test : n_test + n_valid]] = 1
    return Split(
        "random",
        *_parts(data, part),
        params={"test_fraction": test_fraction, "valid_fraction": valid_fraction, "seed": seed},
    )


def item_cold_start(data: InteractionData, fraction: float = 0.2, seed: int = 0, valid_fraction: float = 0.1) -> Split:
    """Hold items out of training entirely: a model must recommend items nobody has touched.

    ``fraction`` of all items (seeded draw) are test items: every interaction with them goes to
    test, and at test time only they are ranked. Another ``valid_fraction`` of all items, drawn
    from the rest, are validation items in the same way (for tuning and early stopping on cold
    items). Training holds the interactions with the remaining items.
    """
    _check_fractions(fraction, valid_fraction)
    perm = np.random.default_rng(seed).permutation(data.n_items)
    n_test, n_valid = round(data.n_items * fraction), round(data.n_items * valid_fraction)
    test_items, valid_items = np.sort(perm[:n_test]), np.sort(perm[n_test : n_test + n_valid])
    item_part = np.zeros(data.n_items, np.int8)
    item_part[valid_items] = 1
    item_part[test_items] = 2
    return Split(
        "item-cold-start",
        *_parts(data, item_part[data.items]),
        valid_candidates=valid_items.astype(np.int32) if n_valid else None,
        test_candidates=test_items.astype(np.int32),
        params={"fraction": fraction, "valid_fraction": valid_fraction, "seed": seed},
    )


def make_split(data: InteractionData, protocol: str, seed: int = 0) -> Split:
    """The split for a protocol name (:data:`PROTOCOLS`) with its default fractions."""
    if protocol == "leave-last-out":
        return leave_last_out(data)
    if protocol == "global-temporal":
        return global_temporal(data)
    if protocol == "random":
        return random_split(data, seed=seed)
    if protocol == "item-cold-start":
        return item_cold_start(data, seed=seed)
    raise InvalidArgumentError(f"unknown protocol {protocol!r}; valid protocols: {', '.join(PROTOCOLS)}")
