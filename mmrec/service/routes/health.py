"""``GET /health``: liveness and readiness, for load balancers and process managers."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from mmrec import __version__
from mmrec.service.deps import ServiceDep
from mmrec.service.schemas import Health

router = APIRouter(tags=["service"])


@router.get(
    "/health",
    response_model=Health,
    response_model_exclude_none=True,
    responses={
        503: {"model": Health, "description": "Not ready: the models are loading or the database cannot be read"}
    },
    summary="Liveness and readiness",
)
async def health(service: ServiceDep) -> Health | JSONResponse:
    """Always open (no key): for load balancers and process managers. 200 with `ready: true` when requests
    can be served; 503 with `ready: false` and a one-line `reason` while the models load or when the
    database cannot be read (checked at most once per second)."""
    problem = await service.health_problem()
    if problem is None:
        return Health(status="ok", version=__version__, ready=True)
    body = Health(status="unavailable", version=__version__, ready=False, reason=problem)
    return JSONResponse(body.model_dump(), status_code=503, headers={"Retry-After": "1"})
