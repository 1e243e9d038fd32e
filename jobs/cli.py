"""``cdi``: one command line for every job.

Exit codes (see ``config/errors.py``): 0 done, 1 internal error, 2 config error,
3 source unreachable or not as configured, 4 validation stopped the run,
5 the lake is locked by another run.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path
from typing import Callable, NoReturn, Sequence

from config.errors import CdiError, ConfigError

log = logging.getLogger("cdi")

DEFAULT_CONFIG = os.environ.get("CDI_CONFIG", "conf/cdi.yaml")


def _add_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config",
        default=DEFAULT_CONFIG,
        help="pipeline config file (default: $CDI_CONFIG or conf/cdi.yaml)",
    )


def _add_run_id(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--run-id",
        help="id of this run; re-using a finished run's id adds nothing (default: a new time-based id)",
    )


def cmd_demo_data(args: argparse.Namespace) -> int:
    from demo.generator import generate

    summary = generate(Path(args.out), customers=args.customers, seed=args.seed)
    print(f"demo sources for {summary.customers} customers written to {summary.out_dir}:")
    for source, rows in summary.rows_per_source.items():
        print(f"  {source:<14} {rows:>9} rows")
    for activity, rows in summary.rows_per_activity.items():
        print(f"  {activity:<32} {rows:>9} activity rows")
    print(f"  ground truth   {summary.truth_path} (read only by `cdi evaluate`)")
    return 0


def _session_and_context(args: argparse.Namespace):
    from config.pipeline import load_pipeline_config

    config = load_pipeline_config(args.config)
    starting = _start_session(args, config)
    context = _start(
        args,
        config,
        incremental=getattr(args, "incremental", False),
        model_path=Path(args.model) if getattr(args, "model", None) else None,
    )
    return _session(starting, context), context


def _start_session(args: argparse.Namespace, config):
    """The SparkSession, starting in the background while the rest of the configuration is parsed."""
    from jobs.spark import SessionStart

    return SessionStart(config.spark, args.spark_log)


def _start(args: argparse.Namespace, config, **options):
    """The run's context: every configuration file parsed (a ConfigError, exit 2, before anything is written)."""
    from jobs.runs import RunContext

    return RunContext.create(config, args.run_id, **options)


def _session(starting, context):
    """The SparkSession, once the matching settings' expressions resolve in it (nothing is written before)."""
    from jobs.preflight import check_match_expressions

    spark = starting.session()
    check_match_expressions(spark, context.settings.matching, context.config.matching)
    return spark


def cmd_ingest(args: argparse.Namespace) -> int:
    from jobs.activities import ingest_activities
    from jobs.ingest import format_ingest, ingest
    from jobs.lock import lake_lock

    spark, context = _session_and_context(args)
    with lake_lock(context.lake, context.run_id):
        results = ingest(
            spark, context.config, context.lake, context.run_id, context.started_at, context.incremental,
            tuple(args.source),
        )
        results += ingest_activities(spark, context, tuple(args.source))
    print(f"run {context.run_id}: bronze tables under {context.lake.path('bronze')}")
    print(format_ingest(results))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from jobs.stages import STAGES, parse_stages

    stages = parse_stages(args.stages) if args.stages else STAGES
    spark, context = _session_and_context(args)
    if args.dry_run:
        from jobs.dry_run import dry_run

        print("\n".join(dry_run(spark, context, stages)))
        return 0
    _run_stages(spark, context, stages)
    return 0


def _run_stages(spark, context, stages: tuple[str, ...]) -> None:
    # Imported here, once the session is starting: the pipeline imports every stage's module.
    from jobs.pipeline import run_pipeline

    run_pipeline(spark, context, stages)


def cmd_evaluate(args: argparse.Namespace) -> int:
    from config.pipeline import load_pipeline_config
    from jobs.evaluate import evaluate_lake, format_evaluation, read_truth

    config = load_pipeline_config(args.config)
    single = config.sources[0].name if len(config.sources) == 1 else None
    result = evaluate_lake(config.lake, read_truth(Path(args.truth), single))
    print(format_evaluation(result))
    return 0


