"""Households: hand-built cases, stable ids, the "lives with" metrics, and hostile input (property-based)."""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings as hypothesis_settings
from hypothesis import strategies as st

from matching.household_evaluation import lives_with_metrics
from matching.households import REQUIRED_COLUMNS, HouseholdSettings, Households, find_households, split_unit

POSTCODE = "SW1A 2AB"
# Thirty family names that neither equal nor sound like each other.
NAMES = (
    "adams", "baker", "clarke", "dixon", "evans", "fisher", "gupta", "hughes", "ito", "jensen", "kowalski",
    "lopez", "murphy", "novak", "okafor", "patel", "quinn", "rossi", "schulz", "tanaka", "usman", "vargas",
    "weber", "xu", "yilmaz", "zhou", "andersson", "bianchi", "costa", "dubois",
)


def person(
    golden_id: str,
    family_name: str | None,
    line1: str | None = "12 high st",
    line2: str | None = None,
    postcode: str | None = POSTCODE,
    phone: str | None = None,
    email: str | None = None,
) -> dict[str, str | None]:
    return {
        "golden_id": golden_id, "given_name": "x", "family_name": family_name, "birth_date": None,
        "email": email, "phone": phone, "address_line1": line1, "address_line2": line2,
        "city": "london", "postcode": postcode, "country": "GB",
    }


def households(*people: dict, previous: pd.Series | None = None, **settings: int) -> Households:
    return find_households(pd.DataFrame(list(people)), previous=previous, settings=HouseholdSettings(**settings))


def groups(found: Households) -> set[tuple[str, ...]]:
    return set(found.households["golden_ids"])


def assignment(found: Households) -> pd.Series:
    return found.members.set_index("golden_id")["household_id"]


def background(count: int, family_name: str = "smith") -> list[dict]:
    """``count`` people called ``family_name``, each alone at an address of their own."""
    return [person(f"bg{i}", family_name, line1=f"{i} other rd", postcode=f"E1 {i}AA") for i in range(count)]


def test_two_families_in_two_flats_of_one_building() -> None:
    found = households(
        person("a1", "smith", line2="flat 1"),
        person("a2", "Smith", line1="Flat 1, 12 High St"),  # the flat in line 1, as some sources write it
        person("b1", "jones", line2="flat 2"),
        person("b2", "jones", line2="Apt 2"),
        person("c1", "smith", line2="flat 2"),  # a Smith in the Joneses' flat: no shared evidence with them
    )
    assert groups(found) == {("a1", "a2"), ("b1", "b2")}
    assert set(found.households["evidence"]) == {("family_name",)}
    assert found.households["address_key"].nunique() == 2


def test_a_care_home_is_not_one_household() -> None:
    reception, placeholder = "+441632960000", "none@none.com"
    residents = [
        person(f"r{i}", NAMES[i], line1="1 care home rd", phone=reception, email=placeholder) for i in range(30)
    ]
    residents[0]["family_name"] = residents[1]["family_name"] = "smith"  # two unrelated Smiths
    residents[2]["email"] = residents[3]["email"] = "the.couple@example.com"  # a couple who moved in together
    residents[4]["family_name"] = residents[5]["family_name"] = "quennell"  # a rare name: related
    found = households(*residents, *background(200))
    assert groups(found) == {("r2", "r3"), ("r4", "r5")}
    assert found.households.set_index("golden_ids")["evidence"].to_dict() == {
        ("r2", "r3"): ("email",), ("r4", "r5"): ("family_name",)
    }


def test_a_big_family_at_a_crowded_address_is_still_a_household() -> None:
    family = [person(f"f{i}", "smith", line1="3 mill ln") for i in range(8)]
    lodgers = [person(f"l{i}", NAMES[i], line1="3 mill ln") for i in range(3)]
    found = households(*family, *lodgers, *background(200, "brown"))
    assert groups(found) == {tuple(f"f{i}" for i in range(8))}


def test_a_chain_of_evidence_beyond_the_largest_household_is_not_formed() -> None:
    # 14 residents: 0-1, 2-3, ... share a phone, 1-2, 3-4, ... an email: one chain through all of them.
    people = [
        person(f"p{i:02d}", NAMES[i], line1="9 hall st", phone=f"+44207946{i // 2:04d}",
               email=f"link{(i + 1) // 2}@example.com")
        for i in range(14)
    ]
    found = households(*people, max_members=12)
    assert found.households.empty
    assert found.crowded_groups == 1


