from __future__ import annotations

import datetime as dt
import re

from fastapi.testclient import TestClient

from config.lake import Lake
from steward.config import StewardSettings
from steward.context import Conflict, PairContext, Side, conflicts, pair_context
from steward.store import Store
from tests.steward.conftest import log_in
from tests.steward.fake_lake import FAMILY_PAIR, FATHER_GOLDEN, ONEILL_NATIONAL_ID, SON_GOLDEN, SONS_ACCOUNT

D = dt.date
FATHER, SON = D(1952, 3, 9), D(1972, 7, 30)


def member(record_id: str, **values: object) -> dict:
    return {"record_id": record_id, **values}


SON_RECORDS = [member("crm:2", full_name="george baxter", name_suffix="jr", birth_date=SON, email="gb@x.org"),
               member("desk:1", full_name="george baxter", name_suffix="jr", birth_date=SON, email="gb@x.org")]
FATHER_RECORDS = [member("crm:1", full_name="george baxter", name_suffix="sr", birth_date=FATHER, email="g@bt.com",
                         national_id=ONEILL_NATIONAL_ID),
                  member("web:1", full_name="george baxter", email="gb@x.org")]
SON_GOLDEN_ROW = {"golden_id": "Gson", "full_name": "george baxter", "birth_date": SON}
FATHER_GOLDEN_ROW = {"golden_id": "Gdad", "full_name": "george baxter", "birth_date": FATHER,
                     "national_id": ONEILL_NATIONAL_ID}
MASKED = "•••••456C"


def test_a_match_joining_a_son_to_his_fathers_customer_warns() -> None:
    context = pair_context(SON_RECORDS[1], FATHER_RECORDS[1], SON_GOLDEN_ROW, FATHER_GOLDEN_ROW,
                           SON_RECORDS, FATHER_RECORDS)
    masked_father = dict(FATHER_RECORDS[0], national_id=MASKED)
    assert context == PairContext(
        left=Side(
            record_id="desk:1", golden_id="Gson", golden=SON_GOLDEN_ROW,
            members=(SON_RECORDS[1], SON_RECORDS[0]),  # the pair's record first
            highlighted=frozenset({("desk:1", "name_suffix"), ("crm:2", "name_suffix"), ("desk:1", "birth_date"),
                                   ("crm:2", "birth_date")}),
        ),
        right=Side(
            record_id="web:1", golden_id="Gdad", golden=dict(FATHER_GOLDEN_ROW, national_id=MASKED),
            members=(FATHER_RECORDS[1], masked_father),
            # The father's email is on none of the son's records; the son's email on the father's web record is.
            highlighted=frozenset({("crm:1", "name_suffix"), ("crm:1", "birth_date"), ("crm:1", "email")}),
        ),
        columns=("full_name", "name_suffix", "birth_date", "email", "national_id"),
        conflicts=(Conflict("birth_date", (SON,), (FATHER,)), Conflict("name_suffix", ("jr",), ("sr",))),
    )
    assert context.warns and not context.same_customer
    assert (context.left.size, context.right.size) == (2, 2)


def test_no_warning_inside_one_customer_or_between_two_single_records() -> None:
    same = pair_context(SON_RECORDS[0], FATHER_RECORDS[0], SON_GOLDEN_ROW, SON_GOLDEN_ROW,
                        [SON_RECORDS[0], FATHER_RECORDS[0]], [SON_RECORDS[0], FATHER_RECORDS[0]])
    singles = pair_context(SON_RECORDS[0], FATHER_RECORDS[0], None, None, [], [])
    assert same.same_customer and not same.warns
    # Two records alone: the pair table shows all there is, so no extra warning.
    assert singles.conflicts and not singles.warns
    assert (singles.left.golden_id, singles.left.members, singles.right.members) == (
        None, (SON_RECORDS[0],), (dict(FATHER_RECORDS[0], national_id=MASKED),)
    )


def test_one_multi_record_side_is_enough_to_warn() -> None:
    context = pair_context(SON_RECORDS[1], FATHER_RECORDS[1], None, FATHER_GOLDEN_ROW, [], FATHER_RECORDS)
    assert context.warns and [c.attribute for c in context.conflicts] == ["birth_date", "name_suffix"]


def test_a_value_on_one_side_only_is_no_conflict() -> None:
    suffix_once = [member("a:1", name_suffix="jr", birth_date=SON)]
    no_suffix = [member("b:1", birth_date=SON), member("b:2", birth_date=SON)]
    two_birth_dates = [member("c:1", birth_date=SON), member("c:2", birth_date=FATHER)]
    assert conflicts(suffix_once, no_suffix) == ()
    assert conflicts(suffix_once, two_birth_dates) == (Conflict("birth_date", (SON,), (FATHER, SON)),)


