"""The service with its keys in a PKCS#11 token (SoftHSM2): configuration, the vault's choice of
signer, a dispatcher run end to end with an HSM-backed operator and custodial members, and a
search of the data dir and the signers' memory for any of those private keys (there is none).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from sqlalchemy import select

from ledger_api.app import create_app
from ledger_api.bootstrap import build_runtime
from ledger_api.demo import ensure_operator_member
from ledger_api.settings import Settings
from settlement.chain.signing import FeeParams, LocalSigner
from settlement.core.errors import ConfigurationError
from settlement.custody.hsm import REFERENCE_FORMAT, HsmSigner, HsmToken
from settlement.custody.vault import FORMAT_V1, KeyVault, load_or_create_operator
from settlement.pipeline.workers import build
from settlement.runtime import Runtime
from settlement.store.models import MemberAccount, OutboxRow
from settlement.wiring import build_registry
from tests.api.support import LiveServer, onboard_direct
from tests.custody.conftest import SoftHsm
from tests.custody.keyscan import keys_in_files, keys_in_objects
from tests.governance.support import test_governance
from tests.settlements.conftest import INSTRUCTED, PAID, World
from tests.http import client as http_client

CONSORTIUM = {"retailer": ["finance", "buyer"], "bank": ["finance", "financier"], "psp": ["finance"]}


def hsm_settings(softhsm: SoftHsm, home: Path, rpc_url: str, **overrides: object) -> Settings:
    values: dict[str, object] = {"home": home, "rpc_url": rpc_url, "database_url": f"sqlite:///{home / 'ledger.db'}",
                                 "hsm_module": softhsm.module, "hsm_token_label": softhsm.token_label,
                                 "hsm_pin": softhsm.pin}
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def _address_bytes(address: str) -> bytes:
    return bytes.fromhex(address[2:])


# -- the vault and the configuration -------------------------------------------------------------


def test_the_vault_generates_custodial_keys_in_the_token(hsm_token: HsmToken) -> None:
    """With members' keys in the HSM, a new account's stored blob is a 17-byte reference that
    decrypts to nothing; another vault on the same token (a restart) signs with it; a vault
    without the token, or a reference stored against another address, is refused."""
    vault = KeyVault(os.urandom(32), hsm=hsm_token, hsm_keys={"members"})
    address, blob = vault.new_account()
    assert blob[:1] == REFERENCE_FORMAT and len(blob) == 17
    with pytest.raises(ConfigurationError):
        vault.decrypt(address, blob)
    restarted = KeyVault(os.urandom(32), hsm=hsm_token, hsm_keys={"members"})
    signer = restarted.signer(address, blob)
    assert isinstance(signer, HsmSigner) and signer.address == address
    tx = signer.sign(chain_id=5, nonce=1, to=address, data=b"x", gas=30_000, fees=FeeParams())
    assert Account.recover_transaction(tx.raw) == address
    other, other_blob = vault.new_account()
    with pytest.raises(ConfigurationError, match="belongs to"):
        KeyVault(os.urandom(32), hsm=hsm_token).signer(other, blob)
    with pytest.raises(ConfigurationError, match="lives in an HSM"):
        KeyVault(os.urandom(32)).signer(other, other_blob)
    # the operator's key is not in the token unless asked: an encrypted key, as before
    op_address, op_blob = vault.new_account("operator")
    assert op_blob[:1] == FORMAT_V1 and isinstance(vault.signer(op_address, op_blob), LocalSigner)
    with pytest.raises(ConfigurationError, match="none is configured"):
        KeyVault(os.urandom(32), hsm_keys={"members"})
    with pytest.raises(ConfigurationError, match="known: operator, members"):
        KeyVault(os.urandom(32), hsm=hsm_token, hsm_keys={"relayer"})


def test_the_operator_key_is_never_moved_into_the_token(hsm_token: HsmToken, tmp_path: Path) -> None:
    """An operator key that exists outside the token (LEDGER_OPERATOR_KEY, or an encrypted
    operator.key from before the HSM) is refused when the operator's key must live in the token;
    a fresh data dir gets one generated inside, kept as a reference that a restart reuses."""
    kek = os.urandom(32)
    file_home, hsm_home = tmp_path / "file", tmp_path / "hsm"
    file_home.mkdir()
    hsm_home.mkdir()
    load_or_create_operator(file_home, KeyVault(kek), None)  # an encrypted operator.key
    in_hsm = KeyVault(kek, hsm=hsm_token, hsm_keys={"operator"})
    with pytest.raises(ConfigurationError, match="encrypted operator key"):
        load_or_create_operator(file_home, in_hsm, None)
    with pytest.raises(ConfigurationError, match="LEDGER_OPERATOR_KEY"):
        load_or_create_operator(hsm_home, in_hsm, "0x" + os.urandom(32).hex())
    operator = load_or_create_operator(hsm_home, in_hsm, None)
    assert isinstance(operator, HsmSigner)
    address, blob_b64 = (hsm_home / "operator.key").read_text().split(":", 1)
    assert address == operator.address
    assert base64.urlsafe_b64decode(blob_b64 + "=" * (-len(blob_b64) % 4))[:1] == REFERENCE_FORMAT
    again = load_or_create_operator(hsm_home, KeyVault(kek, hsm=hsm_token, hsm_keys={"operator"}), None)
    assert again.address == operator.address


def test_hsm_settings_are_checked_at_start(softhsm: SoftHsm, hsm_token: HsmToken, tmp_path: Path) -> None:
    """A PIN file readable by others, both PIN and PIN file, a missing token label or module,
    and a wrong PIN stop the start with a configuration error that never shows the PIN."""
    pin_file = tmp_path / "pin"
    pin_file.write_text(softhsm.pin + "\n")
    os.chmod(pin_file, 0o644)
    cases = [
        ({"hsm_pin": None, "hsm_pin_file": pin_file}, "chmod 600"),
        ({"hsm_pin_file": pin_file}, "exactly one"),
        ({"hsm_token_label": None}, "LEDGER_HSM_TOKEN_LABEL"),
        ({"hsm_module": tmp_path / "nope.so"}, "not a file"),
        ({"hsm_pin": "x" + softhsm.pin}, "refused the PIN"),
        ({"hsm_keys": "operator,governors"}, "known: operator, members"),
    ]
    for i, (overrides, message) in enumerate(cases):
        home = tmp_path / f"home{i}"
        with pytest.raises(ConfigurationError, match=message) as err:
            build_runtime(hsm_settings(softhsm, home, "http://127.0.0.1:9", **overrides), run_migrations=False)
            pytest.fail(f"case {overrides} started")
        assert softhsm.pin not in str(err.value)
    os.chmod(pin_file, 0o600)
    rt = build_runtime(hsm_settings(softhsm, tmp_path / "ok", "http://127.0.0.1:9", hsm_pin=None,
                                    hsm_pin_file=pin_file), run_migrations=False)
    assert isinstance(rt.operator, HsmSigner) and rt.vault.in_hsm("members")
    only_members = build_runtime(hsm_settings(softhsm, tmp_path / "members-only", "http://127.0.0.1:9",
                                              hsm_keys="members"), run_migrations=False)
    assert isinstance(only_members.operator, LocalSigner) and only_members.vault.in_hsm("members")
    plain = build_runtime(Settings(home=tmp_path / "plain", rpc_url="http://127.0.0.1:9"), run_migrations=False)
    assert isinstance(plain.operator, LocalSigner) and plain.vault.hsm is None  # the embedded default


# -- the service end to end ----------------------------------------------------------------------


@dataclass
class HsmWorld:
    world: World
    home: Path
    hsm_addresses: list[str]


@pytest.fixture(scope="module")
def hsm_world(softhsm: SoftHsm, hsm_token: HsmToken, anvil_automine,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[HsmWorld]:
    """The service built from settings naming the token (operator and members in the HSM), its
    contracts deployed by the HSM operator, a small consortium onboarded with custodial keys
    generated in the token, the app on a real HTTP server, the dispatcher and follower run here."""
    home = tmp_path_factory.mktemp("hsm-home")
    assert not softhsm.token_dir.is_relative_to(home)  # the token's own store is not the data dir
    # An external chain names its governors; the service holds none of their keys (nor needs them here).
    params, _signers = test_governance()
    governors = ",".join(f"{g.member_id}:{g.address}" for g in params.governors)
    rt: Runtime = build_runtime(hsm_settings(softhsm, home, anvil_automine.rpc_url, governors=governors,
                                             governance_threshold=params.threshold,
                                             governance_delay_s=params.delay_s), deploy_contracts=True)
    operator_key = ensure_operator_member(rt)
    keys = {name: onboard_direct(rt, name, roles, country="SG") for name, roles in CONSORTIUM.items()}
    dispatcher, follower = build(rt, build_registry())
    server = LiveServer(create_app(rt, Settings(home=home), registry_cache_ttl_s=0.0)).start()
    world = World(rt, http_client(base_url=server.url, timeout=60.0), dispatcher, follower, keys, operator_key)
    world.sync()
    with rt.db.read() as s:
        custodial = [a.address for a in s.scalars(select(MemberAccount).where(MemberAccount.encrypted_key.is_not(None)))]
    yield HsmWorld(world, home, [rt.operator.address, *custodial])
    world.http.close()
    server.stop()
    rt.db.dispose()
    rt.vault.hsm.close()


def test_a_dispatcher_run_with_hsm_keys_sends_outbox_rows_end_to_end(hsm_world: HsmWorld) -> None:
    """Deployment, onboarding (operator-signed), settlements recorded by their payers' custodial
    keys and marked paid by the operator: every outbox row is signed in the token, mined, and
    recovers to its signer's HSM address, which is the sender the chain records."""
    w = hsm_world.world
    rt = w.runtime
    assert isinstance(rt.operator, HsmSigner)
    with rt.db.read() as s:
        blobs = dict(s.execute(select(MemberAccount.address, MemberAccount.encrypted_key)).all())
    assert all(blobs[a][:1] == REFERENCE_FORMAT for a in hsm_world.hsm_addresses[1:])
    created = [w.create("retailer", payee="bank"), w.create("bank", payee="psp"), w.create("psp", payee="retailer")]
    w.sync()
    assert [w.onchain(s["id"]) for s in created] == [(INSTRUCTED, 0)] * 3
    r = w.http.post(f"/v1/settlements/{created[0]['id']}/payments", headers=w.h("operator", "pay-1"),
                    json={"provider": "alipay", "provider_transaction_id": "2024HSM0001",
                          "amount": created[0]["target"]})
    assert r.status_code == 202, r.text
    w.sync()
    assert w.onchain(created[0]["id"]) == (PAID, 0)
    with rt.db.read() as s:
        rows = s.scalars(select(OutboxRow).order_by(OutboxRow.id)).all()
    assert len(rows) >= len(CONSORTIUM) + 1 + 3 + 1
    signers = set()
    for row in rows:
        assert row.status == "confirmed", (row.kind, row.status, row.last_error)
        assert row.signer in hsm_world.hsm_addresses
        assert Account.recover_transaction(row.raw_tx) == row.signer
        receipt = rt.chain.receipts([row.tx_hash])[row.tx_hash]
        assert receipt is not None and receipt.status == 1 and receipt.from_.lower() == row.signer.lower()
        signers.add(row.signer)
    assert rt.operator.address in signers and len(signers) == 4  # the operator and the three payers
    # The contracts themselves were deployed by the HSM operator (ChainClient.transact).
    assert rt.manifest.deployer == rt.operator.address
    assert all(rt.chain.get_code(a) for a in rt.manifest.addresses.values())


