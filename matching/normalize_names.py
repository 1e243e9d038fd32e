"""Person-name normalizers: tokens, honorifics, suffixes, splitting and nicknames.

A name is handled as an ``array<string>`` of cleaned tokens, so the rules
(drop titles, take the generational suffix out, reorder ``family, given``)
are Spark higher-order functions over the array, never string surgery.
Splitting returns ``struct<given, middle, family, suffix>`` (``NAME_PARTS``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

from pyspark.sql import Column
from pyspark.sql import functions as F

from matching.normalize import blank_to_null, is_in, let, lookup, tidy_text

NAME_PARTS: tuple[str, ...] = ("given", "middle", "family", "suffix")


def name_tokens(col: Column) -> Column:
    """Cleaned name words as an array, each comma kept as its own ``','`` token; NULL -> ``[]``.

    ``'Dr. Robert J. Smith Jr'`` -> ``['dr', 'robert', 'j', 'smith', 'jr']``.
    """
    text = F.regexp_replace(tidy_text(col, keep="'-,"), ",", " , ")
    return F.coalesce(F.split(F.trim(F.regexp_replace(text, r"\s+", " ")), " "), F.array().cast("array<string>"))


def strip_honorifics(tokens: Column, honorifics: Collection[str]) -> Column:
    """The tokens without titles and post-nominal letters (mr, dr, prof, phd ...)."""
    return F.filter(tokens, lambda token: ~is_in(token, honorifics))


def _is_suffix(token: Column, index: Column, suffixes: Mapping[str, str]) -> Column:
    # A suffix word in first place is a name ("Junior Smith"), not a suffix.
    return (index > 0) & is_in(token, suffixes)


def extract_suffix(tokens: Column, suffixes: Mapping[str, str]) -> Column:
    """The canonical generational suffix (``jr``, ``sr``, ``iii`` ...) found in the tokens, or NULL."""
    found = F.filter(tokens, lambda token, index: _is_suffix(token, index, suffixes))
    return lookup(F.try_element_at(found, F.lit(-1)), suffixes)


def strip_suffixes(tokens: Column, suffixes: Mapping[str, str]) -> Column:
    """The tokens without generational suffixes."""
    return F.filter(tokens, lambda token, index: ~_is_suffix(token, index, suffixes))


def reorder_family_first(tokens: Column) -> Column:
    """``['smith', ',', 'robert']`` -> ``['robert', 'smith']``; commas dropped.

    Nothing after the comma (``'robert smith,'``) keeps the order.
    """
    return let(tokens, _reorder_family_first)


def _reorder_family_first(tokens: Column) -> Column:
    comma = F.array_position(tokens, ",")
    before = F.slice(tokens, F.lit(1), F.greatest(comma - 1, F.lit(0)))
    after = F.array_remove(F.slice(tokens, comma + 1, F.size(tokens)), ",")
    family_first = (comma > 1) & (F.size(after) > 0)
    return F.when(family_first, F.concat(after, before)).otherwise(F.array_remove(tokens, ","))


def _join_tokens(tokens: Column) -> Column:
    return blank_to_null(F.array_join(tokens, " "))


def split_tokens(tokens: Column, particles: Collection[str] = ()) -> Column:
    """``struct<given, middle, family>`` from ordered name tokens.

    One token is a family name. With two or more, the first is the given name
    and the family name is the last token, or starts at the first particle
    (``van``, ``de`` ...) after the given name: ``'maria de la cruz'`` has
    family name ``'de la cruz'``.
    """
    return let(tokens, lambda bound: _split_tokens(bound, particles))


def _split_tokens(tokens: Column, particles: Collection[str]) -> Column:
    count = F.size(tokens)
    particle_positions = F.transform(
        tokens,
        lambda token, index: F.when(
            (index > 0) & (index < count - 1) & is_in(token, particles), index + 1
        ),
    )
    # Lengths are clamped at 0 so no branch can raise, whichever Spark evaluates.
    family_start = F.coalesce(F.array_min(particle_positions), F.greatest(count, F.lit(1)))
    middle = F.slice(tokens, F.lit(2), F.greatest(family_start - 2, F.lit(0)))
    family = F.slice(tokens, family_start, F.greatest(count - family_start + 1, F.lit(0)))
    return F.struct(
        F.when(count >= 2, F.try_element_at(tokens, F.lit(1))).alias("given"),
        F.when(count >= 3, _join_tokens(middle)).alias("middle"),
        _join_tokens(family).alias("family"),
    )


def split_full_name(
    col: Column,
    honorifics: Collection[str] = (),
    suffixes: Mapping[str, str] | None = None,
    particles: Collection[str] = (),
) -> Column:
    """``struct<given, middle, family, suffix>`` from a whole name.

    Handles ``'robert smith'``, ``'SMITH, Robert'``, ``'robert james smith'``,
    ``'Dr. Robert J. Smith Jr'`` and single words (a family name).
    """
    known_suffixes = suffixes or {}

    def split(tokens: Column) -> Column:
        parts = split_tokens(reorder_family_first(strip_suffixes(tokens, known_suffixes)), particles)
        return F.struct(
            parts["given"].alias("given"),
            parts["middle"].alias("middle"),
            parts["family"].alias("family"),
            extract_suffix(tokens, known_suffixes).alias("suffix"),
        )

    return let(strip_honorifics(name_tokens(col), honorifics), split)


def combine_name_columns(
    given: Column,
    middle: Column,
    family: Column,
    honorifics: Collection[str] = (),
    suffixes: Mapping[str, str] | None = None,
) -> Column:
    """``struct<given, middle, family, suffix>`` from separate name columns.

    The first given word is the given name; further given words go in front of
    the middle names (``'Robert James'`` -> given ``robert``, middle ``james``).
    Titles are dropped and a suffix is taken out of the family name
    (``'Smith Jr'`` -> ``smith`` + ``jr``).
    """
    known_suffixes = suffixes or {}
    middle_tokens = F.array_remove(name_tokens(middle), ",")

    def first_and_rest(given_tokens: Column) -> Column:
        rest = F.slice(given_tokens, F.lit(2), F.greatest(F.size(given_tokens) - 1, F.lit(0)))
        return F.struct(
            F.try_element_at(given_tokens, F.lit(1)).alias("given"),
            _join_tokens(F.concat(rest, middle_tokens)).alias("middle"),
        )

    def family_and_suffix(family_tokens: Column) -> Column:
        return F.struct(
            _join_tokens(strip_suffixes(family_tokens, known_suffixes)).alias("family"),
            extract_suffix(family_tokens, known_suffixes).alias("suffix"),
        )

    given_parts = let(F.array_remove(strip_honorifics(name_tokens(given), honorifics), ","), first_and_rest)
    family_parts = let(F.array_remove(strip_honorifics(name_tokens(family), honorifics), ","), family_and_suffix)
    return F.struct(
        given_parts["given"].alias("given"),
        given_parts["middle"].alias("middle"),
        family_parts["family"].alias("family"),
        family_parts["suffix"].alias("suffix"),
    )


def join_name(given: Column, middle: Column, family: Column) -> Column:
    """``'given middle family'`` with single spaces, NULL parts skipped; all NULL -> NULL."""
    return blank_to_null(F.concat_ws(" ", given, middle, family))


def canonical_given_name(col: Column, nicknames: Mapping[str, str]) -> Column:
    """A cleaned given name (see ``clean_text``) with a nickname replaced by its formal name.

    ``bob`` -> ``robert``; a name that is no nickname is returned as it is.
    """
    return F.coalesce(lookup(col, nicknames), col)
