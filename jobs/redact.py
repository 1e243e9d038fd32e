"""Redaction of an erased person's values from files: pure Python, no Spark.

``cdi erase`` (``jobs/erase.py``) collects every value the erased records
held and gives them to a ``Redactor``, which takes them out of the run
folders' files (``model.json`` term-frequency tables, ``matching.json``,
``validation.json``, ``summary.json``, ``report.html``, Great Expectations'
results and Data Docs) and out of the saved match model:

- a JSON file is parsed and written back with every dict key that holds a
  value dropped (a term-frequency entry ``value -> share``) and every string
  that holds one rewritten with the value replaced by ``[erased]``;
- any other UTF-8 text (HTML, YAML, CSS, ...) has every occurrence replaced,
  in its raw, HTML-escaped and JSON-escaped forms;
- any other file (images, fonts) that contains a value is deleted.

Matching ignores case. How much of a value must match depends on its length,
so that erasing one person does not corrupt everyone else's files:

- a value of ``MIN_CHARS`` (3) or more characters is erased where it is a
  whole JSON string or key (``"max"``, a term-frequency key);
- one of ``SUBSTRING_CHARS`` (5) or more is erased wherever it appears, also
  inside longer text (``Zebulonia`` in ``Zebulonia Quixotewright``); a
  shorter one would hit words and code (``max`` in ``max-width``);
- a value made only of digits counts from ``MIN_DIGITS`` (6) digits and only
  matches where no digit touches it, so erasing ``900123`` cannot change
  ``9001234``;
- in a binary file only values of ``BINARY_CHARS`` (8) or more count: shorter
  ones turn up by chance in compressed bytes.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MIN_CHARS = 3
SUBSTRING_CHARS = 5
MIN_DIGITS = 6
BINARY_CHARS = 8
ERASED = "[erased]"


def escaped_forms(value: str) -> set[str]:
    """``value`` as it may be written in HTML or inside a JSON string."""
    return {
        value,
        html.escape(value, quote=True),
        html.escape(value, quote=True).replace("&#x27;", "&#39;"),
        html.escape(value, quote=False),
        json.dumps(value)[1:-1],
        json.dumps(value, ensure_ascii=False)[1:-1],
    }


def _identifying(value: str) -> bool:
    return len(value) >= (MIN_DIGITS if value.isdigit() else MIN_CHARS)


def _pattern(values: Iterable[str]) -> re.Pattern[str] | None:
    """One case-insensitive pattern for every escaped form of ``values``, longest first.

    Longest first, so a value inside a longer one (a name inside an email) does
    not cut the longer one in two.
    """
    forms = sorted({f for v in values for f in escaped_forms(v) if f}, key=lambda f: (-len(f), f))
    if not forms:
        return None
    alternatives = (rf"(?<!\d){re.escape(f)}(?!\d)" if f.isdigit() else re.escape(f) for f in forms)
    return re.compile("|".join(alternatives), re.IGNORECASE)


@dataclass(frozen=True)
class Redactor:
    """Finds and replaces a fixed set of values (and their escaped forms), ignoring case."""

    values: frozenset[str]
    _whole: frozenset[str] = field(default=frozenset(), repr=False, compare=False)  # lower-cased
    _inside: re.Pattern[str] | None = field(default=None, repr=False, compare=False)
    _binary: re.Pattern[str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(cls, values: Iterable[str]) -> "Redactor":
        kept = frozenset(v for v in (str(v).strip() for v in values) if _identifying(v))
        inside = [v for v in kept if v.isdigit() or len(v) >= SUBSTRING_CHARS]
        return cls(
            kept,
            frozenset(v.lower() for v in kept),
            _pattern(inside),
            _pattern(v for v in inside if len(v) >= BINARY_CHARS),
        )

    def __bool__(self) -> bool:
        return bool(self.values)

    def found_in(self, text: str) -> bool:
        """Whether ``text`` holds a value inside it (values too short for that are only erased whole)."""
        return self._inside is not None and self._inside.search(text) is not None

    def found_in_binary(self, data: bytes) -> bool:
        return self._binary is not None and self._binary.search(data.decode("latin-1")) is not None

    def is_value(self, text: str) -> bool:
        return text.strip().lower() in self._whole

    def text(self, text: str) -> str:
        """``text`` with every occurrence of a value replaced by ``[erased]``."""
        return self._inside.sub(ERASED, text) if self._inside is not None else text

    def json_value(self, value: Any) -> Any:
        """A parsed JSON value with keys that hold a value dropped and strings redacted."""
        if isinstance(value, dict):
            return {
                k: self.json_value(v) for k, v in value.items() if not (self.is_value(str(k)) or self.found_in(str(k)))
            }
        if isinstance(value, list):
            return [self.json_value(v) for v in value]
        if isinstance(value, str):
            return ERASED if self.is_value(value) else self.text(value)
        return value

    def json_text(self, text: str) -> str:
        """A JSON document redacted and written back in the same layout (indented or one line)."""
        parsed = json.loads(text)
        redacted = self.json_value(parsed)
        if redacted == parsed:
            return text
        indent = 2 if "\n" in text.strip() else None
        ending = "\n" if text.endswith("\n") else ""
        return json.dumps(redacted, indent=indent, ensure_ascii=False) + ending


@dataclass
class RedactionCounts:
    files_seen: int = 0
    rewritten: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def redact_file(path: Path, redactor: Redactor, dry_run: bool = False) -> str:
    """Redact one file in place: ``'unchanged'``, ``'rewritten'`` or ``'deleted'`` (with ``dry_run``: would be)."""
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        if not redactor.found_in_binary(data):
            return "unchanged"
        if not dry_run:
            path.unlink()
        return "deleted"
    redacted = redactor.text(text)
    if path.suffix == ".json":
        try:
            redacted = redactor.json_text(text)
        except ValueError:
            pass
    if redacted == text:
        return "unchanged"
    if not dry_run:
        _replace(path, redacted)
    return "rewritten"


def _replace(path: Path, text: str) -> None:
    """Write ``text`` to a new file beside ``path`` and move it over ``path`` (no half-written file)."""
    partial = path.with_name(f".{path.name}.erasing")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def files_under(root: Path) -> Iterator[Path]:
    for folder, _, names in os.walk(root):
        for name in sorted(names):
            yield Path(folder) / name


def redact_tree(root: Path, redactor: Redactor, dry_run: bool = False) -> RedactionCounts:
    """Redact every file under ``root`` (nothing when there is no such folder or nothing to redact)."""
    counts = RedactionCounts()
    if not redactor or not root.is_dir():
        return counts
    for path in files_under(root):
        counts.files_seen += 1
        outcome = redact_file(path, redactor, dry_run)
        if outcome == "rewritten":
            counts.rewritten.append(str(path))
        elif outcome == "deleted":
            counts.deleted.append(str(path))
    return counts


def json_leaf_strings(text: str | None, exclude: Iterable[str] = ()) -> set[str]:
    """Every string and number in a JSON document (a quarantined row), or the text itself if it is not JSON.

    Top-level keys in ``exclude`` (a row's lineage columns) are left out.
    """
    if not text:
        return set()
    try:
        parsed = json.loads(text)
    except ValueError:
        return {text}
    if isinstance(parsed, dict):
        skipped = set(exclude)
        parsed = {k: v for k, v in parsed.items() if k not in skipped}
    found: set[str] = set()
    stack = [parsed]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, (str, int, float)) and not isinstance(item, bool):
            found.add(str(item))
    return found
