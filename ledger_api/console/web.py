"""What every console page needs: the signed-in member, the CSRF check, the language, rendering,
and :func:`invoke`, which calls an API route's own handler with the API's own authorisation.

- **Session.** The ``ledger_console`` cookie (HttpOnly, SameSite=Strict, Secure on https, path
  ``/console``) holds a random token; :mod:`settlement.domains.members.console_sessions` resolves
  it to the member and the key prefix it signed in with, and :func:`ledger_api.deps.principal_of`
  turns that into the same :class:`~ledger_api.deps.Principal` a bearer key gives (roles and
  status from the on-chain registry view).
- **CSRF.** Every POST carries the session's synchronizer token in the ``csrf`` form field,
  compared in constant time; the sign-in form (no session yet) uses a double-submit cookie.
- **Same code, same rules.** A page never queries the store itself for member data: it calls the
  API route's handler function (:func:`invoke`), whose ``Principal`` parameter is resolved by the
  very dependency the API declares (``require_roles(...)``, ``current_member``), so roles,
  suspension and tenancy (another member's id answers 404) are the API's.
- **Errors.** :class:`ConsoleRoute` renders a LedgerError or a request validation error as an
  HTML page with the problem's status, title and detail (the API answers problem+json).
"""

from __future__ import annotations

import inspect
import json
import logging
import secrets
import typing
from collections.abc import Callable, Coroutine
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin
from urllib.parse import quote, urlsplit

import pydantic
from fastapi import APIRouter, Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.params import Depends as DependsParam
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.datastructures import FormData

from ledger_api.console import charts, i18n
from ledger_api.deps import (
    Principal,
    authenticate_caller,
    current_member,
    get_registry_view,
    get_runtime,
    get_session,
    principal_of,
)
from settlement.core.errors import (
    AuthenticationError,
    ForbiddenError,
    LedgerError,
    SignatureExpiredError,
    SignatureInvalidError,
)
from settlement.domains.members import console_sessions
from settlement.runtime import Runtime

__all__ = ["ASSETS_PATH", "BASE", "CSRF_FIELD", "SESSION_COOKIE", "Console", "ConsoleRoute", "Ctx", "FieldErrors",
           "Public", "authorised_for", "console_csp", "field_errors_of", "invoke", "new_idempotency_key", "page_router",
           "js_safe", "query_of", "render", "require_session", "safe_next", "shown_on_form", "signature_errors_of",
           "typed_json"]

log = logging.getLogger("ledger_api.console")

BASE = "/console"
ASSETS_PATH = "/static/console"
SESSION_COOKIE = "ledger_console"
SIGNIN_CSRF_COOKIE = "ledger_console_signin"
CSRF_FIELD = "csrf"
NEXT_LEN_MAX = 500
_TEMPLATES = Path(__file__).resolve().parent / "templates"

_env = Environment(loader=FileSystemLoader(_TEMPLATES), autoescape=select_autoescape(["html", "svg"]),
                   trim_blocks=True, lstrip_blocks=True)
_env.filters["unix"] = lambda s: datetime.fromtimestamp(int(s), tz=timezone.utc) if s is not None else None


def console_csp(rpc_origin: str | None) -> str:
    """Scripts, styles and images from this service only (no inline script, no eval); the proof
    page may also ask the chain's JSON-RPC endpoint (``connect-src``) to verify in the browser."""
    connect = "'self'" + (f" {rpc_origin}" if rpc_origin else "")
    return ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; "
            f"connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'")


def rpc_origin(rpc_url: str) -> str | None:
    parts = urlsplit(rpc_url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}"


FieldErrors = dict[str, list[str]]


@dataclass
class Ctx:
    """One console request: who (``member``; None on the sign-in page), its language, CSRF token."""

    request: Request
    runtime: Runtime
    lang: str
    member: Principal | None = None
    csrf: str = ""
    token: str | None = None
    form: FormData | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def t(self) -> i18n.Catalogue:
        return i18n.catalogue(self.lang)

    def has(self, *roles: str) -> bool:
        return self.member is not None and self.member.has_any(frozenset(roles))

    def field(self, name: str, default: str = "") -> str:
        value = self.form.get(name) if self.form is not None else None
        return value if isinstance(value, str) else default


