"""Errors → HTTP statuses and ``{"detail": ...}`` answers, in one place.

Every answer's ``detail`` is one line, and none names a file of the server: the database's location and
any other absolute path or URI in a message (LanceDB's errors carry manifest paths, a decoder's the upload's
temporary file) are replaced before it is sent (:func:`mmrec.service.messages.public_message`); the
server log keeps them.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from encoders.errors import EncoderLoadError, InputError, UnknownEncoderError
from mmrec.errors import (
    CatalogError,
    InvalidArgumentError,
    ItemNotFoundError,
    MediaError,
    MediaForbiddenError,
    MediaUnavailableError,
    StoreError,
    WriterBusyError,
)
from mmrec.service.messages import DATABASE_UNAVAILABLE, is_database_failure, public_message
from mmrec.service.schemas import ErrorResponse
from mmrec.service.state import BatchError
from mmrec.service.uploads import UploadTypeError

log = logging.getLogger("mmrec.service")


def status_for(exc: BaseException) -> int:
    """The HTTP status of a user-facing error: the client's fault is 4xx, an unusable database 503.

    Parameters
    ----------
    exc : MMRecError or EncoderError

    Returns
    -------
    int
        404 unknown item, or an item's media file that is not there; 403 a media file that may not be
        served (outside the catalog, not of the asked kind); 422 undecodable media or encoder input;
        400 bad argument or filter; 503 database or model problem; 400 for any other user-facing error.
    """
    if isinstance(exc, ItemNotFoundError | MediaUnavailableError):
        return 404
    if isinstance(exc, MediaForbiddenError):
        return 403
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


async def on_app_error(request: Request, exc: Exception) -> JSONResponse:
    """Answer an :class:`~mmrec.errors.MMRecError` or :class:`~encoders.errors.EncoderError` with its status."""
    status = status_for(exc)
    # The store names the database's location and LanceDB its files; a client has no use for the server's paths.
    message = public_message(str(exc), request.app.state.service.engine.uri) or type(exc).__name__
    headers = None
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, str(exc).strip().splitlines()[0] if str(exc) else "")
        # Another writer holds the database, or it is changing: worth retrying shortly.
        headers = {"Retry-After": "1"} if isinstance(exc, WriterBusyError) or status == 503 else None
    return _error(status, message, headers=headers)


def validation_message(errors: list[dict[str, Any]]) -> str:
    """One line for pydantic / FastAPI validation errors: ``field: message`` for the first five."""
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


async def on_validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with one line in ``detail`` and the structured errors in ``errors``."""
    from fastapi.encoders import jsonable_encoder

    errors = [{k: v for k, v in e.items() if k in ("loc", "msg", "type", "ctx")} for e in exc.errors()]
    return _error(422, validation_message(errors), jsonable_encoder(errors))


async def on_batch_error(request: Request, exc: BatchError) -> JSONResponse:
    """422 for a rejected interaction batch, every bad entry in ``errors`` by its index in the request."""
    return _error(422, str(exc), [{"index": i, "reason": r} for i, r in exc.bad])


async def on_upload_type(request: Request, exc: UploadTypeError) -> JSONResponse:
    """415 for an upload whose content is not an accepted image or sound format."""
    return _error(415, str(exc))


def unexpected_answer(exc: BaseException, method: str, path: str) -> JSONResponse:
    """The answer to an exception no handler took: 503 for a database failure, else 500 — never its message.

    Logs it: a database failure as one line (it is not a bug and its traceback says nothing new), anything
    else with its traceback (a bug, which the traceback is needed to fix).
    """
    if is_database_failure(exc):
        log.warning("%s %s: database failure: %s: %s", method, path, type(exc).__name__, str(exc).strip()[:500])
        return _error(503, DATABASE_UNAVAILABLE, headers={"Retry-After": "1"})
    log.error("unexpected error on %s %s", method, path, exc_info=exc)
    return _error(500, "internal error (see the server log)")


async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    """500 for a bug (503 for a database failure), without internals in the answer."""
    return unexpected_answer(exc, request.method, request.url.path)


#: The error answers every API route documents.
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


def error_responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of :data:`ERRORS` plus the route-specific ``codes`` (403, 413, 415)."""
    extra = {
        403: "File outside the catalog",
        408: "Request body not received in time",
        413: "Body too large",
        415: "Unsupported media type",
    }
    out = dict(ERRORS)
    for c in codes:
        out[c] = {"model": ErrorResponse, "description": extra[c]}
    return out
