"""Sign-in, sign-out, the language switch and the overview page."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from ledger_api.console import i18n
from ledger_api.console.web import (
    BASE,
    CSRF_FIELD,
    SESSION_COOKIE,
    SIGNIN_CSRF_COOKIE,
    Console,
    Ctx,
    Public,
    page_router,
    render,
    safe_next,
)
from ledger_api.deps import authentication_failed
from settlement.core.errors import AuthenticationError, ForbiddenError
from settlement.domains.members import apikeys, console_sessions

router = page_router()

NextQuery = Annotated[str | None, Query(alias="next", max_length=500)]
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _signin_page(ctx: Ctx, next_url: str, *, error: str | None = None, status_code: int = 200) -> HTMLResponse:
    token = ctx.request.cookies.get(SIGNIN_CSRF_COOKIE) or secrets.token_urlsafe(24)
    ctx.csrf = token
    response = render(ctx, "sign_in.html", status_code=status_code, next_url=next_url, error=error)
    response.set_cookie(SIGNIN_CSRF_COOKIE, token, httponly=True, samesite="strict", secure=_secure(ctx.request),
                        path=BASE, max_age=3600)
    return response


@router.get("/sign-in")
def sign_in_page(ctx: Public, next_url: NextQuery = None) -> HTMLResponse:
    return _signin_page(ctx, safe_next(next_url))


@router.post("/sign-in")
async def sign_in(ctx: Public) -> Response:
    request = ctx.request
    form = await request.form(max_files=0, max_fields=10)
    next_url = safe_next(form.get("next") if isinstance(form.get("next"), str) else None)
    cookie_token = request.cookies.get(SIGNIN_CSRF_COOKIE)
    presented = form.get(CSRF_FIELD)
    if not cookie_token or not isinstance(presented, str) or not secrets.compare_digest(cookie_token, presented):
        raise ForbiddenError("the sign-in form's CSRF token is missing or wrong; reload the page", reason="csrf")
    key = form.get("api_key")
    key = key.strip() if isinstance(key, str) else ""
    try:
        with ctx.runtime.db.transaction() as session:
            token, view = console_sessions.start_session(session, key, ttl_s=request.app.state.console_session_ttl_s)
    except AuthenticationError as exc:
        reason = exc.extra.get("reason", "invalid")
        prefix = apikeys.parse_key(key)
        try:  # recorded and throttled like a bad bearer key (the key itself is never logged); past
            # the client's limit this raises the 429 problem instead
            authentication_failed(request, ctx.runtime, f"console.{reason}_key", f"prefix={prefix or '-'}",
                                  AuthenticationError("the API key is missing, malformed, unknown or revoked",
                                                      reason=reason))
        except AuthenticationError:
            return _signin_page(ctx, next_url, error=ctx.t("signin.bad_key"), status_code=401)
    response = RedirectResponse(next_url, status_code=303)
    max_age = max(60, int((view.expires_at - apikeys.utcnow()).total_seconds()))
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=_secure(request),
                        path=BASE, max_age=max_age)
    response.delete_cookie(SIGNIN_CSRF_COOKIE, path=BASE)
    return response


@router.post("/sign-out")
def sign_out(ctx: Console) -> Response:
    with ctx.runtime.db.transaction() as session:
        console_sessions.end_session(session, ctx.token)
    response = RedirectResponse(f"{BASE}/sign-in", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path=BASE, httponly=True, samesite="strict",
                           secure=_secure(ctx.request))
    return response


@router.get("/lang/{lang}")
def switch_language(lang: str, request: Request, next_url: NextQuery = None) -> Response:
    """Set the language cookie (a preference, not a state change of the ledger) and go back."""
    chosen = lang if lang in i18n.LANGUAGES else i18n.DEFAULT_LANGUAGE
    response = RedirectResponse(safe_next(next_url), status_code=303)
    response.set_cookie(i18n.LANG_COOKIE, chosen, samesite="strict", secure=_secure(request), path=BASE,
                        max_age=LANG_COOKIE_MAX_AGE_S)
    return response


@router.get("")
def console_root() -> Response:
    return RedirectResponse(f"{BASE}/", status_code=307)


@router.get("/")
def overview(ctx: Console) -> HTMLResponse:
    return render(ctx, "overview.html")