def _lang(request: Request) -> str:
    return i18n.negotiate(request.cookies.get(i18n.LANG_COOKIE), request.headers.get("accept-language"))


def safe_next(value: str | None) -> str:
    """A redirect target inside the console only (never another host, never a scheme)."""
    if not value or len(value) > NEXT_LEN_MAX or not value.startswith(BASE) or value.startswith("//") \
            or "\\" in value or any(ord(c) < 32 for c in value):
        return BASE + "/"
    return value


class _SignIn(Exception):
    """No live session: send the browser to the sign-in page."""


async def require_session(request: Request) -> Ctx:
    """The console dependency: the signed-in member, its roles checked like the API's; on POST the
    form is read and its CSRF token checked. Without a live session: redirect to sign-in."""
    runtime: Runtime = request.app.state.runtime
    ctx = Ctx(request=request, runtime=runtime, lang=_lang(request))
    token = request.cookies.get(SESSION_COOKIE)
    try:
        with runtime.db.read() as session:
            view = console_sessions.resolve_session(session, token)
    except AuthenticationError:
        raise _SignIn() from None
    response = Response()
    member = principal_of(request, response, runtime, get_registry_view(request), view.member_id, view.key_prefix)
    ctx.member, ctx.csrf, ctx.token = member, view.csrf_token, token
    ctx.headers = {k: v for k, v in response.headers.items() if k.lower().startswith("ledger-")}
    if request.method == "POST":
        ctx.form = await request.form(max_files=1, max_fields=400)
        presented = ctx.form.get(CSRF_FIELD)
        if not console_sessions.csrf_matches(view, presented if isinstance(presented, str) else None):
            raise ForbiddenError("the form's CSRF token is missing or wrong; reload the page and try again",
                                 reason="csrf")
    return ctx


async def public_ctx(request: Request) -> Ctx:
    """A page that needs no session (sign-in)."""
    return Ctx(request=request, runtime=request.app.state.runtime, lang=_lang(request))


Console = Annotated[Ctx, Depends(require_session)]
"""A page's parameter: the signed-in member's request (no session: redirected to sign-in)."""
Public = Annotated[Ctx, Depends(public_ctx)]
"""A page's parameter on the pages without a session (sign-in)."""


def page_router() -> APIRouter:
    """A module's pages: under ``/console``, answering HTML errors (:class:`ConsoleRoute`), not in
    the API description."""
    return APIRouter(prefix=BASE, route_class=ConsoleRoute, include_in_schema=False)


# -- rendering ---------------------------------------------------------------------------------------


def render(ctx: Ctx, template: str, *, status_code: int = 200, **values: Any) -> HTMLResponse:
    t = ctx.t
    lang = ctx.lang
    html = _env.get_template(template).render(
        ctx=ctx, t=t, lang=lang, member=ctx.member, csrf=ctx.csrf, base=BASE, assets=ASSETS_PATH,
        path=ctx.request.url.path, query=ctx.request.url.query, languages=i18n.LANGUAGES,
        money=lambda m, signed=False: _money(m, lang), minor=lambda v, c: i18n.safe_format_money(v, c, lang),
        date=lambda d: i18n.format_date(d, lang), datetime=lambda d: i18n.format_datetime(d, lang),
        quote=lambda s: quote(str(s), safe=""), charts=charts, **values)
    rpc = rpc_origin(ctx.runtime.chain.rpc_url) if values.get("needs_rpc") else None
    headers = {"Content-Security-Policy": console_csp(rpc), "Cache-Control": "no-store",
               "X-Content-Type-Options": "nosniff", "Referrer-Policy": "same-origin",
               "X-Frame-Options": "DENY", "Content-Language": lang, **ctx.headers}
    return HTMLResponse(html, status_code=status_code, headers=headers)


def _money(m: Any, lang: str) -> str:
    if m is None:
        return ""
    if isinstance(m, dict):
        return i18n.safe_format_money(m.get("value"), m.get("currency"), lang)
    return i18n.safe_format_money(m.value, m.currency, lang)


def shown_on_form(exc: Exception) -> bool:
    """Errors a page shows on its form; authorisation and absence are the error page's."""
    return not (isinstance(exc, LedgerError) and exc.status in (401, 403, 404))


