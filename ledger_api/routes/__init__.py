"""Gathers the routers. Adding a resource: import its module here and add it to the tuple."""

from __future__ import annotations

from fastapi import APIRouter

from ledger_api.routes import (
    anchors,
    apikeys,
    callbacks,
    events,
    governance,
    health,
    intents,
    keys,
    members,
    metrics,
    receivables,
    reconciliation,
    settlements,
    webhooks,
)

api_router = APIRouter()
for module in (health, metrics, members, keys, apikeys, governance, intents, settlements, callbacks, reconciliation,
               receivables, anchors, events, webhooks):
    api_router.include_router(module.router)

__all__ = ["api_router"]
