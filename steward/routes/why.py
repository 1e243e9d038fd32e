"""The "why not?" page: two source records scored with the current model, and why they were (not) linked."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from schemas.privacy import mask_record
from steward import explain
from steward.auth import Principal, page_user
from steward.decisions import effective_decisions
from steward.review import latest_pair_decisions, pair_key
from steward.routes.common import MAX_QUERY, load_pair_context, pair_view, render, store_of

router = APIRouter(include_in_schema=False)


@router.get("/why")
def why(request: Request, user: Principal = Depends(page_user), a: str = "", b: str = "") -> Response:
    store = store_of(request)
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
            context["latest"] = latest_pair_decisions(effective_decisions(store.pair_decisions(a, b))).get(pair_key(a, b))
            if saved is not None:
                frequencies = {c.column: saved.share(c.column, left.get(c.column)) for c in settings.tf_comparisons}
                scored = explain.score_pair(settings, model, explain.comparison_batch(settings, left, right, frequencies))
                context["score"] = scored
                context["view"] = pair_view(request, left, right, scored.levels, scored.evidence, scored.match_weight)
                context["pair_ctx"] = context["view"]["context"]
            else:
                context["pair_ctx"] = load_pair_context(store, left, right)
    return render(request, "why.html", user, **context)
