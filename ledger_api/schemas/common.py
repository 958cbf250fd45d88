"""What every request and response body shares: the two bases, money, problem details.

- :class:`In`: request bodies refuse unknown fields; strings are taken as sent (a schema that
  wants surrounding whitespace stripped says so in its own ``model_config``);
- :class:`Out`: response bodies, never an ORM row, every string bounded; every timestamp is
  RFC 3339 UTC with ``Z`` (the store keeps naive UTC datetimes: they are marked UTC here, aware
  ones converted), in lists and dicts too;
- :class:`Money`: ``{"value": <integer of minor units>, "currency": "<ISO 4217>"}``, the one money
  schema in and out (no floats: the value is a strict integer); :func:`money` builds one. The
  bounds of a value (positive, at most what the contract stores) are the domain's rules,
  reported as a problem with its own type (``invalid-amount``), not a schema error.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

__all__ = ["Currency", "FieldError", "Hex32", "In", "MemberIdField", "Money", "Out", "Page", "Problem", "money", "utc"]

Currency = Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", description="ISO 4217",
                                examples=["CNY"])]
MemberIdField = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
                      examples=["retailer"])
Hex32 = Field(min_length=66, max_length=66, pattern=r"^0x[0-9a-f]{64}$")


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


def utc(value: Any) -> Any:
    """``value`` with every datetime in it (also inside lists, tuples and dicts) made UTC-aware:
    naive ones are UTC already (the store's convention), aware ones are converted."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value.astimezone(timezone.utc)
    if isinstance(value, list):
        return [utc(v) for v in value]
    if isinstance(value, tuple):
        return tuple(utc(v) for v in value)
    if isinstance(value, dict):
        return {k: utc(v) for k, v in value.items()}
    return value


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="after")
    @classmethod
    def _timestamps_in_utc(cls, value: Any) -> Any:
        # JSON then shows "2026-12-04T14:19:07.933729Z", never a timestamp without its zone.
        return utc(value)


class Page(Out):
    """The one list envelope (docs/api.md): a subclass adds ``data``, its list; context fields
    (a page's ``count``, totals) may sit beside these keys, which never differ."""

    next_cursor: str | None = Field(default=None, max_length=200,
                                    description="pass as ?cursor= for the next page; null on the last page")
    has_more: bool = Field(description="another page follows (next_cursor is set)")


class Money(BaseModel):
    """Money: an integer of minor units and its ISO 4217 currency."""

    model_config = ConfigDict(extra="forbid")
    value: StrictInt = Field(description="integer of minor units (no floats)", examples=[100_000])
    currency: Currency


def money(value: int, currency: str) -> Money:
    return Money(value=value, currency=currency)


class FieldError(BaseModel):
    """One invalid field of a 422 ``validation-failed`` (the rejected value is never echoed)."""

    field: str = Field(max_length=500, examples=["body.source.currency"])
    message: str = Field(max_length=300)
    code: str = Field(max_length=100, examples=["string_pattern_mismatch"])


class Problem(Out):
    """RFC 9457 problem details (``application/problem+json``): clients match on ``type``
    (``urn:ledger:problem:<slug>``, stable); a type may add its own fields (``retry_after_s``,
    ``required_roles``, ``expected``...)."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(max_length=200, examples=["urn:ledger:problem:unauthenticated"])
    title: str = Field(max_length=200)
    status: int = Field(ge=400, le=599)
    detail: str = Field(max_length=2000)
    instance: str | None = Field(default=None, max_length=2000)
    request_id: str | None = Field(default=None, max_length=64,
                                   description="the X-Request-ID of the request, also in the service's logs")
    errors: list[FieldError] | None = Field(default=None, max_length=50,
                                            description="validation-failed and bad-request: each invalid field")
