""""Why not?": score any two source records with the current model and check every blocking rule.

Blocking keys are Spark SQL expressions; the forms ``conf/matching.yaml``
uses are evaluated here in Python, with Spark's semantics:

- a column reference (``email``, ``birth_date``);
- ``substring(col, pos, len)`` / ``substr``: 1-based, ``pos`` 0 acts as 1,
  a negative ``pos`` counts from the end (``UTF8String.substringSQL``);
- ``year(col)``, ``month(col)`` of a date;
- ``lower(col)``, ``upper(col)``, ``reverse(col)``, ``length(col)``;
- ``split_part(col, delimiter, n)``: the n-th part, 1-based, negative counts
  from the end, ``''`` past the last part (Spark's semantics);
- ``least(...)`` / ``greatest(...)`` (nulls skipped, as in Spark);
- ``CASE WHEN expr IS [NOT] NULL THEN expr [ELSE expr] END``;
- integer and string literals;
- ``soundex(col)``: ``jellyfish.soundex``, except that Spark returns the value
  unchanged when it does not start with an ASCII letter (checked against
  Spark 4.0.5 on ASCII names, see ``tests/steward/test_explain.py``; names
  reach blocking accent-folded, where the two agree).

Anything else (other conditions, casts, operators, other functions) is "unknown":
the page says so rather than guess. A null key never joins, as in Spark.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jellyfish
import numpy as np
import pandas as pd

from matching.compare import comparison_columns, score_batch
from matching.model_io import MatchModel, score_with
from matching.settings import BlockingRule, MatchSettings
from schemas.privacy import mask_key_value


class Unknown:
    """A key expression this module cannot evaluate."""

    def __repr__(self) -> str:
        return "unknown"


UNKNOWN = Unknown()
_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<number>-?\d+)|(?P<string>'[^'\\]*')|(?P<punct>[(),]))")


def spark_soundex(value: str) -> str:
    if not value or not ("a" <= value[0].lower() <= "z"):
        return value
    return str(jellyfish.soundex(value))


def spark_substring(value: str, pos: int, length: int) -> str:
    start = pos - 1 if pos > 0 else (len(value) + pos if pos < 0 else 0)
    end = start + length
    start = max(start, 0)
    return value[start:end] if start < end else ""


def spark_split_part(value: str, delimiter: str, part: int) -> str:
    if part == 0:
        return UNKNOWN  # Spark raises an error
    parts = value.split(delimiter) if delimiter else [value]
    index = part - 1 if part > 0 else len(parts) + part
    return parts[index] if 0 <= index < len(parts) else ""


def _strings(function: Any) -> Any:
    """``function`` on a string first argument; null in, null out; anything else is unknown."""

    def apply(value: Any, *rest: Any) -> Any:
        if value is None:
            return None
        return function(value, *rest) if isinstance(value, str) else UNKNOWN

    return apply


def _date_part(part: str) -> Any:
    def apply(value: Any) -> Any:
        if value is None:
            return None
        return getattr(value, part) if isinstance(value, (dt.date, dt.datetime)) else UNKNOWN

    return apply


def _extreme(pick: Any) -> Any:
    """Spark's ``least`` / ``greatest``: nulls are skipped; null only when every argument is null."""

    def apply(*values: Any) -> Any:
        present = [v for v in values if v is not None]
        if not present:
            return None
        if len({type(v) for v in present}) > 1:
            return UNKNOWN
        return pick(present)

    return apply


# name -> (number of arguments or None for any, function)
_FUNCTIONS: dict[str, tuple[int | None, Any]] = {
    "substring": (3, _strings(spark_substring)),
    "substr": (3, _strings(spark_substring)),
    "year": (1, _date_part("year")),
    "month": (1, _date_part("month")),
    "soundex": (1, _strings(spark_soundex)),
    "lower": (1, _strings(str.lower)),
    "upper": (1, _strings(str.upper)),
    "reverse": (1, _strings(lambda value: value[::-1])),
    "length": (1, _strings(len)),
    "split_part": (3, _strings(spark_split_part)),
    "least": (None, _extreme(min)),
    "greatest": (None, _extreme(max)),
}


class _Unsupported(Exception):
    pass


class _Parser:
    """Recursive descent over the supported forms, evaluating against one record as it goes.

    ``expr := CASE WHEN expr IS [NOT] NULL THEN expr [ELSE expr] END
            | function '(' expr {',' expr} ')' | column | integer | 'string'``
    """

    def __init__(self, tokens: list[tuple[str, str]], record: Mapping[str, Any]) -> None:
        self.tokens, self.at, self.record = tokens, 0, record

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.at] if self.at < len(self.tokens) else ("end", "")

    def take(self, kind: str, text: str | None = None) -> str:
        token_kind, token_text = self.peek()
        if token_kind != kind or (text is not None and token_text.lower() != text):
            raise _Unsupported(token_text)
        self.at += 1
        return token_text

    def keyword(self, word: str) -> bool:
        kind, text = self.peek()
        if kind == "name" and text.lower() == word:
            self.at += 1
            return True
        return False

    def expression(self) -> Any:
        kind, text = self.peek()
        if kind == "number":
            self.at += 1
            return int(text)
        if kind == "string":
            self.at += 1
            return text[1:-1]
        if self.keyword("case"):
            return self.case()
        name = self.take("name")
        if self.peek() == ("punct", "("):
            return self.call(name)
        if name not in self.record:
            raise _Unsupported(name)
        return self.record[name]

    def case(self) -> Any:
        self.take("name", "when")
        tested = self.expression()
        self.take("name", "is")
        negated = self.keyword("not")
        self.take("name", "null")
        self.take("name", "then")
        chosen = self.expression()
        otherwise = self.expression() if self.keyword("else") else None
        self.take("name", "end")
        if tested is UNKNOWN:
            return UNKNOWN
        holds = (tested is not None) if negated else (tested is None)
        return chosen if holds else otherwise

    def call(self, name: str) -> Any:
        arity, function = _FUNCTIONS.get(name.lower(), (0, None))
        if function is None:
            raise _Unsupported(name)
        self.take("punct", "(")
        args = [self.expression()]
        while self.peek() == ("punct", ","):
            self.at += 1
            args.append(self.expression())
        self.take("punct", ")")
        if arity is not None and len(args) != arity:
            raise _Unsupported(name)
        if any(a is UNKNOWN for a in args):
            return UNKNOWN
        return function(*args)


