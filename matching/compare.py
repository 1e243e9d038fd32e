"""Comparison vectors: per-pair gamma levels computed with recordlinkage inside ``mapInPandas``.

For every comparison ``c`` the output has ``gamma_<c>`` (int): -1 when no
level can be judged (each level's column null on either side), 0 when no
level holds, and ``K_c..1`` for the
first level that holds (``K_c`` = number of levels, the first listed). TF
comparisons also get ``tf_<c>`` (float): the relative frequency of the shared
value when both sides agree exactly, null otherwise. These names are the
contract with the Fellegi-Sunter model.

String similarities and edit distances are custom recordlinkage features
(``JaroSimilarity``, ``EditSimilarity``, ``WithinEdits``) that run rapidfuzz's
C++ kernels over a whole batch of pairs at once, where recordlinkage's
``String`` called jellyfish from a Python loop pair by pair; the results are
jellyfish's, bit for bit. Exact agreement is one too (``ExactAgreement``):
recordlinkage's ``Exact`` values, in numpy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from functools import partial

import jellyfish
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import recordlinkage
from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, IntegerType, StringType, StructField, StructType
from rapidfuzz.distance import DamerauLevenshtein, Jaro, JaroWinkler, Levenshtein
from rapidfuzz.process import cpdist
from recordlinkage.base import BaseCompareFeature

from matching.settings import (
    DATE_ATTRIBUTES,
    WRITTEN_DATE_ATTRIBUTES,
    WRITTEN_FORM_OF,
    Comparison,
    DamerauLevenshteinLevel,
    DateAsWrittenLevel,
    DateDayMonthLevel,
    DateDistanceLevel,
    DateTransposedLevel,
    DateTypoLevel,
    ExactLevel,
    InitialLevel,
    JaroLevel,
    JaroWinklerLevel,
    Level,
    LevenshteinLevel,
    MatchSettings,
    NamesSwappedLevel,
    NumericDistanceLevel,
)

# Day 0 of Arrow's date32 (1970-01-01) as a proleptic Gregorian ordinal (``date.toordinal``).
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
# What pandas infers for a column of dates, of datetimes, or of nothing but nulls.
_BULK_DATES = ("date", "datetime", "empty")

# No name, email, phone or address is longer; a 100 KB value would cost minutes per pair.
MAX_COMPARED_CHARS = 200

# Each string measure twice: rapidfuzz's scorer (C++, the whole batch in one call, over code
# points) and jellyfish's function (what recordlinkage's ``String`` calls pair by pair, over
# grapheme clusters), kept for the few values where the two differ (see ``_TextFeature``).
# Jaro's ``similarity`` is already in [0, 1] and bit for bit jellyfish's (``normalized_similarity``,
# called outside ``cpdist``, is 1 - (1 - s): a last bit off now and then, enough to cross a threshold).
_JARO_MEASURES: dict[str, tuple[Callable[..., float], Callable[[str, str], float]]] = {
    "jaro_winkler": (JaroWinkler.similarity, jellyfish.jaro_winkler_similarity),
    "jaro": (Jaro.similarity, jellyfish.jaro_similarity),
}
_EDIT_DISTANCES: dict[str, tuple[Callable[..., int], Callable[[str, str], int]]] = {
    "levenshtein": (Levenshtein.distance, jellyfish.levenshtein_distance),
    "damerau_levenshtein": (DamerauLevenshtein.distance, jellyfish.damerau_levenshtein_distance),
}


def comparison_levels(settings: MatchSettings) -> dict[str, int]:
    """Comparison name -> K_c, the number of levels (the gamma value of the strongest)."""
    return {c.name: len(c.levels) for c in settings.comparisons}


def tf_comparisons(settings: MatchSettings) -> list[str]:
    """Names of the comparisons that carry a ``tf_<name>`` column."""
    return [c.name for c in settings.tf_comparisons]


def comparison_columns(settings: MatchSettings) -> list[str]:
    """Every attribute the comparisons read, in first-use order."""
    return list(dict.fromkeys(col for c in settings.comparisons for col in c.columns))


def term_frequencies(records: DataFrame, column: str) -> DataFrame:
    """``<column>, tf_<column>``: each value's share of the records where ``column`` is not null."""
    counts = records.filter(F.col(column).isNotNull()).groupBy(column).count()
    total = counts.agg(F.sum("count").alias("__total"))
    return counts.crossJoin(total).select(column, (F.col("count") / F.col("__total")).alias(f"tf_{column}"))


