"""The run report on a small demo pipeline run: figures equal the tables, no PII, self-contained HTML."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from deltalake import DeltaTable

from config.pipeline import load_pipeline_config
from demo.generator import generate
from config.lake import Lake
from jobs.pipeline import run_pipeline
from jobs.report import render_html, timings, write_report
from jobs.runs import RunContext

CONF = Path(__file__).resolve().parents[2] / "conf" / "cdi.yaml"
SUMMARY_KEYS = {
    "run_id", "lake", "started_at", "generated_at", "audit", "reconciliation", "timings_seconds",
    "validation", "pairs", "clusters", "matching_notes", "golden",
}


@pytest.fixture(scope="module")
def report(spark, tmp_path_factory):
    data, lake = tmp_path_factory.mktemp("demo"), tmp_path_factory.mktemp("lake")
    generate(data, customers=60, seed=5)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CDI_DATA_DIR", str(data))
        config = load_pipeline_config(CONF)
    context = RunContext.create(
        config.model_copy(update={"lake": str(lake)}), "report-1", started_at=datetime(2026, 3, 1, tzinfo=timezone.utc)
    )
    run_pipeline(spark, context)
    run_dir = Path(context.lake.run_dir(context.run_id))
    html_path, json_path = write_report(spark, context, run_dir)
    return context, run_dir, html_path, json.loads(json_path.read_text()), html_path.read_text()


def table(lake: Lake, *parts: str):
    return DeltaTable(lake.path(*parts)).to_pandas()


def test_both_files_are_written_in_the_run_folder(report):
    _, run_dir, html_path, summary, _ = report
    assert html_path == run_dir / "report.html"
    assert (run_dir / "summary.json").is_file()
    assert set(summary) == SUMMARY_KEYS
    assert summary["run_id"] == "report-1"


def test_reconciliation_matches_bronze_and_customers_std(report):
    context, _, _, summary, _ = report
    std = table(context.lake, "silver", "customers_std")
    for source in context.config.sources:
        entry = summary["reconciliation"][source.name]
        assert entry["landed"] == len(table(context.lake, "bronze", source.name))
        assert entry["standardized"] == (std["source_system"] == source.name).sum()
        assert entry["ingest_balanced"] and entry["validate_balanced"]


def test_pair_figures_equal_the_pairs_table(report):
    context, _, _, summary, _ = report
    pairs = table(context.lake, "silver", "pairs")
    assert summary["pairs"]["pairs"] == len(pairs) > 0
    assert sum(summary["pairs"]["probability_histogram"]["counts"]) == len(pairs)
    assert summary["pairs"]["probability_histogram"]["counts"][-1] == (pairs["match_probability"] >= 0.95).sum()
    by_rule = {r["blocking_rule"]: r["pairs"] for r in summary["pairs"]["by_blocking_rule"]}
    assert by_rule == pairs.groupby("blocking_rule").size().to_dict()


def test_cluster_figures_equal_the_clusters_table(report):
    context, _, _, summary, _ = report
    clusters = table(context.lake, "silver", "clusters")
    sizes = clusters.groupby("cluster_id").size().value_counts()
    assert summary["clusters"]["clusters"] == clusters["cluster_id"].nunique()
    assert summary["clusters"]["records"] == len(clusters) == len(table(context.lake, "silver", "customers_std"))
    assert summary["clusters"]["size_distribution"] == {str(k): int(v) for k, v in sizes.sort_index().items()}


def test_golden_changes_of_a_first_run_are_all_inserts(report):
    context, _, _, summary, _ = report
    golden = table(context.lake, "gold", "golden_customers")
    history = table(context.lake, "gold", "golden_id_history")
    assert summary["golden"]["inserted"] == len(golden) > 0
    assert (summary["golden"]["updated"], summary["golden"]["retired"]) == (0, 0)
    assert summary["golden"]["events"] == history.groupby("event").size().to_dict()


def test_validation_and_timings_come_from_the_run(report):
    context, run_dir, _, summary, html = report
    validation = summary["validation"]
    assert {s["source_system"] for s in validation["suites"]} == {s.name for s in context.config.sources}
    assert (run_dir / validation["data_docs"]).is_file()
    assert f'href="{validation["data_docs"]}"' in html
    audit = table(context.lake, "ops", "run_audit")
    for stage in ("ingest", "validate"):
        assert summary["timings_seconds"][stage] >= audit.loc[audit["stage"] == stage, "seconds"].max() > 0


def test_the_html_is_self_contained_with_charts_and_no_customer_values(report):
    context, _, _, _, html = report
    assert len(re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', html)) == 3
    assert "<link" not in html and "<script" not in html
    std = table(context.lake, "silver", "customers_std")
    for column in ("email", "phone", "postcode"):
        values = [v for v in std[column].dropna().unique() if len(v) > 4]
        assert values and not [v for v in values if v in html], column


def test_every_text_in_the_html_is_escaped():
    summary = {
        "run_id": "<b>r</b>", "lake": "/l&ke", "started_at": "t", "generated_at": "g",
        "audit": [{"stage": "ingest", "source_system": "<script>", "status": "ok", "rows_in": 1, "rows_out": 1,
                   "rows_rejected": 0, "rows_unchanged": 0, "seconds": 0.5}],
        "reconciliation": {}, "timings_seconds": {}, "validation": None, "pairs": None, "clusters": None, "golden": None,
    }
    html = render_html(summary)
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<b>r</b>" not in html and "/l&amp;ke" in html


def test_a_stage_takes_its_whole_stage_timing_else_the_span_of_its_sources():
    at = datetime(2026, 3, 1, 9, 0, 0)
    rows = [
        {"stage": "ingest", "source_system": "a", "started_at": at, "seconds": 1.0},
        {"stage": "ingest", "source_system": "b", "started_at": at + timedelta(seconds=1), "seconds": 2.0},
        {"stage": "validate", "source_system": "a", "started_at": at + timedelta(seconds=3), "seconds": 5.0},
        {"stage": "validate", "source_system": "b", "started_at": at + timedelta(seconds=4), "seconds": 4.0},
        {"stage": "match", "source_system": "a", "started_at": at + timedelta(seconds=8), "seconds": 1.0},
        {"stage": "match", "source_system": None, "started_at": at + timedelta(seconds=8), "seconds": 6.0},
    ]
    assert timings(rows) == {"ingest": 3.0, "validate": 5.0, "match": 6.0}
