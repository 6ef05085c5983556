"""The HTTP service (FastAPI) and the web page over an :class:`~mmrec.engine.Engine`.

Run it with ``mmrec serve``, or build the ASGI app yourself::

    from mmrec.service import create_app

    app = create_app("mmrec-db", api_key="secret")
"""

from __future__ import annotations

from mmrec.service.app import create_app
from mmrec.service.state import warm_engine
from mmrec.service.uploads import ServiceLimits

__all__ = ["ServiceLimits", "create_app", "warm_engine"]
