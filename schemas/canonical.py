"""The canonical customer schema: the one source of truth for ``customers_std``.

Every source's column mapping (``conf/``) produces these attributes; an
attribute a source lacks is null, never an empty string. Names are a contract
shared with ``cdi dedupe --map`` and every table downstream: add, never rename.

| attribute      | type   | meaning                                                        |
| -------------- | ------ | -------------------------------------------------------------- |
| given_name     | string | first given name, lower case, accents folded, nickname resolved |
| middle_name    | string | other given names                                              |
| family_name    | string | surname, lower case, accents folded                            |
| full_name      | string | given, middle and family names joined by single spaces        |
| name_suffix    | string | generational suffix moved out of the name (``jr``, ``sr``, ``iii``) |
| birth_date     | date   | date of birth                                                  |
| gender         | string | ``m`` / ``f`` / null                                           |
| email          | string | lower-cased address                                            |
| phone          | string | E.164 (``+447700900123``)                                      |
| address_line1  | string | street line with normalized tokens (``12 high st``)            |
| address_line2  | string | second line (flat, building)                                   |
| city           | string | lower case                                                     |
| postcode       | string | upper case, no inner whitespace                                |
| region         | string | county / state                                                 |
| country        | string | ISO 3166-1 alpha-2 (``GB``)                                    |
| national_id    | string | tax / social security / national insurance number: letters and |
|                |        | digits, upper case (``AB123456C``); PII, masked when shown      |
| updated_at     | timestamp | when the source last changed the record (survivorship)      |

Beside them ``customers_std`` keeps ``MATCH_ONLY_ATTRIBUTES``, which matching
reads and nothing publishes:

| attribute          | type   | meaning                                                    |
| ------------------ | ------ | ---------------------------------------------------------- |
| birth_date_written | string | the birth date as written, year, month and day in ISO order |
|                    |        | (``1997-21-25``), also when it is not a date               |
"""

from __future__ import annotations

from pyspark.sql.types import DateType, StringType, StructField, StructType, TimestampType

CANONICAL_ATTRIBUTES: tuple[str, ...] = (
    "given_name",
    "middle_name",
    "family_name",
    "full_name",
    "name_suffix",
    "birth_date",
    "gender",
    "email",
    "phone",
    "address_line1",
    "address_line2",
    "city",
    "postcode",
    "region",
    "country",
    "national_id",
)

# Attributes a mapping may name besides the canonical ones.
AUXILIARY_ATTRIBUTES: tuple[str, ...] = ("updated_at",)

# A birth date standardization could not use (1997-21-25, 1964-11-71) is null in ``birth_date``; as
# written it still agrees with its twin's date a typo or a day-month swap away (``date_as_written``).
MATCH_ONLY_ATTRIBUTES: tuple[str, ...] = ("birth_date_written",)

LINEAGE_COLUMNS: tuple[str, ...] = (
    "record_id",
    "source_system",
    "source_key",
    "run_id",
    "ingested_at",
    "record_hash",
)

_TYPES = {"birth_date": DateType(), "updated_at": TimestampType(), "ingested_at": TimestampType()}

# ``run_id`` in ``customers_std`` is the run that last wrote the record.
CANONICAL_SCHEMA = StructType(
    [StructField(name, _TYPES.get(name, StringType()), nullable=name not in ("record_id", "source_system", "source_key"))
     for name in (*LINEAGE_COLUMNS, *CANONICAL_ATTRIBUTES, *AUXILIARY_ATTRIBUTES)]
)


def record_id(source_system: str, source_key: str) -> str:
    """The id of a source record across all sources: ``<source_system>:<source_key>``."""
    return f"{source_system}:{source_key}"
