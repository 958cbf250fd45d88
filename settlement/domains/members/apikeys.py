"""API keys: issued once, stored as a SHA-256, looked up by a short public prefix.

A key reads ``lk_<prefix>_<secret>``: ``prefix`` is 8 random characters that identify the row
(safe to log and to show), ``secret`` is 32 random bytes in base64url (256 bits). Keys carry far
more than 128 random bits, so a fast hash is enough: nothing can be brute-forced from it. Only
the prefix is ever logged or recorded in a security event.

Revocation sets ``revoked_at``; a key revoked at a future instant stays valid until then, which is
how a rotation leaves an overlap for clients to switch over.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from settlement.store.paging import keyset_page
from settlement.core.errors import (
    AuthenticationError,
    InvalidStateError,
    UnknownApiKeyError,
    UnknownMemberError,
    ValidationError,
)
from settlement.domains.anchoring import digest_changed
from settlement.store.models import ApiKey, Member, SecurityEvent, utcnow

__all__ = [
    "ACTIVE_KEYS_PER_MEMBER_MAX",
    "KEY_LEN_MAX",
    "KEY_SCHEME",
    "PREFIX_LEN",
    "ROTATION_OVERLAP_S_MAX",
    "SECRET_BYTES",
    "IssuedKey",
    "authenticate",
    "get_key",
    "hash_key",
    "is_active",
    "issue_key",
    "list_keys",
    "parse_key",
    "record_security_event",
    "revoke_key",
    "rotate_key",
]

KEY_SCHEME = "lk"
PREFIX_LEN = 8
PREFIX_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no look-alikes (l/1, o/0)
SECRET_BYTES = 32
# "lk_" + 8 + "_" + base64url(32 bytes) = 55 characters; anything much longer is not a key.
KEY_LEN_MAX = 100
LABEL_LEN_MAX = 100
ROTATION_OVERLAP_S_MAX = 7 * 24 * 3600
# A member holds at most this many usable keys: rotation, not accumulation.
ACTIVE_KEYS_PER_MEMBER_MAX = 10
PREFIX_ATTEMPTS_MAX = 8
# last_used_at is a hint for operators, not an audit trail: written at most once a minute per key.
LAST_USED_RESOLUTION_S = 60
SECURITY_DETAIL_LEN_MAX = 500
SECURITY_SOURCE_LEN_MAX = 200

# Compared against when a prefix is unknown, so that both paths cost one hash and one compare.
_DUMMY_HASH = hashlib.sha256(b"no such key").hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    """A freshly issued key. ``plaintext`` exists only here: show it once, never store or log it."""

    prefix: str
    plaintext: str
    member_id: str
    label: str
    created_at: datetime

    def __repr__(self) -> str:
        return f"IssuedKey(prefix={self.prefix!r}, member_id={self.member_id!r}, plaintext=<hidden>)"




def _aware(dt: datetime | None) -> datetime | None:
    # SQLite hands back naive datetimes; the store writes UTC only.
    if dt is None or dt.tzinfo is not None:
        return dt
    return dt.replace(tzinfo=UTC)


def hash_key(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode("utf-8")).hexdigest()


def parse_key(presented: str) -> str | None:
    """The prefix of a well-formed key, else None (never raises on any input)."""
    if not presented or len(presented) > KEY_LEN_MAX:
        return None
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_SCHEME:
        return None
    prefix, secret = parts[1], parts[2]
    if len(prefix) != PREFIX_LEN or any(c not in PREFIX_ALPHABET for c in prefix):
        return None
    if len(secret) < 22:  # < 128 bits of base64url: not one of ours
        return None
    return prefix


def is_active(key: ApiKey, now: datetime | None = None) -> bool:
    revoked_at = _aware(key.revoked_at)
    return revoked_at is None or revoked_at > (now or utcnow())


def _new_prefix() -> str:
    return "".join(secrets.choice(PREFIX_ALPHABET) for _ in range(PREFIX_LEN))


def _check_label(label: str) -> str:
    if len(label) > LABEL_LEN_MAX or any(ord(c) < 32 for c in label):
        raise ValidationError(f"label must be at most {LABEL_LEN_MAX} printable characters")
    return label


def issue_key(session: Session, member_id: str, *, label: str = "") -> IssuedKey:
    """A new key for ``member_id``, added to ``session``; the plaintext is returned only here."""
    if session.get(Member, member_id) is None:
        raise UnknownMemberError(f"no member {member_id!r}", member_id=member_id)
    return _issue(session, member_id, label, rotating_out=frozenset())


def _issue(session: Session, member_id: str, label: str, rotating_out: frozenset[str]) -> IssuedKey:
    label = _check_label(label)
    now = utcnow()
    q = select(func.count()).select_from(ApiKey).where(
        ApiKey.member_id == member_id, (ApiKey.revoked_at.is_(None)) | (ApiKey.revoked_at > now))
    if rotating_out:  # keys in their rotation overlap do not count against the limit
        q = q.where(ApiKey.prefix.not_in(rotating_out))
    if (session.scalar(q) or 0) >= ACTIVE_KEYS_PER_MEMBER_MAX:
        raise InvalidStateError(f"member {member_id!r} already holds {ACTIVE_KEYS_PER_MEMBER_MAX} active keys; "
                                f"revoke or rotate one first", member_id=member_id)
    for _ in range(PREFIX_ATTEMPTS_MAX):
        prefix = _new_prefix()
        if session.scalar(select(ApiKey.id).where(ApiKey.prefix == prefix)) is None:
            break
    else:  # 40 random bits colliding 8 times in a row: the random source is broken
        raise RuntimeError("could not draw an unused API key prefix")
    plaintext = f"{KEY_SCHEME}_{prefix}_{secrets.token_urlsafe(SECRET_BYTES)}"
    key = ApiKey(member_id=member_id, prefix=prefix, key_hash=hash_key(plaintext), label=label, created_at=now)
    session.add(key)
    session.flush()
    digest_changed(session, "apikey", key)
    return IssuedKey(prefix=prefix, plaintext=plaintext, member_id=member_id, label=label, created_at=now)


def get_key(session: Session, prefix: str) -> ApiKey:
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    if key is None:
        raise UnknownApiKeyError(f"no API key with prefix {prefix!r}", prefix=prefix)
    return key


KEY_LIST_LIMIT_MAX = 200


def list_keys(session: Session, member_id: str, *, limit: int = 100,
              cursor: str | None = None) -> tuple[list[ApiKey], str | None]:
    """A page of the member's keys, newest first, and the next page's cursor (``store.paging``)."""
    q = select(ApiKey).where(ApiKey.member_id == member_id)
    return keyset_page(session, q, ApiKey.created_at, ApiKey.id, limit, cursor, limit_max=KEY_LIST_LIMIT_MAX)


def revoke_key(session: Session, prefix: str, *, member_id: str | None = None,
               at: datetime | None = None) -> ApiKey:
    """Revoke key ``prefix`` now (or at ``at``). With ``member_id``, only that member's key is found:
    another member's prefix answers exactly like an unknown one."""
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix).with_for_update())
    if key is None or (member_id is not None and key.member_id != member_id):
        raise UnknownApiKeyError(f"no API key with prefix {prefix!r}", prefix=prefix)
    now = utcnow()
    when = at or now
    current = _aware(key.revoked_at)
    if current is not None and current <= now:
        raise InvalidStateError(f"API key {prefix} is already revoked", prefix=prefix)
    if current is None or when < current:  # revocation only ever moves earlier
        key.revoked_at = when
        digest_changed(session, "apikey", key)
    session.flush()
    return key


