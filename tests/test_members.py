"""Members: validation; founding members in the bootstrap window (one transaction for member +
account + key + outbox row, nothing on failure); after the seal only governance changes members,
and the follower mirrors every registry event (also of changes made around the API); the registry
view (chain first, mirror as fallback); the Besu allowlist from the registry; the `ledger members`
and `ledger governance` commands; on SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from ledger_api.cli import governance as cli_governance
from ledger_api.cli import members as cli_members
from settlement.domains import governance as gov
from settlement.pipeline.outbox import enqueue
from tests.api.support import apply_outbox_directly, build_runtime, dead_rpc_url
from tests.governance.support import (
    drive,
    govern,
    govern_on_chain,
    reactivate,
    seal,
    suspend,
    suspend_on_chain,
)
from settlement.chain import besu
from settlement.domains.members import service as svc
from settlement.chain.anvil import ManagedAnvil
from settlement.chain.client import ChainClient
from settlement.core.errors import (
    BootstrapSealedError, DuplicateError, InvalidCountryError, InvalidStateError, UnknownRoleError, ValidationError,
)
from settlement.runtime import Runtime
from settlement.store.models import ApiKey, Member, MemberAccount, OutboxRow


@pytest.fixture
def runtime(tmp_path: Path, database_url: str, anvil_automine: ManagedAnvil) -> Iterator[Runtime]:
    rt = build_runtime(tmp_path / "home", database_url, anvil_automine.rpc_url)
    yield rt
    rt.db.dispose()


def _counts(rt: Runtime) -> tuple[int, ...]:
    with rt.db.read() as s:
        return tuple(s.scalar(select(func.count()).select_from(t)) or 0 for t in (Member, MemberAccount, ApiKey, OutboxRow))


def _onboard(rt: Runtime, member_id: str, roles: list[str], country: str = "HK") -> str:
    with rt.db.transaction() as s:
        return svc.onboard_member(rt, s, member_id=member_id, name=f"{member_id} Ltd", country=country, roles=roles)[1]


# -- validation (pure) -----------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["", "A", "-a", "a-", "a_b", "a b", "é", "a" * 65])
def test_member_id_must_be_a_slug(bad: str) -> None:
    with pytest.raises(ValidationError):
        svc.validate_member_id(bad)


@pytest.mark.parametrize("bad", ["cn", "ZZ", "XX", "C", "CHN", "", "1A"])
def test_country_must_be_a_real_iso_code(bad: str) -> None:
    with pytest.raises(InvalidCountryError):
        svc.validate_country(bad)


def test_roles_are_known_ordered_and_hashed_as_the_registry_does() -> None:
    assert svc.validate_roles(["buyer", "finance", "buyer"]) == ("finance", "buyer")
    with pytest.raises(UnknownRoleError):
        svc.validate_roles(["admin"])
    with pytest.raises(ValidationError):
        svc.validate_roles([])
    assert svc.roles_from_mask(0b100010) == ("finance", "auditor")
    assert svc.country_hex("CN") == "0x434e" and len(svc.onchain_id("x")) == 66
    for name in ("CN", "SG", "US", "DE", "HK", "GB"):
        assert svc.validate_country(name) == name


# -- onboarding in the store -----------------------------------------------------------------------


def test_onboarding_writes_member_account_key_and_outbox_row_together(runtime: Runtime) -> None:
    with runtime.db.transaction() as s:
        done = svc.onboard(runtime, s, member_id="supplier-vn", name="Supplier VN", country="VN",
                           roles=["supplier"])
    assert _counts(runtime) == (1, 1, 1, 1)
    with runtime.db.read() as s:
        row = s.get(OutboxRow, done.outbox_id)
        account = s.get(MemberAccount, done.address)
    assert row.status == "pending" and row.aggregate_id == "supplier-vn" and row.signer == runtime.operator.address
    assert runtime.vault.signer(done.address, account.encrypted_key).address == done.address
    with runtime.db.transaction() as s, pytest.raises(DuplicateError):
        svc.onboard_member(runtime, s, member_id="supplier-vn", name="Again", country="VN", roles=["supplier"])
    assert _counts(runtime) == (1, 1, 1, 1)


def test_failure_anywhere_in_onboarding_writes_nothing(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Validation failures write nothing; so does a failure after the rows were added (the last
    step, enqueueing, is made to fail)."""
    with runtime.db.transaction() as s, pytest.raises(InvalidCountryError):
        svc.onboard_member(runtime, s, member_id="m", name="M", country="QQ", roles=["buyer"])

    def broken_enqueue(*args: object, **kwargs: object) -> None:
        raise ValidationError("encoding failed")

    monkeypatch.setattr(svc, "enqueue", broken_enqueue)
    with pytest.raises(ValidationError), runtime.db.transaction() as s:
        svc.onboard_member(runtime, s, member_id="m", name="M", country="SG", roles=["buyer"])
    assert _counts(runtime) == (0, 0, 0, 0)