def test_a_couple_with_different_surnames_sharing_a_phone() -> None:
    found = households(person("a", "patel", phone="+447700900123"), person("b", "o'brien", phone="+447700900123"))
    assert groups(found) == {("a", "b")}
    assert found.households["evidence"].tolist() == [("phone",)]


def test_a_phone_many_customers_use_is_not_evidence() -> None:
    shared = "+441632960001"
    elsewhere = [person(f"x{i}", NAMES[i], line1=f"{i} far rd", phone=shared) for i in range(13)]
    found = households(person("a", "patel", phone=shared), person("b", "kim", phone=shared), *elsewhere)
    assert found.households.empty


def test_same_surname_at_different_addresses_never_groups() -> None:
    found = households(
        person("a", "smith", line1="12 high st"),
        person("b", "smith", line1="14 high st"),
        person("c", "smith", line1="12 high st", postcode="N1 9GU"),
        person("d", "smith", line1=None, postcode=None),
    )
    assert found.households.empty


def test_an_address_without_evidence_never_groups() -> None:
    found = households(person("a", "patel"), person("b", "kim"))
    assert found.households.empty


@pytest.mark.parametrize(
    ("line1", "postcode"),
    [("12 high st", None), ("12 high st", "  "), (None, POSTCODE), ("flat 3", POSTCODE), ("", POSTCODE)],
)
def test_no_postcode_or_no_street_no_household(line1: str | None, postcode: str | None) -> None:
    found = households(person("a", "smith", line1=line1, postcode=postcode),
                       person("b", "smith", line1=line1, postcode=postcode))
    assert found.households.empty
    assert found.records_without_address == 2


def test_unknown_abbreviation_of_a_street_word_still_meets_its_full_form() -> None:
    found = households(person("a", "lewis", line1="110 ferndale terr"), person("b", "lewis", line1="110 ferndale ter"))
    assert groups(found) == {("a", "b")}


def test_a_typo_in_the_family_name_is_still_evidence() -> None:
    found = households(person("a", "crawford"), person("b", "craford"), person("c", "smith"), person("d", "smyth",
                       line1="7 low rd"))
    assert groups(found) == {("a", "b")}


def test_split_unit() -> None:
    assert split_unit("Flat 3, 12 High St") == ("12 high st", ["3"])
    assert split_unit("apt no 2r 5 elm st") == ("5 elm st", ["2r"])
    assert split_unit("12 high st flat") == ("12 high st", [])


FAMILY = [person("a", "smith", phone="+447700900001"), person("b", "smith"), person("c", "smith")]


def test_ids_are_deterministic_and_independent_of_row_order() -> None:
    first = households(*FAMILY)
    again = households(*reversed(FAMILY))
    assert first.households["household_id"].tolist() == again.households["household_id"].tolist()
    assert first.households["household_id"].str.fullmatch(r"H[0-9a-f]{16}").all()


def test_a_member_leaving_keeps_the_id() -> None:
    before = households(*FAMILY)
    after = households(*FAMILY[:2], previous=assignment(before))
    assert after.households["household_id"].tolist() == before.households["household_id"].tolist()
    assert after.kept_ids == 1


def test_a_member_joining_keeps_the_id() -> None:
    before = households(*FAMILY[:2])
    after = households(*FAMILY, previous=assignment(before))
    assert after.households["household_id"].tolist() == before.households["household_id"].tolist()
    assert after.households["golden_ids"].tolist() == [("a", "b", "c")]


def test_a_household_keeping_half_its_members_or_fewer_gets_a_new_id() -> None:
    before = households(*FAMILY[:2])
    after = households(FAMILY[0], person("d", "smith"), previous=assignment(before))
    assert after.households["household_id"].tolist() != before.households["household_id"].tolist()
    assert after.kept_ids == 0


def test_a_household_split_in_two_keeps_the_id_on_the_majority_side_only() -> None:
    four = [person(k, "smith") for k in "abcd"]
    before = households(*four)
    moved = person("d", "smith", line1="99 new rd")
    after = households(*four[:3], moved, person("e", "smith", line1="99 new rd"), previous=assignment(before))
    kept = after.households.set_index("golden_ids")["household_id"]
    assert kept[("a", "b", "c")] == before.households["household_id"].iloc[0]
    assert kept[("d", "e")] != before.households["household_id"].iloc[0]


