"""Gathers the routers. Adding a resource is one line: ``api_router.include_router(x.router)``."""

from __future__ import annotations

from fastapi import APIRouter

from ledger_api.routes import apikeys, health, members, metrics

api_router = APIRouter()
api_router.include_router(health.router)
api_router.include_router(metrics.router)
api_router.include_router(members.router)
api_router.include_router(apikeys.router)
api_router.include_router(__import__("ledger_api.routes.settlements", fromlist=["router"]).router)
api_router.include_router(__import__("ledger_api.routes.anchors", fromlist=["router"]).router)
api_router.include_router(__import__("ledger_api.routes.receivables", fromlist=["router"]).router)
[api_router.include_router(__import__(f"ledger_api.routes.{m}", fromlist=["router"]).router) for m in ("callbacks", "reconciliation")]

__all__ = ["api_router"]
