"""The API's documentation pages, served from the package: ``/docs`` (Swagger UI, with a working
Authorize button for the bearer API key) and ``/redoc`` (ReDoc).

No outside request: the pages load the vendored ``swagger-ui-dist`` and ``redoc`` files under
``ledger_api/static/docs/`` (``scripts/refresh-docs-assets.sh`` refreshes them from npm, with their
licences), hold no inline script, and are sent with a Content-Security-Policy that lets the
browser fetch, load images and fonts from this service only. Swagger UI's online validator badge
(a request to validator.swagger.io) is off.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

__all__ = ["ASSETS_PATH", "ASSETS_DIR", "install_docs"]

ASSETS_DIR = Path(__file__).resolve().parent / "static" / "docs"
ASSETS_PATH = "/static/docs"
# Scripts and styles come from this service (no inline script); what they fetch, show or embed too.
# Styles stay 'unsafe-inline' (both UIs set style attributes), ReDoc's search worker is a blob: URL
# and its bundled schema compiler (ajv) builds functions at run time ('unsafe-eval': it still loads
# nothing from elsewhere).
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-eval'; worker-src 'self' blob:; "
            "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; "
            "base-uri 'none'; form-action 'none'")

_SWAGGER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - Swagger UI</title>
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
<link rel="stylesheet" href="{assets}/swagger-ui.css">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-init.js"></script>
</body>
</html>
"""

_REDOC_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title} - ReDoc</title>
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png">
<style>body {{ margin: 0; padding: 0; }}</style>
</head>
<body>
<redoc spec-url="{openapi_url}"></redoc>
<script src="{assets}/redoc.standalone.js"></script>
</body>
</html>
"""


def _page(html: str) -> HTMLResponse:
    return HTMLResponse(html, headers={"Content-Security-Policy": DOCS_CSP, "Cache-Control": "no-cache",
                                       "X-Content-Type-Options": "nosniff"})


def install_docs(app: FastAPI, *, openapi_url: str = "/openapi.json") -> None:
    """Add ``/docs``, ``/redoc`` and the static assets (none of them in the API description)."""
    title = app.title

    @app.get("/docs", include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return _page(_SWAGGER_PAGE.format(title=title, assets=ASSETS_PATH))

    @app.get("/redoc", include_in_schema=False)
    def redoc() -> HTMLResponse:
        return _page(_REDOC_PAGE.format(title=title, assets=ASSETS_PATH, openapi_url=openapi_url))

    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="docs-assets")
