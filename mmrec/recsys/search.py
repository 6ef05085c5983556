"""Cross-modal search: items similar to a sentence, an image, a sound or another item.

A query of any modality goes through its encoder, the bridge and the fusion
layer's projection head, exactly like an item that has only that modality, so
it lands in the same space as the items. ``modality="any"`` searches the items'
fused vectors; ``"image"``, ``"audio"`` or ``"text"`` searches that modality's
shared-space vectors only (items without it are not candidates).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from encoders.base import MODALITIES
from mmrec.errors import InvalidArgumentError
from mmrec.names import MAX_K, SEARCH_MODALITIES
from mmrec.names import shared_column
from mmrec.store.items import sql_quote

if TYPE_CHECKING:
    from mmrec.engine import Engine



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


def encode_query(
    engine: Engine,
    *,
    text: str | None,
    image: str | os.PathLike[str] | None,
    audio: str | os.PathLike[str] | None,
    item: str | None,
) -> Query:
    given = {k: v for k, v in {"text": text, "image": image, "audio": audio, "item": item}.items() if v is not None}
    if len(given) != 1:
        raise InvalidArgumentError(
            f"give exactly one query (text, image, audio or item); got {', '.join(given) or 'none'}"
        )
    kind, value = next(iter(given.items()))
    if kind == "item":
        row = engine.store.get(str(value), columns=["id", "fused_vec"])
        if row.get("fused_vec") is None:
            raise InvalidArgumentError(f"item {value!r} has no decodable modality to search with")
        vec = np.asarray(row["fused_vec"], np.float32)
        return Query(vec, vec, exclude=str(value))

    from mmrec.config import LimitsConfig
    from mmrec.catalog.media import load_audio, load_image

    space = engine.space()
    enc = engine.encoders()[kind]
    if kind == "text":
        if not isinstance(value, str) or not value.strip():
            raise InvalidArgumentError("the text query is empty")
        decoded: Any = value
    elif kind == "image":
        decoded = load_image(Path(value), LimitsConfig())
    else:
        decoded = load_audio(Path(value), LimitsConfig())
    out = enc.encode_batch([decoded])
    columns = {kind: (out.vectors, out.class_scores, np.ones(1, bool))}
    fused, tokens, _ = space.fuse(space.inputs(columns))
    return Query(fused[0], tokens[0, MODALITIES.index(kind)])


def similar_items(
    engine: Engine,
    *,
    text: str | None = None,
    image: str | os.PathLike[str] | None = None,
    audio: str | os.PathLike[str] | None = None,
    item: str | None = None,
    k: int = 10,
    modality: str = "any",
    where: str | None = None,
) -> list[Match]:
    """See :meth:`mmrec.engine.Engine.similar`."""
    if modality not in SEARCH_MODALITIES:
        raise InvalidArgumentError(f"unknown modality {modality!r}; valid: {', '.join(SEARCH_MODALITIES)}")
    if not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise InvalidArgumentError(f"k must be an integer from 1 to {MAX_K}, got {k!r}")
    query = encode_query(engine, text=text, image=image, audio=audio, item=item)
    column = "fused_vec" if modality == "any" else shared_column(modality)
    vector = query.fused if modality == "any" else query.token
    filters = [where] if where else []
    if query.exclude is not None:
        filters.append(f"id != {sql_quote(query.exclude)}")
    shared = [shared_column(m) for m in MODALITIES]
    rows = engine.store.nearest([vector], column, ["id", "title", *shared], k, filters)[0]
    matches = []
    for r in rows:
        per = {
            m: float(np.dot(query.token, r[shared_column(m)]))
            for m in MODALITIES
            if r.get(shared_column(m)) is not None
        }
        # A restricted search matched through that modality by construction.
        best = modality if modality != "any" else (max(per, key=per.get) if per else "none")
        matches.append(
            Match(
                r["id"],
                r.get("title") or "",
                round(1.0 - float(r["_distance"]), 6),
                best,
                {m: round(v, 4) for m, v in per.items()},
            )
        )
    return matches
