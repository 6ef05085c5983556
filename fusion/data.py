"""The training inputs of a fusion layer: a catalog's stored per-modality vectors, as arrays.

Built by ``mmrec.space`` from a database (or loaded from an exported ``.npz`` by the device
benchmark) and consumed by :func:`fusion.train.train_fusion`; it knows nothing of either.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch only for tensors(): a query fused in NumPy (fusion.arrays) never imports it
    import torch


@dataclass
class FusionData:
    """Training inputs for ``N`` items.

    Attributes
    ----------
    bridged : np.ndarray
        ``(N, M, D)`` float32, zeros where absent.
    raw : dict
        Modality → ``(N, d_m)`` float32 encoder features, zeros where absent.
    mask : np.ndarray
        ``(N, M)`` bool.
    """

    bridged: np.ndarray
    raw: dict[str, np.ndarray]
    mask: np.ndarray

    def __len__(self) -> int:
        return len(self.mask)

    def subset(self, idx: np.ndarray) -> FusionData:
        """The items at ``idx`` (``(K,)`` indices or an ``(N,)`` bool mask), in that order."""
        return FusionData(self.bridged[idx], {m: r[idx] for m, r in self.raw.items()}, self.mask[idx])

    def tensors(self, device: torch.device) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """``(bridged (N, M, D), raw {modality: (N, d_m)}, mask (N, M))`` as tensors on ``device``."""
        import torch

        return (
            torch.from_numpy(self.bridged).to(device),
            {m: torch.from_numpy(r).to(device) for m, r in self.raw.items()},
            torch.from_numpy(self.mask).to(device),
        )
