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


def parse_date(col: Column, formats: Sequence[str] = (), day_first: bool = True) -> Column:
    """A ``date`` from text in any of :func:`date_formats`; unparseable -> NULL.

    ``formats`` are the source's own formats, tried first.
    """
    return F.to_date(_first_parse(_date_text(col), date_formats(day_first, formats)))


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
    all_formats = (*formats, *TIMESTAMP_FORMATS, *numeric_timestamp_formats(day_first), *date_formats(day_first))
    return _first_parse(text, all_formats)