def frequency_frame(spark: SparkSession, column: str, shares: Mapping[str, float]) -> DataFrame:
    """``<column>, tf_<column>`` from frozen shares (a saved model's), values as strings."""
    schema = StructType([StructField(column, StringType(), False), StructField(f"tf_{column}", DoubleType(), False)])
    return spark.createDataFrame(pd.DataFrame({column: list(shares), f"tf_{column}": list(shares.values())}), schema)


def attach_attributes(
    pairs: DataFrame, records: DataFrame, columns: Sequence[str], frequencies: Mapping[str, DataFrame] | None = None
) -> DataFrame:
    """Pairs plus ``<col>_l``, ``<col>_r`` for ``columns`` and ``tf_<col>`` for each column of ``frequencies``.

    ``frequencies`` maps a column to its ``<col>, tf_<col>`` frame (as from
    ``term_frequencies`` or ``frequency_frame``). ``tf_<col>`` is the share of
    the left value when left == right, null otherwise (the only case the model
    uses it); a value the frame lacks, new since the shares were frozen, gets
    the smallest share there is: it is at least as rare as the rarest known
    one. Shares are joined onto the records first, so the (many more) pairs
    are joined twice only.
    """
    frequencies = dict(frequencies or {})
    missing = [c for c in frequencies if c not in columns]
    if missing:
        raise ValueError(f"term frequency columns {missing} must also be in columns")
    left = records.select("record_id", *columns)
    for column, frame in frequencies.items():
        shares = frame.select(F.col(column).cast("string").alias("__tf_value"), f"tf_{column}")
        rarest = frame.agg(F.min(f"tf_{column}").alias(f"__rarest_{column}"))
        left = (
            left.join(shares, F.col(column).cast("string") == F.col("__tf_value"), "left")
            .drop("__tf_value")
            .crossJoin(F.broadcast(rarest))
        )
    left = left.select(
        F.col("record_id").alias("record_id_l"),
        *[F.col(c).alias(f"{c}_l") for c in columns],
        *[F.coalesce(f"tf_{c}", f"__rarest_{c}").alias(f"__tf_{c}") for c in frequencies],
    )
    right = records.select(F.col("record_id").alias("record_id_r"), *[F.col(c).alias(f"{c}_r") for c in columns])
    attached = pairs.join(left, "record_id_l").join(right, "record_id_r")
    return attached.select(
        *pairs.columns,
        *[f"{c}_{side}" for side in ("l", "r") for c in columns],
        *[F.when(F.col(f"{c}_l") == F.col(f"{c}_r"), F.col(f"__tf_{c}")).alias(f"tf_{c}") for c in frequencies],
    )


def tf_columns(settings: MatchSettings) -> list[str]:
    """The attributes whose term frequencies the settings' comparisons use."""
    return list(dict.fromkeys(c.column for c in settings.tf_comparisons))


def attach_for_settings(
    pairs: DataFrame, records: DataFrame, settings: MatchSettings, frequencies: Mapping[str, Mapping[str, float]]
) -> DataFrame:
    """``attach_attributes`` with the columns the settings' comparisons need and frozen term frequencies.

    ``frequencies`` must hold every column of ``tf_columns(settings)``.
    """
    lacking = [c for c in tf_columns(settings) if c not in frequencies]
    if lacking:
        raise ValueError(f"no term frequencies for {lacking}")
    spark = records.sparkSession
    frames = {c: frequency_frame(spark, c, frequencies[c]) for c in tf_columns(settings)}
    return attach_attributes(pairs, records, comparison_columns(settings), frames)


def comparison_schema(settings: MatchSettings, with_blocking_rule: bool = True) -> StructType:
    """The explicit output schema of ``compare_pairs``."""
    fields = [StructField("record_id_l", StringType(), False), StructField("record_id_r", StringType(), False)]
    if with_blocking_rule:
        fields.append(StructField("blocking_rule", StringType(), True))
    fields += [StructField(f"gamma_{c.name}", IntegerType(), False) for c in settings.comparisons]
    fields += [StructField(f"tf_{c.name}", DoubleType(), True) for c in settings.tf_comparisons]
    return StructType(fields)


