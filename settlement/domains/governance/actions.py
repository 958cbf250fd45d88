"""What governance may decide, and the calls each decision makes.

Only these actions can be proposed through the service (a proposal for anything else, such as
granting the registry's admin role, is refused before it exists; governors can still propose any
call with their own tools, and the follower mirrors it as ``external``):

| action | Safe | call (through the timelock unless noted) |
|---|---|---|
| ``onboard`` | governors | ``registry.onboardMember(id, country, [account], roles)`` |
| ``suspend`` | guardians, no delay | ``registry.suspendMember(id)`` (called by the guardian Safe itself) |
| ``reactivate`` | governors | ``registry.reactivateMember(id)`` |
| ``grant_role`` / ``revoke_role`` | governors | ``registry.grantMemberRole`` / ``revokeMemberRole(id, role)`` |
| ``set_country`` | governors | ``registry.setCountry(id, country)`` |
| ``add_account`` / ``remove_account`` | governors | ``registry.addAccount`` / ``removeAccount(id, account)`` (a member that lost its keys) |
| ``cancel`` | governors, no delay | ``timelock.cancel(opId)`` of a scheduled proposal |
| ``reject`` | the proposal's Safe | an empty Safe transaction at a blocked proposal's nonce (unblocks later ones) |
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from settlement.chain.contracts import catalogue
from settlement.chain.describe import decode_call
from settlement.chain.deploy import GOVERNANCE_SAFE, GUARDIAN_SAFE, REGISTRY, TIMELOCK
from settlement.chain.governance import ZERO_BYTES32, operation_id
from settlement.core.errors import ValidationError

__all__ = ["ACTIONS", "SLOW_ACTIONS", "Action", "Plan", "registry_payload", "timelock_schedule", "decode_safe_call",
           "GOVERNANCE", "GUARDIAN", "SAFE_NAMES", "DESCRIPTION_BYTES_MAX"]

GOVERNANCE = "governance"
GUARDIAN = "guardian"
SAFE_NAMES = {GOVERNANCE: GOVERNANCE_SAFE, GUARDIAN: GUARDIAN_SAFE}
DESCRIPTION_BYTES_MAX = 1024  # GovernanceProposals.DESCRIPTION_BYTES_MAX
SLOW_ACTIONS = ("onboard", "reactivate", "grant_role", "revoke_role", "set_country", "add_account", "remove_account")
ACTIONS = (*SLOW_ACTIONS, "suspend", "cancel", "reject")
_REGISTRY_FUNCTIONS = {"onboard": "onboardMember", "suspend": "suspendMember", "reactivate": "reactivateMember",
                       "grant_role": "grantMemberRole", "revoke_role": "revokeMemberRole", "set_country": "setCountry",
                       "add_account": "addAccount", "remove_account": "removeAccount"}
_FUNCTION_ACTIONS = {v: k for k, v in _REGISTRY_FUNCTIONS.items()}


@dataclass(frozen=True)
class Action:
    """A decision to propose. ``member_id`` names the member it is about (all but cancel/reject);
    the other fields are the action's parameters."""

    kind: str
    member_id: str | None = None
    name: str | None = None
    country: str | None = None
    roles: tuple[str, ...] = ()
    role: str | None = None
    account: str | None = None
    proposal_id: str | None = None  # cancel / reject: the proposal concerned

    def __post_init__(self) -> None:
        if self.kind not in ACTIONS:
            raise ValidationError(f"unknown governance action {self.kind[:32]!r}; one of: {', '.join(ACTIONS)}",
                                  field="action")


@dataclass
class Plan:
    """The Safe transaction a proposal stands for."""

    safe: str  # governance | guardian
    to: str
    data: bytes
    calls: list[list[Any]] = field(default_factory=list)  # [[target, value, 0xdata]] of a timelock batch
    salt: str | None = None
    op_id: str | None = None
    delay_s: int | None = None


def registry_payload(function: str, args: list) -> bytes:
    return catalogue().function(REGISTRY, function).encode(args)


def timelock_schedule(addresses: dict[str, str], payloads: list[bytes], salt: str, delay_s: int) -> Plan:
    """``timelock.scheduleBatch`` of registry calls, proposed to the governors' Safe."""
    targets = [addresses[REGISTRY]] * len(payloads)
    values = [0] * len(payloads)
    data = catalogue().function(TIMELOCK, "scheduleBatch").encode(
        [targets, values, payloads, ZERO_BYTES32, salt, delay_s])
    return Plan(safe=GOVERNANCE, to=addresses[TIMELOCK], data=data,
                calls=[[t, v, "0x" + p.hex()] for t, v, p in zip(targets, values, payloads)], salt=salt,
                op_id=operation_id(targets, values, payloads, salt), delay_s=delay_s)


def registry_function(kind: str) -> str:
    return _REGISTRY_FUNCTIONS[kind]


def decode_safe_call(to: str, data: bytes, timelock: str | None = None) -> dict[str, Any]:
    """What a Safe transaction does, for a proposal made around the API: its action, the member id
    (bytes32) it is about, the timelock batch it schedules and its op id."""
    out: dict[str, Any] = {"action": "external", "member_onchain_id": None, "calls": [], "salt": None,
                           "op_id": None, "delay_s": None, "safe": GOVERNANCE}
    if not data:
        out["action"] = "reject"
        return out
    call = decode_call(data)
    if call is None:
        return out
    if call["function"] == "scheduleBatch" or call["function"] == "schedule":
        args = {name: value for name, _t, value, _c in call["args"]}
        if call["function"] == "schedule":
            targets, values, payloads = [args["target"]], [args["value"]], [args["data"]]
        else:
            targets, values, payloads = list(args["targets"]), list(args["values"]), list(args["payloads"])
        salt = "0x" + bytes(args["salt"]).hex()
        out.update(calls=[[t, int(v), "0x" + bytes(p).hex()] for t, v, p in zip(targets, values, payloads)],
                   salt=salt, delay_s=int(args["delay"]),
                   op_id=operation_id(targets, values, [bytes(p) for p in payloads], salt,
                                      "0x" + bytes(args["predecessor"]).hex()))
        inner = [decode_call(bytes(p)) for p in payloads]
        if len(inner) == 1 and inner[0] is not None and inner[0]["function"] in _FUNCTION_ACTIONS:
            out["action"] = _FUNCTION_ACTIONS[inner[0]["function"]]
            out["member_onchain_id"] = "0x" + bytes(inner[0]["args"][0][2]).hex()
        return out
    if call["function"] == "cancel":
        out["action"] = "cancel"
        return out
    if call["function"] in _FUNCTION_ACTIONS:
        out["action"] = _FUNCTION_ACTIONS[call["function"]]
        out["member_onchain_id"] = "0x" + bytes(call["args"][0][2]).hex()
        if call["function"] == "suspendMember":
            out["safe"] = GUARDIAN
    return out
