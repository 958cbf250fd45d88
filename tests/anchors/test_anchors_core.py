"""Merkle core, events, proof documents and the offline verifier, without node or a chain."""

from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anchors import (
    LEAF_ENCODING_V1,
    AnchorRef,
    ProvenanceEvent,
    StandardMerkleTree,
    build_proof_document,
    canonical_json,
    process_multiproof,
    verify_document,
    verify_leaf as verify,
)
from anchors.abi import encode
from anchors.merkle import MultiProof
from anchors.errors import InvalidInputError as ValidationError

ENC = ["address", "uint256"]
H32 = st.binary(min_size=32, max_size=32)


def _event(i: int = 0, **over: object) -> ProvenanceEvent:
    fields = dict(event_id=f"evt-{i}", lot_id="LOT-9", product="gtin:9506000134352", event_type="received",
                  location="gln:9506000000001", member_id="0x" + "ab" * 32, occurred_at_s=1_700_000_000 + i,
                  document_hash="0x" + "cd" * 32, attributes={"qty": 3, "grade": "A"})
    fields.update(over)
    return ProvenanceEvent(**fields)  # type: ignore[arg-type]


values_st = st.lists(st.tuples(st.binary(min_size=20, max_size=20), st.integers(0, 2**256 - 1)),
                     min_size=1, max_size=40)


@settings(max_examples=60, deadline=None)
@given(values=values_st, data=st.data())
def test_any_change_breaks_verification(values: list, data: st.DataObject) -> None:
    """Changing the leaf value, any proof element or the root makes verification fail."""
    vals = [["0x" + a.hex(), str(n)] for a, n in values]
    tree = StandardMerkleTree.of(vals, ENC)
    i = data.draw(st.integers(0, len(vals) - 1))
    proof = tree.get_proof(i)
    assert verify(tree.root, ENC, vals[i], proof)
    other = data.draw(st.integers(0, 2**256 - 1).filter(lambda n: str(n) != vals[i][1]))
    assert not verify(tree.root, ENC, [vals[i][0], str(other)], proof)
    if proof:
        j = data.draw(st.integers(0, len(proof) - 1))
        new = data.draw(H32.filter(lambda b: "0x" + b.hex() != proof[j]))
        assert not verify(tree.root, ENC, vals[i], proof[:j] + ["0x" + new.hex()] + proof[j + 1:])
    root = data.draw(H32.filter(lambda b: "0x" + b.hex() != tree.root))
    assert not verify(root, ENC, vals[i], proof)


@settings(max_examples=40, deadline=None)
@given(values=values_st, data=st.data())
def test_multiproof_round_trip_and_tamper(values: list, data: st.DataObject) -> None:
    """Every subset's multiproof verifies; a changed helper node does not."""
    vals = [["0x" + a.hex(), str(n)] for a, n in values]
    tree = StandardMerkleTree.of(vals, ENC)
    idx = data.draw(st.lists(st.integers(0, len(vals) - 1), unique=True, max_size=len(vals)))
    mp = tree.get_multiproof(idx)
    assert tree.verify_multiproof(mp)
    if mp.proof:
        bad = MultiProof(mp.leaves, ["0x" + "00" * 32] + mp.proof[1:], mp.proof_flags)
        assert not tree.verify_multiproof(bad) or mp.proof[0] == "0x" + "00" * 32


def test_dump_load_round_trip_and_tamper_detected() -> None:
    """A dump loads back to the same tree; a changed value or node is rejected on load."""
    tree = StandardMerkleTree.of([[b"\x01" * 20, 5], [b"\x02" * 20, 2**200]], ENC)
    dump = tree.dump()
    assert dump["values"][1]["value"] == ["0x" + "02" * 20, str(2**200)]
    assert StandardMerkleTree.load(json.loads(json.dumps(dump))).dump() == dump
    bad = copy.deepcopy(dump)
    bad["values"][0]["value"][1] = "6"
    with pytest.raises(ValidationError):
        StandardMerkleTree.load(bad)
    bad = copy.deepcopy(dump)
    bad["tree"][0] = "0x" + "00" * 32
    with pytest.raises(ValidationError):
        StandardMerkleTree.load(bad)


