"""The review queue: one candidate pair at a time, most uncertain first, and the match / no-match / unsure decision."""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from schemas.privacy import mask_record, mask_records
from steward.auth import Principal, checked_form, page_user, require_role
from steward.decisions import PAIR_ACTIONS, pair_decision
from steward.review import QueueFilter, latest_pair_decisions, pair_key, position, review_queue
from steward.routes.common import form_text, pair_view, probability, render, store_of

router = APIRouter(include_in_schema=False)
QUEUE_SHOWN = 100


@router.get("/review")
def review(
    request: Request,
    user: Principal = Depends(page_user),
    source: str | None = None,
    min: str | None = None,
    max: str | None = None,
    pair: str | None = None,
) -> Response:
    store = store_of(request)
    keep = QueueFilter(source or None, probability(min), probability(max))
    candidates = store.candidates()
    decisions = store.decisions()
    queue = review_queue(candidates, decisions, keep)
    at = position(queue, pair)
    current = at.current
    view, latest = None, None
    if current is not None:
        view = pair_view(request, current["record_l"], current["record_r"], current["levels"],
                          current["evidence"], current["match_weight"])
        latest = latest_pair_decisions(decisions).get(pair_key(current["record_id_l"], current["record_id_r"]))
    sources = sorted({c[side]["source_system"] for c in candidates for side in ("record_l", "record_r")})
    filters = {"source": keep.source or "", "min": "" if keep.min_probability is None else keep.min_probability,
               "max": "" if keep.max_probability is None else keep.max_probability}
    return render(
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
    action, record_a, record_b = form_text(form, "action"), form_text(form, "record_a"), form_text(form, "record_b")
    if action not in PAIR_ACTIONS or not record_a or not record_b or record_a == record_b:
        raise HTTPException(status_code=400, detail="a decision needs an action and two different records")
    if len(store_of(request).records([record_a, record_b])) != 2:
        raise HTTPException(status_code=404, detail="unknown source record")
    decision = pair_decision(user.name, action, record_a, record_b, form_text(form, "comment"))
    store_of(request).append_decision(decision)
    if form_text(form, "origin") == "why":
        return RedirectResponse("/why?" + urlencode({"a": record_a, "b": record_b}), status_code=303)
    query = {k: form_text(form, k) for k in ("source", "min", "max") if form_text(form, k)}
    if form_text(form, "next_pair"):
        query["pair"] = form_text(form, "next_pair")
    return RedirectResponse("/review?" + urlencode(query), status_code=303)
