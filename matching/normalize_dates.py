"""Date and timestamp parsing that returns NULL instead of raising.

Spark 4 runs in ANSI mode, where ``to_date`` raises on a bad value; every
parse here goes through ``try_to_timestamp``, which returns NULL. Formats are
tried in order and the first that parses wins. Spark's parser is strict:
``31/02/1990`` parses with none of them. ``d`` and ``M`` read one or two digits.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

from pyspark.sql import Column
from pyspark.sql import functions as F

ISO_DATE_FORMATS: tuple[str, ...] = ("yyyy-MM-dd", "yyyyMMdd", "yyyy/MM/dd", "yyyy.MM.dd")
DAY_FIRST_FORMATS: tuple[str, ...] = ("d/M/yyyy", "d-M-yyyy", "d.M.yyyy")
MONTH_FIRST_FORMATS: tuple[str, ...] = ("M/d/yyyy", "M-d-yyyy", "M.d.yyyy")
TEXT_MONTH_FORMATS: tuple[str, ...] = ("d MMM yyyy", "d MMMM yyyy", "MMM d yyyy", "MMMM d yyyy")
TIMESTAMP_FORMATS: tuple[str, ...] = (
    "yyyy-MM-dd'T'HH:mm[:ss][.SSSSSS][XXX]",
    "yyyy-MM-dd HH:mm[:ss][.SSSSSS][XXX]",
    "yyyy/MM/dd HH:mm[:ss]",
)

# The date part of an ISO timestamp: a birth date is the written local date,
# never shifted by a time zone.
_ISO_DATE_PREFIX = r"^(\d{4}-\d{1,2}-\d{1,2})[T ].*$"


def date_formats(day_first: bool, extra: Sequence[str] = ()) -> tuple[str, ...]:
    """Every date format tried, in order: ``extra``, ISO, numeric (order by ``day_first``), text months.

    Both numeric orders are tried, so ``31/12/1990`` parses either way; only
    values valid both ways (``03/04/1990``) depend on ``day_first``.
    """
    numeric = DAY_FIRST_FORMATS + MONTH_FIRST_FORMATS if day_first else MONTH_FIRST_FORMATS + DAY_FIRST_FORMATS
    return (*extra, *ISO_DATE_FORMATS, *numeric, *TEXT_MONTH_FORMATS)


def _date_text(col: Column) -> Column:
    text = F.regexp_replace(F.trim(col.cast("string")), r"[,\s]+", " ")
    return F.regexp_replace(text, _ISO_DATE_PREFIX, "$1")


def _first_parse(text: Column, formats: Sequence[str]) -> Column:
    return F.coalesce(*[F.try_to_timestamp(text, F.lit(fmt)) for fmt in formats])


# Text of the common shapes below is read by Spark's cast, a hand-written parser several times quicker than
# a formatter (and a formatter that fails raises an exception inside). Each shape is a subset of what the
# built-in formats read, and where the cast gives a value it is the one the formats give (the grid in
# tests/matching/test_normalize.py); where it gives none, the formats are tried as before. Numeric dates
# are rewritten year first: the cast reads one- or two-digit months, days and hours.
_YEAR = "(?!0000)[0-9]{4}"
_ISO_DATE = rf"{_YEAR}-[0-9]{{2}}-[0-9]{{2}}"
_ISO_DATE_SHAPE = rf"^{_ISO_DATE}$"
_ISO_TIMESTAMP_SHAPE = rf"^{_ISO_DATE}([T ][0-9]{{2}}:[0-9]{{2}}(:[0-9]{{2}})?(Z|[+-][0-9]{{2}}:[0-9]{{2}})?)?$"  # or a date
_NUMERIC_DATE_SHAPE = rf"^([0-9]{{1,2}})([-/.])([0-9]{{1,2}})\2({_YEAR})$"
_NUMERIC_TIMESTAMP_SHAPE = rf"^([0-9]{{1,2}})([-/.])([0-9]{{1,2}})\2({_YEAR}) ([0-9]{{1,2}}:[0-9]{{2}}(:[0-9]{{2}})?)$"


def _numeric_cast(text: Column, shape: str, day_first: bool, to: str, clock: str = "") -> Column:
    """A numeric date (with ``clock``, a time) of ``shape`` cast as ``to``, read day first or month first
    as ``day_first`` says, then the other way, as the formats are ordered."""
    day_month = F.regexp_replace(text, shape, f"$4-$3-$1{clock}")
    month_day = F.regexp_replace(text, shape, f"$4-$1-$3{clock}")
    first, second = (day_month, month_day) if day_first else (month_day, day_month)
    return F.when(text.rlike(shape), F.coalesce(first.try_cast(to), second.try_cast(to)))


def _fast_date(text: Column, day_first: bool) -> Column:
    """A ``date`` of the common shapes (above) by Spark's cast; NULL for other text or no such date."""
    return F.coalesce(
        F.when(text.rlike(_ISO_DATE_SHAPE), text.try_cast("date")),
        _numeric_cast(text, _NUMERIC_DATE_SHAPE, day_first, "date"),
    )