def rotate_key(session: Session, member_id: str, *, old_prefix: str | None = None, overlap_s: int = 0,
               label: str = "") -> tuple[IssuedKey, list[str]]:
    """Issue a new key and revoke the old one (``old_prefix``), or all the member's active keys,
    ``overlap_s`` seconds from now. Returns the new key and the prefixes being revoked."""
    if not 0 <= overlap_s <= ROTATION_OVERLAP_S_MAX:
        raise ValidationError(f"overlap_s must be within 0..{ROTATION_OVERLAP_S_MAX}")
    if session.get(Member, member_id) is None:
        raise UnknownMemberError(f"no member {member_id!r}", member_id=member_id)
    now = utcnow()
    if old_prefix is not None:
        olds = [get_key(session, old_prefix)]
        if olds[0].member_id != member_id:
            raise UnknownApiKeyError(f"no API key with prefix {old_prefix!r}", prefix=old_prefix)
        if not is_active(olds[0], now):
            raise InvalidStateError(f"API key {old_prefix} is already revoked", prefix=old_prefix)
    else:
        olds = [k for k in session.scalars(select(ApiKey).where(ApiKey.member_id == member_id).order_by(ApiKey.id))
                if is_active(k, now)]
    at = now + timedelta(seconds=overlap_s)
    for old in olds:
        current = _aware(old.revoked_at)
        if current is None or at < current:
            old.revoked_at = at
            digest_changed(session, "apikey", old)
    session.flush()
    issued = _issue(session, member_id, label, rotating_out=frozenset(k.prefix for k in olds))
    return issued, [k.prefix for k in olds]


def authenticate(session: Session, presented: str, *, touch: bool = True) -> ApiKey:
    """The active key row matching ``presented``; AuthenticationError (with ``reason`` and, when
    well-formed, ``prefix``) otherwise. Touches ``last_used_at`` at most once a minute (with
    ``touch``; else the caller does it with :func:`touch_last_used` when :func:`touch_due`)."""
    prefix = parse_key(presented)
    if prefix is None:
        raise AuthenticationError("malformed API key", reason="malformed")
    key = session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))
    expected = key.key_hash if key is not None else _DUMMY_HASH
    matches = hmac.compare_digest(hash_key(presented), expected)
    if key is None or not matches:
        raise AuthenticationError("invalid API key", reason="invalid", prefix=prefix)
    now = utcnow()
    if not is_active(key, now):
        raise AuthenticationError("revoked API key", reason="revoked", prefix=prefix)
    if touch and touch_due(key, now):
        key.last_used_at = now
    return key


def touch_due(key: ApiKey, now: datetime) -> bool:
    """Is ``last_used_at`` older than its resolution (so worth a write)?"""
    last = _aware(key.last_used_at)
    return last is None or (now - last).total_seconds() >= LAST_USED_RESOLUTION_S


def touch_last_used(session: Session, prefix: str, now: datetime) -> None:
    session.execute(update(ApiKey).where(ApiKey.prefix == prefix).values(last_used_at=now))


def record_security_event(session: Session, kind: str, *, source: str = "", detail: str = "") -> None:
    """Keep a rejected request for review. Callers pass prefixes, never keys."""
    session.add(SecurityEvent(kind=kind[:64], source=source[:SECURITY_SOURCE_LEN_MAX],
                              detail=detail[:SECURITY_DETAIL_LEN_MAX]))
