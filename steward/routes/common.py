"""What every page route shares: the store, rendering with the user and CSRF token, form and query parsing."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from steward.auth import Principal, csrf_token
from steward.context import PairContext, pair_context
from steward.evidence import attribute_rows, numbers, summary
from steward.review import waterfall
from steward.store import Store, is_closed

MAX_QUERY = 200


def store_of(request: Request) -> Store:
    return request.app.state.store


def render(request: Request, template: str, user: Principal | None, status_code: int = 200, **context: Any) -> Response:
    context.update(user=user, csrf=csrf_token(request), can_decide=bool(user and user.may("steward")))
    return request.app.state.templates.TemplateResponse(request, template, context, status_code=status_code)


def probability(text: str | None) -> float | None:
    try:
        value = float(text) if text not in (None, "") else None
    except ValueError:
        return None
    return value if value is not None and 0.0 <= value <= 1.0 else None


def form_text(form: Any, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def safe_next(target: str | None) -> str:
    """Only same-site paths: no scheme, no host, no ``//``."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/review"


def comparison_order(request: Request) -> list[str]:
    return [c.name for c in request.app.state.matching.comparisons]


def customer_of(store: Store, record_id: str) -> tuple[dict | None, list[dict]]:
    """The golden record ``record_id`` sits in now and its current members (None and [] before its first run)."""
    xref = store.xref_of_record(record_id)
    if xref is None or is_closed(xref):
        return None, []
    golden = store.golden(xref["golden_id"])
    if golden is None:
        return None, []
    return golden, [m for m in store.members(golden["golden_id"]) if not is_closed(m)]


def load_pair_context(store: Store, record_l: dict, record_r: dict) -> PairContext:
    """Each side's customer, read from the store (``steward.context`` has the logic)."""
    golden_l, members_l = customer_of(store, record_l["record_id"])
    golden_r, members_r = customer_of(store, record_r["record_id"])
    return pair_context(record_l, record_r, golden_l, golden_r, members_l, members_r)


def pair_view(request: Request, record_l: dict, record_r: dict, levels: dict, evidence: dict, weight: float) -> dict:
    """The attribute rows, their plain-words summary, the weight waterfall and both sides' customers of one
    pair, as the review and "why not?" pages show them."""
    comparisons = request.app.state.matching.comparisons
    rows = attribute_rows(record_l, record_r, levels, evidence, comparisons)
    return {
        "rows": rows,
        "summary": summary(rows),
        "numbers": numbers(rows),
        "waterfall": waterfall(evidence, weight, comparison_order(request)),
        "context": load_pair_context(store_of(request), record_l, record_r),
    }
