"""Address normalizers: street lines, postcode, city, region, country."""

from __future__ import annotations

from collections.abc import Mapping

import phonenumbers
from pyspark.sql import Column
from pyspark.sql import functions as F

from matching.normalize import blank_to_null, clean_text, is_in, literal_map, lookup

# ISO 3166-1 alpha-2 codes (libphonenumber's regions): a two-letter value that
# is one of these is taken as a country code.
ISO2_CODES: frozenset[str] = frozenset(phonenumbers.SUPPORTED_REGIONS)


def replace_tokens(col: Column, tokens: Mapping[str, str]) -> Column:
    """Each space-separated word of ``col`` replaced by its entry in ``tokens`` when it has one."""
    table = literal_map(tokens)
    words = F.transform(F.split(col, " "), lambda word: F.coalesce(F.try_element_at(table, word), word))
    return blank_to_null(F.array_join(words, " "))


def normalize_address_line(col: Column, tokens: Mapping[str, str]) -> Column:
    """Cleaned street line with whole words abbreviated: ``'12 High Street'`` -> ``'12 high st'``."""
    return replace_tokens(clean_text(col), tokens)


def clean_postcode(col: Column) -> Column:
    """Upper case, letters and digits only: ``' sw1a 1aa '`` -> ``'SW1A1AA'``."""
    return blank_to_null(F.upper(F.regexp_replace(col.cast("string"), r"[^A-Za-z0-9]", "")))


def normalize_city(col: Column) -> Column:
    """Cleaned city name (lower case, accents folded)."""
    return clean_text(col)


def normalize_region(col: Column) -> Column:
    """Cleaned county / state name."""
    return clean_text(col)


def normalize_country(col: Column, names_to_iso: Mapping[str, str]) -> Column:
    """ISO2 upper-case code from a name or code: ``'United Kingdom'``, ``'UK'``, ``'gb'`` -> ``'GB'``.

    Names are looked up in ``names_to_iso`` (cleaned lower-case keys); a
    two-letter ISO code passes through; anything else is NULL.
    """
    name = clean_text(col)
    code = F.upper(name)
    return F.coalesce(lookup(name, names_to_iso), F.when(is_in(code, ISO2_CODES), code))
