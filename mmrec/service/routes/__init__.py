"""The API's routes, one router per resource, gathered into :data:`api_router`.

The order of inclusion is the order of the paths in the OpenAPI document (``/docs``).
"""

from __future__ import annotations

from fastapi import APIRouter

from mmrec.service.routes import catalog, health, search, users

__all__ = ["api_router"]

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(catalog.router)
api_router.include_router(search.router)
api_router.include_router(users.router)
