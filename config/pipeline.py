"""The pipeline configuration: YAML parsed once into typed objects.

Every error names the file, the key path and what was expected, e.g.
``conf/cdi.yaml: sources[1].kind: expected one of 'jdbc', 'csv', 'json', 'parquet'``.
Strings may use ``${VAR}`` or ``${VAR:-default}`` to take a value from the
environment; credentials are only ever named (``user_env``/``password_env``),
never written in YAML.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from pathlib import Path
import sys
from typing import Annotated, Any, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from config.errors import ConfigError
from config.yaml_files import parse_model, read_yaml
from schemas.canonical import AUXILIARY_ATTRIBUTES, CANONICAL_ATTRIBUTES

CONF_DIR = Path(__file__).resolve().parents[1] / "conf"
MAPPABLE_ATTRIBUTES = frozenset(CANONICAL_ATTRIBUTES) | frozenset(AUXILIARY_ATTRIBUTES)
SOURCE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StandardizeSettings(_Strict):
    """Per-source hints for standardization."""

    default_region: str = "GB"
    default_country: str | None = None
    day_first: bool = True
    date_formats: tuple[str, ...] = ()
    fold_gmail: bool = False


class MappingExpression(_Strict):
    """A mapping entry ``{expr: "concat_ws(' ', street_number, street_name)"}``.

    A Spark SQL expression over the source's columns (by their bronze names:
    spaces and ``,;{}()=`` in a name become ``_``), for an attribute that no
    single column holds.
    """

    expr: str


def sql_parse_error(expression: str) -> str | None:
    """Spark's parser's complaint about ``expression``, or None.

    Only when a SparkSession is already running in this process (config is
    usually loaded before one starts): then the expression is parsed, not
    resolved, so no column needs to exist yet. Without a session the
    expression is checked when ingest opens the source (``jobs/sources.py``).
    """
    if "pyspark" not in sys.modules:
        return None
    from pyspark.errors import ParseException
    from pyspark.sql import SparkSession

    spark = SparkSession.getActiveSession()
    # The session's own SQL parser (no public Python API parses without resolving
    # columns); a Spark Connect session has none and skips this check.
    parser_owner = getattr(spark, "_jsparkSession", None)
    if parser_owner is None:
        return None
    try:
        parser_owner.sessionState().sqlParser().parseExpression(expression)
    except ParseException as exc:
        return (exc.getMessage() or str(exc)).splitlines()[0]
    return None


def _mapping_entry(value: Any) -> Any:
    """``column`` or ``{expr: ...}``; one clear message per bad entry."""
    if isinstance(value, MappingExpression):
        return value
    if isinstance(value, str):
        if not value.strip():
            raise ValueError("expected a source column name, got an empty string")
        return value
    if isinstance(value, dict) and set(value) == {"expr"}:
        expression = value["expr"]
        if not isinstance(expression, str) or not expression.strip():
            raise ValueError(f"expr: expected a Spark SQL expression as a non-empty string, got {expression!r}")
        problem = sql_parse_error(expression)
        if problem:
            raise ValueError(f"expr: {expression!r} is not a valid Spark SQL expression: {problem}")
        return MappingExpression(expr=expression.strip())
    raise ValueError(
        "expected a source column name or {expr: <Spark SQL expression over the source's columns>}, "
        f"got {value!r}"
    )


MappingEntry = Annotated[str | MappingExpression, BeforeValidator(_mapping_entry)]


class DeleteSettings(_Strict):
    """How a deletion shows in a source.

    ``snapshot``: every full read is the whole source, so a key missing from it
    was deleted (only on reads that are not cut by a watermark). ``flag``: rows
    whose ``column`` equals ``value`` are deleted. ``none``: records are never
    deleted. ``max_share``: a snapshot read that loses more than this share of
    the source's keys at once stops the run (exit 4): far more often a broken
    export than a mass deletion.
    """

    mode: Literal["none", "snapshot", "flag"] = "none"
    column: str | None = None
    value: str | None = None
    max_share: float = Field(default=0.10, ge=0.0, le=1.0)

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        return {"mode": data} if isinstance(data, str) else data

    @field_validator("value", mode="before")
    @classmethod
    def _value_as_text(cls, value: Any) -> Any:
        """Compared with the column's value as text: YAML ``true`` and ``1`` mean ``'true'`` and ``'1'``."""
        if isinstance(value, bool):
            return str(value).lower()
        return str(value) if isinstance(value, (int, float)) else value

    @model_validator(mode="after")
    def _flag_fields(self) -> "DeleteSettings":
        if self.mode == "flag":
            if not self.column or self.value is None:
                raise ValueError("column / value: a flag deletion needs both, e.g. {mode: flag, column: is_deleted, value: 'true'}")
        elif self.column is not None or self.value is not None:
            raise ValueError(f"column / value: only for mode 'flag', not {self.mode!r}")
        return self


