"""Checks and repairs of a source's rows at ingest, as functions over DataFrames (no I/O).

Text repairs run on every string value (top level and inside structs, not
``_corrupt_record``, which keeps the raw text for quarantine) before the
row's hash is computed, so a repaired row hashes the same on every read, and
the same as the value read right would:

- Mojibake: a CSV or JSON source declared ISO-8859-1 or windows-1252 whose
  file holds UTF-8 text reads ``José`` as ``JosÃ©``. A value with a UTF-8 lead
  character followed by a continuation character, whose characters taken back
  as the file's bytes are valid UTF-8 as a whole, is replaced by that UTF-8
  reading. Genuine Latin-1 text (``José`` written and declared Latin-1) is
  not valid UTF-8 as bytes and stays as it is. Spark 4.0's ``encode`` accepts
  only ISO-8859-1, US-ASCII, UTF-8/16/32 (unless
  ``spark.sql.legacy.javaCharsets``), and so do its CSV and JSON readers: a
  windows-1252 source is read only with that setting in the config's
  ``spark:`` section. Its 27 characters of bytes 0x80-0x9F (``€``, ``‚``, ...)
  are mapped back to those bytes with ``translate`` before the ISO-8859-1
  ``encode``, which works with or without the setting.
- Control characters: C0 control characters other than tab, line feed and
  carriage return (a NUL byte most often, from fixed-width padding or a C
  string terminator leaking out of an export) are removed. They carry no
  meaning in customer data, so the rest of the value is what the source
  meant; quarantining the row instead would hold back an otherwise good
  record on every read of the same export. A raw control byte in a JSON
  string is invalid JSON: that row is quarantined as ``malformed_row`` by
  the reader already; an escaped one (``\\u0000``) is removed here.

Each repair is counted (rows of the read; per column in a log warning that
names source and column, never the value) from the checked rows, cached by
the same read that lands them.

Null drift: a mapped column emptied upstream would re-land every record as a
new version without any value. ``null_drift_of`` compares the share of filled
values of each mapped column in this read with its share among the live
bronze records.
"""

from __future__ import annotations

import codecs
import logging
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DataType, StringType, StructType

from config.errors import ValidationStopped
from config.pipeline import SourceConfig
from jobs.sources import CORRUPT_COLUMN, any_of, column_named, safe_path

log = logging.getLogger("cdi.ingest")

REPAIRED_ENCODING = "repaired_encoding"
REPAIRED_CONTROL_CHARACTERS = "repaired_control_characters"
SINGLE_BYTE_CHARSETS = ("iso8859-1", "cp1252")  # Python's names, whatever alias the config uses
CONTROL_CHARACTERS = "[\\x00-\\x08\\x0B\\x0C\\x0E-\\x1F]"
UTF8_LEAD_AND_CONTINUATION = "[\\x{C2}-\\x{F4}][\\x{80}-\\x{BF}]"
BEYOND_LATIN1 = "[^\\x{00}-\\x{FF}]"
NULL_DRIFT_MIN_ROWS = 20
NULL_DRIFT_MIN_SHARE = 0.5

FieldPath = tuple[str, ...]


def single_byte_charset(source: SourceConfig) -> str | None:
    """``iso8859-1`` or ``cp1252`` when a CSV/JSON source declares one of them (under any alias), else None."""
    if source.kind not in ("csv", "json"):
        return None
    try:
        name = codecs.lookup(source.encoding).name
    except LookupError:
        return None
    return name if name in SINGLE_BYTE_CHARSETS else None


def _cp1252_high_characters() -> tuple[str, str]:
    """The characters windows-1252 gives bytes 0x80-0x9F, and those bytes as ISO-8859-1 characters."""
    pairs = [(bytes([b]).decode("cp1252", errors="ignore"), chr(b)) for b in range(0x80, 0xA0)]
    return "".join(c for c, _ in pairs if c), "".join(b for c, b in pairs if c)


def as_file_bytes(value: Column, charset: str) -> Column:
    """The value's characters as the bytes the file held, each as one ISO-8859-1 character."""
    if charset == "cp1252":
        return F.translate(value, *_cp1252_high_characters())
    return value


def utf8_reading(value: Column, charset: str) -> Column:
    """The value's bytes read as UTF-8 when it looks like UTF-8 read as ``charset`` and is valid UTF-8; else null.

    Spark 4.0's ``decode`` raises on invalid UTF-8 and ``encode`` on a
    character beyond Latin-1, so the bytes are only encoded under the first
    condition and read with a cast (which does not check), then checked with
    ``is_valid_utf8``.
    """
    latin1 = as_file_bytes(value, charset)
    looks_like_utf8 = latin1.rlike(UTF8_LEAD_AND_CONTINUATION) & ~latin1.rlike(BEYOND_LATIN1)
    text = F.encode(latin1, "ISO-8859-1").cast("string")
    readable = F.is_valid_utf8(text) & ~text.contains("\ufffd")
    return F.when(looks_like_utf8, F.when(readable, text))


