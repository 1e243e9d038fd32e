"""The run report: ``<run dir>/report.html`` for people and ``<run dir>/summary.json`` for machines.

Everything comes from the lake after the run: ``run_audit`` (counts, timings,
reconciliation), ``validation.json`` (suite outcomes), ``silver/pairs`` and
``silver/clusters`` (aggregated in Spark: only bins and counts reach the
driver, whatever the number of pairs), ``golden_id_history`` and
``golden_customers`` as this run published it (time travel to the version in
the run's ``_publications`` marker, so a report rebuilt later says the same).

No customer value ever appears: only counts, stage, source, rule, suite and
table names. The HTML is one self-contained file (inline CSS, charts as base64
PNG drawn with matplotlib's Agg canvas); every text in it is escaped.
"""

from __future__ import annotations

import base64
import io
import json
from datetime import datetime, timedelta, timezone
from html import escape
from pathlib import Path
from typing import Any, Iterable, Sequence

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter
from pyspark.sql import DataFrame, SparkSession, Window
from pyspark.sql import functions as F

from jobs.delta_io import read_table, table_exists
from config.lake import Lake
from jobs.pipeline import STAGES
from jobs.runs import RunContext
from matching.settings import Thresholds

PROBABILITY_BINS = 20
DATA_DOCS_INDEX = "gx/**/data_docs/local_site/index.html"  # GX puts its project one folder down: gx/gx/...
AUDIT_COUNTS = ("rows_in", "rows_out", "rows_rejected", "rows_unchanged")


# --- figures from the lake -------------------------------------------------------------------------


def audit_rows(spark: SparkSession, lake: Lake, run_id: str) -> list[dict[str, Any]]:
    """This run's audit rows, the latest attempt of each stage and source (a re-run appends again)."""
    if not table_exists(spark, lake.run_audit):
        return []
    latest = Window.partitionBy("stage", "source_system").orderBy(F.col("started_at").desc())
    rows = (
        read_table(spark, lake.run_audit)
        .where((F.col("run_id") == run_id) & (F.col("stage") != "run"))
        .withColumn("_rank", F.row_number().over(latest))
        .where("_rank = 1")
        .select("stage", "source_system", "status", *AUDIT_COUNTS, "started_at", "seconds")
        .collect()
    )
    order = {stage: i for i, stage in enumerate(STAGES)}
    found = [row.asDict() for row in rows]
    return sorted(found, key=lambda r: (order.get(r["stage"], len(order)), r["source_system"] or ""))