class ReadSettings(_Strict):
    """Where and how to read one table: a customer source or one of its activity tables.

    The readers in ``jobs/sources.py`` take this, so a source and an activity
    are opened the same way.
    """

    name: str
    kind: Literal["jdbc", "csv", "json", "parquet"]
    # jdbc
    url: str | None = None
    driver: str | None = None
    table: str | None = None
    query: str | None = None
    user_env: str | None = None
    password_env: str | None = None
    partition_column: str | None = None
    num_partitions: int = Field(default=4, ge=1)
    custom_schema: str | None = None
    # files
    path: str | None = None
    columns: dict[str, str] | None = None
    encoding: str = "UTF-8"
    delimiter: str = ","
    # What escapes a quote inside a quoted CSV value: '"' doubles it (RFC 4180: Excel, pandas, Python's
    # csv); '\\' for exports that write \". Spark's own default is the backslash, which splits a
    # doubled quote followed by a comma into two fields.
    escape: str = Field(default='"', min_length=1, max_length=1)
    multiline: bool = False
    # both
    watermark: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not SOURCE_NAME.match(value):
            raise ValueError("expected lower-case letters, digits and '_', starting with a letter")
        return value

    @model_validator(mode="before")
    @classmethod
    def _no_inline_secrets(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in ("user", "password"):
                if key in data:
                    raise ValueError(
                        f"'{key}' must not be written in YAML; name an environment variable with '{key}_env'"
                    )
        return data

    @model_validator(mode="after")
    def _kind_fields(self) -> Self:
        if self.kind == "jdbc":
            if not self.url:
                raise ValueError("url: required for a jdbc source")
            if (self.table is None) == (self.query is None):
                raise ValueError("table / query: give exactly one for a jdbc source")
        elif not self.path:
            raise ValueError(f"path: required for a {self.kind} source")
        return self


class ActivityConfig(ReadSettings):
    """A departmental activity table (orders, invoices, tickets...) of a customer source.

    Each row is one event of one source customer: ``customer_key`` holds that
    customer's ``primary_key`` in the owning source, so the row reaches its
    golden customer through the source's cross-reference. The event fields are
    a column or ``{expr: ...}`` like a source's ``mapping``; a constant type is
    ``{expr: "'invoice'"}``. ``day_first`` reads an ambiguous text timestamp
    such as ``03/04/2025`` as 3 April. Activities are append-mostly: ``deletes``
    is ``none`` or ``snapshot``, never ``flag``.
    """

    primary_key: tuple[str, ...] = Field(min_length=1)
    customer_key: tuple[str, ...] = Field(min_length=1)
    timestamp: MappingEntry
    type: MappingEntry
    amount: MappingEntry | None = None
    currency: MappingEntry | None = None
    channel: MappingEntry | None = None
    status: MappingEntry | None = None
    day_first: bool = False
    deletes: DeleteSettings = DeleteSettings()
    suite: str | None = None

    @field_validator("deletes")
    @classmethod
    def _no_flag_deletes(cls, value: DeleteSettings) -> DeleteSettings:
        if value.mode == "flag":
            raise ValueError("an activity's deletes is 'none' or 'snapshot', not 'flag'")
        return value


class SourceConfig(ReadSettings):
    """A departmental customer source: its key, its mapping to the canonical attributes, its activities."""

    primary_key: tuple[str, ...] = Field(min_length=1)
    # canonical attribute -> a source column (``address.city`` for a nested one) or {expr: ...}
    mapping: dict[str, MappingEntry] = Field(min_length=1)
    deletes: DeleteSettings = DeleteSettings()
    # a mapped column suddenly empty for most rows: stop the run (exit 4), log it and land, or do not check
    null_drift: Literal["batch", "warn", "off"] = "batch"
    standardize: StandardizeSettings = StandardizeSettings()
    suite: str | None = None
    activities: tuple[ActivityConfig, ...] = ()
    # A file with no key column: cdi adds a column of this name holding each row's number in the
    # file (1 for the first row), for primary_key. The number moves when rows are added or removed
    # above a row, so it suits a file read once (``cdi dedupe``), not one that changes between runs.
    row_number_column: str | None = None

    @field_validator("mapping")
    @classmethod
    def _mapping(cls, value: dict[str, str | MappingExpression]) -> dict[str, str | MappingExpression]:
        unknown = sorted(set(value) - MAPPABLE_ATTRIBUTES)
        if unknown:
            raise ValueError(
                f"unknown canonical attribute {unknown[0]!r}; expected one of {', '.join(sorted(MAPPABLE_ATTRIBUTES))}"
            )
        return value

    @field_validator("activities")
    @classmethod
    def _unique_activities(cls, value: tuple[ActivityConfig, ...]) -> tuple[ActivityConfig, ...]:
        names = [activity.name for activity in value]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"activity name {duplicates[0]!r} appears more than once")
        return value

    @model_validator(mode="after")
    def _row_numbers_of_a_file(self) -> "SourceConfig":
        if self.row_number_column is not None and self.kind == "jdbc":
            raise ValueError("row_number_column: a database query has no row order to number; use a key column")
        return self

    @model_validator(mode="after")
    def _customer_keys_fit(self) -> "SourceConfig":
        for index, activity in enumerate(self.activities):
            if len(activity.customer_key) != len(self.primary_key):
                raise ValueError(
                    f"activities[{index}].customer_key: expected {len(self.primary_key)} column(s), "
                    f"one per primary_key column ({', '.join(self.primary_key)}) in the same order, "
                    f"got {len(activity.customer_key)}"
                )
        return self


