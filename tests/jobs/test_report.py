"""The run report on a small demo pipeline run: figures equal the tables, no PII, self-contained HTML."""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from deltalake import DeltaTable

from config.lake import Lake
from jobs.audit import AuditRow, record_audit
from jobs.report import render_html, timings, write_report
from jobs.report_queries import customer_360_summary
from jobs.validate import CANONICAL_BATCH

SUMMARY_KEYS = {
    "run_id", "lake", "started_at", "generated_at", "audit", "reconciliation", "timings_seconds",
    "validation", "pairs", "clusters", "matching_notes", "golden", "customer_360",
}


@pytest.fixture(scope="module")
def report(spark, demo_run, tmp_path_factory):
    """The report of the shared demo run, written into a copy of its lake's run folder."""
    context = demo_run.copy(tmp_path_factory.mktemp("report")).context()
    run_dir = Path(context.lake.run_dir(context.run_id))
    html_path, json_path = write_report(spark, context, run_dir)
    return context, run_dir, html_path, json.loads(json_path.read_text()), html_path.read_text()


def table(lake: Lake, *parts: str):
    return DeltaTable(lake.path(*parts)).to_pandas()


def test_both_files_are_written_in_the_run_folder(report):
    context, run_dir, html_path, summary, _ = report
    assert html_path == run_dir / "report.html"
    assert (run_dir / "summary.json").is_file()
    assert set(summary) == SUMMARY_KEYS
    assert summary["run_id"] == context.run_id


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
    batches = {(s["source_system"], s["suite"]) for s in validation["suites"]}
    assert batches == {(s.name, s.name) for s in context.config.sources} | {(CANONICAL_BATCH, "canonical")}
    assert (run_dir / validation["data_docs"]).is_file()
    assert f'href="{validation["data_docs"]}"' in html
    audit = table(context.lake, "ops", "run_audit")
    for stage in ("ingest", "validate"):
        assert summary["timings_seconds"][stage] >= audit.loc[audit["stage"] == stage, "seconds"].max() > 0


