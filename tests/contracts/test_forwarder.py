"""LedgerForwarder (OpenZeppelin ERC2771Forwarder) end to end on the registry and the guard.

A member signs an EIP-712 `ForwardRequest` with its own key; another account (the operator's
relayer) submits it; the guarded contract (ConsortiumGuardProbe, the smallest ConsortiumGuarded)
sees the member as `_msgSender()`. Forged, replayed, expired and untrusted-target requests are
refused on chain with the forwarder's custom errors. A request whose inner call reverts makes the
forwarder revert with `FailedCall()` only: the inner reason is recovered by simulating the inner
call from the forwarder's address (see `inner_revert`), which is what the service must do.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from eth_account import Account
from eth_account.signers.local import LocalAccount

from tests.conftest import start_anvil
from tests.contracts.governance_stack import ROLE_FINANCE, ROLE_SUPPLIER, Stack, deploy_stack, events

FORWARD_REQUEST_TYPES = {"ForwardRequest": [
    {"name": "from", "type": "address"}, {"name": "to", "type": "address"}, {"name": "value", "type": "uint256"},
    {"name": "gas", "type": "uint256"}, {"name": "nonce", "type": "uint256"}, {"name": "deadline", "type": "uint48"},
    {"name": "data", "type": "bytes"},
]}
REQUEST_GAS = 300_000


@pytest.fixture(scope="module")
def rpc_url() -> Iterator[str]:
    node = start_anvil()
    yield node.rpc_url
    node.stop()


@pytest.fixture
def stack(rpc_url: str) -> Stack:
    return deploy_stack(rpc_url)


def signed_request(stack: Stack, signer: LocalAccount, target: Any, fn: Any, *, from_: str | None = None,
                   nonce: int | None = None, deadline: int | None = None, value: int = 0) -> tuple:
    """A ForwardRequestData tuple for `fn` on `target`, signed by `signer` (claiming `from_`)."""
    from_ = from_ or signer.address
    nonce = stack.forwarder.functions.nonces(from_).call() if nonce is None else nonce
    deadline = stack.chain.now() + 600 if deadline is None else deadline
    data = bytes.fromhex(fn._encode_transaction_data()[2:])
    message = {"from": from_, "to": target.address, "value": value, "gas": REQUEST_GAS, "nonce": nonce,
               "deadline": deadline, "data": data}
    domain = {"name": "LedgerForwarder", "version": "1", "chainId": stack.chain.w3.eth.chain_id,
              "verifyingContract": stack.forwarder.address}
    signature = signer.sign_typed_data(domain_data=domain, message_types=FORWARD_REQUEST_TYPES,
                                       message_data=message).signature
    return (from_, target.address, value, REQUEST_GAS, deadline, data, signature)


def inner_revert(stack: Stack, request: tuple) -> tuple[str, tuple[Any, ...]] | None:
    """The inner call's own revert: the target called from the forwarder with the signer appended
    (exactly what ERC2771Context decodes), as an eth_call."""
    from_, to, _, _, _, data, _ = request
    return stack.chain.call_error(to, data + bytes.fromhex(from_[2:]), stack.forwarder.address)


def test_own_key_request_relayed_by_another_account_acts_as_the_member(stack: Stack) -> None:
    """Proves a member's own-key request, relayed by the operator's account, acts as that member:
    the guard resolves the supplier (not the relayer, which lacks the role) and the nonce is used."""
    c, supplier = stack.chain, stack.accounts["supplier"]
    request = signed_request(stack, supplier, stack.probe, stack.probe.functions.actWithRole(ROLE_SUPPLIER))
    assert stack.forwarder.functions.verify(request).call()
    receipt = c.send(stack.forwarder.functions.execute(request), stack.operator)
    (probed,) = events(stack.probe, receipt, "GuardProbed")
    assert (probed.args.memberId, probed.args.account) == (stack.members["supplier"], supplier.address)
    (executed,) = events(stack.forwarder, receipt, "ExecutedForwardRequest")
    assert (executed.args.signer, executed.args.nonce, executed.args.success) == (supplier.address, 0, True)
    assert stack.forwarder.functions.nonces(supplier.address).call() == 1
    # The relayer itself is refused the same call: it is not a supplier.
    c.assert_reverts(stack.probe.functions.actWithRole(ROLE_SUPPLIER), stack.operator, "RegistryMissingRole",
                     stack.operator.address, stack.members["op"], ROLE_SUPPLIER)


def test_forged_replayed_expired_and_untrusted_requests_are_refused(stack: Stack) -> None:
    """Proves the forwarder's refusals on chain, each with its custom error: a signature by another
    key, a replay of a used request, an expired deadline, a target that does not trust the
    forwarder (the registry), and a value mismatch."""
    c, f, supplier, rogue = stack.chain, stack.forwarder.functions, stack.accounts["supplier"], stack.accounts["rogue"]
    act = stack.probe.functions.actWithRole(ROLE_SUPPLIER)
    forged = signed_request(stack, rogue, stack.probe, act, from_=supplier.address)
    assert not f.verify(forged).call()
    c.assert_reverts(f.execute(forged), stack.operator, "ERC2771ForwarderInvalidSigner", rogue.address,
                     supplier.address)
    good = signed_request(stack, supplier, stack.probe, act)
    c.send(f.execute(good), stack.operator)
    replay = c.revert_of(f.execute(good), stack.operator)
    assert replay is not None and replay[0] == "ERC2771ForwarderInvalidSigner" and replay[1][1] == supplier.address
    assert c.send_raw(f.execute(good), stack.operator)["status"] == 0
    past = c.now() - 1
    expired = signed_request(stack, supplier, stack.probe, act, deadline=past)
    c.assert_reverts(f.execute(expired), stack.operator, "ERC2771ForwarderExpiredRequest", past)
    untrusted = signed_request(stack, supplier, stack.registry, stack.registry.functions.sealBootstrap())
    c.assert_reverts(f.execute(untrusted), stack.operator, "ERC2771UntrustfulTarget", stack.registry.address,
                     stack.forwarder.address)
    priced = signed_request(stack, supplier, stack.probe, act, value=1)
    c.assert_reverts(f.execute(priced), stack.operator, "ERC2771ForwarderMismatchedValue", 1, 0)
    assert f.nonces(supplier.address).call() == 1  # only the one good request used a nonce


def test_inner_revert_surfaces_as_failed_call_and_is_recovered_by_simulation(stack: Stack) -> None:
    """Proves how an inner revert surfaces: the forwarder reverts with FailedCall() (the nonce is not
    used), and simulating the inner call from the forwarder recovers the guard's own error — here a
    suspended member, refused everywhere, and a member lacking the role."""
    c, f, supplier = stack.chain, stack.forwarder.functions, stack.accounts["supplier"]
    wrong_role = signed_request(stack, supplier, stack.probe, stack.probe.functions.actWithRole(ROLE_FINANCE))
    c.assert_reverts(f.execute(wrong_role), stack.operator, "FailedCall")
    assert inner_revert(stack, wrong_role) == ("RegistryMissingRole", (supplier.address, stack.members["supplier"],
                                                                       ROLE_FINANCE))
    stack.fast_suspend("supplier")
    request = signed_request(stack, supplier, stack.probe, stack.probe.functions.actAsMember())
    assert f.verify(request).call()  # a valid request ...
    c.assert_reverts(f.execute(request), stack.operator, "FailedCall")  # ... whose inner call is refused
    assert inner_revert(stack, request) == ("RegistryMemberNotActive", (supplier.address, stack.members["supplier"]))
    assert f.nonces(supplier.address).call() == 0


def test_a_key_the_member_added_itself_signs_relayed_requests(stack: Stack) -> None:
    """Proves the members' own-key path end to end: the supplier registers its own new key (consent
    by its current key + proof of possession, relayed), retires the old one, and from then on its own
    key's relayed requests act as the supplier while the old (custodial) key's are refused."""
    c, old, own = stack.chain, stack.accounts["supplier"], Account.create()
    c.send(stack.add_with_consent_fn("supplier", own, old), stack.operator)
    c.send(stack.remove_with_consent_fn("supplier", old.address, own), stack.operator)
    request = signed_request(stack, own, stack.probe, stack.probe.functions.actWithRole(ROLE_SUPPLIER))
    receipt = c.send(stack.forwarder.functions.execute(request), stack.operator)
    assert events(stack.probe, receipt, "GuardProbed")[0].args.memberId == stack.members["supplier"]
    stale = signed_request(stack, old, stack.probe, stack.probe.functions.actWithRole(ROLE_SUPPLIER))
    c.assert_reverts(stack.forwarder.functions.execute(stale), stack.operator, "FailedCall")
    assert inner_revert(stack, stale) == ("RegistryNotAMember", (old.address,))


def test_gas_of_a_relayed_request(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """Measures the forwarder's overhead: a relayed guarded call against the same call sent directly."""
    c, supplier = stack.chain, stack.accounts["supplier"]
    direct = c.send(stack.probe.functions.actWithRole(ROLE_SUPPLIER), supplier)["gasUsed"]
    request = signed_request(stack, supplier, stack.probe, stack.probe.functions.actWithRole(ROLE_SUPPLIER))
    relayed = c.send(stack.forwarder.functions.execute(request), stack.operator)["gasUsed"]
    with capsys.disabled():
        print(f"\nguarded call: direct {direct:,} gas, relayed through LedgerForwarder {relayed:,} gas")
    assert relayed - direct < 50_000
