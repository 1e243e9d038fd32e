"""Search, the golden record page, and a steward's split, merge and override of golden records.

A golden record deleted at its sources says so at the top; a record deleted
at its source stays in its golden record's list, struck through, with when.
An erased golden id (``cdi erase``) answers 410 Gone and shows nothing of it.
The page shows the record's history: its golden id events and, from the
change data feed, which attribute changed when and in which run, and, from
the ``customer_360`` stage's tables, the customer's 360 view: the departments
that know it, its segment and figures, its activity across departments
(``TIMELINE_PAGE`` rows a page, newest first) and the household it lives in.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow.compute as pc
from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response

from matching.survivorship import STEWARD_LINEAGE
from schemas.privacy import mask_record, mask_records, mask_value
from steward.auth import Principal, checked_form, page_user, require_role
from steward.decisions import (
    OVERRIDABLE,
    masked_decision,
    may_retract,
    merge_decision,
    override_decision,
    retractions,
    split_decision,
)
from steward.history import revisions
from steward.routes.common import MAX_QUERY, form_text, render, store_of
from steward.store import Store, is_closed

router = APIRouter(include_in_schema=False)
TIMELINE_PAGE = 25


def amounts_text(amounts: dict[str, Decimal | None]) -> str:
    """``{"GBP": 1234.5, "EUR": 10}`` as ``EUR 10.00 · GBP 1,234.50``; a sum too large to store shows as unknown."""
    return " · ".join(f"{currency} {'unknown' if amount is None else f'{amount:,.2f}'}"
                      for currency, amount in sorted(amounts.items()))


def _household_members(store: Store, golden_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The customer's household and its other members' golden rows (erased ones left out)."""
    household = store.household(golden_id)
    if household is None:
        return None, []
    others = [g for g in household["golden_ids"] if g != golden_id]
    return household, [m for m in store.goldens(others) if m["status"] != "erased"]


@router.get("/search")
def search(request: Request, user: Principal = Depends(page_user), q: str = "") -> Response:
    query = q.strip()[:MAX_QUERY]
    results = store_of(request).search(query) if len(query) >= 2 else []
    return render(request, "search.html", user, q=query, results=mask_records(results), searched=len(query) >= 2)


def _erased(store: Store, golden_id: str) -> HTTPException:
    at = store.event_time(golden_id, "erase")
    when = f" on {at:%Y-%m-%d %H:%M} UTC" if at is not None else ""
    return HTTPException(status_code=410, detail=f"Golden record {golden_id} was erased{when}. Nothing of it is kept.")


@router.get("/golden/{golden_id}")
def golden(request: Request, golden_id: str, user: Principal = Depends(page_user), notice: str = "",
           activity_page: int = Query(default=1, ge=1, le=1_000_000)) -> Response:
    store = store_of(request)
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
         "source": sources.get(lineage.get(a)), "steward": (lineage.get(a) or "").startswith(STEWARD_LINEAGE)}
        for a in ("given_name", "middle_name", "family_name", "name_suffix", "birth_date", "gender", "email",
                  "phone", "address_line1", "address_line2", "city", "postcode", "region", "country", "national_id")
        if row.get(a) is not None or a in lineage
    ]
    decisions = store.decisions_about(golden_id, [m["record_id"] for m in members])
    activity, activity_total = store.activity(golden_id, (activity_page - 1) * TIMELINE_PAGE, TIMELINE_PAGE)
    household, housemates = _household_members(store, golden_id)
    return render(
        request, "golden.html", user,
        golden=mask_record(row), chain=chain,
        survivor=mask_record(survivor) if survivor and survivor["golden_id"] != golden_id else None,
        deleted_at=store.event_time(golden_id, "delete") if row["status"] == "deleted" else None,
        members=mask_records(m for m in members if not is_closed(m)),
        closed=mask_records(m for m in members if is_closed(m)),
        lineage=lineage, lineage_rows=lineage_rows, history=store.history(golden_id),
        decisions=[masked_decision(d) for d in decisions], notice=notice,
        withdrawn=retractions(store.decisions(pc.field("action") == "retract")), may_retract=may_retract,
        revisions=revisions(store.golden_change_feed(golden_id)), overridable=OVERRIDABLE,
        here=f"/golden/{golden_id}",
        view=store.customer_360(golden_id), amounts_text=amounts_text,
        activity=activity, activity_page=activity_page, activity_pages=-(-activity_total // TIMELINE_PAGE),
        activity_total=activity_total, household=household, housemates=mask_records(housemates),
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
    store = store_of(request)
    _active_golden(store, golden_id)
    record_ids = [r.strip() for r in form.getlist("record_id") if isinstance(r, str) and r.strip()]
    reason = form_text(form, "reason")
    if not reason:
        raise HTTPException(status_code=400, detail="a split needs a reason")
    members = [r["record_id"] for r in store.xref_of_golden(golden_id) if not is_closed(r)]
    try:
        # The members now are recorded with the split: it applies to them, not to whoever joins later.
        decision = split_decision(user.name, golden_id, record_ids, members, reason)
    except ValueError as error:
        raise HTTPException(status_code=400, detail=str(error)) from None
    store.append_decision(decision)
    return RedirectResponse(f"/golden/{golden_id}?notice=split", status_code=303)


@router.post("/golden/{golden_id}/merge")
async def merge(request: Request, golden_id: str, user: Principal = Depends(page_user)) -> Response:
    form = await checked_form(request)
    require_role(user, "steward")
    store = store_of(request)
    other, reason = form_text(form, "other_id"), form_text(form, "reason")
    if not reason:
        raise HTTPException(status_code=400, detail="a merge needs a reason")
    if other == golden_id:
        raise HTTPException(status_code=400, detail="choose another golden record to merge with")
    _active_golden(store, golden_id)
    _active_golden(store, other)
    store.append_decision(merge_decision(user.name, golden_id, other, reason))
    return RedirectResponse(f"/golden/{golden_id}?notice=merge", status_code=303)


@router.post("/golden/{golden_id}/override")
async def override(request: Request, golden_id: str, user: Principal = Depends(page_user)) -> Response:
    """Set one golden value; publish keeps it while the golden record's source records stay as they are now."""
    form = await checked_form(request)
    require_role(user, "steward")
    store = store_of(request)
    _active_golden(store, golden_id)
    hashes = {m["record_id"]: m["record_hash"] for m in store.members(golden_id)
              if not is_closed(m) and m.get("record_hash")}
    try:
        decision = override_decision(user.name, golden_id, form_text(form, "attribute"), form_text(form, "value"),
                                     hashes, form_text(form, "reason"))
    except ValueError as error:
        raise HTTPException(status_code=400, detail=str(error)) from None
    store.append_decision(decision)
    return RedirectResponse(f"/golden/{golden_id}?notice=override", status_code=303)
