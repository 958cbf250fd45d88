"""Console pages: receivables."""

from __future__ import annotations

from fastapi import APIRouter

from ledger_api.console.web import BASE, ConsoleRoute

router = APIRouter(prefix=BASE, route_class=ConsoleRoute, include_in_schema=False)
