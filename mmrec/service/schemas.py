"""Request and response models of the HTTP service.

Every field carries a description, so the OpenAPI schema at ``/openapi.json``
(rendered at ``/docs``) documents the whole API.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mmrec.names import EVENTS, MAX_ID_LENGTH, MAX_K, MODALITIES, SEARCH_MODALITIES, STRATEGIES

#: Which item vectors a search ranks: the fused vector (``any``) or one modality's shared-space vector.
Modality = Literal[SEARCH_MODALITIES]  # type: ignore[valid-type]
#: Modalities an item keeps as a file (served by ``GET /items/{id}/media/{kind}``, uploadable to ``POST /similar``);
#: an item's text lives in its row.
MEDIA_KINDS: tuple[str, ...] = tuple(m for m in MODALITIES if m != "text")
MediaKind = Literal[MEDIA_KINDS]  # type: ignore[valid-type]
#: Interaction events (see ``mmrec.names.EVENT_WEIGHTS``).
Event = Literal[EVENTS]  # type: ignore[valid-type]
#: How a recommendation list was made.
Strategy = Literal[STRATEGIES]  # type: ignore[valid-type]
#: Longest accepted SQL filter; a filter is a read-only predicate, but an unbounded one is an easy way to burn CPU.
MAX_WHERE_CHARS = 2000
#: Longest accepted text query.
MAX_TEXT_CHARS = 4000
#: Longest user or item id (the same limit as the interaction importer's).
MAX_ID_CHARS = MAX_ID_LENGTH

_WHERE = (
    "SQL filter on item columns, applied inside the search, e.g. `has_audio AND title LIKE '%owl%'`. "
    "Columns: id, title, text, tags, has_text, has_image, has_audio, created_at, updated_at."
)


class ErrorResponse(BaseModel):
    """Every 4xx/5xx answer: a message a person can act on, and structured details when there are several."""

    detail: str = Field(description="What went wrong, in one line.")
    errors: list[dict[str, Any]] | None = Field(
        default=None,
        description="For validation errors: one entry per problem (`loc`, `msg`, `type`); for a rejected "
        "interaction batch: one entry per bad entry (`index`, `reason`).",
    )


class Health(BaseModel):
    """Liveness and readiness."""

    status: Literal["ok", "unavailable"] = Field(
        description="`ok` when the service can answer; `unavailable` (with status 503) when it cannot."
    )
    version: str = Field(description="mmrec version.")
    ready: bool = Field(
        description="Whether requests can be served: the models are loaded and the database can be read."
    )
    reason: str | None = Field(
        default=None, description="Why the service is not ready (absent when it is), in one line."
    )


class ForgetResponse(BaseModel):
    """What `DELETE /users/{id}` removed: the user is in no file and no table version of the database."""

    user: str = Field(description="The user id.")
    events: int = Field(description="Interactions deleted.")
    profiles: int = Field(description="Profiles deleted (0 or 1).")
    checkpoints_marked: list[int] = Field(
        description="Versions of trained hybrid checkpoints that saw the user, now marked as needing a retrain "
        "(the next `mmrec train` drops them)."
    )
    versions_removed: int = Field(description="Old table versions deleted so that no file still holds the user.")
    seconds: float = Field(description="Time taken.")


class MediaLinks(BaseModel):
    """Where an item's media can be fetched from this service (absent modalities are null)."""

    image: str | None = Field(
        default=None, description="URL path of the item's image, e.g. `/items/animals/cow/media/image`."
    )
    audio: str | None = Field(default=None, description="URL path of the item's sound.")


class Problem(BaseModel):
    """A file of the item that could not be used at ingest."""

    path: str = Field(description="File path, relative to the catalog root.")
    reason: str = Field(description="Why it was skipped.")


class FileInfo(BaseModel):
    """One source file of an item."""

    role: str = Field(description="`image`, `audio`, `text` or `sidecar` (JSON metadata).")
    path: str = Field(description="Path relative to the catalog root.")
    size: int | None = Field(default=None, description="Size in bytes at the last ingest.")


class Label(BaseModel):
    """A class the item's encoder predicted."""

    label: str = Field(description="Class name (ImageNet for images, AudioSet for sounds).")
    score: float = Field(description="Class probability (images) or score (sounds), 0–1.")


