"""The pure rules: the contract's FX rule in Python, rate conversion, and multilateral netting."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, localcontext

import pytest
from hypothesis import given
from hypothesis import strategies as st

from settlement.core.errors import FxInconsistentError, FxRateNotRepresentableError
from settlement.domains.settlements.fx import FX_RATE_SCALE, check_target, convert, rate_from_decimal, rate_to_decimal
from settlement.domains.settlements.netting import Transfer, compute_nets


@given(source=st.integers(1, 2**96 - 1), rate=st.integers(1, 2**64 - 1))
def test_convert_is_round_half_up_of_source_times_rate(source: int, rate: int) -> None:
    """convert() equals Decimal ROUND_HALF_UP of source * rate / 1e12, the contract's rule."""
    with localcontext() as ctx:
        ctx.prec = 100
        exact = Decimal(source) * Decimal(rate) / Decimal(FX_RATE_SCALE)
        assert convert(source, rate) == int(exact.to_integral_value(ROUND_HALF_UP))


def test_rates_fold_the_currency_exponents_in() -> None:
    """150.25 JPY per USD is 1.5025e12 (USD cents to yen), as the interface documents."""
    assert rate_from_decimal("150.25", "USD", "JPY") == 1_502_500_000_000
    assert rate_from_decimal("7.8125", "USD", "CNY") == 7_812_500_000_000
    assert rate_from_decimal("0.308", "KWD", "USD") == 30_800_000_000  # fils (3) to cents (2)
    assert rate_from_decimal("1", "EUR", "EUR") == FX_RATE_SCALE
    for bad, src, dst in (("7.81250000000001", "USD", "CNY"), ("0.0000000000001", "USD", "CNY"),
                          ("2", "USD", "USD"), ("1e3", "USD", "CNY"), ("-1", "USD", "CNY"), ("0", "USD", "CNY"),
                          ("99999999999999999999", "USD", "CNY")):
        with pytest.raises(FxRateNotRepresentableError):
            rate_from_decimal(bad, src, dst)


@given(rate=st.integers(1, 2**64 - 1), pair=st.sampled_from([("USD", "JPY"), ("USD", "CNY"), ("KWD", "JPY"),
                                                             ("JPY", "KWD"), ("EUR", "USD")]))
def test_rate_text_round_trips(rate: int, pair: tuple[str, str]) -> None:
    text = rate_to_decimal(rate, *pair)
    assert rate_from_decimal(text, *pair) == rate


def test_target_is_checked_or_computed() -> None:
    assert check_target(1_001, 7_812_500_000_000, None) == 7_820
    assert check_target(1, FX_RATE_SCALE // 2, None) == 1  # half rounds up
    with pytest.raises(FxInconsistentError) as err:
        check_target(1_001, 7_812_500_000_000, 7_821)
    assert err.value.extra["expected_target_minor"] == 7_820


MEMBERS = [f"0x{i:064x}" for i in (3, 1, 0xFF, 2**255, 7)]


@given(st.lists(st.tuples(st.sampled_from(MEMBERS), st.sampled_from(MEMBERS), st.integers(1, 2**96 - 1))
                .filter(lambda t: t[0] != t[1]), min_size=1, max_size=200))
def test_netting_conserves_value(flows: list[tuple[str, str, int]]) -> None:
    """Nets sum to zero, each member's net is its gross in minus gross out, members ascend as
    bytes32, and netting never moves more than the gross."""
    result = compute_nets(Transfer(p, q, a) for p, q, a in flows)
    assert sum(result.nets) == 0
    for member, net in zip(result.members, result.nets):
        assert net == sum(a for _, q, a in flows if q == member) - sum(a for p, _, a in flows if p == member)
    assert list(result.members) == sorted(result.members, key=lambda m: bytes.fromhex(m[2:]))
    assert result.gross_count == len(flows) and result.gross_value_minor == sum(a for _, _, a in flows)
    assert 0 <= result.net_value_minor <= result.gross_value_minor
    assert result.net_value_minor == -sum(n for n in result.nets if n < 0)
    assert result.net_count <= len(result.members)
