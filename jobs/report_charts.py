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