def cmd_dedupe(args: argparse.Namespace) -> int:
    from jobs.dedupe import dedupe_config, format_plan, plan_dedupe
    from jobs.stages import MATCH_STAGES

    out = Path(args.out)
    plan = plan_dedupe(Path(args.file), args.id, args.map, args.day_first)
    print(format_plan(plan), flush=True)
    config = dedupe_config(plan, out, args.region)
    starting = _start_session(args, config)
    context = _start(args, config)
    _run_stages(_session(starting, context), context, MATCH_STAGES)
    print(_write_clusters(config, out, numbered=plan.numbered))
    rejected = _write_rejected(config, out, context.run_id)
    if rejected:
        print(rejected)
    return 0


def _write_clusters(config, out: Path, numbered: bool) -> str:
    """``clusters.csv``: each input record's id (or row number) beside its golden id, from the published lake."""
    import pandas as pd

    from jobs.dedupe import SOURCE_NAME
    from jobs.evaluate import predicted_assignment

    assignment = predicted_assignment(config.lake)
    prefix = SOURCE_NAME + ":"
    clusters = pd.DataFrame(
        {"record_id": [i.removeprefix(prefix) for i in assignment.index], "golden_id": assignment.to_numpy()}
    ).sort_values("record_id", key=(lambda ids: ids.astype("int64")) if numbered else None)
    clusters.to_csv(out / "clusters.csv", index=False)
    records, customers = len(clusters), clusters["golden_id"].nunique()
    return (
        f"{records} record{'s' * (records != 1)} → {customers} customer{'s' * (customers != 1)}: "
        f"{out / 'clusters.csv'}"
    )


def _write_rejected(config, out: Path, run_id: str) -> str | None:
    """``rejected.csv``: the rows of the file this run quarantined, with the stage, check and reason, and the
    row as read (a quote left open holds the rows after it); with ``clusters.csv`` every row is accounted for."""
    from deltalake import DeltaTable
    from deltalake.exceptions import TableNotFoundError

    from config.lake import Lake

    (out / "rejected.csv").unlink(missing_ok=True)  # an earlier run's into the same folder
    try:
        quarantine = DeltaTable(Lake.at(config.lake).quarantine).to_pandas(
            columns=["run_id", "stage", "source_key", "check", "reason", "record"]
        )
    except TableNotFoundError:
        return None
    rows = quarantine[quarantine["run_id"] == run_id].drop(columns="run_id").rename(columns={"source_key": "record_id"})
    if rows.empty:
        return None
    rows.to_csv(out / "rejected.csv", index=False)
    return f"{len(rows)} row{'s' * (len(rows) != 1)} rejected, each with its reason: {out / 'rejected.csv'}"


def cmd_blocking_report(args: argparse.Namespace) -> int:
    from jobs.delta_io import read_table
    from matching.blocking import blocking_report, format_blocking_report, format_refinements, refine_rules
    from matching.settings import load_settings

    spark, context = _session_and_context(args)
    settings = load_settings(Path(args.settings or context.config.matching))
    records = read_table(spark, context.lake.customers_std).persist()
    settings, refinements, _ = refine_rules(records, settings)
    if refinements:
        print(format_refinements(refinements) + "\n")
    print(format_blocking_report(blocking_report(records, settings)))
    return 0


def cmd_show(args: argparse.Namespace) -> int:
    from config.pipeline import load_pipeline_config
    from config.lake import Lake
    from jobs.showcase import showcase

    print(showcase(Lake.at(load_pipeline_config(args.config).lake), args.count))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from config.lake import Lake
    from config.pipeline import load_pipeline_config
    from jobs.export import check_destination, export_segments, format_export, parse_segments

    segments = parse_segments(args.segment)
    check_destination(Path(args.to), args.overwrite)
    config = load_pipeline_config(args.config)
    print(format_export(export_segments(Lake.at(config.lake), segments, Path(args.to), args.overwrite)))
    return 0


def cmd_maintain(args: argparse.Namespace) -> int:
    from config.lake import Lake
    from config.pipeline import load_pipeline_config
    from jobs.maintain import format_maintain, maintain, maintenance_run_id
    from jobs.pipeline import size_to_lake
    from jobs.spark import build_session

    config = load_pipeline_config(args.config)
    spark = build_session(config.spark, args.spark_log)
    size_to_lake(spark, Lake.at(config.lake), config.spark)
    print(format_maintain(maintain(spark, config, maintenance_run_id(), args.dry_run)))
    return 0


