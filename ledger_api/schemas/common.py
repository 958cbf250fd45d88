"""What every request and response body shares: the two bases, money, problem details.

- :class:`In`: request bodies refuse unknown fields; strings are taken as sent (a schema that
  wants surrounding whitespace stripped says so in its own ``model_config``);
- :class:`Out`: response bodies, never an ORM row, every string bounded;
- :class:`Money`: ``{"value": <integer of minor units>, "currency": "<ISO 4217>"}``, the one money
  schema in and out (no floats: the value is a strict integer); :func:`money` builds one. The
  bounds of a value (positive, at most what the contract stores) are the domain's rules,
  reported as a problem with its own type (``invalid-amount``), not a schema error.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictInt

__all__ = ["Currency", "Hex32", "In", "MemberIdField", "Money", "Out", "Problem", "money"]

Currency = Annotated[str, Field(min_length=3, max_length=3, pattern=r"^[A-Z]{3}$", description="ISO 4217",
                                examples=["CNY"])]
MemberIdField = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$",
                      examples=["retailer"])
Hex32 = Field(min_length=66, max_length=66, pattern=r"^0x[0-9a-f]{64}$")


class In(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Money(BaseModel):
    """Money: an integer of minor units and its ISO 4217 currency."""

    model_config = ConfigDict(extra="forbid")
    value: StrictInt = Field(description="integer of minor units (no floats)", examples=[100_000])
    currency: Currency


def money(value: int, currency: str) -> Money:
    return Money(value=value, currency=currency)


class Problem(Out):
    """RFC 9457 problem details (``application/problem+json``)."""

    model_config = ConfigDict(extra="allow")
    type: str = Field(max_length=200, examples=["urn:ledger:problem:unauthenticated"])
    title: str = Field(max_length=200)
    status: int
    detail: str = Field(max_length=2000)
    instance: str | None = Field(default=None, max_length=2000)
