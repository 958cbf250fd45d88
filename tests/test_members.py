"""Member onboarding and registry changes: validation, one transaction for member + account + key
+ outbox row (and nothing on failure), the registry view (chain first, mirror as fallback), the Besu
allowlist from the registry, and the `ledger members` commands; on SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.api.support import apply_outbox_directly, build_runtime, dead_rpc_url
from ledger_api.cli import members as cli_members
from settlement.chain import besu
from settlement.domains.members import service as svc
from settlement.chain.anvil import ManagedAnvil
from settlement.chain.client import ChainClient
from settlement.core.errors import (
    DuplicateError, InvalidCountryError, InvalidStateError, UnknownRoleError, ValidationError,
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


def test_state_changes_update_the_mirror_and_enqueue(runtime: Runtime) -> None:
    _onboard(runtime, "bank-sg", ["financier"])
    with runtime.db.transaction() as s:
        m, row = svc.suspend_member(runtime, s, "bank-sg")
        assert m.status == "suspended" and row.function == "suspendMember"
        with pytest.raises(InvalidStateError):
            svc.suspend_member(runtime, s, "bank-sg")
        svc.reactivate_member(runtime, s, "bank-sg")
        svc.grant_role(runtime, s, "bank-sg", "auditor")
        m, _ = svc.revoke_role(runtime, s, "bank-sg", "financier")
        assert m.roles == ["auditor"]
        with pytest.raises(InvalidStateError):
            svc.revoke_role(runtime, s, "bank-sg", "auditor")
    apply_outbox_directly(runtime)
    onchain = svc.read_onchain_member(runtime, svc.onchain_id("bank-sg"))
    assert onchain.status == "active" and onchain.roles == ("auditor",)


# -- the registry view -----------------------------------------------------------------------------


def test_registry_view_chain_first_then_merged_then_mirror(runtime: Runtime) -> None:
    view = svc.RegistryView(runtime, ttl_s=0.0)
    _onboard(runtime, "buyer-cn", ["buyer", "finance"])
    assert view.view("buyer-cn").source == "mirror"  # onboarding not on chain yet
    apply_outbox_directly(runtime)
    v = view.view("buyer-cn")
    assert v.source == "chain" and v.roles == {"buyer", "finance"} and v.active
    with runtime.db.transaction() as s:
        svc.suspend_member(runtime, s, "buyer-cn")
    v = view.view("buyer-cn")
    assert v.source == "merged" and not v.active  # the suspension bites before it is mined
    apply_outbox_directly(runtime)
    assert view.view("buyer-cn").source == "chain" and not view.view("buyer-cn").active
    runtime.chain = ChainClient(dead_rpc_url(), timeout_s=1.0)
    assert view.view("buyer-cn").source == "mirror"


def test_registry_view_caches_for_its_ttl(runtime: Runtime) -> None:
    now = [0.0]
    view = svc.RegistryView(runtime, ttl_s=2.0, clock=lambda: now[0])
    _onboard(runtime, "aud-1", ["auditor"])
    first = view.view("aud-1")
    with runtime.db.transaction() as s:
        svc.suspend_member(runtime, s, "aud-1")
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


def test_allowlist_reads_active_members_from_the_registry(runtime: Runtime) -> None:
    _onboard(runtime, "active-1", ["finance"])
    _onboard(runtime, "suspended-1", ["finance"])
    with runtime.db.transaction() as s:
        svc.suspend_member(runtime, s, "suspended-1")
    _onboard(runtime, "pending-1", ["finance"])  # never dispatched: not on chain, not allowed
    apply_outbox_directly(runtime, "active-1")
    apply_outbox_directly(runtime, "suspended-1")
    with runtime.db.read() as s:
        active_account = svc.member_accounts(s, "active-1")[0]
    accounts = besu.registry_allowlist(runtime.chain, runtime.address("ConsortiumRegistry"), runtime.operator.address)
    assert sorted(accounts) == sorted([active_account, runtime.operator.address])


# -- CLI ---------------------------------------------------------------------------------------------


def _cli(runtime: Runtime, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    parser = argparse.ArgumentParser(prog="ledger")
    cli_members.register(parser.add_subparsers(dest="command", required=True), lambda: runtime)
    args = parser.parse_args(argv)
    code = args.func(args, None)  # as ledger_api.cli.main calls it
    return code, capsys.readouterr().out


def test_cli_members_and_besu_permissions(runtime: Runtime, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out = _cli(runtime, ["members", "add", "--id", "pay-inst", "--name", "Pay Institution",
                               "--country", "SG", "--roles", "finance,auditor", "--json"], capsys)
    added = json.loads(out)
    assert code == 0 and added["api_key"].startswith("lk_") and added["roles"] == ["finance", "auditor"]
    code, out = _cli(runtime, ["members", "list", "--json"], capsys)
    assert code == 0 and [m["id"] for m in json.loads(out)] == ["pay-inst"] and "lk_" not in out
    code, out = _cli(runtime, ["members", "suspend", "pay-inst"], capsys)
    assert code == 0 and "suspended" in out
    code, out = _cli(runtime, ["members", "reactivate", "pay-inst"], capsys)
    assert code == 0 and "active" in out
    code, out = _cli(runtime, ["apikeys", "rotate", "pay-inst"], capsys)
    assert code == 0 and added["api_key_prefix"] in out and "lk_" in out
    apply_outbox_directly(runtime)
    target = tmp_path / "besu" / "permissions_config.toml"
    code, out = _cli(runtime, ["besu-permissions", "--out", str(target)], capsys)
    assert code == 0 and "2 account(s)" in out
    text = target.read_text()
    assert added["address"].lower() in text and runtime.operator.address.lower() in text
    code = _cli(runtime, ["members", "add", "--id", "bad", "--name", "B", "--country", "ZZ", "--roles", "finance"],
                capsys)[0]
    assert code == 1
