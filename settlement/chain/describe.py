"""What a signature commits to, in human terms: calldata and EIP-712 typed data decoded with the
shipped ABIs (function and argument names), amounts with their currency's exponent, day numbers as
dates, unix times as UTC timestamps, role hashes as role names, nested calls (a timelock batch, a
forwarded request) decoded in turn.

Used by ``ledger sign`` (which trusts nothing but the typed data in the file) and by the API's
summaries of intents and proposals. Pure: no node, no store.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from typing import Any

from eth_abi import decode as abi_decode

from settlement.chain.contracts import _type_str, catalogue, checksum_address
from settlement.chain.signing import keccak256
from settlement.core.errors import UnsupportedCurrencyError
from settlement.core.money import exponent

__all__ = ["DecodedCall", "decode_call", "describe_call", "describe_typed_data", "format_amount", "ROLE_LABELS"]

NESTING_MAX = 4  # calls inside calls (Safe -> timelock batch -> registry) decoded this deep
BYTES_SHOWN_MAX = 66  # hex characters of an undecodable bytes value shown before "..."
ROLE_LABELS: dict[str, str] = {
    "0x" + keccak256(n.encode()).hex(): n.lower()
    for n in ("OPERATOR", "FINANCE", "SUPPLIER", "BUYER", "FINANCIER", "AUDITOR", "SUSPENDER")
}
ROLE_LABELS["0x" + "00" * 32] = "DEFAULT_ADMIN_ROLE (the registry's admin)"
_EPOCH = date(1970, 1, 1)
_TIME_NAMES = ("deadline", "validuntil", "expiry", "expiresat", "timestamp", "notbefore", "notafter")
_TARGET_AMOUNTS = ("amountminor", "paidminor", "amountpaidminor", "refundminor", "valueminor")


class DecodedCall(dict):
    """``{"contract", "function", "args": [(name, abi type, value, components)]}``."""


@lru_cache(maxsize=1)
def _selectors() -> dict[bytes, tuple[str, dict]]:
    out: dict[bytes, tuple[str, dict]] = {}
    for contract, art in sorted(catalogue().artifacts.items(), key=lambda kv: (kv[0].startswith("I"), kv[0])):
        for item in art["abi"]:
            if item.get("type") == "function":
                sel = keccak256(f"{item['name']}({','.join(_type_str(p) for p in item['inputs'])})".encode())[:4]
                out.setdefault(sel, (contract, item))
    return out


def decode_call(data: bytes) -> DecodedCall | None:
    """The function and named arguments of ``data``, by its selector; None when unknown."""
    if len(data) < 4:
        return None
    hit = _selectors().get(data[:4])
    if hit is None:
        return None
    contract, item = hit
    try:
        values = abi_decode([_type_str(p) for p in item["inputs"]], data[4:])
    except Exception:
        return None
    return DecodedCall(contract=contract, function=item["name"],
                       args=[(p["name"], _type_str(p), v, p.get("components")) for p, v in zip(item["inputs"], values)])


def format_amount(minor: int, currency: str | None) -> str:
    if not currency:
        return f"{minor:,} (minor units, currency unknown)"
    try:
        exp = exponent(currency)
    except UnsupportedCurrencyError:
        return f"{minor:,} minor units of {currency}"
    if exp == 0:
        return f"{minor:,} {currency}"
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exp)
    return f"{sign}{whole:,}.{frac:0{exp}d} {currency}"


def _ascii(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode("ascii", errors="replace")


def _currencies(fields: list[tuple[str, str, Any, Any]]) -> dict[str, str]:
    out = {}
    for name, abi_type, value, _c in fields:
        if name.lower().endswith("currency") and isinstance(value, (bytes, str)):  # bytes3, or an EIP-712 string
            out[name.lower().removesuffix("currency")] = _ascii(value) if isinstance(value, bytes) else value
    return out


def _deep_currencies(fields: list[tuple[str, str, Any, Any]]) -> dict[str, str]:
    """Currencies named anywhere in the arguments (a refund's amount is in its settlement's target
    currency, which sits in a nested struct)."""
    out: dict[str, str] = {}
    for name, abi_type, value, components in fields:
        if abi_type.startswith("(") and abi_type.endswith(")") and components:
            inner = [(c["name"], _type_str(c), v, c.get("components")) for c, v in zip(components, value)]
            for k, v in _deep_currencies(inner).items():
                out.setdefault(k, v)
    for k, v in _currencies(fields).items():
        out[k] = v
    return out


def _currency_for(name: str, scopes: list[dict[str, str]]) -> str | None:
    key = name.lower()
    for prefix in ("source", "target", "face", "advance", "fee", ""):
        if key.startswith(prefix) and key.endswith("minor") and prefix:
            wanted = "source" if prefix == "fee" and key.startswith("fees") else prefix
            for scope in scopes:
                if wanted in scope:
                    return scope[wanted]
    if key in _TARGET_AMOUNTS or key.endswith("minor"):
        for scope in scopes:
            for candidate in ("target", "", "face", "source"):
                if candidate in scope:
                    return scope[candidate]
    return None


def _value(name: str, abi_type: str, value: Any, components: Any, scopes: list[dict[str, str]], depth: int,
           names: dict[str, str]) -> list[str]:
    key = name.lower()
    if abi_type.startswith("(") and abi_type.endswith(")"):
        fields = [(c["name"], _type_str(c), v, c.get("components")) for c, v in zip(components, value)]
        inner_scopes = [_currencies(fields), *scopes]
        lines = [f"{name}:"]
        for f in fields:
            lines += ["  " + ln for ln in _value(*f, inner_scopes, depth, names)]
        return lines
    if abi_type.endswith("]"):
        inner = abi_type[: abi_type.rindex("[")]
        lines = [f"{name}: {len(value)} item(s)"]
        for i, v in enumerate(value):
            lines += ["  " + ln for ln in _value(f"[{i}]", inner, v, components, scopes, depth, names)]
        return lines
    if abi_type == "address":
        address = checksum_address(value)
        label = names.get(address.lower())
        return [f"{name}: {address}" + (f" ({label})" if label else "")]
    if abi_type.startswith("uint") or abi_type.startswith("int"):
        if key.endswith("minor"):
            return [f"{name}: {format_amount(int(value), _currency_for(name, scopes))}"]
        if (key.endswith("date") or key.endswith("day")) and abi_type in ("uint32", "uint64", "uint16"):
            return [f"{name}: {(_EPOCH + timedelta(days=int(value))).isoformat()}"]
        if any(t in key for t in _TIME_NAMES) or key.endswith("at") and abi_type in ("uint48", "uint64"):
            stamp = datetime.fromtimestamp(int(value), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            return [f"{name}: {stamp} ({int(value)})"]
        if key in ("delay", "mindelay"):
            return [f"{name}: {int(value)} s"]
        return [f"{name}: {int(value):,}" if int(value) >= 10_000 else f"{name}: {int(value)}"]
    if abi_type == "bytes32":
        text = "0x" + bytes(value).hex()
        if text in ROLE_LABELS:
            return [f"{name}: {ROLE_LABELS[text]} ({text[:10]}...)"]
        label = names.get(text)
        return [f"{name}: {text}" + (f" ({label})" if label else "")]
    if abi_type.startswith("bytes") and abi_type != "bytes":
        raw = bytes(value)
        if raw.rstrip(b"\0") and all(32 <= b < 127 for b in raw.rstrip(b"\0")):
            return [f"{name}: {_ascii(raw)!r} (0x{raw.hex()})"]
        return [f"{name}: 0x{raw.hex()}"]
    if abi_type == "bytes":
        raw = bytes(value)
        nested = decode_call(raw) if depth < NESTING_MAX else None
        if nested is not None:
            return [f"{name}: a call of"] + ["  " + ln for ln in _call_lines(nested, depth + 1, names)]
        shown = "0x" + raw.hex()
        return [f"{name}: {shown[:BYTES_SHOWN_MAX]}{'...' if len(shown) > BYTES_SHOWN_MAX else ''} ({len(raw)} bytes)"]
    if abi_type == "bool":
        return [f"{name}: {'yes' if value else 'no'}"]
    return [f"{name}: {value!r}"]


def _call_lines(call: DecodedCall, depth: int, names: dict[str, str]) -> list[str]:
    lines = [f"{call['contract']}.{call['function']}("]
    scopes = [_deep_currencies(call["args"])]
    for arg in call["args"]:
        lines += ["  " + ln for ln in _value(*arg, scopes, depth, names)]
    return lines + [")"]


def describe_call(data: bytes, names: dict[str, str] | None = None) -> list[str]:
    """Lines describing the call ``data`` (``names``: lower-case address or bytes32 -> label)."""
    call = decode_call(data)
    if call is None:
        return [f"an unknown call (selector 0x{data[:4].hex()}, {len(data)} bytes)"]
    return _call_lines(call, 0, names or {})


def describe_typed_data(typed: dict[str, Any], names: dict[str, str] | None = None) -> list[str]:
    """Lines describing an EIP-712 message: which contract (domain) and what it authorises."""
    names = {k.lower(): v for k, v in (names or {}).items()}
    domain = typed.get("domain", {})
    primary = typed.get("primaryType", "?")
    message = typed.get("message", {})
    fields = typed.get("types", {}).get(primary, [])
    where = domain.get("name") or "a Safe"
    lines = [f"EIP-712 {primary} for {where} at {domain.get('verifyingContract')} (chain {domain.get('chainId')})"]
    as_abi = []
    for f in fields:
        raw = message.get(f["name"])
        t = f["type"]
        if t.startswith("bytes") and isinstance(raw, str):
            raw = bytes.fromhex(raw.removeprefix("0x"))
        elif (t.startswith("uint") or t.startswith("int")) and isinstance(raw, str):
            raw = int(raw, 0)
        as_abi.append((f["name"], t, raw, None))
    scopes = [_currencies(as_abi)]
    for arg in as_abi:
        lines += ["  " + ln for ln in _value(*arg, scopes, 0, names)]
    return lines