def field_errors_of(exc: Exception, *, prefix: str = "body.") -> tuple[FieldErrors, str | None]:
    """The field errors of a pydantic ValidationError or a LedgerError, keyed like the API's
    problem+json ``errors`` (``source.value``), plus a message for the form as a whole."""
    errors: FieldErrors = {}
    if isinstance(exc, pydantic.ValidationError):
        for item in exc.errors()[:50]:
            name = ".".join(str(p) for p in item.get("loc", ()))
            errors.setdefault(name, []).append(str(item.get("msg", ""))[:300])
        return errors, None
    if isinstance(exc, LedgerError):
        name = exc.extra.get("field")
        if isinstance(name, str) and name:
            errors.setdefault(name, []).append(exc.detail)
            return errors, None
        return errors, exc.detail
    return errors, str(exc)


def signature_errors_of(exc: Exception) -> tuple[FieldErrors, str | None]:
    """:func:`field_errors_of` for a signing form: the API's ``signature-invalid`` and
    ``signature-expired`` problems are about the pasted or wallet-made signature, so one that names
    no field is shown next to the signature field."""
    errors, message = field_errors_of(exc)
    if isinstance(exc, (SignatureInvalidError, SignatureExpiredError)) and message is not None:
        errors.setdefault("signature", []).append(message)
        message = None
    return errors, message


# -- calling the API's handlers ---------------------------------------------------------------------------


def _authorise(dep: Callable[..., Principal], ctx: Ctx) -> Principal:
    """Run the API's own authorisation dependency for the signed-in member."""
    assert ctx.member is not None
    if dep is authenticate_caller:
        return ctx.member
    if dep is current_member:
        return current_member(ctx.request, ctx.runtime, ctx.member)
    # require_roles(...): (request, runtime, member: CurrentMember)
    return dep(ctx.request, ctx.runtime, current_member(ctx.request, ctx.runtime, ctx.member))


def authorised_for(handler: Callable[..., Any], ctx: Ctx) -> Principal:
    """The signed-in member as ``handler``'s route would admit it (its roles checked by the
    route's own dependency), for a page that shows a form before calling the handler."""
    hints = typing.get_type_hints(handler, include_extras=True)
    for name in inspect.signature(handler).parameters:
        hint = hints.get(name)
        if get_origin(hint) is Annotated:
            base, *meta = get_args(hint)
            dep = next((m.dependency for m in meta if isinstance(m, DependsParam)), None)
            if base is Principal and dep is not None:
                return _authorise(dep, ctx)
    raise TypeError(f"{handler.__name__} declares no Principal")


@typing.no_type_check
def invoke(handler: Callable[..., Any], ctx: Ctx, **given: Any) -> Any:
    """Call an API route handler as FastAPI would for the signed-in member: its ``Principal``
    parameter through the dependency the route declares, ``DbSession`` as one transaction
    (committed when the handler returns), ``RuntimeDep`` the runtime; other parameters from
    ``given`` or their defaults. Raises what the handler raises (LedgerErrors)."""
    hints = typing.get_type_hints(handler, include_extras=True)
    kwargs: dict[str, Any] = {}
    with ExitStack() as stack:
        for name, param in inspect.signature(handler).parameters.items():
            if name in given:
                kwargs[name] = given[name]
                continue
            hint = hints.get(name)
            base, dep = hint, None
            if get_origin(hint) is Annotated:
                base, *meta = get_args(hint)
                dep = next((m.dependency for m in meta if isinstance(m, DependsParam)), None)
            if base is Principal:
                if dep is None:
                    raise TypeError(f"{handler.__name__}.{name}: a Principal without its dependency")
                kwargs[name] = _authorise(dep, ctx)
            elif dep is get_session:  # DbSession
                kwargs[name] = stack.enter_context(ctx.runtime.db.transaction())
            elif dep is not None and inspect.isgeneratorfunction(dep):
                # a route's own session dependency (the webhooks' read session): (runtime) -> session
                if len(inspect.signature(dep).parameters) != 1:
                    raise TypeError(f"{handler.__name__}.{name}: a generator dependency other than (runtime)")
                kwargs[name] = stack.enter_context(contextmanager(dep)(ctx.runtime))
            elif dep is get_runtime or base is Runtime:  # RuntimeDep
                kwargs[name] = ctx.runtime
            elif base is Request:
                kwargs[name] = ctx.request
            elif base is Response:
                kwargs[name] = Response()
            elif param.default is not inspect.Parameter.empty:
                kwargs[name] = param.default
            else:
                raise TypeError(f"{handler.__name__}: no value for {name}")
        # Authorisation first (above, in parameter order), then the call: as FastAPI does.
        return handler(**kwargs)


