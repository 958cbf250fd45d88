"""Who sees whose data: the one rule every scoped route applies (docs/api.md, "Tenancy").

A member sees its own rows. A route names the roles that read across members for its resource
(the operator and auditors for reconciliation, say); a caller holding one of them reads every
member's rows, or one member's with ``?owner=``. Anyone else asking for another member's rows
gets 403; another member's row asked for by id is 404, exactly like a missing one, so ids reveal
nothing. Writes always act as the caller: no role writes into another member's data.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Query

from ledger_api.deps import Principal
from settlement.core.errors import ForbiddenError

__all__ = ["OwnerQuery", "read_scope"]

OwnerQuery = Annotated[str | None, Query(
    min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
    description="only this member's (for the roles that read across members; others may name only themselves)")]


def read_scope(who: Principal, across: frozenset[str], owner: str | None = None) -> str | None:
    """The owner to filter on: ``None`` (every member's) for a caller holding one of the roles in
    ``across`` without ``owner``, ``owner`` for such a caller with it, the caller's own member
    otherwise (ForbiddenError when it asked for another member's)."""
    if who.has_any(across):
        return owner
    if owner is not None and owner != who.member_id:
        raise ForbiddenError(f"only the roles {', '.join(sorted(across))} read other members' data",
                             required_roles=sorted(across))
    return who.member_id
