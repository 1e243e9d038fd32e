from __future__ import annotations

import datetime as dt
import re

import pytest
from fastapi.testclient import TestClient

from matching.settings import Thresholds
from steward.cluster import MARGIN, MIN_RING, V_MARGIN, ClusterGraph, Link, Node, cluster_graph, strength
from tests.steward.conftest import log_in
from tests.steward.fake_lake import ERASED_GOLDEN, FATHER_GOLDEN, RETIRED, SONS_ACCOUNT

THRESHOLDS = Thresholds(match=0.9, review=0.5)
[(RETIRED_ID, SURVIVOR)] = RETIRED.items()
D = dt.date
GOLDEN = {"golden_id": "G1", "birth_date": D(1952, 3, 9), "name_suffix": "sr"}


def member(record_id: str, **values: object) -> dict:
    return {"record_id": record_id, "full_name": "george baxter", **values}


def scored(left: str, right: str, probability: float) -> dict:
    return {"record_id_l": left, "record_id_r": right, "match_probability": probability, "match_weight": 0.0}


@pytest.mark.parametrize(("probability", "expected"), [(0.95, "strong"), (0.9, "strong"), (0.7, "weak"),
                                                       (0.5, "weak"), (0.2, "against")])
def test_link_strength_by_threshold(probability: float, expected: str) -> None:
    assert strength(probability, THRESHOLDS) == expected


def test_four_records_on_a_circle_with_weak_links_marked() -> None:
    members = [member("d:4"), member("c:3", birth_date=D(1972, 7, 30), name_suffix="jr"),
               member("b:2", birth_date=D(1952, 3, 9)), member("a:1", name_suffix="sr")]
    links = [scored("a:1", "b:2", 0.99), scored("b:2", "c:3", 0.6), scored("a:1", "c:3", 0.1),
             scored("c:3", "x:9", 0.99)]  # x:9 is no member: left out
    graph = cluster_graph(GOLDEN, members, links, [("d:4", "a:1"), ("c:3", "b:2")], THRESHOLDS)
    x, y = MIN_RING + MARGIN, MIN_RING + V_MARGIN  # the centre
    top, right, bottom, left = (x, y - MIN_RING), (x + MIN_RING, y), (x, y + MIN_RING), (x - MIN_RING, y)
    assert graph == ClusterGraph(
        nodes=(
            Node("a:1", *top, "middle", top[0], top[1] - 28, "george baxter", "sr", False),
            Node("b:2", *right, "start", right[0] + 15, right[1], "george baxter", "1952-03-09", False),
            Node("c:3", *bottom, "middle", bottom[0], bottom[1] + 19, "george baxter", "1972-07-30 jr", True),
            Node("d:4", *left, "end", left[0] - 15, left[1], "george baxter", "", False),
        ),
        links=(
            Link("a:1", "b:2", *top, *right, 0.99, "strong"),
            Link("a:1", "c:3", *top, *bottom, 0.1, "against"),
            Link("b:2", "c:3", *right, *bottom, 0.6, "steward"),  # weak, but a steward matched them
            Link("a:1", "d:4", *top, *left, None, "steward"),  # matched by a steward, never scored
        ),
        width=2 * x,
        height=2 * y,
        loose=(),
    )
    assert [link.marked for link in graph.links] == [False, True, False, False]
    unconfirmed = cluster_graph(GOLDEN, members, links, [], THRESHOLDS)
    assert [(link.strength, link.marked) for link in unconfirmed.links] == [
        ("strong", False), ("against", True), ("weak", True)
    ]
    assert unconfirmed.loose == ("c:3", "d:4")  # held by a weak link and one against; by none


def test_one_record_and_no_links() -> None:
    graph = cluster_graph(GOLDEN, [member("a:1")], [], [], THRESHOLDS)
    assert graph == ClusterGraph(
        nodes=(Node("a:1", MARGIN, V_MARGIN, "middle", MARGIN, V_MARGIN - 28, "george baxter", "", False),),
        links=(), width=2 * MARGIN, height=2 * V_MARGIN, loose=(),
    )


def test_the_ring_grows_with_the_records() -> None:
    graph = cluster_graph(GOLDEN, [member(f"r:{i:02d}") for i in range(40)], [], [], THRESHOLDS)
    assert graph.width > 2 * (MIN_RING + MARGIN)
    xs = [n.x for n in graph.nodes]
    assert min(xs) >= MARGIN - 1 and max(xs) <= graph.width - MARGIN + 1
    assert len({(n.x, n.y) for n in graph.nodes}) == 40


def test_cluster_page_draws_the_records_and_marks_weak_links(rich_client: TestClient) -> None:
    log_in(rich_client, "victor")
    page = rich_client.get(f"/cluster/{FATHER_GOLDEN}").text
    svg = page[page.index("<svg"):page.index("</svg>")]
    assert svg.count("<circle") == 3 and svg.count('class="node odd"') == 0
    assert re.findall(r'<g class="link ([\w ]+)">', svg) == ["strong", "against marked", "weak marked"]
    assert f"Held by weak links only: {SONS_ACCOUNT}." in page
    rows = re.findall(r'<tr class="(\w+)">\s*<td>([^<]+)</td>', page)
    assert rows == [("strong", "billing:100760 – sales_crm:760"), ("against", f"billing:100760 – {SONS_ACCOUNT}"),
                    ("weak", f"sales_crm:760 – {SONS_ACCOUNT}")]
    assert f'href="/golden/{FATHER_GOLDEN}"' in page


def test_cluster_page_of_a_lake_without_scored_pairs(client: TestClient) -> None:
    log_in(client, "victor")
    page = client.get("/cluster/G3f2a9c4e1b7d0a53").text
    assert "No scored links between these records" in page and page.count("<circle") == 4
    assert "•••" not in page and "AB123456C" not in page  # no national id on the graph at all


def test_cluster_page_refuses_unknown_erased_and_anonymous(client: TestClient) -> None:
    assert client.get(f"/cluster/{FATHER_GOLDEN}", follow_redirects=False).status_code == 303
    log_in(client, "victor")
    assert client.get("/cluster/G0000000000000000").status_code == 404
    erased = client.get(f"/cluster/{ERASED_GOLDEN}")
    assert erased.status_code == 410 and "ingrid" not in erased.text


def test_cluster_page_of_a_retired_id_points_to_its_survivor(client: TestClient) -> None:
    log_in(client, "victor")
    page = client.get(f"/cluster/{RETIRED_ID}").text
    assert f'retired into <a href="/cluster/{SURVIVOR}">{SURVIVOR}</a>' in page and "<circle" not in page


def test_a_stewards_match_holds_a_weakly_linked_record(rich_client: TestClient) -> None:
    token = log_in(rich_client, "alice")
    form = {"csrf_token": token, "record_a": SONS_ACCOUNT, "record_b": "sales_crm:760", "origin": "why",
            "action": "match"}
    assert rich_client.post("/decide", data=form, follow_redirects=False).status_code == 303
    page = rich_client.get(f"/cluster/{FATHER_GOLDEN}").text
    assert re.findall(r'<g class="link ([\w ]+)">', page) == ["strong", "against marked", "steward"]
    assert "Held by weak links only" not in page