def test_malformed_inputs_raise_validation_errors() -> None:
    """Bad types, values, bounds and multiproof shapes are ValidationErrors with a reason."""
    for types, vals in [(["uint8"], ["256"]), (["uint8"], [True]), (["bytes32"], ["0x12"]),
                        (["address"], [b"\x00" * 19]), (["float"], ["1"]), (["uint7"], ["1"])]:
        with pytest.raises(ValidationError):
            encode(types, vals)
    with pytest.raises(ValidationError):
        StandardMerkleTree.of([], ENC)
    with pytest.raises(ValidationError):
        verify("0x" + "00" * 32, ENC, ["0x" + "00" * 20, "1"], ["0x" + "00" * 32] * 33)
    with pytest.raises(ValidationError):
        process_multiproof(["0x" + "00" * 32], [], [True])


def test_abi_encoding_matches_eth_abi() -> None:
    """Our encoder gives eth_abi's bytes for static and dynamic types."""
    import eth_abi

    types = ["uint16", "int64", "bool", "bytes4", "string", "address", "bytes", "bytes32[]"]
    vals = [7, -5, True, b"\x01\x02\x03\x04", "héllo", "0x" + "11" * 20, b"\xff" * 33, [b"\x02" * 32] * 2]
    assert encode(types, vals) == eth_abi.encode(types, vals)


def test_event_leaf_v1_is_fixed() -> None:
    """Schema v1's leaf for a known event is a known hash (changing the encoding breaks this)."""
    event = _event()
    value = event.leaf_value()
    assert value[0] == "1" and value[4] == "3" and value[7] == "1700000000"
    assert event.product == "gtin:09506000134352"
    assert canonical_json({"b": 1, "a": [True, None, "x"]}) == b'{"a":[true,null,"x"],"b":1}'
    leaf = StandardMerkleTree.of([value], LEAF_ENCODING_V1).root
    assert leaf == StandardMerkleTree.of([_event().leaf_value()], LEAF_ENCODING_V1).root
    assert leaf != StandardMerkleTree.of([_event(attributes={"qty": 4, "grade": "A"}).leaf_value()],
                                         LEAF_ENCODING_V1).root


@pytest.mark.parametrize("over", [
    {"event_type": "teleported"}, {"product": "gtin:9506000134353"}, {"product": "ean:1"},
    {"occurred_at_s": 1.5}, {"occurred_at_s": 12}, {"attributes": {"price": 1.25}},
    {"member_id": "0x" + "00" * 32}, {"document_hash": "0x12"}, {"lot_id": " x"}, {"event_id": ""},
])
def test_event_validation(over: dict) -> None:
    """Invalid event fields are rejected with a ValidationError."""
    with pytest.raises(ValidationError):
        _event(**over)


def _doc() -> dict:
    events = [_event(i) for i in range(9)]
    tree = StandardMerkleTree.of([e.leaf_value() for e in events], LEAF_ENCODING_V1)
    anchor = AnchorRef(31337, "0x" + "aa" * 20, "0x" + "bb" * 32, 12, 1_700_000_100, 3)
    return build_proof_document(tree, 4, anchor=anchor, event=events[4], schema_version=1).to_json()


def test_offline_verifier_reports_steps() -> None:
    """A good document verifies with each step reported; tampering is reported, not raised."""
    doc = _doc()
    result = verify_document(json.dumps(doc))
    assert result.verified and [s.name for s in result.steps] == [
        "leaf-encoding", "event-to-value", "leaf-hash", "proof-to-root"]
    assert "VERIFIED" in result.report()
    for mutate in (lambda d: d["proof"].__setitem__(0, "0x" + "00" * 32),
                   lambda d: d.__setitem__("root", "0x" + "01" * 32),
                   lambda d: d["value"].__setitem__(7, "1700000001"),
                   lambda d: d["event"].__setitem__("lot_id", "LOT-10")):
        bad = copy.deepcopy(doc)
        mutate(bad)
        outcome = verify_document(bad)
        assert not outcome.verified and any(not s.ok for s in outcome.steps)


@pytest.mark.parametrize("mutate", [
    lambda d: d.pop("root"), lambda d: d.__setitem__("format", "v0"), lambda d: d.__setitem__("proof", "x"),
    lambda d: d["value"].pop(), lambda d: d.__setitem__("extra", 1), lambda d: d["anchor"].pop("tx_hash"),
    lambda d: d.__setitem__("leaf_hash", "0x12"),
])
def test_malformed_documents_raise(mutate: object) -> None:
    """Truncated or malformed documents raise ValidationError."""
    doc = _doc()
    mutate(doc)  # type: ignore[operator]
    with pytest.raises(ValidationError):
        verify_document(doc)
    with pytest.raises(ValidationError):
        verify_document(json.dumps(_doc())[:-40])