def string_paths(schema: StructType, parent: FieldPath = ()) -> list[FieldPath]:
    """Every string field, top level or inside structs, except the corrupt-record column."""
    found: list[FieldPath] = []
    for field in schema.fields:
        path = (*parent, field.name)
        if isinstance(field.dataType, StringType) and path != (CORRUPT_COLUMN,):
            found.append(path)
        elif isinstance(field.dataType, StructType):
            found += string_paths(field.dataType, path)
    return found


def column_at(path: FieldPath) -> Column:
    column = column_named(path[0])
    for name in path[1:]:
        column = column.getField(name)
    return column


def _rebuilt(column: Column, data_type: DataType, path: FieldPath, fixed: dict[FieldPath, Column]) -> Column:
    """``column`` with the repaired leaves of ``fixed`` put in (a null struct stays null)."""
    if path in fixed:
        return fixed[path]
    if isinstance(data_type, StructType) and any(p[: len(path)] == path for p in fixed):
        fields = [
            _rebuilt(column.getField(f.name), f.dataType, (*path, f.name), fixed).alias(f.name)
            for f in data_type.fields
        ]
        return F.when(column.isNull(), F.lit(None)).otherwise(F.struct(*fields))
    return column


@dataclass(frozen=True)
class TextRepairs:
    """The rows with their checks (``checked``), the repaired rows built on them, and the counts to take.

    Persist ``checked`` before the repaired rows' own cache is defined: the
    one read of the source then fills both, and ``totals`` counts from memory,
    exactly, without reading the source again.
    """

    checked: DataFrame
    repaired: DataFrame
    metrics: tuple[Column, ...]
    encoding: str

    def totals(self, source: str) -> dict[str, int]:
        """Rows changed per repair (keyed as ``IngestCounts``' fields); a warning per repair and column, no value."""
        found = self.checked.agg(*self.metrics).first().asDict() if self.metrics else {}
        for metric, rows in sorted(found.items()):
            repair, _, column = metric.partition(":")
            if column and rows and repair == REPAIRED_ENCODING:
                log.warning(
                    "source %s: column %s: %d value(s) were UTF-8 text read as %s (the declared encoding); "
                    "repaired before landing", source, column, rows, self.encoding,
                )
            elif column and rows:
                log.warning("source %s: column %s: removed control characters from %d value(s)", source, column, rows)
        return {repair: found.get(repair, 0) for repair in (REPAIRED_ENCODING, REPAIRED_CONTROL_CHARACTERS)}


@dataclass
class _Leaf:
    """One string field's checks (temporary columns), repaired value and change flags."""

    checks: dict[str, Column]
    value: Column
    changed: dict[str, Column]


def _repair_leaf(path: FieldPath, index: int, charset: str | None) -> _Leaf:
    original = column_at(path)
    checks: dict[str, Column] = {f"_cdi_control_{index}": F.coalesce(original.rlike(CONTROL_CHARACTERS), F.lit(False))}
    changed = {REPAIRED_CONTROL_CHARACTERS: F.col(f"_cdi_control_{index}")}
    value = original
    if charset:
        checks[f"_cdi_utf8_{index}"] = utf8_reading(original, charset)
        value = F.coalesce(F.col(f"_cdi_utf8_{index}"), original)
        changed[REPAIRED_ENCODING] = F.col(f"_cdi_utf8_{index}").isNotNull()
    stripped = F.when(changed[REPAIRED_CONTROL_CHARACTERS], F.regexp_replace(value, CONTROL_CHARACTERS, ""))
    return _Leaf(checks, stripped.otherwise(value), changed)


def _metrics(leaves: dict[FieldPath, _Leaf]) -> list[Column]:
    """Per repair, the rows it changed in any column (``repair``) and in each (``repair:column``)."""
    metrics: list[Column] = []
    for repair in (REPAIRED_ENCODING, REPAIRED_CONTROL_CHARACTERS):
        flags = {".".join(path): leaf.changed[repair] for path, leaf in leaves.items() if repair in leaf.changed}
        if flags:
            metrics.append(F.count_if(any_of(list(flags.values()))).alias(repair))
            metrics += [F.count_if(flag).alias(f"{repair}:{name}") for name, flag in flags.items()]
    return metrics


