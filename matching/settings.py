"""Matching settings: link type, blocking rules, comparisons, model and thresholds.

Modelled on Splink's settings: blocking rules and comparisons are data, parsed
once from YAML (``conf/matching.yaml``) into frozen pydantic models. Blocking
keys are Spark SQL expressions over canonical attributes; comparisons are
ordered lists of levels, strongest first, each a recordlinkage comparison.

Level semantics are "at least this similar": the first level a pair satisfies
gives its gamma value, so ``jaro_winkler >= 0.8`` also holds for exact matches
and the order of the list is what separates them. A level may read another
attribute than its comparison's (``column``), so correlated attributes (street,
postcode, city) form one comparison whose evidence is counted once.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from config.errors import ConfigError
from schemas.canonical import CANONICAL_ATTRIBUTES, CANONICAL_SCHEMA, MATCH_ONLY_ATTRIBUTES

DATE_ATTRIBUTES: frozenset[str] = frozenset(
    f.name for f in CANONICAL_SCHEMA.fields if f.name in CANONICAL_ATTRIBUTES and f.dataType.typeName() == "date"
)
STRING_ATTRIBUTES: frozenset[str] = frozenset(CANONICAL_ATTRIBUTES) - DATE_ATTRIBUTES
# Dates as written (``YYYY-MM-DD``, a month or day out of range kept), text that ``date_as_written``
# reads, and the date attribute each is the written form of.
WRITTEN_FORM_OF: dict[str, str] = {"birth_date_written": "birth_date"}
WRITTEN_DATE_ATTRIBUTES: frozenset[str] = frozenset(WRITTEN_FORM_OF)
# What a comparison level may read: the canonical attributes and the ones kept for matching only.
COMPARED_ATTRIBUTES: tuple[str, ...] = (*CANONICAL_ATTRIBUTES, *MATCH_ONLY_ATTRIBUTES)

# Columns a blocking key may read besides the canonical attributes.
KEY_COLUMNS: frozenset[str] = frozenset(CANONICAL_ATTRIBUTES) | {"source_system"}

# Bare words allowed in a key expression that are not columns (casts, CASE, literals).
_SQL_WORDS = frozenset(
    "and or not null true false is in like between case when then else end as cast "
    "string int integer bigint long double float date timestamp".split()
)
_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def _identifier(value: str) -> str:
    if not _NAME.match(value):
        raise ValueError(f"name {value!r} must match {_NAME.pattern}")
    return value


Identifier = Annotated[str, AfterValidator(_identifier)]
_SUB_KEY = re.compile(r"^([a-z_]+(?:\[\d+\])?(?:\.[a-z_]+)?): ")


class SettingsError(ConfigError):
    """Invalid matching settings; the message names the file and the key path."""


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_key_expression(expression: str) -> str:
    """Reject key expressions that read unknown columns, without needing Spark.

    A bare identifier not followed by ``(`` must be a canonical attribute (or
    ``source_system``) or an SQL word; string literals are ignored.
    """
    text = _QUOTED.sub("''", expression)
    for match in _IDENTIFIER.finditer(text):
        word = match.group(0)
        followed_by_call = text[match.end():].lstrip().startswith("(")
        if followed_by_call or word.lower() in _SQL_WORDS or word in KEY_COLUMNS:
            continue
        raise ValueError(
            f"unknown attribute {word!r} in key expression {expression!r}; "
            f"expected one of {', '.join(sorted(KEY_COLUMNS))}"
        )
    return expression


def key_attributes(expression: str) -> frozenset[str]:
    """The attributes a key expression reads (bare identifiers that are key columns)."""
    text = _QUOTED.sub("''", expression)
    return frozenset(
        m.group(0) for m in _IDENTIFIER.finditer(text)
        if m.group(0) in KEY_COLUMNS and not text[m.end():].lstrip().startswith("(")
    )


class BlockingRule(_Frozen):
    """An equi-join on the tuple of ``keys`` (Spark SQL expressions); a null key never joins.

    ``refine``: keys added one at a time, in order, while the rule would give
    more pairs than the pair budget (``MatchSettings.max_pairs_per_record``).
    """

    name: Identifier
    keys: list[str] = Field(min_length=1)
    refine: list[str] = Field(default_factory=list)

    @field_validator("keys", "refine")
    @classmethod
    def _keys_read_known_columns(cls, value: list[str]) -> list[str]:
        return [_check_key_expression(key) for key in value]

    @property
    def attributes(self) -> frozenset[str]:
        """Every attribute the rule's keys read: a record lacking one never pairs by this rule."""
        return frozenset().union(*(key_attributes(key) for key in self.keys))

    def refined(self, level: int) -> BlockingRule:
        """This rule with its first ``level`` refine keys added to its keys."""
        if not 0 <= level <= len(self.refine):
            raise ValueError(f"blocking rule {self.name!r}: refine level {level} not in 0..{len(self.refine)}")
        return self.model_copy(update={"keys": [*self.keys, *self.refine[:level]], "refine": self.refine[level:]})


class _Level(_Frozen):
    """``column``: the attribute this level reads, when not its comparison's own."""

    column: str | None = None

    @field_validator("column")
    @classmethod
    def _column_is_attribute(cls, value: str | None) -> str | None:
        if value is not None and value not in COMPARED_ATTRIBUTES:
            raise ValueError(f"unknown attribute {value!r}; expected one of {', '.join(COMPARED_ATTRIBUTES)}")
        return value


class ExactLevel(_Level):
    kind: Literal["exact"]


class JaroWinklerLevel(_Level):
    kind: Literal["jaro_winkler"]
    threshold: float = Field(gt=0, le=1)


class JaroLevel(_Level):
    kind: Literal["jaro"]
    threshold: float = Field(gt=0, le=1)


class _EditDistanceLevel(_Level):
    """Either an absolute ``max_distance`` (edits) or recordlinkage's normalized ``threshold``."""

    max_distance: int | None = Field(default=None, ge=1)
    threshold: float | None = Field(default=None, gt=0, le=1)

    @model_validator(mode="after")
    def _exactly_one_bound(self) -> _EditDistanceLevel:
        if (self.max_distance is None) == (self.threshold is None):
            raise ValueError("give exactly one of max_distance (edits) or threshold (similarity)")
        return self


class LevenshteinLevel(_EditDistanceLevel):
    kind: Literal["levenshtein"]


class DamerauLevenshteinLevel(_EditDistanceLevel):
    kind: Literal["damerau_levenshtein"]


class DateTransposedLevel(_Level):
    """Same date, or day and month swapped (same year)."""

    kind: Literal["date_transposed"]


class DateTypoLevel(_Level):
    """The dates as written (YYYY-MM-DD) differ in one digit, or in two neighbouring digits of one part
    swapped: 1961 / 1991, 05 / 08, 1916 / 1961, 12 / 21."""

    kind: Literal["date_typo"]


class DateDayMonthLevel(_Level):
    """The same day and month in another year: a year mistyped in more than one digit, read in the wrong
    century from two digits (25 as 2025 for 1925), or replaced."""

    kind: Literal["date_day_month"]


class DateAsWrittenLevel(_Level):
    """Two dates as written (``YYYY-MM-DD`` text, ``birth_date_written``) equal, a typo apart as
    ``date_typo`` defines one, or of one year with day and month swapped. The written form also holds a
    date standardization could not use (1997-21-25 against its twin's 1997-12-25, 1997-25-12 against
    1997-12-25), where every level on the date itself is missing."""

    kind: Literal["date_as_written"]


class DateDistanceLevel(_Level):
    kind: Literal["date_distance"]
    max_days: int = Field(ge=1)


class NumericDistanceLevel(_Level):
    """``|left - right| <= max_abs`` after parsing both values as numbers."""

    kind: Literal["numeric_distance"]
    max_abs: float = Field(gt=0)


class NamesSwappedLevel(_Level):
    """``column_l == other_r`` and ``other_l == column_r`` (e.g. given and family name swapped); with a
    ``threshold``, both crossings at least that Jaro-Winkler similar (swapped, and one or both mistyped)."""

    kind: Literal["names_swapped"]
    other: str
    threshold: float | None = Field(default=None, gt=0, le=1)


class InitialLevel(_Level):
    """Both values start with the same character: an initial against the whole name, or two names of one initial."""

    kind: Literal["initial"]


Level = Annotated[
    Union[
        ExactLevel,
        JaroWinklerLevel,
        JaroLevel,
        LevenshteinLevel,
        DamerauLevenshteinLevel,
        DateTransposedLevel,
        DateTypoLevel,
        DateDayMonthLevel,
        DateAsWrittenLevel,
        DateDistanceLevel,
        NumericDistanceLevel,
        NamesSwappedLevel,
        InitialLevel,
    ],
    Field(discriminator="kind"),
]
LEVEL_KINDS: tuple[str, ...] = (
    "exact",
    "jaro_winkler",
    "jaro",
    "levenshtein",
    "damerau_levenshtein",
    "date_transposed",
    "date_typo",
    "date_day_month",
    "date_as_written",
    "date_distance",
    "numeric_distance",
    "names_swapped",
    "initial",
)
_DATE_KINDS = frozenset({"date_transposed", "date_typo", "date_day_month", "date_distance"})
_STRING_KINDS = frozenset({"jaro_winkler", "jaro", "levenshtein", "damerau_levenshtein", "names_swapped", "initial"})


class Comparison(_Frozen):
    """One attribute's evidence: gamma -1 missing, 0 else, K..1 for ``levels`` (first = K = strongest).

    Each level reads ``column`` unless it names its own. Missing (-1) means
    no level can be judged: for every level, its column is null on either
    side (``names_swapped`` also needs its ``other`` column on both sides).
    """

    name: Identifier
    column: str
    levels: list[Level] = Field(min_length=1)
    term_frequency: bool = False

    @field_validator("column")
    @classmethod
    def _column_is_attribute(cls, value: str) -> str:
        if value not in CANONICAL_ATTRIBUTES:
            raise ValueError(f"unknown attribute {value!r}; expected one of {', '.join(CANONICAL_ATTRIBUTES)}")
        return value

    @model_validator(mode="after")
    def _levels_fit_column(self) -> Comparison:
        for index, level in enumerate(self.levels):
            where = f"levels[{index}]"
            column = self.level_column(level)
            if level.kind in _DATE_KINDS and column not in DATE_ATTRIBUTES:
                raise ValueError(f"{where}: {level.kind} needs a date attribute, not {column!r}")
            if level.kind in _STRING_KINDS and column in DATE_ATTRIBUTES:
                raise ValueError(f"{where}: {level.kind} needs a string attribute, not {column!r}")
            if (level.kind == "date_as_written") != (column in WRITTEN_DATE_ATTRIBUTES):
                raise ValueError(
                    f"{where}: date_as_written reads a date as written ({', '.join(sorted(WRITTEN_DATE_ATTRIBUTES))}) "
                    f"and nothing else does, not {column!r}"
                )
            if isinstance(level, NamesSwappedLevel):
                if level.other not in STRING_ATTRIBUTES or level.other == column:
                    raise ValueError(
                        f"{where}.other: {level.other!r} must be a string attribute other than {column!r}"
                    )
        return self

    def level_column(self, level: Level) -> str:
        """The attribute ``level`` reads."""
        return level.column or self.column

    def level_columns(self, level: Level) -> tuple[str, ...]:
        """Every attribute ``level`` reads: its column, and ``other`` for ``names_swapped``."""
        column = self.level_column(level)
        return (column, level.other) if isinstance(level, NamesSwappedLevel) else (column,)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every attribute the comparison reads, ``column`` first."""
        return tuple(dict.fromkeys([self.column, *[c for lv in self.levels for c in self.level_columns(lv)]]))


class HouseholdSettings(_Frozen):
    """Relatives share ``key`` (a family name comparison) and the ``shared`` comparisons (address,
    phone, email), not ``own`` (the given name first, then the birth date, an identifier). See
    ``matching.fellegi_sunter.household_u`` and ``household_pairs``."""

    key: str
    own: list[str] = Field(min_length=1)
    shared: list[str] = Field(min_length=1)


class ModelSettings(_Frozen):
    """Model kind and Fellegi-Sunter training.

    ``em_sessions``: each lists comparisons; EM over the candidate pairs that
    agree exactly on all of them re-estimates m of the other comparisons
    (Splink's training on blocking rules). Pairs that agree on the identity
    attributes are nearly all true matches or near relatives, so m of
    disagreement is not inflated by households that share every contact detail.

    ``identity``: the comparisons that tell one person from another (names,
    birth date, national id), as opposed to what relatives share (address,
    phone). A trained model is checked against them (disagreeing on one must
    cost evidence) and, when it fails the checks, m is taken from pairs that
    agree exactly on several of them (see ``matching.fellegi_sunter.train_checked``).
    """

    kind: Literal["fellegi_sunter", "supervised"] = "fellegi_sunter"
    em_max_iterations: int = Field(default=25, ge=1)
    em_tolerance: float = Field(default=1e-4, gt=0)
    em_sessions: list[list[str]] = []
    identity: list[str] = []
    household: HouseholdSettings | None = None
    u_random_pairs: int = Field(default=1_000_000, ge=1)
    u_first_pairs: int = Field(default=100_000, ge=1)
    # Up to this many records, u's random pairs are drawn and compared in the driver's memory
    # (matching/local_pairs.py) instead of by Spark jobs; 0 always uses Spark. At a million records:
    # 0.9 GiB of the driver's memory.
    u_in_memory_records: int = Field(default=2_000_000, ge=0)
    seed: int = 42


class PlaceholderSettings(_Frozen):
    """Which attributes are checked for placeholder values, and the rule (see ``matching.placeholders``)."""

    attributes: list[str] = []
    ratio: float = Field(default=10.0, gt=1)
    min_records: int = Field(default=10, ge=2)
    max_share: float = Field(default=0.5, gt=0, le=1)

    @field_validator("attributes")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        unknown = [a for a in value if a not in COMPARED_ATTRIBUTES]
        if unknown:
            raise ValueError(f"expected attributes of {', '.join(COMPARED_ATTRIBUTES)}, got {unknown}")
        return value


class Thresholds(_Frozen):
    """Match probability cut-offs: ``>= match`` links, ``[review, match)`` goes to review."""

    match: float = Field(default=0.7, gt=0, lt=1)
    review: float = Field(default=0.5, gt=0, lt=1)

    @model_validator(mode="after")
    def _review_below_match(self) -> Thresholds:
        if self.review >= self.match:
            raise ValueError(f"review: {self.review} must be below match ({self.match})")
        return self


class MatchSettings(_Frozen):
    """Everything the match stage needs; build with ``load_settings`` or ``model_validate``."""

    link_type: Literal["dedupe_only", "link_only", "link_and_dedupe"] = "dedupe_only"
    blocking_rules: list[BlockingRule] = Field(min_length=1)
    max_block_size: int = Field(default=500, ge=2)
    sub_block_key: str | None = None
    max_pairs_per_record: float | None = Field(default=None, gt=0)
    min_pair_budget: int = Field(default=0, ge=0)
    comparisons: list[Comparison] = Field(min_length=1)
    model: ModelSettings = ModelSettings()
    thresholds: Thresholds = Thresholds()
    placeholders: PlaceholderSettings = PlaceholderSettings()

    @field_validator("sub_block_key")
    @classmethod
    def _sub_key_reads_known_columns(cls, value: str | None) -> str | None:
        return None if value is None else _check_key_expression(value)

    @model_validator(mode="after")
    def _names_unique(self) -> MatchSettings:
        for label, names in (
            ("blocking_rules", [r.name for r in self.blocking_rules]),
            ("comparisons", [c.name for c in self.comparisons]),
        ):
            duplicates = sorted({n for n in names if names.count(n) > 1})
            if duplicates:
                raise ValueError(f"{label}: duplicate names {duplicates}")
        return self

    @model_validator(mode="after")
    def _sessions_name_comparisons(self) -> MatchSettings:
        known = [c.name for c in self.comparisons]
        for index, session in enumerate(self.model.em_sessions):
            unknown = [name for name in session if name not in known]
            if unknown or not session:
                raise ValueError(
                    f"model.em_sessions[{index}]: expected one or more of {', '.join(known)}, got {session}"
                )
        unknown = [name for name in self.model.identity if name not in known]
        if unknown:
            raise ValueError(f"model.identity: expected comparisons among {', '.join(known)}, got {unknown}")
        household = self.model.household
        if household is not None:
            unknown = [n for n in (household.key, *household.own, *household.shared) if n not in known]
            if unknown:
                raise ValueError(f"model.household: expected comparisons among {', '.join(known)}, got {unknown}")
        return self

    @property
    def tf_comparisons(self) -> tuple[Comparison, ...]:
        """Comparisons that carry a term-frequency column ``tf_<name>``."""
        return tuple(c for c in self.comparisons if c.term_frequency)


def _key_path(loc: tuple[int | str, ...]) -> str:
    """``('comparisons', 1, 'levels', 0, 'jaro_winkler', 'threshold')`` -> ``comparisons[1].levels[0].threshold``.

    Pydantic puts the discriminator tag of a union member into the location; it is dropped.
    """
    path = ""
    for index, part in enumerate(loc):
        if isinstance(part, int):
            path += f"[{part}]"
        elif part in LEVEL_KINDS and index > 0 and isinstance(loc[index - 1], int):
            continue
        else:
            path += f".{part}" if path else str(part)
    return path


def _describe(error: dict[str, Any]) -> str:
    """One error as ``<key path>: <problem>``.

    Model-level validators name the sub-key they blame at the start of their
    message (``levels[0]: ...``); it is joined onto the location here.
    """
    path = _key_path(tuple(error["loc"]))
    if error["type"] == "union_tag_invalid":
        problem = f"unknown level kind {error['ctx']['tag']!r}; expected one of {', '.join(LEVEL_KINDS)}"
        return f"{path}.kind: {problem}"
    if error["type"] == "union_tag_not_found":
        return f"{path}.kind: missing; expected one of {', '.join(LEVEL_KINDS)}"
    problem = str(error["msg"]).removeprefix("Value error, ")
    sub_key = _SUB_KEY.match(problem)
    if sub_key:
        path = f"{path}.{sub_key.group(1)}" if path else sub_key.group(1)
        problem = problem[sub_key.end():]
    return f"{path}: {problem}" if path else problem


def parse_settings(data: Any, source: str) -> MatchSettings:
    """Validate ``data`` into settings; errors read ``<source>: <key path>: <problem>``."""
    try:
        return MatchSettings.model_validate(data)
    except ValidationError as exc:
        raise SettingsError("\n".join(f"{source}: {_describe(e)}" for e in exc.errors())) from None


def load_settings(path: Path) -> MatchSettings:
    """Read and validate a matching settings YAML file."""
    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise SettingsError(f"{path}: {exc}") from None
    return parse_settings(data, str(path))
