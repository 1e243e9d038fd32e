"""Households: golden customers who live together, with the evidence and a stable household id.

Pure pandas / numpy / scipy (and jellyfish's Metaphone): no Spark, no I/O. The input is golden customer
rows (``golden_id`` and the canonical attributes as ``gold/golden_customers``
holds them, already standardized); the output is every household of two or
more golden customers.

Who lives together:

1. The address key. ``postcode | street | unit``: the street line without its
   unit, and the unit (flat, apartment, suite...) wherever the source put it:
   ``"flat 3 12 high st"`` in line 1 and ``"12 high st"`` + ``"flat 3"`` in
   lines 1 and 2 are one key, ``"12 high st"`` + ``"flat 4"`` another, so two
   flats of one building never share a household. The unit designator word
   (flat, apt, unit, #, no, ...) is dropped, its value kept: ``"apt 3"`` and
   ``"unit 3"`` are one unit. Street words count by their first three letters
   (numbers whole), which absorbs abbreviations the standardizer does not know
   (``"terr"`` and ``"ter"``). A record without a postcode, or without a
   street left once the unit is taken out, has no key and joins no household:
   a bare street line (``"1 high st"``) names thousands of homes across a
   country. The city and country are not part of the key: the postcode is
   finer than the city, and a null country on one member would split a home.
2. Evidence. Residents of one key are joined when they share a family name, a
   phone or an email (an evidence group: the residents of one key holding one
   value of one attribute). Family names are compared by their sound
   (Metaphone), so that a typo the golden record kept (``"craford"``) still
   agrees; phones by their digits, emails case-folded. The address alone never
   groups, and a family name never groups without the address (the key is part
   of every group).
3. Crowding, measured from the data. Places where unrelated people share an
   address (a care home, a student hall, a PO box, a placeholder address) must
   not become one giant household:

   - a contact value (phone, email) held by more than ``max_members`` golden
     customers in the whole table is a shared or placeholder value (a care
     home's reception, ``none@none.com``), not a family's: not evidence;
   - an evidence group of more than ``max_members`` residents is not evidence;
   - at a crowded key (more than ``crowded_residents`` residents) evidence must
     single out a family: a shared family name counts only when chance does not
     explain it (below), and a shared phone or email only when it covers at most
     half of the residents (one that most residents share belongs to the place);
   - residents joined through their evidence into a group of more than
     ``max_members`` are not a household (counted in ``crowded_groups``).

   Chance, for a family name ``s`` shared by ``k`` of the ``n`` residents of a
   crowded key: with ``f`` the share of ``s`` among the family names of the
   rest of the table, the number of the other ``n - 1`` residents who would be
   called ``s`` by chance is about Poisson(``(n - 1) f``); the name counts when
   P(at least ``k - 1``) is below ``chance``. Two Smiths among 150 care-home
   residents are expected (not evidence); two residents with a rare name, or
   six Smiths at an eight-person address, are not (evidence). At ordinary keys
   the test is skipped: living at one small address is already strong
   evidence, and a couple named Nguyen or Kim must not be split because the
   name is common.

Household ids. A new household's id is ``H`` + 16 hex digits of the SHA-1 of
its sorted member golden ids. Given the previous assignment (golden id ->
household id), a household keeps the previous id of a household whose members
it holds more than half of (the largest such overlap, then the smallest id):
a member leaving a household of three, or a child joining a couple, keeps the
id; a couple becoming two single people retires it. A strict majority can only
be held by one new household, so an id is never given twice. A fresh id that
is already among the previous ids is re-hashed with a counter.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass

import jellyfish
import numpy as np
import pandas as pd
from scipy import sparse
from scipy.sparse.csgraph import connected_components
from scipy.stats import poisson

ID = "golden_id"
FAMILY_NAME = "family_name"
CONTACT_ATTRIBUTES: tuple[str, ...] = ("phone", "email")
EVIDENCE_ATTRIBUTES: tuple[str, ...] = (FAMILY_NAME, *CONTACT_ATTRIBUTES)
ADDRESS_ATTRIBUTES: tuple[str, ...] = ("address_line1", "address_line2", "postcode")
REQUIRED_COLUMNS: tuple[str, ...] = (ID, *EVIDENCE_ATTRIBUTES, *ADDRESS_ATTRIBUTES)

# Secondary unit designators (flat, apartment, suite...) and the words written
# between a designator and its value ("apt no 5", "flat number 2"); their value
# is the next other word.
UNIT_DESIGNATORS: frozenset[str] = frozenset(
    {"flat", "flats", "apt", "apts", "apartment", "apartments", "aptmnt", "aprt", "ap", "unit", "units",
     "ste", "suite", "room", "rm", "no", "nr", "nbr", "num", "number", "fl", "floor", "lot", "space", "spc",
     "trlr", "trailer"}
)
# Street words are compared on their first three letters: an abbreviation the
# standardizer's vocabulary does not know ("terr" beside "ter" for terrace)
# still meets its full form. Within one postcode and house number, two streets
# whose words all start alike are rare enough to ignore.
STREET_WORD_PREFIX = 3
MIN_PHONE_DIGITS = 7
_HASH_DIGITS = 16
_COMBINING = re.compile(r"[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]")
_NOT_WORD = re.compile(r"[\W_]+")
_NOT_ALNUM = re.compile(r"[^0-9A-Z]+")
_NOT_DIGIT = re.compile(r"\D+")


@dataclass(frozen=True)
class HouseholdSettings:
    """Limits on what a household may be; module docstring, point 3."""

    max_members: int = 12  # the largest household; also the most customers one phone / email may reach
    crowded_residents: int = 6  # more residents than this at one address key: a crowded key
    chance: float = 0.01  # a family name shared at a crowded key is evidence below this chance probability

    def __post_init__(self) -> None:
        if self.max_members < 2:
            raise ValueError(f"max_members must be at least 2, got {self.max_members}")
        if self.crowded_residents < 2:
            raise ValueError(f"crowded_residents must be at least 2, got {self.crowded_residents}")
        if not 0.0 < self.chance < 1.0:
            raise ValueError(f"chance must be in (0, 1), got {self.chance}")


@dataclass(frozen=True)
class Households:
    """The households of one golden table.

    ``households``: one row per household, by ``household_id``: ``address_key``,
    ``size``, ``golden_ids`` (sorted tuple), ``evidence`` (sorted tuple of the
    attributes its members share: ``email``, ``family_name``, ``phone``).
    ``members``: ``golden_id``, ``household_id``, one row per member.
    ``kept_ids``: how many households kept a previous id.
    """

    households: pd.DataFrame
    members: pd.DataFrame
    records_without_address: int  # no postcode, or no street line
    crowded_groups: int  # residents joined by evidence into more than max_members: not households
    kept_ids: int


def _as_text(value: object) -> str | None:
    """``value`` as text; None for a missing value (None, NaN, NA)."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value):
        return None
    return value if isinstance(value, str) else str(value)


