"""Request dependencies, as ``Annotated`` aliases that keep handlers short.

- ``RuntimeDep``: the app's :class:`~settlement.runtime.Runtime`.
- ``DbSession``: a session in one database transaction, committed when the handler returns and
  before the response is sent (rolled back on any error).
- ``Caller``: the authenticated member, whatever its status (``Authorization: Bearer <key>``).
- ``CurrentMember``: an authenticated, active member.
- ``require_roles("finance", ...)``: a dependency admitting active members holding at least one of
  the roles; ``OperatorMember`` is ``require_roles("operator")``.

Roles and status come from :class:`~settlement.domains.members.service.RegistryView` (the on-chain registry, with
a short cache and the mirror as fallback). Every authenticated answer says which decided in
``Ledger-Roles-Source`` (chain | mirror | merged); when the node could not be read (timeout
``LEDGER_REQUEST_RPC_TIMEOUT_S``), ``Ledger-Mirror-Staleness: chain-unreachable; block=<the
follower's checkpoint>; age_s=<seconds since it moved>``. Failures are recorded as security events by key
prefix; keys are never logged. Failures are counted per client address
(:mod:`ledger_api.throttle`): past the limit they are answered 429 with ``Retry-After``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Annotated, NoReturn

from fastapi import Depends, Request, Response
from sqlalchemy.orm import Session

from settlement.core.errors import (
    AuthenticationError,
    AuthenticationThrottledError,
    ForbiddenError,
    MemberSuspendedError,
    UnknownMemberError,
)
from settlement.domains.members import ROLE_NAMES, MemberView, RegistryView, apikeys
from settlement.runtime import Runtime

__all__ = [
    "Caller",
    "CurrentMember",
    "DbSession",
    "OperatorMember",
    "Principal",
    "RuntimeDep",
    "authenticate_caller",
    "authentication_failed",
    "principal_of",
    "current_member",
    "get_registry_view",
    "get_runtime",
    "get_session",
    "require_roles",
]

log = logging.getLogger("ledger_api.auth")

AUTH_HEADER_LEN_MAX = 200


@dataclass(frozen=True)
class Principal:
    """Who is calling: the member, its effective roles and status, and the key prefix used."""

    member_id: str
    name: str
    roles: frozenset[str]
    status: str
    key_prefix: str
    source: str  # where roles/status came from: chain | mirror | merged
    # The node could not be read: the mirror decided, as of the follower's checkpoint.
    fallback: bool = False
    mirror_block: int | None = None
    mirror_age_s: float | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"

    def has_any(self, roles: frozenset[str]) -> bool:
        return bool(self.roles & roles)


def get_runtime(request: Request) -> Runtime:
    return request.app.state.runtime


def get_registry_view(request: Request) -> RegistryView:
    return request.app.state.registry_view


RuntimeDep = Annotated[Runtime, Depends(get_runtime)]


def get_session(runtime: RuntimeDep) -> Iterator[Session]:
    with runtime.db.transaction() as session:
        yield session


# scope="function": the transaction ends (commits) before the response is sent, so a client never
# sees a success whose commit failed.
DbSession = Annotated[Session, Depends(get_session, scope="function")]


def _client(request: Request) -> str:
    return request.client.host if request.client else ""


def _security_event(runtime: Runtime, request: Request, kind: str, detail: str) -> None:
    try:
        with runtime.db.transaction() as session:
            apikeys.record_security_event(session, kind, source=_client(request),
                                          detail=f"{request.method} {request.url.path[:200]} {detail}")
    except Exception:  # recording must not turn a 401 into a 500
        log.exception("could not record security event %s", kind)


def _auth_failed(request: Request, runtime: Runtime, kind: str, detail: str, error: AuthenticationError) -> NoReturn:
    """Record a failed authentication and raise ``error``, or, past the client's limit, 429."""
    throttle = getattr(request.app.state, "auth_throttle", None)
    verdict = throttle.failed(_client(request)) if throttle is not None else None
    if verdict is None or verdict.retry_after_s is None:
        _security_event(runtime, request, kind, detail)
        raise error
    if verdict.first_throttled:  # one event per window, not one store write per failure
        _security_event(runtime, request, "auth.throttled",
                        f"more than {throttle.failures_max} failed authentications in {throttle.window_s:g} s")
    raise AuthenticationThrottledError(
        f"too many failed authentications from this address; retry in {verdict.retry_after_s} s",
        retry_after_s=verdict.retry_after_s)


def authentication_failed(request: Request, runtime: Runtime, kind: str, detail: str,
                          error: AuthenticationError) -> NoReturn:
    """Record a failed authentication of another kind than a bearer key (the console's sign-in)
    under the same per-client throttle: ``error``, or 429 past the limit. Never pass a key."""
    _auth_failed(request, runtime, kind, detail, error)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip() or len(header) > AUTH_HEADER_LEN_MAX:
        return ""
    return token.strip()


