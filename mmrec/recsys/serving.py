"""Where a serving snapshot keeps the item vectors: in memory, or left in LanceDB (``serving``).

* ``"memory"``: the snapshot holds every item's float16 vectors and a faiss index
  (:class:`~mmrec.recsys.item_side.ItemSide`): millisecond answers, about 2.4 kB per 384-d item with one
  modality (``benchmarks/recommend_latency.py``), so 24 GB at 10M items, per service worker.
* ``"lancedb"``: the snapshot holds ids, titles, flags, listing columns and profiles, no vectors
  (:class:`~mmrec.recsys.item_side_lance.LanceItemSide`); searches go through LanceDB's IVF_PQ index with
  the filter pushed down, and the few rows' vectors a result needs are read by id: tens of ms per call, a
  few hundred bytes per item.
* ``"auto"`` (the default): memory unless the snapshot's estimated size (rows × bytes per item) exceeds
  :attr:`ServingConfig.memory_budget_mb`, by default :data:`BUDGET_SHARE` of the machine's physical memory.
  Decided again at each new version of the items table (a count of its rows, no vector read): a catalog
  that grows past the budget moves to LanceDB, one that shrinks below :data:`RETURN_SHARE` of it back to
  memory, each move a full load of the items (an incremental fold keeps the mode of the snapshot it folds).

This module imports nothing heavy: the service settings and the argument parser use it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

from mmrec.errors import InvalidArgumentError

__all__ = ["BUDGET_SHARE", "RETURN_SHARE", "SERVING_MODES", "ServingConfig", "physical_memory_mb", "serving_problem"]

SERVING_MODES = ("memory", "lancedb", "auto")
#: The default memory budget of an ``"auto"`` snapshot: this share of physical memory. A quarter leaves room
#: for the encoders (about 1 GB), the allocator's slack (the process holds 2-3x the snapshot's own bytes,
#: ``benchmarks/README.md``) and a second snapshot during a full reload; with ``--workers N`` each worker
#: holds its own snapshot, so give each a budget of about this divided by N.
BUDGET_SHARE = 0.25
#: A LanceDB-served ``"auto"`` snapshot moves back to memory only below this share of the budget: the
#: estimate and a memory snapshot's measured bytes differ by a few per cent, and a catalog at the budget
#: would otherwise switch modes (a full load each) at every write.
RETURN_SHARE = 0.9


def physical_memory_mb() -> float:
    """This machine's physical memory in MB (8 GB when the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (ValueError, OSError, AttributeError):
        return 8192.0


def serving_problem(mode: object) -> str | None:
    """What is wrong with a ``serving`` value (``"must be one of …, got 'x'"``), or ``None``."""
    if mode not in SERVING_MODES:
        return f"must be one of {', '.join(SERVING_MODES)}, got {mode!r}"
    return None


@dataclass(frozen=True)
class ServingConfig:
    """How a snapshot serves the item vectors (see the module docstring).

    Attributes
    ----------
    mode : {"memory", "lancedb", "auto"}
    memory_budget_mb : float or None
        ``"auto"`` serves from memory while the estimated snapshot stays within this many MB (``None``:
        :data:`BUDGET_SHARE` of physical memory).
    """

    mode: str = "auto"
    memory_budget_mb: float | None = None

    def __post_init__(self) -> None:
        problem = serving_problem(self.mode)
        if problem:
            raise InvalidArgumentError(f"serving {problem}")
        b = self.memory_budget_mb
        if b is not None and (isinstance(b, bool) or not isinstance(b, int | float) or not math.isfinite(b) or b <= 0):
            raise InvalidArgumentError(f"memory_budget_mb must be a positive number of MB, got {b!r}")

    @property
    def budget_mb(self) -> float:
        """The memory budget in MB (the default resolved)."""
        return (
            float(self.memory_budget_mb) if self.memory_budget_mb is not None else BUDGET_SHARE * physical_memory_mb()
        )

    def choose(self, rows: int, bytes_per_item: float, current: str | None = None) -> str:
        """``"memory"`` or ``"lancedb"`` for a snapshot of ``rows`` items at ``bytes_per_item``.

        ``current``: the mode of the snapshot now served (``None``: none yet); from ``"lancedb"`` the items
        go back to memory only within :data:`RETURN_SHARE` of the budget.
        """
        if self.mode != "auto":
            return self.mode
        budget = self.budget_mb * 2**20 * (RETURN_SHARE if current == "lancedb" else 1.0)
        return "lancedb" if rows * bytes_per_item > budget else "memory"
