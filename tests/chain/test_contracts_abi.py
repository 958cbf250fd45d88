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


# -- call encoding: the compiled fast encoder is byte-identical to eth_abi -----------------------------

from eth_abi import decode as abi_decode

from anchors.abi import tuple_components
from settlement.chain.contracts import _fast_encoder, coerce, jsonable

FUNCTIONS = [f for f in catalogue()._functions.values() if f.input_types]
FAST_FUNCTIONS = [f for f in FUNCTIONS if _fast_encoder(f.input_types) is not None]


def _json_value_for(abi_type: str, draw):  # type: ignore[no-untyped-def]
    """A value in the form the outbox stores arguments in (hex strings for bytes and addresses)."""
    if abi_type.endswith("[]"):
        return [_json_value_for(abi_type[:-2], draw) for _ in range(draw(st.integers(0, 4)))]
    if abi_type.startswith("("):
        return [_json_value_for(t, draw) for t in tuple_components(abi_type)]
    if abi_type == "string":
        return draw(st.text(max_size=40))
    if abi_type == "bytes":
        return "0x" + draw(st.binary(max_size=70)).hex()
    value = _value_for(abi_type, draw)
    return "0x" + value.hex() if isinstance(value, bytes) else value


def test_every_call_the_service_makes_takes_the_fast_path():
    names = {(f.name, f.input_types) for f in FAST_FUNCTIONS}
    assert any(name == "recordBatch" for name, _types in names)
    assert any(name == "anchor" for name, _types in names)
    assert len(FAST_FUNCTIONS) >= len(FUNCTIONS) * 3 // 4


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_fast_call_encoder_equals_eth_abi(data):
    fn = data.draw(st.sampled_from(FAST_FUNCTIONS))
    args = [_json_value_for(t, data.draw) for t in fn.input_types]
    fast = _fast_encoder(fn.input_types)(args)
    assert fast == abi_encode(list(fn.input_types), [coerce(t, a) for t, a in zip(fn.input_types, args)])
    assert fn.encode(args) == fn.selector + fast
    # and it decodes back to the same values
    assert [jsonable(v) for v in abi_decode(list(fn.input_types), fast)] == [jsonable(coerce(t, a))
                                                                           for t, a in zip(fn.input_types, args)]


@settings(max_examples=20, deadline=None)
@given(st.data())
def test_unusual_values_fall_back_to_eth_abi(data):
    fn = next(f for f in FAST_FUNCTIONS if f.input_types and f.input_types[0] == "bytes32")
    short = [b"\x01\x02"] + [_json_value_for(t, data.draw) for t in fn.input_types[1:]]
    # eth_abi pads a short bytesN; the fast encoder refuses it and the call still encodes the same way
    assert fn.encode(short) == fn.selector + abi_encode(list(fn.input_types),
                                                        [coerce(t, a) for t, a in zip(fn.input_types, short)])


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_fast_topic_decoder_equals_eth_abi(data):
    events = [ev for ev in catalogue()._events.values() if ev._topic_plan is not None
              and any(p.get("indexed") for p in ev.inputs)]
    ev = data.draw(st.sampled_from(events))
    indexed = [p for p in ev.inputs if p.get("indexed")]
    topics = [ev.topic0] + [abi_encode([_type_str(p)], [_value_for(_type_str(p), data.draw)]) for p in indexed]
    expected = {p["name"]: jsonable(abi_decode([_type_str(p)], t)[0]) for p, t in zip(indexed, topics[1:])}
    assert ev._indexed(topics) == expected


# -- anchors' encoder on its own, for the shapes calls need: static tuples and arrays of them -------

import json
from pathlib import Path

import pytest

from anchors.abi import TUPLE_DEPTH_MAX, compile_encoder, to_json_value
from anchors.abi import encode as anchors_encode
from anchors.errors import InvalidInputError

ELEMENTARY = ["uint8", "uint48", "uint256", "int8", "int256", "address", "bool", "bytes1", "bytes3", "bytes32"]