def repair_text(df: DataFrame, source: SourceConfig) -> TextRepairs:
    """``df`` with mojibake repaired (single-byte sources) and control characters removed, same schema.

    Each check is computed once per value into a temporary column of
    ``checked``, which the repaired rows pick their values by and the counts
    count.
    """
    charset = single_byte_charset(source)
    leaves = {path: _repair_leaf(path, i, charset) for i, path in enumerate(string_paths(df.schema))}
    checked = df.withColumns({name: check for leaf in leaves.values() for name, check in leaf.checks.items()})
    fixed = {path: leaf.value for path, leaf in leaves.items()}
    top_level = [_rebuilt(column_at((f.name,)), f.dataType, (f.name,), fixed).alias(f.name) for f in df.schema.fields]
    return TextRepairs(checked, checked.select(*top_level), tuple(_metrics(leaves)), source.encoding)


def mapped_columns(source: SourceConfig) -> list[str]:
    """The plain source columns (nested ``a.b`` paths included) of the mapping, by their bronze names."""
    return list(dict.fromkeys(safe_path(c) for c in source.mapping.values() if isinstance(c, str)))


def has_path(schema: StructType, path: str) -> bool:
    """Whether a dotted column path resolves in ``schema`` (bronze may predate a newly mapped column)."""
    data_type: DataType = schema
    for name in path.split("."):
        if not isinstance(data_type, StructType) or name not in data_type.fieldNames():
            return False
        data_type = data_type[name].dataType
    return True


def filled_shares(df: DataFrame, columns: list[str]) -> tuple[int, dict[str, float]]:
    """The rows of ``df`` and, per column, the share of them holding a non-null, non-blank value."""
    filled = [F.count_if(F.trim(F.col(c).cast("string")) != "") for c in columns]
    rows, *counts = df.agg(F.count(F.lit(1)), *filled).first()
    return rows, {c: n / rows if rows else 0.0 for c, n in zip(columns, counts)}


def live_rows(bronze: DataFrame, live_versions: DataFrame) -> DataFrame:
    """The bronze rows of the live versions (``source_key``, ``record_hash``), one per key.

    A record that went A -> B -> A holds version A twice; both have the same
    values (the hash covers them all), so either one will do.
    """
    keys = live_versions.select("source_key", "record_hash")
    return bronze.join(keys, ["source_key", "record_hash"], "left_semi").dropDuplicates(["source_key"])


def null_drift_of(source: SourceConfig, read: DataFrame, live: DataFrame) -> dict[str, dict[str, float]]:
    """Mapped columns whose filled share fell below half of what the live records hold.

    Only when the column was filled in at least half of the live records and
    the read holds at least 20 rows: a column that was mostly empty, or a
    handful of rows, says nothing. ``read``: the rows about to land (no
    tombstones); ``live``: the live bronze records (``live_rows``).
    """
    if source.null_drift == "off":
        return {}
    rows, now = filled_shares(read, mapped_columns(source))
    if rows < NULL_DRIFT_MIN_ROWS:
        return {}
    # Drift needs now < before / 2 <= 0.5: a column filled in half the rows read or more cannot drift,
    # and when every column is, bronze is not read at all.
    comparable = [c for c in now if now[c] < NULL_DRIFT_MIN_SHARE and has_path(live.schema, c)]
    if not comparable:
        return {}
    _, before = filled_shares(live, comparable)
    drifted = [c for c in comparable if before[c] >= NULL_DRIFT_MIN_SHARE and now[c] < before[c] / 2]
    return {c: {"before": round(before[c], 4), "now": round(now[c], 4)} for c in drifted}


def check_null_drift(source: SourceConfig, read: DataFrame, live: DataFrame) -> dict[str, dict[str, float]]:
    """Stop (exit 4) on null drift when ``null_drift`` is ``batch``; with ``warn`` log it and return it."""
    drift = null_drift_of(source, read, live)
    if not drift:
        return drift
    shares = ", ".join(
        f"{column!r} filled in {share['now']:.0%} of the rows read, {share['before']:.0%} of the live records"
        for column, share in drift.items()
    )
    if source.null_drift == "batch":
        raise ValidationStopped(
            f"source {source.name!r}: mapped column(s) emptied upstream (null drift): {shares}; nothing of this "
            "source was written. A broken export is the usual cause; if the values really were removed, set "
            "null_drift: warn for this source for one run"
        )
    log.warning("source %s: null drift, landing anyway (null_drift: warn): %s", source.name, shares)
    return drift