def reconciliation(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per source: ingest's read = landed + unchanged + rejected, validate's staged = standardized + quarantined."""
    sources: dict[str, dict[str, Any]] = {}
    for row in rows:
        source = row["source_system"]
        if source is None or row["stage"] not in ("ingest", "validate"):
            continue
        entry = sources.setdefault(source, {})
        if row["stage"] == "ingest":
            entry.update(read=row["rows_in"], landed=row["rows_out"], unchanged=row["rows_unchanged"],
                         rejected=row["rows_rejected"])
            entry["ingest_balanced"] = entry["read"] == entry["landed"] + entry["unchanged"] + entry["rejected"]
        else:
            entry.update(staged=row["rows_in"], standardized=row["rows_out"], quarantined=row["rows_rejected"])
            entry["validate_balanced"] = entry["staged"] == entry["standardized"] + entry["quarantined"]
    return sources


def timings(rows: list[dict[str, Any]]) -> dict[str, float]:
    """Seconds per stage: its whole-stage row when there is one, else the span of its per-source rows.

    A span, not a sum: validate's per-source stopwatches overlap (they all stop when the stage writes).
    """
    whole = {r["stage"]: r["seconds"] for r in rows if r["source_system"] is None}
    spans: dict[str, tuple[datetime, datetime]] = {}
    for row in rows:
        if row["source_system"] is not None:
            start, end = row["started_at"], row["started_at"] + timedelta(seconds=row["seconds"])
            first, last = spans.get(row["stage"], (start, end))
            spans[row["stage"]] = (min(first, start), max(last, end))
    spanned = {stage: (end - start).total_seconds() for stage, (start, end) in spans.items()}
    return {stage: round(whole.get(stage, spanned.get(stage, 0.0)), 3) for stage in dict.fromkeys(r["stage"] for r in rows)}


def validation_summary(run_dir: Path) -> dict[str, Any] | None:
    """Suite outcomes from ``validation.json`` (counts only) and the Data Docs index, relative to the run dir."""
    path = run_dir / "validation.json"
    if not path.exists():
        return None
    suites = []
    for source, results in sorted(json.loads(path.read_text(encoding="utf-8")).items()):
        for result in results:
            expectations = result.get("expectations", [])
            suites.append(
                {
                    "source_system": source,
                    "suite": result.get("suite"),
                    "success": bool(result.get("success")),
                    "expectations": len(expectations),
                    "failed": sum(1 for e in expectations if not e.get("success")),
                    "failing_keys": result.get("failing_keys"),
                }
            )
    index = next(iter(sorted(run_dir.glob(DATA_DOCS_INDEX))), None)
    docs = index.relative_to(run_dir).as_posix() if index else None
    return {"success": all(s["success"] for s in suites), "data_docs": docs, "suites": suites}


def _this_run(spark: SparkSession, path: str, run_id: str) -> DataFrame | None:
    """The rows ``run_id`` wrote to the table at ``path``; None when there is no table."""
    return read_table(spark, path).where(F.col("run_id") == run_id) if table_exists(spark, path) else None


def cluster_summary(spark: SparkSession, lake: Lake, run_id: str) -> dict[str, Any] | None:
    """Clusters by size, counted in Spark; None when this run did not match."""
    clusters = _this_run(spark, lake.path("silver", "clusters"), run_id)
    if clusters is None:
        return None
    sizes = (
        clusters.groupBy("cluster_id")
        .agg(F.count(F.lit(1)).alias("size"), F.max(F.col("cluster_flag").isNotNull().cast("int")).alias("flagged"))
        .groupBy("size")
        .agg(F.count(F.lit(1)).alias("clusters"), F.sum("flagged").alias("flagged"))
        .orderBy("size")
        .collect()
    )
    if not sizes:
        return None
    return {
        "clusters": sum(r["clusters"] for r in sizes),
        "records": sum(r["size"] * r["clusters"] for r in sizes),
        "flagged": sum(r["flagged"] for r in sizes),
        "size_distribution": {str(r["size"]): r["clusters"] for r in sizes},
    }


def pair_summary(spark: SparkSession, lake: Lake, run_id: str, thresholds: Thresholds) -> dict[str, Any]:
    """Match probability histogram and pairs per blocking rule, from one aggregation in Spark.

    At most (rules x bins) rows reach the driver, whatever the number of pairs.
    """
    histogram = [0] * PROBABILITY_BINS
    rules: dict[str, dict[str, Any]] = {}
    pairs = _this_run(spark, lake.path("silver", "pairs"), run_id)
    if pairs is not None:
        probability = F.col("match_probability")
        cells = pairs.groupBy(
            "blocking_rule",
            F.least(F.floor(probability * PROBABILITY_BINS), F.lit(PROBABILITY_BINS - 1)).cast("int").alias("bin"),
        ).agg(
            F.count(F.lit(1)).alias("pairs"),
            F.sum((probability >= thresholds.match).cast("int")).alias("linked"),
            F.sum(((probability >= thresholds.review) & (probability < thresholds.match)).cast("int")).alias("review"),
        )
        for cell in cells.collect():
            histogram[cell["bin"]] += cell["pairs"]
            rule = rules.setdefault(cell["blocking_rule"], {"blocking_rule": cell["blocking_rule"], "pairs": 0,
                                                            "linked": 0, "review": 0})
            for key in ("pairs", "linked", "review"):
                rule[key] += cell[key]
    by_rule = sorted(rules.values(), key=lambda r: (-r["pairs"], r["blocking_rule"] or ""))
    return {
        "pairs": sum(histogram),
        "linked": sum(r["linked"] for r in by_rule),
        "review": sum(r["review"] for r in by_rule),
        "thresholds": {"match": thresholds.match, "review": thresholds.review},
        "probability_histogram": {
            "bin_edges": [round(i / PROBABILITY_BINS, 4) for i in range(PROBABILITY_BINS + 1)],
            "counts": histogram,
        },
        "by_blocking_rule": by_rule,
    }


def golden_changes(spark: SparkSession, lake: Lake, run_id: str) -> dict[str, Any] | None:
    """What this run did to golden_customers, as it published it; None when it published nothing."""
    markers = _this_run(spark, lake.gold("_publications"), run_id)
    marker = markers.first() if markers is not None else None
    if marker is None:
        return None
    version = marker["golden_customers_version"]
    history = read_table(spark, lake.gold("golden_id_history")).where(F.col("run_id") == run_id)
    events = {r["event"]: r["count"] for r in history.groupBy("event").count().collect()}
    new_ids = history.where(F.col("event").isin("create", "split")).select("golden_id")
    changed = (
        spark.read.format("delta").option("versionAsOf", version).load(lake.gold("golden_customers"))
        .where(F.col("run_id") == run_id)
        .join(new_ids.withColumn("_new", F.lit(True)), "golden_id", "left")
    )
    counts = changed.agg(
        F.sum(((F.col("status") == "active") & F.col("_new").isNotNull()).cast("int")).alias("inserted"),
        F.sum(((F.col("status") == "active") & F.col("_new").isNull()).cast("int")).alias("updated"),
        F.sum((F.col("status") == "retired").cast("int")).alias("retired"),
    ).first()
    return {
        "golden_customers_version": version,
        "inserted": counts["inserted"] or 0,
        "updated": counts["updated"] or 0,
        "retired": counts["retired"] or 0,
        "events": dict(sorted(events.items())),
    }


def build_summary(spark: SparkSession, context: RunContext, run_dir: Path) -> dict[str, Any]:
    rows = audit_rows(spark, context.lake, context.run_id)
    clusters = cluster_summary(spark, context.lake, context.run_id)
    pairs = None
    if clusters is not None:
        pairs = pair_summary(spark, context.lake, context.run_id, context.settings.matching.thresholds)
    return {
        "run_id": context.run_id,
        "lake": context.lake.root,
        "started_at": context.started_at.isoformat(),
        "generated_at": datetime.now(timezone.utc).replace(microsecond=0).isoformat(),
        "audit": rows,
        "reconciliation": reconciliation(rows),
        "timings_seconds": timings(rows),
        "validation": validation_summary(run_dir),
        "pairs": pairs,
        "clusters": clusters,
        "matching_notes": matching_notes(run_dir),
        "golden": golden_changes(spark, context.lake, context.run_id),
    }


def matching_notes(run_dir: Path) -> dict[str, Any] | None:
    """What the match stage noted in ``matching.json``: placeholder attributes and shares, model checks (no values)."""
    path = run_dir / "matching.json"
    if not path.exists():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


# --- charts --------------------------------------------------------------------------------------


def _png(figure: Figure) -> str:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure)
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _log_counts(ax: Any) -> None:
    """A log y axis labelled 1, 10, 100 rather than powers of ten."""
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:,.0f}" if value >= 1 else ""))
    ax.yaxis.set_minor_formatter(NullFormatter())


def probability_chart(pairs: dict[str, Any]) -> str:
    edges, counts = pairs["probability_histogram"]["bin_edges"], pairs["probability_histogram"]["counts"]
    figure = Figure(figsize=(7, 3))
    ax = figure.subplots()
    width = edges[1] - edges[0]
    ax.bar(edges[:-1], counts, width=width, align="edge", color="#4c72b0", edgecolor="white")
    for name, value, colour in (("review", pairs["thresholds"]["review"], "#dd8452"),
                                ("match", pairs["thresholds"]["match"], "#55a868")):
        ax.axvline(value, color=colour, linestyle="--", label=f"{name} threshold {value:g}")
    if any(counts):
        _log_counts(ax)
    ax.set(xlim=(0, 1), xlabel="match probability", ylabel="pairs (log scale)")
    ax.legend(loc="upper left", bbox_to_anchor=(0.12, 1.0), frameon=False, fontsize=8)
    return _png(figure)


def cluster_chart(clusters: dict[str, Any]) -> str:
    sizes = clusters["size_distribution"]
    figure = Figure(figsize=(7, 2.6))
    ax = figure.subplots()
    ax.bar([str(s) for s in sizes], list(sizes.values()), color="#4c72b0")
    _log_counts(ax)
    ax.set(xlabel="records per cluster", ylabel="clusters (log scale)")
    return _png(figure)


def timing_chart(seconds: dict[str, float]) -> str:
    figure = Figure(figsize=(7, 0.45 * len(seconds) + 0.8))
    ax = figure.subplots()
    stages = list(reversed(seconds))
    ax.barh(stages, [seconds[s] for s in stages], color="#8172b3")
    ax.set(xlabel="seconds")
    return _png(figure)


# --- HTML ----------------------------------------------------------------------------------------

STYLE = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1f2328; margin: 2em auto;
       max-width: 980px; padding: 0 1em; }
h1 { font-size: 1.6em; margin-bottom: 0.1em; } h2 { font-size: 1.2em; border-bottom: 1px solid #d0d7de;
     padding-bottom: 0.2em; margin-top: 1.8em; }
.meta { color: #59636e; } .cards { display: flex; gap: 0.8em; flex-wrap: wrap; margin: 1em 0; }
.card { border: 1px solid #d0d7de; border-radius: 6px; padding: 0.5em 1em; min-width: 8em; }
.card b { display: block; font-size: 1.5em; }
table { border-collapse: collapse; margin: 0.6em 0; } th, td { padding: 0.25em 0.8em; border-bottom: 1px solid #eaeef2; }
th { text-align: left; background: #f6f8fa; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.ok { color: #1a7f37; font-weight: 600; } .bad { color: #cf222e; font-weight: 600; }
img { max-width: 100%; } .none { color: #59636e; font-style: italic; }
"""


def _cell(value: Any) -> str:
    if isinstance(value, bool):
        return f'<td class="{"ok" if value else "bad"}">{"yes" if value else "NO"}</td>'
    if isinstance(value, (int, float)):
        return f'<td class="n">{escape(f"{value:,}" if isinstance(value, int) else f"{value:,.1f}")}</td>'
    return f"<td>{escape('—' if value is None else str(value))}</td>"


def _table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _image(png: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{png}" alt="{escape(alt)}">'


def _none(text: str) -> str:
    return f'<p class="none">{escape(text)}</p>'


def _cards(summary: dict[str, Any]) -> str:
    pairs, clusters, golden = summary["pairs"], summary["clusters"], summary["golden"]
    figures = [
        ("records clustered", clusters and clusters["records"]),
        ("candidate pairs", pairs and pairs["pairs"]),
        ("clusters", clusters and clusters["clusters"]),
        ("golden inserted", golden and golden["inserted"]),
        ("golden updated", golden and golden["updated"]),
        ("golden retired", golden and golden["retired"]),
    ]
    cards = "".join(
        f'<div class="card">{escape(label)}<b>{escape("—" if n is None else f"{n:,}")}</b></div>' for label, n in figures
    )
    return f'<div class="cards">{cards}</div>'


def _reconciliation_section(summary: dict[str, Any]) -> str:
    keys = ("read", "landed", "unchanged", "rejected", "ingest_balanced", "staged", "standardized", "quarantined",
            "validate_balanced")
    rows = [[source, *(entry.get(k) for k in keys)] for source, entry in summary["reconciliation"].items()]
    headers = ["source", "read", "landed", "unchanged", "rejected", "balanced", "staged", "standardized",
               "quarantined", "balanced"]
    if not rows:
        return _none("No ingest or validate stage in this run.")
    note = ("Ingest: read = landed + unchanged + rejected. Validate: staged = standardized + quarantined "
            "(staged: the records standardize prepared in this run).")
    return _table(headers, rows) + f'<p class="meta">{escape(note)}</p>'



def _audit_section(summary: dict[str, Any]) -> str:
    rows = [[r["stage"], r["source_system"] or "(all)", r["status"], *(r[k] for k in AUDIT_COUNTS), r["seconds"]]
            for r in summary["audit"]]
    return _table(["stage", "source", "status", "rows in", "rows out", "rejected", "unchanged", "seconds"], rows)


def _timing_section(summary: dict[str, Any]) -> str:
    seconds = summary["timings_seconds"]
    if not seconds:
        return _none("No stage timings recorded.")
    return _table(["stage", "seconds"], seconds.items()) + _image(timing_chart(seconds), "seconds per stage")


def _validation_section(summary: dict[str, Any]) -> str:
    validation = summary["validation"]
    if validation is None:
        return _none("This run did not validate.")
    rows = [[s["source_system"], s["suite"], s["success"], s["expectations"], s["failed"], s["failing_keys"]]
            for s in validation["suites"]]
    docs = validation["data_docs"]
    link = f'<p><a href="{escape(docs)}">Great Expectations Data Docs</a></p>' if docs else _none("No Data Docs.")
    return _table(["source", "suite", "passed", "expectations", "failed", "failing records"], rows) + link


def _matching_section(summary: dict[str, Any]) -> str:
    pairs, clusters = summary["pairs"], summary["clusters"]
    if pairs is None or clusters is None:
        return _none("This run did not match.")
    rules = [[r["blocking_rule"], r["pairs"], r["linked"], r["review"]] for r in pairs["by_blocking_rule"]]
    sizes = [[int(size), n] for size, n in clusters["size_distribution"].items()]
    return (
        _notes_section(summary.get("matching_notes"))
        + f"<h3>Match probability of {pairs['pairs']:,} candidate pairs</h3>"
        + _image(probability_chart(pairs), "match probability histogram")
        + "<h3>Blocking rules by pairs produced</h3>"
        + _table(["blocking rule", "pairs", "linked", "for review"], rules)
        + f"<h3>Cluster sizes ({clusters['flagged']:,} clusters flagged for review)</h3>"
        + _image(cluster_chart(clusters), "cluster size distribution")
        + _table(["records per cluster", "clusters"], sizes)
    )


def _notes_section(notes: dict[str, Any] | None) -> str:
    if not notes:
        return ""
    html = ""
    placeholders = notes.get("placeholders") or []
    if placeholders:
        rows = [[p["attribute"], p["records"], f"{p['share']:.1%}"] for p in placeholders]
        html += "<h3>Placeholder values treated as missing</h3>" + _table(
            ["attribute", "records holding the value", "share of records with the attribute"], rows
        )
    sparse = notes.get("sparse_rules") or []
    if sparse:
        rows = [[r["rule"], f"{r['share']:.1%}"] for r in sparse]
        html += "<h3>Blocking rules whose keys few records have</h3>" + _table(
            ["blocking rule", "records it can pair, at most"], rows
        )
    training = notes.get("training") or {}
    if training.get("problems"):
        rows = [[problem] for problem in training["problems"]]
        recovered = ", ".join(training.get("recovered") or []) or "none"
        html += (
            "<h3>Model checks</h3>"
            + _table(["EM's model was implausible"], rows)
            + f"<p>m re-estimated from anchor pairs for: {escape(recovered)}</p>"
        )
    return html


def _golden_section(summary: dict[str, Any]) -> str:
    golden = summary["golden"]
    if golden is None:
        return _none("This run published nothing.")
    changes = [[k, golden[k]] for k in ("inserted", "updated", "retired")]
    return (
        _table(["golden_customers rows", "count"], changes)
        + _table(["golden id event", "count"], golden["events"].items())
        + f"<p class=\"meta\">golden_customers version {escape(str(golden['golden_customers_version']))}</p>"
    )


def render_html(summary: dict[str, Any]) -> str:
    sections = [
        ("Reconciliation per source", _reconciliation_section(summary)),
        ("Counts per stage and source", _audit_section(summary)),
        ("Validation", _validation_section(summary)),
        ("Matching", _matching_section(summary)),
        ("Golden customers", _golden_section(summary)),
        ("Timings", _timing_section(summary)),
    ]
    body = "".join(f"<h2>{escape(title)}</h2>{content}" for title, content in sections)
    title = f"cdi run {summary['run_id']}"
    meta = f"lake {summary['lake']} · started {summary['started_at']} · report {summary['generated_at']}"
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body><h1>{escape(title)}</h1>"
        f'<p class="meta">{escape(meta)}</p>{_cards(summary)}{body}</body></html>\n'
    )


def write_report(spark: SparkSession, context: RunContext, run_dir: Path) -> tuple[Path, Path]:
    """Write ``report.html`` and ``summary.json`` into ``run_dir``; returns both paths."""
    summary = build_summary(spark, context, run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    json_path = run_dir / "summary.json"
    json_path.write_text(json.dumps(summary, indent=2, sort_keys=True, default=str) + "\n", encoding="utf-8")
    html_path = run_dir / "report.html"
    html_path.write_text(render_html(summary), encoding="utf-8")
    return html_path, json_path
