"""Evidence a steward understands: two records attribute by attribute, in plain words and colours.

Each shown attribute gets a row with what the values say (``status``) and a
badge colour (``tone``) that follows the level that held and the sign of the
comparison's weight:

- ``agree`` (green): the two values are the same, whatever level of which
  comparison held (a postcode that matched at the postcode level of the
  address comparison is the same postcode);
- ``similar`` (light green): a weaker level held and it counts for a match;
- ``weak`` (amber): the values differ and the evidence against is slight
  (less than ``STRONG_BITS``), or the attribute is only part of a comparison
  that did not count strongly against;
- ``disagree`` (red): strong evidence against (``STRONG_BITS`` or more), no
  level held, or a ``DISTINGUISHING`` attribute no comparison reads differs;
- ``missing`` (grey): a value is missing on one side or both.

Every shown attribute that differs gets a row, compared or not (a Jr / Sr
difference in ``name_suffix``, which no comparison reads). ``summary`` turns
the rows into phrases ("same email", "different phone", "birth date missing on
one side"); the numbers (levels, weights) stay on the rows for a "numbers"
view one click away.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from matching.settings import Comparison
from schemas.canonical import CANONICAL_ATTRIBUTES, MATCH_ONLY_ATTRIBUTES
from schemas.privacy import mask_value

SHOWN_ATTRIBUTES: tuple[str, ...] = tuple(a for a in CANONICAL_ATTRIBUTES if a != "full_name")
# One bit doubles (or halves) the odds of a match; evidence against of a bit or more is strong.
STRONG_BITS = 1.0
# Attributes no default comparison reads that still tell relatives apart (a father and his son).
DISTINGUISHING: frozenset[str] = frozenset({"name_suffix"})
NOUNS = {"address_line1": "street address", "address_line2": "address line 2", "national_id": "national id",
         "postcode": "postcode"}
SIMILAR_KINDS = frozenset({"jaro_winkler", "jaro", "levenshtein", "damerau_levenshtein"})


@dataclass(frozen=True)
class AttributeRow:
    attribute: str
    left: Any  # as shown to a person (national_id masked)
    right: Any
    status: str  # same | similar | different | missing
    tone: str  # agree | similar | weak | disagree | missing
    words: str  # "same postcode", "birth date within 366 days", "name suffix differs (jr / sr)"
    comparison: str | None  # the comparison this attribute is read by, if any
    level: str  # the level that held, e.g. "jaro_winkler (threshold 0.92)"; "" when not its decisive row
    weight: float | None  # the comparison's match weight in bits, on the row that shows its outcome


@dataclass(frozen=True)
class Phrase:
    words: str
    tone: str


def noun(attribute: str) -> str:
    return NOUNS.get(attribute, attribute.replace("_", " "))


def level_label(comparison: Comparison, gamma: int) -> str:
    """The level that held, as the settings name it (for the numbers view)."""
    if gamma == -1:
        return "missing on one side"
    if gamma == 0:
        return "no level holds"
    level = comparison.levels[len(comparison.levels) - gamma]
    details = {k: v for k, v in level.model_dump().items() if k not in ("kind", "column")}
    if comparison.level_column(level) != comparison.column:
        details["on"] = comparison.level_column(level)
    bound = ", ".join(f"{k} {v}" for k, v in details.items() if v is not None)
    return f"{level.kind} ({bound})" if bound else level.kind


def _similar_words(comparison: Comparison, gamma: int, attribute: str) -> str:
    """Plain words for a level other than exact agreement that held on differing values."""
    level = comparison.levels[len(comparison.levels) - gamma]
    kind = level.kind
    if kind == "names_swapped":
        return f"{noun(attribute)} and {noun(level.other)} swapped"
    if kind == "date_transposed":
        return f"{noun(attribute)} with day and month swapped"
    if kind == "date_typo":
        return f"{noun(attribute)} one typed digit apart"
    if kind == "date_as_written":
        return f"{noun(attribute)} as written equal, one typed digit apart or with day and month swapped"
    if kind == "date_day_month":
        return f"{noun(attribute)} of the same day and month, another year"
    if kind == "date_distance":
        return f"{noun(attribute)} within {level.max_days} days"
    if kind == "initial":
        return f"{noun(attribute)} of the same initial"
    if kind == "numeric_distance":
        return f"{noun(attribute)} within {level.max_abs:g}"
    return f"similar {noun(attribute)}" if kind in SIMILAR_KINDS else f"{noun(attribute)} close ({kind})"


def _missing_words(attribute: str, left: Any, right: Any) -> str:
    both = left is None and right is None
    return f"{noun(attribute)} missing on {'both sides' if both else 'one side'}"


def weight_tone(weight: float | None) -> str:
    """The colour of a level that held on differing values, by the sign and size of its weight."""
    if weight is None or weight > 0:
        return "similar"
    return "disagree" if weight <= -STRONG_BITS else "weak"


def _scored_row(attribute: str, left: Any, right: Any, comparison: Comparison, gamma: int,
                weight: float | None) -> tuple[str, str, str]:
    """(status, tone, words) of the attribute that shows ``comparison``'s outcome.

    A side without a value was still judged when the comparison got a level (-1 is missing): on the
    attribute's form kept for matching only (a birth date as written where it was not a date).
    """
    if gamma == -1:
        return "missing", "missing", _missing_words(attribute, left, right)
    if left is None or right is None:
        if gamma > 0:
            return "similar", weight_tone(weight), _similar_words(comparison, gamma, attribute)
        if not any(c in MATCH_ONLY_ATTRIBUTES for c in comparison.columns):
            return "missing", "missing", _missing_words(attribute, left, right)
        tone = "weak" if weight is not None and weight > -STRONG_BITS else "disagree"
        return "different", tone, f"different {noun(attribute)} as written"
    if left == right:
        return "same", "agree", f"same {noun(attribute)}"
    if gamma == 0:
        tone = "weak" if weight is not None and weight > -STRONG_BITS else "disagree"
        return "different", tone, f"different {noun(attribute)}"
    return "similar", weight_tone(weight), _similar_words(comparison, gamma, attribute)


def _plain_row(attribute: str, left: Any, right: Any, weight: float | None, read: bool) -> tuple[str, str, str]:
    """(status, tone, words) of an attribute judged by equality: part of a comparison (``read``) or of none."""
    if left is None or right is None:
        return "missing", "missing", _missing_words(attribute, left, right)
    if left == right:
        return "same", "agree", f"same {noun(attribute)}"
    if read:
        strong = weight is not None and weight <= -STRONG_BITS
        return "different", "disagree" if strong else "weak", f"different {noun(attribute)}"
    tone = "disagree" if attribute in DISTINGUISHING else "weak"
    shown = f"{mask_value(attribute, left)} / {mask_value(attribute, right)}"
    return "different", tone, f"{noun(attribute)} differs ({shown})"


def attribute_rows(
    record_l: Mapping[str, Any],
    record_r: Mapping[str, Any],
    levels: Mapping[str, int],
    evidence: Mapping[str, float],
    comparisons: Sequence[Comparison],
) -> list[AttributeRow]:
    """Both records attribute by attribute, with how each comparison came out, in words and colour.

    A comparison's outcome, with its weight and level, is shown on the attribute
    the level that held reads (its own column when no level held). The other
    attributes a comparison reads (``address`` also reading postcode and city)
    are judged by plain equality. Attributes no comparison reads are shown when
    either side has a value. Statuses come from the full values; the values in
    the rows and words are as shown to a person (``national_id`` masked).
    """
    decisive: dict[str, tuple[Comparison, int]] = {}
    part_of: dict[str, Comparison] = {}
    for comparison in comparisons:
        if comparison.name not in levels:
            continue
        gamma = int(levels[comparison.name])
        held = comparison.levels[len(comparison.levels) - gamma] if gamma > 0 else None
        column = comparison.level_column(held) if held is not None else comparison.column
        if column in MATCH_ONLY_ATTRIBUTES:  # shown on the attribute it is a form of
            column = comparison.column
        decisive.setdefault(column, (comparison, gamma))
        for other in comparison.columns:
            part_of.setdefault(other, comparison)
    rows = []
    for attribute in SHOWN_ATTRIBUTES:
        left, right = record_l.get(attribute), record_r.get(attribute)
        shown_l, shown_r = mask_value(attribute, left), mask_value(attribute, right)
        if attribute in decisive:
            comparison, gamma = decisive[attribute]
            weight = evidence.get(comparison.name)
            status, tone, words = _scored_row(attribute, left, right, comparison, gamma, weight)
            rows.append(AttributeRow(attribute, shown_l, shown_r, status, tone, words, comparison.name,
                                     level_label(comparison, gamma), weight))
        elif attribute in part_of:
            comparison = part_of[attribute]
            status, tone, words = _plain_row(attribute, left, right, evidence.get(comparison.name), read=True)
            rows.append(AttributeRow(attribute, shown_l, shown_r, status, tone, words, comparison.name, "", None))
        elif left is not None or right is not None:
            status, tone, words = _plain_row(attribute, left, right, None, read=False)
            rows.append(AttributeRow(attribute, shown_l, shown_r, status, tone, words, None, "", None))
    return rows


def summary(rows: Sequence[AttributeRow]) -> list[Phrase]:
    """The evidence in plain words: each comparison's outcome and each other attribute that differs, in
    attribute order; an attribute neither record has says nothing and is left out."""
    return [Phrase(r.words, r.tone) for r in rows
            if (r.level or r.status == "different") and not (r.left is None and r.right is None)]


def odds_factor(weight: float | None) -> str:
    """A weight in bits as what it does to the odds of a match: ``×8``, ``÷4.5``, ``×1``."""
    if weight is None:
        return ""
    factor = 2.0 ** abs(weight)
    text = f"{factor:,.0f}" if factor >= 100 else f"{factor:.3g}"
    return f"÷{text}" if weight < 0 else f"×{text}"


@dataclass(frozen=True)
class NumberRow:
    comparison: str
    level: str
    weight: float | None
    odds: str  # what the weight does to the odds of a match: "×8", "÷4.5"


def numbers(rows: Sequence[AttributeRow]) -> list[NumberRow]:
    """The numbers behind the words: each comparison's level and weight, on the row that shows its outcome."""
    return [NumberRow(r.comparison or "", r.level, r.weight, odds_factor(r.weight)) for r in rows if r.level]
