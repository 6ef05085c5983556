"""The request middleware: a request id, one access-log line and the request metrics per request.

It is the outermost of the app's middleware (it sees the 413s of the body limit and every error answer),
written as plain ASGI rather than Starlette's ``BaseHTTPMiddleware``, which would add a task and a memory
stream per request and whose cost is what ``benchmarks/service_overhead.py`` measures against none.

* **Request id**: the client's ``X-Request-ID`` when it is a sane token (≤ 128 characters of letters,
  digits and ``._:/+=-``), else a new random one; echoed in the answer's ``X-Request-ID`` and put in every
  log line written while the request is served (:data:`mmrec.service.logs.REQUEST_ID`).
* **Access log**: one line per request at ``info`` on ``mmrec.access`` with the method, the route template,
  the path, the status, the duration, the client and the database version served.
* **Errors nobody handled** are answered here (503 for a database failure, 500 for a bug, never with
  internals; :func:`mmrec.service.errors.unexpected_answer`) instead of propagating to uvicorn, which
  would log a second traceback. A client that disconnects before its body arrived (an aborted upload)
  is one ``info`` line and status 499 in the log and the metrics, not a traceback. A request cancelled
  because the graceful-shutdown time ran out is answered 503 (when nothing was sent yet).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse
from starlette.routing import Mount
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from mmrec.service.errors import unexpected_answer
from mmrec.service.logs import ACCESS_LOGGER, REQUEST_ID

if TYPE_CHECKING:
    from mmrec.service.metrics import Metrics

__all__ = ["REQUEST_ID_HEADER", "ObserveMiddleware", "route_template"]

REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")
_HEADER = REQUEST_ID_HEADER.lower().encode()
#: nginx's code for "the client closed the connection before the answer": no answer could be sent.
CLIENT_CLOSED = 499

log = logging.getLogger("mmrec.service")
access = logging.getLogger(ACCESS_LOGGER)


def route_template(scope: Scope) -> str:
    """The template of the route that matched (``/items/{item_id:path}``; ``/static/{path}`` for a mount).

    Unmatched paths are all ``unmatched``: the raw path of a 404 would give one metric series per URL tried.
    """
    route = scope.get("route")
    path = getattr(route, "path", None)
    if isinstance(route, Mount) and isinstance(path, str):
        return f"{path}/{{path}}"
    if isinstance(path, str) and path:
        return path
    # FastAPI's router (0.16x) records only its own routes in scope["route"]; a mount shows as the part of
    # root_path it added (the mount's prefix) beyond the app's own root path.
    prefix = str(scope.get("root_path", ""))[len(str(scope.get("app_root_path", ""))) :]
    return f"{prefix}/{{path}}" if prefix and "endpoint" in scope else "unmatched"


class ObserveMiddleware:
    """Request ids, access log, request metrics and last-resort error answers (plain ASGI).

    Parameters
    ----------
    app : ASGI app
    metrics : Metrics, optional
        Where requests are counted; ``None`` when metrics are off (nothing is counted then).
    db_version : callable, optional
        Returns the items table version last seen (no I/O), for the access log.
    """

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None, db_version: Any = None) -> None:
        self.app = app
        self.metrics = metrics
        self.db_version = db_version

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        rid = _incoming_id(scope) or uuid.uuid4().hex
        token = REQUEST_ID.set(rid)
        # Routes can read it as request.state.request_id; the access line takes fields from request.state.log.
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        status = 500
        started = False
        rid_header = (_HEADER, rid.encode("latin-1"))

        async def send_with_id(message: Message) -> None:
            nonlocal status, started
            if message["type"] == "http.response.start":
                status = message["status"]
                started = True
                message = {**message, "headers": [*message.get("headers", []), rid_header]}
            await send(message)

        metrics = self.metrics
        if metrics is not None:
            metrics.in_flight.inc()
        try:
            await self.app(scope, receive, send_with_id)
        except ClientDisconnect:
            # The client went away mid-body (an aborted upload): nobody to answer, nothing to fix.
            status = CLIENT_CLOSED
        except asyncio.CancelledError:
            # uvicorn cancels the requests still running when the graceful-shutdown time is up. The task ends
            # here either way; answering 503 (if nothing was sent) instead of re-raising spares the client a
            # reset connection and the log a traceback ("Exception in ASGI application") for a planned stop.
            if started:
                raise
            status = 503
            state["log"] = {**(state.get("log") or {}), "cancelled": "server stopping"}
            with contextlib.suppress(Exception):
                await JSONResponse(
                    {"detail": "the server is stopping; try again"},
                    status_code=503,
                    headers={"Connection": "close", "Retry-After": "1"},
                )(scope, receive, send_with_id)
        except Exception as exc:
            if started:
                raise  # the answer is half sent: only closing the connection is left, which uvicorn does
            answer = unexpected_answer(exc, scope.get("method", ""), scope.get("path", ""))
            await answer(scope, receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = route_template(scope)
            if metrics is not None:
                metrics.in_flight.dec()
                metrics.observe_request(scope.get("method", ""), route, status, seconds)
            if access.isEnabledFor(logging.INFO):
                self._access_line(scope, route, status, seconds, state)
            REQUEST_ID.reset(token)

    def _access_line(self, scope: Scope, route: str, status: int, seconds: float, state: dict[str, Any]) -> None:
        client = scope.get("client")
        fields: dict[str, Any] = {
            "method": scope.get("method", ""),
            "route": route,
            "path": scope.get("path", ""),
            "status": status,
            "duration_ms": round(seconds * 1000, 2),
            "client": client[0] if client else None,
        }
        if self.db_version is not None:
            version = self.db_version()
            if version is not None:
                fields["db_version"] = version
        fields.update(state.get("log") or {})
        message = "%s %s %d %.1f ms id=%s" + (" (client disconnected)" if status == CLIENT_CLOSED else "")
        args = (fields["method"], fields["path"], status, seconds * 1000, state["request_id"])
        # makeRecord + handle is what access.info does, less the stack walk that finds the caller's line:
        # a third of a log line's cost, and always this line.
        record = access.makeRecord(access.name, logging.INFO, __file__, 0, message, args, None, extra=fields)
        access.handle(record)


def _incoming_id(scope: Scope) -> str | None:
    for key, value in scope.get("headers", ()):
        if key == _HEADER:
            text = value.decode("latin-1").strip()
            return text if _REQUEST_ID.fullmatch(text) else None
    return None
