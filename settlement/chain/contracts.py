"""The compiled contracts shipped in the package: ABI lookups, call encoding, event and custom
error decoding. Encoding uses the auditor package's compiled encoder (:func:`anchors.abi.compile_encoder`:
static types, static tuples, ``bytes``, ``string``, arrays of static types or tuples; nearly every
call the service makes) and ``eth_abi`` for the shapes it refuses (web3's per-call contract
machinery costs more than signing does)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Any

from anchors.abi import compile_encoder, tuple_components
from anchors.errors import InvalidInputError
from eth_abi import decode as abi_decode
from eth_abi import encode as abi_encode
from eth_utils import to_checksum_address

from settlement.chain.signing import keccak256
from settlement.core.errors import ValidationError


# Deployment names that are instances of another artifact: the two Safes are proxies of the Safe
# singleton, used through its ABI (outbox rows and the manifest name them by their role).
CONTRACT_ALIASES: dict[str, str] = {"GovernanceSafe": "ConsortiumSafe", "GuardianSafe": "ConsortiumSafe"}


def artifact_of(contract: str) -> str:
    """The artifact whose ABI ``contract`` (a deployment name) speaks."""
    return CONTRACT_ALIASES.get(contract, contract)


def _type_str(param: dict) -> str:
    t = param["type"]
    if t.startswith("tuple"):
        inner = ",".join(_type_str(c) for c in param["components"])
        return f"({inner}){t[5:]}"
    return t


def _signature(item: dict) -> str:
    return f"{item['name']}({','.join(_type_str(p) for p in item['inputs'])})"


@dataclass(frozen=True)
class FunctionAbi:
    name: str
    selector: bytes
    input_types: tuple[str, ...]
    input_names: tuple[str, ...]
    output_types: tuple[str, ...]
    mutability: str

    def encode(self, args: list | tuple) -> bytes:
        if len(args) != len(self.input_types):
            raise ValueError(f"{self.name} takes {len(self.input_types)} arguments, got {len(args)}")
        fast = _fast_encoder(self.input_types)
        if fast is not None:
            try:
                return self.selector + fast(args)
            except (ValidationError, TypeError, ValueError):
                pass  # eth_abi below decides, and words the error, for anything unusual
        return self.selector + abi_encode(list(self.input_types), [coerce(t, a) for t, a in zip(self.input_types, args)])

    def decode_output(self, data: bytes) -> tuple:
        return tuple(abi_decode(list(self.output_types), data))


@lru_cache(maxsize=4096)
def checksum_address(address: str) -> str:
    """EIP-55 form of an address, cached: a ledger sees the same few hundred addresses again and
    again, and each checksum costs a keccak256."""
    return to_checksum_address(address)


def _no_arguments(values: Sequence[Any]) -> bytes:
    return b""


@lru_cache(maxsize=512)
def _fast_encoder(types: tuple[str, ...]) -> Callable[[Sequence[Any]], bytes] | None:
    """``abi.encode`` of an argument list, compiled by :func:`anchors.abi.compile_encoder` (~10x
    faster than eth_abi on recordBatch's shape); None for shapes it refuses (dynamic tuples, fixed
    arrays, more than its ``TYPES_MAX`` arguments). Tested byte-for-byte against eth_abi."""
    if not types:
        return _no_arguments
    try:
        return compile_encoder(types)
    except InvalidInputError:
        return None


def _word_decoder(abi_type: str):  # type: ignore[no-untyped-def]
    """A decoder of one 32-byte word into the JSON-safe value, for static elementary types;
    None for anything else (dynamic types and arrays go through eth_abi)."""
    if abi_type.endswith("]"):
        return None
    if abi_type == "address":
        return lambda w: checksum_address("0x" + w[12:].hex())
    if abi_type == "bool":
        return lambda w: w[31] == 1
    if abi_type.startswith("uint"):
        return lambda w: int.from_bytes(w, "big")
    if abi_type.startswith("int"):
        return lambda w: int.from_bytes(w, "big", signed=True)
    if abi_type.startswith("bytes") and abi_type != "bytes":
        size = int(abi_type[5:])
        return lambda w: "0x" + w[:size].hex()
    return None


def _static_plan(params: list[dict]):  # type: ignore[no-untyped-def]
    """For a head made only of static words (elementary types and static tuples of them), a
    list of (name, decoder-or-subplan); None when some part is dynamic."""
    plan = []
    for p in params:
        t = p["type"]
        if t == "tuple":
            sub = _static_plan(p["components"])
            if sub is None:
                return None
            plan.append((p["name"], sub))
        else:
            dec = _word_decoder(t)
            if dec is None:
                return None
            plan.append((p["name"], dec))
    return plan


def _run_plan(plan, data: bytes, offset: int, as_list: bool):  # type: ignore[no-untyped-def]
    out_list, out_dict = [], {}
    for name, step in plan:
        if isinstance(step, list):
            value, offset = _run_plan(step, data, offset, True)
        else:
            if offset + 32 > len(data):
                raise ValueError("log data shorter than its ABI")
            value = step(data[offset:offset + 32])
            offset += 32
        if as_list:
            out_list.append(value)
        else:
            out_dict[name] = value
    return (out_list if as_list else out_dict), offset


@dataclass(frozen=True)
class EventAbi:
    contract: str
    name: str
    topic0: bytes
    inputs: tuple[dict, ...]

    def __post_init__(self) -> None:
        plain = [p for p in self.inputs if not p.get("indexed")]
        # Most of our events are all-static: decode them by slicing words, ~20x faster than
        # eth_abi (the follower decodes every event of every batch).
        object.__setattr__(self, "_plan", _static_plan(plain))
        indexed = [(p["name"], _word_decoder(_type_str(p))) for p in self.inputs if p.get("indexed")]
        object.__setattr__(self, "_topic_plan", indexed if all(d is not None for _n, d in indexed) else None)

    def _indexed(self, topics: list[bytes]) -> dict[str, Any]:
        plan = self._topic_plan  # type: ignore[attr-defined]
        if plan is not None and len(topics) == len(plan) + 1:
            return {name: dec(topic) for (name, dec), topic in zip(plan, topics[1:])}
        values: dict[str, Any] = {}
        for param, topic in zip([p for p in self.inputs if p.get("indexed")], topics[1:]):
            t = _type_str(param)
            if t in ("string", "bytes") or t.endswith("]") or t.startswith("("):
                values[param["name"]] = "0x" + topic.hex()  # hashed: only the topic is known
            else:
                values[param["name"]] = jsonable(abi_decode([t], topic)[0])
        return values

    def decode(self, topics: list[bytes], data: bytes) -> dict[str, Any]:
        plan = self._plan  # type: ignore[attr-defined]
        if plan is None:
            return self.decode_slow(topics, data)
        values = self._indexed(topics)
        values.update(_run_plan(plan, data, 0, False)[0])
        return values

    def decode_slow(self, topics: list[bytes], data: bytes) -> dict[str, Any]:
        """eth_abi's decoding: for events with dynamic parts, and as the reference in tests."""
        values = self._indexed(topics)
        plain = [p for p in self.inputs if not p.get("indexed")]
        for param, value in zip(plain, abi_decode([_type_str(p) for p in plain], data) if plain else ()):
            values[param["name"]] = jsonable(value)
        return values