class ItemSummary(BaseModel):
    """An item as listed."""

    id: str = Field(description="Item id: the file stem's path relative to the catalog root, e.g. `animals/cow`.")
    title: str = Field(description="Title (sidecar or manifest `title`, else derived from the id).")
    tags: list[str] = Field(default_factory=list, description="Tags from the sidecar or manifest.")
    has_text: bool = Field(description="Whether the item has a text vector.")
    has_image: bool = Field(description="Whether the item has an image vector.")
    has_audio: bool = Field(description="Whether the item has a sound vector.")
    problems: list[Problem] = Field(
        default_factory=list, description="Files of the item that could not be used at ingest."
    )
    updated_at: datetime | None = Field(default=None, description="When the item was last (re-)encoded.")
    media: MediaLinks = Field(description="Links to the item's image and sound.")


class ItemList(BaseModel):
    """One page of the catalog, sorted by id."""

    items: list[ItemSummary] = Field(description="The page.")
    total: int = Field(description="Items matching the filter, over all pages.")
    limit: int = Field(description="Page size asked for.")
    offset: int = Field(description="Items skipped before this page.")


class ItemDetail(ItemSummary):
    """One item with its text, metadata, files, predicted labels and fusion weights."""

    text: str | None = Field(
        default=None, description="The text that was encoded (title, text file, sidecar text, tags)."
    )
    metadata: dict[str, Any] = Field(default_factory=dict, description="Other sidecar or manifest keys.")
    files: list[FileInfo] = Field(default_factory=list, description="The item's source files.")
    labels: dict[str, list[Label]] = Field(
        default_factory=dict, description="Per modality (`image`, `audio`): the top predicted classes."
    )
    fusion_weights: dict[str, float] | None = Field(
        default=None,
        description="Attention weight of each modality in the item's fused vector (they sum to 1); null without vectors.",
    )
    created_at: datetime | None = Field(default=None, description="When the item was first ingested.")


