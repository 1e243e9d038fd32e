"""The cluster view of a golden record: its current records and the scored links between them, weak ones marked."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc
from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import Response

from schemas.privacy import mask_record, mask_records
from steward.auth import Principal, page_user
from steward.cluster import cluster_graph
from steward.review import latest_pair_decisions, pair_key
from steward.routes.common import render, store_of
from steward.store import Store, is_closed

router = APIRouter(include_in_schema=False)


def _steward_matches(store: Store, record_ids: list[str]) -> list[tuple[str, str]]:
    """Pairs of ``record_ids`` whose latest pair decision is a steward's match."""
    ids = pa.array(record_ids, pa.string())
    where = pc.field("record_id_l").isin(ids) & pc.field("record_id_r").isin(ids)
    latest = latest_pair_decisions(store.rows("steward_decisions", where))
    return [pair for pair, decision in latest.items() if decision["action"] == "match"]


@router.get("/cluster/{golden_id}")
def cluster(request: Request, golden_id: str, user: Principal = Depends(page_user)) -> Response:
    store = store_of(request)
    golden = store.golden(golden_id)
    if golden is None:
        raise HTTPException(status_code=404, detail="unknown golden id")
    if golden["status"] == "erased":
        raise HTTPException(status_code=410, detail=f"Golden record {golden_id} was erased. Nothing of it is kept.")
    members = [m for m in store.members(golden_id) if not is_closed(m)]
    ids = sorted(m["record_id"] for m in members)
    graph = cluster_graph(golden, members, store.scored_links(ids), _steward_matches(store, ids),
                          request.app.state.matching.thresholds)
    by_pair = {pair_key(link.left, link.right): link for link in graph.links}
    return render(
        request, "cluster.html", user, golden=mask_record(golden), members=mask_records(members), graph=graph,
        links=[by_pair[k] for k in sorted(by_pair)], thresholds=request.app.state.matching.thresholds,
    )
