"""The match model: comparison vectors, u from random pairs, EM or supervised training, scoring."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import replace

import numpy as np
import pandas as pd
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import DoubleType, StructField, StructType

from jobs.progress import progress
from jobs.steps import step
from matching.blocking import (
    possible_pairs,
    random_pairs,
)
from matching.compare import (
    attach_for_settings,
    compare_pairs,
    comparison_columns,
    comparison_levels,
    term_frequencies,
    tf_columns,
    tf_comparisons,
)
from matching.fellegi_sunter import (
    MISSING,
    TF_MAX_ADJUSTMENT,
    ComparisonParameters,
    FellegiSunterModel,
    Household,
    Strangers,
    TrainingReport,
    consistent_prior,
    estimate_u,
    gamma_column,
    random_pair_prior,
    tf_column,
    train_checked,
    u_sample_sizes,
    u_settled,
    untrained_model,
    weight_column,
)
from matching.local_pairs import draw_pairs
from matching.local_pairs import pattern_counts as local_pattern_counts
from matching.model_io import MatchModel, TermFrequencies, score_with
from matching.settings import MatchSettings
from matching.supervised import train_supervised

log = logging.getLogger("cdi.match")

U_LABEL = "estimating u from samples of random pairs"
# How often a wait for u's background draw shows its progress.
PROGRESS_INTERVAL_SECONDS = 0.5

# A supervised model needs at least this many labelled pairs of each class.
MIN_LABELS_PER_CLASS = 10


def distinct_people(records: DataFrame, settings: MatchSettings) -> DataFrame:
    """``record_id``, ``source_system`` and the compared attributes of one record (the lowest id) of each set
    of records identical on every compared attribute.

    u and the term frequencies are measured on these: a file holding one person's row 600 times would
    otherwise make that person's values look common among people, and agreeing on them weak evidence.
    """
    columns = comparison_columns(settings)
    first = F.min(F.struct("record_id", "source_system")).alias("__first")
    return records.groupBy(*columns).agg(first).select("__first.record_id", "__first.source_system", *columns)


def source_sizes(records: DataFrame) -> list[int]:
    """Records per source."""
    return [row["count"] for row in records.groupBy("source_system").count().collect()]


def collect_term_frequencies(records: DataFrame, settings: MatchSettings) -> TermFrequencies:
    """Every term-frequency column's value shares, collected to freeze them into the model."""
    frequencies: TermFrequencies = {}
    for column in tf_columns(settings):
        shares = term_frequencies(records, column).toPandas()
        frequencies[column] = {str(v): float(s) for v, s in zip(shares[column], shares[f"tf_{column}"])}
    return frequencies


def comparison_vectors(
    pairs: DataFrame, records: DataFrame, settings: MatchSettings, frequencies: TermFrequencies
) -> DataFrame:
    return compare_pairs(attach_for_settings(pairs, records, settings, frequencies), settings)


def _gamma_columns(settings: MatchSettings) -> list[str]:
    return [f"gamma_{name}" for name in comparison_levels(settings)]


def pattern_counts(vectors: DataFrame, settings: MatchSettings) -> pd.DataFrame:
    """Distinct comparison patterns with their counts: small, whatever the number of pairs."""
    return vectors.groupBy(*_gamma_columns(settings)).count().toPandas()


def household_of(settings: MatchSettings) -> Household | None:
    household = settings.model.household
    return None if household is None else Household(household.key, tuple(household.own), tuple(household.shared))


def log_training_report(report: TrainingReport) -> None:
    """Warn about an implausible EM model and what was done about it (comparison names and numbers only)."""
    if report.problems:
        log.warning("EM's model was implausible: %s", "; ".join(report.problems))
        if report.recovered:
            log.warning("m re-estimated from anchor pairs (exact agreement on identity comparisons) for: %s",
                        ", ".join(report.recovered))
        elif not report.pooled:
            log.warning("no anchor pairs to re-estimate m from; the model is kept as EM left it")
        if report.pooled:
            log.warning("m pooled over the likely matches of the EM sessions (%.0f candidate pairs)", report.pooled)
        if report.remaining:
            log.warning("still implausible after re-estimation: %s", "; ".join(report.remaining))
    if report.clamped:
        log.info("agreeing levels that counted against a match now count 0: %s", ", ".join(report.clamped))


