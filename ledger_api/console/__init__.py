"""The web console at ``/console``: server-rendered Jinja2 pages with htmx (vendored under
``ledger_api/static/console/``), Chinese and English, for finance teams, suppliers, buyers,
financiers and auditors (docs/console.md).

Pages call the API routes' own handlers with the API's own authorisation (:func:`.web.invoke`),
so the console shows and does exactly what the signed-in member's API key may.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from ledger_api.console import (
    audit,
    auth,
    callbacks,
    dashboard,
    finance,
    governance,
    receivables,
    reconciliation,
    webhooks,
)
from ledger_api.console.web import ASSETS_PATH

__all__ = ["ASSETS_DIR", "install_console"]

ASSETS_DIR = Path(__file__).resolve().parent.parent / "static" / "console"


def install_console(app: FastAPI, *, session_ttl_s: int) -> None:
    """Mount the console's pages at ``/console`` and its assets at ``/static/console`` (none of them
    in the API description)."""
    app.state.console_session_ttl_s = session_ttl_s
    for module in (auth, finance, reconciliation, callbacks, receivables, audit, governance, webhooks, dashboard):
        app.include_router(module.router)
    app.mount(ASSETS_PATH, StaticFiles(directory=ASSETS_DIR), name="console-assets")



