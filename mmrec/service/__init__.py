"""The HTTP service (FastAPI) and the web page over an :class:`~mmrec.engine.Engine`.

Run it with ``mmrec serve``, or build the ASGI app yourself::

    from mmrec.service import create_app

    app = create_app("mmrec-db", api_key="secret")

The names below are loaded on first use: ``mmrec.service.settings`` (which the argument parser reads for
its help texts) must not import FastAPI and the app.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mmrec.service.app import create_app
    from mmrec.service.state import warm_engine
    from mmrec.service.uploads import ServiceLimits

__all__ = ["ServiceLimits", "create_app", "warm_engine"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from mmrec.service.app import create_app

        return create_app
    if name == "warm_engine":
        from mmrec.service.state import warm_engine

        return warm_engine
    if name == "ServiceLimits":
        from mmrec.service.uploads import ServiceLimits

        return ServiceLimits
    raise AttributeError(f"module 'mmrec.service' has no attribute {name!r}")
