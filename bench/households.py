"""Households benchmark: "lives with" precision / recall / F1 of ``matching.households``, and its time.

Run from the repository root (no Spark, no Java)::

    .venv/bin/python -m bench.households --customers 20000 --scale 1000000

Every data set is turned into perfect golden records (one per true person),
so the figures measure household grouping alone, not deduplication:

- ``demo``: the people of ``demo/generator.py`` (``--customers``, ``--seed``),
  generated with the generator's own functions in the order ``generate`` uses,
  so they are the people of ``make demo``'s files for the same seed and size.
  Each person's source rows are read through the source mappings of
  ``conf/cdi.yaml`` and standardized as the pipeline does (street words from
  ``conf/address_tokens.yaml``, postcode letters and digits, phone E.164,
  email lower case); the golden record takes the family name most of the rows
  give, the most recent email and phone, and the address of the most recent
  row with a street line (``conf/survivorship.yaml``'s rules). Truth: people
  with one current address live together (the generator's couples, twins and
  fathers and sons; everyone else lives alone); shown again with the people
  whose golden record has no street line (known to the support desk only,
  which keeps none) as living alone: the ceiling of recall.
- ``pp_census_<noise>``: pseudopeople's 2020 decennial census (its sample
  data, ``--pp-seed``) without noise (``none``) and at its default noise; one
  row per ``simulant_id`` (the first: guardian duplicates count a person twice),
  family name, street number + name, unit and zipcode standardized as above.
  The census has no phone or email: the family name is the only evidence.
  Truth: ``household_id``. pseudopeople gives each kind of group quarters
  (nursing home, college, military, prison, ...) one ``household_id`` and one
  address, with 100-150 residents each, most of the true pairs; households
  deliberately do not group unrelated residents of such places, so the figures
  are shown twice: against every ``household_id`` (``all``) and against
  private households only (``private``: group-quarters residents live alone).
- ``--scale N``: the demo's golden records copied into ``N`` rows (each copy
  its own postcodes, phones and emails, the names as they are), timed without
  and with the previous assignment of the same run minus 1% of its members.
"""

from __future__ import annotations

import argparse
import platform
import random
import re
import sys
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from demo import generator
from matching.household_evaluation import lives_with_metrics
from matching.households import Households, address_keys, find_households
from matching.normalize_contact import to_e164
from matching.standardize import load_vocabulary

ROOT = Path(__file__).resolve().parent.parent
VOCABULARY = load_vocabulary(ROOT / "conf")
GOLDEN_COLUMNS = ("golden_id", "family_name", "phone", "email", "address_line1", "address_line2", "postcode")
_NOT_TEXT = re.compile(r"[^\w'-]+|_")