ROLES_SOURCE_HEADER = "Ledger-Roles-Source"
MIRROR_STALENESS_HEADER = "Ledger-Mirror-Staleness"


def _report_source(response: Response, view: MemberView) -> None:
    """Say where the caller's roles came from; when the node could not be read, how stale the
    mirror that decided may be (docs/operations.md)."""
    response.headers[ROLES_SOURCE_HEADER] = view.source
    if view.fallback:
        block = "unknown" if view.mirror_block is None else str(view.mirror_block)
        age = "unknown" if view.mirror_age_s is None else f"{view.mirror_age_s:.1f}"
        response.headers[MIRROR_STALENESS_HEADER] = f"chain-unreachable; block={block}; age_s={age}"


def authenticate_caller(request: Request, response: Response, runtime: RuntimeDep,
                        registry: Annotated[RegistryView, Depends(get_registry_view)]) -> Principal:
    token = _bearer(request)
    if token is None:
        _auth_failed(runtime=runtime, request=request, kind="auth.missing", detail="no Authorization header",
                     error=AuthenticationError("send the API key as Authorization: Bearer <key>"))
    prefix = apikeys.parse_key(token) if token else None
    try:
        # A read: authenticating must not queue every request behind the store's writer. The
        # last-used stamp (once a minute per key) is a separate small write.
        with runtime.db.read() as session:
            key = apikeys.authenticate(session, token, touch=False)
            member_id, key_prefix = key.member_id, key.prefix
            now = apikeys.utcnow()
            stamp = apikeys.touch_due(key, now)
        if stamp:
            with runtime.db.transaction() as session:
                apikeys.touch_last_used(session, key_prefix, now)
    except AuthenticationError as exc:
        reason = exc.extra.get("reason", "invalid")
        log.info("rejected API key (prefix %s): %s", prefix or "-", reason)
        _auth_failed(request, runtime, f"auth.{reason}_key", f"prefix={prefix or '-'}",
                     AuthenticationError("the API key is missing, malformed, unknown or revoked", reason=reason))
    return principal_of(request, response, runtime, registry, member_id, key_prefix)


def principal_of(request: Request, response: Response, runtime: Runtime, registry: RegistryView, member_id: str,
                 key_prefix: str) -> Principal:
    """The Principal of a member whose key (``key_prefix``) was checked, with its roles and status
    from the registry view. The API (a bearer key) and the web console (a session opened with a
    key) both end here, so both see the same roles and status."""
    try:
        view: MemberView = registry.view(member_id)
    except UnknownMemberError:  # a key whose member row vanished: treat as no key at all
        _auth_failed(request, runtime, "auth.orphan_key", f"prefix={key_prefix}",
                     AuthenticationError("the API key is missing, malformed, unknown or revoked", reason="invalid"))
    request.state.member_id = member_id
    _report_source(response, view)
    return Principal(member_id=member_id, name=view.name, roles=view.roles, status=view.status,
                     key_prefix=key_prefix, source=view.source, fallback=view.fallback,
                     mirror_block=view.mirror_block, mirror_age_s=view.mirror_age_s)


Caller = Annotated[Principal, Depends(authenticate_caller)]


def current_member(request: Request, runtime: RuntimeDep, caller: Caller) -> Principal:
    if not caller.active:
        _security_event(runtime, request, "authz.suspended", f"member={caller.member_id} prefix={caller.key_prefix}")
        raise MemberSuspendedError(f"member {caller.member_id} is suspended", member_id=caller.member_id)
    return caller


CurrentMember = Annotated[Principal, Depends(current_member)]


def require_roles(*roles: str) -> Callable[..., Principal]:
    """A dependency admitting an active member that holds at least one of ``roles``."""
    unknown = [r for r in roles if r not in ROLE_NAMES]
    if not roles or unknown:
        raise ValueError(f"require_roles needs known roles, got {roles!r}")
    wanted = frozenset(roles)

    def dependency(request: Request, runtime: RuntimeDep, member: CurrentMember) -> Principal:
        if not member.has_any(wanted):
            _security_event(runtime, request, "authz.forbidden",
                            f"member={member.member_id} needs one of {','.join(sorted(wanted))}")
            raise ForbiddenError(f"this needs one of the roles: {', '.join(sorted(wanted))}",
                                 required_roles=sorted(wanted))
        return member

    dependency.__name__ = "require_" + "_or_".join(sorted(wanted))
    return dependency


OperatorMember = Annotated[Principal, Depends(require_roles("operator"))]