def test_after_the_seal_only_governance_onboards_and_the_follower_mirrors_every_registry_change(
        runtime: Runtime) -> None:
    """The bootstrap path is closed by the seal (BootstrapSealedError); governance decisions reach
    the mirror only through the registry's events: suspension, reinstatement, roles, country."""
    _onboard(runtime, "bank-sg", ["financier"])
    seal(runtime)
    with runtime.db.transaction() as s, pytest.raises(BootstrapSealedError):
        svc.onboard_member(runtime, s, member_id="late", name="Late", country="SG", roles=["buyer"])
    suspend(runtime, "bank-sg")
    with runtime.db.read() as s:
        assert s.get(Member, "bank-sg").status == "suspended"
    reactivate(runtime, "bank-sg")
    govern(runtime, gov.Action("grant_role", member_id="bank-sg", role="auditor"))
    govern(runtime, gov.Action("revoke_role", member_id="bank-sg", role="financier"))
    govern(runtime, gov.Action("set_country", member_id="bank-sg", country="MY"))
    with runtime.db.read() as s:
        m = s.get(Member, "bank-sg")
        assert (m.status, m.roles, m.country) == ("active", ["auditor"], "MY")
    onchain = svc.read_onchain_member(runtime, svc.onchain_id("bank-sg"))
    assert onchain.status == "active" and onchain.roles == ("auditor",) and onchain.country == "MY"
    with runtime.db.transaction() as s, pytest.raises(InvalidStateError):
        gov.propose(runtime, s, gov.read_facts(runtime), gov.Action("revoke_role", member_id="bank-sg",
                                                                    role="auditor"), proposed_by="ops")


def test_registry_changes_made_around_the_api_are_mirrored(runtime: Runtime) -> None:
    """Governors acting with their own tools (no proposal in the store): the follower still
    mirrors the member onboarded, its account and roles, from the registry's events."""
    seal(runtime)
    account = "0x" + "ab" * 20
    govern_on_chain(runtime, "onboardMember", [svc.onchain_id("stranger"), "0x4445", [account],
                                               [svc.ROLE_HASHES["buyer"]]])
    drive(runtime)
    with runtime.db.read() as s:
        m = s.scalar(select(Member).where(Member.onchain_id == svc.onchain_id("stranger")))
        assert m.id.startswith("onchain-") and m.roles == ["buyer"] and m.country == "DE"
        assert [a.lower() for a in svc.member_accounts(s, m.id)] == [account]


# -- the registry view -----------------------------------------------------------------------------


def test_registry_view_chain_first_then_merged_then_mirror(runtime: Runtime) -> None:
    view = svc.RegistryView(runtime, ttl_s=0.0)
    _onboard(runtime, "buyer-cn", ["buyer", "finance"])
    assert view.view("buyer-cn").source == "mirror"  # onboarding not on chain yet
    apply_outbox_directly(runtime)
    v = view.view("buyer-cn")
    assert v.source == "chain" and v.roles == {"buyer", "finance"} and v.active
    seal(runtime)
    suspend_on_chain(runtime, "buyer-cn")  # around the service: the mirror has not heard of it
    v = view.view("buyer-cn")
    assert v.source == "chain" and not v.active
    with runtime.db.read() as s:
        assert s.get(Member, "buyer-cn").status == "suspended"  # refreshed from the registry's answer
    with runtime.db.transaction() as s:  # a registry change of the member waiting in the outbox
        enqueue(s, kind="test.registry", contract="ConsortiumRegistry", function="reactivateMember",
                args=[svc.onchain_id("buyer-cn")], signer=runtime.operator.address, gas_limit=100_000,
                aggregate_id="buyer-cn")
    assert view.view("buyer-cn").source == "merged" and not view.view("buyer-cn").active
    runtime.chain = ChainClient(dead_rpc_url(), timeout_s=1.0)
    assert view.view("buyer-cn").source == "mirror"


