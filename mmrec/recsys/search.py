"""Cross-modal search: items similar to a sentence, an image, a sound or another item.

A query of any modality goes through its encoder, the bridge and the fusion
layer's projection head, exactly like an item that has only that modality, so
it lands in the same space as the items. ``modality="any"`` searches the items'
fused vectors; ``"image"``, ``"audio"`` or ``"text"`` searches that modality's
shared-space vectors only (items without it are not candidates).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmrec.catalog.media import load_audio, load_image
from mmrec.config import LimitsConfig
from mmrec.errors import InvalidArgumentError
from mmrec.names import MAX_K, MODALITIES, SEARCH_MODALITIES, shared_column
from mmrec.space import SharedSpace
from mmrec.store.items import Store
from mmrec.store.sql import sql_quote

#: The kinds of query :meth:`Query.build` accepts.
QUERY_KINDS = ("text", "image", "audio", "item")


@dataclass(frozen=True)
class Match:
    """One search result.

    Attributes
    ----------
    id, title : str
    score : float
        Cosine similarity in the shared space (1 = same direction).
    matched : str
        The item's modality closest to the query.
    modality_scores : dict
        Cosine similarity of the query to each modality the item has.
    """

    id: str
    title: str
    score: float
    matched: str
    modality_scores: dict[str, float]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Query:
    """A query placed in the shared space.

    Attributes
    ----------
    fused : np.ndarray
        ``(D,)`` the query's fused vector (what item fused vectors are compared with).
    token : np.ndarray
        ``(D,)`` the query in a modality's shared space (compared with per-modality vectors).
    exclude : str or None
        Item id left out of the results.
    """

    fused: np.ndarray
    token: np.ndarray
    exclude: str | None = None

    @classmethod
    def of_item(cls, store: Store, item_id: str) -> Query:
        """A stored item as the query (a vector search only: no model runs); the item itself is excluded."""
        row = store.get(str(item_id), columns=["id", "fused_vec"])
        if row.get("fused_vec") is None:
            raise InvalidArgumentError(f"item {item_id!r} has no decodable modality to search with")
        vec = np.asarray(row["fused_vec"], np.float32)
        return cls(vec, vec, exclude=str(item_id))

    @classmethod
    def of_media(cls, space: SharedSpace, kind: str, value: str | os.PathLike[str]) -> Query:
        """A sentence (``kind="text"``) or an image or sound file, encoded and fused like an item with that modality only."""
        if kind == "text":
            if not isinstance(value, str) or not value.strip():
                raise InvalidArgumentError("the text query is empty")
            decoded: Any = value
        elif kind == "image":
            decoded = load_image(Path(value), LimitsConfig())
        elif kind == "audio":
            decoded = load_audio(Path(value), LimitsConfig())
        else:
            raise InvalidArgumentError(f"unknown query kind {kind!r}; valid: {', '.join(QUERY_KINDS)}")
        fused, token = space.encode_query(kind, decoded)
        return cls(fused, token)

    @classmethod
    def build(cls, store: Store, space: Callable[[], SharedSpace], **given: Any) -> Query:
        """Exactly one of ``text=``, ``image=``, ``audio=``, ``item=`` (``None`` values are ignored).

        ``space`` is called only for a media query, so a search by item loads no model.
        """
        given = {k: v for k, v in given.items() if v is not None}
        if len(given) != 1 or not set(given) <= set(QUERY_KINDS):
            raise InvalidArgumentError(
                f"give exactly one query (text, image, audio or item); got {', '.join(given) or 'none'}"
            )
        kind, value = next(iter(given.items()))
        return cls.of_item(store, value) if kind == "item" else cls.of_media(space(), kind, value)


def check_search(k: int, modality: str) -> None:
    """Raise :class:`InvalidArgumentError` for a ``k`` outside 1…MAX_K or an unknown search modality."""
    if modality not in SEARCH_MODALITIES:
        raise InvalidArgumentError(f"unknown modality {modality!r}; valid: {', '.join(SEARCH_MODALITIES)}")
    if not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidArgumentError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")


def similar_items(
    store: Store, query: Query, *, k: int = 10, modality: str = "any", where: str | None = None
) -> list[Match]:
    """The ``k`` items nearest to ``query``: by fused vector (``modality="any"``) or one modality's shared vector.

    Parameters
    ----------
    store : Store
    query : Query
    k : int
        Results wanted (1…:data:`~mmrec.names.MAX_K`).
    modality : {"any", "text", "image", "audio"}
    where : str, optional
        SQL filter on item columns, applied inside the search.
    """
    check_search(k, modality)
    column = "fused_vec" if modality == "any" else shared_column(modality)
    vector = query.fused if modality == "any" else query.token
    filters = [where] if where else []
    if query.exclude is not None:
        filters.append(f"id != {sql_quote(query.exclude)}")
    shared = [shared_column(m) for m in MODALITIES]
    rows = store.nearest([vector], column, ["id", "title", *shared], k, filters)[0]
    return [_match(query, modality, r) for r in rows]


def _match(query: Query, modality: str, row: dict[str, Any]) -> Match:
    per = {
        m: float(np.dot(query.token, row[shared_column(m)]))
        for m in MODALITIES
        if row.get(shared_column(m)) is not None
    }
    # A restricted search matched through that modality by construction.
    best = modality if modality != "any" else (max(per, key=per.get) if per else "none")
    return Match(
        row["id"],
        row.get("title") or "",
        round(1.0 - float(row["_distance"]), 6),
        best,
        {m: round(v, 4) for m, v in per.items()},
    )
