"""The pseudopeople benchmark data script, on tiny fake pseudopeople frames (the real sample takes ~25 s)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pseudopeople
import pytest

from bench import pseudopeople_data as ppd
from config.pipeline import load_pipeline_config


def fake_frame(department: ppd.Department) -> pd.DataFrame:
    """Five rows of three simulants; every kept column holds '<simulant>-<column>' (blank in row 3)."""
    simulants = ["s1", "s1", "s2", "s3", "s3"]
    frame = pd.DataFrame({"simulant_id": simulants, "household_id": "h1"})
    for column in department.columns:
        frame[column] = [f"{s}-{column}" for s in simulants]
        frame.loc[2, column] = None
    return frame


def fake_census_years() -> pd.DataFrame:
    """Seven census rows over three years: s1 in every year (twice in 2030), s2 in 2020, s3 in 2030 and 2040."""
    simulants = ["s1", "s2", "s1", "s1", "s3", "s1", "s3"]
    years = [2020, 2020, 2030, 2030, 2030, 2040, 2040]
    frame = pd.DataFrame({"simulant_id": simulants, "household_id": "h1"})
    for column in ppd.CENSUS.columns:
        frame[column] = [f"{s}-{column}-{y}" for s, y in zip(simulants, years, strict=True)]
    frame["year"] = years
    return frame


def fake_generators(name: str):
    department = next(d for d in ppd.DEPARTMENTS if d.generator == name)

    def generate(seed: int, config: dict | None, year: int | None) -> pd.DataFrame:
        assert year in (ppd.YEAR, None)
        return fake_frame(department) if year == ppd.YEAR else fake_census_years()

    return generate


def test_high_noise_raises_cell_and_token_probabilities_with_caps() -> None:
    defaults = pseudopeople.get_config()
    assert ppd.noise_overrides("default", defaults) is None
    overrides = ppd.noise_overrides("high", defaults)
    census = overrides["decennial_census"]["column_noise"]
    assert census["first_name"]["make_typos"] == {"cell_probability": 0.04, "token_probability": 0.2}
    assert census["state"]["choose_wrong_option"] == {"cell_probability": 0.04}
    # SSA's ssn noise is off by default and stays off.
    assert overrides["social_security"]["column_noise"]["ssn"]["make_typos"]["cell_probability"] == 0.0
    # Columns not written (employers, spouses, dependents) keep their defaults.
    assert "spouse_first_name" not in overrides["taxes_1040"]["column_noise"]
    assert "employer_name" not in overrides["taxes_w2_and_1099"]["column_noise"]
    capped = ppd.noise_overrides("high", {d.dataset: {"column_noise": {"first_name": {"t": {
        "cell_probability": 0.1, "token_probability": 0.2}}}} for d in ppd.DEPARTMENTS})
    assert capped["taxes_1040"]["column_noise"]["first_name"]["t"] == {
        "cell_probability": 0.2, "token_probability": 0.25}
    # pseudopeople accepts the overrides.
    assert pseudopeople.get_config(overrides)["taxes_1040"]["column_noise"]["ssn"]["make_typos"][
        "cell_probability"] == pytest.approx(0.04)
    with pytest.raises(ValueError, match="noise level"):
        ppd.noise_overrides("extreme", defaults)


def test_street_address_joins_number_and_name() -> None:
    number = pd.Series(["12", None, "7", None])
    name = pd.Series(["main st", "elm ave", None, None])
    assert ppd.street_address(number, name).tolist() == ["12 main st", "elm ave", "7", None]


def test_generate_writes_files_truth_and_a_config_that_parses(tmp_path: Path) -> None:
    summary = ppd.generate(tmp_path, "high", seed=3, generators=fake_generators)
    folder = tmp_path / "high"
    truth = pd.read_csv(folder / "truth.csv", dtype=str)
    assert truth.columns.tolist() == ["source_system", "source_key", "entity_id"]
    assert len(truth) == 5 * len(ppd.DEPARTMENTS)
    for department in ppd.DEPARTMENTS:
        frame = pd.read_csv(folder / f"{department.name}.csv", dtype=str, keep_default_na=False)
        assert "simulant_id" not in frame and "household_id" not in frame
        assert frame["record_key"].is_unique and frame["record_key"].str.startswith(department.key_prefix).all()
        # The truth names the simulant each row was generated from (the fake writes it into every value).
        entities = frame["record_key"].map(
            truth[truth["source_system"] == department.name].set_index("source_key")["entity_id"]
        )
        written = frame["first_name"].str.split("-").str[0]
        assert (written[written != ""] == entities[written != ""]).all()
        if department.address:
            number, name = department.address["street_number"], department.address["street_name"]
            filled = frame[frame[number] != ""]
            assert (filled["address"] == filled[number] + " " + filled[name]).all()
    census_truth = pd.read_csv(folder / "truth_census.csv", dtype=str)
    assert census_truth.columns.tolist() == ["record_id", "entity_id"] and len(census_truth) == 5

    # Every census year in one file: the census columns and the year, its own keys and truth.
    years = pd.read_csv(folder / "census_all_years.csv", dtype=str, keep_default_na=False)
    census_columns = pd.read_csv(folder / "census.csv", dtype=str).columns.tolist()
    assert years.columns.tolist() == [*census_columns[:-1], "year", "address"]
    assert years["record_key"].is_unique and years["record_key"].str.startswith("Y").all() and len(years) == 7
    years_truth = pd.read_csv(folder / "truth_census_all_years.csv", dtype=str)
    assert years_truth.columns.tolist() == ["record_id", "entity_id"]
    entities = years["record_key"].map(years_truth.set_index("record_id")["entity_id"])
    assert (years["first_name"].str.split("-").str[0] == entities).all()
    assert (years["first_name"].str.split("-").str[-1] == years["year"]).all()
    assert summary["files"]["census_all_years"] == {
        "rows": 7, "entities": 3, "duplicated_entities": 2, "duplicated_entity_share": 2 / 3,
        "rows_in_duplicated_entities": 6, "true_pairs": 6 + 1,  # s1: 4 rows, s3: 2
    }
    assert summary["census_years"] == {"2020": 2, "2030": 3, "2040": 2}
    assert "census_all_years" in ppd.format_summary(summary)
    assert summary["files"]["w2_1099"] == {
        "rows": 5, "entities": 3, "duplicated_entities": 2, "duplicated_entity_share": 2 / 3,
        "rows_in_duplicated_entities": 4, "true_pairs": 2,
    }
    assert summary["files"]["all"]["true_pairs"] == 2 * 28 + 6  # s1 and s3: 8 rows each, s2: 4 (the 4 files)
    assert json.loads((folder / "summary.json").read_text())["noise"] == "high"

    config = load_pipeline_config(folder / "cdi.yaml")
    assert [s.name for s in config.sources] == ["census", "w2_1099", "ssa", "tax_1040"]
    census, w2, ssa, _ = config.sources
    assert census.mapping["birth_date"] == "date_of_birth" and census.standardize.date_formats == ("MM/dd/yyyy",)
    assert not census.standardize.day_first and census.standardize.default_region == "US"
    assert census.mapping["address_line1"].expr == (
        "nullif(trim(concat_ws(' ', street_number, street_name)), '')"
    )
    assert "national_id" not in census.mapping
    assert w2.mapping["national_id"] == "ssn" and w2.mapping["postcode"] == "mailing_address_zipcode"
    assert ssa.mapping["middle_name"] == "middle_name" and ssa.standardize.date_formats == ("yyyyMMdd",)
    assert config.lake == str(folder.resolve() / "lake")


def test_census_dedupe_arguments_map_every_census_attribute(tmp_path: Path) -> None:
    arguments = ppd.census_dedupe_arguments(tmp_path / "census.csv")
    assert arguments[:3] == [str(tmp_path / "census.csv"), "--id", "record_key"]
    assert "--map=date_of_birth=birth_date" in arguments and "--month-first" in arguments
    assert "--map=address=address_line1" in arguments
    assert arguments[arguments.index("--region") + 1] == "US"
    # The all-years file is read with the same mapping; its year is left out of matching.
    assert ppd.CENSUS_ALL_YEARS.mapping(expressions=False) == ppd.CENSUS.mapping(expressions=False)
    assert not any(argument.startswith("--map=year") for argument in arguments)
