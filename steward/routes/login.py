"""Log-in, log-out, and the admin's view of live sessions with "end all sessions".

A log-in is refused before its password is checked while the username or the
client address is locked out (``steward/throttle.py``): 429 with
``Retry-After`` and a message saying how long, even for the right password.
The password check runs on its own small thread pool, never on the event
loop, and an unknown username costs the same argon2 check as a known one.
"""

from __future__ import annotations

import logging
import math
from datetime import datetime, timezone

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from steward.auth import (
    Principal,
    check_password,
    checked_form,
    client_address,
    end_session,
    page_user,
    require_role,
    start_session,
)
from steward.routes.common import form_text, render, safe_next
from steward.throttle import PoolBusy, retry_after_header

router = APIRouter(include_in_schema=False)
log = logging.getLogger("cdi.steward")


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", None, next=safe_next(next))


def _refused(request: Request, target: str, wait: float, busy: bool = False) -> Response:
    minutes = max(1, math.ceil(wait / 60))
    response = render(request, "login.html", None, status_code=429, next=target,
                      locked_minutes=None if busy else minutes, busy=busy)
    response.headers.update(retry_after_header(wait))
    return response


@router.post("/login")
async def login(request: Request) -> Response:
    form = await checked_form(request)
    username, password = form_text(form, "username"), str(form.get("password") or "")
    target = safe_next(form_text(form, "next"))
    guard = request.app.state.login_guard
    account, client = username.lower(), client_address(request)
    wait = guard.retry_after(account, client)
    if wait > 0:
        log.info("log-in refused: locked out (client %s)", client)
        return _refused(request, target, wait)
    directory = request.app.state.directory.current()
    try:
        principal = await guard.pool.run(lambda: check_password(directory, username, password))
    except PoolBusy:
        log.warning("log-in refused: too many password checks waiting (client %s)", client)
        return _refused(request, target, 1.0, busy=True)
    if principal is None:
        guard.failed(account, client)
        log.info("log-in refused: wrong username or password (client %s)", client)
        wait = guard.retry_after(account, client)
        if wait > 0:
            return _refused(request, target, wait)
        return render(request, "login.html", None, status_code=401, next=target, failed=True)
    guard.succeeded(account)
    start_session(request, directory.users[principal.name])
    log.info("log-in: %s (%s) from %s", principal.name, principal.role, client)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await checked_form(request)
    end_session(request)
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(_: Principal = Depends(page_user)) -> Response:
    return RedirectResponse("/review", status_code=303)


@router.get("/sessions")
def sessions_page(request: Request, user: Principal = Depends(page_user)) -> Response:
    """Admins: who is logged in, from where, since when."""
    require_role(user, "admin")
    live = [
        {"username": s.username, "client": s.client, "since": _time(s.created_at), "last_seen": _time(s.last_seen)}
        for s in request.app.state.sessions.active()
    ]
    return render(request, "sessions.html", user, sessions=live, active="sessions")


@router.post("/sessions/end-all")
async def end_all_sessions(request: Request, user: Principal = Depends(page_user)) -> Response:
    """Admins: end every session, their own included; everyone logs in again."""
    await checked_form(request)
    require_role(user, "admin")
    ended = request.app.state.sessions.end_all()
    request.session.clear()
    log.warning("all sessions ended by %s (%d)", user.name, ended)
    return RedirectResponse("/login", status_code=303)


def _time(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
