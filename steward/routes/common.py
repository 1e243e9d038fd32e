"""What every page route shares: the store, rendering with the user and CSRF token, form and query parsing."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from steward.auth import Principal, csrf_token
from steward.review import attribute_rows, waterfall
from steward.store import Store

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


def pair_view(request: Request, record_l: dict, record_r: dict, levels: dict, evidence: dict, weight: float) -> dict:
    """The attribute rows and weight waterfall of one pair, as the review and "why not?" pages show them."""
    comparisons = request.app.state.matching.comparisons
    return {
        "rows": attribute_rows(record_l, record_r, levels, evidence, comparisons),
        "waterfall": waterfall(evidence, weight, comparison_order(request)),
    }
