"""Money: an integer of minor units plus an ISO 4217 currency code. No floats, ever.

Decimal strings (as payment providers send them, ``"88.80"``) are converted exactly: a string with
more fractional digits than the currency's exponent is an error, never silently rounded. Where
rounding is needed (FX conversion, interest), the caller names the rule (:class:`Rounding`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal, localcontext
from enum import Enum

from settlement.core.errors import InvalidAmountError, UnsupportedCurrencyError

# ISO 4217 currencies the ledger accepts, with their minor-unit exponents. Deliberately a closed
# list: a code absent here is refused rather than guessed.
CURRENCY_EXPONENTS: dict[str, int] = {
    "AED": 2, "AUD": 2, "BHD": 3, "BRL": 2, "CAD": 2, "CHF": 2, "CLP": 0, "CNY": 2, "CZK": 2,
    "DKK": 2, "EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2, "ISK": 0,
    "JOD": 3, "JPY": 0, "KRW": 0, "KWD": 3, "LKR": 2, "MOP": 2, "MXN": 2, "MYR": 2, "NOK": 2,
    "NZD": 2, "OMR": 3, "PHP": 2, "PKR": 2, "PLN": 2, "QAR": 2, "RUB": 2, "SAR": 2, "SEK": 2,
    "SGD": 2, "THB": 2, "TND": 3, "TRY": 2, "TWD": 2, "USD": 2, "VND": 0, "ZAR": 2,
}

# Amounts must fit the contracts' uint128 fields, with room for sums.
AMOUNT_MINOR_MAX = 2**96 - 1

_DECIMAL_RE = re.compile(r"^(0|[1-9][0-9]{0,35})(?:\.([0-9]{1,18}))?$")


class Rounding(str, Enum):
    """Named rounding rules; the value is the :mod:`decimal` mode it maps to."""

    HALF_UP = "half_up"  # commercial rounding: 0.5 away from zero
    HALF_EVEN = "half_even"  # banker's rounding
    DOWN = "down"  # truncate toward zero
    UP = "up"  # away from zero

    @property
    def decimal_mode(self) -> str:
        return {
            Rounding.HALF_UP: ROUND_HALF_UP,
            Rounding.HALF_EVEN: ROUND_HALF_EVEN,
            Rounding.DOWN: ROUND_DOWN,
            Rounding.UP: ROUND_UP,
        }[self]


def exponent(currency: str) -> int:
    """The minor-unit exponent of an ISO 4217 code; raises UnsupportedCurrencyError."""
    try:
        return CURRENCY_EXPONENTS[currency]
    except (KeyError, TypeError):
        raise UnsupportedCurrencyError(f"unsupported currency {currency!r}", currency=currency) from None


def check_currency(currency: str) -> str:
    exponent(currency)
    return currency


@dataclass(frozen=True, slots=True, order=False)
class Money:
    """An amount in minor units (``value``) of ``currency``. Non-negative unless ``signed``."""

    value: int
    currency: str

    def __post_init__(self) -> None:
        check_currency(self.currency)
        if type(self.value) is not int:  # bool and float are refused
            raise InvalidAmountError(f"amount must be an integer of minor units, got {self.value!r}")
        if abs(self.value) > AMOUNT_MINOR_MAX:
            raise InvalidAmountError(f"amount {self.value} exceeds {AMOUNT_MINOR_MAX}")

    @classmethod
    def of(cls, value: int, currency: str) -> "Money":
        return cls(value, currency)

    @classmethod
    def from_decimal_str(cls, text: str, currency: str) -> "Money":
        """Exact conversion of ``"88.80"`` to minor units; refuses excess precision or junk."""
        exp = exponent(currency)
        match = _DECIMAL_RE.match(text.strip()) if isinstance(text, str) else None
        if not match:
            raise InvalidAmountError(f"not a decimal amount: {text!r}")
        whole, frac = match.group(1), match.group(2) or ""
        if len(frac.rstrip("0")) > exp:
            raise InvalidAmountError(f"{text!r} has more decimals than {currency} allows ({exp})")
        frac = (frac + "0" * exp)[:exp]
        return cls(int(whole) * 10**exp + (int(frac) if frac else 0), currency)

    def to_decimal_str(self) -> str:
        """``Money(8880, 'CNY')`` -> ``"88.80"``; the sign is kept."""
        exp = exponent(self.currency)
        sign = "-" if self.value < 0 else ""
        digits = str(abs(self.value))
        if exp == 0:
            return sign + digits
        digits = digits.rjust(exp + 1, "0")
        return f"{sign}{digits[:-exp]}.{digits[-exp:]}"

    def to_decimal(self) -> Decimal:
        return Decimal(self.to_decimal_str())

    def _same(self, other: "Money") -> None:
        if not isinstance(other, Money) or other.currency != self.currency:
            raise InvalidAmountError(f"currency mismatch: {self.currency} vs {getattr(other, 'currency', other)}")

    def __add__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.value + other.value, self.currency)

    def __sub__(self, other: "Money") -> "Money":
        self._same(other)
        return Money(self.value - other.value, self.currency)

    def __neg__(self) -> "Money":
        return Money(-self.value, self.currency)

    def is_positive(self) -> bool:
        return self.value > 0

    def as_json(self) -> dict:
        return {"value": self.value, "currency": self.currency}

    def __str__(self) -> str:
        return f"{self.to_decimal_str()} {self.currency}"


def quantize_minor(amount_major: Decimal, currency: str, rounding: Rounding) -> int:
    """Round a major-unit Decimal to an integer of minor units under the named rule."""
    exp = exponent(currency)
    with localcontext() as ctx:
        ctx.prec = 80
        scaled = (amount_major * (Decimal(10) ** exp)).quantize(Decimal(1), rounding=rounding.decimal_mode)
    return int(scaled)
