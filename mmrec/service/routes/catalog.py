"""The catalog: ``GET /items``, ``GET /items/{id}`` and an item's media files."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import FileResponse

from mmrec.service.deps import ServiceDep, check_id, media_links, require_read
from mmrec.service.errors import ERRORS, error_responses
from mmrec.service.schemas import (
    MAX_WHERE_CHARS,
    FileInfo,
    ItemDetail,
    ItemList,
    ItemSummary,
    Label,
    MediaKind,
    Problem,
)

router = APIRouter(tags=["catalog"], dependencies=[Depends(require_read)])

#: Content types of the media the service streams, by file suffix (only catalog media suffixes are served).
MEDIA_TYPES = {
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".png": "image/png",
    ".webp": "image/webp",
    ".gif": "image/gif",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".wav": "audio/wav",
    ".flac": "audio/flac",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".mp3": "audio/mpeg",
}


def _summary(request: Request, row: dict[str, Any]) -> dict[str, Any]:
    """The :class:`ItemSummary` fields of a stored row (missing columns read as empty)."""
    return {
        "id": row["id"],
        "title": row.get("title") or "",
        "tags": list(row.get("tags") or []),
        "has_text": bool(row.get("has_text")),
        "has_image": bool(row.get("has_image")),
        "has_audio": bool(row.get("has_audio")),
        "problems": [Problem(path=p["path"], reason=p["reason"]) for p in row.get("problems") or []],
        "updated_at": row.get("updated_at"),
        "media": media_links(request, row["id"], bool(row.get("has_image")), bool(row.get("has_audio"))),
    }


def _detail(request: Request, item: dict[str, Any]) -> ItemDetail:
    """The answer of ``GET /items/{id}`` for :meth:`~mmrec.engine.Engine.item`'s dict."""
    metadata = item.get("metadata")
    return ItemDetail(
        **_summary(request, item),
        text=item.get("text"),
        metadata=metadata if isinstance(metadata, dict) else {},
        files=[FileInfo(role=f["role"], path=f["path"], size=f.get("size")) for f in item.get("files") or []],
        labels={m: [Label(**x) for x in labels] for m, labels in (item.get("labels") or {}).items()},
        fusion_weights=item.get("fusion_weights"),
        created_at=item.get("created_at"),
    )


@router.get("/items", response_model=ItemList, responses=ERRORS, summary="List items")
async def list_items(
    request: Request,
    service: ServiceDep,
    limit: Annotated[int, Query(ge=0, le=1000, description="Page size.")] = 50,
    offset: Annotated[int, Query(ge=0, description="Items to skip.")] = 0,
    where: Annotated[
        str | None,
        Query(
            max_length=MAX_WHERE_CHARS,
            description="SQL filter on item columns, e.g. `has_audio AND title LIKE '%owl%'`.",
        ),
    ] = None,
) -> ItemList:
    """Items sorted by id, one page at a time, optionally filtered."""

    def work() -> ItemList:
        rows = service.engine.items(limit=limit, offset=offset, where=where)
        total = service.engine.count(where)
        return ItemList(
            items=[ItemSummary(**_summary(request, r)) for r in rows], total=total, limit=limit, offset=offset
        )

    return await service.run(work)


# Registered before GET /items/{item_id:path}: ids contain slashes, and that route would swallow "/media/…".
@router.get(
    "/items/{item_id:path}/media/{kind}",
    responses={
        **error_responses(403),
        200: {
            "content": {"image/*": {}, "audio/*": {}},
            "description": "The file, with its content type (range requests supported).",
        },
    },
    response_class=FileResponse,
    summary="An item's image or sound",
)
async def item_media(service: ServiceDep, item_id: str, kind: MediaKind) -> FileResponse:
    """Streams the item's own file. Only files recorded for the item, inside its catalog folder, are served."""
    check_id(item_id, "item_id")
    # The engine resolves the path inside the catalog and refuses anything else (MediaForbiddenError → 403).
    path = await service.run(service.engine.media_path, item_id, kind)
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"),
        headers={
            "Cache-Control": "private, max-age=300",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@router.get("/items/{item_id:path}", response_model=ItemDetail, responses=ERRORS, summary="One item")
async def get_item(request: Request, service: ServiceDep, item_id: str) -> ItemDetail:
    """An item with its text, metadata, files, top predicted labels and fusion weights."""
    check_id(item_id, "item_id")
    item = await service.run(service.engine.item, item_id)
    return _detail(request, item)
