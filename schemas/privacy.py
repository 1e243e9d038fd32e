"""Masking of the attributes that are never shown in full: ``national_id``.

The gold tables (the trusted store) hold the full value; anything rendered to
a person or returned by the API passes through ``mask_national_id``, directly
or through ``mask_value`` / ``mask_record``: only the last four characters stay
(``123456789`` -> ``•••••6789``), and never more than half of a short value.
Pure functions, no I/O; the steward app and the command line both use them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

MASKED_ATTRIBUTES: frozenset[str] = frozenset({"national_id"})
MASK_CHARACTER = "•"
SHOWN_TAIL = 4
# Columns of a row that hold a whole record (match_candidates' two sides).
RECORD_COLUMNS: tuple[str, ...] = ("record_l", "record_r")

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def mask_national_id(value: Any) -> str | None:
    """``•••••6789`` for ``123456789``: one mask character per hidden character, the last
    ``SHOWN_TAIL`` shown, but at most half of the value (``ABCD`` -> ``••CD``). None stays None.
    """
    if value is None:
        return None
    text = str(value)
    shown = min(SHOWN_TAIL, len(text) // 2)
    return MASK_CHARACTER * (len(text) - shown) + text[len(text) - shown:]


def mask_value(attribute: str, value: Any) -> Any:
    """``value`` as it may be shown for ``attribute``: masked when the attribute is masked."""
    return mask_national_id(value) if attribute in MASKED_ATTRIBUTES else value


def mask_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``row`` with masked attributes masked, in the row and in its record columns.

    Other nested values (``lineage`` maps an attribute to a record id, not to a
    value) are left as they are.
    """
    masked = {key: mask_value(key, value) for key, value in row.items()}
    for column in RECORD_COLUMNS:
        if isinstance(masked.get(column), Mapping):
            masked[column] = mask_record(masked[column])
    return masked


def mask_records(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    return [mask_record(row) for row in rows]


def reads_masked(expression: str) -> bool:
    """True when a Spark SQL expression (a blocking key) reads a masked attribute."""
    text = _QUOTED.sub("''", expression)
    return any(word in MASKED_ATTRIBUTES for word in _IDENTIFIER.findall(text))


def mask_key_value(expression: str, value: Any) -> Any:
    """A blocking key's value as it may be shown: masked when ``expression`` reads a masked attribute."""
    return mask_national_id(value) if value is not None and reads_masked(expression) else value
