"""The review app: ``create_app(settings)`` builds it, ``serve`` runs it with uvicorn on 127.0.0.1.

Every page and API route needs a logged-in user or an API token (see
``steward/auth.py``); only ``/login`` and the static CSS/JS are public.
Logs carry method, path, status and timing, never a query string (a search
for an email would otherwise put it in the log) and never record values.
"""

from __future__ import annotations

import logging
import time
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
from steward.auth import DirectoryFile, LoginRequired, Principal, api_user
from steward.config import StewardSettings
from steward.store import Store

access_log = logging.getLogger("cdi.steward.access")
HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.autoescape = True  # every template, whatever its file name
    templates.env.filters["pct"] = lambda p: "" if p is None else f"{100 * p:.1f} %"
    templates.env.filters["bits"] = lambda w: "" if w is None else f"{w:+.2f}"
    templates.env.filters["show"] = lambda v: "—" if v is None else v
    return templates


def create_app(settings: StewardSettings) -> FastAPI:
    app = FastAPI(
        title="cdi steward",
        summary="Review queue, golden record lookup and a small read API over the cdi gold tables.",
        version="1",
        docs_url=None,  # the Swagger page loads scripts from a CDN
        redoc_url=None,
        openapi_url=None,  # served below, behind authentication
    )
    app.state.settings = settings
    app.state.store = Store(Lake.at(settings.lake))
    app.state.directory = DirectoryFile(settings.stewards)
    app.state.matching = load_settings(settings.matching)
    app.state.templates = _templates()

    @app.middleware("http")
    async def log_and_harden(request: Request, call_next: Any) -> Response:
        started = time.perf_counter()
        response: Response = await call_next(request)
        for header, value in SECURITY_HEADERS.items():
            response.headers.setdefault(header, value)
        elapsed = 1000 * (time.perf_counter() - started)
        access_log.info("%s %s %d %.0fms", request.method, request.url.path, response.status_code, elapsed)
        return response

    app.add_middleware(
        SessionMiddleware,
        secret_key=settings.session_secret,
        session_cookie="cdi_session",
        max_age=settings.session_hours * 3600,
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


def uvicorn_config(app: FastAPI, host: str = "127.0.0.1", port: int = 8765) -> uvicorn.Config:
    """uvicorn's own access log is off: it would log query strings. ``log_and_harden`` logs paths."""
    return uvicorn.Config(app, host=host, port=port, access_log=False, log_level="info", server_header=False)


def serve(settings: StewardSettings, host: str = "127.0.0.1", port: int = 8765) -> None:
    uvicorn.Server(uvicorn_config(create_app(settings), host, port)).run()
