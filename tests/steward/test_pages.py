from __future__ import annotations

import re

from deltalake import DeltaTable
from fastapi.testclient import TestClient

from steward.config import StewardSettings

from tests.steward.conftest import log_in

ONEILL = "G3f2a9c4e1b7d0a53"


def queue_ids(html: str) -> list[str]:
    return re.findall(r'<span class="ids">([^<]+)<br>([^<]+)</span>', html)


def percent(probability: float) -> str:
    return f"{probability:.1%}".replace("%", " %")


def test_review_shows_the_most_uncertain_pair_with_evidence(client: TestClient, settings: StewardSettings) -> None:
    log_in(client, "victor")
    page = client.get("/review").text
    assert queue_ids(page)[0] == ("billing:100412", "webshop:W-99aa0b1c")
    candidates = DeltaTable(f"{settings.lake}/gold/match_candidates").to_pandas()
    stored = candidates.assign(uncertainty=candidates["match_weight"].abs()).sort_values(["uncertainty", "pair_id"])
    shown = re.findall(r'<span class="p">([^<]*)</span>\s*<span class="ids">([^<]+)<br>([^<]+)</span>', page)
    assert shown == [(percent(p), left, right) for p, left, right in
                     stored[["match_probability", "record_id_l", "record_id_r"]].itertuples(index=False)]
    assert re.findall(r'<span class="prob">([^<]*)</span>', page) == [percent(stored["match_probability"].iloc[0])]
    assert "Pair 1 of 5" in page
    assert 'class="badge disagree"' in page and 'class="badge agree"' in page and 'class="badge missing"' in page
    assert '<rect class="bar prior"' in page and '<rect class="bar total"' in page
    assert "deciding needs the steward role" in page and 'id="decide-form"' not in page


def test_deciding_records_the_pair_and_loads_the_next_one(client: TestClient) -> None:
    token = log_in(client, "alice")
    first = client.get("/review").text
    next_pair = re.search(r'name="next_pair" value="([^"]*)"', first).group(1)
    response = client.post(
        "/decide",
        data={"csrf_token": token, "record_a": "webshop:W-99aa0b1c", "record_b": "billing:100412",
              "action": "no_match", "origin": "review", "next_pair": next_pair, "comment": " different emails "},
        follow_redirects=False,
    )
    assert response.status_code == 303 and "pair=" in response.headers["location"]
    page = client.get(response.headers["location"]).text
    assert ("billing:100412", "webshop:W-99aa0b1c") not in queue_ids(page)
    assert "Pair 1 of 4" in page and 'class="current"' in page
    [row] = client.app.state.store.decisions()
    assert (row["record_id_l"], row["record_id_r"], row["action"], row["comment"]) == (
        "billing:100412", "webshop:W-99aa0b1c", "no_match", "different emails"
    )


def test_unsure_keeps_the_pair_in_the_queue_marked(client: TestClient) -> None:
    """An unsure pair stays in the queue, moved to the end and marked (issue 17: it used to stay on top)."""
    token = log_in(client, "alice")
    pair = {"csrf_token": token, "record_a": "billing:100412", "record_b": "webshop:W-99aa0b1c", "origin": "review"}
    client.post("/decide", data={**pair, "action": "unsure"})
    assert queue_ids(client.get("/review").text)[-1] == ("billing:100412", "webshop:W-99aa0b1c")
    page = client.get("/review", params={"pair": "billing:100412|webshop:W-99aa0b1c"}).text
    assert "Marked <strong>unsure</strong> by alice" in page and "Pair 5 of 5" in page


def test_filters_narrow_the_queue(client: TestClient) -> None:
    log_in(client, "victor")
    assert len(queue_ids(client.get("/review", params={"source": "billing"}).text)) == 2
    assert len(queue_ids(client.get("/review", params={"min": "0.9", "max": "1"}).text)) == 2
    assert len(queue_ids(client.get("/review", params={"min": "nonsense"}).text)) == 5