class SimilarRequest(BaseModel):
    """A search by sentence or by stored item (uploads use `multipart/form-data` instead)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    text: str | None = Field(
        default=None, min_length=1, max_length=MAX_TEXT_CHARS, description="A sentence, e.g. `an owl hooting at night`."
    )
    item: str | None = Field(
        default=None,
        min_length=1,
        max_length=MAX_ID_CHARS,
        description="A stored item id: items like it (the item itself is left out).",
    )
    k: int = Field(default=10, ge=1, le=MAX_K, description="Results wanted.")
    modality: Modality = Field(
        default="any",
        description="Search the fused item vectors (`any`) or one modality's vectors, e.g. `audio` = "
        "'sounds like this'.",
    )
    where: str | None = Field(default=None, max_length=MAX_WHERE_CHARS, description=_WHERE)

    @model_validator(mode="after")
    def _one_query(self) -> SimilarRequest:
        if (self.text is None) == (self.item is None):
            raise ValueError("give exactly one of `text` or `item` (or upload a file as multipart/form-data)")
        return self


class SimilarUpload(BaseModel):
    """A search by an uploaded image or sound (`multipart/form-data`): exactly one file field."""

    image: bytes | None = Field(
        default=None,
        description="An image file (JPEG, PNG, WebP, GIF, BMP, TIFF). The content is checked, not only its declared type.",
    )
    audio: bytes | None = Field(
        default=None,
        description="A sound file (WAV, FLAC, Ogg, MP3). The content is checked, not only its declared type.",
    )
    k: int = Field(default=10, ge=1, le=MAX_K, description="Results wanted.")
    modality: Modality = Field(default="any", description="Item vectors searched (see the JSON form).")
    where: str | None = Field(default=None, max_length=MAX_WHERE_CHARS, description=_WHERE)


class QueryInfo(BaseModel):
    """What was searched with."""

    kind: Literal["text", "item", "image", "audio"] = Field(description="The query's kind.")
    value: str = Field(description="The sentence, the item id, or the uploaded file's name.")


class SimilarMatch(BaseModel):
    """One search result."""

    id: str = Field(description="Item id.")
    title: str = Field(description="Item title.")
    score: float = Field(description="Cosine similarity to the query in the shared space (1 = same direction).")
    matched: str = Field(description="The item's modality closest to the query (`text`, `image` or `audio`).")
    modality_scores: dict[str, float] = Field(
        description="Cosine similarity of the query to each modality the item has."
    )
    media: MediaLinks = Field(description="Links to the item's image and sound.")


class SimilarResponse(BaseModel):
    """Items similar to the query, best first."""

    query: QueryInfo = Field(description="The query.")
    modality: Modality = Field(description="Which item vectors were searched.")
    results: list[SimilarMatch] = Field(description="Best first.")


class Because(BaseModel):
    """A history item that led to a recommendation."""

    item: str = Field(description="The history item's id.")
    title: str = Field(description="Its title.")
    event: str = Field(description="What the user did with it (`like`, `view`, …).")
    contribution: float = Field(
        description="How much the recommended item's score drops when this history item is left out of the taste."
    )
    modality: str = Field(
        default="", description="The modality in which it and the recommended item are most alike (shared space)."
    )


class RecommendationOut(BaseModel):
    """One recommended item, with its explanation."""

    id: str = Field(description="Item id.")
    title: str = Field(description="Item title.")
    score: float = Field(description="Relevance (similarity to the interest, minus the pull of skips and dislikes).")
    interest: int = Field(description="Which of the user's interests (0-based) retrieved it.")
    because: list[Because] = Field(
        default_factory=list, description="With `explain=true`: the history items most responsible, strongest first."
    )
    modalities: dict[str, float] = Field(
        default_factory=dict,
        description="With `explain=true`: the share of the match with the history items carried by each modality "
        "(sums to 1); otherwise the attention weight of each of the item's modalities in its fused vector.",
    )
    matched: str = Field(default="", description="The item's modality closest to the interest that retrieved it.")
    predicted_rating: float | None = Field(
        default=None, description="The user's predicted star rating (1–5) when the database has a rating model."
    )
    media: MediaLinks = Field(description="Links to the item's image and sound.")


class RecommendationsResponse(BaseModel):
    """Recommendations for one user."""

    user: str = Field(description="The user id.")
    strategy: Strategy = Field(
        description="`hybrid` (the trained recommender, from the user's history) or `profile` (the user's interest "
        "vectors), else the cold-start answer: near the onboarding `query`, recently `popular`, or `newest` items."
    )
    cold_start: bool = Field(description="True unless the strategy is `hybrid` or `profile`.")
    message: str = Field(default="", description="Why a cold-start answer was given.")
    items: list[RecommendationOut] = Field(description="Best first (or in MMR order with `diversity`).")


class InteractionIn(BaseModel):
    """One interaction to record."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    user: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="User id (any string; new users are created).")
    item: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="Item id; must be in the catalog.")
    event: Event = Field(
        default="view",
        description="view (+1), click (+2), like (+4), purchase (+6), skip (−1), dislike (−4), or rating "
        "(weight 2 × (rating − 3)).",
    )
    weight: float | None = Field(default=None, ge=-1000, le=1000, description="Override the event's default weight.")
    rating: float | None = Field(default=None, ge=0, le=5, description="1–5 stars, for `event=rating`.")
    at: str | float | None = Field(
        default=None,
        description="When it happened: ISO 8601 or Unix seconds (default: now). The same user, item, event and "
        "time is stored once.",
    )


class InteractionOut(BaseModel):
    """An interaction as stored."""

    user: str = Field(description="User id.")
    item: str = Field(description="Item id.")
    event: str = Field(description="Event.")
    weight: float = Field(description="Weight applied to the profile.")
    at: datetime = Field(description="When it happened (UTC).")


class InteractionsResponse(BaseModel):
    """What a POST /interactions did. The users' profiles are updated before this answer is sent."""

    recorded: int = Field(description="New interactions stored.")
    duplicates: int = Field(
        description="Interactions already stored (same user, item, event and time), not counted twice."
    )
    users: int = Field(description="Profiles updated.")
    interactions: list[InteractionOut] = Field(description="The interactions of the request, validated, in order.")
