"""The review queue: one candidate pair at a time, most uncertain first, and the match / no-match / unsure decision.

The queue is filtered, ordered and paged on the server (``steward/queue_index.py``)
from in-memory copies of the candidates and the decisions, read once per table
version. A steward can also claim the next pairs of a filtered queue
(``/review/claim``) and decide a whole filtered set at once (``/review/bulk``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response

from schemas.privacy import mask_record
from steward.auth import Principal, checked_form, page_user, require_role
from steward.decisions import DECIDING_ACTIONS, PAIR_ACTIONS, effective_decisions, pair_decision
from steward.queue_index import PAGE_SIZE, QueueIndex, QueueView, next_elsewhere, pairs_of, view
from steward.review import (
    FILTER_KEYS,
    TIER_TOUCHED,
    TIER_UNSURE,
    QueueFilter,
    claim_decisions,
    from_query,
    latest_pair_decisions,
    pair_key,
)
from steward.routes.common import form_text, load_pair_context, pair_view, render, store_of
from steward.store import Store

router = APIRouter(include_in_schema=False)
CLAIM_BATCH = 20  # pairs a claim takes unless the steward asks for another number
MAX_CLAIM = 200
MAX_BULK = 10_000  # pairs one bulk decision may cover: narrow the filter for more


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _queue(store: Store, keep: QueueFilter, steward: str) -> tuple[QueueIndex, QueueView]:
    index, marks = store.queue()
    return index, view(index, marks, keep, steward, _now())


def _listed(index: QueueIndex, queue: QueueView, rows: list[int], keep: QueueFilter) -> list[dict]:
    """The queue list entries of ``rows``: ids, link, probability, and why a pair sits low (unsure, seen, claimed)."""
    marks = {TIER_UNSURE: "unsure", TIER_TOUCHED: "seen"}
    prefix = "/review?" + "".join(f"{k}={quote(v, safe='')}&" for k, v in keep.query().items()) + "pair="
    return [
        {"pair_id": index.pair_ids[row], "href": prefix + quote(index.pair_ids[row], safe=""),
         "record_id_l": index.record_l[row], "record_id_r": index.record_r[row],
         "match_probability": float(index.probability[row]), "mark": marks.get(int(queue.tier[row])),
         "claimed_by": queue.claimed_by.get(row)}
        for row in rows
    ]


def _page_number(text: str | None, default: int, pages: int) -> int:
    try:
        number = int(text) if text else default
    except ValueError:
        number = default
    return min(max(number, 0), max(pages - 1, 0))


def _with_query(path: str, keep: QueueFilter, **extra: str | None) -> str:
    query = keep.query() | {k: v for k, v in extra.items() if v}
    return path + ("?" + urlencode(query) if query else "")


@router.get("/review")
def review(request: Request, user: Principal = Depends(page_user), pair: str | None = None,
           page: str | None = None, done: str | None = None, action: str | None = None,
           held: str | None = None) -> Response:
    store = store_of(request)
    keep = from_query(request.query_params)
    index, queue = _queue(store, keep, user.name)
    pages = -(-len(queue) // PAGE_SIZE)
    at = queue.where(index.row_of.get(pair)) if pair else None
    page_no = _page_number(page, (at or 0) // PAGE_SIZE, pages)
    if at is None and len(queue):
        at = page_no * PAGE_SIZE if page else 0  # a page alone shows its first pair
    shown = [int(r) for r in queue.order[page_no * PAGE_SIZE:(page_no + 1) * PAGE_SIZE]]
    current, view_, latest, previous_id, next_id, next_pair = None, None, None, None, None, None
    if at is not None:
        row = int(queue.order[at])
        current = index.rows([row])[0]
        view_ = pair_view(request, current["record_l"], current["record_r"], current["levels"],
                          current["evidence"], current["match_weight"])
        key = pair_key(current["record_id_l"], current["record_id_r"])
        latest = latest_pair_decisions(effective_decisions(store.pair_decisions(*key))).get(key)
        previous_id = index.pair_ids[int(queue.order[at - 1])] if at > 0 else None
        next_id = index.pair_ids[int(queue.order[at + 1])] if at + 1 < len(queue) else None
        next_pair = next_elsewhere(index, queue, at)
    filters = {k: "" for k in FILTER_KEYS} | keep.query()
    notice = None
    if done and done.isdigit() and action in (*DECIDING_ACTIONS, "claim"):
        notice = f"{int(done)} pair{'s' if done != '1' else ''} " + (
            "claimed for you" if action == "claim" else f"marked {action}")
        if held and held.isdigit() and int(held):
            notice += (f"; {int(held)} left in the queue: each would join customers whose records disagree "
                       "(birth date or name suffix), so decide them one by one")
    return render(
        request, "review.html", user,
        queue=_listed(index, queue, shown, keep), queue_size=len(queue), at=at, page=page_no, pages=pages,
        page_start=page_no * PAGE_SIZE, current=mask_record(current) if current is not None else None,
        mark=_listed(index, queue, [int(queue.order[at])], keep)[0] if at is not None else None,
        view=view_, latest=latest, previous_id=previous_id, next_id=next_id, next_pair=next_pair,
        choices=index.choices, filters=filters, filter_query=urlencode(keep.query()), notice=notice,
        thresholds=request.app.state.matching.thresholds,
    )


@router.post("/review/claim")
async def claim(request: Request, user: Principal = Depends(page_user)) -> Response:
    """Claim the next pairs of the filtered queue (``count``, default CLAIM_BATCH): other stewards no
    longer see them for ``CLAIM_HOURS``; the claiming steward finds them under "my claimed pairs"."""
    form = await checked_form(request)
    require_role(user, "steward")
    keep = from_query({k: form_text(form, k) for k in FILTER_KEYS})
    try:
        count = int(form_text(form, "count") or CLAIM_BATCH)
    except ValueError:
        raise HTTPException(status_code=400, detail="claim a number of pairs") from None
    if not 1 <= count <= MAX_CLAIM:
        raise HTTPException(status_code=400, detail=f"claim between 1 and {MAX_CLAIM} pairs at a time")
    store = store_of(request)
    index, queue = _queue(store, replace(keep, mine=False), user.name)
    free = [row for row in queue.order if int(row) not in queue.claimed_by][:count]
    store.append_decisions(claim_decisions(user.name, pairs_of(index, free)))
    return RedirectResponse(_with_query("/review", replace(keep, mine=True),
                                        done=str(len(free)), action="claim"), status_code=303)


@router.post("/review/bulk")
async def bulk(request: Request, user: Principal = Depends(page_user)) -> Response:
    """Mark every pair of the filtered queue match or no_match, with one reason, in one commit.

    ``expected`` is the number of pairs the steward saw: when the filtered queue has changed
    size since, nothing is written (409) and the steward looks again.
    """
    form = await checked_form(request)
    require_role(user, "steward")
    keep = from_query({k: form_text(form, k) for k in FILTER_KEYS})
    action, reason = form_text(form, "action"), form_text(form, "bulk_reason")  # "reason" is a filter
    if action not in DECIDING_ACTIONS:
        raise HTTPException(status_code=400, detail="a bulk decision is match or no_match")
    if not reason:
        raise HTTPException(status_code=400, detail="a bulk decision needs a reason")
    store = store_of(request)
    index, queue = _queue(store, keep, user.name)
    if form_text(form, "expected") != str(len(queue)):
        raise HTTPException(status_code=409, detail=f"The filtered queue now holds {len(queue)} pairs, not "
                            f"{form_text(form, 'expected') or '?'}: look at it again before deciding them all.")
    if len(queue) > MAX_BULK:
        raise HTTPException(status_code=400, detail=f"{len(queue)} pairs: narrow the filter to at most {MAX_BULK}")
    pairs = pairs_of(index, queue.order)
    risky = _risky_joins(store, pairs) if action == "match" else set()
    decisions = [pair_decision(user.name, action, left, right, reason) for left, right in pairs if (left, right) not in risky]
    store.append_decisions(decisions)
    return RedirectResponse(_with_query("/review", keep, done=str(len(decisions)), action=action,
                                        held=str(len(risky)) if risky else None), status_code=303)


def _risky_joins(store: Store, pairs: list[tuple[str, str]]) -> set[tuple[str, str]]:
    """The pairs whose match would join customers whose records disagree: a bulk match leaves them for one by one."""
    records = store.records({record for pair in pairs for record in pair})
    return {
        (left, right) for left, right in pairs
        if left in records and right in records and load_pair_context(store, records[left], records[right]).warns
    }


@router.post("/decide")
async def decide(request: Request, user: Principal = Depends(page_user)) -> Response:
    """Record match / no_match / unsure for two source records, from the queue or the "why not?" page."""
    form = await checked_form(request)
    require_role(user, "steward")
    action, record_a, record_b = form_text(form, "action"), form_text(form, "record_a"), form_text(form, "record_b")
    if action not in PAIR_ACTIONS or not record_a or not record_b or record_a == record_b:
        raise HTTPException(status_code=400, detail="a decision needs an action and two different records")
    records = store_of(request).records([record_a, record_b])
    if len(records) != 2:
        raise HTTPException(status_code=404, detail="unknown source record")
    if action == "match" and form_text(form, "confirm_join") != "yes" and load_pair_context(
        store_of(request), records[record_a], records[record_b]
    ).warns:
        raise HTTPException(status_code=409, detail="This match would join two customers whose records disagree "
                            "(birth date or name suffix). Look at both customers on the review page and tick "
                            "the confirmation to match them anyway.")
    decision = pair_decision(user.name, action, record_a, record_b, form_text(form, "comment"))
    store_of(request).append_decision(decision)
    if form_text(form, "origin") == "why":
        return RedirectResponse("/why?" + urlencode({"a": record_a, "b": record_b}), status_code=303)
    keep = from_query({k: form_text(form, k) for k in FILTER_KEYS})
    return RedirectResponse(_with_query("/review", keep, pair=form_text(form, "next_pair")), status_code=303)
