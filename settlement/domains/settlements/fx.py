"""Currencies and the contract's FX rule, computed in Python exactly as SettlementLedger does.

Rates in the API are decimal strings of TARGET MAJOR units per SOURCE MAJOR unit (``"7.1234"``
CNY per USD). The contract's ``fxRate`` converts MINOR units into minor units at a fixed-point
scale of 1e12, so the currencies' exponents are folded in:

    fx_rate_scaled = rate_major * 10**(exp_target - exp_source) * 10**12

and must come out an integer in 1..2**64-1, else the rate is refused (never rounded). The target
amount is then ``(source_minor * fx_rate_scaled + 5 * 10**11) // 10**12`` (round half up).
"""

from __future__ import annotations

import re
from decimal import Decimal, localcontext

from settlement.core.errors import FxInconsistentError, FxRateNotRepresentableError, InvalidAmountError
from settlement.core.money import AMOUNT_MINOR_MAX, exponent

__all__ = ["FX_RATE_SCALE", "FX_RATE_SCALED_MAX", "AMOUNT_MINOR_MAX", "RATE_TEXT_LEN_MAX", "rate_from_decimal",
           "rate_to_decimal", "convert", "check_target", "check_amount"]

FX_RATE_SCALE = 10**12
FX_RATE_SCALED_MAX = 2**64 - 1  # the contract's uint64
RATE_TEXT_LEN_MAX = 40
_RATE_RE = re.compile(r"^(0|[1-9][0-9]{0,19})(?:\.([0-9]{1,30}))?$")
_DECIMAL_PRECISION = 120  # exact for every accepted rate text and exponent shift


def rate_from_decimal(text: str, source_currency: str, target_currency: str) -> int:
    """The contract's ``fxRate`` for a major-to-major decimal rate; refuses inexact conversions."""
    exp_source, exp_target = exponent(source_currency), exponent(target_currency)
    if not isinstance(text, str) or len(text) > RATE_TEXT_LEN_MAX or not _RATE_RE.match(text):
        raise FxRateNotRepresentableError("the FX rate must be a plain decimal string such as \"7.1234\"",
                                          field="fx_rate")
    with localcontext() as ctx:
        ctx.prec = _DECIMAL_PRECISION
        scaled = Decimal(text).scaleb(exp_target - exp_source + 12)
        if scaled != scaled.to_integral_value():
            raise FxRateNotRepresentableError(
                f"{text} {target_currency} per {source_currency} is not a whole number of 1e-12 "
                f"{target_currency} minor units per {source_currency} minor unit", field="fx_rate")
        rate = int(scaled)
    if not 1 <= rate <= FX_RATE_SCALED_MAX:
        raise FxRateNotRepresentableError(f"FX rate {text} is out of range", field="fx_rate")
    if source_currency == target_currency and rate != FX_RATE_SCALE:
        raise FxRateNotRepresentableError("the FX rate between a currency and itself must be 1", field="fx_rate")
    return rate


def rate_to_decimal(rate_scaled: int, source_currency: str, target_currency: str) -> str:
    """The inverse of :func:`rate_from_decimal`: the shortest exact decimal string."""
    shift = exponent(source_currency) - exponent(target_currency) - 12
    with localcontext() as ctx:
        ctx.prec = _DECIMAL_PRECISION
        value = Decimal(rate_scaled).scaleb(shift)
        text = format(value, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def convert(source_minor: int, rate_scaled: int) -> int:
    """The contract's rule: target = round_half_up(source * rate / 1e12), on integers only."""
    return (source_minor * rate_scaled + FX_RATE_SCALE // 2) // FX_RATE_SCALE


def check_amount(value: int, field: str, *, allow_zero: bool = False) -> int:
    if type(value) is not int:
        raise InvalidAmountError(f"{field} must be an integer of minor units", field=field)
    low = 0 if allow_zero else 1
    if not low <= value <= AMOUNT_MINOR_MAX:
        raise InvalidAmountError(f"{field} must be within {low}..{AMOUNT_MINOR_MAX} minor units", field=field,
                                 value=str(value))
    return value


def check_target(source_minor: int, rate_scaled: int, target_minor: int | None) -> int:
    """The target amount: computed when not given, else checked against the rule."""
    expected = convert(source_minor, rate_scaled)
    if target_minor is None:
        if expected == 0:
            raise InvalidAmountError("the source amount converts to zero at this rate", field="target")
        return check_amount(expected, "target")
    if target_minor != expected:
        raise FxInconsistentError(
            f"the target amount should be {expected} minor units: source {source_minor} at rate "
            f"{rate_scaled}/1e12, rounded half up", field="target", expected_target_minor=expected)
    return check_amount(target_minor, "target")
