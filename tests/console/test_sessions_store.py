"""Console sessions in the store (SQLite and PostgreSQL): a key opens a session only when the API
would accept it; only the token's hash is stored; a session ends at its expiry, at sign-out and
when the key it signed in with is revoked; the CSRF token is compared exactly."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from sqlalchemy import select

from settlement.core.errors import AuthenticationError
from settlement.domains.members import apikeys, console_sessions
from settlement.store.db import Database, migrate
from settlement.store.models import ConsoleSession, Member, utcnow


@pytest.fixture
def db(database_url: str):  # type: ignore[no-untyped-def]
    migrate(database_url)
    database = Database(database_url)
    with database.transaction() as s:
        s.add(Member(id="m1", onchain_id="0x" + hashlib.sha256(b"m1").hexdigest(), name="m1", country="SG",
                     roles=["finance"], status="active"))
    yield database
    database.dispose()


def _key(db: Database) -> apikeys.IssuedKey:
    with db.transaction() as s:
        return apikeys.issue_key(s, "m1", label="console")


def test_a_session_stores_only_the_token_hash_and_resolves_to_its_member(db: Database) -> None:
    key = _key(db)
    with db.transaction() as s:
        token, view = console_sessions.start_session(s, key.plaintext)
    with db.read() as s:
        rows = list(s.scalars(select(ConsoleSession)))
        assert [r.token_hash for r in rows] == [hashlib.sha256(token.encode()).hexdigest()]
        assert all(token not in str(v) and key.plaintext not in str(v)
                   for r in rows for v in (r.token_hash, r.key_prefix, r.csrf_token, r.member_id))
        resolved = console_sessions.resolve_session(s, token)
    assert (resolved.member_id, resolved.key_prefix) == ("m1", key.prefix)
    assert console_sessions.csrf_matches(resolved, view.csrf_token)
    assert not console_sessions.csrf_matches(resolved, view.csrf_token[:-1] + "x")
    assert not console_sessions.csrf_matches(resolved, None)
    assert view.csrf_token not in repr(view)


def test_bad_keys_open_no_session(db: Database) -> None:
    key = _key(db)
    for presented in ("", "lk_bad", key.plaintext[:-2] + "zz"):
        with db.transaction() as s, pytest.raises(AuthenticationError):
            console_sessions.start_session(s, presented)
    with db.transaction() as s:
        apikeys.revoke_key(s, key.prefix)
    with db.transaction() as s, pytest.raises(AuthenticationError):
        console_sessions.start_session(s, key.plaintext)
    with db.read() as s:
        assert s.scalar(select(ConsoleSession)) is None


def test_a_session_ends_at_expiry_at_sign_out_and_with_its_key(db: Database) -> None:
    key = _key(db)
    now = utcnow()
    with db.transaction() as s:
        token, view = console_sessions.start_session(s, key.plaintext, ttl_s=600, now=now)
    with db.read() as s:
        console_sessions.resolve_session(s, token, now=now + timedelta(seconds=599))
        with pytest.raises(AuthenticationError):
            console_sessions.resolve_session(s, token, now=now + timedelta(seconds=600))
    with db.transaction() as s:
        second, _ = console_sessions.start_session(s, key.plaintext)
        third, _ = console_sessions.start_session(s, key.plaintext)
    with db.transaction() as s:
        assert console_sessions.end_session(s, second)
        assert not console_sessions.end_session(s, second)  # already ended
    with db.read() as s:
        with pytest.raises(AuthenticationError):
            console_sessions.resolve_session(s, second)
        console_sessions.resolve_session(s, third)  # other sessions live on
    with db.transaction() as s:
        apikeys.revoke_key(s, key.prefix)
    with db.read() as s, pytest.raises(AuthenticationError):
        console_sessions.resolve_session(s, third)
    with db.read() as s:
        for junk in (None, "", "x" * 500, token + "x"):
            with pytest.raises(AuthenticationError):
                console_sessions.resolve_session(s, junk)
