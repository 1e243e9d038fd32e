"""National identifier normalizer: tax id, social security or national insurance number.

One generic rule for every country, no checksums: the written form is reduced
to its letters and digits, upper case (``"ab 12-34-56 c"`` -> ``"AB123456C"``),
so the same number written with spaces, dashes or dots in two departments is
one value. Digits of other scripts and full-width or styled letters and digits
(``"１２３"``, ``"٣٤٥"``, ``"𝟏"``) are read as their ASCII forms; letters of other
scripts are kept. Everything else (punctuation, symbols, emoji, control and
invisible characters) is dropped.

A value that is obviously unusable is NULL, and standardization records the
reason in ``std_issues`` (the attribute, never the value):

- fewer than ``MIN_LENGTH`` or more than ``MAX_LENGTH`` characters once cleaned
  (no national number is that short or that long);
- no digit at all (``UNKNOWN``, ``REFUSED``: words, not numbers);
- one character repeated (``000000000``, ``999999999``, ``XXXX``), or a straight
  run of digits (``123456789``, ``987654321``): placeholders, not numbers.

The value is PII: it never goes into logs, validation results or reports, and
whatever shows it to a person masks it (``schemas.privacy.mask_national_id``).
"""

from __future__ import annotations

import string
import unicodedata

from pyspark.sql import Column
from pyspark.sql import functions as F

from matching.normalize import fold_accents, let

MIN_LENGTH = 4
MAX_LENGTH = 32
ASCENDING_DIGITS = "0123456789"
DESCENDING_DIGITS = "9876543210"
_ALNUM = frozenset(string.ascii_letters + string.digits)
# Planes 2 and up hold ideographs only: no digit and nothing whose NFKC form is ASCII.
_LAST_PLANE_WITH_DIGITS = 0x20000


def _ascii_forms() -> tuple[str, str]:
    """(from, to) strings for ``translate``: each non-ASCII decimal digit, and each character whose
    compatibility form (NFKC) is one ASCII letter or digit, to that ASCII character.

    Covers Arabic-Indic, Devanagari, ... digits, full-width and mathematical
    letters and digits. Built once from Python's ``unicodedata``.
    """
    pairs: dict[str, str] = {}
    for code in range(0x80, _LAST_PLANE_WITH_DIGITS):
        if 0xD800 <= code <= 0xDFFF:
            continue
        char = chr(code)
        digit = unicodedata.decimal(char, None)
        if digit is not None:
            pairs[char] = str(digit)
            continue
        compatible = unicodedata.normalize("NFKC", char)
        if len(compatible) == 1 and compatible in _ALNUM:
            pairs[char] = compatible
    return "".join(pairs), "".join(pairs.values())


_ASCII_FROM, _ASCII_TO = _ascii_forms()


def clean_national_id(col: Column) -> Column:
    """Letters and digits only, upper case, digits and compatibility letters as ASCII; NULL when none is left."""
    text = F.translate(fold_accents(col.cast("string")), _ASCII_FROM, _ASCII_TO)
    cleaned = F.regexp_replace(F.upper(text), r"[^\p{L}\p{Nd}]", "")
    return let(cleaned, lambda value: F.when(value != "", value))


def is_placeholder_id(col: Column) -> Column:
    """True for a cleaned id that is one character repeated or a straight run of digits."""
    repeated = col.rlike(r"^(.)\1*$")
    run = col.rlike(r"^[0-9]+$") & (
        (F.instr(F.lit(ASCENDING_DIGITS), col) > 0) | (F.instr(F.lit(DESCENDING_DIGITS), col) > 0)
    )
    return repeated | run


def normalize_national_id(col: Column) -> Column:
    """The cleaned id (``clean_national_id``); NULL when empty, too short, too long, without a digit
    or a placeholder."""

    def usable(value: Column) -> Column:
        length = F.length(value)
        null = F.lit(None).cast("string")
        return (
            F.when(value.isNull() | (length < MIN_LENGTH) | (length > MAX_LENGTH), null)
            .when(~value.rlike("[0-9]") | is_placeholder_id(value), null)
            .otherwise(value)
        )

    return let(clean_national_id(col), usable)
