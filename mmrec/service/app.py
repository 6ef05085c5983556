"""The HTTP service: a FastAPI app over one :class:`~mmrec.engine.Engine`, and the web page.

Design notes
------------
* Models load once, in the lifespan hook (:func:`mmrec.service.state.warm_engine`): encoders, the
  shared space with its bridges, the user book, and one forward pass per model.
* Every call into the engine runs in a worker thread (:meth:`mmrec.service.state.Service.run`): it is
  CPU-bound (models, vector search) and must not block the event loop, so
  concurrent requests proceed side by side. The number of engine calls running
  at once is bounded (``ServiceLimits.workers``, ``mmrec serve --threads``,
  default twice the cores): a burst waits its turn on the event loop instead of
  running 40 threads on 2 cores, which bounds memory and, measured at 50
  clients, gives the same throughput with a lower p99 (benchmarks/README.md).
* Two locks serialise what is not safe to run concurrently: ``write_lock``
  around profile updates (each is a read-modify-write of the user's row), and
  ``model_lock`` around query encoding (Hugging Face fast tokenizers fail with
  "Already borrowed" when one instance is used from two threads at once; the
  models use every core for one query anyway). Searches by item and
  recommendations take no lock.
* Errors: every :class:`~mmrec.errors.MMRecError` and
  :class:`~encoders.errors.EncoderError` is mapped to a status centrally
  (:func:`mmrec.service.errors.status_for`); every error answer is ``{"detail": "one line"}``
  (validation errors add ``errors``).
* Auth: with an API key, writes need it (``X-API-Key`` or ``Authorization:
  Bearer``); reads too in private mode. The page and its assets, ``/health``
  and the API docs stay open: they hold no data.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from encoders.errors import EncoderError
from mmrec import __version__
from mmrec.errors import (
    MMRecError,
)
from mmrec.service.errors import (
    ERRORS,
    error_responses,
    on_app_error,
    on_batch_error,
    on_unexpected,
    on_upload_type,
    on_validation_error,
    validation_message,
)
from mmrec.service.schemas import (
    MAX_ID_CHARS,
    MAX_WHERE_CHARS,
    FileInfo,
    Health,
    InteractionIn,
    InteractionOut,
    InteractionsResponse,
    ItemDetail,
    ItemList,
    ItemSummary,
    Label,
    MediaLinks,
    Modality,
    Problem,
    QueryInfo,
    RecommendationOut,
    RecommendationsResponse,
    SimilarMatch,
    SimilarRequest,
    SimilarResponse,
    SimilarUpload,
)
from mmrec.service.state import BatchError, Service, warm_engine
from mmrec.service.uploads import BodyLimitMiddleware, ServiceLimits, UploadTypeError, form_value, sniff_upload

if TYPE_CHECKING:
    from mmrec.engine import Engine

log = logging.getLogger("mmrec.service")

STATIC_DIR = Path(__file__).resolve().parent / "static"

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

#: The page only talks to this origin; media may be shown from blob: URLs (fetched with the API key).
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; script-src 'self'; "
    "style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

DESCRIPTION = """\
Multimodal recommendations and cross-modal search over an mmrec database.

**Auth.** When the server has an API key (`mmrec serve --api-key` or `MMREC_API_KEY`), every write
(`POST /interactions`) needs it, as `X-API-Key: KEY` or `Authorization: Bearer KEY`; reads are open unless
the server runs with `--private`. A missing or wrong key is answered with 401.

