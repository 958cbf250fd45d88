"""Receivable financing math and the canonical invoice hash. Pure: no I/O, no web3, no floats.

Discounting (the financier's charge for paying before maturity)::

    discount = face x rate x days / year_days        (exact rational)
    discount_minor = round(discount, rule)            (default: half-up to the minor unit)
    advance_minor = face_minor - discount_minor - fee_minor

- ``rate`` is a yearly rate in parts per million (``rate_ppm``; 5 % = 50_000), the unit the
  ReceivableRegistry contract records (``discountRatePpm``).
- ``days`` are actual calendar days from the financing date to the maturity (due) date; the year
  has 360 days (ACT/360) or 365 days (ACT/365 fixed), the ``dayCountBasis`` codes 1 and 2 on chain.
- Only the discount is rounded, once, with a named :class:`~settlement.core.money.Rounding` rule
  (default ``HALF_UP``: commercial rounding, half a minor unit goes up). The fee is a whole amount
  of minor units already; the advance follows by exact integer subtraction.

Invoice identity (the double-financing key the contract keeps live at most once): the buyer and
the invoice number's letters and digits. The contract takes the number in canonical form
(:func:`normalise_invoice_number` makes it from what a user typed), checks it and computes
``invoiceNumberHash = keccak256(letters and digits)`` itself; amounts, dates and the supplier
are not part of it. Dates on chain are UTC day numbers (:func:`day_number`).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from fractions import Fraction

from anchors.keccak import keccak256

from settlement.core.errors import InvalidAmountError, ValidationError
from settlement.core.money import AMOUNT_MINOR_MAX, Rounding, check_currency

__all__ = [
    "DayCountBasis",
    "FinancingTerms",
    "RATE_PPM_SCALE",
    "RATE_PPM_MAX",
    "FINANCING_DAYS_MAX",
    "INVOICE_NUMBER_LENGTH_MAX",
    "actual_days",
    "day_number",
    "exact_discount",
    "discount_minor",
    "financing_terms",
    "normalise_invoice_number",
    "invoice_number_compact",
    "invoice_number_hash",
    "receivable_id",
    "part_id",
]

RATE_PPM_SCALE = 1_000_000
# Bounds on inputs: a yearly rate of at most 100 %, at most ten years of discounting.
RATE_PPM_MAX = 1_000_000
FINANCING_DAYS_MAX = 3660
INVOICE_NUMBER_LENGTH_MAX = 64  # the contract's INVOICE_NUMBER_LENGTH_MAX

_EPOCH = date(1970, 1, 1)
_UINT32_MAX = 2**32 - 1
_WHITESPACE_RUN = re.compile(r"\s+")


class DayCountBasis(IntEnum):
    """Day-count conventions; the values are the contract's ``dayCountBasis`` codes."""

    ACT_360 = 1
    ACT_365 = 2

    @property
    def year_days(self) -> int:
        return 360 if self is DayCountBasis.ACT_360 else 365


@dataclass(frozen=True, slots=True)
class FinancingTerms:
    """The outcome of discounting ``face_minor`` from the financing date to maturity."""

    face_minor: int
    currency: str
    rate_ppm: int
    basis: DayCountBasis
    days: int
    discount_minor: int
    fee_minor: int
    advance_minor: int
    rounding: Rounding


def day_number(day: date) -> int:
    """Days since 1970-01-01: the contract's ``uint32`` date (``block.timestamp / 1 days``)."""
    n = (day - _EPOCH).days
    if not 0 <= n <= _UINT32_MAX:
        raise ValidationError(f"date {day} is outside the on-chain day range")
    return n


def actual_days(start: date, end: date) -> int:
    """Actual calendar days from ``start`` to ``end`` (``end`` not before ``start``)."""
    days = (end - start).days
    if days < 0:
        raise ValidationError(f"maturity {end} is before the financing date {start}")
    return days