def random_pair_patterns(
    records: DataFrame,
    settings: MatchSettings,
    frequencies: TermFrequencies,
    source_sizes: list[int],
    report: Callable[[int, int], None] | None = None,
) -> pd.DataFrame:
    """Comparison patterns of random record pairs, drawn in samples of doubling size until u settles.

    See ``matching.fellegi_sunter.u_sample_sizes`` and ``u_settled``: never
    more pairs than the data has, and no more samples once a sample twice as
    big as the last one leaves u where it was. Up to ``u_in_memory_records``
    records, the pairs are drawn and compared in memory (``matching.local_pairs``).
    ``report(samples done, samples planned)`` is called before each sample
    (by default, as the match stage's progress).
    """
    report = report or (lambda done, total: progress.show("match", U_LABEL, done, total))
    link_only = settings.link_type == "link_only"
    levels = comparison_levels(settings)
    possible = possible_pairs(source_sizes, settings.link_type)
    sizes = u_sample_sizes(settings.model.u_first_pairs, settings.model.u_random_pairs, possible)
    in_memory = u_in_memory(settings, source_sizes)
    held = _records_in_memory(records, settings) if in_memory else None
    patterns: pd.DataFrame | None = None
    for number, size in enumerate(sizes or [0]):
        report(number, len(sizes))
        seed = settings.model.seed + 10 * number
        if held is not None:
            pairs = draw_pairs(held["source_system"].to_numpy(dtype=object), size, seed, link_only)
            drawn = local_pattern_counts(held, pairs, list(settings.comparisons), frequencies)
        else:
            sample = random_pairs(records, size, seed, link_only, source_sizes)
            drawn = pattern_counts(comparison_vectors(sample, records, settings, frequencies), settings)
        merged = drawn if patterns is None else _add_patterns(patterns, drawn, settings)
        settled = patterns is not None and u_settled(patterns, merged, levels)
        patterns = merged
        if settled:
            break
    log.info("u from %d random pairs in %d samples%s", int(patterns["count"].sum()), number + 1,
             " (compared in memory)" if in_memory else "")
    return patterns


def u_in_memory(settings: MatchSettings, source_sizes: list[int]) -> bool:
    """Whether u's random pairs are drawn and compared in this process rather than in Spark."""
    return sum(source_sizes) <= settings.model.u_in_memory_records


class RandomPairPatterns:
    """``random_pair_patterns`` for a model about to be trained, started early when it runs in memory.

    Drawn in memory, u's samples are compared in this process (pandas,
    rapidfuzz) while the candidate pairs are compared in Spark's Python
    workers: so the in-memory draw starts on a background thread as soon as
    the records and term frequencies are known, and the match stage compares
    the candidate pairs meanwhile. ``get()`` waits for it, showing its
    progress. Drawn in Spark, it runs in ``get()``: two Spark workloads at
    once would only compete for the same cores.
    """

    def __init__(
        self,
        records: DataFrame,
        settings: MatchSettings,
        frequencies: TermFrequencies,
        source_sizes: list[int],
        record_sizes: list[int] | None = None,
    ) -> None:
        """Pairs are drawn from ``records`` (``source_sizes`` per source); ``record_sizes`` are the records
        per source the prior is for (``source_sizes`` when None), when ``records`` are ``distinct_people``."""
        self.frequencies = frequencies
        self.record_sizes = source_sizes if record_sizes is None else record_sizes
        self._arguments = (records, settings, frequencies, source_sizes)
        self._samples = (0, 0)
        self._patterns: pd.DataFrame | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if u_in_memory(settings, source_sizes) and settings.model.kind != "supervised":
            self._thread = threading.Thread(target=self._draw, name="cdi-u-sample", daemon=True)
            self._thread.start()

    def _draw(self) -> None:
        records = self._arguments[0]
        try:
            with step(records.sparkSession, "match.train.u"):
                self._patterns = random_pair_patterns(*self._arguments, report=self._report)
        except BaseException as error:  # handed to the thread that calls get()
            self._error = error

    def _report(self, done: int, total: int) -> None:
        self._samples = (done, total)

    def get(self) -> pd.DataFrame:
        if self._thread is None:
            with step(self._arguments[0].sparkSession, "match.train.u"):
                return random_pair_patterns(*self._arguments)
        while self._thread.is_alive():
            progress.show("match", U_LABEL, *self._samples)
            self._thread.join(PROGRESS_INTERVAL_SECONDS)
        if self._error is not None:
            raise self._error
        assert self._patterns is not None
        return self._patterns


