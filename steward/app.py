"""The review app: ``create_app(settings)`` builds it, ``serve`` runs it with uvicorn on 127.0.0.1.

Every page and API route needs a logged-in user or an API token (see
``steward/auth.py``); only ``/login`` and the static CSS/JS are public.

The access log carries method, path, status, timing, the user (or token) and
the client address. It never carries a query string (a search for an email
would otherwise put it in the log) nor an id from a path: each path parameter
(golden id, source system, source key, record id) is replaced by a keyed hash,
``#`` and 12 hex digits, the same for the same value, so one record's requests
can still be followed through the log (``log_hash`` computes it for a value).

Cookies are ``Secure`` and responses carry HSTS when ``secure_cookies`` is set;
``serve`` refuses plain HTTP on anything but a loopback address.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.sessions import SessionMiddleware

from config.lake import Lake
from matching.settings import load_settings
from steward import api, routes
from steward.auth import DirectoryFile, LoginRequired, Principal, api_user, client_address
from steward.config import StewardConfigError, StewardSettings
from steward.feed import ChangeFeed
from steward.read_audit import ReadAudit
from steward.sessions import SessionStore
from steward.state import StateDb
from steward.store import Store
from steward.throttle import LoginGuard, TokenBuckets

access_log = logging.getLogger("cdi.steward.access")
log = logging.getLogger("cdi.steward")
HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
HSTS = "max-age=31536000; includeSubDomains"
LOOPBACK_NAMES = ("localhost",)


def log_hash(key: bytes, value: str) -> str:
    """How the access log shows ``value`` from a path: a keyed hash, so ids cannot be guessed back from it."""
    return "#" + hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:12]


def logged_path(request: Request, key: bytes) -> str:
    """The request path with every path parameter hashed; an unrouted path is hashed whole."""
    route = request.scope.get("route")
    params = request.scope.get("path_params") or {}
    template = getattr(route, "path", None)
    if template is None:
        return request.url.path if request.url.path.startswith("/static/") else log_hash(key, request.url.path)
    for name, value in params.items():
        template = template.replace("{" + name + "}", log_hash(key, str(value)))
    return template


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.autoescape = True  # every template, whatever its file name
    templates.env.filters["pct"] = lambda p: "" if p is None else f"{100 * p:.1f} %"
    templates.env.filters["bits"] = lambda w: "" if w is None else f"{w:+.2f}"
    templates.env.filters["show"] = lambda v: "—" if v is None else v
    return templates


def _warm(store: Store) -> None:
    """Load the tables and indexes while the app already answers (a million golden records take seconds)."""
    started = time.perf_counter()
    try:
        store.warm()
    except Exception:  # a request reads the table again and reports the error where it happens
        log.exception("warming the store failed")
        return
    log.info("store warm in %.1f s", time.perf_counter() - started)


def create_app(settings: StewardSettings) -> FastAPI:
    state = StateDb(settings.state_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        threading.Thread(target=_warm, args=(app.state.store,), name="cdi-warm", daemon=True).start()
        yield
        app.state.login_guard.pool.close()
        state.close()

    app = FastAPI(
        lifespan=lifespan,
        title="cdi steward",
        summary="Review queue, golden record lookup and a small read API over the cdi gold tables.",
        version="1",
        docs_url=None,  # the Swagger page loads scripts from a CDN
        redoc_url=None,
        openapi_url=None,  # served below, behind authentication
    )
    lake = Lake.at(settings.lake)
    app.state.settings = settings
    app.state.store = Store(lake)
    app.state.change_feed = ChangeFeed(lake)
    app.state.directory = DirectoryFile(settings.stewards)
    app.state.sessions = SessionStore(state, settings.session_hours * 3600, settings.idle_minutes * 60)
    app.state.read_audit = ReadAudit(state)
    app.state.login_guard = LoginGuard(settings.login_limits)
    app.state.token_buckets = TokenBuckets()
    app.state.matching = load_settings(settings.matching)
    app.state.templates = _templates()
    _warn_about_legacy_tokens(app)
    log_key = hashlib.sha256(b"cdi access log\0" + settings.session_secret.encode("utf-8")).digest()
    headers = {**SECURITY_HEADERS, **({"Strict-Transport-Security": HSTS} if settings.secure_cookies else {})}

    @app.middleware("http")
    async def log_and_harden(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        response: Response = await call_next(request)
        for header, value in headers.items():
            response.headers.setdefault(header, value)
        elapsed = 1000 * (time.perf_counter() - started)
        who = getattr(request.state, "principal", "-")
        access_log.info("%s %s %d %.0fms user=%s client=%s", request.method, logged_path(request, log_key),
                        response.status_code, elapsed, who, client_address(request))
        return response

    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret,
        session_cookie="cdi_session",
        max_age=int(settings.session_hours * 3600),
        same_site="lax",
        https_only=settings.secure_cookies,
    )

    @app.exception_handler(LoginRequired)
    async def to_login(request: Request, _: LoginRequired) -> Response:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, error: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):
            return JSONResponse({"detail": error.detail}, status_code=error.status_code, headers=error.headers)
        return app.state.templates.TemplateResponse(
            request, "error.html", {"status": error.status_code, "detail": error.detail, "user": None},
            status_code=error.status_code,
        )

    @app.get("/api/v1/openapi.json", include_in_schema=False)
    def openapi(_: Principal = Depends(api_user)) -> JSONResponse:
        return JSONResponse(app.openapi())

    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.include_router(routes.router)
    app.include_router(api.router)
    return app


def _warn_about_legacy_tokens(app: FastAPI) -> None:
    for token in app.state.directory.current().tokens:
        if token.expires_at is None:
            logging.getLogger("cdi.steward").warning(
                "API token %s has no expiry and both scopes (written by an older cdi); "
                "re-issue it with `cdi create-token %s --scope lookup|changes`", token.name, token.name)


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_transport(settings: StewardSettings, host: str) -> None:
    """Plain HTTP (no Secure cookie, no HSTS) only on a loopback address, where nobody else can listen in."""
    if not settings.secure_cookies and not is_loopback(host):
        raise StewardConfigError(
            f"--insecure-http serves plain HTTP, allowed only on a loopback address (127.0.0.1, ::1, localhost), "
            f"not {host!r}; drop --insecure-http and serve behind HTTPS"
        )


def uvicorn_config(app: FastAPI, host: str = "127.0.0.1", port: int = 8765) -> uvicorn.Config:
    """uvicorn's own access log is off: it would log query strings. ``log_and_harden`` logs paths."""
    return uvicorn.Config(app, host=host, port=port, access_log=False, log_level="info", server_header=False)


def serve(settings: StewardSettings, host: str = "127.0.0.1", port: int = 8765) -> None:
    check_transport(settings, host)
    uvicorn.Server(uvicorn_config(create_app(settings), host, port)).run()
