"""Text normalizers shared by every attribute: ``Column -> Column`` functions.

Spark has no Unicode normalization (NFKD) built-in, so accents are folded with
``translate`` over a table built from Python's ``unicodedata`` for Latin-1
Supplement and Latin Extended-A, plus ``regexp_replace`` for the letters that
fold to two ASCII characters (``ß`` -> ``ss``). Letters of other scripts are
kept as they are: dropping them would lose the name.
"""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable, Iterable, Mapping

from pyspark.sql import Column
from pyspark.sql import functions as F

# BOM, zero-width space / joiners, word joiner, and combining marks (already
# decomposed accents such as "e" + U+0301).
_INVISIBLE = r"[\x{200B}-\x{200D}\x{2060}\x{FEFF}\p{M}]"

_TWO_CHAR_FOLDS: dict[str, str] = {
    "[ßẞ]": "ss",
    "[æÆ]": "ae",
    "[œŒ]": "oe",
    "[ĳĲ]": "ij",
    "[þÞ]": "th",
}

# Letters NFKD leaves alone, and typographic apostrophes and dashes.
_EXTRA_SINGLE_FOLDS: dict[str, str] = {
    "ø": "o", "Ø": "O", "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D",
    "ħ": "h", "Ħ": "H", "ı": "i", "ŋ": "n", "Ŋ": "N", "ĸ": "k",
    "’": "'", "‘": "'", "ʼ": "'", "`": "'", "´": "'",
    "‐": "-", "‑": "-", "‒": "-", "–": "-", "—": "-",
}


def _single_char_folds() -> tuple[str, str]:
    """(from, to) strings for ``translate``: each accented Latin letter to its ASCII base."""
    folds = dict(_EXTRA_SINGLE_FOLDS)
    for code in range(0x00C0, 0x0180):
        char = chr(code)
        base = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
        if len(base) == 1 and char not in folds:
            folds[char] = base
    return "".join(folds), "".join(folds.values())


_FOLD_FROM, _FOLD_TO = _single_char_folds()
# Text of ASCII characters that ``translate`` leaves alone (all but the backtick): the invisible characters
# and the two-letter folds are all outside ASCII, so ``fold_accents`` would return it as it is.
_NOTHING_TO_FOLD = "^[^\\x{80}-\\x{10FFFF}" + "".join("\\" + c for c in sorted(set(_FOLD_FROM)) if c.isascii()) + "]*\\z"


def fold_accents(col: Column) -> Column:
    """Remove invisible characters and fold accented Latin letters to ASCII (case kept).

    ASCII text with nothing to fold (``_NOTHING_TO_FOLD``) is found by one regular expression and kept as
    it is, without the six passes and the ``translate`` of ``fold_passes``.
    """
    return F.when(col.rlike(_NOTHING_TO_FOLD), col.cast("string")).otherwise(fold_passes(col))


def fold_passes(col: Column) -> Column:
    """``fold_accents`` pass by pass, whatever the value."""
    folded = F.regexp_replace(col, _INVISIBLE, "")
    for pattern, replacement in _TWO_CHAR_FOLDS.items():
        folded = F.regexp_replace(folded, pattern, replacement)
    return F.translate(folded, _FOLD_FROM, _FOLD_TO)


def let(value: Column, body: Callable[[Column], Column]) -> Column:
    """``body(value)`` with ``value`` written once in the plan.

    Spark has no let-binding: a Column used several times is copied whole into
    the expression, and nested normalizers that reuse their input (a name's
    tokens are read a dozen times) grow the plan exponentially, to minutes of
    optimizer time. A one-element ``transform`` binds the value to a lambda
    variable instead.
    """
    return F.transform(F.array(value), body)[0]


def blank_to_null(col: Column) -> Column:
    """Trimmed text, or NULL when nothing is left.

    ``nullif`` writes its first argument once in the plan (Spark 4 binds it
    with a common-expression ``With``), like ``let`` but in one round trip to
    the JVM instead of about thirty for a lambda.
    """
    return F.nullif(F.trim(col), F.lit(""))


