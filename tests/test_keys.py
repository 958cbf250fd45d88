"""Custody of secrets: the KeyVault (AES-GCM under the KEK, bound to the address), the KEK file
(created 0600, refused when group-readable), and API keys (random, shown once, stored hashed,
revocable, rotatable) on SQLite and PostgreSQL."""

from __future__ import annotations

import base64
import hashlib
import os
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from settlement.domains.members import apikeys
from settlement.core.errors import (
    AuthenticationError, ConfigurationError, InvalidStateError, UnknownApiKeyError, UnknownMemberError,
)
from settlement.custody.vault import KeyVault, load_or_create_kek
from settlement.store.db import Database, migrate
from settlement.store.models import ApiKey, Member


# -- KeyVault and KEK ------------------------------------------------------------------------------


def test_vault_round_trip_and_signer() -> None:
    vault = KeyVault(os.urandom(32))
    address, blob = vault.new_account()
    key = vault.decrypt(address, blob)
    assert len(key) == 32 and key not in blob
    assert vault.signer(address, blob).address == address


def test_vault_refuses_tampered_ciphertext_wrong_kek_and_moved_blob() -> None:
    vault = KeyVault(os.urandom(32))
    address, blob = vault.new_account()
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(ConfigurationError):
        vault.decrypt(address, tampered)
    with pytest.raises(ConfigurationError):
        KeyVault(os.urandom(32)).decrypt(address, blob)
    other, _ = vault.new_account()
    with pytest.raises(ConfigurationError):  # bound to its address by the GCM associated data
        vault.decrypt(other, blob)
    with pytest.raises(ConfigurationError):
        KeyVault(b"short")
    assert "kek" not in repr(vault).lower().replace("<kek hidden>", "")


def test_kek_file_created_0600_and_reused(tmp_path: Path) -> None:
    kek = load_or_create_kek(tmp_path, None)
    path = tmp_path / "kek"
    assert len(kek) == 32 and path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_kek(tmp_path, None) == kek


def test_kek_file_refused_when_group_readable(tmp_path: Path) -> None:
    load_or_create_kek(tmp_path, None)
    os.chmod(tmp_path / "kek", 0o640)
    with pytest.raises(ConfigurationError, match="chmod 600"):
        load_or_create_kek(tmp_path, None)


def test_kek_from_environment_must_be_32_bytes(tmp_path: Path) -> None:
    good = os.urandom(32)
    assert load_or_create_kek(tmp_path, base64.urlsafe_b64encode(good).decode().rstrip("=")) == good
    with pytest.raises(ConfigurationError):
        load_or_create_kek(tmp_path, base64.urlsafe_b64encode(os.urandom(16)).decode())
    assert not (tmp_path / "kek").exists()


# -- API keys: pure parts --------------------------------------------------------------------------


@given(st.text(max_size=300))
def test_parse_key_never_raises(text: str) -> None:
    prefix = apikeys.parse_key(text)
    assert prefix is None or len(prefix) == apikeys.PREFIX_LEN


def test_key_format_carries_at_least_128_random_bits() -> None:
    assert apikeys.SECRET_BYTES * 8 >= 128
    assert apikeys.parse_key("lk_abcdefgh_" + "A" * 43) == "abcdefgh"
    assert apikeys.parse_key("lk_abcdefgh_short") is None
    assert apikeys.parse_key("xx_abcdefgh_" + "A" * 43) is None
    assert apikeys.parse_key("lk_ABCDEFGH_" + "A" * 43) is None


# -- API keys in the store -------------------------------------------------------------------------


@pytest.fixture
def db(database_url: str):  # type: ignore[no-untyped-def]
    migrate(database_url)
    database = Database(database_url)
    with database.transaction() as s:
        for mid in ("m1", "m2"):
            s.add(Member(id=mid, onchain_id="0x" + hashlib.sha256(mid.encode()).hexdigest(), name=mid,
                         country="SG", roles=["finance"], status="active"))
    yield database
    database.dispose()


def test_issued_key_is_stored_as_sha256_only(db: Database) -> None:
    with db.transaction() as s:
        issued = apikeys.issue_key(s, "m1", label="ci")
    assert issued.plaintext not in repr(issued)
    assert issued.plaintext.startswith(f"lk_{issued.prefix}_")
    with db.read() as s:
        row = s.scalar(select(ApiKey).where(ApiKey.prefix == issued.prefix))
        stored = [str(v) for v in (row.prefix, row.key_hash, row.label, row.member_id)]
    assert row.key_hash == hashlib.sha256(issued.plaintext.encode()).hexdigest()
    assert all(issued.plaintext not in v for v in stored)
    with db.transaction() as s:
        assert apikeys.authenticate(s, issued.plaintext).member_id == "m1"
        with pytest.raises(UnknownMemberError):
            apikeys.issue_key(s, "nobody")


def test_authenticate_refuses_wrong_secret_unknown_prefix_and_revoked(db: Database) -> None:
    with db.transaction() as s:
        issued = apikeys.issue_key(s, "m1")
    forged = issued.plaintext[:-4] + ("AAAA" if not issued.plaintext.endswith("AAAA") else "BBBB")
    with db.transaction() as s:
        for bad, reason in ((forged, "invalid"), ("lk_zzzzzzzz_" + "A" * 43, "invalid"), ("nonsense", "malformed")):
            with pytest.raises(AuthenticationError) as info:
                apikeys.authenticate(s, bad)
            assert info.value.extra["reason"] == reason
        apikeys.revoke_key(s, issued.prefix)
    with db.transaction() as s:
        with pytest.raises(AuthenticationError) as info:
            apikeys.authenticate(s, issued.plaintext)
        assert info.value.extra["reason"] == "revoked"
        with pytest.raises(InvalidStateError):
            apikeys.revoke_key(s, issued.prefix)


def test_revoke_scoped_to_a_member(db: Database) -> None:
    with db.transaction() as s:
        issued = apikeys.issue_key(s, "m1")
    with db.transaction() as s, pytest.raises(UnknownApiKeyError):
        apikeys.revoke_key(s, issued.prefix, member_id="m2")
    with db.transaction() as s:
        apikeys.authenticate(s, issued.plaintext)


def test_rotation_overlap_and_key_limit(db: Database) -> None:
    with db.transaction() as s:
        first = apikeys.issue_key(s, "m1")
        second, revoked = apikeys.rotate_key(s, "m1", overlap_s=60)
    assert revoked == [first.prefix]
    with db.transaction() as s:
        apikeys.authenticate(s, first.plaintext)  # inside the overlap
        apikeys.authenticate(s, second.plaintext)
        row = apikeys.get_key(s, first.prefix)
        assert not apikeys.is_active(row, apikeys.utcnow() + timedelta(seconds=61))
        third, revoked = apikeys.rotate_key(s, "m1", old_prefix=second.prefix)
        assert revoked == [second.prefix]
    with db.transaction() as s:
        with pytest.raises(AuthenticationError):
            apikeys.authenticate(s, second.plaintext)
        apikeys.authenticate(s, third.plaintext)
        for _ in range(apikeys.ACTIVE_KEYS_PER_MEMBER_MAX - 2):  # first (overlap) and third are active
            apikeys.issue_key(s, "m1")
        with pytest.raises(InvalidStateError):
            apikeys.issue_key(s, "m1")
        apikeys.rotate_key(s, "m1")  # rotation still works at the limit
