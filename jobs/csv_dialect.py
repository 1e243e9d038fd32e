"""How a CSV file nobody configured is written: its text encoding and its field delimiter.

``cdi dedupe`` takes a file as it comes. Spreadsheets in much of Europe save
CSV with ``;``; database exports often use tabs or ``|``; Excel's "Unicode
text" is UTF-16; older systems write Windows-1252. Guessing from the first
bytes is what a user would do by eye:

- encoding: a byte-order mark names it (UTF-8, UTF-16 or UTF-32), and
  UTF-16 without one shows in its zero bytes; else text that decodes as
  UTF-8 is UTF-8, text that decodes as Windows-1252 is that, and anything
  else is read as ISO-8859-1, which gives every byte a character (ingest
  repairs UTF-8 sequences in either);
- delimiter: the candidate (``,`` ``;`` tab ``|``) that splits the header into
  the most columns while the rows of the sample have as many fields as the
  header. A header with one column is read with ``,``.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

SAMPLE_BYTES = 64 * 1024
DELIMITERS = (",", ";", "\t", "|")
SINGLE_BYTE = ("windows-1252", "ISO-8859-1")  # the first that decodes the sample; the last decodes any bytes
# Longest first: UTF-32's little-endian mark starts with UTF-16's. Python and Java both read
# "UTF-16" and "UTF-32" from the mark's byte order and drop the mark.
BOMS = (
    (codecs.BOM_UTF32_LE, "UTF-32"),
    (codecs.BOM_UTF32_BE, "UTF-32"),
    (codecs.BOM_UTF8, "UTF-8"),
    (codecs.BOM_UTF16_LE, "UTF-16"),
    (codecs.BOM_UTF16_BE, "UTF-16"),
)


@dataclass(frozen=True)
class CsvDialect:
    encoding: str  # a name both Python and Java know
    delimiter: str

    @property
    def python_encoding(self) -> str:
        """The codec that also drops a byte-order mark."""
        return "utf-8-sig" if self.encoding == "UTF-8" else self.encoding


def sniff_encoding(sample: bytes) -> str:
    """The encoding of a file that starts with ``sample``."""
    for bom, name in BOMS:
        if sample.startswith(bom):
            return name
    unmarked = _unmarked_utf16(sample)
    if unmarked:
        return unmarked
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.reason != "unexpected end of data":  # not just a character cut at the sample's end
            return next(name for name in SINGLE_BYTE if _decodes(sample, name))
    return "UTF-8"


def _unmarked_utf16(sample: bytes) -> str | None:
    """UTF-16LE or UTF-16BE for text without a byte-order mark, told by its zero bytes, else None.

    Latin letters, digits and punctuation in UTF-16 have a zero high byte: in
    most character pairs one side is zero, always the same side.
    """
    pairs = len(sample) // 2
    if pairs < 4:
        return None
    even, odd = sample[0 : 2 * pairs : 2].count(0), sample[1 : 2 * pairs : 2].count(0)
    if odd >= 0.6 * pairs and even <= 0.1 * pairs:
        return "UTF-16LE"
    if even >= 0.6 * pairs and odd <= 0.1 * pairs:
        return "UTF-16BE"
    return None


def _decodes(sample: bytes, encoding: str) -> bool:
    try:
        sample.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def _field_counts(text: str, delimiter: str) -> list[int]:
    """Fields per row of ``text`` (blank lines left out), the last row left out if ``text`` may end inside it."""
    try:
        counts = [len(row) for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter) if row]
    except csv.Error:
        return []
    return counts[:-1] if len(counts) > 1 and not text.endswith(("\n", "\r")) else counts


def sniff_delimiter(text: str) -> str:
    """The delimiter of CSV ``text`` (a sample from the file's start)."""
    best, best_columns = ",", 1
    for delimiter in DELIMITERS:
        counts = _field_counts(text, delimiter)
        if not counts or counts[0] <= best_columns:
            continue
        rows = counts[1:]
        if rows and Counter(rows).most_common(1)[0][0] != counts[0]:
            continue  # most rows disagree with the header: not this delimiter
        best, best_columns = delimiter, counts[0]
    return best


def sniff(sample: bytes) -> CsvDialect:
    encoding = sniff_encoding(sample)
    text = sample.decode(CsvDialect(encoding, ",").python_encoding, errors="replace")
    return CsvDialect(encoding, sniff_delimiter(text))


def sniff_file(path: Path) -> CsvDialect:
    """The dialect of the file at ``path`` (a ``.gz`` name is read through gzip)."""
    with (gzip.open(path) if path.suffix.lower() == ".gz" else path.open("rb")) as handle:
        return sniff(handle.read(SAMPLE_BYTES))