# ASCII letters and digits in words one space apart: text ``tidy_text`` would only lower-case. ``\z``, not
# ``$``, which also matches before a last line break.
_PLAIN_WORDS = r"^[A-Za-z0-9]+(?: [A-Za-z0-9]+)*\z"


def tidy_text(col: Column, keep: str = "'-") -> Column:
    """Fold, lower-case, turn every character but letters, digits and ``keep`` into a space.

    Apostrophes and hyphens that do not sit between two letters or digits
    (quotes, dashes used as separators) become spaces too. Most values are
    already plain words (``_PLAIN_WORDS``): one regular expression finds them,
    and they are only lower-cased, where every pass of ``tidy_passes`` (nine
    regular expressions and a ``translate``) would leave them as they are.
    """
    return F.when(col.rlike(_PLAIN_WORDS), F.lower(col)).otherwise(tidy_passes(col, keep))


def tidy_passes(col: Column, keep: str = "'-") -> Column:
    """``tidy_text`` pass by pass, whatever the value."""
    kept = "".join("\\" + char for char in keep)
    text = F.lower(fold_accents(col))
    text = F.regexp_replace(text, rf"[^\p{{L}}\p{{N}}{kept}]+", " ")
    text = F.regexp_replace(text, r"(?<![\p{L}\p{N}])['-]+|['-]+(?![\p{L}\p{N}])", " ")
    return blank_to_null(F.regexp_replace(text, r"\s+", " "))


def clean_text(col: Column) -> Column:
    """Accent-folded, lower-case words separated by single spaces; blank -> NULL.

    ``'  Zoë  Müller-Łukasz '`` -> ``'zoe muller-lukasz'``.
    """
    return tidy_text(col)


def literal_map(entries: Mapping[str, str]) -> Column:
    """A ``map<string,string>`` literal column (a lookup table).

    Written as one JSON literal that the optimizer folds to a constant map:
    ``create_map`` of one ``lit`` per key and value cost a round trip to the
    JVM each, thousands per source for the vocabularies.
    """
    return F.from_json(F.lit(json.dumps(dict(sorted(entries.items())))), "map<string,string>")


def literal_set(values: Iterable[str]) -> Column:
    """An ``array<string>`` literal column, folded to a constant like ``literal_map``."""
    return F.from_json(F.lit(json.dumps(sorted(values))), "array<string>")


def is_in(col: Column, values: Iterable[str]) -> Column:
    """``col.isin(*values)`` with the values as one literal: NULL when ``col`` is NULL."""
    return F.array_contains(literal_set(values), col)


def lookup(col: Column, entries: Mapping[str, str]) -> Column:
    """The value ``col`` maps to in ``entries``, or NULL."""
    return F.try_element_at(literal_map(entries), col)


GENDER_CODES: dict[str, str] = {
    "m": "m", "male": "m", "man": "m", "boy": "m",
    "f": "f", "female": "f", "woman": "f", "girl": "f",
}

# Values that state no m/f gender: NULL without being reported as an issue.
GENDER_NOT_STATED: frozenset[str] = frozenset(
    {"u", "unknown", "not known", "not stated", "not specified", "prefer not to say",
     "x", "o", "other", "non-binary", "nonbinary", "n a", "na", "none", "null"}
)


def normalize_gender(col: Column) -> Column:
    """``'m'`` / ``'f'`` from m/male/man/f/female/woman/...; anything else NULL."""
    return lookup(clean_text(col), GENDER_CODES)


# Placeholders sources use for "no value": not reported when they fail to parse.
NULL_MARKERS: frozenset[str] = frozenset(
    {"n/a", "na", "n.a.", "null", "none", "nil", "-", "--", "?", "unknown", "not known", "0"}
)


def is_present(col: Column) -> Column:
    """True when ``col`` holds a value: not NULL, not blank and not a placeholder like ``n/a``."""
    text = F.lower(F.trim(F.regexp_replace(col, _INVISIBLE, "")))
    return F.coalesce(text != "", F.lit(False)) & ~is_in(text, NULL_MARKERS)
