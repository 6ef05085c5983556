"""What a recommendation call returns: :class:`Recommendation` items in a :class:`RecommendResult`."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from mmrec.recsys.explain import Because

__all__ = ["Because", "Recommendation", "RecommendResult"]


@dataclass(frozen=True)
class Recommendation:
    """One recommended item.

    Attributes
    ----------
    id, title : str
    score : float
        Ranking score (cosine for profiles, standardised model score for the hybrid).
    interest : int
        Index of the profile interest that retrieved it.
    because : list of Because
        History items behind it (with ``explain``).
    modalities : dict
        The item's fusion attention weight per modality.
    matched : str
        The item's modality closest to the interest.
    predicted_rating : float or None
        The user's predicted star rating of the item, when the database has a trained rating model
        (``mmrec train`` with star ratings stored); ``None`` otherwise.
    """

    id: str
    title: str
    score: float
    interest: int
    because: list[Because] = field(default_factory=list)
    modalities: dict[str, float] = field(default_factory=dict)
    matched: str = ""
    predicted_rating: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RecommendResult:
    """A user's recommendations and how they were made."""

    user: str
    items: list[Recommendation]
    #: "hybrid" (trained towers), "profile" (interest vectors), "query", "popular" or "newest"
    #: (:data:`mmrec.names.STRATEGIES`).
    strategy: str
    message: str = ""

    @property
    def cold_start(self) -> bool:
        return self.strategy not in ("profile", "hybrid")

    def to_dict(self) -> dict[str, Any]:
        return {
            "user": self.user,
            "strategy": self.strategy,
            "cold_start": self.cold_start,
            "message": self.message,
            "items": [r.to_dict() for r in self.items],
        }
