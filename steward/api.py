"""The read API under ``/api/v1``, for downstream systems (Bearer token) and the UI (session).

Every route reads; none writes. Dates and timestamps are ISO 8601 text.
Every row goes out through ``_out``: ``national_id`` masked (``•••••6789``).
A golden record deleted at its sources answers as usual, with ``status: deleted``;
an erased one (``cdi erase``) answers 410 Gone with its id and when, nothing more.
The schema is at ``/api/v1/openapi.json`` (authenticated, like everything else).

A golden record answers, when asked with ``?include=360,household,timeline``,
its customer 360 row, its household and the first page of its activity across
departments; ``/golden/{id}/activity`` pages through that activity. A lake
from before the ``customer_360`` stage answers them as null and empty.

A token's scope decides what it may call: ``lookup`` the golden record
(with its 360 view and activity), xref and search routes, ``changes`` the change feed. Every answer that carries
personal data leaves an audit row (``steward/read_audit.py``): who, which golden
ids, when, through which route.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from schemas.privacy import mask_record
from steward.auth import Principal, api_scope, client_address
from steward.feed import BadCursor, ChangeFeed, Cursor
from steward.store import Store, is_closed, json_row, to_json_value

router = APIRouter(prefix="/api/v1", tags=["read API"])
lookup_user = Depends(api_scope("lookup"))
changes_user = Depends(api_scope("changes"))
PAGE_DEFAULT = 500
PAGE_MAX = 1000
ACTIVITY_PAGE_DEFAULT = 50
ACTIVITY_PAGE_MAX = 200
INCLUDES = ("360", "household", "timeline")


class HouseholdMember(BaseModel):
    golden_id: str
    full_name: str | None = Field(description="the golden record's full name")
    status: str


class Household(BaseModel):
    household_id: str
    evidence: list[str] = Field(description="what the members share besides the address: email, family_name, phone")
    members: list[HouseholdMember] = Field(description="every member, the asked-for customer too, by golden id")


class ActivityPage(BaseModel):
    page: int
    size: int
    total: int = Field(description="the customer's linked activity rows in all")
    next_page: int | None = Field(description="the page after this one, null on the last")
    activity: list[dict[str, Any]] = Field(
        description="customer_activity rows, newest first (undated last), then by source_system, activity, "
        "activity_key; amounts as decimal text"
    )


class GoldenAnswer(BaseModel):
    requested_id: str
    golden_id: str = Field(description="the active (or deleted) golden id the requested one leads to")
    status: str = Field(description="golden.status of the answering record: active, or deleted (every source "
                        "record of it was deleted at its source; its last values stay)")
    deleted_at: str | None = Field(description="when it was deleted at the source (status deleted), else null")
    redirected: bool = Field(description="true when the requested id is retired and a survivor answered")
    survivor_chain: list[str] = Field(description="ids followed, the requested one first")
    golden: dict[str, Any]
    records: list[dict[str, Any]] = Field(
        description="customer_xref rows of the golden record, current ones first; a record deleted at its source "
        "stays, closed: linked_by 'deleted', valid_to the deletion time"
    )
    customer_360: dict[str, Any] | None = Field(
        default=None, description="with include=360: the customer_360 row (amounts as decimal text), null when "
        "there is none (not active, or the customer_360 stage has not run); absent without include=360")
    household: Household | None = Field(
        default=None, description="with include=household: the household, null when the customer lives alone; "
        "absent without include=household")
    timeline: ActivityPage | None = Field(
        default=None, description=f"with include=timeline: page 1 of /golden/{{id}}/activity "
        f"({ACTIVITY_PAGE_DEFAULT} rows); absent without include=timeline")


class ActivityAnswer(ActivityPage):
    requested_id: str
    golden_id: str = Field(description="the golden id whose activity this is (a retired id's survivor)")
    redirected: bool = Field(description="true when the requested id is retired and a survivor answered")


class XrefAnswer(BaseModel):
    xref: dict[str, Any]
    golden_id: str = Field(description="current golden id (a retired xref id is followed to its survivor)")
    current: bool = Field(description="false when the record was deleted at its source (xref.valid_to says when)")


class GoneAnswer(BaseModel):
    golden_id: str = Field(description="the erased golden id")
    status: Literal["erased"] = "erased"
    erased_at: str | None = Field(description="when it was erased, when known")


class SearchAnswer(BaseModel):
    query: str
    results: list[dict[str, Any]] = Field(description="golden rows plus matched_on: matching source record ids")


class ChangesAnswer(BaseModel):
    cursor: str = Field(description="where this page starts: <version>.<offset>")
    next_cursor: str = Field(description="where the next page starts; keep it and ask again for later changes")
    has_more: bool = Field(description="true when rows after next_cursor exist already")
    latest_version: int
    changes: list[dict[str, Any]] = Field(
        description="golden_customers change feed rows with _change_type, _commit_version; at most limit of them, "
        "ordered by version, golden id and change type"
    )


def _store(request: Request) -> Store:
    return request.app.state.store


def _audit(request: Request, principal: Principal, golden_ids: Iterable[str]) -> None:
    route = getattr(request.scope.get("route"), "path", request.url.path)
    request.app.state.read_audit.record(principal.name, principal.via, client_address(request), route, golden_ids)


GONE = {410: {"model": GoneAnswer, "description": "erased (cdi erase): nothing of it is kept"}}


def _out(row: dict[str, Any]) -> dict[str, Any]:
    """A row as the API returns it: masked attributes masked, values JSON-friendly."""
    return json_row(mask_record(row))


def _gone(golden_id: str, erased_at: datetime | None) -> JSONResponse:
    answer = GoneAnswer(golden_id=golden_id, erased_at=to_json_value(erased_at))
    return JSONResponse(answer.model_dump(), status_code=410)


def _includes(include: str | None) -> set[str]:
    """The parts ``?include=`` asks for (a comma list); an unknown one is a 400 that names the known ones."""
    asked = {part.strip() for part in (include or "").split(",") if part.strip()}
    unknown = sorted(asked - set(INCLUDES))
    if unknown:
        raise HTTPException(status_code=400, detail=f"unknown include value(s): {', '.join(unknown)}; "
                            f"use a comma list of {', '.join(INCLUDES)}")
    return asked


def _household(store: Store, golden_id: str) -> Household | None:
    """The customer's household with its members' names; an erased member is left out (nothing of it is kept)."""
    row = store.household(golden_id)
    if row is None:
        return None
    members = [HouseholdMember(golden_id=m["golden_id"], full_name=m["full_name"], status=m["status"])
               for m in store.goldens(row["golden_ids"]) if m["status"] != "erased"]
    return Household(household_id=row["household_id"], evidence=row["evidence"], members=members)


def _activity_page(store: Store, golden_id: str, page: int, size: int) -> ActivityPage:
    rows, total = store.activity(golden_id, (page - 1) * size, size)
    return ActivityPage(page=page, size=size, total=total, next_page=page + 1 if page * size < total else None,
                        activity=[_out(r) for r in rows])


@router.get("/golden/{golden_id}", response_model=GoldenAnswer, response_model_exclude_unset=True, responses=GONE)
@router.get("/customers/{golden_id}", response_model=GoldenAnswer, response_model_exclude_unset=True, responses=GONE)
def golden(
    golden_id: str,
    request: Request,
    include: str | None = Query(default=None, max_length=100,
                                description="a comma list of 360, household, timeline: the parts to add"),
    principal: Principal = lookup_user,
) -> GoldenAnswer | JSONResponse:
    """A golden record; a retired id answers with its survivor (following the chain) and says so.
    An erased one answers 410 Gone. ``include`` adds the survivor's customer 360 row, household and
    first page of activity."""
    parts = _includes(include)
    store = _store(request)
    row, chain = store.resolve(golden_id)
    if row is None:
        raise HTTPException(status_code=404, detail="unknown golden id")
    if row["status"] == "erased":
        return _gone(row["golden_id"], store.event_time(row["golden_id"], "erase"))
    answering = row["golden_id"]
    records = store.xref_of_golden(answering)
    extra: dict[str, Any] = {}
    if "360" in parts:
        view = store.customer_360(answering)
        extra["customer_360"] = _out(view) if view is not None else None
    if "household" in parts:
        extra["household"] = _household(store, answering)
    if "timeline" in parts:
        extra["timeline"] = _activity_page(store, answering, 1, ACTIVITY_PAGE_DEFAULT)
    household = extra.get("household")
    _audit(request, principal, [answering, *(m.golden_id for m in household.members)] if household else [answering])
    deleted_at = store.event_time(answering, "delete") if row["status"] == "deleted" else None
    return GoldenAnswer(
        requested_id=golden_id,
        golden_id=answering,
        status=row["status"],
        deleted_at=to_json_value(deleted_at),
        redirected=answering != golden_id,
        survivor_chain=chain,
        golden=_out(row),
        records=[_out(r) for r in records],
        **extra,
    )


@router.get("/golden/{golden_id}/activity", response_model=ActivityAnswer, responses=GONE)
@router.get("/customers/{golden_id}/activity", response_model=ActivityAnswer, responses=GONE)
def activity(
    golden_id: str,
    request: Request,
    page: int = Query(default=1, ge=1, le=1_000_000),
    size: int = Query(default=ACTIVITY_PAGE_DEFAULT, ge=1, le=ACTIVITY_PAGE_MAX),
    principal: Principal = lookup_user,
) -> ActivityAnswer | JSONResponse:
    """A golden customer's activity across departments, a page of ``size`` rows, newest first; a retired id
    answers with its survivor's and says so, an erased one 410 Gone."""
    store = _store(request)
    row, _ = store.resolve(golden_id)
    if row is None:
        raise HTTPException(status_code=404, detail="unknown golden id")
    if row["status"] == "erased":
        return _gone(row["golden_id"], store.event_time(row["golden_id"], "erase"))
    answering = row["golden_id"]
    found = _activity_page(store, answering, page, size)
    _audit(request, principal, [answering])
    return ActivityAnswer(requested_id=golden_id, golden_id=answering, redirected=answering != golden_id,
                          **found.model_dump())