def _erasure_request(args: argparse.Namespace):
    """The people ``cdi erase`` names: ``--golden-id``, ``--source``/``--key`` pairs and ``--file``."""
    from jobs.erase import ErasureRequest, read_request_file

    if len(args.source) != len(args.key):
        raise ConfigError("--source and --key go in pairs: give one --source before each --key")
    golden_ids, keys = list(args.golden_id), list(zip(args.source, args.key))
    if args.file:
        more_ids, more_keys = read_request_file(Path(args.file))
        golden_ids += more_ids
        keys += more_keys
    if not golden_ids and not keys:
        raise ConfigError("name whom to erase: --golden-id, --source with --key, or --file")
    if not args.reason.strip():
        raise ConfigError("--reason must say why (a ticket or request reference; no personal data)")
    return ErasureRequest(args.reason.strip(), args.requested_by, tuple(golden_ids), tuple(keys))


def cmd_erase(args: argparse.Namespace) -> int:
    from config.pipeline import load_pipeline_config
    from jobs.erase import erase, format_erasure
    from jobs.lock import lake_lock
    from jobs.pipeline import size_to_lake
    from jobs.runs import RunContext, new_run_id
    from jobs.spark import build_session

    request = _erasure_request(args)
    config = load_pipeline_config(args.config)
    context = RunContext.create(config, f"erase-{new_run_id()}")
    spark = build_session(config.spark, args.spark_log)
    size_to_lake(spark, context.lake, config.spark)
    if args.dry_run:
        outcome = erase(spark, context, request, dry_run=True)
    else:
        with lake_lock(context.lake, context.run_id):
            outcome = erase(spark, context, request)
    print(format_erasure(outcome))
    return 0


def cmd_suppressions(args: argparse.Namespace) -> int:
    from datetime import datetime, timezone

    from config.lake import Lake
    from config.pipeline import load_pipeline_config
    from jobs.lock import lake_lock
    from jobs.spark import build_session
    from jobs.suppressions import format_suppressions, lift_suppressions, list_suppressions

    if args.lift and not args.by:
        raise ConfigError("--lift needs --by NAME: who lifts the suppression")
    config = load_pipeline_config(args.config)
    lake = Lake.at(config.lake)
    spark = build_session(config.spark, args.spark_log)
    if args.lift:
        with lake_lock(lake, f"lift-{args.lift}"):
            lifted = lift_suppressions(spark, lake, args.lift, args.by, datetime.now(timezone.utc))
        print(f"erasure {args.lift}: {lifted} key(s) no longer suppressed; the next full (not --incremental) "
              "ingest lands them again if the sources still hold them")
        return 0
    print(format_suppressions(list_suppressions(spark, lake)))
    return 0


def _steward_settings(args: argparse.Namespace):
    from config.pipeline import load_pipeline_config
    from steward.config import StewardConfigError, StewardSettings, session_secret_from_env

    config = load_pipeline_config(args.config)
    try:
        return StewardSettings(
            lake=config.lake,
            matching=Path(config.matching),
            stewards=Path(args.stewards),
            session_secret=session_secret_from_env(),
            secure_cookies=not args.insecure_http,
        )
    except StewardConfigError as exc:
        raise ConfigError(str(exc)) from None


def cmd_serve(args: argparse.Namespace) -> int:
    from steward.app import check_transport, serve
    from steward.config import StewardConfigError

    settings = _steward_settings(args)
    try:
        check_transport(settings, args.host)
    except StewardConfigError as exc:
        raise ConfigError(str(exc)) from None
    serve(settings, host=args.host, port=args.port)
    return 0


def cmd_end_sessions(args: argparse.Namespace) -> int:
    from steward.config import state_path_of
    from steward.sessions import end_sessions

    ended = end_sessions(state_path_of(Path(args.stewards)), args.user)
    print(f"{ended} session(s) ended" + (f" for {args.user}" if args.user else ""))
    return 0


def cmd_create_user(args: argparse.Namespace) -> int:
    import getpass

    from steward.config import StewardConfigError, create_user

    password = os.environ.get("CDI_NEW_PASSWORD") or getpass.getpass(f"password for {args.username}: ")
    if "CDI_NEW_PASSWORD" not in os.environ and password != getpass.getpass("again: "):
        raise ConfigError("the two passwords differ")
    try:
        create_user(Path(args.stewards), args.username, args.role, password)
    except StewardConfigError as exc:
        raise ConfigError(str(exc)) from None
    print(f"{args.username} ({args.role}) written to {args.stewards}")
    return 0


