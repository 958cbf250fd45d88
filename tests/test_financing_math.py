"""Financing math and the canonical invoice hash: worked examples, then properties against exact
rational arithmetic (hypothesis)."""

from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.core.errors import InvalidAmountError, ValidationError
from settlement.domains.receivables.terms import (
    FINANCING_DAYS_MAX,
    RATE_PPM_MAX,
    DayCountBasis,
    actual_days,
    day_number,
    discount_minor,
    exact_discount,
    financing_terms,
    invoice_number_hash,
    keccak256,
    normalise_invoice_number,
    part_id,
    receivable_id,
)
from settlement.core.money import AMOUNT_MINOR_MAX, Rounding

FACE_1M_CNY = 100_000_000  # 1,000,000.00 CNY in fen
RATE_5_PCT = 50_000  # ppm


# ---- worked examples --------------------------------------------------------------------------


def test_worked_example_act_360() -> None:
    """1,000,000.00 CNY at 5 % p.a. for 90 days ACT/360: 1e6 x 0.05 x 90/360 = 12,500.00 exactly."""
    assert discount_minor(FACE_1M_CNY, RATE_5_PCT, 90, DayCountBasis.ACT_360) == 1_250_000


def test_worked_example_act_365_half_up() -> None:
    """Same for ACT/365: 12,328.767... rounds half-up to 12,328.77; down to 12,328.76."""
    assert exact_discount(FACE_1M_CNY, RATE_5_PCT, 90, DayCountBasis.ACT_365) == Fraction(450_000_000, 365)
    assert discount_minor(FACE_1M_CNY, RATE_5_PCT, 90, DayCountBasis.ACT_365) == 1_232_877
    assert discount_minor(FACE_1M_CNY, RATE_5_PCT, 90, DayCountBasis.ACT_365, Rounding.DOWN) == 1_232_876


def test_worked_example_terms_with_fee_and_actual_days() -> None:
    """2024-01-15 -> 2024-04-14 is 90 actual days (leap February); advance = face - discount - fee."""
    terms = financing_terms(
        FACE_1M_CNY, "CNY", RATE_5_PCT, date(2024, 1, 15), date(2024, 4, 14), DayCountBasis.ACT_365,
        fee_minor=50_000,
    )
    assert terms.days == 90
    assert terms.discount_minor == 1_232_877
    assert terms.advance_minor == 100_000_000 - 1_232_877 - 50_000 == 98_717_123


def test_half_rules_on_an_exact_half() -> None:
    """50 minor units at 1 % for 360 days ACT/360 is exactly 0.5: half-up gives 1, half-even 0,
    down 0, up 1."""
    args = (50, 10_000, 360, DayCountBasis.ACT_360)
    assert exact_discount(*args) == Fraction(1, 2)
    assert discount_minor(*args, Rounding.HALF_UP) == 1
    assert discount_minor(*args, Rounding.HALF_EVEN) == 0
    assert discount_minor(*args, Rounding.DOWN) == 0
    assert discount_minor(*args, Rounding.UP) == 1


def test_zero_days_or_rate_cost_nothing() -> None:
    assert discount_minor(FACE_1M_CNY, RATE_5_PCT, 0, DayCountBasis.ACT_360) == 0
    assert discount_minor(FACE_1M_CNY, 0, 90, DayCountBasis.ACT_365) == 0


def test_bad_inputs_are_reported() -> None:
    """Floats, out-of-range rates, a discount above face and no advance are refused, never rounded."""
    with pytest.raises(InvalidAmountError):
        discount_minor(1000.0, RATE_5_PCT, 90, DayCountBasis.ACT_360)  # type: ignore[arg-type]
    with pytest.raises(InvalidAmountError):
        discount_minor(1000, RATE_PPM_MAX + 1, 90, DayCountBasis.ACT_360)
    with pytest.raises(InvalidAmountError):
        discount_minor(1000, RATE_PPM_MAX, 361, DayCountBasis.ACT_360)  # > 100 % of face
    with pytest.raises(ValidationError):
        actual_days(date(2024, 2, 1), date(2024, 1, 31))
    with pytest.raises(InvalidAmountError):
        financing_terms(
            1000, "CNY", RATE_5_PCT, date(2024, 1, 1), date(2024, 2, 1), DayCountBasis.ACT_360, fee_minor=1000
        )
    with pytest.raises(ValidationError):
        financing_terms(1000, "XXX", RATE_5_PCT, date(2024, 1, 1), date(2024, 2, 1), DayCountBasis.ACT_360)
    with pytest.raises(ValueError):
        discount_minor(1000, RATE_5_PCT, 90, 3)  # type: ignore[arg-type]


# ---- properties -------------------------------------------------------------------------------

faces = st.integers(min_value=0, max_value=AMOUNT_MINOR_MAX)
rates = st.integers(min_value=0, max_value=RATE_PPM_MAX)
bases = st.sampled_from(list(DayCountBasis))
roundings = st.sampled_from(list(Rounding))


def _days_within_a_year(basis: DayCountBasis) -> st.SearchStrategy[int]:
    return st.integers(min_value=0, max_value=basis.year_days)


