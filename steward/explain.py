""""Why not?": score any two source records with the current model and check every blocking rule.

Blocking keys are Spark SQL expressions; the forms ``conf/matching.yaml``
uses are evaluated here in Python, with Spark's semantics:

- a column reference (``email``, ``birth_date``);
- ``substring(col, pos, len)`` / ``substr``: 1-based, ``pos`` 0 acts as 1,
  a negative ``pos`` counts from the end (``UTF8String.substringSQL``);
- ``year(col)`` of a date;
- ``lower(col)``, ``upper(col)``;
- ``soundex(col)``: ``jellyfish.soundex``, except that Spark returns the value
  unchanged when it does not start with an ASCII letter (checked against
  Spark 4.0.5 on ASCII names, see ``tests/steward/test_explain.py``; names
  reach blocking accent-folded, where the two agree).

Anything else (CASE, casts, concatenation, other functions) is "unknown":
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


class Unknown:
    """A key expression this module cannot evaluate."""

    def __repr__(self) -> str:
        return "unknown"


UNKNOWN = Unknown()
_TOKEN = re.compile(r"\s*(?:(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<number>-?\d+)|(?P<punct>[(),]))")


def spark_soundex(value: str) -> str:
    if not value or not ("a" <= value[0].lower() <= "z"):
        return value
    return str(jellyfish.soundex(value))


def spark_substring(value: str, pos: int, length: int) -> str:
    start = pos - 1 if pos > 0 else (len(value) + pos if pos < 0 else 0)
    end = start + length
    start = max(start, 0)
    return value[start:end] if start < end else ""


def _year(value: Any) -> Any:
    return value.year if isinstance(value, (dt.date, dt.datetime)) else UNKNOWN


_FUNCTIONS = {
    "substring": (3, lambda v, p, n: spark_substring(v, p, n) if isinstance(v, str) else UNKNOWN),
    "substr": (3, lambda v, p, n: spark_substring(v, p, n) if isinstance(v, str) else UNKNOWN),
    "year": (1, _year),
    "soundex": (1, lambda v: spark_soundex(v) if isinstance(v, str) else UNKNOWN),
    "lower": (1, lambda v: v.lower() if isinstance(v, str) else UNKNOWN),
    "upper": (1, lambda v: v.upper() if isinstance(v, str) else UNKNOWN),
}


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

    def parse(at: int) -> tuple[Any, int]:
        kind, text = tokens[at]
        if kind == "number":
            return int(text), at + 1
        if kind != "name":
            raise ValueError(text)
        if at + 1 < len(tokens) and tokens[at + 1] == ("punct", "("):
            arity, function = _FUNCTIONS.get(text.lower(), (None, None))
            if function is None:
                raise ValueError(text)
            args, at = [], at + 2
            while True:
                value, at = parse(at)
                args.append(value)
                if tokens[at] == ("punct", ")"):
                    at += 1
                    break
                if tokens[at] != ("punct", ","):
                    raise ValueError(tokens[at][1])
                at += 1
            if len(args) != arity:
                raise ValueError(text)
            if any(a is UNKNOWN for a in args):
                return UNKNOWN, at
            return (None if args[0] is None else function(*args)), at
        if text not in record:
            raise ValueError(text)
        return record[text], at + 1

    try:
        value, end = parse(0)
    except (ValueError, IndexError):
        return UNKNOWN
    return value if end == len(tokens) else UNKNOWN


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


def _key_check(expression: str, left: Mapping[str, Any], right: Mapping[str, Any]) -> KeyCheck:
    a, b = evaluate_key(expression, left), evaluate_key(expression, right)
    if a is UNKNOWN or b is UNKNOWN:
        outcome = "unknown"
    elif a is None or b is None:
        outcome = "null"
    else:
        outcome = "equal" if a == b else "differ"
    return KeyCheck(expression, a, b, outcome)


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
    return RuleCheck(
        rule.name, keys, "pairs",
        f"same keys (unless the block holds more than {settings.max_block_size} records and is sub-blocked)",
    )


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