def test_golden_record_shows_sources_lineage_and_history(client: TestClient) -> None:
    log_in(client, "victor")
    page = client.get(f"/golden/{ONEILL}").text
    assert "maggie.oneill@outlook.com" in page and "<code>webshop:W-7f3e9a10</code>" in page  # email's source
    assert page.count('class="chosen"') >= 5  # cells that supplied golden values
    assert "G04e1d8b2c7f9a316" in page and "retire" in page  # history of the absorbed id
    retired = client.get("/golden/G04e1d8b2c7f9a316").text
    assert "This golden id is retired" in retired and f'href="/golden/{ONEILL}"' in retired


def test_split_and_merge_need_a_reason_and_valid_ids(client: TestClient) -> None:
    token = log_in(client, "alice")
    split = {"csrf_token": token, "record_id": "support_desk:SUP-000311", "reason": ""}
    assert client.post(f"/golden/{ONEILL}/split", data=split).status_code == 400
    assert client.post(f"/golden/{ONEILL}/split", data={**split, "reason": "x", "record_id": "sales_crm:501"}).status_code == 400
    merge = {"csrf_token": token, "reason": "same person"}
    assert client.post(f"/golden/{ONEILL}/merge", data={**merge, "other_id": "G04e1d8b2c7f9a316"}).status_code == 409
    assert client.post(f"/golden/{ONEILL}/merge", data={**merge, "other_id": ONEILL}).status_code == 400
    assert client.app.state.store.decisions() == []
    done = client.post(f"/golden/{ONEILL}/split", data={**split, "reason": "born 1991, another person"})
    assert "Split recorded" in done.text and "born 1991, another person" in done.text
    merged = client.post("/golden/G8d4417fa0c2b9e35/merge", data={**merge, "other_id": "G71c0e2d94ab3f618"})
    assert "Merge recorded" in merged.text
    actions = sorted((d["action"], d["golden_id"], d["golden_id_other"]) for d in client.app.state.store.decisions())
    assert actions == [("merge", "G71c0e2d94ab3f618", "G8d4417fa0c2b9e35"), ("split", ONEILL, None)]


def test_a_split_of_several_records_names_them_and_the_members_they_leave(client: TestClient) -> None:
    token = log_in(client, "alice")
    taken = ["webshop:W-7f3e9a10", "support_desk:SUP-000311"]
    page = client.get(f"/golden/{ONEILL}").text
    assert page.count('form="split-together"') == 4 and 'id="split-together"' in page
    everyone = {"csrf_token": token, "reason": "x", "record_id": [*taken, "sales_crm:412", "billing:100233"]}
    assert client.post(f"/golden/{ONEILL}/split", data=everyone).status_code == 400  # nothing would be left
    assert client.post(f"/golden/{ONEILL}/split", data={**everyone, "record_id": []}).status_code == 400

    done = client.post(f"/golden/{ONEILL}/split", data={"csrf_token": token, "record_id": taken, "reason": "a daughter"})

    assert "Split recorded" in done.text
    (split,) = client.app.state.store.decisions()
    assert (split["action"], split["golden_id"], split["record_id_l"]) == ("split", ONEILL, "support_desk:SUP-000311")
    assert split["record_ids"] == sorted(taken)
    assert split["other_ids"] == ["billing:100233", "sales_crm:412"]


def test_why_not_scores_two_records_and_checks_each_blocking_rule(client: TestClient) -> None:
    log_in(client, "victor")
    page = client.get("/why", params={"a": "sales_crm:530", "b": "billing:100412"}).text
    assert "match probability" in page and '<rect class="bar total"' in page
    assert "<th scope=\"row\">email</th>" in page
    assert "does-not-pair" in page
    assert "Unknown record id" in client.get("/why", params={"a": "sales_crm:530", "b": "nope:1"}).text