def _tokens(expression: str) -> list[tuple[str, str]] | None:
    tokens, at = [], 0
    text = expression.rstrip()
    while at < len(text):
        match = _TOKEN.match(text, at)
        if match is None:
            return None
        kind = match.lastgroup
        assert kind is not None
        tokens.append((kind, match.group(kind)))
        at = match.end()
    return tokens


def evaluate_key(expression: str, record: Mapping[str, Any]) -> Any:
    """The value of a blocking key expression for one record: a value, None (null) or ``UNKNOWN``."""
    tokens = _tokens(expression)
    if not tokens:
        return UNKNOWN
    parser = _Parser(tokens, record)
    try:
        value = parser.expression()
    except _Unsupported:
        return UNKNOWN
    return value if parser.at == len(tokens) else UNKNOWN


@dataclass(frozen=True)
class KeyCheck:
    expression: str
    left: Any
    right: Any
    outcome: str  # equal | differ | null | unknown


@dataclass(frozen=True)
class RuleCheck:
    rule: str
    keys: tuple[KeyCheck, ...]
    verdict: str  # pairs | does-not-pair | unknown
    note: str


def _shown(expression: str, value: Any) -> Any:
    return value if value is UNKNOWN else mask_key_value(expression, value)


def _key_check(expression: str, left: Mapping[str, Any], right: Mapping[str, Any]) -> KeyCheck:
    """The outcome from the full key values; the values kept are as shown to a person (``national_id`` masked)."""
    a, b = evaluate_key(expression, left), evaluate_key(expression, right)
    if a is UNKNOWN or b is UNKNOWN:
        outcome = "unknown"
    elif a is None or b is None:
        outcome = "null"
    else:
        outcome = "equal" if a == b else "differ"
    return KeyCheck(expression, _shown(expression, a), _shown(expression, b), outcome)


def check_rule(rule: BlockingRule, settings: MatchSettings, left: Mapping[str, Any], right: Mapping[str, Any]) -> RuleCheck:
    keys = tuple(_key_check(k, left, right) for k in rule.keys)
    outcomes = {k.outcome for k in keys}
    if settings.link_type == "link_only" and left.get("source_system") == right.get("source_system"):
        return RuleCheck(rule.name, keys, "does-not-pair", "link_only pairs records of different sources only")
    if "null" in outcomes:
        return RuleCheck(rule.name, keys, "does-not-pair", "a key is null on one side; null keys never join")
    if "differ" in outcomes:
        return RuleCheck(rule.name, keys, "does-not-pair", "the keys differ")
    if "unknown" in outcomes:
        return RuleCheck(rule.name, keys, "unknown", "a key expression could not be evaluated here")
    note = f"same keys (unless the block holds more than {settings.max_block_size} records and is sub-blocked"
    if rule.refine and settings.max_pairs_per_record is not None:
        refine = [_key_check(k, left, right) for k in rule.refine]
        if any(k.outcome != "equal" for k in refine):
            note += f", or the pair budget refined the rule by {', '.join(k.expression for k in refine)}"
    return RuleCheck(rule.name, keys, "pairs", note + ")")


def check_rules(settings: MatchSettings, left: Mapping[str, Any], right: Mapping[str, Any]) -> list[RuleCheck]:
    return [check_rule(rule, settings, left, right) for rule in settings.blocking_rules]


def comparison_batch(
    settings: MatchSettings, left: Mapping[str, Any], right: Mapping[str, Any], frequencies: Mapping[str, float | None]
) -> pd.DataFrame:
    """One attached pair as ``score_batch`` expects it: ``<col>_l``, ``<col>_r`` and ``tf_<col>``.

    ``frequencies`` gives, per TF column, the share of records holding the shared value
    (only used when both sides are equal, as in the pipeline).
    """
    row: dict[str, Any] = {}
    for column in comparison_columns(settings):
        row[f"{column}_l"], row[f"{column}_r"] = left.get(column), right.get(column)
    for comparison in settings.tf_comparisons:
        column = comparison.column
        same = left.get(column) is not None and left.get(column) == right.get(column)
        frequency = frequencies.get(column)
        row[f"tf_{column}"] = frequency if same and frequency is not None else np.nan
    return pd.DataFrame([row])


@dataclass(frozen=True)
class PairScore:
    match_probability: float
    match_weight: float
    levels: dict[str, int]
    evidence: dict[str, float]


def score_pair(settings: MatchSettings, model: MatchModel, batch: pd.DataFrame) -> PairScore:
    comparisons: Sequence = list(settings.comparisons)
    gammas = score_batch(batch, comparisons, keep=[])
    scores = score_with(model, gammas).iloc[0]
    names = [c.name for c in comparisons]
    return PairScore(
        match_probability=float(scores["match_probability"]),
        match_weight=float(scores["match_weight"]),
        levels={n: int(gammas[f"gamma_{n}"].iloc[0]) for n in names},
        evidence={n: float(scores[f"mw_{n}"]) for n in names},
    )