@settings(max_examples=300)
@given(face=faces, rate=rates, basis=bases, rounding=roundings, data=st.data())
def test_discount_is_bounded_and_within_one_unit_of_exact(
    face: int, rate: int, basis: DayCountBasis, rounding: Rounding, data: st.DataObject
) -> None:
    """Within a year's term: 0 <= discount <= face, and |discount - exact| < 1 minor unit
    (<= 1/2 for the half rules)."""
    days = data.draw(_days_within_a_year(basis))
    exact = Fraction(face * rate * days, 1_000_000 * basis.year_days)
    d = discount_minor(face, rate, days, basis, rounding)
    assert 0 <= d <= face
    assert abs(d - exact) < 1
    if rounding in (Rounding.HALF_UP, Rounding.HALF_EVEN):
        assert abs(d - exact) <= Fraction(1, 2)
    if rounding is Rounding.DOWN:
        assert d <= exact
    if rounding is Rounding.UP:
        assert d >= exact


@settings(max_examples=300)
@given(face=faces, rate=rates, basis=bases, rounding=roundings, data=st.data())
def test_discount_is_monotonic_in_days_and_rate(
    face: int, rate: int, basis: DayCountBasis, rounding: Rounding, data: st.DataObject
) -> None:
    """More days or a higher rate never lowers the discount (each rounding rule is monotonic)."""
    days = data.draw(st.integers(min_value=0, max_value=basis.year_days - 1))
    more_days = data.draw(st.integers(min_value=days, max_value=basis.year_days))
    higher_rate = data.draw(st.integers(min_value=rate, max_value=RATE_PPM_MAX))
    base = discount_minor(face, rate, days, basis, rounding)
    assert discount_minor(face, rate, more_days, basis, rounding) >= base
    assert discount_minor(face, higher_rate, days, basis, rounding) >= base


@settings(max_examples=200)
@given(face=faces, rate=rates, days=st.integers(min_value=0, max_value=FINANCING_DAYS_MAX), basis=bases)
def test_over_long_terms_either_bounded_or_refused(
    face: int, rate: int, days: int, basis: DayCountBasis
) -> None:
    """Beyond a year, a discount above the face value is refused rather than returned."""
    exact = Fraction(face * rate * days, 1_000_000 * basis.year_days)
    if exact > face:
        with pytest.raises(InvalidAmountError):
            discount_minor(face, rate, days, basis)
    else:
        assert 0 <= discount_minor(face, rate, days, basis) <= face


@settings(max_examples=200)
@given(
    face=st.integers(min_value=1, max_value=AMOUNT_MINOR_MAX),
    rate=rates,
    start=st.dates(min_value=date(2000, 1, 1), max_value=date(2090, 1, 1)),
    days=st.integers(min_value=0, max_value=360),
    fee=st.integers(min_value=0, max_value=10**6),
    basis=bases,
)
def test_advance_plus_discount_plus_fee_is_face(
    face: int, rate: int, start: date, days: int, fee: int, basis: DayCountBasis
) -> None:
    """The advance is exact: advance + discount + fee == face, and the advance is positive."""
    try:
        terms = financing_terms(face, "CNY", rate, start, start + timedelta(days=days), basis, fee)
    except InvalidAmountError:
        assert discount_minor(face, rate, days, basis) + fee >= face
        return
    assert terms.days == days
    assert terms.advance_minor + terms.discount_minor + terms.fee_minor == face
    assert terms.advance_minor > 0


# ---- canonical invoice hash -------------------------------------------------------------------

SUPPLIER = bytes.fromhex("11" * 32)
BUYER = bytes.fromhex("22" * 32)


def test_invoice_number_normalisation() -> None:
    """Width, case, outer and inner whitespace do not make a different invoice."""
    assert normalise_invoice_number("  inv\u00a0\u00a0２０２４-001\t") == "INV-2024-001"
    assert normalise_invoice_number("Inv 2024 / 001") == "INV-2024/001"
    assert normalise_invoice_number("a__b..c") == "A-B.C"
    for impossible in ("INV—1é", "发票123", "x;1"):
        with pytest.raises(ValidationError):
            normalise_invoice_number(impossible)
    with pytest.raises(ValidationError):
        normalise_invoice_number(" \t ")
    with pytest.raises(ValidationError):
        normalise_invoice_number("x" * 65)


def test_invoice_identity_is_the_letters_and_digits_of_the_canonical_number() -> None:
    """The number hash is keccak256 of the canonical number's letters and digits (the contract's
    invoiceNumberHashOf, checked against the chain in the contract tests): separators and how the
    user typed the number do not make another identity."""
    h = invoice_number_hash(" inv 2025/7 ")
    assert h == keccak256(b"INV20257")
    for same in ("INV-2025-7", "inv_2025.7", "ＩＮＶ２０２５／７", "INV2025 7"):
        assert invoice_number_hash(same) == h, same
    assert invoice_number_hash("INV 2025/8") != h
    assert normalise_invoice_number(" inv 2025/7 ") == "INV-2025/7"


def test_ids_match_the_contract_derivation() -> None:
    from eth_abi import encode

    inv = keccak256(b"invoice")
    rid = receivable_id(BUYER, inv, 2)
    assert rid == keccak256(encode(["bytes32", "bytes32", "uint256"], [BUYER, inv, 2]))
    assert part_id(rid, 3) == keccak256(encode(["bytes32", "uint256"], [rid, 3]))


def test_ids_reject_bad_fields() -> None:
    with pytest.raises(ValidationError):
        receivable_id(BUYER[:31], keccak256(b"x"), 0)
    with pytest.raises(ValidationError):
        receivable_id(BUYER, keccak256(b"x"), -1)
