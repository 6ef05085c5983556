"""Explanations: which history items and which modalities are behind a recommendation.

* :class:`HistoryExplainer` names the history items most responsible for a recommended
  item: how much its score drops when each one is left out of the user's taste
  (:func:`rank_reasons`; the taste is the decayed-weight sum of the history's fused vectors).
* :meth:`HistoryExplainer.modalities` says which modalities carried the match for *that*
  item: per modality, the shared-space cosine between the item and each contributing history
  item, weighted like the contribution (so "image 70 %" means the pictures are what the cow
  and the recommended sheep have in common, not the fusion layer's global weights).
* :func:`modality_weights` (the item's fusion attention weights, shown when nothing is
  explained) and :func:`matched_modality` (which of its modality vectors is closest to the
  interest that retrieved it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any

import numpy as np

from mmrec.names import FUSED_COLUMN, MODALITIES, shared_column
from mmrec.recsys.profiles import Profile
from mmrec.store.items import Store

#: A reason is named only when it contributes at least this share of the strongest one.
MIN_SHARE = 0.25


@dataclass(frozen=True)
class Because:
    """One history item behind a recommendation."""

    item: str
    title: str
    event: str
    contribution: float
    #: The modality in which this history item and the recommended one are most alike (shared-space cosine).
    modality: str = ""


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
    """The history items that drove a recommendation, strongest first: leave-one-out score change.

    The profile scores an item by its cosine to the user's taste ``u = Σ_h w_h v_h``; a history
    item's contribution to *this* item is how much the score drops without it:
    ``cos(t, u) − cos(t, u − w_h v_h)``. Raw similarity × weight does not discriminate: in a
    space where everything is somewhat similar, the heaviest history items lead every list (the
    demo's pig was "because of" the violin); without the violin the taste moves *towards* the pig,
    so its contribution is negative and it is not named.

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
        Only positive contributions, and only those of at least a quarter of the strongest.
    """
    t = np.asarray(target, np.float64)
    v = np.asarray(vectors, np.float64)
    w = np.array([it[3] for it in items], np.float64)
    u = (w[:, None] * v).sum(axis=0)
    without = u[None, :] - w[:, None] * v  # (H, D): the taste without each history item

    def cos(a: np.ndarray) -> np.ndarray:
        return (a @ t) / np.maximum(np.linalg.norm(a, axis=-1) * np.linalg.norm(t), 1e-12)

    delta = cos(u) - cos(without)
    scored = [
        Because(item, title, event, round(float(d), 4))
        for (item, title, event, _w), d in zip(items, delta, strict=True)
        if d > 1e-9
    ]
    scored.sort(key=lambda b: -b.contribution)
    return [b for b in scored[:top] if b.contribution >= MIN_SHARE * scored[0].contribution]


class HistoryExplainer:
    """Names the history items most responsible for a recommendation (leave-one-out, :func:`rank_reasons`).

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
        columns = ["id", "title", FUSED_COLUMN, *(shared_column(m) for m in MODALITIES)]
        rows = store.rows(list(weights), columns=columns) if weights else {}
        kept = [i for i in weights if rows.get(i, {}).get(FUSED_COLUMN) is not None]
        self.items = [(i, rows[i].get("title") or "", events[i], weights[i]) for i in kept]
        self.vectors = np.stack([np.asarray(rows[i][FUSED_COLUMN], np.float32) for i in kept]) if kept else None
        self.position = {i: n for n, i in enumerate(kept)}
        #: history item id → modality → its shared-space vector (modalities it has)
        self.shared = {
            i: {
                m: np.asarray(rows[i][shared_column(m)], np.float32)
                for m in MODALITIES
                if rows[i].get(shared_column(m)) is not None
            }
            for i in kept
        }

    def __call__(self, row: dict[str, Any]) -> list[Because]:
        if self.vectors is None or row.get(FUSED_COLUMN) is None:
            return []
        reasons = rank_reasons(self.items, self.vectors, row[FUSED_COLUMN], self.top)
        return [
            replace(
                b,
                modality=closest_modality(
                    row, self.shared.get(b.item, {}), [v for h, v in self.shared.items() if h != b.item]
                ),
            )
            for b in reasons
        ]

    def modalities(self, row: dict[str, Any], because: Sequence[Because]) -> dict[str, float]:
        """Share of the match carried by each modality, between ``row`` and its contributing history items.

        Per modality ``m`` both have: ``s_m = Σ_h contribution_h × max(0, cos(item_m, h_m))`` over the
        reasons ``h``; the shares are ``s_m / Σ s`` (``{}`` when nothing matches in any modality).
        """
        return modality_shares(row, [(b.contribution, self.shared.get(b.item, {})) for b in because])


def closest_modality(
    row: dict[str, Any], vectors: dict[str, np.ndarray], others: Sequence[dict[str, np.ndarray]] = ()
) -> str:
    """The modality in which ``row`` and a history item (its shared-space ``vectors``) are most alike (``""``: none shared).

    Raw cosines are not comparable across modalities: in the pretrained space every pair of sounds
    is close (the demo's guitar, flute, trumpet and piano were all "because of the violin, in audio").
    So each modality's cosine is standardised against how alike ``row`` is, in that modality, to
    the ``others`` (the rest of the user's history, shared-space vectors by modality):
    ``(cos(row, h) − mean(cos(row, others))) / std(cos(row, history))``. The modality in which this
    history item stands out most from the rest is the one that carried the match (on the demo the
    guitars now match the violin in the picture, the flute and the piano in the text). Without
    others in a modality its raw cosine is used.
    """
    sims = {}
    for m, h in vectors.items():
        v = row.get(shared_column(m))
        if v is None:
            continue
        own = float(np.dot(h, v))
        rest = [float(np.dot(o[m], v)) for o in others if m in o]
        # 1e-6: a history whose items are all equally alike to row in m gives a spread of zero
        sims[m] = (own - float(np.mean(rest))) / (float(np.std([own, *rest])) + 1e-6) if rest else own
    return max(sims, key=sims.get) if sims else ""


def modality_shares(row: dict[str, Any], reasons: Sequence[tuple[float, dict[str, np.ndarray]]]) -> dict[str, float]:
    """Per-modality share of the match between an item and weighted history items (see :meth:`HistoryExplainer.modalities`).

    Parameters
    ----------
    row : dict
        The recommended item's row, with its ``<modality>_shared`` ``(D,)`` unit vectors (``None`` where missing).
    reasons : sequence of (weight, {modality: (D,) vector})
        The contributing history items' weights and shared-space vectors.
    """
    totals: dict[str, float] = {}
    for weight, vectors in reasons:
        for m, h in vectors.items():
            v = row.get(shared_column(m))
            if v is not None:
                totals[m] = totals.get(m, 0.0) + max(0.0, float(weight)) * max(0.0, float(np.dot(h, v)))
    total = sum(totals.values())
    if total <= 0:
        return {}
    return {m: round(t / total, 4) for m, t in sorted(totals.items(), key=lambda x: -x[1]) if t > 0}


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
