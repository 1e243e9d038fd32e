"""Search, the golden record page, and a steward's split and merge of golden records.

A golden record deleted at its sources says so at the top; a record deleted
at its source stays in its golden record's list, struck through, with when.
An erased golden id (``cdi erase``) answers 410 Gone and shows nothing of it.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from schemas.privacy import mask_record, mask_records, mask_value
from steward.auth import Principal, checked_form, page_user, require_role
from steward.decisions import merge_decision, split_decision
from steward.routes.common import MAX_QUERY, form_text, render, store_of
from steward.store import Store, is_closed

router = APIRouter(include_in_schema=False)


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
def golden(request: Request, golden_id: str, user: Principal = Depends(page_user), notice: str = "") -> Response:
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
         "source": sources.get(lineage.get(a))}
        for a in ("given_name", "middle_name", "family_name", "name_suffix", "birth_date", "gender", "email",
                  "phone", "address_line1", "address_line2", "city", "postcode", "region", "country", "national_id")
        if row.get(a) is not None or a in lineage
    ]
    return render(
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
    store = store_of(request)
    _active_golden(store, golden_id)
    record_id, reason = form_text(form, "record_id"), form_text(form, "reason")
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