def compare_pairs(attached: DataFrame, settings: MatchSettings) -> DataFrame:
    """Comparison vectors for attached pairs (see ``attach_for_settings``); ``blocking_rule`` kept if present."""
    with_rule = "blocking_rule" in attached.columns
    schema = comparison_schema(settings, with_rule)
    comparisons = list(settings.comparisons)
    keep = ["record_id_l", "record_id_r", *(["blocking_rule"] if with_rule else [])]

    def score(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        for batch in batches:
            yield score_batch(batch, comparisons, keep)

    return attached.mapInPandas(score, schema)


def side_frame(batch: pd.DataFrame, comparisons: Sequence[Comparison], suffix: str = "") -> pd.DataFrame:
    """One side's attributes (columns ``<col><suffix>``), indexed 0..n-1, plus the derived columns levels read.

    Dates become day numbers (``<col>``, also as ``<col>__days``) plus
    ``<col>__year``, ``__month``, ``__day``: any date from year 1 to 9999
    fits, where ``datetime64[ns]`` (all ``Compare.date`` accepts) holds only
    1677-2262. Dates as written get the same three parts: the usable date's
    where there is one, else the text's, a month or day out of range included
    (the column itself then only says whether there is either).
    ``numeric_distance`` columns get ``<col>__number``. Every compared column gets ``<col>__absent``,
    whether the value is missing, found once here rather than by every feature and level that reads it
    (checking a column of text for missing values costs as much as comparing it exactly).
    """
    numeric = {c.level_column(lv) for c in comparisons for lv in c.levels if isinstance(lv, NumericDistanceLevel)}
    # Columns are gathered first and framed once: inserting them one by one into a DataFrame cost
    # a few milliseconds per batch, as much as comparing a thousand pairs.
    columns: dict[str, object] = {}
    for column in dict.fromkeys(col for c in comparisons for col in c.columns):
        values = batch[f"{column}{suffix}"].reset_index(drop=True)
        if column in DATE_ATTRIBUTES:
            parts = date_parts(values)
            columns[column], absent = parts["days"], np.isnan(parts["days"])
            for part, numbers in parts.items():
                columns[f"{column}__{part}"] = numbers
        elif column in WRITTEN_DATE_ATTRIBUTES:
            parts = written_date_parts(values)
            date_column = WRITTEN_FORM_OF[column]
            if date_column in DATE_ATTRIBUTES and f"{date_column}{suffix}" in batch:
                # A usable date is compared as itself (3 Apr 1990, or 31/12/1990 from a month-first source).
                usable = (
                    {part: columns[f"{date_column}__{part}"] for part in parts}
                    if f"{date_column}__year" in columns
                    else date_parts(batch[f"{date_column}{suffix}"].reset_index(drop=True))
                )
                parts = {
                    part: np.where(np.isnan(usable["year"]), numbers, usable[part]) for part, numbers in parts.items()
                }
            absent = np.isnan(parts["year"])
            columns[column] = pd.Series(np.where(absent, None, "written"), dtype=object)
            for part, numbers in parts.items():
                columns[f"{column}__{part}"] = numbers
        else:
            absent = pd.isna(values.to_numpy(dtype=object))
            columns[column] = _bounded_texts(values, absent)
        columns[f"{column}__absent"] = absent
        if column in numeric:
            columns[f"{column}__number"] = pd.to_numeric(values, errors="coerce")
    return pd.DataFrame(columns, index=pd.RangeIndex(len(batch)))


def _bounded_texts(values: pd.Series, absent: np.ndarray) -> pd.Series:
    """``_bounded_text`` of every present value (``absent``: which are missing); a column of strings none
    too long comes back as it is (checked in bulk, as mapping every value costs more)."""
    items = values.to_numpy(dtype=object)
    if pd.api.types.infer_dtype(items, skipna=True) == "string":
        if max(map(len, items[~absent]), default=0) <= MAX_COMPARED_CHARS:
            return values
    return values.map(_bounded_text, na_action="ignore")


def _bounded_text(value: object) -> str:
    """A present value as text, cut to ``MAX_COMPARED_CHARS``: a string similarity costs length squared.

    A number where text was expected is compared as its text.
    """
    return (value if isinstance(value, str) else str(value))[:MAX_COMPARED_CHARS]


def _date_tuple(value: object) -> tuple[int, int, int] | None:
    """(year, month, day) of a date, datetime or ISO text; None when it is not one (pandas' NaT is a datetime)."""
    if value is pd.NaT:
        return None
    if isinstance(value, np.datetime64) and not np.isnat(value):
        value = value.astype("datetime64[D]").astype(object)
    if isinstance(value, (date, datetime)):
        return value.year, value.month, value.day
    if isinstance(value, str):
        try:
            parsed = date.fromisoformat(value.strip()[:10])
        except ValueError:
            return None
        return parsed.year, parsed.month, parsed.day
    return None


def date_parts(values: pd.Series) -> dict[str, np.ndarray]:
    """Float arrays ``days`` (proleptic Gregorian ordinal), ``year``, ``month``, ``day``; NaN where no date.

    Works for every year from 1 to 9999: no nanosecond timestamps involved.
    Dates and datetimes alone (Spark's dates arrive as ``datetime.date``) are
    converted in bulk through Arrow's ``date32``; other values (ISO text, or
    numbers, which Arrow would take for days since 1970) one by one.
    """
    if pd.api.types.infer_dtype(values, skipna=True) not in _BULK_DATES:
        return _date_parts_one_by_one(values)
    dates = pa.array(values.to_numpy(dtype=object), type=pa.date32(), from_pandas=True)
    present = dates.is_valid().to_numpy(zero_copy_only=False)
    days = dates.fill_null(0).to_numpy(zero_copy_only=False).astype("datetime64[D]")
    months = days.astype("datetime64[M]")
    parts = {
        "days": days.astype(np.int64) + _EPOCH_ORDINAL,
        "year": days.astype("datetime64[Y]").astype(np.int64) + 1970,
        "month": months.astype(np.int64) % 12 + 1,
        "day": (days - months).astype(np.int64) + 1,
    }
    return {name: np.where(present, numbers.astype(float), np.nan) for name, numbers in parts.items()}


# A date as written (``birth_date_written``): four, two and two ASCII digits.
_WRITTEN_DATE = r"^(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})$"


def written_date_parts(values: pd.Series) -> dict[str, np.ndarray]:
    """Float arrays ``year``, ``month``, ``day`` of dates as written (``YYYY-MM-DD`` text, ``1997-21-25``
    included); NaN where a value is missing or not written so.

    Arrow's regular expressions run over the whole batch in C++: pandas' ``str.extract`` took 2.0 s a
    million values, this 0.16 s. A value that is not text (never so from Spark) is compared as its text.
    """
    items = values.to_numpy(dtype=object)
    try:
        texts = pa.array(items, type=pa.string(), from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        texts = pa.array([None if pd.isna(v) else str(v) for v in items], type=pa.string())
    parts = pc.extract_regex(texts, _WRITTEN_DATE).flatten()  # flatten: a value that does not match is null
    return {
        name: pc.cast(part, pa.float64()).to_numpy(zero_copy_only=False)
        for name, part in zip(("year", "month", "day"), parts)
    }


def _date_parts_one_by_one(values: pd.Series) -> dict[str, np.ndarray]:
    tuples = [_date_tuple(value) for value in values]
    year = np.array([t[0] if t else np.nan for t in tuples], dtype=float)
    month = np.array([t[1] if t else np.nan for t in tuples], dtype=float)
    day = np.array([t[2] if t else np.nan for t in tuples], dtype=float)
    days = np.array([date(*t).toordinal() if t else np.nan for t in tuples], dtype=float)
    return {"days": days, "year": year, "month": month, "day": day}


def _same_or_transposed(
    year_l: pd.Series, month_l: pd.Series, day_l: pd.Series, year_r: pd.Series, month_r: pd.Series, day_r: pd.Series
) -> np.ndarray:
    """1.0 where two dates are equal, or equal with day and month swapped; NaN where either is missing."""
    yl, ml, dl = (s.to_numpy(dtype=float) for s in (year_l, month_l, day_l))
    yr, mr, dr = (s.to_numpy(dtype=float) for s in (year_r, month_r, day_r))
    same = (yl == yr) & (((ml == mr) & (dl == dr)) | ((ml == dr) & (dl == mr)))
    missing = np.isnan(yl) | np.isnan(yr)
    return np.where(missing, np.nan, same.astype(float))


# Positions of neighbouring digits of one part in YYYYMMDD: a swap within a part is one typo.
_NEIGHBOURS_WITHIN_A_PART = ((0, 1), (1, 2), (2, 3), (4, 5), (6, 7))


def _digits(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    """The eight digits of YYYYMMDD per date, as a (n, 8) array (any year 1 to 9999 has four)."""
    y, m, d = (np.nan_to_num(part).astype(np.int64) for part in (year, month, day))
    return np.stack([y // 1000 % 10, y // 100 % 10, y // 10 % 10, y % 10, m // 10, m % 10, d // 10, d % 10], axis=1)


def _date_typo(
    year_l: pd.Series, month_l: pd.Series, day_l: pd.Series, year_r: pd.Series, month_r: pd.Series, day_r: pd.Series
) -> np.ndarray:
    """1.0 where two dates as written differ in one digit, or in two neighbouring digits of one part
    swapped; 0.0 where they are equal or differ more; NaN where either is missing."""
    left = _digits(*(s.to_numpy(dtype=float) for s in (year_l, month_l, day_l)))
    right = _digits(*(s.to_numpy(dtype=float) for s in (year_r, month_r, day_r)))
    differ = left != right
    count = differ.sum(axis=1)
    swapped = np.zeros(len(count), dtype=bool)
    for i, j in _NEIGHBOURS_WITHIN_A_PART:
        swapped |= differ[:, i] & differ[:, j] & (left[:, i] == right[:, j]) & (left[:, j] == right[:, i])
    typo = (count == 1) | ((count == 2) & swapped)
    missing = year_l.isna().to_numpy() | year_r.isna().to_numpy()
    return np.where(missing, np.nan, typo.astype(float))


def _written_alike(
    year_l: pd.Series, month_l: pd.Series, day_l: pd.Series, year_r: pd.Series, month_r: pd.Series, day_r: pd.Series
) -> np.ndarray:
    """1.0 where two dates as written are equal, a typo apart (``_date_typo``), or of one year with day and
    month swapped; NaN where either is missing."""
    typo = _date_typo(year_l, month_l, day_l, year_r, month_r, day_r)
    alike = _same_or_transposed(year_l, month_l, day_l, year_r, month_r, day_r)
    return np.fmax(typo, alike)


def _same_day_month(
    year_l: pd.Series, month_l: pd.Series, day_l: pd.Series, year_r: pd.Series, month_r: pd.Series, day_r: pd.Series
) -> np.ndarray:
    """1.0 where two dates have the same day and month (any years); NaN where either is missing."""
    same = (month_l.to_numpy(dtype=float) == month_r.to_numpy(dtype=float)) & (
        day_l.to_numpy(dtype=float) == day_r.to_numpy(dtype=float)
    )
    missing = year_l.isna().to_numpy() | year_r.isna().to_numpy()
    return np.where(missing, np.nan, same.astype(float))


def _graphemes_are_code_points(texts: np.ndarray) -> np.ndarray:
    """Element-wise: whether every grapheme cluster of the text (as jellyfish splits them) is one code point.

    jellyfish does not expose its segmentation, but its Levenshtein distance
    to "" counts the clusters: that call decides for the texts not settled
    in bulk. ASCII without CR is settled (CR LF is ASCII's only
    multi-code-point cluster).
    """
    settled = np.fromiter(map(str.isascii, texts), dtype=bool, count=len(texts))
    if "\r" in "".join(texts):
        settled &= np.fromiter(("\r" not in text for text in texts), dtype=bool, count=len(texts))
    unsettled = np.flatnonzero(~settled)
    settled[unsettled] = [jellyfish.levenshtein_distance(text, "") == len(text) for text in texts[unsettled]]
    return settled


def _sides_and_absent(columns: tuple[pd.Series, ...]) -> tuple[pd.Series, pd.Series, np.ndarray]:
    """A feature's two sides and where either is missing, from ``(left, right)`` or, registered with
    ``side_frame``'s masks (``_add_masked``), from ``(left, left__absent, right, right__absent)``."""
    if len(columns) == 4:
        left, left_absent, right, right_absent = columns
        return left, right, left_absent.to_numpy(dtype=bool) | right_absent.to_numpy(dtype=bool)
    left, right = columns
    return left, right, left.isna().to_numpy() | right.isna().to_numpy()


def _lengths(texts: np.ndarray) -> np.ndarray:
    return np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))


class _TextFeature(BaseCompareFeature):
    """A recordlinkage feature over two aligned text columns: NaN where either side is missing.

    jellyfish (recordlinkage's string backend, whose results these features
    keep) compares grapheme clusters: "e" + U+0301 is one character to it, two
    to rapidfuzz. Pairs whose texts are one code point per cluster (nearly
    all) go through ``_batch``, rapidfuzz over the whole batch; the rest
    through ``_pair``, jellyfish one pair at a time, so every result is
    jellyfish's.
    """

    def _compute_vectorized(self, *columns: pd.Series) -> np.ndarray:
        s_left, s_right, absent = _sides_and_absent(columns)
        left, right = s_left.to_numpy(dtype=object), s_right.to_numpy(dtype=object)
        result = np.full(len(left), np.nan)
        present = np.flatnonzero(~absent)
        left, right = left[present], right[present]
        plain = _graphemes_are_code_points(left) & _graphemes_are_code_points(right)
        if plain.any():
            result[present[plain]] = self._batch(left[plain], right[plain])
        for i in np.flatnonzero(~plain):
            result[present[i]] = self._pair(left[i], right[i])
        return result

    def _batch(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """Element-wise results for texts of one code point per grapheme cluster."""
        raise NotImplementedError

    def _pair(self, left: str, right: str) -> float:
        """The result for one pair where a side has a multi-code-point cluster (so is not empty)."""
        raise NotImplementedError


class JaroSimilarity(_TextFeature):
    """Jaro or Jaro-Winkler similarity (``method`` "jaro" / "jaro_winkler"), as recordlinkage's ``String``.

    Jaro-Winkler as in jellyfish: prefix weight 0.1, up to 4 prefix
    characters, boost only above 0.7. 0.0 when a side is empty, even both
    (rapidfuzz would give two empty strings 1.0).
    """

    name = "jaro_similarity"
    description = "Jaro or Jaro-Winkler similarity of string attributes of record pairs."

    def __init__(
        self, left_on: str | list[str], right_on: str | list[str], method: str, label: str | None = None
    ) -> None:
        super().__init__(left_on, right_on, label=label)
        self.scorer, self.reference = _JARO_MEASURES[method]

    def _batch(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        similarity = cpdist(left, right, scorer=self.scorer, dtype=np.float64, workers=1)
        return np.where((left == "") | (right == ""), 0.0, similarity)

    def _pair(self, left: str, right: str) -> float:
        return self.reference(left, right)


class EditSimilarity(_TextFeature):
    """recordlinkage's normalized (Damerau-)Levenshtein: 1 - distance / longer length in code points.

    Two empty strings give NaN (0 / 0), as in recordlinkage.
    """

    name = "edit_similarity"
    description = "Normalized edit-distance similarity of string attributes of record pairs."

    def __init__(
        self, left_on: str | list[str], right_on: str | list[str], method: str, label: str | None = None
    ) -> None:
        super().__init__(left_on, right_on, label=label)
        self.distance, self.reference = _EDIT_DISTANCES[method]

    def _batch(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        distance = cpdist(left, right, scorer=self.distance, dtype=np.int64, workers=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            return 1 - distance / np.maximum(_lengths(left), _lengths(right))

    def _pair(self, left: str, right: str) -> float:
        return 1 - self.reference(left, right) / max(len(left), len(right))


class WithinEdits(_TextFeature):
    """1.0 where the (Damerau-)Levenshtein distance is at most ``max_distance``, else 0.0."""

    name = "within_edits"
    description = "Whether string attributes of record pairs are within a number of edits."

    def __init__(
        self, left_on: str | list[str], right_on: str | list[str], method: str, max_distance: int,
        label: str | None = None,
    ) -> None:
        super().__init__(left_on, right_on, label=label)
        self.distance, self.reference = _EDIT_DISTANCES[method]
        self.max_distance = max_distance

    def _batch(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        # With score_cutoff the kernel stops at max_distance + 1: only "within or not" is read.
        distance = cpdist(
            left, right, scorer=self.distance, score_cutoff=self.max_distance, dtype=np.int64, workers=1
        )
        return (distance <= self.max_distance).astype(float)

    def _pair(self, left: str, right: str) -> float:
        return float(self.reference(left, right) <= self.max_distance)


def _same_initial(left: pd.Series, right: pd.Series) -> np.ndarray:
    """1.0 where both values are present, not empty, and start with the same character."""
    first_left = left.astype(object).str[:1]
    first_right = right.astype(object).str[:1]
    return (first_left.notna() & (first_left != "") & (first_left == first_right)).to_numpy(dtype=float)


def _swapped(left: pd.Series, left_other: pd.Series, right: pd.Series, right_other: pd.Series) -> np.ndarray:
    """1.0 where ``left == right_other`` and ``left_other == right``, all four present."""
    present = (left.notna() & left_other.notna() & right.notna() & right_other.notna()).to_numpy()
    crossed = (left.to_numpy() == right_other.to_numpy()) & (left_other.to_numpy() == right.to_numpy())
    return (present & crossed).astype(float)


def _swapped_similarity(left: pd.Series, left_other: pd.Series, right: pd.Series, right_other: pd.Series) -> np.ndarray:
    """The lower Jaro-Winkler similarity of the two crossings (``left`` / ``right_other``, ``left_other`` /
    ``right``), as ``JaroSimilarity`` computes it; 0.0 unless all four are present."""
    jaro_winkler = JaroSimilarity("left", "right", "jaro_winkler")
    crossed = np.fmin(
        jaro_winkler._compute_vectorized(left, right_other), jaro_winkler._compute_vectorized(left_other, right)
    )
    present = (left.notna() & left_other.notna() & right.notna() & right_other.notna()).to_numpy()
    return np.where(present, np.nan_to_num(crossed, nan=0.0), 0.0)


class ExactAgreement(BaseCompareFeature):
    """1.0 where two values are equal, 0.0 where not, NaN where either is missing: recordlinkage's ``Exact``
    with ``missing_value=np.nan``, its values compared by pandas the same way, without its masked
    assignments into a Series (half the cost of the comparison vectors' exact levels)."""

    name = "exact_agreement"
    description = "Whether attributes of record pairs are equal."

    def _compute_vectorized(self, *columns: pd.Series) -> np.ndarray:
        s_left, s_right, missing = _sides_and_absent(columns)
        equal = (s_left == s_right).to_numpy(dtype=bool)
        return np.where(missing, np.nan, equal.astype(float))


class WithinDistance(BaseCompareFeature):
    """1.0 where ``|right - left| <= offset``, else 0.0, a missing side included: recordlinkage's ``Numeric``
    with ``method="step"`` (the same arithmetic), without the two ``pandas.eval`` calls that cost it
    a few milliseconds per batch whatever the batch's size."""

    name = "within_distance"
    description = "Whether numeric attributes of record pairs are within a distance."

    def __init__(self, left_on: str, right_on: str, offset: float, label: str | None = None) -> None:
        super().__init__(left_on, right_on, label=label)
        self.offset = offset

    def _compute_vectorized(self, s_left: pd.Series, s_right: pd.Series) -> np.ndarray:
        with np.errstate(invalid="ignore", over="ignore"):  # NaN for a missing side; int64 wraps, as in eval
            distance = s_right.to_numpy() - s_left.to_numpy()
            return (np.abs(distance) <= self.offset).astype(float)


def _add_custom(compare: recordlinkage.Compare, feature: type[BaseCompareFeature], *args: object, label: str) -> None:
    """Register a custom feature the way ``compare.exact(..., label=label)`` registers a built-in one."""
    compare.add(feature(*args, label=label))


def _add_masked(
    compare: recordlinkage.Compare, feature: type[BaseCompareFeature], column: str, *args: object, label: str
) -> None:
    """Register a feature of ``column`` that reads whether values are missing from ``side_frame``'s
    ``<column>__absent`` rather than checking every value again."""
    on = [column, f"{column}__absent"]
    compare.add(feature(on, on, *args, label=label))


def _add_feature(compare: recordlinkage.Compare, column: str, level: Level, added: set[str]) -> tuple[str, float]:
    """Register the recordlinkage feature ``level`` reads (once per label); return its label and cut-off.

    A level holds where its feature reaches the cut-off. String similarities
    are registered without a threshold, so levels that differ only in
    threshold (jaro_winkler 0.92 / 0.80) share one computation.
    """
    col = column
    register: Callable[..., object]
    cutoff = 1.0
    if isinstance(level, ExactLevel):
        label = f"{col}__exact"
        register = partial(_add_masked, compare, ExactAgreement, col)
    elif isinstance(level, (JaroWinklerLevel, JaroLevel)):
        label, cutoff = f"{col}__{level.kind}", level.threshold
        register = partial(_add_masked, compare, JaroSimilarity, col, level.kind)
    elif isinstance(level, (LevenshteinLevel, DamerauLevenshteinLevel)) and level.threshold is not None:
        label, cutoff = f"{col}__{level.kind}", level.threshold
        register = partial(_add_masked, compare, EditSimilarity, col, level.kind)
    elif isinstance(level, (LevenshteinLevel, DamerauLevenshteinLevel)):
        label = f"{col}__{level.kind}_within_{level.max_distance}"
        register = partial(_add_masked, compare, WithinEdits, col, level.kind, level.max_distance)
    elif isinstance(level, DateTransposedLevel):
        parts = [f"{col}__year", f"{col}__month", f"{col}__day"]
        label = f"{col}__same_or_transposed"
        register = partial(compare.compare_vectorized, _same_or_transposed, parts, parts)
    elif isinstance(level, DateTypoLevel):
        parts = [f"{col}__year", f"{col}__month", f"{col}__day"]
        label = f"{col}__typo"
        register = partial(compare.compare_vectorized, _date_typo, parts, parts)
    elif isinstance(level, DateAsWrittenLevel):
        parts = [f"{col}__year", f"{col}__month", f"{col}__day"]
        label = f"{col}__alike"
        register = partial(compare.compare_vectorized, _written_alike, parts, parts)
    elif isinstance(level, DateDayMonthLevel):
        parts = [f"{col}__year", f"{col}__month", f"{col}__day"]
        label = f"{col}__same_day_month"
        register = partial(compare.compare_vectorized, _same_day_month, parts, parts)
    elif isinstance(level, (DateDistanceLevel, NumericDistanceLevel)):
        derived = f"{col}__days" if isinstance(level, DateDistanceLevel) else f"{col}__number"
        offset = level.max_days if isinstance(level, DateDistanceLevel) else level.max_abs
        label = f"{derived}_within_{offset}"
        register = partial(_add_custom, compare, WithinDistance, derived, derived, offset)
    elif isinstance(level, InitialLevel):
        label = f"{col}__initial"
        register = partial(compare.compare_vectorized, _same_initial, col, col)
    elif isinstance(level, NamesSwappedLevel) and level.threshold is not None:
        pair = [col, level.other]
        label, cutoff = f"{col}__swapped_jaro_winkler_with_{level.other}", level.threshold
        register = partial(compare.compare_vectorized, _swapped_similarity, pair, pair)
    elif isinstance(level, NamesSwappedLevel):
        pair = [col, level.other]
        label = f"{col}__swapped_with_{level.other}"
        register = partial(compare.compare_vectorized, _swapped, pair, pair)
    else:
        raise TypeError(f"no recordlinkage feature for level {level!r}")
    if label not in added:
        register(label=label)
        added.add(label)
    return label, cutoff


def score_batch(batch: pd.DataFrame, comparisons: Sequence[Comparison], keep: Sequence[str]) -> pd.DataFrame:
    """Gamma (and TF) columns for one pandas batch of attached pairs, row i compared with row i."""
    shares = {
        c.column: batch[f"tf_{c.column}"].to_numpy(dtype=float) for c in comparisons if c.term_frequency
    }
    return score_sides(
        batch[list(keep)].reset_index(drop=True),
        side_frame(batch, comparisons, "_l"),
        side_frame(batch, comparisons, "_r"),
        shares,
        comparisons,
    )


def score_sides(
    out: pd.DataFrame,
    left: pd.DataFrame,
    right: pd.DataFrame,
    shares: Mapping[str, np.ndarray],
    comparisons: Sequence[Comparison],
) -> pd.DataFrame:
    """``out`` plus the gamma (and TF) columns of pairs whose sides are ``side_frame`` rows, row i with row i.

    ``shares`` holds each term-frequency column's ``tf_<col>`` values, one per pair.
    """
    positions = np.arange(len(left))
    index = pd.MultiIndex.from_arrays([positions, positions])

    compare = recordlinkage.Compare()
    added: set[str] = set()
    cutoffs = {
        (comparison.name, number): _add_feature(compare, comparison.level_column(level), level, added)
        for comparison in comparisons
        for number, level in enumerate(comparison.levels)
    }
    features = compare.compute(index, left, right) if len(left) else pd.DataFrame(columns=sorted(added))

    absent: dict[str, np.ndarray] = {}  # per column, found once however many levels read it

    def absent_in(column: str) -> np.ndarray:
        if column not in absent:
            absent[column] = left[f"{column}__absent"].to_numpy() | right[f"{column}__absent"].to_numpy()
        return absent[column]

    for comparison in comparisons:
        missing = np.ones(len(left), dtype=bool)
        for level in comparison.levels:
            missing &= np.logical_or.reduce([absent_in(column) for column in comparison.level_columns(level)])
        gamma = np.where(missing, -1, 0).astype(np.int32)
        decided = missing.copy()
        strongest = len(comparison.levels)
        for number in range(strongest):
            label, cutoff = cutoffs[comparison.name, number]
            holds = np.nan_to_num(features[label].to_numpy(dtype=float), nan=0.0) >= cutoff
            gamma[holds & ~decided] = strongest - number
            decided |= holds
        out[f"gamma_{comparison.name}"] = gamma
        if comparison.term_frequency:
            out[f"tf_{comparison.name}"] = shares[comparison.column]
    return out
