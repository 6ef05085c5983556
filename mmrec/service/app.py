"""The HTTP service: a FastAPI app over one :class:`~mmrec.engine.Engine`, and the web page.

Design notes
------------
* Models load once, in the lifespan hook (:func:`warm_engine`): encoders, the
  shared space with its bridges, the user book, and one forward pass per model.
* Every call into the engine runs in a worker thread (:meth:`Service.run`): it is
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
  (:func:`status_for`); every error answer is ``{"detail": "one line"}``
  (validation errors add ``errors``).
* Auth: with an API key, writes need it (``X-API-Key`` or ``Authorization:
  Bearer``); reads too in private mode. The page and its assets, ``/health``
  and the API docs stay open: they hold no data.
"""

from __future__ import annotations

import functools
import hmac
import json
import logging
import os
import shutil
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Depends, FastAPI, Query, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse, JSONResponse
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from fastapi.staticfiles import StaticFiles
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException

from encoders.errors import EncoderError, EncoderLoadError, InputError, UnknownEncoderError
from mmrec import __version__
from mmrec.errors import (
    CatalogError,
    InvalidArgumentError,
    ItemNotFoundError,
    MediaError,
    MMRecError,
    StoreError,
)
from mmrec.media import AUDIO_EXTENSIONS, IMAGE_EXTENSIONS
from mmrec.service.schemas import (
    MAX_ID_CHARS,
    MAX_WHERE_CHARS,
    ErrorResponse,
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
from mmrec.service.uploads import BodyLimitMiddleware, ServiceLimits, UploadTypeError, form_value, sniff_upload

if TYPE_CHECKING:
    from mmrec.engine import Engine
    from mmrec.interactions import Interaction

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


class BatchError(Exception):
    """Some entries of an interaction batch are bad; nothing was recorded."""

    def __init__(self, bad: list[tuple[int, str]]) -> None:
        self.bad = bad
        shown = "; ".join(f"[{i}] {reason}" for i, reason in bad[:10])
        more = f"; … and {len(bad) - 10} more" if len(bad) > 10 else ""
        super().__init__(f"{len(bad)} bad interaction(s), nothing recorded: {shown}{more}")


class Service:
    """What the routes share: the engine, the auth settings, the limits and the locks.

    Parameters
    ----------
    engine : Engine
    api_key : str, optional
        Key required for writes (and for reads when ``private``).
    private : bool
        Require the key for reads too.
    limits : ServiceLimits
    """

    def __init__(self, engine: Engine, api_key: str | None, private: bool, limits: ServiceLimits) -> None:
        if private and not api_key:
            raise InvalidArgumentError("private mode needs an API key")
        self.engine = engine
        self.api_key = api_key or None
        self.private = private
        self.limits = limits
        self.write_lock = threading.Lock()
        self.model_lock = threading.Lock()
        self.ready = False
        self._limiter: Any = None

    async def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` in a worker thread, at most ``limits.workers`` (default 2 × cores) at a time."""
        import anyio.to_thread

        if self._limiter is None:
            # Created in the running event loop (an anyio limiter belongs to one loop); reset at each start-up.
            self._limiter = anyio.CapacityLimiter(self.limits.workers or 2 * (os.cpu_count() or 1))
        return await anyio.to_thread.run_sync(functools.partial(fn, *args, **kwargs), limiter=self._limiter)

    def reset_limiter(self) -> None:
        """Forget the limiter (the next event loop makes its own)."""
        self._limiter = None

    # ----------------------------------------------------------------- auth

    def check_key(self, presented: str | None, *, write: bool) -> None:
        """Raise 401 unless ``presented`` is the key, where this kind of request needs one."""
        if self.api_key is None or (not write and not self.private):
            return
        if presented is None:
            raise HTTPException(
                401,
                "this request needs the API key (header X-API-Key or Authorization: Bearer)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        # Constant-time comparison: the time taken says nothing about how much of the key was right.
        if not hmac.compare_digest(presented.encode(), self.api_key.encode()):
            raise HTTPException(401, "wrong API key", headers={"WWW-Authenticate": "Bearer"})

    # ----------------------------------------------------------------- helpers run in the thread pool

    def media_flags(self, ids: list[str]) -> dict[str, tuple[bool, bool]]:
        """Item id → (has_image, has_audio), in one query."""
        rows = self.engine.store.rows(ids, columns=["id", "has_image", "has_audio"])
        return {i: (bool(r.get("has_image")), bool(r.get("has_audio"))) for i, r in rows.items()}

    def media_path(self, item_id: str, kind: str) -> Path:
        """The file of ``item_id`` for ``kind``, resolved inside its catalog root.

        Only a path recorded in the item's own ``files`` can be served, and only when it resolves
        (symlinks followed) to a regular file inside the catalog root with a media suffix of that kind.
        """
        row = self.engine.store.get(item_id, columns=["id", "catalog", "files"])
        entry = next((f for f in row.get("files") or [] if f.get("role") == kind), None)
        if entry is None or not row.get("catalog"):
            raise HTTPException(404, f"item {item_id!r} has no {kind} file")
        try:
            root = Path(row["catalog"]).resolve(strict=True)
            target = (root / entry["path"]).resolve()
        except (OSError, RuntimeError) as e:  # a vanished catalog, a symlink loop
            raise HTTPException(404, f"the {kind} file of {item_id!r} is not available") from e
        # resolve() follows every symlink, so a link that escapes the catalog lands outside the root here.
        if not target.is_relative_to(root):
            log.warning("refused %s of %r: %s is outside the catalog %s", kind, item_id, target, root)
            raise HTTPException(403, f"the {kind} file of {item_id!r} is outside the catalog; not served")
        allowed = IMAGE_EXTENSIONS if kind == "image" else AUDIO_EXTENSIONS
        if target.suffix.lower() not in allowed:
            raise HTTPException(403, f"the {kind} file of {item_id!r} is not a {kind} file; not served")
        if not target.is_file():
            raise HTTPException(404, f"the {kind} file of {item_id!r} is gone (re-run mmrec ingest)")
        return target

    def record(
        self, entries: list[tuple[int, InteractionIn]], bad: list[tuple[int, str]], *, single: bool = False
    ) -> tuple[list[Interaction], int, int, int]:
        """Check every entry, then record all of them or none: ``(interactions, added, duplicates, users)``.

        Parameters
        ----------
        entries : list of (index, InteractionIn)
            The entries that passed the schema, with their position in the request.
        bad : list of (index, reason)
            Entries that failed the schema; reported together with the ones found bad here.
        single : bool
            The request was one object, not a list: an unknown item is then a plain 404.

        Raises
        ------
        BatchError
            When any entry is bad (nothing is recorded).
        ItemNotFoundError
            For a single interaction with an unknown item.
        """
        import numpy as np

        from mmrec.interactions import make_interaction

        now = datetime.now(timezone.utc)
        parsed: list[tuple[int, Interaction]] = []
        bad = list(bad)
        for i, e in entries:
            try:
                parsed.append(
                    (i, make_interaction(e.user, e.item, e.event, weight=e.weight, rating=e.rating, ts=e.at, now=now))
                )
            except ValueError as err:
                bad.append((i, str(err)))
        ids = sorted({p.item for _, p in parsed})
        rows = self.engine.store.rows(ids, columns=["id", "fused_vec"])
        unknown = [(i, p.item) for i, p in parsed if p.item not in rows]
        if single and unknown and not bad:
            raise ItemNotFoundError(f"no item with id {unknown[0][1]!r}")
        bad += [(i, f"unknown item {item!r}") for i, item in unknown]
        if bad:
            raise BatchError(sorted(bad))
        vectors = {
            i: None if r.get("fused_vec") is None else np.asarray(r["fused_vec"], np.float32) for i, r in rows.items()
        }
        inters = [p for _, p in parsed]
        with self.write_lock:
            added, duplicates, users = self.engine.users().record(inters, vectors)
        return inters, added, duplicates, users


def warm_engine(engine: Engine) -> float:
    """Load everything a request needs, so that the first request is as fast as the next.

    Loads the encoders (checked against the database), the shared space and its bridges and the user book,
    and runs each model once (lazy sessions and kernels are built by the first forward pass).
    A database without items is left as it is (requests then answer 503).

    Parameters
    ----------
    engine : Engine

    Returns
    -------
    float
        Seconds taken.

    Raises
    ------
    EncoderMismatchError, StoreError, EncoderError
        When the database cannot be served (other encoders, unreadable fusion checkpoint, missing weights).
    """
    t0 = time.perf_counter()
    if not engine.store.has_items():
        log.warning("database %s has no items yet; ingest a catalog first", engine.store.uri)
        return 0.0
    encoders = engine.encoders()
    space = engine.space()
    for m in ("image", "audio"):
        if not space.aligned(m):
            space.bridge(m)
    engine.users()
    _warm_hybrid(engine)
    import numpy as np
    from PIL import Image

    from encoders.base import Waveform

    samples: dict[str, Any] = {
        "text": "warm up",
        "image": Image.new("RGB", (224, 224), "white"),
        "audio": Waveform(np.zeros(16000, np.float32), 16000),
    }
    for m, enc in encoders.items():
        try:
            enc.encode_batch([samples[m]])
        except EncoderError as e:  # the model loaded; a failed warm-up pass is not worth refusing to start
            log.warning("warm-up of the %s encoder failed: %s", m, e)
    return time.perf_counter() - t0


def _warm_hybrid(engine: Engine) -> None:
    """Load the trained hybrid recommender now when the database has one (else the first request would)."""
    try:
        from mmrec.hybrid_serving import scorer_for
    except ImportError:  # an installation without the hybrid recommender's dependencies
        return
    try:
        scorer_for(engine)
    except (MMRecError, EncoderError) as e:  # recommendations fall back or report it per request
        log.warning("could not load the hybrid recommender: %s", e)


# --------------------------------------------------------------------------------------------- errors


def status_for(exc: BaseException) -> int:
    """The HTTP status of a user-facing error: the client's fault is 4xx, an unusable database 503.

    Parameters
    ----------
    exc : MMRecError or EncoderError

    Returns
    -------
    int
        404 unknown item; 422 undecodable media or encoder input; 400 bad argument or filter;
        503 database or model problem; 400 for any other user-facing error.
    """
    if isinstance(exc, ItemNotFoundError):
        return 404
    if isinstance(exc, MediaError | InputError):
        return 422  # an upload that cannot be decoded: well-formed request, unusable content
    if isinstance(exc, InvalidArgumentError | CatalogError):
        return 400
    if isinstance(exc, StoreError | EncoderLoadError | UnknownEncoderError):
        return 503  # the server's database or models, not the request, are the problem
    return 400


def _error(status: int, detail: str, errors: list[dict[str, Any]] | None = None, headers: Any = None) -> JSONResponse:
    body: dict[str, Any] = {"detail": detail}
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, headers=headers)


async def _on_app_error(request: Request, exc: Exception) -> JSONResponse:
    status = status_for(exc)
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if isinstance(exc, ItemNotFoundError):
        # The store names the database's location; a client has no use for the server's paths.
        message = message.replace(f" in {request.app.state.service.engine.store.uri!r}", "")
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, message)
    return _error(status, message)


def _validation_message(errors: list[dict[str, Any]]) -> str:
    parts = []
    for e in errors[:5]:
        loc = [str(x) for x in e.get("loc", ()) if x not in ("body", "query", "path")]
        if e.get("type") == "json_invalid":
            ctx = e.get("ctx") or {}
            parts.append(f"malformed JSON: {ctx.get('error', e.get('msg'))}")
            continue
        where = ".".join(loc)
        msg = str(e.get("msg")).removeprefix("Value error, ")  # pydantic's prefix for validator messages
        parts.append(f"{where}: {msg}" if where else msg)
    more = f"; … and {len(errors) - 5} more" if len(errors) > 5 else ""
    return "; ".join(parts) + more


async def _on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    from fastapi.encoders import jsonable_encoder

    errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type", "ctx")} for e in exc.errors()]
    return _error(422, _validation_message(errors), jsonable_encoder(errors))


async def _on_batch_error(request: Request, exc: BatchError) -> JSONResponse:
    return _error(422, str(exc), [{"index": i, "reason": r} for i, r in exc.bad])


async def _on_upload_type(request: Request, exc: UploadTypeError) -> JSONResponse:
    return _error(415, str(exc))


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # A bug: log it with its traceback, answer without internals.
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return _error(500, "internal error (see the server log)")


ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse, "description": text}
    for code, text in {
        400: "Bad filter or argument",
        401: "API key missing or wrong",
        404: "Unknown id",
        422: "Invalid parameters",
        503: "Database unusable",
    }.items()
}


def _responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    extra = {
        403: "File outside the catalog",
        413: "Body too large",
        415: "Unsupported media type",
    }
    out = dict(ERRORS)
    for c in codes:
        out[c] = {"model": ErrorResponse, "description": extra[c]}
    return out


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
        **_responses(403),
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
    responses=_responses(413, 415),
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
    responses=_responses(413, 415),
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
                bad.append((i, _validation_message(e.errors(include_url=False, include_input=False))))
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
    app.add_exception_handler(RequestValidationError, _on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(MMRecError, _on_app_error)
    app.add_exception_handler(EncoderError, _on_app_error)
    app.add_exception_handler(BatchError, _on_batch_error)  # type: ignore[arg-type]
    app.add_exception_handler(UploadTypeError, _on_upload_type)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _on_unexpected)
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
