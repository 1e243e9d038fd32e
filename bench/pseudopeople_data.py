"""Benchmark data from pseudopeople: four departments of one simulated US population, and its censuses, with the truth.

pseudopeople (PyPI, part of the ``bench`` extra) ships sample data of a
simulated population of "Anytown, WA" and adds realistic noise to it: typos,
OCR and phonetic errors, nicknames, fake names, blanks, swapped day and month,
wrong digits, values copied from a household member, duplicated rows. Each
record carries the ``simulant_id`` of the person it is about, which becomes
the truth here and is never written into the departmental files::

    .venv/bin/python -m bench.pseudopeople_data --out bench/out/pseudopeople --noise default --noise high --seed 1

writes, per noise level, ``OUT/<noise>/``:

- ``census.csv`` (decennial census 2020), ``w2_1099.csv`` (W-2 and 1099 forms
  2020), ``ssa.csv`` (Social Security events up to 2020), ``tax_1040.csv``
  (1040 forms 2020, primary filer only): a ``record_key`` unique per file, the
  person's columns as pseudopeople names them, and ``address`` = street number
  + street name (the raw columns are kept too; ``cdi.yaml`` joins them with a
  Spark SQL expression mapping, ``cdi dedupe --map`` takes the ``address``
  column). Rows are shuffled with the seed so that file order says nothing
  about who is who.
- ``census_all_years.csv``: every decennial census of the sample (2020, 2030
  and 2040) in one file, for ``cdi dedupe``: 32,786 rows (10,218 + 11,035 +
  11,533) of 18,770 people, 10,142 of whom are counted in two or three census
  years (each year noised anew; before noise about 60% of them have moved
  between censuses, none has changed name) or twice in one year
  (pseudopeople's guardian duplicates): 17,895 true duplicate pairs (seed 1;
  both noise levels, whose row noise is the same).
  Same columns as ``census.csv`` plus ``year`` (the census year, not
  compared), its own ``record_key`` (``Y``...).
- ``truth.csv`` (``source_system,source_key,entity_id``, the format of
  ``cdi evaluate --truth``) over the four departmental files,
  ``truth_census.csv`` (``record_id,entity_id``) for the 2020 census alone and
  ``truth_census_all_years.csv`` (same format) for ``census_all_years.csv``.
- ``cdi.yaml``: a pipeline config with the four files as CSV sources
  (``link_type: dedupe_only`` from ``conf/matching.yaml``: one person may
  appear many times in one department and in all of them), ``lake:
  ${CDI_LAKE:-OUT/<noise>/lake}``.
- ``pseudopeople_config.yaml`` (the noise configuration used) and
  ``summary.json`` (rows, entities, duplicated share per file; rows per
  census year).

Noise levels: ``default`` is pseudopeople's own configuration (mostly 1% of
cells per noise type). ``high`` multiplies the cell probability of every noise
type of the columns written by 4 (capped at 0.2) and every token probability
(the share of characters / digits changed in a noised cell) by 2 (capped at
0.25); row noise (non-response, omitted rows, guardian duplicates) stays at
the defaults.

Note: the sample data is anonymised to one town: city is "Anytown", state
"WA" and zipcode "00000" for nearly everyone, so those attributes carry only
noise; names, dates of birth, street addresses and SSNs carry the signal.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parent.parent
NOISE_LEVELS = ("default", "high")
YEAR = 2020
# "high" noise: cell probabilities x4 (at most 0.2), token probabilities x2 (at most 0.25).
CELL_FACTOR, CELL_CAP = 4.0, 0.2
TOKEN_FACTOR, TOKEN_CAP = 2.0, 0.25
MAILING = {
    "street_number": "mailing_address_street_number",
    "street_name": "mailing_address_street_name",
    "unit_number": "mailing_address_unit_number",
    "city": "mailing_address_city",
    "state": "mailing_address_state",
    "zipcode": "mailing_address_zipcode",
}
CENSUS_ADDRESS = {name: name for name in MAILING}


@dataclass(frozen=True)
class Department:
    """One departmental file: which pseudopeople data set, which of its columns, how cdi reads them."""

    name: str  # source name in cdi and file name
    dataset: str  # pseudopeople's name, the key of its configuration
    generator: str  # pseudopeople function
    key_prefix: str
    columns: tuple[str, ...]  # kept as pseudopeople names them
    address: dict[str, str] | None  # street_number / street_name / unit_number / city / state / zipcode -> column
    date_formats: tuple[str, ...] = ()
    year: int | None = YEAR  # the year asked of pseudopeople; None: every year it has

    def mapping(self, expressions: bool = True) -> dict[str, str | dict[str, str]]:
        """Canonical attribute -> column of this file.

        ``address_line1`` is the Spark SQL expression joining street number and
        name (``expressions``), else the ``address`` column that holds the same
        (for ``cdi dedupe --map``, which takes columns only).
        """
        mapping = {"given_name": "first_name", "family_name": "last_name"}
        for column in ("middle_initial", "middle_name"):
            if column in self.columns:
                mapping["middle_name"] = column
        if "date_of_birth" in self.columns:
            mapping["birth_date"] = "date_of_birth"
        if "sex" in self.columns:
            mapping["gender"] = "sex"
        if "ssn" in self.columns:
            mapping["national_id"] = "ssn"
        if self.address:
            number, name = self.address["street_number"], self.address["street_name"]
            mapping.update(
                address_line1={"expr": f"nullif(trim(concat_ws(' ', {number}, {name})), '')"}
                if expressions else "address",
                address_line2=self.address["unit_number"],
                city=self.address["city"],
                region=self.address["state"],
                postcode=self.address["zipcode"],
            )
        return mapping


_MAILING_COLUMNS = (*MAILING.values(), "mailing_address_po_box")
DEPARTMENTS: tuple[Department, ...] = (
    Department(
        "census", "decennial_census", "generate_decennial_census", "C",
        ("first_name", "middle_initial", "last_name", "age", "date_of_birth", "street_number", "street_name",
         "unit_number", "city", "state", "zipcode", "sex"),
        CENSUS_ADDRESS, ("MM/dd/yyyy",),
    ),
    Department(
        "w2_1099", "taxes_w2_and_1099", "generate_taxes_w2_and_1099", "W",
        ("ssn", "first_name", "middle_initial", "last_name", *_MAILING_COLUMNS),
        MAILING,
    ),
    Department(
        "ssa", "social_security", "generate_social_security", "S",
        ("ssn", "first_name", "middle_name", "last_name", "date_of_birth", "sex"),
        None, ("yyyyMMdd",),
    ),
    Department(
        "tax_1040", "taxes_1040", "generate_taxes_1040", "T",
        ("ssn", "first_name", "middle_initial", "last_name", *_MAILING_COLUMNS),
        MAILING,
    ),
)


CENSUS = DEPARTMENTS[0]
# Every census year in one file for cdi dedupe: the census columns plus the (uncompared) census year.
CENSUS_ALL_YEARS = replace(CENSUS, name="census_all_years", key_prefix="Y", columns=(*CENSUS.columns, "year"),
                           year=None)


def noise_overrides(level: str, defaults: dict) -> dict | None:
    """pseudopeople config overrides for ``level`` (None: its defaults), from its default config ``defaults``."""
    if level == "default":
        return None
    if level != "high":
        raise ValueError(f"noise level {level!r}: expected one of {', '.join(NOISE_LEVELS)}")
    overrides: dict = {}
    for department in DEPARTMENTS:
        columns: dict = {}
        for column, noise_types in defaults[department.dataset]["column_noise"].items():
            if column not in department.columns:  # employers, spouses, dependents: not in the files
                continue
            for noise_type, parameters in noise_types.items():
                raised = {}
                if "cell_probability" in parameters:
                    raised["cell_probability"] = min(parameters["cell_probability"] * CELL_FACTOR, CELL_CAP)
                if "token_probability" in parameters:
                    raised["token_probability"] = min(parameters["token_probability"] * TOKEN_FACTOR, TOKEN_CAP)
                if raised:
                    columns.setdefault(column, {})[noise_type] = raised
        overrides[department.dataset] = {"column_noise": columns}
    return overrides


def street_address(number: pd.Series, name: pd.Series) -> pd.Series:
    """``number + ' ' + name``, either alone when the other is missing, None when both are."""
    joined = (number.fillna("").astype(str).str.strip() + " " + name.fillna("").astype(str).str.strip()).str.strip()
    return joined.where(joined != "", None)


def department_frame(raw: pd.DataFrame, department: Department, rng: np.random.Generator) -> pd.DataFrame:
    """The departmental file: shuffled rows, ``record_key``, the kept columns as text, ``address``.

    ``simulant_id`` is returned for the truth and dropped before the file is written.
    """
    frame = raw.iloc[rng.permutation(len(raw))].reset_index(drop=True)
    out = pd.DataFrame({"record_key": [f"{department.key_prefix}{i:06d}" for i in range(1, len(frame) + 1)]})
    for column in department.columns:
        values = frame[column].astype(object)
        out[column] = values.where(values.notna(), None).map(lambda v: None if v is None else str(v))
    if department.address:
        address = department.address
        out["address"] = street_address(out[address["street_number"]], out[address["street_name"]])
    out["simulant_id"] = frame["simulant_id"].astype(str).to_numpy()
    return out


def pipeline_config(folder: Path, departments: tuple[Department, ...] = DEPARTMENTS) -> dict:
    """The cdi pipeline config for the files in ``folder`` (absolute paths), all columns read as strings."""
    sources = []
    for department in departments:
        columns = ["record_key", *department.columns, *(["address"] if department.address else [])]
        sources.append(
            {
                "name": department.name,
                "kind": "csv",
                "path": str(folder / f"{department.name}.csv"),
                "primary_key": ["record_key"],
                "columns": {column: "string" for column in columns},
                "standardize": {
                    "default_region": "US",
                    "default_country": "US",
                    "day_first": False,
                    "date_formats": list(department.date_formats),
                },
                "mapping": department.mapping(),
            }
        )
    return {
        "lake": f"${{CDI_LAKE:-{folder / 'lake'}}}",
        "matching": str(ROOT / "conf" / "matching.yaml"),
        # cdi dedupe's suite: a value that cannot be standardized is left out of matching, the record stays.
        "canonical_suite": str(ROOT / "conf" / "quality" / "dedupe.yaml"),
        "sources": sources,
    }


def census_dedupe_arguments(csv: Path) -> list[str]:
    """``cdi dedupe`` arguments (after the command name) for a census file alone (2020 or all years).

    ``year`` in the all-years file is not mapped: cdi leaves it out of matching.
    """
    maps = [f"--map={column}={attribute}" for attribute, column in CENSUS.mapping(expressions=False).items()]
    return [str(csv), "--id", "record_key", *maps, "--region", "US", "--month-first"]


def _summary(frame: pd.DataFrame) -> dict:
    sizes = frame["simulant_id"].value_counts()
    return {
        "rows": int(len(frame)),
        "entities": int(len(sizes)),
        "duplicated_entities": int((sizes > 1).sum()),
        "duplicated_entity_share": float((sizes > 1).mean()) if len(sizes) else 0.0,
        "rows_in_duplicated_entities": int(sizes[sizes > 1].sum()),
        "true_pairs": int((sizes * (sizes - 1) // 2).sum()),
    }


def _write(
    folder: Path, department: Department, lookup: Callable[[str], Callable], seed: int, overrides: dict | None,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Generate ``department``'s data, write its file; return the frame with ``simulant_id``."""
    raw = lookup(department.generator)(seed=seed, config=overrides, year=department.year)
    frame = department_frame(raw, department, rng)
    frame.drop(columns="simulant_id").to_csv(folder / f"{department.name}.csv", index=False)
    return frame


