"""Log-in and log-out."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from steward.auth import Principal, check_password, checked_form, page_user, start_session
from steward.routes.common import form_text, render, safe_next

router = APIRouter(include_in_schema=False)
log = logging.getLogger("cdi.steward")


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return render(request, "login.html", None, next=safe_next(next), failed=False)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await checked_form(request)
    principal = check_password(request.app.state.directory.current(), form_text(form, "username"), str(form.get("password") or ""))
    target = safe_next(form_text(form, "next"))
    if principal is None:
        log.info("log-in refused")
        return render(request, "login.html", None, status_code=401, next=target, failed=True)
    start_session(request, principal)
    log.info("log-in: %s (%s)", principal.name, principal.role)
    return RedirectResponse(target, status_code=303)


@router.post("/logout")
async def logout(request: Request) -> Response:
    await checked_form(request)
    request.session.clear()
    return RedirectResponse("/login", status_code=303)


@router.get("/")
def home(_: Principal = Depends(page_user)) -> Response:
    return RedirectResponse("/review", status_code=303)