def _check_int(name: str, value: int, low: int, high: int) -> None:
    if type(value) is not int:  # bool and float refused
        raise InvalidAmountError(f"{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise InvalidAmountError(f"{name} {value} is outside [{low}, {high}]")


def exact_discount(face_minor: int, rate_ppm: int, days: int, basis: DayCountBasis) -> Fraction:
    """The unrounded discount, in minor units: face x rate_ppm / 1e6 x days / year_days."""
    _check_int("face_minor", face_minor, 0, AMOUNT_MINOR_MAX)
    _check_int("rate_ppm", rate_ppm, 0, RATE_PPM_MAX)
    _check_int("days", days, 0, FINANCING_DAYS_MAX)
    basis = DayCountBasis(basis)
    return Fraction(face_minor * rate_ppm * days, RATE_PPM_SCALE * basis.year_days)


def _round(value: Fraction, rounding: Rounding) -> int:
    """Round a non-negative fraction to an integer with the named rule, in exact integer arithmetic."""
    n, d = value.numerator, value.denominator
    if n < 0:
        raise InvalidAmountError("a discount cannot be negative")
    quotient, remainder = divmod(n, d)
    if rounding is Rounding.DOWN or remainder == 0:
        return quotient
    if rounding is Rounding.UP:
        return quotient + 1
    if rounding is Rounding.HALF_UP:
        return quotient + (1 if 2 * remainder >= d else 0)
    if rounding is Rounding.HALF_EVEN:
        if 2 * remainder > d or (2 * remainder == d and quotient % 2 == 1):
            return quotient + 1
        return quotient
    raise ValidationError(f"unknown rounding rule {rounding!r}")


def discount_minor(
    face_minor: int,
    rate_ppm: int,
    days: int,
    basis: DayCountBasis,
    rounding: Rounding = Rounding.HALF_UP,
) -> int:
    """The discount in whole minor units, rounded once with ``rounding``.

    Raises InvalidAmountError for out-of-range inputs, or when the discount would exceed the face
    value (a rate x term above one year's worth of 100 %).
    """
    exact = exact_discount(face_minor, rate_ppm, days, basis)
    if exact > face_minor:
        raise InvalidAmountError(f"discount {float(exact):.2f} would exceed the face value {face_minor}")
    rounded = _round(exact, rounding)
    # Invariants, not stripped by `python -O`.
    if not (0 <= rounded <= face_minor and abs(rounded - exact) < 1):
        raise ArithmeticError(f"rounding broke an invariant: {rounded} vs {exact}")
    return rounded


def financing_terms(
    face_minor: int,
    currency: str,
    rate_ppm: int,
    financing_date: date,
    maturity_date: date,
    basis: DayCountBasis,
    fee_minor: int = 0,
    rounding: Rounding = Rounding.HALF_UP,
) -> FinancingTerms:
    """Discount, fee and advance for financing ``face_minor`` from ``financing_date`` to maturity.

    The advance must stay positive (the contract refuses an offer with a zero advance or with
    advance + fee above the part's amount).
    """
    check_currency(currency)
    _check_int("fee_minor", fee_minor, 0, AMOUNT_MINOR_MAX)
    basis = DayCountBasis(basis)
    days = actual_days(financing_date, maturity_date)
    discount = discount_minor(face_minor, rate_ppm, days, basis, rounding)
    advance = face_minor - discount - fee_minor
    if advance <= 0:
        raise InvalidAmountError(
            f"discount {discount} plus fee {fee_minor} leave no advance on a face value of {face_minor}"
        )
    return FinancingTerms(
        face_minor=face_minor,
        currency=currency,
        rate_ppm=rate_ppm,
        basis=basis,
        days=days,
        discount_minor=discount,
        fee_minor=fee_minor,
        advance_minor=advance,
        rounding=rounding,
    )


# ---- invoice identity --------------------------------------------------------------------------

# What users type between the parts of a number, mapped onto the contract's separators. A run of
# separators (with any whitespace around) becomes its first explicit separator, or "-" when it is
# only whitespace or underscores.
_SEPARATOR_CHARS = "-/._\\:,#"
_SEPARATOR_RUN = re.compile(r"[\s" + re.escape(_SEPARATOR_CHARS) + r"]+")
_MAPPED = {"_": "-", "\\": "/", ":": "-", ",": "-", "#": "-"}
_CANONICAL = re.compile(r"^[A-Z0-9]+(?:[-/.][A-Z0-9]+)*$")


def _separator_of(run: str) -> str:
    for c in run:
        if not c.isspace():
            return _MAPPED.get(c, c)
    return "-"


def normalise_invoice_number(invoice_number: str) -> str:
    """What a user typed, in the contract's canonical form, or ValidationError if it has none.

    NFKC (full-width digits and letters become ASCII), trimmed, upper-cased; every run of
    whitespace and separators (``- / . _ \\ : , #``) becomes one separator (its first explicit
    one, ``_ : , #`` read as ``-`` and ``\\`` as ``/``; whitespace alone is ``-``), none leading or
    trailing. The result must be 1 to ``INVOICE_NUMBER_LENGTH_MAX`` characters of ``A-Z 0-9 - / .``
    (the contract's rule). So ``" inv 2024/001 "`` is ``INV-2024/001``; its identity (letters and
    digits: :func:`invoice_number_hash`) is that of ``INV-2024-001`` and ``INV2024001``.
    """
    if not isinstance(invoice_number, str):
        raise ValidationError("invoice number must be a string")
    text = unicodedata.normalize("NFKC", invoice_number).upper()
    text = unicodedata.normalize("NFKC", text)  # upper-casing may leave non-NFKC characters (rare)
    text = _SEPARATOR_RUN.sub(lambda m: _separator_of(m.group(0)), text).strip("-/.")
    if not text:
        raise ValidationError("invoice number is empty")
    if len(text) > INVOICE_NUMBER_LENGTH_MAX:
        raise ValidationError(f"invoice number longer than {INVOICE_NUMBER_LENGTH_MAX} characters")
    if not _CANONICAL.match(text):
        bad = next((c for c in text if not (c.isascii() and (c.isalnum() or c in "-/."))), "?")
        raise ValidationError(f"invoice number may hold only letters A-Z, digits and separators - / . "
                              f"(found {bad!r})")
    return text


def invoice_number_compact(invoice_number: str) -> str:
    """The letters and digits of the canonical number, in order: the invoice's identity."""
    return "".join(c for c in normalise_invoice_number(invoice_number) if c.isalnum())


def invoice_number_hash(invoice_number: str) -> bytes:
    """The contract's ``invoiceNumberHashOf``: keccak256 of the number's letters and digits."""
    return keccak256(invoice_number_compact(invoice_number).encode("ascii"))


def _word_bytes32(name: str, value: bytes) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != 32:
        raise ValidationError(f"{name} must be 32 bytes")
    return bytes(value)


def _word_uint(value: int, bits: int) -> bytes:
    if type(value) is not int or not 0 <= value < 2**bits:
        raise ValidationError(f"{value!r} is not a uint{bits}")
    return value.to_bytes(32, "big")


def receivable_id(buyer_id: bytes, invoice_number_hash_: bytes, index: int) -> bytes:
    """The contract's id of the ``index``-th registration of an invoice identity:
    keccak256(abi.encode(buyerId, invoiceNumberHash, index))."""
    return keccak256(_word_bytes32("buyer_id", buyer_id) + _word_bytes32("invoice_number_hash", invoice_number_hash_)
                     + _word_uint(index, 256))


def part_id(receivable_id_: bytes, index: int) -> bytes:
    """The contract's id of a receivable's ``index``-th part: keccak256(abi.encode(receivableId, index))."""
    return keccak256(_word_bytes32("receivable_id", receivable_id_) + _word_uint(index, 256))
