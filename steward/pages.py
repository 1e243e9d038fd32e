"""Server-rendered pages: log-in, review queue, search, golden record, "why not?".

Reading needs any role; deciding, splitting and merging need ``steward``
(or ``admin``). Every POST carries the session's CSRF token. After a POST
the browser is redirected (303), so a reload never decides twice.

A golden record deleted at its sources says so at the top; a record deleted
at its source stays in its golden record's list, struck through, with when.
An erased golden id (``cdi erase``) answers 410 Gone and shows nothing of it.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from schemas.privacy import mask_record, mask_records, mask_value
from steward import explain
from steward.auth import (
    Principal,
    check_password,
    checked_form,
    csrf_token,
    page_user,
    require_role,
    start_session,
)
from steward.decisions import PAIR_ACTIONS, merge_decision, pair_decision, split_decision
from steward.review import (
    QueueFilter,
    attribute_rows,
    latest_pair_decisions,
    pair_key,
    position,
    review_queue,
    waterfall,
)
from steward.store import Store, is_closed

router = APIRouter(include_in_schema=False)
log = logging.getLogger("cdi.steward")
QUEUE_SHOWN = 100
MAX_QUERY = 200


def _store(request: Request) -> Store:
    return request.app.state.store


def _render(request: Request, template: str, user: Principal | None, status_code: int = 200, **context: Any) -> Response:
    context.update(user=user, csrf=csrf_token(request), can_decide=bool(user and user.may("steward")))
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status_code)


def _probability(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and 0.0 <= value <= 1.0 else None


def _text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _safe_next(target: str | None) -> str:
    """Only same-site paths: no scheme, no host, no ``//``."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/review"


# -- log-in ----------------------------------------------------------------------------------------


@router.get("/login")
def login_form(request: Request, next: str | None = None) -> Response:
    return _render(request, "login.html", None, next=_safe_next(next), failed=False)


@router.post("/login")
async def login(request: Request) -> Response:
    form = await checked_form(request)
    principal = check_password(request.app.state.directory.current(), _text(form, "username"), str(form.get("password") or ""))
    target = _safe_next(_text(form, "next"))
    if principal is None:
        log.info("log-in refused")
        return _render(request, "login.html", None, status_code=401, next=target, failed=True)
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


# -- review queue ----------------------------------------------------------------------------------


def _comparison_order(request: Request) -> list[str]:
    return [c.name for c in request.app.state.matching.comparisons]


def _pair_view(request: Request, record_l: dict, record_r: dict, levels: dict, evidence: dict, weight: float) -> dict:
    comparisons = request.app.state.matching.comparisons
    return {
        "rows": attribute_rows(record_l, record_r, levels, evidence, comparisons),
        "waterfall": waterfall(evidence, weight, _comparison_order(request)),
    }


@router.get("/review")
def review(
    request: Request,
    user: Principal = Depends(page_user),
    source: str | None = None,
    min: str | None = None,
    max: str | None = None,
    pair: str | None = None,
) -> Response:
    store = _store(request)
    keep = QueueFilter(source or None, _probability(min), _probability(max))
    candidates = store.candidates()
    decisions = store.decisions()
    queue = review_queue(candidates, decisions, keep)
    at = position(queue, pair)
    current = at.current
    view, latest = None, None
    if current is not None:
        view = _pair_view(request, current["record_l"], current["record_r"], current["levels"],
                          current["evidence"], current["match_weight"])
        latest = latest_pair_decisions(decisions).get(pair_key(current["record_id_l"], current["record_id_r"]))
    sources = sorted({c[side]["source_system"] for c in candidates for side in ("record_l", "record_r")})
    filters = {"source": keep.source or "", "min": "" if keep.min_probability is None else keep.min_probability,
               "max": "" if keep.max_probability is None else keep.max_probability}
    return _render(
        request, "review.html", user,
        queue=mask_records(queue[:QUEUE_SHOWN]), queue_size=len(queue), at=at,
        current=mask_record(current) if current is not None else None, view=view, latest=latest,
        sources=sources, filters=filters, filter_query=urlencode({k: v for k, v in filters.items() if v != ""}),
        thresholds=request.app.state.matching.thresholds,
    )


@router.post("/decide")
async def decide(request: Request, user: Principal = Depends(page_user)) -> Response:
    """Record match / no_match / unsure for two source records, from the queue or the "why not?" page."""
    form = await checked_form(request)
    require_role(user, "steward")
    action, record_a, record_b = _text(form, "action"), _text(form, "record_a"), _text(form, "record_b")
    if action not in PAIR_ACTIONS or not record_a or not record_b or record_a == record_b:
        raise HTTPException(status_code=400, detail="a decision needs an action and two different records")
    if len(_store(request).records([record_a, record_b])) != 2:
        raise HTTPException(status_code=404, detail="unknown source record")
    decision = pair_decision(user.name, action, record_a, record_b, _text(form, "comment"))
    _store(request).append_decision(decision)
    if _text(form, "origin") == "why":
        return RedirectResponse("/why?" + urlencode({"a": record_a, "b": record_b}), status_code=303)
    query = {k: _text(form, k) for k in ("source", "min", "max") if _text(form, k)}
    if _text(form, "next_pair"):
        query["pair"] = _text(form, "next_pair")
    return RedirectResponse("/review?" + urlencode(query), status_code=303)


# -- search and golden records ----------------------------------------------------------------------


@router.get("/search")
def search(request: Request, user: Principal = Depends(page_user), q: str = "") -> Response:
    query = q.strip()[:MAX_QUERY]
    results = _store(request).search(query) if len(query) >= 2 else []
    return _render(request, "search.html", user, q=query, results=mask_records(results), searched=len(query) >= 2)