def query_of(ctx: Ctx, handler: Callable[..., Any], *names: str) -> tuple[dict[str, Any], FieldErrors]:
    """The page's query parameters ``names``, each checked by ``handler``'s own parameter type
    (its ``Query(...)`` bounds and patterns), as FastAPI would before calling it; empty ones are
    left out (the handler's default)."""
    hints = typing.get_type_hints(handler, include_extras=True)
    values: dict[str, Any] = {}
    errors: FieldErrors = {}
    for name in names:
        raw = ctx.request.query_params.get(name, "").strip()
        if not raw:
            continue
        try:
            values[name] = pydantic.TypeAdapter(hints[name]).validate_python(raw)
        except pydantic.ValidationError as exc:
            errors[name] = [str(e.get("msg", ""))[:200] for e in exc.errors()[:3]]
    return values, errors


JS_SAFE_INT_MAX = 2**53 - 1


def js_safe(value: Any) -> Any:
    """Typed data for the browser: integers past 2^53 as decimal strings (a JavaScript number would
    round them; eth_signTypedData_v4 takes uint values as strings), the rest unchanged."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and abs(value) > JS_SAFE_INT_MAX:
        return str(value)
    if isinstance(value, dict):
        return {k: js_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [js_safe(v) for v in value]
    return value


def typed_json(typed: Any) -> str:
    """EIP-712 typed data as the JSON a page hands to ``eth_signTypedData_v4`` (wallet.js reads it
    from a ``<script type="application/json">``): big integers as strings, no ``<`` that could
    end the script element."""
    return json.dumps(js_safe(typed)).replace("<", "\\u003c")


def new_idempotency_key() -> str:
    """A creating form carries its own Idempotency-Key: submitting it twice replays, never doubles."""
    return "console-" + secrets.token_urlsafe(18)


# -- errors as pages ----------------------------------------------------------------------------------------


class ConsoleRoute(APIRoute):
    """Console routes answer HTML: no session -> 303 to sign-in; a LedgerError or a validation
    error -> an error page with the problem's status, title and detail."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        original = super().get_route_handler()

        async def handler(request: Request) -> Response:
            try:
                return await original(request)
            except _SignIn:
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                if request.method != "GET":
                    target = BASE + "/"
                return RedirectResponse(f"{BASE}/sign-in?next={quote(safe_next(target), safe='')}", status_code=303)
            except LedgerError as exc:
                if exc.status >= 500:
                    log.error("%s on %s %s: %s", exc.type_slug, request.method, request.url.path, exc.detail)
                return _error_page(request, exc.status, exc.title, exc.detail, exc.type_uri)
            except RequestValidationError as exc:
                names = ", ".join(".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()[:10])
                return _error_page(request, 422, "Validation failed", f"invalid: {names}",
                                   "urn:ledger:problem:validation-failed")

        return handler


def _error_page(request: Request, status_code: int, title: str, detail: str, type_uri: str) -> HTMLResponse:
    ctx = Ctx(request=request, runtime=request.app.state.runtime, lang=_lang(request))
    token = request.cookies.get(SESSION_COOKIE)
    try:
        with ctx.runtime.db.read() as session:
            view = console_sessions.resolve_session(session, token)
        ctx.member = principal_of(request, Response(), ctx.runtime, get_registry_view(request), view.member_id,
                                  view.key_prefix)
        ctx.csrf = view.csrf_token
    except LedgerError:
        pass  # the error page of a visitor who is not signed in: no navigation
    return render(ctx, "error.html", status_code=status_code, status=status_code, title=title, detail=detail,
                  type_uri=type_uri)
