"""The one source of the names shared by the core, the CLI and the HTTP schemas.

Modalities, search modalities, event kinds and their weights, evaluation protocols, model names,
recommendation strategies and column names are defined here once; ``mmrec/cli`` builds its
``choices`` and ``mmrec/service/schemas.py`` its ``Literal`` types from these tuples (a test checks
that they agree), so a new event or modality is added in one place.
"""

from __future__ import annotations

import re

from encoders.base import MODALITIES

__all__ = [
    "DEFAULT_EVENT",
    "EVENTS",
    "EVENT_WEIGHTS",
    "LISTING_COLUMNS",
    "MAX_ID_LENGTH",
    "MAX_K",
    "MODALITIES",
    "MODEL_NAMES",
    "PROTOCOLS",
    "SEARCH_MODALITIES",
    "STATE_COLUMNS",
    "STRATEGIES",
    "TRAINABLE",
    "fusion_columns",
    "item_vector_columns",
    "parse_tags",
    "scores_column",
    "shared_column",
    "vector_column",
]

# --------------------------------------------------------------------------- modalities and search

#: What a search ranks by: the fused vector (``any``) or one modality's shared-space vector.
SEARCH_MODALITIES: tuple[str, ...] = ("any", *MODALITIES)
#: Most results one search or recommendation call returns.
MAX_K = 1000
#: Longest user or item id accepted.
MAX_ID_LENGTH = 512

# --------------------------------------------------------------------------- interactions

#: Default weight of each event. Negative weights push similar items down; a rating's weight
#: comes from its value (:func:`mmrec.recsys.interactions.rating_weight`).
EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 2.0,
    "like": 4.0,
    "purchase": 6.0,
    "skip": -1.0,
    "dislike": -4.0,
    "rating": 0.0,
}
EVENTS: tuple[str, ...] = tuple(EVENT_WEIGHTS)
DEFAULT_EVENT = "view"

# --------------------------------------------------------------------------- recommendation and evaluation

#: How a recommendation list was made: the model `mmrec train` served (hybrid, sasrec, blend, als, itemknn),
#: interest vectors, or one of the cold-start answers ("popular" is both a served baseline and a cold-start answer).
STRATEGIES: tuple[str, ...] = ("hybrid", "profile", "query", "popular", "newest", "sasrec", "als", "itemknn", "blend")
#: Offline evaluation protocols (:mod:`mmrec.recsys.splits`).
PROTOCOLS: tuple[str, ...] = ("leave-last-out", "global-temporal", "random", "item-cold-start")
#: Recommender models known to ``mmrec evaluate`` (:mod:`mmrec.recsys.models`).
MODEL_NAMES: tuple[str, ...] = ("random", "popular", "itemknn", "als", "bpr", "content", "hybrid", "sasrec")
#: What ``mmrec train --only`` can train.
TRAINABLE: tuple[str, ...] = ("fusion", "hybrid")

# --------------------------------------------------------------------------- columns of the items table

#: Columns read to decide what changed since the last ingest (no vectors).
STATE_COLUMNS = [
    "id",
    "catalog",
    "item_hash",
    "files",
    "problems",
    "text_hash",
    "image_hash",
    "audio_hash",
    "has_text",
    "has_image",
    "has_audio",
]
#: Columns shown by listings (no vectors, no scores).
LISTING_COLUMNS = [
    "id",
    "catalog",
    "title",
    "tags",
    "has_text",
    "has_image",
    "has_audio",
    "files",
    "problems",
    "updated_at",
]


#: The item's fused vector: the one vector shared by search, profiles and (by default) the trained recommenders.
FUSED_COLUMN = "fused_vec"


def vector_column(modality: str) -> str:
    """A modality's raw encoder vector."""
    return f"{modality}_vec"


def scores_column(modality: str) -> str:
    """A modality's class scores (ImageNet, AudioSet), used by the bridge."""
    return f"{modality}_scores"


def shared_column(modality: str) -> str:
    """A modality's vector in the shared space (after the fusion layer's projection head)."""
    return f"{modality}_shared"


def item_vector_columns() -> list[str]:
    """Every stored per-item vector column: the fused vector, then each modality's shared-space and raw vectors."""
    return [FUSED_COLUMN, *(shared_column(m) for m in MODALITIES), *(vector_column(m) for m in MODALITIES)]


def fusion_columns() -> list[str]:
    """Columns written by the fusion layer (shared-space vectors and attention weights)."""
    return [FUSED_COLUMN, *(shared_column(m) for m in MODALITIES), "fusion_weights"]


# --------------------------------------------------------------------------- tags

#: Separators between tags, wherever tags come from (manifest cell, sidecar string).
_TAG_SPLIT = re.compile(r"[;|,]")


def parse_tags(value: object) -> list[str]:
    """Tags from a manifest cell or sidecar field: a list, or one string split on ``;``, ``|`` or ``,``.

    Empty entries and surrounding spaces are dropped; anything else (a number, ``None``) gives no tags.
    """
    if isinstance(value, str):
        parts = _TAG_SPLIT.split(value)
    elif isinstance(value, list | tuple):
        parts = [str(v) for v in value if v is not None]
    else:
        return []
    return [t.strip() for t in parts if t.strip()]