@dataclass(frozen=True)
class ErrorAbi:
    name: str
    selector: bytes
    input_types: tuple[str, ...]
    input_names: tuple[str, ...]

    def decode(self, data: bytes) -> dict[str, Any]:
        values = abi_decode(list(self.input_types), data) if self.input_types else ()
        return {n: jsonable(v) for n, v in zip(self.input_names, values)}


def jsonable(value: Any) -> Any:
    """ABI values to JSON-safe ones: bytes -> 0x hex, addresses checksummed, tuples -> lists."""
    if isinstance(value, (bytes, bytearray)):
        return "0x" + bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, str) and len(value) == 42 and value.startswith("0x"):
        return to_checksum_address(value)
    return value


def coerce(abi_type: str, value: Any) -> Any:
    """JSON-safe arguments (as stored in the outbox) back to ABI values: hex -> bytes."""
    if abi_type.endswith("]"):
        inner = abi_type[: abi_type.rindex("[")]
        return [coerce(inner, v) for v in value]
    if abi_type.startswith("("):
        inner_types = tuple_components(abi_type)
        return tuple(coerce(t, v) for t, v in zip(inner_types, value))
    if abi_type.startswith("bytes") and isinstance(value, str):
        return bytes.fromhex(value.removeprefix("0x"))
    if abi_type == "address" and isinstance(value, str):
        return to_checksum_address(value)
    if (abi_type.startswith("uint") or abi_type.startswith("int")) and isinstance(value, str):
        return int(value, 0)
    return value