def _records_in_memory(records: DataFrame, settings: MatchSettings) -> pd.DataFrame:
    """The records' compared attributes as one pandas frame, in ``record_id`` order (the draws then ignore layout)."""
    columns = dict.fromkeys(["record_id", "source_system", *comparison_columns(settings)])
    return records.select(*columns).orderBy("record_id").toPandas()


def _add_patterns(left: pd.DataFrame, right: pd.DataFrame, settings: MatchSettings) -> pd.DataFrame:
    both = pd.concat([left, right], ignore_index=True)
    return both.groupby(_gamma_columns(settings), as_index=False, dropna=False)["count"].sum()


def train_model(
    vectors: DataFrame,
    labelled: DataFrame,
    settings: MatchSettings,
    random_patterns: RandomPairPatterns,
) -> tuple[MatchModel, TrainingReport | None]:
    """Supervised when asked for or when enough steward labels exist; else Fellegi-Sunter with EM (and its report).

    u comes from ``random_patterns``; its ``record_sizes`` are the records per
    source, and u and the prior are for the record pairs the link type allows
    among them.
    """
    levels = comparison_levels(settings)
    labels = labelled.toPandas()
    enough_labels = (
        len(labels) > 0 and labels["is_match"].value_counts().reindex([True, False], fill_value=0).min() >= MIN_LABELS_PER_CLASS
    )
    if settings.model.kind == "supervised" or enough_labels:
        log.info("training the supervised model on %d labelled pairs", len(labels))
        return train_supervised(labels.drop(columns=["is_match"]), labels["is_match"], levels), None
    possible = possible_pairs(random_patterns.record_sizes, settings.link_type)
    random = random_patterns.get()
    with step(vectors.sparkSession, "match.train.patterns"):
        patterns = pattern_counts(vectors, settings)
    if patterns["count"].sum() == 0:
        log.warning("no candidate pairs: nothing to train a model on, and every record is a customer of its own")
        u = estimate_u(random, levels) if random["count"].sum() > 0 else None
        return untrained_model(levels, u, tf_comparisons(settings)), None
    u = estimate_u(random, levels)
    model, report = train_checked(
        patterns,
        levels,
        u,
        settings.model.em_sessions,
        settings.model.identity,
        tf_comparisons=tf_comparisons(settings),
        max_iterations=settings.model.em_max_iterations,
        tolerance=settings.model.em_tolerance,
        household=household_of(settings),
        strangers=Strangers.from_random(random, levels, possible),
    )
    log_training_report(report)
    start = random_pair_prior(model.lambda_, int(patterns["count"].sum()), possible)
    evidence = evidence_counts(vectors, model)
    prior = consistent_prior(evidence["evidence"], evidence["count"], possible, start)
    log.info(
        "EM: %d iterations, converged=%s, match share among candidates %.4g (%.0f expected matches); "
        "prior for a random pair %.4g (%.0f expected matches as the candidates score)",
        model.iterations, model.converged, model.lambda_, start * possible, prior, prior * possible,
    )
    return replace(model, lambda_=prior), report


def evidence_counts(vectors: DataFrame, model: FellegiSunterModel) -> pd.DataFrame:
    """``evidence``, ``count``: the candidates' summed comparison weights in bits, to 1/100 bit, as
    ``score_pairs`` adds them up (term frequencies included), without the prior; small, whatever the pairs."""
    [*_, weight, _] = fellegi_sunter_scores(replace(model, lambda_=0.5), list(model.comparisons))
    return vectors.select(F.round(weight, 2).alias("evidence")).groupBy("evidence").count().toPandas()


