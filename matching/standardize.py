"""Standardize a bronze source table into the canonical ``customers_std`` shape.

A source's mapping names, for each canonical attribute, the source column that
holds it. Every mapped value goes through its normalizer; a value that is
present but cannot be standardized becomes NULL and its row gets a reason in
``std_issues`` (attribute and reason, never the value itself) so the validate
stage can quarantine it instead of losing it silently.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pyspark.errors import AnalysisException
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import (
    ArrayType,
    DataType,
    DateType,
    MapType,
    StructType,
    TimestampNTZType,
    TimestampType,
)

from config.errors import ConfigError
from matching.normalize import GENDER_NOT_STATED, blank_to_null, clean_text, is_in, is_present, normalize_gender
from matching.normalize_address import (
    clean_postcode,
    normalize_address_line,
    normalize_city,
    normalize_country,
    normalize_region,
)
from matching.normalize_contact import normalize_email, normalize_phone
from matching.normalize_dates import parse_date, parse_timestamp, written_date
from matching.normalize_ids import normalize_national_id
from matching.normalize_names import canonical_given_name, combine_name_columns, join_name, split_full_name
from schemas.canonical import AUXILIARY_ATTRIBUTES, CANONICAL_ATTRIBUTES, CANONICAL_SCHEMA, MATCH_ONLY_ATTRIBUTES
from schemas.columns import cast_to

EXTRA_COLUMNS: tuple[str, ...] = ("std_issues",)
# No name, address, email or identifier is longer; a longer value is nulled with a reason.
MAX_VALUE_CHARS = 1000
BRONZE_LINEAGE: tuple[str, ...] = ("source_system", "source_key", "run_id", "ingested_at", "record_hash")
MAPPABLE_ATTRIBUTES: tuple[str, ...] = (*CANONICAL_ATTRIBUTES, *AUXILIARY_ATTRIBUTES)

# Attribute -> reason recorded in std_issues when its value is present but unusable.
ISSUE_REASONS: dict[str, str] = {
    "birth_date": "unparseable date",
    "gender": "unrecognised gender",
    "email": "malformed email address",
    "phone": "not a valid phone number",
    "country": "unrecognised country",
    "national_id": "unusable national id (under 4 or over 32 characters, no digit, or a placeholder)",
    "updated_at": "unparseable timestamp",
}


class VocabularyError(ConfigError):
    """A conf vocabulary file is missing, malformed or inconsistent."""


class MappingError(ValueError):
    """A source mapping names an unknown attribute or a column the source lacks."""


@dataclass(frozen=True)
class SqlExpression:
    """A mapping value computed from several columns: ``concat_ws(' ', street_number, street_name)``."""

    sql: str


def _source_column(mapped: str | SqlExpression) -> Column:
    return F.expr(mapped.sql) if isinstance(mapped, SqlExpression) else F.col(mapped)


@dataclass(frozen=True)
class StandardizeOptions:
    default_region: str = "GB"
    default_country: str | None = None
    day_first: bool = True
    date_formats: tuple[str, ...] = ()
    fold_gmail: bool = False


@dataclass(frozen=True)
class Vocabulary:
    """The conf word tables, loaded once. ``suffixes`` maps a written form to its canonical one."""

    nicknames: dict[str, str]
    honorifics: frozenset[str]
    suffixes: dict[str, str]
    address_tokens: dict[str, str]
    countries: dict[str, str]
    particles: frozenset[str] = field(default_factory=frozenset)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        content = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise VocabularyError(f"{path}: cannot read: {error}") from error
    if not isinstance(content, dict):
        raise VocabularyError(f"{path}: expected a mapping at the top level")
    return content


def _word_list(path: Path, content: dict[str, Any], key: str) -> frozenset[str]:
    words = content.get(key)
    if not isinstance(words, list) or not all(isinstance(word, str) and word for word in words):
        raise VocabularyError(f"{path}: key '{key}': expected a list of words")
    return frozenset(words)


def _word_map(path: Path, content: dict[str, Any], key: str) -> dict[str, str]:
    entries = content.get(key)
    if not isinstance(entries, dict):
        raise VocabularyError(f"{path}: key '{key}': expected a mapping of word: replacement")
    for name, value in entries.items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise VocabularyError(f"{path}: key '{key}.{name}': expected text, got {value!r} (quote it)")
    return dict(entries)


def _read_nicknames(path: Path) -> dict[str, str]:
    nicknames: dict[str, str] = {}
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle)
            if reader.fieldnames != ["nickname", "canonical"]:
                raise VocabularyError(f"{path}: expected the header 'nickname,canonical'")
            for line, row in enumerate(reader, start=2):
                nickname, canonical = row["nickname"], row["canonical"]
                if not nickname or not canonical:
                    raise VocabularyError(f"{path}: line {line}: expected nickname,canonical")
                if nickname in nicknames:
                    raise VocabularyError(f"{path}: line {line}: nickname '{nickname}' listed twice")
                nicknames[nickname] = canonical
    except OSError as error:
        raise VocabularyError(f"{path}: cannot read: {error}") from error
    return nicknames


def load_vocabulary(conf_dir: Path) -> Vocabulary:
    """Read ``nicknames.csv``, ``name_tokens.yaml`` and ``address_tokens.yaml`` from ``conf_dir``."""
    names_path = conf_dir / "name_tokens.yaml"
    address_path = conf_dir / "address_tokens.yaml"
    names = _read_yaml(names_path)
    address = _read_yaml(address_path)
    honorifics = _word_list(names_path, names, "honorifics")
    suffixes = _word_map(names_path, names, "suffixes")
    both = honorifics & suffixes.keys()
    if both:
        raise VocabularyError(f"{names_path}: words both honorific and suffix: {sorted(both)}")
    countries = _word_map(address_path, address, "countries")
    for name, code in countries.items():
        if len(code) != 2 or not code.isalpha() or not code.isupper():
            raise VocabularyError(f"{address_path}: key 'countries.{name}': expected an ISO2 code, got '{code}'")
    return Vocabulary(
        nicknames=_read_nicknames(conf_dir / "nicknames.csv"),
        honorifics=honorifics,
        suffixes=suffixes,
        address_tokens=_word_map(address_path, address, "tokens"),
        countries=countries,
        particles=_word_list(names_path, names, "particles"),
    )


def _source_types(df: DataFrame, mapping: Mapping[str, str | SqlExpression]) -> dict[str, DataType]:
    """The data type of each mapped source column or expression; raises MappingError on a bad mapping."""
    missing_lineage = [name for name in BRONZE_LINEAGE if name not in df.columns]
    if missing_lineage:
        raise MappingError(f"bronze table lacks lineage columns {missing_lineage}")
    types: dict[str, DataType] = {}
    for attribute, mapped in mapping.items():
        if attribute not in MAPPABLE_ATTRIBUTES:
            raise MappingError(f"mapping '{attribute}': not a canonical attribute {list(MAPPABLE_ATTRIBUTES)}")
        is_expression = isinstance(mapped, SqlExpression)
        what = f"expression \"{mapped.sql}\"" if is_expression else f"column '{mapped}'"
        try:
            data_type = df.select(_source_column(mapped)).schema[0].dataType
        except AnalysisException as error:
            if not is_expression:
                raise MappingError(f"mapping '{attribute}': source has no column '{mapped}'") from error
            reason = (error.getMessage() or str(error)).splitlines()[0]
            raise MappingError(f"mapping '{attribute}': {what} does not resolve against the source: {reason}") from error
        if isinstance(data_type, (StructType, ArrayType, MapType)):
            kind = data_type.simpleString()
            raise MappingError(f"mapping '{attribute}': {what} is {kind}, expected a value")
        types[attribute] = data_type
    return types


def _birth_date(raw: Column, data_type: DataType, options: StandardizeOptions) -> Column:
    """A date of year 1 to 9999, else null: Spark holds year 0 and negative years, which
    Python's ``datetime.date`` (and so every pandas step downstream) cannot."""
    if isinstance(data_type, DateType):
        value = raw
    elif isinstance(data_type, (TimestampType, TimestampNTZType)):
        value = F.to_date(raw)
    else:
        value = parse_date(raw, options.date_formats, options.day_first)
    return F.when(F.year(value).between(1, 9999), value)