class ContractCatalogue:
    """Every artifact in settlement/chain/artifacts, indexed for encoding and decoding."""

    def __init__(self, artifacts: dict[str, dict]) -> None:
        self.artifacts = artifacts
        self._functions: dict[tuple[str, str], FunctionAbi] = {}
        self._events: dict[bytes, EventAbi] = {}
        self.errors: dict[bytes, ErrorAbi] = {}
        for cname, art in artifacts.items():
            for item in art["abi"]:
                kind = item.get("type")
                if kind == "function":
                    fn = FunctionAbi(
                        name=item["name"],
                        selector=keccak256(_signature(item).encode())[:4],
                        input_types=tuple(_type_str(p) for p in item["inputs"]),
                        input_names=tuple(p["name"] for p in item["inputs"]),
                        output_types=tuple(_type_str(p) for p in item.get("outputs", [])),
                        mutability=item.get("stateMutability", "nonpayable"),
                    )
                    # Overloads are not used by our contracts; the first definition wins.
                    self._functions.setdefault((cname, item["name"]), fn)
                elif kind == "event" and not item.get("anonymous"):
                    topic0 = keccak256(_signature(item).encode())
                    self._events.setdefault(topic0, EventAbi(cname, item["name"], topic0, tuple(item["inputs"])))
                elif kind == "error":
                    sel = keccak256(_signature(item).encode())[:4]
                    self.errors.setdefault(sel, ErrorAbi(item["name"], sel, tuple(_type_str(p) for p in item["inputs"]),
                                                         tuple(p["name"] for p in item["inputs"])))

    def function(self, contract: str, name: str) -> FunctionAbi:
        try:
            return self._functions[(artifact_of(contract), name)]
        except KeyError:
            raise KeyError(f"{contract} has no function {name}") from None

    def event_by_topic(self, topic0: bytes) -> EventAbi | None:
        return self._events.get(topic0)

    def event_topic(self, contract: str, name: str) -> bytes:
        for topic, ev in self._events.items():
            if ev.name == name and (ev.contract == contract or contract == "*"):
                return topic
        raise KeyError(f"no event {name} in {contract}")

    def decode_error(self, data: bytes) -> tuple[str, dict[str, Any]] | None:
        """A revert's data to (error name, args); None when it is not a known custom error."""
        if len(data) < 4:
            return None
        if data[:4] == bytes.fromhex("08c379a0"):  # Error(string)
            return "Error", {"message": abi_decode(["string"], data[4:])[0]}
        if data[:4] == bytes.fromhex("4e487b71"):  # Panic(uint256)
            return "Panic", {"code": abi_decode(["uint256"], data[4:])[0]}
        err = self.errors.get(data[:4])
        if err is None:
            return None
        try:
            return err.name, err.decode(data[4:])
        except Exception:
            return err.name, {}

    def bytecode(self, contract: str) -> bytes:
        art = self.artifacts[contract]
        if not art.get("deployable"):
            raise ValueError(f"{contract} is not deployable")
        return bytes.fromhex(art["bytecode"][2:])

    def deployed_code_hash(self, contract: str) -> str:
        """keccak256 of the runtime code the artifact expects (immutables zeroed: see deploy)."""
        return "0x" + keccak256(bytes.fromhex(self.artifacts[contract]["deployedBytecode"][2:])).hex()


@lru_cache(maxsize=1)
def catalogue() -> ContractCatalogue:
    pkg = resources.files("settlement.chain.artifacts")
    artifacts = {}
    for entry in pkg.iterdir():
        if entry.name.endswith(".json") and entry.name != "build-info.json":
            art = json.loads(entry.read_text())
            artifacts[art["contractName"]] = art
    return ContractCatalogue(artifacts)
