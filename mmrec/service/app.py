"""The HTTP service: a FastAPI app over one :class:`~mmrec.engine.Engine`, and the web page.

Layout
------
This module builds the app (lifespan, middleware, error handlers, the page, the OpenAPI document);
the routes live in :mod:`mmrec.service.routes`, one router per resource (``health``, ``catalog``,
``search``, ``users``), and what they share (the service dependency, auth, body parsing) in
:mod:`mmrec.service.deps`. Errors are mapped in :mod:`mmrec.service.errors`.

Design notes
------------
* Models load once, in the lifespan hook (:meth:`mmrec.engine.Engine.warm`): encoders, the
  shared space with its bridges, the user book, the hybrid recommender, and one forward pass per model.
* Every call into the engine runs in a worker thread (:meth:`mmrec.service.state.Service.run`): it is
  CPU-bound (models, vector search) and must not block the event loop, so
  concurrent requests proceed side by side. The number of engine calls running
  at once is bounded (``ServiceLimits.workers``, ``mmrec serve --threads``,
  default twice the cores): a burst waits its turn on the event loop instead of
  running 40 threads on 2 cores, which bounds memory and, measured at 50
  clients, gives the same throughput with a lower p99 (benchmarks/README.md).
* Two locks serialise what is not safe to run concurrently: the engine's write
  lock around profile updates (each is a read-modify-write of the user's row;
  :meth:`mmrec.engine.Engine.record_interactions` takes it), and the service's
  ``model_lock`` around query encoding (Hugging Face fast tokenizers fail with
  "Already borrowed" when one instance is used from two threads at once; the
  models use every core for one query anyway). Searches by item and
  recommendations take no lock.
* Errors: every :class:`~mmrec.errors.MMRecError` and
  :class:`~encoders.errors.EncoderError` is mapped to a status centrally
  (:func:`mmrec.service.errors.status_for`); every error answer is ``{"detail": "one line"}``
  (validation errors add ``errors``).
* Auth: with an API key, writes need it (``X-API-Key`` or ``Authorization:
  Bearer``); reads too in private mode, and ``/metrics``. The page and its assets, ``/health``
  and the API docs stay open: they hold no data.
* Operations: every request gets a request id, one access-log line and its metrics
  (:mod:`mmrec.service.middleware`); ``/metrics`` (:mod:`mmrec.service.metrics`) only when asked for;
  the docs pages load their bundles from this server (:mod:`mmrec.service.docs`). Running the server
  (header timeout, graceful stop) is :mod:`mmrec.service.server`, its settings :mod:`mmrec.service.settings`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from encoders.errors import EncoderError
from mmrec import __version__
from mmrec.errors import MMRecError
from mmrec.service.docs import add_docs
from mmrec.service.errors import (
    on_app_error,
    on_batch_error,
    on_unexpected,
    on_upload_type,
    on_validation_error,
)
from mmrec.service.metrics import Metrics
from mmrec.service.middleware import ObserveMiddleware
from mmrec.service.routes import api_router
from mmrec.service.routes import metrics as metrics_route
from mmrec.service.schemas import InteractionIn, SimilarRequest, SimilarUpload
from mmrec.service.settings import ServeSettings
from mmrec.service.state import BatchError, Service, warm_engine
from mmrec.service.uploads import BodyLimitMiddleware, ServiceLimits, UploadTypeError

if TYPE_CHECKING:
    from mmrec.engine import Engine

log = logging.getLogger("mmrec.service")

STATIC_DIR = Path(__file__).resolve().parent / "static"

#: The page only talks to this origin; media may be shown from blob: URLs (fetched with the API key).
PAGE_CSP = (
    "default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob:; script-src 'self'; "
    "style-src 'self'; connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)

DESCRIPTION = """\
Multimodal recommendations and cross-modal search over an mmrec database.

**Auth.** When the server has an API key (`mmrec serve --api-key` or `MMREC_API_KEY`), every write
(`POST /interactions`, `DELETE /users/{id}`) needs it, as `X-API-Key: KEY` or `Authorization: Bearer KEY`;
reads (and `/metrics`) are open unless the server runs with `--private`. A missing or wrong key is
answered with 401.

**Errors.** Every error is `{"detail": "one line"}` with a 4xx status: 400 bad filter or argument,
401 key, 403 file outside the catalog, 404 unknown id, 408 body stalled, 413 body too large,
415 unsupported upload type, 422 invalid parameters, malformed or too deeply nested JSON, undecodable
upload; 503 when the database cannot be used (retry: `Retry-After`). No answer names a server path.

