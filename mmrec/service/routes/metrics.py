"""``GET /metrics``: the Prometheus text format (mounted only with ``mmrec serve --metrics``)."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from mmrec.service.deps import ServiceDep, require_read
from mmrec.service.errors import ERRORS
from mmrec.service.metrics import CONTENT_TYPE_LATEST

# Reads' auth: open unless the server is private, then the key is needed (counts say how big the catalog is).
router = APIRouter(tags=["service"], dependencies=[Depends(require_read)])


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {"text/plain": {}}, "description": "Prometheus text exposition format 0.0.4."},
        401: ERRORS[401],
    },
    summary="Prometheus metrics",
)
async def metrics(service: ServiceDep) -> Response:
    """Request counts and latencies per route, errors by kind, catalog size, table versions, the models in use.
    Needs the API key when the server is private."""
    assert service.metrics is not None  # the router is only included when metrics are on
    import anyio.to_thread

    # The data collector reads the database (counts, versions): in a thread, but not behind the limiter of
    # the engine calls, so that a scrape during a burst of slow requests still answers in time.
    body = await anyio.to_thread.run_sync(service.metrics.render)
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})
