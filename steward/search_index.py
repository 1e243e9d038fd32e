"""Search that forgives: accents and case folded, "FAMILY, Given", partial names, phones as typed.

A ``TextIndex`` is built once per table version (``golden_customers`` or
``customers_std``): the distinct words of the rows' folded names with the
rows of each, per row one folded text of its ids and email, and the digits of
its phone. A query matches a row when

* every word of the folded query is part of one of the row's name words, or
  of its ids and email, in any order ("oneill, margaret", "marg onei",
  "Émily" finds "emily"); or
* it looks like a phone number (digits, spaces, ``+ - ( ) .``, at least
  ``MIN_PHONE_DIGITS`` digits) and its digits, or those of its E.164 form
  read with the default region ("020 6748 0659" is "+442067480659"), are
  part of the row's phone (its digits alone are also looked for in the ids:
  a numeric source key).

Folding is Python's NFKD with the combining marks dropped, a few letters
that do not decompose (``ß`` → ``ss``, ``ø`` → ``o``), apostrophes dropped
("O'Neill" finds "oneill") and ``casefold``; on the rows' side it runs in
Python only for the rows that are not plain ASCII.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from matching.normalize_contact import to_e164

MIN_PHONE_DIGITS = 7
_SEPARATOR = "\x1f"  # between fields: no query word spans two of them
_WORDS = re.compile(r"[\s,;]+")
_PHONE_LIKE = re.compile(r"^\+?[\d\s\-().]+$")
_NOT_DIGIT = re.compile(r"\D")
_NAME_WORD = re.compile(r"^[^\W\d_]+(-[^\W\d_]+)*$")  # letters, maybe hyphenated: looked up among name words
_NO_DECOMPOSITION = str.maketrans({"ß": "ss", "ẞ": "ss", "æ": "ae", "Æ": "ae", "œ": "oe", "Œ": "oe", "ø": "o",
                                   "Ø": "o", "ł": "l", "Ł": "l", "đ": "d", "Đ": "d", "ð": "d", "Ð": "d", "þ": "th",
                                   "Þ": "th", "ı": "i", "'": "", "’": "", "‘": "", "ʼ": ""})


def fold(text: str) -> str:
    """``text`` without accents and apostrophes, in lower case: "Émily O’Neill" -> "emily oneill"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_NO_DECOMPOSITION))
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def query_words(query: str) -> list[str]:
    """The folded words of a query; commas separate words too ("FAMILY, Given")."""
    return [w for w in _WORDS.split(fold(query)) if w]


def phone_digits(query: str, region: str) -> list[str]:
    """Digit strings a phone-like query may be part of a stored E.164 phone as; empty when it is no phone."""
    text = query.strip()
    digits = _NOT_DIGIT.sub("", text)
    if not _PHONE_LIKE.match(text) or len(digits) < MIN_PHONE_DIGITS:
        return []
    e164 = to_e164(text, region)
    found = [digits]
    if e164 is not None and e164[1:] != digits:
        found.append(e164[1:])
    return found


def _folded(texts: pa.Array) -> pa.Array:
    """``texts`` lower-cased; rows that are not ASCII folded in Python (accents and all)."""
    lowered = pc.replace_substring(pc.utf8_lower(texts), "'", "")
    special = pc.invert(pc.string_is_ascii(lowered))
    if not pc.any(special).as_py():
        return lowered
    rows = np.flatnonzero(special.to_numpy(zero_copy_only=False))
    folded = pa.array([fold(t) for t in lowered.take(pa.array(rows)).to_pylist()], pa.string())
    return pc.replace_with_mask(lowered, special, folded)


def _name_words(names: pa.Array) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """The distinct words of ``names`` (one folded text per row), and for word ``w`` its rows:
    ``rows[offsets[w]:offsets[w + 1]]``, ascending (a row may repeat)."""
    words = pc.split_pattern_regex(names, r"\s+")
    flat = pc.list_flatten(words)
    rows = pc.list_parent_indices(words).to_numpy()
    encoded = pc.dictionary_encode(flat).combine_chunks() if isinstance(flat, pa.ChunkedArray) else pc.dictionary_encode(flat)
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    order = np.argsort(codes, kind="stable")
    counts = np.bincount(codes, minlength=len(encoded.dictionary))
    return encoded.dictionary, rows[order], np.concatenate([[0], np.cumsum(counts)])


@dataclass(frozen=True)
class TextIndex:
    """What a search reads of one table. Names are indexed by word: a name-like query word (letters,
    hyphens) is looked for in the (few) distinct name words and their rows taken, instead of in
    every row; other words (an email, an id, a key) are looked for in each row's folded ids and email."""

    ids: pa.Array  # the id column of the rows (golden_id or record_id)
    vocabulary: pa.Array  # distinct folded name words
    word_rows: np.ndarray  # rows of each word, by word (see _name_words)
    word_offsets: np.ndarray
    other: pa.Array  # folded ids and email, joined by _SEPARATOR
    phones: pa.Array  # digits of the phone ("" when none)

    @classmethod
    def build(cls, table: pa.Table, id_column: str, names: tuple[str, ...], others: tuple[str, ...]) -> TextIndex:
        def joined(columns: tuple[str, ...], separator: str) -> pa.Array:
            fields = [pc.fill_null(table[c].combine_chunks().cast(pa.string()), "") for c in columns]
            return _folded(pc.binary_join_element_wise(*fields, separator))

        vocabulary, word_rows, word_offsets = _name_words(joined(names, " "))
        phones = pc.replace_substring_regex(pc.fill_null(table["phone"].combine_chunks(), ""), r"\D", "")
        return cls(table[id_column].combine_chunks(), vocabulary, word_rows, word_offsets,
                   joined(others, _SEPARATOR), phones)

    def _name_rows(self, word: str) -> np.ndarray:
        """Rows with a name word containing ``word``, ascending."""
        codes = np.flatnonzero(pc.match_substring(self.vocabulary, word).to_numpy(zero_copy_only=False))
        if not len(codes):
            return np.empty(0, np.int64)
        parts = [self.word_rows[self.word_offsets[c]:self.word_offsets[c + 1]] for c in codes]
        return np.unique(np.concatenate(parts))

    def _other_rows(self, word: str) -> np.ndarray:
        return np.flatnonzero(pc.match_substring(self.other, word).to_numpy(zero_copy_only=False))

    def _word_rows(self, word: str) -> np.ndarray:
        """Rows the word is found in: name words first; ids and email when it is no name or no name has it."""
        found = self._name_rows(word) if _NAME_WORD.match(word) else np.empty(0, np.int64)
        return found if len(found) else self._other_rows(word)

    def matching(self, query: str, region: str, limit: int) -> list[str]:
        """Ids of up to ``limit`` rows the query finds, in table order."""
        phone = phone_digits(query, region)
        # a phone-like query is its digits: in a phone, or in a numeric key ("020 6748" is no name)
        words = [phone[0]] if phone else query_words(query)
        hits = self._word_rows(words[0]) if words else np.empty(0, np.int64)
        for word in words[1:]:
            if not len(hits):
                break
            hits = np.intersect1d(hits, self._word_rows(word), assume_unique=True)
        for digits in phone:
            phone_hits = np.flatnonzero(pc.match_substring(self.phones, digits).to_numpy(zero_copy_only=False))
            hits = np.union1d(hits, phone_hits)
        return self.ids.take(pa.array(np.sort(hits)[:limit], pa.int64())).to_pylist()