def test_the_html_is_self_contained_with_charts_and_no_customer_values(report):
    context, _, _, _, html = report
    assert len(re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', html)) == 5
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
        "customer_360": None,
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


def test_the_demo_run_reports_its_customers_across_departments(report):
    context, _, _, summary, html = report
    figures = summary["customer_360"]
    activity = json.loads((Path(context.lake.run_dir(context.run_id)) / "activity.json").read_text())
    view = table(context.lake, "gold", "customer_360")
    assert figures["customers"] == len(view) > 0
    assert figures["customers_by_department_count"] == {
        str(k): int(v) for k, v in view["department_count"].value_counts().sort_index().items()
    }
    assert {"+".join(c["departments"]): c["customers"] for c in figures["department_combinations"]} == (
        activity["department_combinations"]
    )
    assert [run["run_id"] for run in figures["segment_history"]] == [context.run_id]
    assert "Customers across departments" in html


def audit_360(run_id: str, at: datetime, segments: dict[str, int], combinations: dict[str, int],
              orphans: dict[str, dict[str, int]], status: str = "ok") -> AuditRow:
    linked = sum(combinations.values()) * 3
    orphan_rows = sum(n for reasons in orphans.values() for n in reasons.values())
    detail = {
        "orphans": orphans, "segments": segments, "department_combinations": combinations, "households": 2,
        "household_members": 5, "changed_rows": {}, "as_of": "2026-01-01T00:00:00+00:00",
    }
    return AuditRow(run_id=run_id, stage="customer_360", source_system="activity", status=status,
                    rows_in=linked + orphan_rows, rows_out=linked, rows_rejected=orphan_rows,
                    detail=detail if status == "ok" else {"error": "Boom"}, started_at=at, seconds=1.0)


@pytest.fixture(scope="module")
def audited_lake(spark, tmp_path_factory) -> Lake:
    """A lake holding only run_audit: customer_360 rows of four runs (a failed retry and a later run included)."""
    lake = Lake.at(tmp_path_factory.mktemp("audited"))
    day = datetime(2026, 3, 1, 9, 0)
    record_audit(spark, lake, [
        AuditRow(run_id="old", stage="ingest", source_system="billing", status="ok", started_at=day),
        audit_360("r1", day, {"new": 5, "none": 1}, {"billing": 4, "billing+sales_crm": 2}, {}),
        audit_360("r2", day + timedelta(days=1), {"lost": 1, "new": 2, "active": 4},
                  {"billing": 2, "sales_crm": 1, "billing+sales_crm+webshop": 3, "billing+sales_crm": 1},
                  {"webshop/orders": {"unknown_customer": 3, "customer_erased": 1},
                   "billing/invoices": {"customer_deleted": 2}}),
        audit_360("r2", day + timedelta(days=1, hours=1), {}, {}, {}, status="failed"),
        audit_360("r3", day + timedelta(days=2), {"new": 9}, {"billing": 9}, {}),
    ])
    return lake


def test_customer_360_figures_come_from_the_run_s_audit_row(spark, audited_lake):
    figures = customer_360_summary(spark, audited_lake, "r2")
    assert (figures["activity_rows"], figures["linked"], figures["orphan_rows"]) == (27, 21, 6)
    assert figures["customers"] == 7 and figures["departments"] == ["billing", "sales_crm", "webshop"]
    assert figures["customers_by_department_count"] == {"1": 3, "2": 1, "3": 3}
    assert figures["department_combinations"] == [
        {"departments": ["billing", "sales_crm", "webshop"], "customers": 3},
        {"departments": ["billing"], "customers": 2},
        {"departments": ["billing", "sales_crm"], "customers": 1},
        {"departments": ["sales_crm"], "customers": 1},
    ]
    assert figures["orphans"] == [
        {"table": "billing/invoices", "reason": "customer_deleted", "rows": 2},
        {"table": "webshop/orders", "reason": "customer_erased", "rows": 1},
        {"table": "webshop/orders", "reason": "unknown_customer", "rows": 3},
    ]
    assert (figures["households"], figures["household_members"]) == (2, 5)


def test_segment_history_runs_up_to_this_run_oldest_first_in_segment_order(spark, audited_lake):
    figures = customer_360_summary(spark, audited_lake, "r2")
    assert figures["segments"] == ["new", "active", "lost", "none"]
    assert [(run["run_id"], run["customers"]) for run in figures["segment_history"]] == [
        ("r1", {"new": 5, "active": 0, "lost": 0, "none": 1}),
        ("r2", {"new": 2, "active": 4, "lost": 1, "none": 0}),
    ]


def test_the_section_draws_its_charts_and_tables(spark, audited_lake):
    summary = {
        "run_id": "r2", "lake": "/l", "started_at": "t", "generated_at": "g", "audit": [], "reconciliation": {},
        "timings_seconds": {}, "validation": None, "pairs": None, "clusters": None, "golden": None,
        "customer_360": customer_360_summary(spark, audited_lake, "r2"),
    }
    html = render_html(summary)
    assert "Customers across departments" in html
    assert len(re.findall(r'<img src="data:image/png;base64,[A-Za-z0-9+/=]{100,}"', html)) == 2
    assert "billing + sales_crm + webshop" in html and "customer_erased" in html and "webshop/orders" in html


def test_a_run_without_the_customer_360_stage_has_no_section(spark, audited_lake):
    assert customer_360_summary(spark, audited_lake, "old") is None
    assert customer_360_summary(spark, Lake.at("/nonexistent/lake"), "r1") is None
    summary = {
        "run_id": "old", "lake": "/l", "started_at": "t", "generated_at": "g", "audit": [], "reconciliation": {},
        "timings_seconds": {}, "validation": None, "pairs": None, "clusters": None, "golden": None,
        "customer_360": None,
    }
    html = render_html(summary)
    assert "Customers across departments" not in html and "<img" not in html
