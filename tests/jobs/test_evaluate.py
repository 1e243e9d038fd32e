"""``cdi evaluate`` on a tiny lake written with delta-rs (no Spark): clusters, blocking recall, pairs per record."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from deltalake import write_deltalake

from jobs.cli import main
from jobs.evaluate import evaluate_lake, format_calibration, read_pairs, read_truth
from config.lake import Lake
from matching.evaluation import calibration_table

# Records a1..a3 and b1 are one person, a4 another; b2 is a record the truth does not know.
CLUSTERS = {"crm:a1": "g1", "crm:a2": "g1", "crm:a3": "g2", "crm:a4": "g3", "web:b1": "g1", "web:b2": "g4"}
TRUTH = [("crm", "a1", "p1"), ("crm", "a2", "p1"), ("crm", "a3", "p1"), ("crm", "a4", "p2"), ("web", "b1", "p1")]
# Candidate pairs: 3 of the 6 true pairs (a1-a2, a1-b1, a2-b1), one false, one unjudged.
PAIRS = [
    ("crm:a1", "crm:a2", 0.99),
    ("crm:a1", "web:b1", 0.95),
    ("crm:a2", "web:b1", 0.97),
    ("crm:a3", "crm:a4", 0.2),
    ("crm:a4", "web:b2", 0.05),
]


def write_lake(root: Path, with_pairs: bool = True) -> Lake:
    lake = Lake.at(root)
    clusters = pd.DataFrame({"record_id": list(CLUSTERS), "cluster_id": list(CLUSTERS.values())})
    write_deltalake(lake.path("silver", "clusters"), clusters)
    if with_pairs:
        pairs = pd.DataFrame(PAIRS, columns=["record_id_l", "record_id_r", "match_probability"])
        write_deltalake(lake.path("silver", "pairs"), pairs.assign(run_id="r1", match_weight=0.0))
    return lake


def write_truth(path: Path) -> Path:
    pd.DataFrame(TRUTH, columns=["source_system", "source_key", "entity_id"]).to_csv(path, index=False)
    return path


def test_evaluate_lake_judges_clusters_and_candidate_pairs(tmp_path: Path) -> None:
    lake = write_lake(tmp_path / "lake")
    result = evaluate_lake(lake.root, read_truth(write_truth(tmp_path / "truth.csv"), None))
    assert result.pairwise.only_in_predicted == 1
    blocking = result.blocking
    assert blocking is not None
    assert (blocking.candidate_pairs, blocking.records, blocking.unjudged_pairs) == (5, 6, 1)
    assert (blocking.true_pairs, blocking.true_pairs_found) == (6, 3)
    assert blocking.recall == pytest.approx(0.5)
    assert blocking.pairs_per_record == pytest.approx(5 / 6)


def test_calibration_from_the_lake_pairs(tmp_path: Path) -> None:
    lake = write_lake(tmp_path / "lake")
    table = calibration_table(read_pairs(lake.root), read_truth(write_truth(tmp_path / "truth.csv"), None))
    assert table["true_matches"].tolist() == [0, 0, 0, 2, 1]
    text = format_calibration(table)
    assert text.splitlines()[-1].split()[:2] == ["[0.99,", "1]"]


def test_cli_prints_blocking_recall_and_pairs_per_record(tmp_path: Path, capsys) -> None:
    lake = write_lake(tmp_path / "lake")
    config = tmp_path / "cdi.yaml"
    sources = [
        {"name": name, "kind": "csv", "path": str(tmp_path / f"{name}.csv"), "primary_key": ["id"],
         "mapping": {"given_name": "first"}}
        for name in ("crm", "web")
    ]
    config.write_text(yaml.safe_dump({"lake": lake.root, "sources": sources}))
    assert main(["evaluate", "--config", str(config), "--truth", str(write_truth(tmp_path / "truth.csv"))]) == 0
    out = capsys.readouterr().out
    assert "blocking recall     0.5000  (3 of 6 true pairs among the candidates)" in out
    assert "candidate pairs     5 (0.83 per record; 1 with a record not in the truth)" in out


def test_a_lake_without_pairs_still_evaluates(tmp_path: Path) -> None:
    lake = write_lake(tmp_path / "lake", with_pairs=False)
    result = evaluate_lake(lake.root, read_truth(write_truth(tmp_path / "truth.csv"), None))
    assert result.blocking is None
    assert read_pairs(lake.root) is None