def cmd_create_token(args: argparse.Namespace) -> int:
    from steward.config import StewardConfigError, create_api_token

    try:
        token = create_api_token(Path(args.stewards), args.name, scope=args.scope, expires_days=args.expires,
                                 rate_per_minute=args.rate)
    except StewardConfigError as exc:
        raise ConfigError(str(exc)) from None
    print(f"read-only API token {args.name!r}, scope {args.scope}, expires in {args.expires:g} days, "
          f"{args.rate} requests/minute (shown once, only its SHA-256 is stored):\n{token}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cdi",
        description="Customer data integration: ingest departmental sources, standardize, validate, "
        "match and merge duplicates, publish golden customers to a Delta lake.",
        epilog="Exit codes: 0 ok, 1 internal error, 2 config error, 3 source unreachable, "
        "4 validation stopped the run, 5 lake locked by another run.",
    )
    parser.add_argument("--log-format", choices=("text", "json"), default="text", help="log lines as text or JSON")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, and Spark's own warnings on the terminal (else in $CDI_SPARK_LOG or a temp file)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser(
        "demo-data",
        help="generate demo departmental sources (SQLite, CSV, JSON lines) and their ground truth",
        description="Write four departmental sources that disagree the way real ones do "
        "(Sales CRM and Billing as SQLite, Support desk CSV, Web shop JSON lines) plus truth.csv.",
    )
    demo.add_argument("--out", default="demo_data", help="output folder (default: demo_data)")
    demo.add_argument("--customers", type=int, default=1000, help="number of real people (default: 1000)")
    demo.add_argument("--seed", type=int, default=42, help="random seed; same seed, same files (default: 42)")
    demo.set_defaults(handler=cmd_demo_data)

    ing = sub.add_parser(
        "ingest",
        help="land every configured source in a bronze Delta table, with lineage",
        description="Read each source with Spark and append new or changed rows to bronze/<source>; "
        "rejected rows go to quarantine with a reason.",
    )
    _add_config(ing)
    _add_run_id(ing)
    ing.add_argument("--incremental", action="store_true", help="read only rows past each source's stored watermark")
    ing.add_argument("--source", action="append", default=[], help="only this source (repeatable)")
    ing.set_defaults(handler=cmd_ingest)

    run = sub.add_parser(
        "run",
        help="run the pipeline: ingest → standardize → validate → match → publish",
        description="Run the pipeline stages in order for one run id.",
    )
    _add_config(run)
    _add_run_id(run)
    run.add_argument(
        "--incremental",
        action="store_true",
        help="ingest only rows past each stored watermark; match only new or changed records, with the last full run's model",
    )
    run.add_argument("--model", help="score with this saved model.json instead of training a new one")
    run.add_argument("--stages", help="a contiguous range or list of stages, e.g. 'ingest-validate' or 'match,publish'")
    run.add_argument(
        "--dry-run",
        action="store_true",
        help="check config, sources and that the lake is writable; print the plan; write nothing",
    )
    run.set_defaults(handler=cmd_run)

    evaluate = sub.add_parser(
        "evaluate",
        help="accuracy of the last run against a ground-truth file",
        description="Pairwise precision, recall and F1, B-cubed and adjusted Rand index of the published "
        "golden ids (or the last clusters) against a truth CSV (entity_id plus source_system and source_key, "
        "or record_id for a one-source lake); blocking recall and candidate pairs per record of the last "
        "match stage's candidate pairs.",
    )
    _add_config(evaluate)
    evaluate.add_argument("--truth", required=True, help="ground-truth CSV")
    evaluate.set_defaults(handler=cmd_evaluate)

    dedupe = sub.add_parser(
        "dedupe",
        help="deduplicate one CSV or Parquet file with default settings",
        description="Run the whole pipeline on one file into OUT/lake and write OUT/clusters.csv "
        "(record_id,golden_id). Columns with common names (first_name, surname, dob, email, zip, ...) are "
        "mapped to canonical attributes from the header; the proposed mapping is printed before the run, "
        "and --map SOURCE_COLUMN=attribute changes any part of it.",
    )
    dedupe.add_argument(
        "file",
        help="a CSV file with a header (.csv, .tsv or .txt, gzipped too; its encoding and delimiter are guessed) "
        "or a .parquet file",
    )
    dedupe.add_argument("--id", help="the column that identifies a record (default: a column named id, "
                        "record_id, rec_id, key, record_key or customer_id, else one whose values are unique)")
    dedupe.add_argument("--map", action="append", default=[], metavar="SOURCE_COLUMN=ATTRIBUTE",
                        help="map a column to a canonical attribute, or to 'none' to leave it out of "
                        "matching; overrides the mapping proposed from the header (repeatable)")
    dedupe.add_argument("--out", required=True, help="output folder")
    dedupe.add_argument("--region", default="GB", help="default phone region (ISO 3166 alpha-2, default GB)")
    order = dedupe.add_mutually_exclusive_group()
    order.add_argument("--day-first", dest="day_first", action="store_const", const=True,
                       help="read 03/04/1990 as 3 April (default: the order most of the file's unambiguous "
                       "birth dates are written in, else day first)")
    order.add_argument("--month-first", dest="day_first", action="store_const", const=False,
                       help="read 03/04/1990 as 4 March")
    _add_run_id(dedupe)
    dedupe.set_defaults(handler=cmd_dedupe)

    report = sub.add_parser(
        "blocking-report",
        help="pairs each blocking rule would produce, before any comparison runs",
        description="Count, from block sizes alone, the candidate pairs each blocking rule produces on "
        "customers_std (after the pair budget's refinements, which it lists first), and the largest "
        "blocks, so rules can be tuned on big data.",
    )
    _add_config(report)
    report.add_argument("--settings", help="matching settings (default: the config's `matching`)")
    report.set_defaults(handler=cmd_blocking_report, run_id=None)

    show = sub.add_parser(
        "show",
        help="print a few golden records beside their source records",
        description="Read the published tables with delta-rs and print golden records with where each value came from.",
    )
    _add_config(show)
    show.add_argument("--count", type=int, default=3, help="how many golden records (default 3)")
    show.set_defaults(handler=cmd_show)

    export = sub.add_parser(
        "export",
        help="write the golden customers of some segments, with their 360 figures, to a Parquet or CSV file",
        description="Join gold/customer_360 with the last published golden records and write the customers of "
        "the given segments (golden id, name, email, phone and address columns, segment, recency_days, "
        "frequency_365d, monetary; monetary as JSON text in a CSV) to one file. Reads with delta-rs, no Spark.",
    )
    _add_config(export)
    export.add_argument("--segment", action="append", required=True,
                        help="new, active, lapsing, lost, none or undated (repeatable, or a comma list)")
    export.add_argument("--to", required=True, metavar="FILE", help="the output: a .parquet or .csv file")
    export.add_argument("--overwrite", action="store_true", help="replace FILE when it exists")
    export.set_defaults(handler=cmd_export)

    maint = sub.add_parser(
        "maintain",
        help="compact and vacuum every table, drop old run folders (retention from the config)",
        description="OPTIMIZE and VACUUM every Delta table of the lake, keeping retention.vacuum_hours of history "
        "and never less than the last publication and the incremental match still read; delete run folders "
        "older than retention.run_folder_days, never the latest. Holds the lake lock.",
    )
    _add_config(maint)
    maint.add_argument("--dry-run", action="store_true", help="print what it would do; change nothing, take no lock")
    maint.set_defaults(handler=cmd_maintain)

    erase = sub.add_parser(
        "erase",
        help="remove every value of a person from the lake, its Delta history and its run folders",
        description="Erase golden customers (every source record ever linked to them) or source records from "
        "bronze, silver, gold, quarantine, the review queue and steward decisions; redact the run folders; "
        "VACUUM the tables at 0 hours so no older version keeps the values; put the keys on the suppression "
        "list; record the erasure in ops/erasure_log (no personal value). Holds the lake lock. "
        "Time travel and the change feed before the erasure stop working.",
    )
    _add_config(erase)
    erase.add_argument("--golden-id", action="append", default=[], help="a golden customer to erase (repeatable)")
    erase.add_argument("--source", action="append", default=[], help="source system of the --key that follows (repeatable)")
    erase.add_argument("--key", action="append", default=[],
                       help="a source key; its whole golden customer is erased (repeatable, after --source)")
    erase.add_argument("--file", help="CSV with a header: golden_id, or source_system,source_key")
    erase.add_argument("--reason", required=True,
                       help="why (a ticket or request reference), kept in ops/erasure_log: no personal data")
    erase.add_argument("--requested-by", default=os.environ.get("USER") or "unknown",
                       help="who asked for the erasure (default: $USER)")
    erase.add_argument("--dry-run", action="store_true", help="print what would be erased, table by table; write nothing")
    erase.set_defaults(handler=cmd_erase)

    suppressions = sub.add_parser(
        "suppressions",
        help="list the erased keys ingest skips, or lift an erasure's suppression",
        description="Without --lift: one line per erasure and source with the number of suppressed keys and "
        "whether they were lifted. With --lift ERASURE_ID --by NAME: the next full ingest lands those keys again.",
    )
    _add_config(suppressions)
    suppressions.add_argument("--lift", metavar="ERASURE_ID", help="lift every suppression this erasure added")
    suppressions.add_argument("--by", metavar="NAME", help="who lifts it (required with --lift)")
    suppressions.set_defaults(handler=cmd_suppressions)

    stewards_default = os.environ.get("CDI_STEWARDS", "conf/stewards.yaml")
    serve = sub.add_parser(
        "serve",
        help="the steward review app (browser UI + read API)",
        description="Serve the review queue, golden record search and /api/v1 on 127.0.0.1. "
        "Needs CDI_SESSION_SECRET (32+ characters); users come from the stewards file.",
    )
    _add_config(serve)
    serve.add_argument("--stewards", default=stewards_default,
                       help="users/tokens YAML (default: $CDI_STEWARDS or conf/stewards.yaml)")
    serve.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default 8765)")
    serve.add_argument("--insecure-http", action="store_true",
                       help="plain HTTP: no Secure cookie, no HSTS; only with a loopback --host (local trials)")
    serve.set_defaults(handler=cmd_serve)

    user = sub.add_parser(
        "create-user",
        help="add a review app user or change its role/password",
        description="Write a user with an argon2 password hash to the stewards file. The password is asked "
        "for twice, or taken from CDI_NEW_PASSWORD for scripts.",
    )
    user.add_argument("username")
    user.add_argument("--role", choices=("viewer", "steward", "admin"), required=True)
    user.add_argument("--stewards", default=stewards_default)
    user.set_defaults(handler=cmd_create_user)

    token = sub.add_parser("create-token", help="add a read-only API token (printed once)")
    token.add_argument("name")
    token.add_argument("--scope", choices=("lookup", "changes", "read"), default="lookup",
                       help="lookup: golden records, xref and search; changes: the change feed; read: both "
                       "(default lookup)")
    token.add_argument("--expires", type=float, default=90, metavar="DAYS", help="valid for DAYS days (default 90)")
    token.add_argument("--rate", type=int, default=600, metavar="N", help="at most N requests a minute (default 600)")
    token.add_argument("--stewards", default=stewards_default)
    token.set_defaults(handler=cmd_create_token)

    end = sub.add_parser("end-sessions", help="log everyone (or one user) out of the review app at once",
                         description="Ends the review app's sessions, while it runs or not: every session, "
                         "or with --user only that user's.")
    end.add_argument("--user", help="only this user's sessions")
    end.add_argument("--stewards", default=stewards_default)
    end.set_defaults(handler=cmd_end_sessions)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    from jobs.logs import configure_logging
    from jobs.progress import progress
    from jobs.spark import default_spark_log

    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_format, args.verbose)
    args.spark_log = None if args.verbose else default_spark_log()
    progress.configure(False if args.log_format == "json" else None)
    handler: Callable[[argparse.Namespace], int] = args.handler
    try:
        return handler(args)
    except CdiError as exc:
        print(f"cdi: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("cdi: interrupted", file=sys.stderr)
        return 130
    except Exception:
        log.exception("internal error")
        where = f"; Spark's own messages: {args.spark_log}" if args.spark_log else ""
        print(f"cdi: internal error (see the log above{where})", file=sys.stderr)
        return 1


def run() -> NoReturn:
    """The ``cdi`` command: ``main``, then the process ends at once with its exit code, output flushed.

    The interpreter's teardown is skipped. delta-rs 1.6's table readers leave
    native threads behind that abort the process while it tears down
    (``terminate called without an active exception``, exit 134): seen here
    after one ``cdi dedupe`` in six, and after a third of bare
    ``DeltaTable(...).to_pandas()`` scripts, every time after the work had
    succeeded. A scheduler must see the command's own exit code.
    """
    try:
        code = main()
    except SystemExit as stop:  # argparse's --help and usage errors
        if stop.code is None or isinstance(stop.code, int):
            code = stop.code or 0
        else:
            print(stop.code, file=sys.stderr)
            code = 1
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    run()