@router.get("/xref/{source_system}/{source_key}", response_model=XrefAnswer, responses=GONE)
def xref(source_system: str, source_key: str, request: Request,
         principal: Principal = lookup_user) -> XrefAnswer | JSONResponse:
    """The golden id a source record belongs to; a record deleted at its source shows closed,
    an erased one answers 410 Gone."""
    store = _store(request)
    row = store.xref(source_system, source_key) or store.erased_xref(source_system, source_key)
    if row is None:
        raise HTTPException(status_code=404, detail="unknown source record")
    if row["linked_by"] == "erased":
        return _gone(row["golden_id"], row["valid_to"])
    resolved, _ = store.resolve(row["golden_id"])
    golden_id = resolved["golden_id"] if resolved else row["golden_id"]
    _audit(request, principal, [golden_id])
    return XrefAnswer(xref=_out(row), golden_id=golden_id, current=not is_closed(row))


@router.get("/search", response_model=SearchAnswer)
def search(request: Request, q: str = Query(min_length=2, max_length=200),
           principal: Principal = lookup_user) -> SearchAnswer:
    """Golden records by name, email, phone, golden id or source key (case-insensitive substring)."""
    results = _store(request).search(q)
    _audit(request, principal, [r["golden_id"] for r in results])
    return SearchAnswer(query=q, results=[_out(r) for r in results])


@router.get("/changes", response_model=ChangesAnswer)
def changes(
    request: Request,
    since_version: int | None = Query(default=None, ge=0, description="start at this table version (cursor N.0)"),
    cursor: str | None = Query(default=None, max_length=40, description="next_cursor of the previous page"),
    limit: int = Query(default=PAGE_DEFAULT, ge=1, le=PAGE_MAX),
    principal: Principal = changes_user,
) -> ChangesAnswer:
    """``golden_customers`` changes (Delta change data feed), a page of at most ``limit`` rows,
    from ``cursor`` or from table version ``since_version``."""
    if (cursor is None) == (since_version is None):
        raise HTTPException(status_code=422, detail="give either since_version or cursor")
    try:
        start = Cursor.parse(cursor) if cursor is not None else Cursor(since_version or 0)
    except BadCursor as error:
        raise HTTPException(status_code=422, detail=str(error)) from None
    feed: ChangeFeed = request.app.state.change_feed
    page = feed.page(start, limit)
    _audit(request, principal, [r["golden_id"] for r in page.rows])
    return ChangesAnswer(cursor=str(start), next_cursor=str(page.next_cursor), has_more=page.has_more,
                         latest_version=page.latest_version, changes=[_out(r) for r in page.rows])

