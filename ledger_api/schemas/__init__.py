"""Request and response bodies, one module per resource (mirroring ``ledger_api.routes``), on
the shared bases of :mod:`.common`: a family per entity, every string bounded, never an ORM row."""

from ledger_api.schemas.common import Currency, Hex32, In, MemberIdField, Money, Out, Problem, money

__all__ = ["Currency", "Hex32", "In", "MemberIdField", "Money", "Out", "Problem", "money"]