def _fast_timestamp(text: Column, day_first: bool) -> Column:
    """A ``timestamp`` of the common shapes (above) by Spark's cast; NULL for other text or no such time."""
    return F.coalesce(
        F.when(text.rlike(_ISO_TIMESTAMP_SHAPE), text.try_cast("timestamp")),
        _numeric_cast(text, _NUMERIC_TIMESTAMP_SHAPE, day_first, "timestamp", " $5"),
        _numeric_cast(text, _NUMERIC_DATE_SHAPE, day_first, "timestamp"),
    )


def parse_date(col: Column, formats: Sequence[str] = (), day_first: bool = True) -> Column:
    """A ``date`` from text in any of :func:`date_formats`; unparseable -> NULL.

    ``formats`` are the source's own formats, tried first.
    """
    text = _date_text(col)
    own = [F.to_date(_first_parse(text, formats))] if formats else []
    return F.coalesce(*own, _fast_date(text, day_first), F.to_date(_first_parse(text, date_formats(day_first))))


# Year, month and day as written, whatever their values: year first (separated or eight digits) or last.
_YEAR_FIRST = r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})$"
_EIGHT_DIGITS = r"^(\d{4})(\d{2})(\d{2})$"
_YEAR_LAST = r"^(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})$"


def _iso_ordered(text: Column, pattern: str, year: int, month: int, day: int) -> Column:
    part = partial(F.regexp_extract, text, pattern)
    return F.when(
        text.rlike(pattern),
        F.concat_ws("-", part(year), F.lpad(part(month), 2, "0"), F.lpad(part(day), 2, "0")),
    )


def written_date(col: Column, day_first: bool = True) -> Column:
    """A numeric date as written, year, month and day in ISO order (``YYYY-MM-DD``), whether or not it is
    a date: ``25/21/1997`` -> ``1997-21-25``; NULL when it is not three numbers in one of the numeric
    layouts :func:`date_formats` reads. ``day_first`` orders a year-last date, as it does for a parse.

    ``\\d`` matches ASCII digits only: the result is always ten ASCII characters.
    """
    text = _date_text(col)
    day, month = (1, 2) if day_first else (2, 1)
    return F.coalesce(
        _iso_ordered(text, _YEAR_FIRST, 1, 2, 3),
        _iso_ordered(text, _EIGHT_DIGITS, 1, 2, 3),
        _iso_ordered(text, _YEAR_LAST, 3, month, day),
    )


def numeric_timestamp_formats(day_first: bool) -> tuple[str, ...]:
    """``03/04/2025 10:15[:30]`` and its ``-`` / ``.`` forms, day or month first as ``day_first`` says."""
    dates = DAY_FIRST_FORMATS + MONTH_FIRST_FORMATS if day_first else MONTH_FIRST_FORMATS + DAY_FIRST_FORMATS
    return tuple(f"{fmt} H:mm[:ss]" for fmt in dates)


def parse_timestamp(col: Column, formats: Sequence[str] = (), day_first: bool = True) -> Column:
    """A ``timestamp`` from text; no zone means the session time zone (UTC); a bare date is midnight."""
    text = F.regexp_replace(F.trim(col.cast("string")), r"\s+", " ")
    own = [_first_parse(text, formats)] if formats else []
    built_in = (*TIMESTAMP_FORMATS, *numeric_timestamp_formats(day_first), *date_formats(day_first))
    return F.coalesce(*own, _fast_timestamp(text, day_first), _first_parse(text, built_in))
