"""Which items a training position has already seen: the hybrid's softmax leaves them out.

Serving never recommends an item the user already has (``recommend`` drops seen items unless
``include_seen``), and the evaluation harness masks them. A softmax over the whole catalog at
every training position nevertheless spends part of each gradient pushing the user's own earlier
items down, a ranking nobody will ever read. :class:`SeenMask` gives, for the positions of a training
batch, which catalog columns were seen before (in the window, and in the user's history before the
window), so that the loss ranks the target among the items the user could still be recommended.

Memory stays per batch: the ``(B, W + 1)`` first-seen positions are built for the batch's windows from
their inputs and a ragged array of the items before each window (at most ``prior_cap`` of them, the
newest), never a ``(windows, W)`` table.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch


class SeenMask:
    """First-seen positions of the items in training windows.

    Parameters
    ----------
    prior : list of np.ndarray
        Per window, the compact item indices (1..W) the user had before the window starts.
    n_columns : int
        ``W + 1``: compact catalog width including the padding column 0.
    prior_cap : int
        Keep at most this many of the newest items before each window (a heavy user's n² / L
        prior entries would otherwise dominate memory).
    """

    def __init__(self, prior: list[np.ndarray], n_columns: int, prior_cap: int = 1000) -> None:
        kept = [p[-prior_cap:] if prior_cap > 0 else p[:0] for p in prior]
        self.lengths = np.array([len(p) for p in kept], np.int64)
        self.offsets = np.r_[0, np.cumsum(self.lengths)]
        self.flat = np.concatenate(kept).astype(np.int64) if kept and self.offsets[-1] else np.zeros(0, np.int64)
        self.n_columns = int(n_columns)

    def first_seen(self, windows: np.ndarray, inputs: torch.Tensor) -> torch.Tensor:
        """``(B, W + 1)`` int16 (int32 for windows past 32,766): the first batch column at which each item is an
        input, -1 when the user had it before the window, ``width`` (never) otherwise.

        Parameters
        ----------
        windows : np.ndarray
            ``(B,)`` window indices of the batch.
        inputs : torch.Tensor
            ``(B, width)`` compact item indices of the batch's inputs, 0 for padding.
        """
        b, width = inputs.shape
        device = inputs.device
        dtype = torch.int16 if width < torch.iinfo(torch.int16).max else torch.int32
        out = torch.full((b, self.n_columns), width, dtype=dtype, device=device)
        pos = torch.arange(width, dtype=dtype, device=device).expand(b, width)
        out.scatter_reduce_(1, inputs, pos, reduce="amin")
        lens = self.lengths[windows]
        if lens.sum():
            rows = np.repeat(np.arange(b), lens)
            items = np.concatenate([self.flat[self.offsets[w] : self.offsets[w + 1]] for w in windows])
            out[torch.from_numpy(rows).to(device), torch.from_numpy(items).to(device)] = -1
        return out

    def excluded(
        self, windows: np.ndarray, inputs: torch.Tensor, targets: torch.Tensor
    ) -> Callable[[int, int], torch.Tensor]:
        """For :func:`mmrec.recsys.fused_softmax.linear_cross_entropy`: ``excluded(start, stop)`` → ``(n, W)`` bool
        rows, one per real position ``start:stop`` of the batch (numbered as ``h[targets > 0]`` orders them): True
        where the position has already seen catalog column ``w`` (compact item ``w + 1``) — an input at its column
        or before, or an item before the window — and ``w + 1`` is not its own target (a repeat of an earlier item
        stays rankable). Built per block from the ``(B, W + 1)`` first-seen columns, never as ``(P, W)``.

        Parameters
        ----------
        windows : np.ndarray
            ``(B,)`` window indices of the batch.
        inputs, targets : torch.Tensor
            ``(B, width)`` compact item indices of the batch's inputs and next-item targets, 0 for padding.
        """
        first, at_row, at_col = self._positions(windows, inputs, targets)
        own = targets[targets > 0] - 1

        def block(start: int, stop: int) -> torch.Tensor:
            seen = first[at_row[start:stop], 1:] <= at_col[start:stop]
            seen[torch.arange(stop - start, device=seen.device), own[start:stop]] = False
            return seen

        return block

    def excluded_candidates(
        self, windows: np.ndarray, inputs: torch.Tensor, targets: torch.Tensor, candidates: torch.Tensor
    ) -> torch.Tensor:
        """The same rule over sampled columns: ``(P, C)`` bool for a softmax over ``candidates``.

        Parameters
        ----------
        windows, inputs, targets
            As for :meth:`excluded`.
        candidates : torch.Tensor
            ``(C,)`` compact item indices (1..W): first the ``P`` real positions' own targets in their order, then
            the sampled negatives. Column ``i`` of row ``i`` (its target) is never excluded.
        """
        first, at_row, at_col = self._positions(windows, inputs, targets)
        # (P, C) straight away: first[at_row] would copy a (P, W + 1) array first.
        seen = first[at_row.unsqueeze(1), candidates] <= at_col
        own = torch.arange(len(at_row), device=seen.device)
        seen[own, own] = False
        return seen

    def _positions(
        self, windows: np.ndarray, inputs: torch.Tensor, targets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """First-seen columns ``(B, W + 1)``, and each real position's batch row ``(P,)`` and column ``(P, 1)``."""
        first = self.first_seen(windows, inputs)
        at_row, at_col = (targets > 0).nonzero(as_tuple=True)
        return first, at_row, at_col.to(first.dtype).unsqueeze(1)
