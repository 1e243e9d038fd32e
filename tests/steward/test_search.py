"""Search that forgives: folded accents and case, "FAMILY, Given", partial names, phones as people type them."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from fastapi.testclient import TestClient

from config.lake import Lake
from steward.search_index import TextIndex, fold, phone_digits, query_words
from steward.store import Store
from tests.steward.conftest import log_in

ONEILL = "G3f2a9c4e1b7d0a53"  # margaret oneill, phone +447700900412; SUP-000311 is +447700955310
HUGHES = ("G9e05c3b1d7a4f262", "Ga1f6b8e2c0d39574")


def test_folding_drops_accents_apostrophes_and_case() -> None:
    assert fold("Émily O’Neill") == "emily oneill"
    assert fold("STRAßE Øre Łukasz") == "strasse ore lukasz"
    assert query_words(" ONEILL,Margaret ") == ["oneill", "margaret"]


def test_phone_like_queries_give_their_digits_and_their_e164_digits() -> None:
    assert phone_digits("020 6748 0659", "GB") == ["02067480659", "442067480659"]
    assert phone_digits("+44 (0)20 6748-0659", "GB") == ["4402067480659", "442067480659"]
    assert phone_digits("100233", "GB") == []  # too short: a source key, not a phone
    assert phone_digits("margaret", "GB") == []


def test_a_text_index_folds_stored_values_too() -> None:
    table = pa.table({"id": ["1", "2", "3"], "name": ["Émilie Dubois", "emily o'brien", None],
                      "phone": ["+33612345678", None, "+442067480659"]})
    index = TextIndex.build(table, "id", ("name",), ("id",))
    assert index.matching("EMILIE", "GB", 10) == ["1"]
    assert index.matching("O’Brien, Emily", "GB", 10) == ["2"]
    assert index.matching("020 6748 0659", "GB", 10) == ["3"]
    assert index.matching("emil", "GB", 1) == ["1"]  # limit


@pytest.fixture
def store(lake_root: Path) -> Store:
    return Store(Lake.at(lake_root))


def ids(store: Store, query: str) -> list[str]:
    return [r["golden_id"] for r in store.search(query)]


@pytest.mark.parametrize("query", ["07700 900412", "+44 7700 900412", "0044 7700 900412", "(07700) 900-412"])
def test_phones_in_national_or_international_format(store: Store, query: str) -> None:
    assert ids(store, query) == [ONEILL]


def test_family_comma_given_accents_and_partial_names(store: Store) -> None:
    assert ids(store, "ONEILL, Margaret") == [ONEILL]
    assert ids(store, "Márgaret O’Neill") == [ONEILL]
    assert ids(store, "marg onei") == [ONEILL]
    assert ids(store, "HUGHES, thom") == list(HUGHES)
    assert ids(store, "margaret hughes") == []  # every word must match the same record
    assert ids(store, "vernon btinternet") == ["Gc53f949e01944f00"]  # a word no name has: looked for in emails


def test_a_source_records_match_is_named(store: Store) -> None:
    [found] = store.search("oneil, margaret")
    assert found["golden_id"] == ONEILL and "support_desk:SUP-000311" in found["matched_on"]
    [by_phone] = store.search("07700 955310")
    assert by_phone["matched_on"] == ["support_desk:SUP-000311"]


def test_the_search_page_forgives_too(client: TestClient) -> None:
    log_in(client, "victor")
    page = client.get("/search", params={"q": "ONEILL, Márgaret"}).text
    assert f'href="/golden/{ONEILL}"' in page and "1 golden record for" in page