def test_no_private_key_of_an_hsm_signer_is_in_the_data_dir_or_the_signers(hsm_world: HsmWorld,
                                                                         tmp_path: Path) -> None:
    """After that run, no file of the data dir (database, KEK, operator.key, manifest) and nothing
    reachable from the signers, the vault or the token object holds a private key of any HSM
    account, raw, hex or base64. The same searches do find keys planted on purpose, so a miss
    means absence, not a blind search."""
    w = hsm_world.world
    rt = w.runtime
    wanted = [_address_bytes(a) for a in hsm_world.hsm_addresses]
    files = sorted(p.name for p in hsm_world.home.rglob("*") if p.is_file())
    assert "ledger.db" in files and "operator.key" in files and "kek" in files
    assert keys_in_files(hsm_world.home, wanted) == []
    signers = [rt.operator, *(rt.vault.cached_signer(a) for a in hsm_world.hsm_addresses)]
    assert all(isinstance(s, HsmSigner) for s in signers)
    assert keys_in_objects([*signers, rt.vault, rt.vault.hsm], wanted) == []

    # The searches work: a local key planted raw at an odd offset, as hex, and as base64 is found,
    # and so is a LocalSigner's key in memory.
    planted = LocalSigner(os.urandom(32))
    secret = planted._key.secret
    (tmp_path / "raw.bin").write_bytes(os.urandom(13) + secret + os.urandom(7))
    (tmp_path / "hex.txt").write_text("key=" + secret.hex())
    (tmp_path / "b64.txt").write_text(base64.urlsafe_b64encode(secret).decode())
    found = keys_in_files(tmp_path, [_address_bytes(planted.address)])
    assert sorted({p.name for p, _ in found}) == ["b64.txt", "hex.txt", "raw.bin"]  # a file may match twice (base64 read as both alphabets)
    assert keys_in_objects([planted], [_address_bytes(planted.address)]) != []
