"""What the routes share: the service dependency, auth, body parsing and checks, media links.

The routes read some bodies themselves (``POST /similar`` takes JSON or multipart, ``POST /interactions``
an object or a list, with per-entry errors), so parsing and validating a body lives here, raising the same
:class:`~fastapi.exceptions.RequestValidationError` FastAPI raises for the bodies it parses: every
validation failure is then answered in one format (:func:`mmrec.service.errors.on_validation_error`).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, TypeVar
from urllib.parse import quote

from fastapi import Depends, Request, Security
from fastapi.exceptions import RequestValidationError
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException

from mmrec.service.schemas import MAX_ID_CHARS, MediaLinks
from mmrec.service.state import Service

__all__ = [
    "Bearer",
    "KeyHeader",
    "ServiceDep",
    "check_id",
    "get_service",
    "json_body",
    "media_links",
    "request_type",
    "require_read",
    "require_write",
    "validate",
]

M = TypeVar("M", bound=BaseModel)

# --------------------------------------------------------------------------------------------- service and auth

# auto_error=False: a missing key is not an error for open reads; Service.check_key decides, with one message.
_key_header = APIKeyHeader(
    name="X-API-Key",
    auto_error=False,
    description="The server's API key (needed for writes; for reads in private mode).",
)
_bearer = HTTPBearer(auto_error=False, description="The server's API key as a bearer token.")


def get_service(request: Request) -> Service:
    """The :class:`~mmrec.service.state.Service` of the app serving ``request`` (a FastAPI dependency).

    Parameters
    ----------
    request : Request

    Returns
    -------
    Service
        The one set up by :func:`mmrec.service.app.create_app`.
    """
    return request.app.state.service


ServiceDep = Annotated[Service, Depends(get_service)]
KeyHeader = Annotated[str | None, Security(_key_header)]
Bearer = Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)]


def require_read(service: ServiceDep, key: KeyHeader, bearer: Bearer) -> None:
    """Reads need the key only in private mode (a route dependency).

    Raises
    ------
    HTTPException
        401 for a missing or wrong key where one is needed.
    """
    service.check_key(key or (bearer.credentials if bearer else None), write=False)


def require_write(service: ServiceDep, key: KeyHeader, bearer: Bearer) -> None:
    """Writes need the key whenever one is configured (a route dependency).

    Raises
    ------
    HTTPException
        401 for a missing or wrong key where one is needed.
    """
    service.check_key(key or (bearer.credentials if bearer else None), write=True)


# --------------------------------------------------------------------------------------------- request checks


def check_id(value: str, what: str) -> None:
    """Refuse an empty or over-long id from the path.

    ``{…:path}`` parameters cannot carry FastAPI length constraints, so the check is made here, answered
    like a constraint on the parameter would be.

    Parameters
    ----------
    value : str
        The id.
    what : str
        The path parameter's name (``item_id``, ``user_id``).

    Raises
    ------
    RequestValidationError
        When ``value`` is empty or longer than ``MAX_ID_CHARS``.
    """
    if not value or len(value) > MAX_ID_CHARS:
        raise RequestValidationError(
            [{"type": "value_error", "loc": ("path", what), "msg": f"{what} must be 1 to {MAX_ID_CHARS} characters"}]
        )


def request_type(request: Request) -> str:
    """The request's media type, lower case, without parameters (``multipart/form-data``; ``""`` if none)."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def json_body(request: Request) -> Any:
    """The request's JSON body.

    Parameters
    ----------
    request : Request

    Returns
    -------
    Any
        The decoded JSON value.

    Raises
    ------
    HTTPException
        415 for a content type other than JSON (none at all is taken as JSON).
    RequestValidationError
        For an empty body or malformed JSON, including JSON nested too deeply to parse (a 422, like
        FastAPI's own bodies).
    """
    ctype = request_type(request)
    if ctype not in ("", "application/json") and not ctype.endswith("+json"):
        raise HTTPException(415, f"send application/json, not {ctype!r}")
    raw = await request.body()
    if not raw.strip():
        raise RequestValidationError([{"type": "missing", "loc": ("body",), "msg": "the request body is empty"}])
    try:
        return json.loads(raw)
    except RecursionError:
        # `[[[[…]]]]` thousands deep exhausts the parser's recursion limit: a malformed request, not a bug.
        raise RequestValidationError(
            [
                {
                    "type": "json_invalid",
                    "loc": ("body", 0),
                    "msg": "JSON decode error",
                    "ctx": {"error": "nested too deeply"},
                }
            ]
        ) from None
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


def validate(model: type[M], data: Any, loc: tuple[Any, ...] = ("body",)) -> M:
    """``data`` checked against ``model``, its errors located under ``loc`` like FastAPI's.

    Parameters
    ----------
    model : type of BaseModel
    data : Any
        Decoded JSON or form fields.
    loc : tuple
        Prefix of each error's location.

    Returns
    -------
    BaseModel
        An instance of ``model``.

    Raises
    ------
    RequestValidationError
        When ``data`` does not fit ``model``.
    """
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise RequestValidationError(
            [{**err, "loc": (*loc, *err["loc"])} for err in e.errors(include_url=False, include_input=False)]
        ) from e


# --------------------------------------------------------------------------------------------- responses


def media_links(request: Request, item_id: str, has_image: bool, has_audio: bool) -> MediaLinks:
    """URLs of an item's media routes, for the kinds it has.

    Parameters
    ----------
    request : Request
        The request answered: the links keep its ``root_path`` (a service mounted under a prefix).
    item_id : str
    has_image, has_audio : bool

    Returns
    -------
    MediaLinks
    """
    base = f"{request.scope.get('root_path', '')}/items/{quote(item_id, safe='/')}/media"
    return MediaLinks(image=f"{base}/image" if has_image else None, audio=f"{base}/audio" if has_audio else None)