def _clean(text: str) -> str:
    """Accent-folded, case-folded words of letters and digits, separated by single spaces."""
    folded = _COMBINING.sub("", unicodedata.normalize("NFKD", text)).casefold()
    return _NOT_WORD.sub(" ", folded).strip()


def _per_value(values: pd.Series, transform: Callable[[str], str | None]) -> np.ndarray:
    """``transform`` (text -> text or None) applied once per distinct value; object array, None when missing.

    Golden tables repeat values (postcodes, family names), so 1M rows cost
    one call per distinct value, and a missing value is never passed in.
    """
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    out_uniques = np.empty(len(uniques) + 1, dtype=object)
    for i, unique in enumerate(uniques):
        text = _as_text(unique)
        out_uniques[i] = None if text is None else transform(text)
    out_uniques[-1] = None  # code -1: missing
    return out_uniques[codes]


def _nonblank(text: str) -> str | None:
    return text or None


def _family_name(text: str) -> str | None:
    """The family name's sound (Metaphone), so that a typo (``"pille"`` for ``"pulle"``) still agrees.

    A name Metaphone has no code for (other scripts, digits, text that is not
    valid UTF-8) is compared as written.
    """
    name = _clean(text)
    try:
        sound = jellyfish.metaphone(name)
    except UnicodeEncodeError:
        sound = ""
    return _nonblank(f"~{sound}" if sound else name)