**Request ids.** Every answer has an `X-Request-ID` header: the one sent with the request, or a new one.
It is in the server's log line for the request.
"""


def create_app(
    engine_or_db: Engine | str | Path,
    *,
    api_key: str | None = None,
    private: bool = False,
    limits: ServiceLimits | None = None,
    warm: bool = True,
    metrics: bool = False,
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
    metrics : bool
        Serve Prometheus metrics at ``/metrics`` (behind the key when ``private``). The engine's
        ``ingest``, ``train``, ``train_hybrid`` and ``forget`` are then timed into
        ``mmrec_job_duration_seconds`` when called in this process (the engine object is instrumented).

    Raises
    ------
    InvalidArgumentError
        ``private`` without an ``api_key``.
    """
    from mmrec.engine import Engine

    engine = engine_or_db if isinstance(engine_or_db, Engine) else Engine(engine_or_db)
    registry = Metrics(engine) if metrics else None
    if registry is not None:
        for job in ("ingest", "train", "train_hybrid", "forget"):
            setattr(engine, job, registry.timed(job, getattr(engine, job)))
    service = Service(engine, api_key, private, limits or ServiceLimits(), registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.reset_limiter()
        if warm:
            seconds = await run_in_threadpool(engine.warm)
            log.info("models ready in %.1f s", seconds)
        service.ready = True
        yield

    app = FastAPI(
        title="mmrec",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # FastAPI's docs pages load their scripts from a CDN; mmrec.service.docs serves them from the package.
        docs_url=None,
        redoc_url=None,
        openapi_tags=[
            {"name": "catalog", "description": "Items and their media."},
            {"name": "search", "description": "Cross-modal similarity search."},
            {"name": "users", "description": "Interactions, recommendations, forgetting a user."},
            {"name": "service", "description": "Health and metrics."},
        ],
    )
    app.state.service = service
    app.add_middleware(BodyLimitMiddleware, limits=service.limits)
    # Added last, so outermost: it times and logs everything, the body limit's 413s included.
    app.add_middleware(ObserveMiddleware, metrics=registry, db_version=service.version_watch.current)
    app.add_exception_handler(RequestValidationError, on_validation_error)  # type: ignore[arg-type]
    app.add_exception_handler(MMRecError, on_app_error)
    app.add_exception_handler(EncoderError, on_app_error)
    app.add_exception_handler(BatchError, on_batch_error)  # type: ignore[arg-type]
    app.add_exception_handler(UploadTypeError, on_upload_type)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, on_unexpected)
    app.include_router(api_router)
    if registry is not None:
        app.include_router(metrics_route.router)
    add_docs(app)

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


def app_from_settings(settings: ServeSettings, engine: Engine | None = None, *, warm: bool = True) -> FastAPI:
    """The app ``mmrec serve`` runs, from its resolved settings.

    Parameters
    ----------
    settings : ServeSettings
    engine : Engine, optional
        An engine already open on ``settings.db`` (default: a new one).
    warm : bool
        Load the models and build the serving snapshot now (:func:`~mmrec.service.state.warm_engine`),
        before the app exists, so that the first request is as fast as the next.
    """
    from mmrec.engine import Engine

    if engine is None:
        engine = Engine(settings.db, serving=settings.serving, memory_budget_mb=settings.memory_budget)
    if warm:
        seconds = warm_engine(engine)
        log.info("models ready in %.1f s", seconds)
    limits = ServiceLimits(
        max_upload_bytes=int(settings.max_upload_mib * 2**20),
        max_json_bytes=int(settings.max_json_mib * 2**20),
        max_batch=settings.max_batch,
        workers=settings.threads,
        body_timeout=settings.body_timeout,
    )
    return create_app(
        engine,
        api_key=settings.api_key,
        private=settings.private,
        limits=limits,
        warm=False,  # warmed above (or by the caller)
        metrics=settings.metrics,
    )


def app_from_env() -> FastAPI:
    """The app of one ``mmrec serve --workers N`` worker process (the uvicorn factory ``app:app_from_env``).

    The parent resolved the settings (flags, ``MMREC_*``, file) and put them in ``$MMREC_SERVE_SETTINGS`` as
    JSON; this worker configures its logging, opens its own engine and warms it (models and snapshot).

    Raises
    ------
    InvalidArgumentError
        The variable is missing or is not the JSON of valid settings.
    """
    import dataclasses
    import json
    import os

    from mmrec.errors import InvalidArgumentError
    from mmrec.service.logs import configure_logging
    from mmrec.service.server import SETTINGS_ENV

    text = os.environ.get(SETTINGS_ENV)
    if not text:
        raise InvalidArgumentError(f"{SETTINGS_ENV} is not set: workers are started by `mmrec serve --workers N`")
    try:
        data = json.loads(text)
        valid = {f.name for f in dataclasses.fields(ServeSettings)}
        settings = ServeSettings(**{k: v for k, v in data.items() if k in valid})
    except (ValueError, TypeError) as e:
        raise InvalidArgumentError(f"{SETTINGS_ENV} does not hold valid settings: {e}") from e
    configure_logging(settings.log_format, settings.log_level, access_log=settings.access_log)
    log.info("worker %d loading models for %s …", os.getpid(), settings.db)
    return app_from_settings(settings)