def test_registry_view_caches_for_its_ttl(runtime: Runtime) -> None:
    now = [0.0]
    view = svc.RegistryView(runtime, ttl_s=2.0, clock=lambda: now[0])
    _onboard(runtime, "aud-1", ["auditor"])
    seal(runtime)
    first = view.view("aud-1")
    suspend_on_chain(runtime, "aud-1")
    assert view.view("aud-1") is first
    now[0] = 2.5
    assert not view.view("aud-1").active


# -- Besu allowlist --------------------------------------------------------------------------------


def test_render_permissions_toml() -> None:
    a, b = "0x" + "Ab" * 20, "0x" + "01" * 20
    text = besu.render_permissions_toml([a, b, a.lower()])
    assert f'accounts-allowlist=["{b}", "{a.lower()}"]' in text
    import tomllib
    assert tomllib.loads(text) == {"accounts-allowlist": [b, a.lower()]}
    with pytest.raises(ValueError):
        besu.render_permissions_toml(["0x123"])
    assert tomllib.loads(besu.render_permissions_toml([])) == {"accounts-allowlist": []}


def test_allowlist_reads_active_members_and_governors_from_the_registry(runtime: Runtime) -> None:
    """Active members' accounts, the governors (owners of the governance Safes) and the operator's
    relayer; not a suspended member, not one whose onboarding never reached the chain; the
    bootstrapper only while the bootstrap is open."""
    _onboard(runtime, "active-1", ["finance"])
    _onboard(runtime, "suspended-1", ["finance"])
    apply_outbox_directly(runtime)
    _onboard(runtime, "pending-1", ["finance"])  # never dispatched: not on chain, not allowed
    with runtime.db.read() as s:
        active_account = svc.member_accounts(s, "active-1")[0]
    governors = [g.address for g in runtime.governance.governors]
    registry = runtime.address("ConsortiumRegistry")
    accounts = besu.registry_allowlist(runtime.chain, registry, runtime.operator.address)
    assert runtime.operator.address in accounts and set(governors) <= set(accounts)  # bootstrapper: open
    with runtime.db.transaction() as s:
        s.query(OutboxRow).filter(OutboxRow.aggregate_id == "pending-1").delete()
    seal(runtime)
    suspend_on_chain(runtime, "suspended-1")
    with runtime.db.read() as s:
        suspended_account = svc.member_accounts(s, "suspended-1")[0]
    accounts = besu.registry_allowlist(runtime.chain, registry, runtime.operator.address)
    assert sorted(accounts) == sorted([active_account, runtime.operator.address, *governors])
    assert suspended_account not in accounts


# -- CLI ---------------------------------------------------------------------------------------------


def _cli(runtime: Runtime, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="ledger")
    sub = parser.add_subparsers(dest="command", required=True)
    cli_members.register(sub, lambda: runtime)
    cli_governance.register(sub, lambda: runtime)
    args = parser.parse_args(argv)
    code = args.func(args, None)  # as ledger_api.cli.main calls it
    return code, capsys.readouterr().out