def generate(out: Path, level: str, seed: int, generators: Callable[[str], Callable] | None = None) -> dict:
    """Write one noise level into ``out / level``; return its summary.

    ``generators`` maps a pseudopeople function name to the function (tests pass fakes).
    """
    import pseudopeople

    folder = (out / level).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    overrides = noise_overrides(level, pseudopeople.get_config())
    config = pseudopeople.get_config(overrides)
    (folder / "pseudopeople_config.yaml").write_text(
        yaml.safe_dump({d.dataset: config[d.dataset] for d in DEPARTMENTS}, sort_keys=False)
    )
    lookup = generators or (lambda name: getattr(pseudopeople, name))
    rng = np.random.default_rng(seed)
    truth, summary = [], {"noise": level, "seed": seed, "year": YEAR, "files": {}}
    for department in DEPARTMENTS:
        frame = _write(folder, department, lookup, seed, overrides, rng)
        truth.append(
            pd.DataFrame(
                {"source_system": department.name, "source_key": frame["record_key"], "entity_id": frame["simulant_id"]}
            )
        )
        summary["files"][department.name] = _summary(frame)
    all_truth = pd.concat(truth, ignore_index=True)
    all_truth.to_csv(folder / "truth.csv", index=False)
    census = all_truth[all_truth["source_system"] == CENSUS.name]
    census.rename(columns={"source_key": "record_id"})[["record_id", "entity_id"]].to_csv(
        folder / "truth_census.csv", index=False
    )
    summary["files"]["all"] = _summary(all_truth.rename(columns={"entity_id": "simulant_id"}))
    # After the four departments, so that their files do not change with it.
    years = _write(folder, CENSUS_ALL_YEARS, lookup, seed, overrides, rng)
    pd.DataFrame({"record_id": years["record_key"], "entity_id": years["simulant_id"]}).to_csv(
        folder / f"truth_{CENSUS_ALL_YEARS.name}.csv", index=False
    )
    summary["files"][CENSUS_ALL_YEARS.name] = _summary(years)
    summary["census_years"] = {str(k): int(v) for k, v in years["year"].value_counts().sort_index().items()}
    departments_per_entity = all_truth.groupby("entity_id")["source_system"].nunique()
    summary["entities_in_departments"] = {
        str(k): int(v) for k, v in departments_per_entity.value_counts().sort_index().items()
    }
    (folder / "cdi.yaml").write_text(
        "# cdi pipeline config for the pseudopeople benchmark data (written by bench/pseudopeople_data.py)\n"
        + yaml.safe_dump(pipeline_config(folder), sort_keys=False)
    )
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def format_summary(summary: dict) -> str:
    lines = [f"noise {summary['noise']} (seed {summary['seed']}):",
             f"  {'file':<16} {'rows':>7} {'entities':>9} {'duplicated':>11} {'share':>6} {'true pairs':>11}"]
    for name, figures in summary["files"].items():
        lines.append(
            f"  {name:<16} {figures['rows']:>7} {figures['entities']:>9} {figures['duplicated_entities']:>11} "
            f"{figures['duplicated_entity_share']:>6.3f} {figures['true_pairs']:>11}"
        )
    spread = ", ".join(f"{k} departments: {v}" for k, v in summary["entities_in_departments"].items())
    lines.append(f"  entities by number of departments they appear in: {spread}")
    if "census_years" in summary:
        years = ", ".join(f"{k}: {v}" for k, v in summary["census_years"].items())
        lines.append(f"  {CENSUS_ALL_YEARS.name} rows by census year: {years}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="output folder (one sub-folder per noise level)")
    parser.add_argument("--noise", action="append", choices=NOISE_LEVELS,
                        help="noise level (repeatable; default: both)")
    parser.add_argument("--seed", type=int, default=1, help="pseudopeople's seed and the row shuffle's (default 1)")
    args = parser.parse_args(argv)
    for level in args.noise or NOISE_LEVELS:
        summary = generate(args.out, level, args.seed)
        print(format_summary(summary))
        print(f"  written to {(args.out / level).resolve()}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