def _phone(text: str) -> str | None:
    digits = _NOT_DIGIT.sub("", text)
    return digits if len(digits) >= MIN_PHONE_DIGITS else None


def _email(text: str) -> str | None:
    email = text.strip().casefold()
    local, at, domain = email.partition("@")
    return email if at and local and domain else None


def _postcode(text: str) -> str | None:
    return _nonblank(_NOT_ALNUM.sub("", text.upper()))


def split_unit(text: str) -> tuple[str, list[str]]:
    """(street, unit words) of a street line: each designator's value leaves the street for the unit.

    ``"flat 3 12 high st"`` -> ``("12 high st", ["3"])``; a designator with no
    value after it is dropped.
    """
    words = _clean(text).split()
    street: list[str] = []
    unit: list[str] = []
    i = 0
    while i < len(words):
        if words[i] in UNIT_DESIGNATORS:
            while i < len(words) and words[i] in UNIT_DESIGNATORS:
                i += 1
            if i < len(words):
                unit.append(words[i])
        else:
            street.append(words[i])
        i += 1
    return " ".join(street), unit


def _street_word(word: str) -> str:
    """A street word as the key compares it: a word with a digit whole, any other by its first letters."""
    return word if any(c.isdigit() for c in word) else word[:STREET_WORD_PREFIX]


def _line1(text: str) -> str | None:
    """``street | unit words`` of line 1 (unit words space-separated), or None without a street."""
    street, unit = split_unit(text)
    key = " ".join(_street_word(word) for word in street.split())
    return f"{key}|{' '.join(unit)}" if key else None


def _line2(text: str) -> str | None:
    """The unit words of line 2: its words but the designators."""
    return " ".join(word for word in _clean(text).split() if word not in UNIT_DESIGNATORS)


def address_keys(rows: pd.DataFrame) -> np.ndarray:
    """``postcode|street|unit`` per row (object array), None without a postcode or a street.

    The unit is the sorted distinct unit words of both lines, so a flat given
    in line 1 by one source and in line 2 by another is one unit.
    """
    line1 = _per_value(rows["address_line1"], _line1)
    line2 = _per_value(rows["address_line2"], _line2)
    postcode = _per_value(rows["postcode"], _postcode)
    keys = np.empty(len(rows), dtype=object)
    for i, (first, second, code) in enumerate(zip(line1, line2, postcode)):
        if first is None or code is None:
            keys[i] = None
            continue
        street, _, unit = first.partition("|")
        words = sorted(set(unit.split()) | set((second or "").split()))
        keys[i] = f"{code}|{street}|{' '.join(words)}"
    return keys


_NORMALIZERS = {FAMILY_NAME: _family_name, "phone": _phone, "email": _email}


