"""Cross-modal search: items similar to a sentence, an image, a sound or another item.

A query of any modality goes through its encoder, the bridge and the fusion
layer's projection head, exactly like an item that has only that modality, so
it lands in the same space as the items. ``modality="any"`` searches the items'
fused vectors; ``"image"``, ``"audio"`` or ``"text"`` searches that modality's
shared-space vectors only (items without it are not candidates).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmrec.catalog.media import load_audio, load_image
from mmrec.config import LimitsConfig
from mmrec.errors import InvalidArgumentError, ItemNotFoundError
from mmrec.names import FUSED_COLUMN, MAX_K, SEARCH_MODALITIES, shared_column
from mmrec.recsys.snapshot import ItemRows
from mmrec.space import SharedSpace
from mmrec.store.items import Store

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
    def of_item(cls, store: Store, items: ItemRows, item_id: str) -> Query:
        """A stored item as the query (its vector from the snapshot: no model runs); the item is excluded."""
        n = items.index.get(str(item_id))
        if n is None:
            raise ItemNotFoundError(f"no item with id {item_id!r} in {store.uri!r}")
        found = items.vectors_of([n], [FUSED_COLUMN]).get(FUSED_COLUMN)
        if found is None or not found[1][0]:
            raise InvalidArgumentError(f"item {item_id!r} has no decodable modality to search with")
        vec = found[0][0]
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
    def build(cls, store: Store, items: ItemRows, space: Callable[[], SharedSpace], **given: Any) -> Query:
        """Exactly one of ``text=``, ``image=``, ``audio=``, ``item=`` (``None`` values are ignored).

        ``space`` is called only for a media query, so a search by item loads no model.
        """
        given = {k: v for k, v in given.items() if v is not None}
        if len(given) != 1 or not set(given) <= set(QUERY_KINDS):
            raise InvalidArgumentError(
                f"give exactly one query (text, image, audio or item); got {', '.join(given) or 'none'}"
            )
        kind, value = next(iter(given.items()))
        return cls.of_item(store, items, value) if kind == "item" else cls.of_media(space(), kind, value)


def check_search(k: int, modality: str) -> None:
    """Raise :class:`InvalidArgumentError` for a ``k`` outside 1…MAX_K or an unknown search modality."""
    if modality not in SEARCH_MODALITIES:
        raise InvalidArgumentError(f"unknown modality {modality!r}; valid: {', '.join(SEARCH_MODALITIES)}")
    if not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidArgumentError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")


def similar_items(
    store: Store,
    items: ItemRows,
    query: Query,
    *,
    k: int = 10,
    modality: str = "any",
    where: str | None = None,
    exclude: Sequence[str] = (),
) -> list[Match]:
    """The ``k`` items nearest to ``query``: by fused vector (``modality="any"``) or one modality's shared vector.

    Parameters
    ----------
    store : Store
        Read only for a filter not seen before in this version (its allow-list is cached).
    items : ItemRows
        The serving snapshot's items (:mod:`mmrec.recsys.snapshot`): their search and vector reads.
    query : Query
    k : int
        Results wanted (1…:data:`~mmrec.names.MAX_K`).
    modality : {"any", "text", "image", "audio"}
    where : str, optional
        SQL filter on item columns, applied inside the search.
    exclude : sequence of str
        Item ids left out (besides the query's own item).
    """
    check_search(k, modality)
    column = FUSED_COLUMN if modality == "any" else shared_column(modality)
    if not items.searchable(column):
        return []
    vector = np.asarray(query.fused if modality == "any" else query.token, np.float32)
    vector = vector / max(float(np.sqrt(vector @ vector)), 1e-12)  # cosines: the item vectors are unit vectors
    banned = [*exclude, query.exclude] if query.exclude is not None else list(exclude)
    rows, scores = items.nearest(store, column, vector[None], k, where, banned)[0]
    if not rows:
        return []
    # Per result, the query's cosine to each modality it has (a few rows: gathered here, not per candidate).
    sims = items.modality_sims(np.array(rows, np.int64), np.asarray(query.token, np.float32))
    # As lists: indexed per result below (a NumPy scalar per index costs more than the list it comes from).
    per_modality = [(m, v.tolist(), has.tolist()) for m, (v, has) in sims.items()]
    out = []
    for j, (n, score) in enumerate(zip(rows, scores, strict=True)):
        per = {m: v[j] for m, v, has in per_modality if has[j]}
        # A restricted search matched through that modality by construction.
        best = modality if modality != "any" else (max(per, key=per.__getitem__) if per else "none")
        out.append(
            Match(items.ids[n], items.titles[n], round(score, 6), best, {m: round(v, 4) for m, v in per.items()})
        )
    return out


def text_search(
    store: Store, items: Callable[[], ItemRows], space: Callable[[], SharedSpace]
) -> Callable[[str, int, str, str | None, list[str]], list[Match]]:
    """``(text, k, modality, where, exclude) -> list[Match]``: items near a sentence in the current snapshot's
    items (``items()``), the sentence encoded by ``space()`` (the cold start's onboarding query)."""

    def search(text: str, k: int, modality: str, where: str | None, exclude: list[str]) -> list[Match]:
        query = Query.of_media(space(), "text", text)
        return similar_items(store, items(), query, k=k, modality=modality, where=where, exclude=exclude)

    return search
