"""Explanations: which history items and which modalities are behind a recommendation.

* :class:`HistoryExplainer` names the history items most responsible for a recommended
  item: their similarity to it times their decayed positive event weight.
* :func:`modality_weights` and :func:`matched_modality` say which modalities carried the
  match: the item's fusion attention weights, and which of its per-modality shared-space
  vectors is closest to the interest that retrieved it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

from mmrec.names import MODALITIES, shared_column
from mmrec.recsys.profiles import Profile
from mmrec.store.items import Store


@dataclass(frozen=True)
class Because:
    """One history item behind a recommendation."""

    item: str
    title: str
    event: str
    contribution: float


def decayed_positive_weights(profile: Profile, half_life_days: float) -> dict[str, float]:
    """History item → sum of its positive event weights, each halved every ``half_life_days`` before the profile's newest event."""
    weights: dict[str, float] = {}
    half = half_life_days * 86400.0
    ref = profile.ref_time or datetime.now(timezone.utc)
    for item, _event, weight, ts in profile.history:
        if weight > 0:
            weights[item] = weights.get(item, 0.0) + weight * 0.5 ** (max(0.0, (ref - ts).total_seconds()) / half)
    return weights


def rank_reasons(
    items: Sequence[tuple[str, str, str, float]], vectors: np.ndarray, target: np.ndarray, top: int = 3
) -> list[Because]:
    """The history items that drove a recommendation, strongest first.

    Parameters
    ----------
    items : sequence of (item, title, event, weight)
        The user's positive history items with their decayed weights.
    vectors : np.ndarray
        ``(H, D)`` the history items' fused vectors, in the order of ``items``.
    target : np.ndarray
        ``(D,)`` the recommended item's fused vector.
    top : int
        At most this many reasons.

    Returns
    -------
    list of Because
        Contribution = similarity × weight; only positive similarities, and only items that
        contribute at least half of the strongest one (not every liked item with a faint similarity).
    """
    sims = vectors @ np.asarray(target, np.float32)
    scored = [
        Because(item, title, event, round(float(sim) * w, 4))
        for (item, title, event, w), sim in zip(items, sims, strict=True)
        if sim > 0
    ]
    scored.sort(key=lambda b: -b.contribution)
    return [b for b in scored[:top] if b.contribution >= 0.5 * scored[0].contribution]


class HistoryExplainer:
    """Names the history items most responsible for a recommendation: similarity × decayed positive weight.

    Built once per request: the user's positive history and its items' fused vectors are read
    once, then each recommended item is explained with one matrix-vector product.

    Parameters
    ----------
    store : Store
        Where the history items' titles and fused vectors are read.
    profile : Profile
    half_life_days : float
        The profiles' half-life (:class:`mmrec.config.ProfileConfig`).
    top : int
        Reasons per recommendation at most.
    """

    def __init__(self, store: Store, profile: Profile, half_life_days: float, top: int = 3) -> None:
        self.top = top
        weights = decayed_positive_weights(profile, half_life_days)
        events = {item: event for item, event, _, _ in profile.history}
        rows = store.rows(list(weights), columns=["id", "title", "fused_vec"]) if weights else {}
        kept = [i for i in weights if rows.get(i, {}).get("fused_vec") is not None]
        self.items = [(i, rows[i].get("title") or "", events[i], weights[i]) for i in kept]
        self.vectors = np.stack([np.asarray(rows[i]["fused_vec"], np.float32) for i in kept]) if kept else None

    def __call__(self, row: dict[str, Any]) -> list[Because]:
        if self.vectors is None or row.get("fused_vec") is None:
            return []
        return rank_reasons(self.items, self.vectors, row["fused_vec"], self.top)


def modality_weights(row: dict[str, Any]) -> dict[str, float]:
    """The item's fusion attention weight per modality it has (``{}`` without fused vector)."""
    weights = row.get("fusion_weights")
    if weights is None:
        return {}
    return {m: round(float(w), 4) for m, w in zip(MODALITIES, weights, strict=True) if w > 0}


def matched_modality(direction: np.ndarray, row: dict[str, Any]) -> str:
    """The item's modality whose shared-space vector is closest to ``direction`` (``""`` when it has none)."""
    per = {
        m: float(np.dot(direction, row[shared_column(m)])) for m in MODALITIES if row.get(shared_column(m)) is not None
    }
    return max(per, key=per.get) if per else ""