def _evidence_groups(
    address: np.ndarray, rows: pd.DataFrame, residents: np.ndarray, settings: HouseholdSettings
) -> pd.DataFrame:
    """Kept evidence groups, one row per (member row, group): ``row``, ``group``, ``attribute``.

    ``address``: per row, the code of its address key (-1: none); ``residents``:
    rows per address code.
    """
    kept = []
    for attribute in EVIDENCE_ATTRIBUTES:
        values = pd.Series(_per_value(rows[attribute], _NORMALIZERS[attribute]), dtype=object)
        present = values.notna().to_numpy()
        table_count = values.map(values.value_counts()).to_numpy()  # holders in the whole table
        with_address = present & (address >= 0)
        frame = pd.DataFrame(
            {"row": np.flatnonzero(with_address), "address": address[with_address],
             "value": values.to_numpy()[with_address]}
        )
        frame["table_count"] = table_count[with_address]
        frame["size"] = frame.groupby(["address", "value"], sort=False)["row"].transform("size")
        frame["residents"] = residents[frame["address"].to_numpy()]
        keep = (frame["size"] >= 2) & (frame["size"] <= settings.max_members)
        crowded = frame["residents"] > settings.crowded_residents
        if attribute == FAMILY_NAME:
            keep &= ~crowded | _beyond_chance(frame, int(present.sum()), settings.chance)
        else:
            keep &= frame["table_count"] <= settings.max_members
            keep &= ~crowded | (2 * frame["size"] <= frame["residents"])
        frame = frame[keep].copy()
        frame["group"] = frame.groupby(["address", "value"], sort=False).ngroup()
        kept.append(pd.DataFrame({"row": frame["row"], "group": frame["group"], "attribute": attribute}))
    offset = 0
    for part in kept:  # one group numbering across the attributes
        groups = int(part["group"].max()) + 1 if len(part) else 0
        part["group"] += offset
        offset += groups
    return pd.concat(kept, ignore_index=True)


def _beyond_chance(frame: pd.DataFrame, named: int, chance: float) -> pd.Series:
    """Per member row of a family-name group: is the group's size unlikely by chance at its key?

    ``frame``: ``table_count`` (holders of the name in the table), ``size``
    (holders at the key), ``residents`` (at the key); ``named``: rows with a
    family name in the table.
    """
    elsewhere = (frame["table_count"] - frame["size"]).to_numpy(dtype=np.float64)
    others = np.maximum(named - frame["residents"].to_numpy(dtype=np.float64), 1.0)
    expected = (frame["residents"].to_numpy(dtype=np.float64) - 1.0) * elsewhere / others
    # P(X >= size - 1) = sf(size - 2).
    tail = poisson.sf(frame["size"].to_numpy(dtype=np.float64) - 2.0, expected)
    return pd.Series(tail < chance, index=frame.index)


def _fresh_id(members: tuple[str, ...], taken: set[str]) -> str:
    """``H`` + hash of the sorted member ids; re-hashed with a counter while taken."""
    text = "\x1f".join(members)
    attempt = 0
    while True:
        salt = f"\x1e{attempt}" if attempt else ""
        digest = hashlib.sha1((text + salt).encode("utf-8", "surrogatepass")).hexdigest()
        candidate = f"H{digest[:_HASH_DIGITS]}"
        if candidate not in taken:
            return candidate
        attempt += 1


def _inherited(members: pd.DataFrame, previous: pd.Series) -> pd.Series:
    """Component -> previous household id it keeps: a strict majority of that household's members."""
    previous = previous.dropna()
    before = pd.DataFrame({ID: previous.index.map(str), "previous": previous.astype(str).to_numpy()})
    before = before.drop_duplicates(ID)
    overlap = members.merge(before, on=ID).groupby(["component", "previous"], sort=False).size()
    overlap = overlap.rename("overlap").reset_index()
    overlap["before"] = overlap["previous"].map(before["previous"].value_counts())
    overlap = overlap[2 * overlap["overlap"] > overlap["before"]]
    overlap = overlap.sort_values(["component", "overlap", "previous"], ascending=[True, False, True])
    overlap = overlap.drop_duplicates("component")
    return pd.Series(overlap["previous"].to_numpy(), index=overlap["component"].to_numpy())


def _empty(records_without_address: int, crowded_groups: int) -> Households:
    households = pd.DataFrame(
        {"household_id": pd.Series(dtype=object), "address_key": pd.Series(dtype=object),
         "size": pd.Series(dtype=np.int64), "golden_ids": pd.Series(dtype=object),
         "evidence": pd.Series(dtype=object)}
    )
    members = pd.DataFrame({ID: pd.Series(dtype=object), "household_id": pd.Series(dtype=object)})
    return Households(households, members, records_without_address, crowded_groups, 0)


