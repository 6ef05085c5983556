"""The API docs (``/docs``: Swagger UI, ``/redoc``: ReDoc) served from files installed with the package.

FastAPI's own docs pages load Swagger UI and ReDoc from a CDN, so on a machine without internet ``/docs``
is a blank page. Here the pages load the bundles shipped by the ``fastapi-offline`` package (MIT; it
ships Swagger UI 5, Apache-2.0, and ReDoc 2, MIT) from ``/docs-assets``, and start them with
``static/docs.js``: no inline script, no external host. Each page's Content-Security-Policy allows only
this origin, so the browser itself refuses anything a bundle tries to fetch elsewhere: the only such
thing is ReDoc's hard-coded sidebar logo (``cdn.redoc.ly``), which is then not shown (no request leaves).
"""

from __future__ import annotations

import html
from importlib.resources import files
from pathlib import Path

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS_URL", "DOCS_CSP", "add_docs"]

#: Where the Swagger UI and ReDoc bundles are served.
ASSETS_URL = "/docs-assets"

#: Only this origin; inline styles because both renderers set style attributes, blob: workers for ReDoc's search.
DOCS_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "font-src 'self' data:; connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'"
)
_HEADERS = {"Content-Security-Policy": DOCS_CSP, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}

_SWAGGER = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} API (Swagger UI)</title>
<link rel="icon" href="{root}/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="{root}{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui" data-openapi-url="{root}{openapi}"></div>
<script src="{root}{assets}/swagger-ui-bundle.js"></script>
<script src="{root}/static/docs.js"></script>
</body>
</html>
"""

_REDOC = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} API (ReDoc)</title>
<link rel="icon" href="{root}/static/favicon.svg" type="image/svg+xml">
</head>
<body>
<redoc spec-url="{root}{openapi}"></redoc>
<script src="{root}{assets}/redoc.standalone.js"></script>
</body>
</html>
"""


def assets_dir() -> Path:
    """The folder of the installed Swagger UI and ReDoc bundles (``fastapi_offline/static``)."""
    return Path(str(files("fastapi_offline") / "static"))


def add_docs(app: FastAPI) -> None:
    """Serve ``/docs`` and ``/redoc`` and their assets on ``app`` (built with ``docs_url=None, redoc_url=None``).

    Parameters
    ----------
    app : FastAPI
        Its ``openapi_url`` is what the pages render.
    """
    router = APIRouter(include_in_schema=False)

    def page(template: str, request: Request) -> HTMLResponse:
        # The root path keeps the pages working behind a proxy that mounts the service under a prefix.
        text = template.format(
            title=html.escape(app.title),
            root=html.escape(request.scope.get("root_path", "")),
            assets=ASSETS_URL,
            openapi=html.escape(app.openapi_url or "/openapi.json"),
        )
        return HTMLResponse(text, headers=_HEADERS)

    @router.get("/docs")
    async def swagger_ui(request: Request) -> HTMLResponse:
        return page(_SWAGGER, request)

    @router.get("/redoc")
    async def redoc(request: Request) -> HTMLResponse:
        return page(_REDOC, request)

    app.include_router(router)
    app.mount(ASSETS_URL, StaticFiles(directory=assets_dir()), name="docs-assets")