def _static_type(depth: int):  # type: ignore[no-untyped-def]
    """An elementary static type or a static tuple of them, nested up to ``depth`` levels."""
    elementary = st.sampled_from(ELEMENTARY)
    if depth == 0:
        return elementary
    tuples = st.lists(_static_type(depth - 1), min_size=1, max_size=4).map(lambda ts: f"({','.join(ts)})")
    return st.one_of(elementary, tuples)


call_types = st.lists(st.one_of(_static_type(3), _static_type(2).map(lambda t: t + "[]"),
                                st.sampled_from(["bytes", "string"])), min_size=1, max_size=5)


def _py_value_for(abi_type: str, draw):  # type: ignore[no-untyped-def]
    """A value in Python form, as eth_abi takes it (tuples as tuples, addresses as 20 bytes)."""
    if abi_type.endswith("[]"):
        return [_py_value_for(abi_type[:-2], draw) for _ in range(draw(st.integers(0, 3)))]
    if abi_type.startswith("("):
        return tuple(_py_value_for(t, draw) for t in tuple_components(abi_type))
    if abi_type == "address":
        return draw(st.binary(min_size=20, max_size=20))
    if abi_type == "string":
        return draw(st.text(max_size=40))
    if abi_type == "bytes":
        return draw(st.binary(max_size=70))
    return _value_for(abi_type, draw)


@settings(max_examples=300, deadline=None)
@given(types=call_types, data=st.data())
def test_anchors_encoder_equals_eth_abi_on_tuples_and_arrays_of_them(types, data):
    """anchors.abi encodes static tuples (nested), arrays of them and mixed argument lists exactly
    as eth_abi does, from Python values and from their JSON form."""
    values = [_py_value_for(t, data.draw) for t in types]
    expected = abi_encode(types, values)
    assert anchors_encode(types, values) == expected
    as_json = [to_json_value(t, v) for t, v in zip(types, values)]
    assert anchors_encode(types, as_json) == expected
    assert _fast_encoder(tuple(types))(as_json) == expected


def test_anchors_encoder_refuses_what_it_does_not_compile():
    """Dynamic tuples, arrays of dynamic types, empty and too deep tuples, and tuple values of the
    wrong arity are InvalidInputErrors (contracts then fall back to eth_abi)."""
    deep = "(" * (TUPLE_DEPTH_MAX + 1) + "uint8" + ")" * (TUPLE_DEPTH_MAX + 1)
    for types in (["(uint8,bytes)"], ["(uint8,string)[]"], ["bytes[]"], ["()"], [deep], ["(uint8)[2]"],
                  ["(uint8,uint8"]):
        with pytest.raises(InvalidInputError):
            compile_encoder(tuple(types))
    shallow = "(" * TUPLE_DEPTH_MAX + "uint8" + ")" * TUPLE_DEPTH_MAX
    nested_list, nested_tuple = 7, 7
    for _ in range(TUPLE_DEPTH_MAX):
        nested_list, nested_tuple = [nested_list], (nested_tuple,)
    assert anchors_encode([shallow], [nested_list]) == abi_encode([shallow], [nested_tuple])
    for values in ([[1]], [[1, 2, 3]], ["12"], [None]):
        with pytest.raises(InvalidInputError):
            anchors_encode(["(uint8,uint8)"], values)
    assert _fast_encoder(("(address,uint256,bytes)",)) is None


ARTIFACTS = Path(__file__).resolve().parents[2] / "settlement" / "chain" / "artifacts"


@pytest.mark.parametrize("contract", ["SettlementLedger", "ReceivableRegistry", "TraceAnchor",
                                      "ISettlementLedger", "IReceivableRegistry", "ITraceAnchor"])
def test_each_guarded_contract_abi_decodes_the_registry_refusals(contract):
    """A client holding only one contract's ABI can decode every refusal the registry guard gives."""
    abi = json.loads((ARTIFACTS / f"{contract}.json").read_text())["abi"]
    errors = {e["name"] for e in abi if e["type"] == "error"}
    assert {"RegistryNotAMember", "RegistryMemberNotActive", "RegistryMissingRole"} <= errors