def test_store_reads_the_scored_links_between_records(rich_settings: StewardSettings) -> None:
    store = Store(Lake.at(rich_settings.lake))
    links = store.scored_links(["sales_crm:760", "billing:100760", SONS_ACCOUNT, "sales_crm:412"])
    assert sorted((r["record_id_l"], r["record_id_r"]) for r in links) == [
        ("billing:100760", "sales_crm:760"), ("billing:100760", SONS_ACCOUNT), ("sales_crm:760", SONS_ACCOUNT),
    ]
    assert all(0.0 <= r["match_probability"] <= 1.0 and isinstance(r["match_weight"], float) for r in links)


def pair_page(client: TestClient) -> str:
    return client.get("/review?pair=" + "|".join(sorted(FAMILY_PAIR))).text


def test_review_page_shows_both_customers_and_the_warning(rich_client: TestClient) -> None:
    log_in(rich_client, "alice")
    page = pair_page(rich_client)
    above_the_pair = page[:page.index('<table class="pair">')]
    assert re.findall(r'<p class="alert merge-hint"><a href="#customers">([^<]+)</a>', above_the_pair) == [
        "A match would join customers whose records disagree\n  (birth date, name suffix): see the customers below."
    ]
    context = page[page.index('<section class="context"'):]
    assert re.findall(r'href="/golden/(\w+)">george baxter</a>', context) == [SON_GOLDEN, FATHER_GOLDEN]
    assert re.findall(r'href="/cluster/(\w+)"', context) == [SON_GOLDEN, FATHER_GOLDEN]
    warning = context[context.index('class="alert merge-warning"'):context.index("</div>")]
    assert "2 + 3 records" in warning
    assert re.findall(r"<li>([^<]+)</li>", warning) == [
        "birth date: 1972-07-30 on the left, 1952-03-09 on the right", "name suffix: jr on the left, sr on the right"
    ]
    members = re.findall(r'<tr(?: class="in-pair")?>\s*<th scope="row">([^<]+)</th>', context)
    assert members == ["support_desk:SUP-000761", "sales_crm:761", SONS_ACCOUNT, "billing:100760", "sales_crm:760"]
    # Son: suffix and birth date on both records; father: billing 4 (birth date, email, street, postcode),
    # sales_crm 6 (and suffix, phone); the son's webshop account none.
    assert context.count('class="differs"') == 14
    assert 'name="confirm_join"' in page


def test_a_match_that_would_join_disagreeing_customers_needs_the_confirmation(rich_client: TestClient) -> None:
    token = log_in(rich_client, "alice")
    a, b = FAMILY_PAIR
    form = {"csrf_token": token, "record_a": a, "record_b": b, "origin": "why", "action": "match"}
    refused = rich_client.post("/decide", data=form, follow_redirects=False)
    assert refused.status_code == 409 and "disagree" in refused.text
    assert rich_client.app.state.store.decisions() == []
    no_match = rich_client.post("/decide", data={**form, "action": "no_match"}, follow_redirects=False)
    confirmed = rich_client.post("/decide", data={**form, "confirm_join": "yes"}, follow_redirects=False)
    assert (no_match.status_code, confirmed.status_code) == (303, 303)
    assert [d["action"] for d in sorted(rich_client.app.state.store.decisions(), key=lambda d: d["decided_at"])] == [
        "no_match", "match"
    ]


def test_no_warning_between_records_of_customers_that_agree(client: TestClient) -> None:
    token = log_in(client, "alice")
    page = client.get("/review?pair=billing:100412|webshop:W-99aa0b1c").text
    assert "merge-warning" not in page and 'name="confirm_join"' not in page
    form = {"csrf_token": token, "record_a": "billing:100412", "record_b": "webshop:W-99aa0b1c", "origin": "why",
            "action": "match"}
    assert client.post("/decide", data=form, follow_redirects=False).status_code == 303


def test_why_page_shows_the_customers_too(rich_client: TestClient) -> None:
    log_in(rich_client, "victor")
    a, b = FAMILY_PAIR
    page = rich_client.get(f"/why?a={a}&b={b}").text
    assert 'class="alert merge-warning"' in page and "same email" in page
    assert 'name="confirm_join"' not in page  # a viewer gets no decision form


def test_a_bulk_match_leaves_the_joins_that_warn_for_one_by_one(rich_client: TestClient) -> None:
    token = log_in(rich_client, "alice")
    queued = re.findall(r'pair=([^"&]+)"', rich_client.get("/review").text)
    form = {"csrf_token": token, "action": "match", "bulk_reason": "checked the batch", "expected": str(len(set(queued)))}
    done = rich_client.post("/review/bulk", data=form, follow_redirects=False)
    assert done.status_code == 303
    page = rich_client.get(done.headers["location"]).text
    assert f"{len(set(queued)) - 1} pairs marked match; 1 left in the queue" in page
    decided = {(d["record_id_l"], d["record_id_r"]) for d in rich_client.app.state.store.decisions()}
    assert tuple(sorted(FAMILY_PAIR)) not in decided and len(decided) == len(set(queued)) - 1
