"""``GET /health``: liveness and readiness, for load balancers and process managers."""

from __future__ import annotations

from fastapi import APIRouter

from mmrec import __version__
from mmrec.service.deps import ServiceDep
from mmrec.service.schemas import Health

router = APIRouter(tags=["service"])


@router.get("/health", response_model=Health, summary="Liveness and readiness")
async def health(service: ServiceDep) -> Health:
    """Always open (no key): for load balancers and process managers."""
    return Health(status="ok", version=__version__, ready=service.ready)