**Errors.** Every error is `{"detail": "one line"}` with a 4xx status: 400 bad filter or argument,
401 key, 403 file outside the catalog, 404 unknown id, 413 body too large, 415 unsupported upload type,
422 invalid parameters, malformed JSON or undecodable upload; 503 when the database cannot be used.
"""


# --------------------------------------------------------------------------------------------- auth

_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="The server's API key (needed for writes; for reads in private mode).",
)
_bearer = HTTPBearer(auto_error=False, description="The server's API key as a bearer token.")


def get_service(request: Request) -> Service:
    """The :class:`Service` of the app serving ``request`` (a FastAPI dependency)."""
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]
KeyHeader = Annotated[str | None, Security(_key_header)]
Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]


def require_read(service: ServiceDep, key: KeyHeader, bearer: Bearer) -> None:
    """Reads need the key only in private mode."""
    service.check_key(key or (bearer.credentials if bearer else None), write=False)


def require_write(service: ServiceDep, key: KeyHeader, bearer: Bearer) -> None:
    """Writes need the key whenever one is configured."""
    service.check_key(key or (bearer.credentials if bearer else None), write=True)


# --------------------------------------------------------------------------------------------- conversions


def _media(request: Request, item_id: str, has_image: bool, has_audio: bool) -> MediaLinks:
    base = f"{request.scope.get('root_path', '')}/items/{quote(item_id, safe='/')}/media"
    return MediaLinks(image=f"{base}/image" if has_image else None, audio=f"{base}/audio" if has_audio else None)


def _summary(request: Request, row: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "title": row.get("title") or "",
        "tags": list(row.get("tags") or []),
        "has_text": bool(row.get("has_text")),
        "has_image": bool(row.get("has_image")),
        "has_audio": bool(row.get("has_audio")),
        "problems": [Problem(path=p["path"], reason=p["reason"]) for p in row.get("problems") or []],
        "updated_at": row.get("updated_at"),
        "media": _media(request, row["id"], bool(row.get("has_image")), bool(row.get("has_audio"))),
    }


def _detail(request: Request, item: dict[str, Any]) -> ItemDetail:
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


def _check_id(value: str, what: str) -> None:
    if not value or len(value) > MAX_ID_CHARS:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("path", what), "msg": f"{what} must be 1 to {MAX_ID_CHARS} characters"}]
        )


async def _json_body(request: Request) -> Any:
    """The request's JSON (malformed → 422 like FastAPI's own bodies; another content type → 415)."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype not in ("", "application/json") and not ctype.endswith("+json"):
        raise HTTPException(415, f"send application/json, not {ctype!r}")
    raw = await request.body()
    if not raw.strip():
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "the request body is empty"}])
    try:
        return json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        msg = e.msg if isinstance(e, json.JSONDecodeError) else "not UTF-8"
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", getattr(e, "pos", 0)),
                    "msg": "JSON decode error",
                    "ctx": {"error": msg},
                }
            ]
        ) from e


def _validate(model: Any, data: Any, loc: tuple[Any, ...] = ("body",)) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise RequestValidationError(
            [{**err, "loc": (*loc, *err["loc"])} for err in e.errors(include_url=False, include_input=False)]
        ) from e


# --------------------------------------------------------------------------------------------- routes

router = APIRouter()


@router.get("/health", response_model=Health, tags=["service"], summary="Liveness and readiness")
async def health(service: ServiceDep) -> Health:
    """Always open (no key): for load balancers and process managers."""
    return Health(status="ok", version=__version__, ready=service.ready)


@router.get(
    "/items",
    response_model=ItemList,
    dependencies=[Depends(require_read)],
    responses=ERRORS,
    tags=["catalog"],
    summary="List items",
)
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
        total = service.engine.store.count(where)
        return ItemList(
            items=[ItemSummary(**_summary(request, r)) for r in rows], total=total, limit=limit, offset=offset
        )

    return await service.run(work)


# Registered before GET /items/{item_id:path}: ids contain slashes, and that route would swallow "/media/…".
@router.get(
    "/items/{item_id:path}/media/{kind}",
    dependencies=[Depends(require_read)],
    responses={
        **error_responses(403),
        200: {
            "content": {"image/*": {}, "audio/*": {}},
            "description": "The file, with its content type (range requests supported).",
        },
    },
    response_class=FileResponse,
    tags=["catalog"],
    summary="An item's image or sound",
)
async def item_media(service: ServiceDep, item_id: str, kind: Literal["image", "audio"]) -> FileResponse:
    """Streams the item's own file. Only files recorded for the item, inside its catalog folder, are served."""
    _check_id(item_id, "item_id")
    path = await service.run(service.media_path, item_id, kind)
    return FileResponse(
        path,
        media_type=MEDIA_TYPES.get(path.suffix.lower(), "application/octet-stream"),
        headers={
            "Cache-Control": "private, max-age=300",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
        },
    )


