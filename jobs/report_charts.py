"""The run report's charts: matplotlib figures drawn on the Agg canvas, returned as base64 PNG strings."""

from __future__ import annotations

import base64
import io
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, NullFormatter


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


UPSET_COMBINATIONS = 20  # bars of the department chart; the report's table lists every combination
# A colour per segment (report_queries.SEGMENTS), the same whichever segments a report shows.
SEGMENT_COLOURS = {"new": "#55a868", "active": "#4c72b0", "lapsing": "#dd8452", "lost": "#c44e52",
                   "undated": "#937860", "none": "#bab0ac"}
OTHER_SEGMENT_COLOUR = "#8172b3"
SEGMENT_SLOTS = 6  # runs the segment chart has room for at least: a lake's first run is not one bar a chart wide


def department_chart(combinations: list[dict[str, Any]], departments: list[str]) -> str:
    """An UpSet chart: customers per combination of departments (bars, largest first) over a dot matrix
    marking the departments in each combination (``combinations`` come sorted by size)."""
    shown = combinations[:UPSET_COMBINATIONS]
    figure = Figure(figsize=(7, 2.6 + 0.28 * len(departments)))
    bars, matrix = figure.subplots(
        2, 1, sharex=True, gridspec_kw={"height_ratios": [2.6, 0.28 * max(len(departments), 1)], "hspace": 0.05}
    )
    positions = list(range(len(shown)))
    drawn = bars.bar(positions, [c["customers"] for c in shown], color="#4c72b0")
    bars.bar_label(drawn, fontsize=7)
    title = "customers per combination of departments"
    if len(combinations) > len(shown):
        title += f" (largest {len(shown)} of {len(combinations)})"
    bars.set(ylabel="customers", title=title)
    bars.title.set_fontsize(9)
    rows = {name: len(departments) - 1 - i for i, name in enumerate(departments)}  # first department on top
    for x, combination in enumerate(shown):
        matrix.scatter([x] * len(departments), list(rows.values()), s=28, color="#d0d7de")
        members = sorted(rows[name] for name in combination["departments"])
        if members:
            matrix.plot([x, x], [members[0], members[-1]], color="#1f2328", linewidth=1.5)
            matrix.scatter([x] * len(members), members, s=28, color="#1f2328", zorder=3)
    matrix.set_yticks(list(rows.values()), labels=list(rows))
    matrix.set_ylim(-0.5, len(departments) - 0.5)
    matrix.tick_params(axis="x", bottom=False, labelbottom=False)
    for spine in matrix.spines.values():
        spine.set_visible(False)
    return _png(figure)


def segment_chart(runs: list[dict[str, Any]], segments: list[str]) -> str:
    """Customers per segment in each run of ``runs`` (oldest first), as stacked bars."""
    figure = Figure(figsize=(7, 3))
    ax = figure.subplots()
    positions = list(range(len(runs)))
    below = [0] * len(runs)
    for segment in segments:
        sizes = [run["customers"].get(segment, 0) for run in runs]
        colour = SEGMENT_COLOURS.get(segment, OTHER_SEGMENT_COLOUR)
        ax.bar(positions, sizes, bottom=below, color=colour, label=segment, width=0.6)
        below = [b + s for b, s in zip(below, sizes)]
    ax.set_xticks(positions, [run["run_id"] for run in runs], rotation=30, ha="right", fontsize=7)
    ax.set_xlim(-0.5, max(len(runs), SEGMENT_SLOTS) - 0.5)
    ax.set(ylabel="customers")
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=8)
    return _png(figure)
