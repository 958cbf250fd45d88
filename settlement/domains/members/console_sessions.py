"""Web console sessions: an API key presented once becomes a random session token.

The console's sign-in checks the key exactly as the API does (:func:`apikeys.authenticate`) and
then stores a session row keyed by the SHA-256 of a fresh 256-bit token (the token lives only in
the browser's HttpOnly cookie). Each request resolves the token to the member and the key prefix
it signed in with; a session ends when it expires (``SESSION_TTL_S`` from sign-in, a hard bound),
when it is signed out (revoked), or when the key it signed in with is revoked. The CSRF
(synchronizer) token is drawn with the session and compared in constant time on every POST.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from settlement.domains.members.apikeys import authenticate, get_key, is_active
from settlement.core.errors import AuthenticationError, UnknownApiKeyError
from settlement.store.models import ConsoleSession, utcnow

__all__ = ["SESSION_TTL_S", "SESSION_TTL_S_MAX", "TOKEN_LEN_MAX", "ConsoleSessionView", "csrf_matches",
           "end_session", "resolve_session", "start_session"]

SESSION_TTL_S = 8 * 3600  # a working day; sign in again after
SESSION_TTL_S_MAX = 7 * 24 * 3600
TOKEN_BYTES = 32
TOKEN_LEN_MAX = 100  # a cookie much longer than a token is not one of ours
EXPIRED_PURGE_MAX = 1000  # rows of long-expired sessions removed per sign-in, at most


@dataclass(frozen=True)
class ConsoleSessionView:
    """A live session: who signed in, with which key (by prefix), its CSRF token and expiry."""

    member_id: str
    key_prefix: str
    csrf_token: str
    expires_at: datetime

    def __repr__(self) -> str:
        return f"ConsoleSessionView(member_id={self.member_id!r}, key_prefix={self.key_prefix!r}, csrf=<hidden>)"


def _aware(dt: datetime | None) -> datetime | None:
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)  # SQLite hands back naive datetimes; the store writes UTC only


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def start_session(session: Session, presented_key: str, *, ttl_s: int = SESSION_TTL_S,
                  now: datetime | None = None) -> tuple[str, ConsoleSessionView]:
    """Check ``presented_key`` like the API does and open a session for its member. Returns the
    session token (for the cookie only: never stored, never logged) and the session.
    Raises AuthenticationError for a malformed, unknown or revoked key."""
    if not 60 <= ttl_s <= SESSION_TTL_S_MAX:
        raise ValueError(f"ttl_s must be within 60..{SESSION_TTL_S_MAX}")
    key = authenticate(session, presented_key, touch=True)
    now = now or utcnow()
    session.execute(delete(ConsoleSession).where(ConsoleSession.token_hash.in_(
        select(ConsoleSession.token_hash).where(ConsoleSession.expires_at < now - timedelta(days=1))
        .limit(EXPIRED_PURGE_MAX).scalar_subquery())))
    token = secrets.token_urlsafe(TOKEN_BYTES)
    row = ConsoleSession(token_hash=_hash(token), member_id=key.member_id, key_prefix=key.prefix,
                         csrf_token=secrets.token_urlsafe(TOKEN_BYTES), created_at=now,
                         expires_at=now + timedelta(seconds=ttl_s))
    session.add(row)
    session.flush()
    return token, ConsoleSessionView(row.member_id, row.key_prefix, row.csrf_token, row.expires_at)


def resolve_session(session: Session, token: str | None, *, now: datetime | None = None) -> ConsoleSessionView:
    """The live session of ``token``; AuthenticationError (reason ``session``) when there is none:
    no or malformed token, unknown, signed out, expired, or its API key revoked since."""
    if not token or len(token) > TOKEN_LEN_MAX:
        raise AuthenticationError("sign in to the console", reason="session")
    row = session.get(ConsoleSession, _hash(token))
    now = now or utcnow()
    if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now:
        raise AuthenticationError("the console session is unknown, signed out or expired", reason="session")
    try:
        key = get_key(session, row.key_prefix)
    except UnknownApiKeyError:
        raise AuthenticationError("the console session's API key is gone", reason="session") from None
    if key.member_id != row.member_id or not is_active(key, now):
        raise AuthenticationError("the API key this session signed in with is revoked", reason="session")
    return ConsoleSessionView(row.member_id, row.key_prefix, row.csrf_token, _aware(row.expires_at))


def end_session(session: Session, token: str | None, *, now: datetime | None = None) -> bool:
    """Sign out: revoke the session of ``token`` (True if one was live)."""
    if not token or len(token) > TOKEN_LEN_MAX:
        return False
    row = session.get(ConsoleSession, _hash(token))
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now or utcnow()
    session.flush()
    return True


def csrf_matches(view: ConsoleSessionView, presented: str | None) -> bool:
    """Constant-time comparison of a form's CSRF token with the session's."""
    if not presented or len(presented) > TOKEN_LEN_MAX:
        return False
    return hmac.compare_digest(view.csrf_token.encode(), presented.encode())
