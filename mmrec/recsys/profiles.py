"""User profiles: time-decayed interest vectors, updated one interaction at a time.

A profile holds up to ``max_interests`` interest vectors and one negative
vector, all in the shared space. Each is a decayed sum of item fused vectors:
an interaction of weight ``w`` at time ``t`` counts ``w · 2^(-(now - t) / half_life)``.
The sums are kept relative to the profile's reference time (its newest
interaction), so a new interaction costs O(interests × D): decay the sums to
the new time, then add the item's vector to the nearest interest (or open a
new interest when it is far from all of them; when there are too many, the two
closest merge). Negative events (skip, dislike) add to the negative vector.
This is online clustering, so a user who likes both jazz and cooking gets two
interests without a full rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np

from mmrec.config import ProfileConfig

__all__ = ["HISTORY_LIMIT", "Profile", "ProfileConfig", "event_key", "fold"]

#: Newest history entries kept per user for explanations.
HISTORY_LIMIT = 500


def event_key(user: str, item: str, event: str, ts: datetime) -> str:
    """The deduplication key of an event: the same user, item, event and time is one event.

    It is also the tie-break of the fold order: a profile folds its events sorted by ``(ts, key)``.
    """
    return f"{user}\x1f{item}\x1f{event}\x1f{ts.isoformat()}"


@dataclass
class Profile:
    """One user's aggregated state (see the module docstring)."""

    user: str
    dim: int
    ref_time: datetime | None = None
    sums: list[np.ndarray] = field(default_factory=list)  # (D,) each, unnormalised
    masses: list[float] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    negative: np.ndarray | None = None
    negative_mass: float = 0.0
    events: int = 0
    seen: set[str] = field(default_factory=set)
    #: Newest last: (item, event, weight, ts).
    history: list[tuple[str, str, float, datetime]] = field(default_factory=list)

    # ----------------------------------------------------------------- updates

    def _decay_to(self, t: datetime, half_life_s: float) -> float:
        """Move the reference time forward to ``t``; returns the weight factor for an event at ``t``."""
        if self.ref_time is None:
            self.ref_time = t
            return 1.0
        dt = (t - self.ref_time).total_seconds()
        if dt >= 0:
            f = 0.5 ** (dt / half_life_s)
            self.sums = [s * f for s in self.sums]
            self.masses = [m * f for m in self.masses]
            if self.negative is not None:
                self.negative = self.negative * f
            self.negative_mass *= f
            self.ref_time = t
            return 1.0
        return 0.5 ** (-dt / half_life_s)  # an older event arriving late counts less

    def add(
        self, item: str, event: str, weight: float, ts: datetime, vector: np.ndarray | None, config: ProfileConfig
    ) -> None:
        """Fold one interaction into the profile.

        Parameters
        ----------
        vector : np.ndarray or None
            The item's fused vector ``(D,)``, unit length; ``None`` when the item
            has none (it is still recorded as seen).
        """
        self.events += 1
        self.seen.add(item)
        self.history.append((item, event, float(weight), ts))
        if len(self.history) > HISTORY_LIMIT:
            self.history = self.history[-HISTORY_LIMIT:]
        if vector is None or weight == 0:
            if self.ref_time is None or ts > self.ref_time:
                self._decay_to(ts, config.half_life_days * 86400.0)
            return
        v = np.asarray(vector, np.float32)
        w = float(weight) * self._decay_to(ts, config.half_life_days * 86400.0)
        if w < 0:
            self.negative = (-w) * v if self.negative is None else self.negative + (-w) * v
            self.negative_mass += -w
            return
        if self.sums:
            dirs = np.stack([s / max(np.linalg.norm(s), 1e-12) for s in self.sums])
            sims = dirs @ v
            k = int(np.argmax(sims))
            if sims[k] >= config.join_similarity:
                self.sums[k] = self.sums[k] + w * v
                self.masses[k] += w
                self.counts[k] += 1
                return
        self.sums.append(w * v)
        self.masses.append(w)
        self.counts.append(1)
        if len(self.sums) > config.max_interests:
            self._merge_closest()

    def _merge_closest(self) -> None:
        dirs = np.stack([s / max(np.linalg.norm(s), 1e-12) for s in self.sums])
        sims = dirs @ dirs.T
        np.fill_diagonal(sims, -np.inf)
        i, j = np.unravel_index(int(np.argmax(sims)), sims.shape)
        i, j = min(i, j), max(i, j)
        self.sums[i] = self.sums[i] + self.sums[j]
        self.masses[i] += self.masses[j]
        self.counts[i] += self.counts[j]
        del self.sums[j], self.masses[j], self.counts[j]

    # ----------------------------------------------------------------- reading

    def interests(self) -> list[tuple[np.ndarray, float]]:
        """Interest directions (unit vectors) with their share of the positive mass, largest first."""
        total = sum(self.masses)
        out = [
            (s / max(np.linalg.norm(s), 1e-12), m / total)
            for s, m in zip(self.sums, self.masses, strict=True)
            if total > 0 and m > 0
        ]
        return sorted(out, key=lambda x: -x[1])

    def negative_direction(self) -> tuple[np.ndarray, float] | None:
        """Unit negative vector and its strength relative to all mass (0–1), or ``None``."""
        if self.negative is None or self.negative_mass <= 0:
            return None
        total = self.negative_mass + sum(self.masses)
        return self.negative / max(np.linalg.norm(self.negative), 1e-12), self.negative_mass / total

    @property
    def has_interests(self) -> bool:
        return any(m > 0 for m in self.masses)

    @property
    def last_order(self) -> tuple[datetime, str] | None:
        """``(ts, key)`` of the newest event folded in: the order key later events must exceed."""
        if not self.history:
            return None
        item, event, _, ts = self.history[-1]
        return ts, event_key(self.user, item, event, ts)

    # ----------------------------------------------------------------- storage

    def to_row(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "ref_time": self.ref_time,
            "events": self.events,
            "interest_sums": [s.astype(np.float32) for s in self.sums],
            "interest_masses": self.masses,
            "interest_counts": self.counts,
            "negative": None if self.negative is None else self.negative.astype(np.float32),
            "negative_mass": self.negative_mass,
            "seen": sorted(self.seen),
            "history": [{"item": i, "event": e, "weight": w, "ts": t} for i, e, w, t in self.history],
            "updated_at": datetime.now(timezone.utc),
        }

    @classmethod
    def from_row(cls, row: dict[str, Any], dim: int) -> Profile:
        return cls(
            user=row["user"],
            dim=dim,
            ref_time=row["ref_time"],
            sums=[np.asarray(s, np.float32) for s in row["interest_sums"] or []],
            masses=[float(m) for m in row["interest_masses"] or []],
            counts=[int(c) for c in row["interest_counts"] or []],
            negative=None if row["negative"] is None else np.asarray(row["negative"], np.float32),
            negative_mass=float(row["negative_mass"] or 0.0),
            events=int(row["events"] or 0),
            seen=set(row["seen"] or []),
            history=[(h["item"], h["event"], float(h["weight"]), h["ts"]) for h in row["history"] or []],
        )


def fold(
    user: str,
    dim: int,
    events: list[tuple[str, str, float, datetime]],
    vectors: dict[str, np.ndarray | None],
    config: ProfileConfig,
    start: Profile | None = None,
) -> Profile:
    """A profile as a deterministic function of events: fold them in ``(ts, key)`` order.

    Parameters
    ----------
    user : str
    dim : int
    events : list of (item, event, weight, ts)
        In any order; they are sorted here.
    vectors : dict
        Item id → fused vector ``(D,)`` (or ``None``).
    config : ProfileConfig
    start : Profile, optional
        A profile to continue from; every event must come after its :attr:`Profile.last_order`.
    """
    prof = start if start is not None else Profile(user, dim)
    for item, event, weight, ts in sorted(events, key=lambda e: (e[3], event_key(user, e[0], e[1], e[3]))):
        prof.add(item, event, weight, ts, vectors.get(item), config)
    return prof