def _birth_date_written(raw: Column, options: StandardizeOptions) -> Column:
    """The birth date as written (``MATCH_ONLY_ATTRIBUTES``): the value's year, month and day in ISO order
    (``written_date``), valid or not; a date or timestamp column as its date.

    Read from the raw value, not from the parsed date: a column built on the parse kept Spark from
    merging standardize's two projections (the 1M Scale sources standardized and written to ``noop``:
    59-63 s against 41-43 s without the column; from the raw value 44 s). Matching compares a usable
    date as itself and this only where there is none (``matching.compare.side_frame``): a date written
    otherwise (``3 Apr 1990``, a source's own format) has no written form, and ``31/12/1990`` from a
    month-first source is written ``1990-31-12``.
    """
    return written_date(raw, options.day_first)


def _updated_at(raw: Column, data_type: DataType, options: StandardizeOptions) -> Column:
    """A timestamp of year 1900 to 2200, else null: a record was not changed before 1900, and
    pandas' nanosecond timestamps end in 2262."""
    if isinstance(data_type, TimestampType):
        value = raw
    elif isinstance(data_type, (TimestampNTZType, DateType)):
        value = raw.cast("timestamp")
    else:
        value = parse_timestamp(raw, day_first=options.day_first)
    return F.when(F.year(value).between(1900, 2200), value)


def _name_parts(raw: dict[str, Column], vocabulary: Vocabulary) -> Column:
    """``struct<given, middle, family, suffix>``: from the name columns when they hold a name, else the full name."""
    null = F.lit(None).cast("string")
    from_columns = combine_name_columns(
        raw.get("given_name", null),
        raw.get("middle_name", null),
        raw.get("family_name", null),
        vocabulary.honorifics,
        vocabulary.suffixes,
    )
    if "full_name" not in raw:
        return from_columns
    from_full = split_full_name(raw["full_name"], vocabulary.honorifics, vocabulary.suffixes, vocabulary.particles)
    if not raw.keys() & {"given_name", "middle_name", "family_name"}:
        return from_full
    has_name = from_columns["given"].isNotNull() | from_columns["family"].isNotNull()
    return F.when(has_name, from_columns).otherwise(from_full)


