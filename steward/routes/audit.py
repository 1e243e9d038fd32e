"""Undo and audit: every decision, filterable; the decisions waiting for the next run; retracting one.

A retraction is a new row (``action = 'retract'``, ``supersedes`` = the
decision withdrawn): nothing in the log is ever changed or removed. The
pipeline and the review queue then ignore the decision withdrawn, so a
retracted pair decision puts the pair back in the queue (at once when it is
still a candidate, after the next run otherwise). "Pending" is every decision
made after the last published run: the next run applies it.
"""

from __future__ import annotations

import datetime as dt
import functools
import operator
from urllib.parse import urlencode

import pyarrow.compute as pc
import pyarrow.dataset as ds
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from steward.auth import Principal, checked_form, page_user, require_role
from steward.decisions import (
    RETRACTABLE,
    masked_decision,
    may_retract,
    pending_decisions,
    retract_decision,
    retractions,
)
from steward.routes.common import MAX_QUERY, form_text, render, safe_next, store_of
from steward.store import Store

router = APIRouter(include_in_schema=False)
AUDIT_SHOWN = 500


def _day(text: str | None) -> dt.date | None:
    try:
        return dt.date.fromisoformat(text) if text else None
    except ValueError:
        return None


def _midnight(day: dt.date) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=dt.timezone.utc)


def audit_filter(steward: str | None, action: str | None, since: dt.date | None,
                 until: dt.date | None) -> ds.Expression | None:
    """Decisions by ``steward``, of ``action``, made from ``since`` to ``until`` (whole UTC days, inclusive)."""
    tests = []
    if steward:
        tests.append(pc.field("steward") == steward)
    if action:
        tests.append(pc.field("action") == action)
    if since is not None:
        tests.append(pc.field("decided_at") >= _midnight(since))
    if until is not None:
        tests.append(pc.field("decided_at") < _midnight(until + dt.timedelta(days=1)))
    return functools.reduce(operator.and_, tests) if tests else None


def _with_status(store: Store, rows: list[dict]) -> tuple[list[dict], dict]:
    """Rows as shown (masked), and decision_id -> its retraction."""
    withdrawn = retractions(store.decisions(pc.field("action") == "retract"))
    return [masked_decision(r) for r in rows], withdrawn


@router.get("/audit")
def audit(request: Request, user: Principal = Depends(page_user), steward: str = "", action: str = "",
          since: str = "", until: str = "", notice: str = "", page: int = 0) -> Response:
    store = store_of(request)
    stewards_and_actions = store.read("steward_decisions", columns=["steward", "action"]).to_pylist()
    stewards = sorted({r["steward"] for r in stewards_and_actions})
    actions = sorted({r["action"] for r in stewards_and_actions})
    chosen = {"steward": steward.strip()[:MAX_QUERY], "action": action.strip()[:MAX_QUERY],
              "since": _day(since), "until": _day(until)}
    found = store.decisions(audit_filter(**chosen))
    newest = sorted(found, key=lambda d: (d["decided_at"], d["decision_id"]), reverse=True)
    pages = max(-(-len(found) // AUDIT_SHOWN), 1)
    page = min(max(page, 0), pages - 1)
    rows, withdrawn = _with_status(store, newest[page * AUDIT_SHOWN:(page + 1) * AUDIT_SHOWN])
    filters = {k: "" if v is None else str(v) for k, v in chosen.items()}
    here = "/audit?" + urlencode({k: v for k, v in filters.items() if v})
    return render(request, "audit.html", user, active="audit", decisions=rows, total=len(found), withdrawn=withdrawn,
                  may_retract=may_retract, stewards=stewards, actions=actions, filters=filters,
                  here=here + (f"&page={page}" if page else ""), notice=notice, page=page, pages=pages,
                  first=page * AUDIT_SHOWN, page_link=lambda n: f"{here}&page={n}")


@router.get("/pending")
def pending(request: Request, user: Principal = Depends(page_user), notice: str = "") -> Response:
    store = store_of(request)
    published_at = store.last_published_at()
    where = pc.field("decided_at") > published_at if published_at is not None else None
    waiting = pending_decisions(store.decisions(where), published_at)
    rows, withdrawn = _with_status(store, waiting)
    return render(request, "pending.html", user, active="pending", decisions=rows, withdrawn=withdrawn,
                  may_retract=may_retract, published_at=published_at, here="/pending", notice=notice)


@router.post("/decisions/{decision_id}/retract")
async def retract(request: Request, decision_id: str, user: Principal = Depends(page_user)) -> Response:
    form = await checked_form(request)
    require_role(user, "steward")
    store = store_of(request)
    decision = store.decision(decision_id)
    if decision is None:
        raise HTTPException(status_code=404, detail="unknown decision")
    if decision["action"] not in RETRACTABLE:
        raise HTTPException(status_code=400, detail=f"a {decision['action']} cannot be retracted; decide again instead")
    if decision_id in retractions(store.decisions(pc.field("action") == "retract")):
        raise HTTPException(status_code=409, detail="this decision was already retracted")
    reason = form_text(form, "reason")
    if not reason:
        raise HTTPException(status_code=400, detail="a retraction needs a reason")
    store.append_decision(retract_decision(user.name, decision, reason))
    target = safe_next(form_text(form, "next") or "/audit")
    return RedirectResponse(target + ("&" if "?" in target else "?") + "notice=retracted", status_code=303)
