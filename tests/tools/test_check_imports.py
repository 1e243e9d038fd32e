"""The import rules of docs/architecture.md hold, and the checker would see them broken."""

from __future__ import annotations

from tools.check_imports import cycles, layer_of, problems, upward_imports


def test_the_code_has_no_upward_import_and_no_cycle():
    assert problems() == []


def test_an_upward_import_is_reported():
    edges = {"matching.compare": {"jobs.match", "config.errors"}, "jobs.match": {"jobs.cli"}}

    assert upward_imports(edges) == [
        "jobs.match (layer 3) imports jobs.cli (layer 4)",
        "matching.compare (layer 2) imports jobs.match (layer 3)",
    ]


def test_a_cycle_hidden_in_function_level_imports_is_reported():
    edges = {"jobs.pipeline": {"jobs.report"}, "jobs.report": {"jobs.stages", "jobs.pipeline"}, "jobs.stages": set()}

    assert cycles(edges) == [["jobs.pipeline", "jobs.report"]]


def test_the_cli_sits_above_the_stages_it_runs():
    assert layer_of("jobs.cli") > layer_of("jobs.pipeline") > layer_of("matching.compare") > layer_of("config.lake")