def test_a_fresh_id_never_reuses_a_previous_id() -> None:
    couple = households(*FAMILY[:2])
    stale = pd.Series(couple.households["household_id"].iloc[0], index=["x", "y", "z"])  # same id, other people
    found = households(*FAMILY[:2], previous=stale)
    assert found.households["household_id"].iloc[0] != stale.iloc[0]


def test_missing_columns_and_duplicate_ids_are_refused() -> None:
    with pytest.raises(ValueError, match="lack columns"):
        find_households(pd.DataFrame({"golden_id": ["a"]}))
    with pytest.raises(ValueError, match="more than one row"):
        households(person("a", "smith"), person("a", "smith"))


def test_lives_with_metrics() -> None:
    members = pd.Series({"a": "h1", "b": "h1", "c": "h2", "d": "h2"})
    truth = pd.Series({"a": "t1", "b": "t1", "c": "t1", "d": None, "e": "t2", "f": "t2"})
    metrics = lives_with_metrics(members, truth)
    # predicted pairs: ab, cd; true pairs: ab, ac, bc, ef
    assert (metrics.tp, metrics.fp, metrics.fn) == (1, 1, 3)
    assert metrics.precision == pytest.approx(0.5)
    assert metrics.recall == pytest.approx(0.25)


# --- hostile input -------------------------------------------------------------

hostile = st.one_of(
    st.none(),
    st.text(max_size=20),
    st.text(alphabet=st.characters(codec="utf-8"), max_size=20),
    st.sampled_from(["", " ", "\x00", "\u200b", "NaN", "null", "李小龍", "مرحبا", "👩‍👩‍👧‍👦", "flat", "#", "ǅ"]),
    st.integers(min_value=1_000, max_value=50_000).map(lambda n: "x" * n),
    st.integers(),
    st.floats(),
)
# Values from small pools, so that households do form.
pools = {
    "family_name": st.sampled_from(["smith", "jones", "Smith", None]),
    "phone": st.sampled_from(["+447700900001", "+447700900002", None]),
    "email": st.sampled_from(["a@b.com", "A@B.com ", None]),
    "address_line1": st.sampled_from(["12 high st", "flat 2 12 high st", "3 elm rd", None]),
    "address_line2": st.sampled_from(["flat 2", "Apt 2", None]),
    "postcode": st.sampled_from(["SW1A 2AB", "sw1a2ab", None]),
}


@st.composite
def golden_tables(draw: st.DrawFn) -> pd.DataFrame:
    n = draw(st.integers(min_value=0, max_value=25))
    columns: dict[str, list] = {"golden_id": [f"g{i}" for i in range(n)]}
    for column in REQUIRED_COLUMNS[1:]:
        columns[column] = [draw(st.one_of(pools[column], hostile)) for _ in range(n)]
    return pd.DataFrame(columns, dtype=object)


@hypothesis_settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(golden_tables(), st.integers(min_value=2, max_value=6), st.integers(min_value=2, max_value=6))
def test_any_values_give_valid_households(golden: pd.DataFrame, max_members: int, crowded: int) -> None:
    settings = HouseholdSettings(max_members=max_members, crowded_residents=crowded)
    found = find_households(golden, settings=settings)
    table, members = found.households, found.members
    assert (table["size"] >= 2).all() and (table["size"] <= max_members).all()
    assert not members["golden_id"].duplicated().any()  # at most one household each
    assert members["golden_id"].isin(golden["golden_id"]).all()
    assert table["size"].sum() == len(members)
    assert (table["golden_ids"].map(len) == table["size"]).all()
    assert table["household_id"].is_unique
    assert all(len(evidence) >= 1 for evidence in table["evidence"])
    by_member = members.groupby("household_id")["golden_id"].agg(lambda ids: tuple(sorted(ids)))
    assert by_member.to_dict() == table.set_index("household_id")["golden_ids"].to_dict()
    # Given its own assignment as the previous one, every household keeps its id.
    again = find_households(golden, previous=assignment(found), settings=settings)
    assert again.households["household_id"].tolist() == table["household_id"].tolist()
    assert again.kept_ids == len(table)


def test_hostile_golden_ids() -> None:
    ids = ["\ud800", "李", "0", "\x00", "x" * 10_000]
    found = find_households(pd.DataFrame([person(i, "smith") for i in ids]))
    assert sorted(found.households["golden_ids"].iloc[0]) == sorted(ids)