def find_households(
    golden: pd.DataFrame, previous: pd.Series | None = None, settings: HouseholdSettings | None = None
) -> Households:
    """The households of the golden customers ``golden``; module docstring for the rules.

    ``golden``: one row per golden id with ``golden_id``, ``family_name``,
    ``phone``, ``email``, ``address_line1``, ``address_line2`` and
    ``postcode`` (other columns are ignored). ``previous``: the previous
    assignment (golden id -> household id), whose ids households keep.
    """
    settings = settings or HouseholdSettings()
    missing = [column for column in REQUIRED_COLUMNS if column not in golden.columns]
    if missing:
        raise ValueError(f"golden rows lack columns {missing}")
    if golden[ID].isna().any():
        raise ValueError("golden rows without a golden_id")
    rows = golden.reset_index(drop=True)
    ids = rows[ID].map(str).to_numpy(dtype=object)
    if pd.Index(ids).has_duplicates:
        raise ValueError("a golden_id appears in more than one row")

    keys = address_keys(rows)
    address, key_values = pd.factorize(pd.Series(keys, dtype=object), use_na_sentinel=True)
    records_without_address = int((address < 0).sum())
    residents = np.bincount(address[address >= 0], minlength=len(key_values))
    evidence = _evidence_groups(address, rows, residents, settings)
    if evidence.empty:
        return _empty(records_without_address, 0)

    # Rows and evidence groups as one graph: a row is joined to each group it is in.
    n, groups = len(rows), int(evidence["group"].max()) + 1
    graph = sparse.coo_matrix(
        (np.ones(len(evidence), dtype=np.int8), (evidence["row"].to_numpy(), n + evidence["group"].to_numpy())),
        shape=(n + groups, n + groups),
    )
    _, labels = connected_components(graph, directed=False)
    component = labels[:n]
    sizes = np.bincount(component)
    in_group = np.zeros(n, dtype=bool)
    in_group[evidence["row"].to_numpy()] = True
    crowded_groups = int(np.unique(component[in_group & (sizes[component] > settings.max_members)]).size)
    member = in_group & (sizes[component] >= 2) & (sizes[component] <= settings.max_members)
    if not member.any():
        return _empty(records_without_address, crowded_groups)

    members = pd.DataFrame({ID: ids[member], "component": component[member], "address_key": keys[member]})
    members = members.sort_values(["component", ID], kind="stable")
    per_component = members.groupby("component", sort=False).agg(
        golden_ids=(ID, tuple), address_key=("address_key", "first")
    )
    shared = pd.DataFrame(
        {"component": labels[n + evidence["group"].to_numpy()], "attribute": evidence["attribute"].to_numpy()}
    ).drop_duplicates()
    shared = shared[shared["component"].isin(per_component.index)].sort_values(["component", "attribute"])
    per_component["evidence"] = shared.groupby("component", sort=False)["attribute"].agg(tuple)

    inherited = _inherited(members[[ID, "component"]], previous) if previous is not None else pd.Series(dtype=object)
    taken = set(previous.dropna().astype(str)) if previous is not None else set()
    household_ids = {}
    for component_id, golden_ids in per_component["golden_ids"].items():
        if component_id in inherited.index:
            household_ids[component_id] = inherited[component_id]
        else:
            household_ids[component_id] = _fresh_id(golden_ids, taken)
            taken.add(household_ids[component_id])
    per_component["household_id"] = per_component.index.map(household_ids)
    per_component["size"] = per_component["golden_ids"].map(len).astype(np.int64)
    households = per_component.sort_values("household_id")[
        ["household_id", "address_key", "size", "golden_ids", "evidence"]
    ].reset_index(drop=True)
    members = pd.DataFrame(
        {ID: members[ID].to_numpy(), "household_id": members["component"].map(household_ids).to_numpy()}
    )
    return Households(households, members, records_without_address, crowded_groups, len(inherited))
