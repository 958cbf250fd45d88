"""The fast word-slicing event decoder agrees with eth_abi on every all-static event we emit."""

from eth_abi import encode as abi_encode
from hypothesis import given, settings
from hypothesis import strategies as st

from settlement.chain.contracts import _type_str, catalogue


def _value_for(abi_type: str, draw):  # type: ignore[no-untyped-def]
    if abi_type == "address":
        return "0x" + draw(st.binary(min_size=20, max_size=20)).hex()
    if abi_type == "bool":
        return draw(st.booleans())
    if abi_type.startswith("uint"):
        return draw(st.integers(0, 2 ** int(abi_type[4:] or 256) - 1))
    if abi_type.startswith("int"):
        bits = int(abi_type[3:] or 256)
        return draw(st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
    if abi_type.startswith("bytes"):
        n = int(abi_type[5:])
        return draw(st.binary(min_size=n, max_size=n))
    raise AssertionError(abi_type)


def _values(params, draw):  # type: ignore[no-untyped-def]
    out = []
    for p in params:
        if p["type"] == "tuple":
            out.append(tuple(_values(p["components"], draw)))
        else:
            out.append(_value_for(p["type"], draw))
    return out


STATIC_EVENTS = [ev for ev in catalogue()._events.values() if ev._plan is not None]


def test_most_events_take_the_fast_path():
    assert any(ev.name == "SettlementRecorded" for ev in STATIC_EVENTS)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_fast_decoder_equals_eth_abi(data):
    ev = data.draw(st.sampled_from(STATIC_EVENTS))
    plain = [p for p in ev.inputs if not p.get("indexed")]
    blob = abi_encode([_type_str(p) for p in plain], _values(plain, data.draw))
    topics = [ev.topic0] + [bytes(32)] * len([p for p in ev.inputs if p.get("indexed")])
    assert ev.decode(topics, blob) == ev.decode_slow(topics, blob)
