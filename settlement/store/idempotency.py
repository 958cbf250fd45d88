"""Idempotent requests: the same Idempotency-Key and body give the same answer, once written.

The answer is stored in :class:`IdempotencyRecord` in the SAME transaction as the work it
describes, so either both are committed or neither is; a refused request stores nothing (and may
be retried). Two concurrent requests with one key: the second waits on the unique key, fails
its insert, and replays the first one's answer.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from settlement.core.errors import IdempotencyKeyRequiredError, IdempotencyKeyReusedError
from settlement.store.db import Database
from settlement.store.models import IdempotencyRecord

__all__ = ["KEY_LEN_MAX", "check_key", "lookup", "remember", "request_hash", "run"]

KEY_LEN_MAX = 200
_ATTEMPTS_MAX = 2


def check_key(key: str | None) -> str:
    if key is None or not 1 <= len(key) <= KEY_LEN_MAX or not key.isprintable() or not key.isascii():
        raise IdempotencyKeyRequiredError(
            f"send an Idempotency-Key header of 1-{KEY_LEN_MAX} printable ASCII characters (e.g. a UUID)")
    return key


def request_hash(operation: str, body: Any) -> str:
    """SHA-256 of the operation and the canonical JSON of the parsed body (so spacing and key
    order do not matter, but every value does)."""
    canonical = json.dumps([operation, body], sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256(canonical.encode()).hexdigest()


def lookup(db: Database, member_id: str, key: str, req_hash: str) -> tuple[int, dict] | None:
    """The stored answer for (member, key), read without the write lock; None when there is
    none yet. Lets a caller skip work a replay does not need; :func:`run` checks again."""
    with db.read() as session:
        record = session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.member_id == member_id,
                                                                IdempotencyRecord.key == key))
        if record is None:
            return None
        if record.request_hash != req_hash:
            raise IdempotencyKeyReusedError("this Idempotency-Key was used with another request; use a new key",
                                            idempotency_key=key[:KEY_LEN_MAX])
        return record.status_code, record.response


def run(db: Database, member_id: str, key: str, req_hash: str,
        work: Callable[[Session], tuple[int, dict]]) -> tuple[int, dict, bool]:
    """(status, body, replayed): the stored answer for (member, key), or ``work``'s, stored."""
    for attempt in range(_ATTEMPTS_MAX):
        try:
            with db.transaction() as session:
                record = session.scalar(select(IdempotencyRecord).where(IdempotencyRecord.member_id == member_id,
                                                                        IdempotencyRecord.key == key))
                if record is not None:
                    if record.request_hash != req_hash:
                        raise IdempotencyKeyReusedError(
                            "this Idempotency-Key was used with another request; use a new key",
                            idempotency_key=key[:KEY_LEN_MAX])
                    return record.status_code, record.response, True
                status, body = work(session)
                session.add(IdempotencyRecord(member_id=member_id, key=key, request_hash=req_hash,
                                              status_code=status, response=body))
                session.flush()
                return status, body, False
        except IntegrityError:
            if attempt + 1 == _ATTEMPTS_MAX:
                raise
    raise RuntimeError("idempotent request not settled after retries")


def remember(db: Database, member_id: str, key: str, req_hash: str, status: int, body: dict) -> tuple[int, dict, bool]:
    """Store the answer of work done in transactions of its own (a reconciliation run, a
    statement import: too long, or not one transaction), right after it. Not atomic with the work:
    a crash between the two, or a concurrent request with the same key, may do the work twice (the
    second then answers the first one's stored answer, ``replayed`` True)."""
    try:
        with db.transaction() as session:
            session.add(IdempotencyRecord(member_id=member_id, key=key, request_hash=req_hash,
                                          status_code=status, response=body))
            session.flush()
        return status, body, False
    except IntegrityError:
        stored = lookup(db, member_id, key, req_hash)
        if stored is None:
            raise
        return stored[0], stored[1], True