def test_cli_members_governance_and_besu_permissions(runtime: Runtime, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    """`members add` onboards at once in the bootstrap window; `governance seal` closes it; then
    `members suspend` is a proposal that the governors approve (`governance approve`, custodial demo
    keys) and anyone executes (`governance execute`); `besu-permissions` follows the registry."""
    code, out = _cli(runtime, ["members", "add", "--id", "pay-inst", "--name", "Pay Institution",
                               "--country", "SG", "--roles", "finance,auditor", "--json"], capsys)
    added = json.loads(out)
    assert code == 0 and added["api_key"].startswith("lk_") and added["roles"] == ["finance", "auditor"]
    code, out = _cli(runtime, ["members", "list", "--json"], capsys)
    assert code == 0 and [m["id"] for m in json.loads(out)] == ["pay-inst"] and "lk_" not in out
    drive(runtime)
    code, out = _cli(runtime, ["governance", "seal"], capsys)
    assert code == 0 and "sealed" in out and not runtime.bootstrap_open()
    code, out = _cli(runtime, ["members", "suspend", "pay-inst"], capsys)
    assert code == 0 and "proposal" in out
    pid = out.split("proposal ")[1].split(":")[0]
    drive(runtime)
    code, out = _cli(runtime, ["governance", "list", "--pending", "--json"], capsys)
    assert [p["id"] for p in json.loads(out)] == [pid]
    code, _ = _cli(runtime, ["governance", "execute", pid], capsys)
    assert code == 1  # no quorum yet
    for governor in [g.address for g in runtime.governance.governors][:2]:
        code, out = _cli(runtime, ["governance", "approve", pid, "--governor", governor], capsys)
        assert code == 0 and "pending" in out
    drive(runtime)
    code, out = _cli(runtime, ["governance", "execute", pid], capsys)
    assert code == 0
    drive(runtime)
    code, out = _cli(runtime, ["members", "list", "--json"], capsys)
    assert json.loads(out)[0]["status"] == "suspended"
    code, out = _cli(runtime, ["governance", "get", pid], capsys)
    assert code == 0 and "suspendMember" in out and '"status": "executed"' in out
    code, out = _cli(runtime, ["apikeys", "rotate", "pay-inst"], capsys)
    assert code == 0 and added["api_key_prefix"] in out and "lk_" in out
    target = tmp_path / "besu" / "permissions_config.toml"
    code, out = _cli(runtime, ["besu-permissions", "--out", str(target)], capsys)
    assert code == 0 and "4 account(s)" in out  # the operator's relayer and the three governors
    text = target.read_text()
    assert added["address"].lower() not in text and runtime.operator.address.lower() in text
    code = _cli(runtime, ["members", "add", "--id", "bad", "--name", "B", "--country", "ZZ", "--roles", "finance"],
                capsys)[0]
    assert code == 1


def test_governance_seal_goes_through_the_running_service_outbox(runtime: Runtime,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """`ledger governance seal` while a service runs on the data dir (here: its lock held and its
    workers running, as `ledger worker` after `ledger deploy`): the running dispatcher owns the
    operator's nonces, so the seal is an outbox row it sends (sent directly, it took the nonce the
    dispatcher had counted as its next one and orphaned the operator's next row). With no service
    running the command sends it itself, holding the lock meanwhile."""
    from ledger_api.cli.governance import SEAL_KIND
    from ledger_api.cli.instance import InstanceLock
    from settlement.pipeline.workers import Workers
    from settlement.wiring import build_registry

    code, _ = _cli(runtime, ["members", "add", "--id", "pay-inst", "--name", "Pay Institution",
                             "--country", "SG", "--roles", "finance", "--json"], capsys)
    assert code == 0
    service_lock = InstanceLock(runtime.home).acquire("worker")
    workers = Workers(runtime, build_registry(), dispatch_interval_s=0.05, follow_interval_s=0.1).start()
    try:
        code, out = _cli(runtime, ["governance", "seal"], capsys)
        assert code == 0 and "through its outbox" in out and "sealed" in out
        assert not runtime.bootstrap_open()
        deadline = time.monotonic() + 30  # sealed once mined; confirmed when the follower has seen it
        while True:
            with runtime.db.read() as s:
                statuses = list(s.scalars(select(OutboxRow.status).where(OutboxRow.kind == SEAL_KIND)))
            if statuses != ["mined"] or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert statuses == ["confirmed"]
        with runtime.db.read() as s:
            assert s.scalar(select(func.count()).select_from(OutboxRow)
                            .where(OutboxRow.status.in_(("failed", "orphaned")))) == 0
    finally:
        workers.stop()
        service_lock.release()


def test_governance_seal_without_a_service_sends_directly_and_holds_the_data_dir(
        runtime: Runtime, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    from ledger_api.cli.governance import SEAL_KIND
    from ledger_api.cli.instance import InstanceLock, InstanceLockedError

    code, _ = _cli(runtime, ["members", "add", "--id", "pay-inst", "--name", "Pay Institution",
                             "--country", "SG", "--roles", "finance", "--json"], capsys)
    assert code == 0
    drive(runtime)
    held_while_sealing: list[bool] = []
    real = cli_governance.seal_bootstrap

    def spy(*a: object, **k: object) -> object:
        try:
            InstanceLock(runtime.home).acquire("ledger up").release()
            held_while_sealing.append(False)
        except InstanceLockedError:
            held_while_sealing.append(True)
        return real(*a, **k)

    monkeypatch.setattr(cli_governance, "seal_bootstrap", spy)
    code, out = _cli(runtime, ["governance", "seal"], capsys)
    assert code == 0 and "outbox" not in out and not runtime.bootstrap_open()
    assert held_while_sealing and all(held_while_sealing)  # no service could start meanwhile
    with runtime.db.read() as s:
        assert s.scalar(select(func.count()).select_from(OutboxRow).where(OutboxRow.kind == SEAL_KIND)) == 0
    InstanceLock(runtime.home).acquire("ledger up").release()  # released afterwards