def score_pairs(vectors: DataFrame, model: MatchModel, settings: MatchSettings) -> DataFrame:
    """``vectors`` plus ``mw_<c>`` per comparison, ``match_weight`` and ``match_probability``.

    A Fellegi-Sunter model scores in Spark expressions (``fellegi_sunter_scores``), as the pandas ``score``
    does: the pairs do not go through Python (at a million records, 5 million pairs: 21 against 8 s with
    the Delta write, docs/benchmarks.md). A supervised model scores in pandas.
    """
    names = list(comparison_levels(settings))
    if isinstance(model, FellegiSunterModel):
        by_name = {c.name: c for c in model.comparisons}
        return vectors.select("*", *fellegi_sunter_scores(model, [by_name[n] for n in names]))
    schema = StructType(
        [
            *vectors.schema.fields,
            *[StructField(f"mw_{n}", DoubleType(), False) for n in names],
            StructField("match_weight", DoubleType(), False),
            StructField("match_probability", DoubleType(), False),
        ]
    )

    def scored(batches):
        for batch in batches:
            weights = score_with(model, batch)
            yield pd.concat([batch.reset_index(drop=True), weights.reset_index(drop=True)], axis=1)

    return vectors.mapInPandas(scored, schema)


def fellegi_sunter_scores(model: FellegiSunterModel, comparisons: list[ComparisonParameters]) -> list[Column]:
    """``matching.fellegi_sunter.score`` as Spark columns: ``mw_<c>`` for ``comparisons`` (in that order),
    ``match_weight``, ``match_probability``; equal to it up to rounding in the last digits.

    A level outside -1..levels (or null) fails the query, as it fails ``score``. Each column is wrapped in a
    ``coalesce`` that never applies, so Spark types it non-null, as the pandas scores' schema declares it.
    """
    shared = None
    if model.household_key is not None:
        key = F.col(gamma_column(model.comparison(model.household_key).name))
        shared = key >= 1
        if len(model.household_own) > 1:
            first, *others = (model.comparison(name) for name in model.household_own)
            apart = (key == 0) & (F.col(gamma_column(first.name)) == 0)
            present = F.lit(False)
            for c in others:
                level = F.col(gamma_column(c.name))
                apart = apart & (level != c.levels)
                present = present | (level != MISSING)
            shared = shared | (apart & present)
    weights = []
    for parameters in comparisons:
        level = F.col(gamma_column(parameters.name))
        weight = _by_level(level, parameters.weights)
        if shared is not None:
            weight = F.when(shared, _by_level(level, parameters.household_weights)).otherwise(weight)
        if parameters.tf:
            tf = F.col(tf_column(parameters.name))
            usable = (level == parameters.levels) & ~F.isnan(tf) & (tf > 0) & (tf < float("inf"))
            adjustment = F.lit(float(np.log2(parameters.u[-1]))) - F.log2(tf)
            clipped = F.greatest(F.lit(-TF_MAX_ADJUSTMENT), F.least(F.lit(TF_MAX_ADJUSTMENT), adjustment))
            weight = weight + F.when(usable, clipped).otherwise(F.lit(0.0))
        checked = F.when(level.between(MISSING, parameters.levels), weight).otherwise(
            F.raise_error(F.concat(
                F.lit(f"column {gamma_column(parameters.name)!r} has level "), level.cast("string"),
                F.lit(f" outside {MISSING}..{parameters.levels}"),
            ))
        )
        weights.append(F.coalesce(checked, F.lit(0.0)))
    total = F.lit(model.prior_weight)
    for weight in weights:
        total = total + weight
    clipped_total = F.greatest(F.lit(-1000.0), F.least(F.lit(1000.0), total))
    return [
        *[weight.alias(weight_column(p.name)) for weight, p in zip(weights, comparisons)],
        F.coalesce(total, F.lit(0.0)).alias("match_weight"),
        F.coalesce(F.lit(1.0) / (F.lit(1.0) + F.pow(F.lit(2.0), -clipped_total)), F.lit(0.0)).alias("match_probability"),
    ]


def _by_level(level: Column, weights: np.ndarray) -> Column:
    """The weight of ``level`` (0..len - 1) from ``weights``, 0 for a missing level (-1)."""
    chosen = F.lit(0.0)
    for index, value in enumerate(weights):
        chosen = F.when(level == index, F.lit(float(value))).otherwise(chosen)
    return chosen