class RetentionSettings(_Strict):
    """What ``cdi maintain`` keeps.

    ``vacuum_hours``: VACUUM keeps the files of every table version written in
    the last this many hours (raised per table to what the last publication and
    the incremental match still read). ``run_folder_days``: run folders older than this are
    dropped (never the latest run's). ``optimize``: compact small files first.
    """

    vacuum_hours: int = Field(default=168, ge=0)
    run_folder_days: int = Field(default=30, ge=1)
    optimize: bool = True


class Customer360Settings(_Strict):
    """How the customer 360 view segments golden customers by their activity.

    ``as_of``: the moment contact ages are measured from: ``run`` (the run's
    start) or a date (its start, 00:00 UTC), to fix it for data generated up to a
    known day. A customer whose first contact is within ``new_days`` of it is
    ``new``; otherwise by the last contact: within ``active_days`` ``active``,
    within ``lapsing_days`` ``lapsing``, older ``lost``.
    """

    as_of: Literal["run"] | date = "run"
    new_days: int = Field(default=90, gt=0)
    active_days: int = Field(default=180, gt=0)
    lapsing_days: int = 365

    @field_validator("as_of", mode="before")
    @classmethod
    def _run_or_date(cls, value: Any) -> Any:
        """One clear message instead of one per member of the union."""
        if value == "run" or (isinstance(value, date) and not isinstance(value, datetime)):
            return value
        if isinstance(value, str):
            try:
                return date.fromisoformat(value)
            except ValueError:
                pass
        raise ValueError(f"expected 'run' or a date like 2026-01-01, got {value!r}")

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> "Customer360Settings":
        if self.lapsing_days <= self.active_days:
            raise ValueError(
                f"lapsing_days: expected more than active_days ({self.active_days}), got {self.lapsing_days}"
            )
        return self


class PipelineConfig(_Strict):
    lake: str = "lake"
    spark: dict[str, str] = {}
    matching: str = str(CONF_DIR / "matching.yaml")
    survivorship: str = str(CONF_DIR / "survivorship.yaml")
    canonical_suite: str = str(CONF_DIR / "quality" / "canonical.yaml")
    vocabulary_dir: str = str(CONF_DIR)
    sources: tuple[SourceConfig, ...] = Field(min_length=1)
    retention: RetentionSettings = RetentionSettings()
    customer_360: Customer360Settings = Customer360Settings()

    @field_validator("spark", mode="before")
    @classmethod
    def _spark_values_as_strings(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): str(v).lower() if isinstance(v, bool) else str(v) for k, v in value.items()}
        return value

    @model_validator(mode="after")
    def _unique_sources(self) -> "PipelineConfig":
        names = [s.name for s in self.sources]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"sources: source name {duplicates[0]!r} appears more than once")
        return self

    def source(self, name: str) -> SourceConfig:
        for candidate in self.sources:
            if candidate.name == name:
                return candidate
        raise ConfigError(f"no source named {name!r}; configured: {', '.join(s.name for s in self.sources)}")


def load_pipeline_config(path: Path | str) -> PipelineConfig:
    return parse_model(PipelineConfig, read_yaml(path), path)
