"""The run report: ``<run dir>/report.html`` for people and ``<run dir>/summary.json`` for machines.

The figures come from the lake after the run (``jobs.report_queries``), the charts are matplotlib PNGs
(``jobs.report_charts``) and the page is ``templates/report.html.j2``, rendered with autoescape on.
No customer value ever appears: only counts, stage, source, rule, suite and table names. The HTML is
one self-contained file (inline CSS, charts as base64 PNG); every text in it is escaped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
from pyspark.sql import SparkSession

from jobs.report_charts import cluster_chart, department_chart, probability_chart, segment_chart, timing_chart
from jobs.report_queries import build_summary, timings
from jobs.runs import RunContext

__all__ = ["render_html", "timings", "write_report"]

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(enabled_extensions=("html.j2",), default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
TEMPLATES.filters["figure"] = lambda value: f"{value:,}" if isinstance(value, int) else f"{value:,.1f}"
TEMPLATES.filters["percent"] = lambda share: f"{share:.1%}"


def charts(summary: dict[str, Any]) -> dict[str, str]:
    """The report's charts by name, as base64 PNG: each only when its section has figures to draw."""
    drawn: dict[str, str] = {}
    if summary["pairs"] is not None and summary["clusters"] is not None:
        drawn["probability"] = probability_chart(summary["pairs"])
        drawn["clusters"] = cluster_chart(summary["clusters"])
    if summary["timings_seconds"]:
        drawn["timing"] = timing_chart(summary["timings_seconds"])
    customers = summary["customer_360"]
    if customers is not None:
        if customers["departments"]:
            drawn["departments"] = department_chart(customers["department_combinations"], customers["departments"])
        if customers["segments"]:
            drawn["segments"] = segment_chart(customers["segment_history"], customers["segments"])
    return drawn


def render_html(summary: dict[str, Any]) -> str:
    """The report page for ``summary`` (as ``build_summary`` returns it)."""
    return TEMPLATES.get_template("report.html.j2").render(summary=summary, charts=charts(summary))


def write_report(spark: SparkSession, context: RunContext, run_dir: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``summary.json`` into ``run_dir``; returns both paths."""
    summary = build_summary(spark, context, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    json_path = run_dir / "summary.json"
    json_path.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    html_path = run_dir / "report.html"
    html_path.write_text(render_html(summary), encoding="utf-8")
    return html_path, json_path