def _missing(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def standard_words(text: Any) -> str | None:
    """Accent-folded lower-case words (letters, digits, ``'``, ``-``), as ``matching.normalize.clean_text``."""
    if _missing(text):
        return None
    folded = "".join(c for c in unicodedata.normalize("NFKD", str(text)) if not unicodedata.combining(c))
    return " ".join(_NOT_TEXT.sub(" ", folded.lower()).split()) or None


def standard_line(text: Any) -> str | None:
    """A street line as ``normalize_address_line`` leaves it: words, each replaced by its short form."""
    words = standard_words(text)
    return " ".join(VOCABULARY.address_tokens.get(w, w) for w in words.split()) if words else None


def standard_family_name(text: Any) -> str | None:
    """Clean family name without a trailing generational suffix (``"smith jr"`` -> ``"smith"``)."""
    words = (standard_words(text) or "").split()
    while len(words) > 1 and words[-1] in VOCABULARY.suffixes:
        words.pop()
    return " ".join(words) or None


def standard_postcode(text: Any) -> str | None:
    """Upper case, letters and digits only, as ``clean_postcode``."""
    if _missing(text):
        return None
    return re.sub(r"[^A-Za-z0-9]", "", str(text)).upper() or None


def standard_email(text: Any) -> str | None:
    if _missing(text):
        return None
    return str(text).strip().lower() or None


# --- demo --------------------------------------------------------------------


def _demo_mappings() -> dict[str, dict[str, str]]:
    config = yaml.safe_load((ROOT / "conf" / "cdi.yaml").read_text(encoding="utf-8"))
    return {source["name"]: source["mapping"] for source in config["sources"]}


_SOURCE_COLUMNS = {
    generator.SALES_CRM: [name for name, _ in generator.CRM_COLUMNS[1:]],
    generator.BILLING: [name for name, _ in generator.BILLING_COLUMNS[1:]],
    generator.SUPPORT_DESK: list(generator.SUPPORT_COLUMNS[1:]),
}


def _flatten(values: Any, source: str) -> dict[str, Any]:
    """A source row as column -> value; the webshop's nested address as ``address.line1``..."""
    if source not in _SOURCE_COLUMNS:
        row = {k: v for k, v in values.items() if k != "address"}
        row.update({f"address.{k}": v for k, v in (values.get("address") or {}).items()})
        return row
    return dict(zip(_SOURCE_COLUMNS[source], values))


def _golden_of(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """One person's golden record from their standardized rows (each with ``when``)."""
    newest_first = sorted(rows, key=lambda row: row["when"], reverse=True)
    # Counted newest first: of equally frequent names, max keeps the most recent.
    names = Counter(row["family_name"] for row in newest_first if row["family_name"])
    family = max(names, key=names.__getitem__, default=None)
    address = next((row for row in newest_first if row["address_line1"]), {})
    return {
        "family_name": family,
        "email": next((row["email"] for row in newest_first if row["email"]), None),
        "phone": next((row["phone"] for row in newest_first if row["phone"]), None),
        "address_line1": address.get("address_line1"),
        "address_line2": address.get("address_line2"),
        "postcode": address.get("postcode"),
    }


def demo_golden(customers: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """(perfect golden records, truth golden id -> household) of the demo's people.

    Repeats ``generator.generate``'s draws (people, appearances, noise, formats,
    the shuffle of each chunk) without writing files.
    """
    mappings = _demo_mappings()
    rng = random.Random(seed)
    golden, truth = [], {}
    for people in generator.chunked(generator.generate_people(rng, customers), generator.PEOPLE_PER_CHUNK):
        chunk_rows: list[tuple[str, dict[str, Any]]] = []
        for person in people:
            for appearance in generator.plan_appearances(rng, person):
                observation = generator.observe(rng, person, appearance)
                values = generator.ROW_FORMATTERS[appearance.source](rng, observation)
                raw = _flatten(values, appearance.source)
                mapping = mappings[appearance.source]
                chunk_rows.append((person.entity_id, {
                    "when": observation.when,
                    "family_name": standard_family_name(raw.get(mapping.get("family_name"))),
                    "email": standard_email(raw.get(mapping.get("email"))),
                    "phone": to_e164(raw.get(mapping.get("phone")) or None, "GB"),
                    "address_line1": standard_line(raw.get(mapping.get("address_line1"))),
                    "address_line2": standard_line(raw.get(mapping.get("address_line2"))),
                    "postcode": standard_postcode(raw.get(mapping.get("postcode"))),
                }))
            truth[person.entity_id] = person.contact.address
        rng.shuffle(chunk_rows)  # as generate does, so the next chunk's draws stay the same
        by_person: dict[str, list[dict[str, Any]]] = {}
        for entity_id, row in chunk_rows:
            by_person.setdefault(entity_id, []).append(row)
        golden.extend({"golden_id": entity_id, **_golden_of(rows)} for entity_id, rows in by_person.items())
    truth_series = pd.Series(truth)
    households = pd.Series(pd.factorize(truth_series)[0], index=truth_series.index)
    return pd.DataFrame(golden, columns=GOLDEN_COLUMNS), households


# --- pseudopeople --------------------------------------------------------------


def census_golden(noise: str, seed: int) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """(perfect golden records, truth, private-household truth) of pseudopeople's 2020 census."""
    import pseudopeople

    clean = pseudopeople.generate_decennial_census(seed=seed, config=pseudopeople.NO_NOISE, year=2020)
    census = clean if noise == "none" else pseudopeople.generate_decennial_census(seed=seed, year=2020)
    # Noise may change the housing type written on a row: the kind of household comes from the clean data.
    housing = clean.drop_duplicates("household_id").set_index("household_id")["housing_type"].astype(str)
    census = census.drop_duplicates("simulant_id").reset_index(drop=True)
    street = (census["street_number"].astype(object).fillna("").astype(str) + " "
              + census["street_name"].astype(object).fillna("").astype(str))
    golden = pd.DataFrame({
        "golden_id": census["simulant_id"].astype(str),
        "family_name": census["last_name"].astype(object).map(standard_family_name),
        "phone": None,
        "email": None,
        "address_line1": street.map(standard_line),
        "address_line2": census["unit_number"].astype(object).map(standard_line),
        "postcode": census["zipcode"].astype(object).map(standard_postcode),
    })
    truth = pd.Series(census["household_id"].astype(str).to_numpy(), index=golden["golden_id"])
    private = truth.where((census["household_id"].map(housing) == "Household").to_numpy())
    return golden, truth, private


# --- scale ---------------------------------------------------------------------


def tiled(golden: pd.DataFrame, rows: int) -> pd.DataFrame:
    """``golden`` copied into ``rows`` rows: copy c has ids, postcodes, phones and emails of its own."""
    copies = -(-rows // len(golden))
    parts = []
    for copy in range(copies):
        part = golden.copy()
        part["golden_id"] = part["golden_id"] + f"-{copy}"
        part["postcode"] = part["postcode"] + f"{copy}"
        part["phone"] = part["phone"] + f"{copy:04d}"
        part["email"] = f"{copy}." + part["email"]
        parts.append(part)
    return pd.concat(parts, ignore_index=True).iloc[:rows]


# --- report --------------------------------------------------------------------


@dataclass(frozen=True)
class Result:
    name: str
    truth: str
    records: int
    households: int
    members: int
    true_pairs: int
    predicted_pairs: int
    precision: float
    recall: float
    f1: float
    seconds: float


def _score(name: str, truth_name: str, found: Households, truth: pd.Series, seconds: float) -> Result:
    metrics = lives_with_metrics(found.members.set_index("golden_id")["household_id"], truth)
    return Result(
        name, truth_name, len(truth), len(found.households), len(found.members), metrics.tp + metrics.fn,
        metrics.tp + metrics.fp, metrics.precision, metrics.recall, metrics.f1, seconds,
    )


def _timed(golden: pd.DataFrame, previous: pd.Series | None = None) -> tuple[Households, float]:
    start = time.perf_counter()
    found = find_households(golden, previous=previous)
    return found, time.perf_counter() - start


def format_results(results: list[Result]) -> str:
    lines = [
        "| data set | truth | golden records | households | members | true pairs | predicted pairs "
        "| precision | recall | F1 | time (s) |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(
            f"| {r.name} | {r.truth} | {r.records:,} | {r.households:,} | {r.members:,} | {r.true_pairs:,} "
            f"| {r.predicted_pairs:,} | {r.precision:.4f} | {r.recall:.4f} | {r.f1:.4f} | {r.seconds:.2f} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=20_000, help="demo people (default 20,000)")
    parser.add_argument("--seed", type=int, default=42, help="demo seed (default 42, as make demo)")
    parser.add_argument("--pp-seed", type=int, default=1, help="pseudopeople seed (default 1)")
    parser.add_argument("--noise", action="append", choices=("none", "default"),
                        help="pseudopeople noise (repeatable; default: both)")
    parser.add_argument("--scale", type=int, default=0, help="also time this many golden records (0: skip)")
    args = parser.parse_args(argv)
    print(f"{platform.platform()}, Python {platform.python_version()}, pandas {pd.__version__}", flush=True)

    results = []
    start = time.perf_counter()
    golden, truth = demo_golden(args.customers, args.seed)
    print(f"demo: {len(golden):,} people generated in {time.perf_counter() - start:.1f} s", flush=True)
    found, seconds = _timed(golden)
    results.append(_score("demo", "address", found, truth, seconds))
    # The support desk keeps no street line: a person known to it alone has no address key.
    addressed = truth.where(pd.Series(address_keys(golden), index=golden["golden_id"]).notna())
    results.append(_score("demo", "address, both with a street line", found, addressed, seconds))
    print(f"  evidence: {found.households['evidence'].map(', '.join).value_counts().to_dict()}", flush=True)

    for noise in args.noise or ("none", "default"):
        start = time.perf_counter()
        census, truth, private = census_golden(noise, args.pp_seed)
        print(f"pp_census_{noise}: {len(census):,} people generated in {time.perf_counter() - start:.1f} s",
              flush=True)
        found, seconds = _timed(census)
        results.append(_score(f"pp_census_{noise}", "all", found, truth, seconds))
        results.append(_score(f"pp_census_{noise}", "private", found, private, seconds))
        print(f"  crowded groups not formed: {found.crowded_groups}, "
              f"records without an address key: {found.records_without_address}", flush=True)

    print(format_results(results), flush=True)

    if args.scale:
        big = tiled(golden, args.scale)
        found, seconds = _timed(big)
        print(f"scale: {len(big):,} golden records, {len(found.households):,} households in {seconds:.1f} s",
              flush=True)
        members = found.members.set_index("golden_id")["household_id"]
        previous = members.drop(members.sample(frac=0.01, random_state=0).index)
        again, seconds = _timed(big, previous)
        print(f"scale: with a previous assignment (1% of members gone): {seconds:.1f} s, "
              f"{again.kept_ids:,} of {len(again.households):,} households kept their id", flush=True)
        same = again.members.set_index("golden_id")["household_id"].reindex(members.index) == members
        print(f"scale: members with the same household id as before: {same.mean():.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