def _issue(attribute: str, raw: Column, value: Column) -> Column:
    unusable = is_present(raw.cast("string")) & value.isNull()
    if attribute == "gender":
        unusable = unusable & ~F.coalesce(is_in(clean_text(raw), GENDER_NOT_STATED), F.lit(False))
    return F.when(unusable, F.lit(f"{attribute}: {ISSUE_REASONS[attribute]}"))


def standardize(
    df: DataFrame,
    mapping: Mapping[str, str | SqlExpression],
    options: StandardizeOptions,
    vocabulary: Vocabulary,
    phone_function: str | None = None,
) -> DataFrame:
    """The canonical columns (``CANONICAL_SCHEMA`` order) plus ``MATCH_ONLY_ATTRIBUTES`` and ``std_issues``.

    ``phone_function``: the session's JVM function for phone numbers, when it has one (``normalize_phone``).

    ``mapping`` is canonical attribute -> source column path (``'address.city'``)
    or a ``SqlExpression`` over the source's columns.
    Unmapped attributes are NULL, except ``country``, which is
    ``options.default_country`` when the source has no country column.
    """
    types = _source_types(df, mapping)
    raw = {attribute: _source_column(source) for attribute, source in mapping.items()}
    full_text = {attribute: column.cast("string") for attribute, column in raw.items()}
    # A value longer than any real one is unusable (and a string similarity costs length squared).
    text = {attribute: F.when(F.length(column) <= MAX_VALUE_CHARS, column) for attribute, column in full_text.items()}
    too_long = [
        F.when(F.length(column) > MAX_VALUE_CHARS, F.lit(f"{attribute}: longer than {MAX_VALUE_CHARS} characters"))
        for attribute, column in full_text.items()
    ]

    def mapped(attribute: str, normalizer: Callable[..., Column], *args: Any) -> Column:
        if attribute not in text:
            return F.lit(None)
        return normalizer(text[attribute], *args)

    country = (
        normalize_country(text["country"], vocabulary.countries)
        if "country" in text
        else F.lit(options.default_country)
    )
    birth_date = _birth_date(raw["birth_date"], types["birth_date"], options) if "birth_date" in raw else F.lit(None)
    birth_date_written = _birth_date_written(raw["birth_date"], options) if "birth_date" in raw else F.lit(None)
    updated_at = _updated_at(raw["updated_at"], types["updated_at"], options) if "updated_at" in raw else F.lit(None)
    values = {
        "birth_date": birth_date,
        "gender": mapped("gender", normalize_gender),
        "email": mapped("email", normalize_email, options.fold_gmail),
        "phone": mapped("phone", normalize_phone, F.coalesce(country, F.lit(options.default_region)), phone_function),
        "address_line1": mapped("address_line1", normalize_address_line, vocabulary.address_tokens),
        "address_line2": mapped("address_line2", normalize_address_line, vocabulary.address_tokens),
        "city": mapped("city", normalize_city),
        "postcode": mapped("postcode", clean_postcode),
        "region": mapped("region", normalize_region),
        "country": country,
        "national_id": mapped("national_id", normalize_national_id),
        "updated_at": updated_at,
    }
    checked = [attribute for attribute in ISSUE_REASONS if attribute in raw]

    standardized = df.select(
        *[F.col(name) for name in BRONZE_LINEAGE],
        _name_parts(text, vocabulary).alias("_name"),
        *[value.alias(attribute) for attribute, value in values.items()],
        birth_date_written.cast("string").alias("birth_date_written"),
        *[raw[attribute].alias(f"_raw_{attribute}") for attribute in checked],
        F.concat_ws("; ", *too_long).alias("_too_long"),
    )
    given = canonical_given_name(F.col("_name.given"), vocabulary.nicknames)
    issues = F.concat_ws(
        "; ", *[_issue(a, F.col(f"_raw_{a}"), F.col(a)) for a in checked], blank_to_null(F.col("_too_long"))
    )
    named = standardized.select(
        "*",
        F.concat(F.col("source_system"), F.lit(":"), F.col("source_key").cast("string")).alias("record_id"),
        given.alias("given_name"),
        F.col("_name.middle").alias("middle_name"),
        F.col("_name.family").alias("family_name"),
        join_name(given, F.col("_name.middle"), F.col("_name.family")).alias("full_name"),
        F.col("_name.suffix").alias("name_suffix"),
        blank_to_null(issues).alias("std_issues"),
    )
    return named.select(
        *[cast_to(F.col(f.name), f.dataType).alias(f.name) for f in CANONICAL_SCHEMA.fields],
        *MATCH_ONLY_ATTRIBUTES,
        *EXTRA_COLUMNS,
    )