@router.get(
    "/items/{item_id:path}",
    response_model=ItemDetail,
    dependencies=[Depends(require_read)],
    responses=ERRORS,
    tags=["catalog"],
    summary="One item",
)
async def get_item(request: Request, service: ServiceDep, item_id: str) -> ItemDetail:
    """An item with its text, metadata, files, top predicted labels and fusion weights."""
    _check_id(item_id, "item_id")
    item = await service.run(service.engine.item, item_id)
    return _detail(request, item)


_SIMILAR_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": "#/components/schemas/SimilarRequest"}},
            "multipart/form-data": {"schema": {"$ref": "#/components/schemas/SimilarUpload"}},
        },
    }
}


@router.post(
    "/similar",
    response_model=SimilarResponse,
    dependencies=[Depends(require_read)],
    responses=error_responses(413, 415),
    openapi_extra=_SIMILAR_BODY,
    tags=["search"],
    summary="Items similar to a sentence, an item, an image or a sound",
)
async def similar(request: Request, service: ServiceDep) -> SimilarResponse:
    """Cross-modal search. Send JSON `{"text": …}` or `{"item": …}`, or upload one file as
    `multipart/form-data` in a field named `image` or `audio` (with optional `k`, `modality`, `where`
    fields). Uploads are checked by content: another type is answered 415, an undecodable file 422."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "multipart/form-data":
        return await _similar_upload(request, service)
    body: SimilarRequest = _validate(SimilarRequest, await _json_body(request))
    kind: Literal["text", "item"] = "text" if body.text is not None else "item"
    value = body.text if body.text is not None else body.item
    assert value is not None

    def work() -> tuple[list[Any], dict[str, tuple[bool, bool]]]:
        def search() -> list[Any]:
            return service.engine.similar(**{kind: value}, k=body.k, modality=body.modality, where=body.where)

        if kind == "text":  # only a sentence runs a model; a search by item is a vector search
            with service.model_lock:
                matches = search()
        else:
            matches = search()
        return matches, service.media_flags([m.id for m in matches])

    matches, flags = await service.run(work)
    return _similar_response(request, QueryInfo(kind=kind, value=value), body.modality, matches, flags)


async def _similar_upload(request: Request, service: ServiceDep) -> SimilarResponse:
    form = await request.form(max_files=2, max_fields=10)
    try:
        files = {name: v for name, v in form.multi_items() if isinstance(v, UploadFile)}
        kinds = [k for k in ("image", "audio") if k in files]
        if len(kinds) != 1 or len(files) != 1:
            raise RequestValidationError(
                [
                    {
                        "type": "value_error",
                        "loc": ("body",),
                        "msg": "upload exactly one file, in a form field named `image` or `audio`",
                    }
                ]
            )
        kind = kinds[0]
        fields = _validate(
            SimilarUpload,
            {n: form_value(form, n) for n in ("k", "modality", "where") if form_value(form, n) is not None},
        )
        upload = files[kind]
        size = upload.size
        if size is not None and size > service.limits.max_upload_bytes:
            raise HTTPException(
                413, f"upload too large ({size / 2**20:.1f} MiB > {service.limits.max_upload_bytes / 2**20:.1f} MiB)"
            )
        if size == 0:
            raise RequestValidationError([{"type": "value_error", "loc": ("body", kind), "msg": "the file is empty"}])

        def work() -> tuple[list[Any], dict[str, tuple[bool, bool]]]:
            suffix = sniff_upload(kind, upload.file, upload.content_type)
            # The decoders take a path; the suffix is the sniffed format's, never the client's file name.
            with tempfile.TemporaryDirectory(prefix="mmrec-upload-") as tmp:
                path = Path(tmp) / f"query{suffix}"
                with open(path, "wb") as out:
                    shutil.copyfileobj(upload.file, out)
                with service.model_lock:
                    matches = service.engine.similar(
                        **{kind: path}, k=fields.k, modality=fields.modality, where=fields.where
                    )
            return matches, service.media_flags([m.id for m in matches])

        matches, flags = await service.run(work)
        name = (upload.filename or "upload")[:200]
        return _similar_response(request, QueryInfo(kind=kind, value=name), fields.modality, matches, flags)
    finally:
        await form.close()


def _similar_response(
    request: Request,
    query: QueryInfo,
    modality: Modality,
    matches: list[Any],
    flags: dict[str, tuple[bool, bool]],
) -> SimilarResponse:
    return SimilarResponse(
        query=query,
        modality=modality,
        results=[
            SimilarMatch(
                id=m.id,
                title=m.title,
                score=m.score,
                matched=m.matched,
                modality_scores=m.modality_scores,
                media=_media(request, m.id, *flags.get(m.id, (False, False))),
            )
            for m in matches
        ],
    )


@router.get(
    "/users/{user_id:path}/recommendations",
    response_model=RecommendationsResponse,
    dependencies=[Depends(require_read)],
    responses=ERRORS,
    tags=["users"],
    summary="Recommendations for a user",
)
async def recommendations(
    request: Request,
    service: ServiceDep,
    user_id: str,
    k: Annotated[int, Query(ge=1, le=1000, description="Results wanted.")] = 10,
    where: Annotated[
        str | None, Query(max_length=MAX_WHERE_CHARS, description="SQL filter on item columns, applied in the search.")
    ] = None,
    modality: Annotated[
        Modality, Query(description="Rank by fused vectors (`any`) or one modality's vectors.")
    ] = "any",
    diversity: Annotated[float, Query(ge=0, le=1, description="0 = relevance only … 1 = most varied (MMR).")] = 0.0,
    explain: Annotated[bool, Query(description="Name the history items behind each recommendation.")] = False,
    include_seen: Annotated[bool, Query(description="Keep items the user already interacted with.")] = False,
    query: Annotated[
        str | None, Query(min_length=1, max_length=4000, description="Onboarding text for a user without history.")
    ] = None,
) -> RecommendationsResponse:
    """The user's live profile drives the ranking; an unknown user or one without positive history gets the
    cold-start answer (`strategy` says which, `message` why)."""
    _check_id(user_id, "user_id")

    def work() -> tuple[Any, dict[str, tuple[bool, bool]]]:
        def run() -> Any:
            return service.engine.recommend(
                user_id,
                k,
                where=where,
                modality=modality,
                diversity=diversity,
                explain=explain,
                include_seen=include_seen,
                query=query,
            )

        if query is not None:  # only the onboarding text runs a model
            with service.model_lock:
                result = run()
        else:
            result = run()
        return result, service.media_flags([r.id for r in result.items])

    result, flags = await service.run(work)
    return RecommendationsResponse(
        user=result.user,
        strategy=result.strategy,
        cold_start=result.cold_start,
        message=result.message,
        items=[
            RecommendationOut(
                **{k: v for k, v in r.to_dict().items()},
                media=_media(request, r.id, *flags.get(r.id, (False, False))),
            )
            for r in result.items
        ],
    )


_INTERACTIONS_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        {"$ref": "#/components/schemas/InteractionIn"},
                        {"type": "array", "items": {"$ref": "#/components/schemas/InteractionIn"}},
                    ]
                }
            }
        },
    }
}


@router.post(
    "/interactions",
    response_model=InteractionsResponse,
    dependencies=[Depends(require_write)],
    responses=error_responses(413, 415),
    openapi_extra=_INTERACTIONS_BODY,
    tags=["users"],
    summary="Record one interaction or a batch",
)
async def post_interactions(request: Request, service: ServiceDep) -> InteractionsResponse:
    """One object, or a list of them. The users' profiles are updated before the answer, so the next
    recommendations reflect them. A batch is all or nothing: when any entry is bad (invalid field, unknown
    item) nothing is recorded and the 422 answer lists every bad entry by index. A single interaction with
    an unknown item is a 404."""
    data = await _json_body(request)
    raw = data if isinstance(data, list) else [data]
    if not raw:
        raise RequestValidationError([{"type": "too_short", "loc": ("body",), "msg": "the batch is empty"}])
    if len(raw) > service.limits.max_batch:
        raise HTTPException(413, f"batch of {len(raw)} interactions; at most {service.limits.max_batch} per request")
    single = not isinstance(data, list)
    entries: list[tuple[int, InteractionIn]] = []
    bad: list[tuple[int, str]] = []
    if single:
        entries.append((0, _validate(InteractionIn, data)))
    else:
        for i, entry in enumerate(raw):
            try:
                entries.append((i, InteractionIn.model_validate(entry)))
            except ValidationError as e:
                bad.append((i, validation_message(e.errors(include_url=False, include_input=False))))
    inters, added, duplicates, users = await service.run(service.record, entries, bad, single=single)
    return InteractionsResponse(
        recorded=added,
        duplicates=duplicates,
        users=users,
        interactions=[
            InteractionOut(user=x.user, item=x.item, event=x.event, weight=x.weight, at=x.ts) for x in inters
        ],
    )


# --------------------------------------------------------------------------------------------- the app


def create_app(
    engine_or_db: Engine | str | Path,
    *,
    api_key: str | None = None,
    private: bool = False,
    limits: ServiceLimits | None = None,
    warm: bool = True,
) -> FastAPI:
    """The ASGI app: the JSON API, its OpenAPI docs at ``/docs``, and the web page at ``/``.

    Parameters
    ----------
    engine_or_db : Engine or str or path
        The engine to serve, or a database to open one on.
    api_key : str, optional
        Key needed for writes (``X-API-Key`` or ``Authorization: Bearer``); ``None`` leaves writes open.
    private : bool
        Require the key for reads too (needs ``api_key``).
    limits : ServiceLimits, optional
        Body, upload and batch limits.
    warm : bool
        Load the models in the lifespan hook (start-up), not on the first request.

    Raises
    ------
    InvalidArgumentError
        ``private`` without an ``api_key``.
    """
    from mmrec.engine import Engine

    engine = engine_or_db if isinstance(engine_or_db, Engine) else Engine(engine_or_db)
    service = Service(engine, api_key, private, limits or ServiceLimits())

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.reset_limiter()
        if warm:
            seconds = await run_in_threadpool(warm_engine, engine)
            log.info("models ready in %.1f s", seconds)
        service.ready = True
        yield

    app = FastAPI(
        title="mmrec",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "catalog", "description": "Items and their media."},
            {"name": "search", "description": "Cross-modal similarity search."},
            {"name": "users", "description": "Interactions and recommendations."},
            {"name": "service", "description": "Health."},
        ],
    )
    app.state.service = service
    app.add_middleware(BodyLimitMiddleware, limits=service.limits)
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(MMRecError, on_app_error)
    app.add_exception_handler(EncoderError, on_app_error)
    app.add_exception_handler(BatchError, on_batch_error)  # type: ignore[arg-type]
    app.add_exception_handler(UploadTypeError, on_upload_type)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_unexpected)
    app.include_router(router)

    @app.get("/", include_in_schema=False)
    async def index() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "index.html",
            headers={
                "Cache-Control": "no-cache",
                "Content-Security-Policy": PAGE_CSP,
                "X-Content-Type-Options": "nosniff",
            },
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    app.openapi = _openapi_with_bodies(app)  # type: ignore[method-assign]
    return app


def _openapi_with_bodies(app: FastAPI) -> Callable[[], dict[str, Any]]:
    """OpenAPI generation that also publishes the schemas of the bodies the routes parse themselves.

    ``POST /similar`` takes JSON or multipart and ``POST /interactions`` an object or a list; they read
    the body directly (for per-entry errors and content sniffing), so FastAPI cannot see their models.
    """

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
                tags=app.openapi_tags,
            )
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (SimilarRequest, SimilarUpload, InteractionIn):
                s = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(s.pop("$defs", {}))
                components[model.__name__] = s
            app.openapi_schema = schema
        return app.openapi_schema

    return openapi