def _erased(store: Store, golden_id: str) -> HTTPException:
    at = store.event_time(golden_id, "erase")
    when = f" on {at:%Y-%m-%d %H:%M} UTC" if at is not None else ""
    return HTTPException(status_code=410, detail=f"Golden record {golden_id} was erased{when}. Nothing of it is kept.")


@router.get("/golden/{golden_id}")
def golden(request: Request, golden_id: str, user: Principal = Depends(page_user), notice: str = "") -> Response:
    store = _store(request)
    row = store.golden(golden_id)
    if row is None:
        raise HTTPException(status_code=404, detail="unknown golden id")
    survivor, chain = store.resolve(golden_id) if row["status"] == "retired" else (row, [golden_id])
    answering = survivor or row
    if answering["status"] == "erased":
        raise _erased(store, answering["golden_id"])
    members = store.members(golden_id)
    lineage = row["lineage"] or {}
    sources = {m["record_id"]: m.get("source_system") for m in members}
    lineage_rows = [
        {"attribute": a, "value": mask_value(a, row.get(a)), "record_id": lineage.get(a),
         "source": sources.get(lineage.get(a))}
        for a in ("given_name", "middle_name", "family_name", "name_suffix", "birth_date", "gender", "email",
                  "phone", "address_line1", "address_line2", "city", "postcode", "region", "country", "national_id")
        if row.get(a) is not None or a in lineage
    ]
    return _render(
        request, "golden.html", user,
        golden=mask_record(row), chain=chain,
        survivor=mask_record(survivor) if survivor and survivor["golden_id"] != golden_id else None,
        deleted_at=store.event_time(golden_id, "delete") if row["status"] == "deleted" else None,
        members=mask_records(m for m in members if not is_closed(m)),
        closed=mask_records(m for m in members if is_closed(m)),
        lineage=lineage, lineage_rows=lineage_rows, history=store.history(golden_id),
        decisions=store.decisions_about(golden_id, [m["record_id"] for m in members]), notice=notice,
    )


def _active_golden(store: Store, golden_id: str) -> dict:
    row = store.golden(golden_id)
    if row is None:
        raise HTTPException(status_code=404, detail="unknown golden id")
    if row["status"] == "retired":
        raise HTTPException(status_code=409, detail=f"golden record {golden_id} is retired; use its survivor {row['survivor_id']}")
    if row["status"] != "active":
        raise HTTPException(status_code=409, detail=f"golden record {golden_id} is {row['status']}")
    return row


@router.post("/golden/{golden_id}/split")
async def split(request: Request, golden_id: str, user: Principal = Depends(page_user)) -> Response:
    form = await checked_form(request)
    require_role(user, "steward")
    store = _store(request)
    _active_golden(store, golden_id)
    record_id, reason = _text(form, "record_id"), _text(form, "reason")
    if not reason:
        raise HTTPException(status_code=400, detail="a split needs a reason")
    members = [r["record_id"] for r in store.xref_of_golden(golden_id) if not is_closed(r)]
    if record_id not in members:
        raise HTTPException(status_code=400, detail="that record is not part of this golden record")
    if len(members) < 2:
        raise HTTPException(status_code=400, detail="a golden record with one source record cannot be split")
    store.append_decision(split_decision(user.name, record_id, golden_id, reason))
    return RedirectResponse(f"/golden/{golden_id}?notice=split", status_code=303)


@router.post("/golden/{golden_id}/merge")
async def merge(request: Request, golden_id: str, user: Principal = Depends(page_user)) -> Response:
    form = await checked_form(request)
    require_role(user, "steward")
    store = _store(request)
    other, reason = _text(form, "other_id"), _text(form, "reason")
    if not reason:
        raise HTTPException(status_code=400, detail="a merge needs a reason")
    if other == golden_id:
        raise HTTPException(status_code=400, detail="choose another golden record to merge with")
    _active_golden(store, golden_id)
    _active_golden(store, other)
    store.append_decision(merge_decision(user.name, golden_id, other, reason))
    return RedirectResponse(f"/golden/{golden_id}?notice=merge", status_code=303)


# -- why not? -----------------------------------------------------------------------------------------


@router.get("/why")
def why(request: Request, user: Principal = Depends(page_user), a: str = "", b: str = "") -> Response:
    store = _store(request)
    a, b = a.strip()[:MAX_QUERY], b.strip()[:MAX_QUERY]
    context: dict[str, Any] = {"a": a, "b": b, "left": None, "right": None, "missing": []}
    if a and b:
        records = store.records([a, b])
        context["missing"] = [r for r in (a, b) if r not in records]
        if not context["missing"] and a != b:
            left, right = records[a], records[b]
            settings = request.app.state.matching
            saved = store.latest_model()
            model = saved.model if saved is not None else None
            context.update(left=mask_record(left), right=mask_record(right),
                           rules=explain.check_rules(settings, left, right), model=model)
            context["golden"] = {r: (store.xref_of_record(r) or {}).get("golden_id") for r in (a, b)}
            context["latest"] = latest_pair_decisions(store.pair_decisions(a, b)).get(pair_key(a, b))
            if saved is not None:
                frequencies = {c.column: saved.share(c.column, left.get(c.column)) for c in settings.tf_comparisons}
                scored = explain.score_pair(settings, model, explain.comparison_batch(settings, left, right, frequencies))
                context["score"] = scored
                context["view"] = _pair_view(request, left, right, scored.levels, scored.evidence, scored.match_weight)
    return _render(request, "why.html", user, **context)

