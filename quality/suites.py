"""Expectation suites declared in YAML (``conf/quality/``), parsed into typed objects.

A suite lists Great Expectations 1.x expectations by their snake_case name, each
with its keyword arguments and a severity:

- ``batch``: a failure stops the run before anything is published;
- ``row``: the rows that fail are quarantined and the rest continue. Only
  expectations that judge each row (column map expectations) can be row-level,
  and without ``mostly``: every failing row is quarantined.
- ``field``: the failing value is unusable, not the record: the expectation's
  ``column`` is nulled on the failing rows, the reason is added to the
  record's ``std_issues``, and the record goes on to matching with the rest
  of its values. Only column map expectations (one ``column``) can be
  field-level.

Two things are resolved at run time rather than written in YAML:

- ``min_value`` / ``max_value`` given as ``today`` become the run's date;
- ``row_count_within_last_run`` (cdi's own) becomes
  ``expect_table_row_count_to_be_between`` with bounds relative to the previous
  run's row count, or at least ``min_rows`` when there is no previous run, so a
  source that is suddenly empty always stops the run.

``pii_columns`` names the columns whose values must never reach validation
results or Data Docs. Row-level results carry keys only (see ``validate.py``);
here, expectations that would report a PII column's values as an aggregate
(``expect_column_max_to_be_between`` on ``birth_date``...) are refused.
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Annotated, Any, Literal

from great_expectations.compatibility import pydantic as gx_pydantic
from great_expectations.expectations.expectation import (
    ColumnMapExpectation,
    ColumnPairMapExpectation,
    Expectation,
    MulticolumnMapExpectation,
)
from great_expectations.expectations.registry import (
    get_expectation_impl,
    list_registered_expectation_implementations,
)
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from config.yaml_files import parse_model, read_yaml

Severity = Literal["row", "field", "batch"]

ROW_COUNT_WITHIN_LAST_RUN = "row_count_within_last_run"
TODAY = "today"
DATE_BOUND_KWARGS = ("min_value", "max_value")
ROW_LEVEL_BASES = (ColumnMapExpectation, ColumnPairMapExpectation, MulticolumnMapExpectation)
# Batch expectations on a PII column whose results name no value of it.
PII_SAFE_BATCH_EXPECTATIONS = frozenset({"expect_column_to_exist"})
COLUMN_KWARGS = ("column", "column_A", "column_B")
# Severity -> (expectation classes it allows, what they must judge, what happens to every failure).
PER_VALUE_SEVERITIES = {
    "row": (ROW_LEVEL_BASES, "judges each row", "every failing row is quarantined"),
    "field": (ColumnMapExpectation, "judges one column's values", "every failing value is nulled"),
}
COLUMN_LIST_KWARGS = ("column_list",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class RowCountWithinLastRun(_Strict):
    """Bounds of ``row_count_within_last_run`` as ratios of the previous run's count."""

    min_ratio: float | None = Field(default=None, ge=0)
    max_ratio: float | None = Field(default=None, gt=0)
    min_rows: int = Field(default=1, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> RowCountWithinLastRun:
        if self.min_ratio is not None and self.max_ratio is not None and self.min_ratio > self.max_ratio:
            raise ValueError(f"min_ratio {self.min_ratio} is above max_ratio {self.max_ratio}")
        return self

    def bounds(self, previous_row_count: int | None) -> dict[str, int | None]:
        """``expect_table_row_count_to_be_between`` kwargs for this run."""
        if not previous_row_count:
            return {"min_value": self.min_rows, "max_value": None}
        low = self.min_rows
        if self.min_ratio is not None:
            low = max(low, math.ceil(previous_row_count * self.min_ratio))
        high = None if self.max_ratio is None else math.floor(previous_row_count * self.max_ratio)
        return {"min_value": low, "max_value": high}


class ExpectationConfig(_Strict):
    """One expectation of a suite, as written in YAML."""

    expect: str
    kwargs: dict[str, Any] = {}
    severity: Severity
    reason: str | None = None

    @field_validator("expect")
    @classmethod
    def _known(cls, value: str) -> str:
        if value != ROW_COUNT_WITHIN_LAST_RUN and value not in _gx_expectation_names():
            raise ValueError(
                f"unknown expectation {value!r}; expected a Great Expectations 1.x expectation "
                f"(e.g. 'expect_column_values_to_not_be_null') or {ROW_COUNT_WITHIN_LAST_RUN!r}"
            )
        return value

    @field_validator("severity", mode="before")
    @classmethod
    def _severity(cls, value: Any) -> Any:
        if value not in ("row", "field", "batch"):
            raise ValueError(f"expected 'row', 'field' or 'batch', got {value!r}")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> ExpectationConfig:
        if self.severity in PER_VALUE_SEVERITIES:
            bases, needs, outcome = PER_VALUE_SEVERITIES[self.severity]
            if self.expect == ROW_COUNT_WITHIN_LAST_RUN or not issubclass(get_expectation_impl(self.expect), bases):
                raise ValueError(f"severity: '{self.severity}' needs an expectation that {needs}; {self.expect} does not")
            if "mostly" in self.kwargs:
                raise ValueError(f"kwargs.mostly: not allowed on a {self.severity}-level expectation ({outcome})")
        self.to_gx(0, today=dt.date.today(), previous_row_count=None)
        return self

    @property
    def columns(self) -> tuple[str, ...]:
        """The columns this expectation reads, as named in its kwargs."""
        named = [self.kwargs[k] for k in COLUMN_KWARGS if k in self.kwargs]
        for key in COLUMN_LIST_KWARGS:
            named.extend(self.kwargs.get(key) or ())
        return tuple(str(c) for c in named)

    @property
    def label(self) -> str:
        """``expect_column_values_to_match_regex(email)``: the check named in quarantine rows."""
        return f"{self.expect}({', '.join(self.columns)})" if self.columns else self.expect

    def to_gx(self, index: int, *, today: dt.date, previous_row_count: int | None) -> Expectation:
        """The Great Expectations object for this run, tagged with its position in the suite.

        Raises ValueError naming the kwarg when Great Expectations refuses the kwargs.
        """
        if self.expect == ROW_COUNT_WITHIN_LAST_RUN:
            try:
                rule = RowCountWithinLastRun.model_validate(self.kwargs)
            except ValidationError as exc:
                raise ValueError(_describe_kwargs_errors(exc.errors())) from None
            name, kwargs = "expect_table_row_count_to_be_between", rule.bounds(previous_row_count)
        else:
            name, kwargs = self.expect, _resolve_today(self.kwargs, today)
        try:
            return get_expectation_impl(name)(**kwargs, meta={"cdi_index": index, "severity": self.severity})
        except gx_pydantic.ValidationError as exc:
            raise ValueError(_describe_kwargs_errors(exc.errors())) from None


def _no_pii_aggregate(expectation: ExpectationConfig, info: ValidationInfo) -> ExpectationConfig:
    """Refuse an expectation whose result would report values of a PII column."""
    pii = sorted(set(expectation.columns) & set(info.data.get("pii_columns", ())))
    if (
        pii
        and expectation.expect not in PII_SAFE_BATCH_EXPECTATIONS
        and not issubclass(get_expectation_impl(expectation.expect), ROW_LEVEL_BASES)
    ):
        raise ValueError(
            f"expect: {expectation.expect} would write values of PII column {pii[0]!r} "
            "into results and Data Docs; use a per-row expectation"
        )
    return expectation


class SuiteConfig(_Strict):
    """A named list of expectations for one table, plus the columns holding PII."""

    suite: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
    # Declared before expectations: each expectation is checked against it.
    pii_columns: tuple[str, ...] = ()
    expectations: tuple[Annotated[ExpectationConfig, AfterValidator(_no_pii_aggregate)], ...]

    @field_validator("expectations")
    @classmethod
    def _not_empty(cls, value: tuple[ExpectationConfig, ...]) -> tuple[ExpectationConfig, ...]:
        if not value:
            raise ValueError("expected at least one expectation")
        return value

    def to_gx(self, *, today: dt.date, previous_row_count: int | None) -> list[Expectation]:
        """The suite's expectations for one run, in order, each tagged with its index."""
        return [
            e.to_gx(i, today=today, previous_row_count=previous_row_count) for i, e in enumerate(self.expectations)
        ]


def load_suite(path: Path | str) -> SuiteConfig:
    """Parse and check a suite file; raises ``ConfigError`` naming the file and the key."""
    return parse_model(SuiteConfig, read_yaml(path), path)


def _describe_kwargs_errors(errors: Any) -> str:
    """``kwargs.regex: field required; ...`` from pydantic (v1 in GX, v2 here) error dicts."""
    problems = {
        ".".join(["kwargs", *map(str, e["loc"])]) + ": " + str(e["msg"]).removeprefix("Value error, "): None
        for e in errors
    }
    return "; ".join(problems)


def _gx_expectation_names() -> frozenset[str]:
    return frozenset(list_registered_expectation_implementations())


def _resolve_today(kwargs: dict[str, Any], today: dt.date) -> dict[str, Any]:
    return {k: today.isoformat() if k in DATE_BOUND_KWARGS and v == TODAY else v for k, v in kwargs.items()}
