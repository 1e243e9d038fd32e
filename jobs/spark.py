"""The one place a SparkSession is built.

Settings come, lowest precedence first, from the built-in defaults below, the
``spark`` section of the pipeline config, and ``CDI_SPARK_MASTER`` /
``CDI_SPARK_REMOTE`` / ``CDI_SPARK_CONF_<key with dots as __>`` environment
variables. Under spark-submit the master and any ``--conf`` given there win,
because Spark itself applies them before this builder runs.

With ``spark.remote`` (``sc://host:port``) the session is a Spark Connect
client: no driver JVM starts here, and only the SQL settings (``spark.sql.*``,
``spark.databricks.*``) are sent to the server, for this session; the server
itself must run with Delta's SQL extension and catalog and Python workers that
can import cdi (docs/operations.md).
"""

from __future__ import annotations

import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Mapping

from pyspark.sql import SparkSession

PROJECT_ROOT = Path(__file__).resolve().parents[1]
JARS_CACHE = Path(os.environ.get("CDI_IVY_DIR", PROJECT_ROOT / ".ivy"))
LOG4J_CONFIG = PROJECT_ROOT / "conf" / "log4j2.properties"
# The JVM class archive `make setup` builds (jobs/class_archive.py); git-ignored.
CLASS_ARCHIVE = Path(os.environ.get("CDI_CLASS_ARCHIVE", PROJECT_ROOT / ".cds" / "spark.jsa"))
# The JDK warns on the console when it cannot use an archive (another JDK, other jars); it then
# starts without one, which is all cdi wants.
QUIET_CLASS_ARCHIVE = ("-Xlog:cds=off", "-Xlog:cds+dynamic=off")
EXTRA_JAVA_OPTIONS = "spark.driver.extraJavaOptions"
DRIVER_CLASS_PATH = "spark.driver.extraClassPath"
# cdi's own JVM classes, which `make setup` compiles from jvm/src; git-ignored.
CDI_JAR = Path(os.environ.get("CDI_JAR", PROJECT_ROOT / ".jvm" / "cdi.jar"))
# Hadoop's local file system, with permissions and symbolic links found in the JVM rather than by a
# chmod or readlink process each (jvm/src/cdi/hadoop): both APIs, FileSystem and FileContext (Delta's
# log store commits through the latter).
NIO_LOCAL_FS = {
    "spark.hadoop.fs.file.impl": "cdi.hadoop.NioLocalFileSystem",
    "spark.hadoop.fs.AbstractFileSystem.file.impl": "cdi.hadoop.NioLocalFs",
}

# The JIT's optimizing compiler (C2) takes a method only after four times the usual calls and loop
# iterations. A cold driver compiles thousands of Spark, Catalyst and Delta methods that a run calls
# a few thousand times and never again; the JIT compilers used about half the JVM's CPU in `cdi dedupe`
# of 1,000 records, which is CPU-bound on a small machine: 40.0-42.2 s and 65-69 CPU-s against 42.8-44.1 s
# and 77-80 CPU-s, alternated (docs/benchmarks.md). A method hot over a large run still reaches C2
# within its first seconds.
JIT_OPTIONS = (
    "-XX:Tier4InvocationThreshold=20000 -XX:Tier4MinInvocationThreshold=2400 "
    "-XX:Tier4CompileThreshold=60000 -XX:Tier4BackEdgeThreshold=160000"
)

DELTA_PACKAGE = "io.delta:delta-spark_2.13:4.0.1"
SQLITE_PACKAGE = "org.xerial:sqlite-jdbc:3.53.4.0"
POSTGRES_PACKAGE = "org.postgresql:postgresql:42.7.14"
# libphonenumber, for cdi's phone function (jvm/src/cdi/phone): the version of the Python ``phonenumbers``
# package (its port), so both read a number alike.
PHONENUMBER_PACKAGE = "com.googlecode.libphonenumber:libphonenumber:9.0.43"
# cdi's phone function: a Spark SQL function (name, class) in cdi's jar, ``matching.normalize_contact.to_e164``
# in the JVM.
E164_FUNCTION, E164_CLASS = "cdi_to_e164", "cdi.phone.ToE164"
JVM_PACKAGES = (DELTA_PACKAGE, SQLITE_PACKAGE, POSTGRES_PACKAGE, PHONENUMBER_PACKAGE)

DEFAULTS: dict[str, str] = {
    "spark.master": "local[*]",
    "spark.app.name": "cdi",
    "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
    "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
    # The parallel collector: a batch driver wants throughput, and G1's concurrent work competes for
    # the few cores of a small machine (`cdi dedupe` of 1,000 records: 66.5 s against 70.3 s, three
    # runs each side by side; docs/benchmarks.md). JIT_OPTIONS says why C2 waits longer.
    EXTRA_JAVA_OPTIONS: (
        f"-Dlog4j2.configurationFile=file:{LOG4J_CONFIG} -Duser.timezone=UTC -XX:+UseParallelGC {JIT_OPTIONS}"
    ),
    "spark.ui.showConsoleProgress": "false",
    "spark.sql.shuffle.partitions": "8",
    "spark.databricks.delta.snapshotPartitions": "2",
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.execution.arrow.pyspark.enabled": "true",
    # Rows per Arrow batch into and out of Python (mapInPandas): the comparisons pay about 10 ms of pandas
    # set-up per batch whatever its size, so 10,000-row batches (the default) spent a sixth of their time
    # there. The 1M demo lake's match stage alone: 146.8 / 151.6 s against 149.4 / 154.4 s, alternated.
    "spark.sql.execution.arrow.maxRecordsPerBatch": "50000",
    "spark.databricks.delta.properties.defaults.enableDeletionVectors": "false",
    # New tables keep no per-file min/max column statistics: those sit in the transaction log
    # (commit JSON, checksums, checkpoints), which VACUUM never touches, so `cdi erase` could not
    # remove a person's values from them. cdi's reads are whole-table scans and joins, not
    # selective filters, so data skipping saves little.
    "spark.databricks.delta.properties.defaults.dataSkippingNumIndexedCols": "0",
    "spark.driver.memory": "4g",
    # SQLite reports TEXT as VARCHAR(0); Delta would then enforce a length of 0.
    "spark.sql.legacy.charVarcharAsString": "true",
    # PySpark 4 sends the Python call site of every Column and DataFrame call to the JVM, for error
    # messages: about ten more round trips per call (F.col 13 instead of 3, .alias 11 instead of 1;
    # the demo's standardize stage made twice as many). cdi names the failing source and step itself.
    "spark.python.sql.dataFrameDebugging.enabled": "false",
    # pandas writes datetime columns to Parquet as nanosecond timestamps, which Spark refuses to read
    # (PARQUET_TYPE_ILLEGAL). Read as longs, jobs.sources.read_parquet turns them back into timestamps.
    "spark.sql.legacy.parquet.nanosAsLong": "true",
    # A cached frame (each source's rows while they land, the records while they are matched) is kept
    # as plain columns: choosing and applying a compression scheme for every column of every batch cost
    # more CPU than the memory it saved (`cdi run --stages ingest` of the 1M demo sources: 47.3 and
    # 47.4 s against 55.6 and 56.3 s, alternated; docs/benchmarks.md). A cache that outgrows memory
    # spills to disk either way.
    "spark.sql.inMemoryColumnarStorage.compressed": "false",
    # HotSpot never compiles a method of more than 8,000 bytes of bytecode: it runs it interpreted, many
    # times slower. Whole-stage code generation puts a stage's every expression in one method, and the
    # wide projections of standardize and of the activity tables went over. A stage whose method would
    # be larger runs as separate operators instead, whose expressions are split into small methods
    # (Spark's documentation of this setting suggests 8000 on HotSpot). The 1M demo sources'
    # standardized records to `noop`: 13.6-16.7 s against 20.4-23.7 s; their activity rows: 4.1 s
    # against 7.5 s (docs/benchmarks.md).
    "spark.sql.codegen.hugeMethodLimit": "8000",
    # Parquet files are written without dictionary pages. Most of what cdi stores is names, addresses,
    # keys and hashes, nearly all distinct: the writer filled a dictionary for every column chunk only to
    # give up on it, a tenth of the JVM's samples while sources land. Repeated values still compress
    # (snappy). The 1M demo sources' full run: ingest 45.0 against 46.8 s, every stage as quick or
    # quicker, 316.0 against 320.3 s in all; bronze tables 10 % larger (docs/benchmarks.md).
    "spark.hadoop.parquet.enable.dictionary": "false",
}

ENV_PREFIX = "CDI_SPARK_CONF_"
REMOTE = "spark.remote"
# The settings a Spark Connect session sends to its server: those a session may set at run time.
REMOTE_PREFIXES = ("spark.sql.", "spark.databricks.")

WHOLE_STAGE_CODEGEN = "spark.sql.codegen.wholeStage"
CODEGEN_FACTORY_MODE = "spark.sql.codegen.factoryMode"
# Bronze rows (source records and activity) up to which a run is interpreted (``size_settings``).
CODEGEN_ROWS = 200_000
# Each setting's value for small data and for large.
SIZED_SETTINGS: dict[str, tuple[str, str]] = {
    WHOLE_STAGE_CODEGEN: ("false", "true"),
    CODEGEN_FACTORY_MODE: ("NO_CODEGEN", "FALLBACK"),
}


def size_settings(rows: int, configured: Mapping[str, str]) -> dict[str, str]:
    """Session settings sized to a run over ``rows`` landed rows (bronze: source records and activity).

    Spark compiles each query plan (whole-stage code generation) and each
    projection, predicate and ordering (the expression code generators) to Java
    before it runs them, and the JVM then compiles that Java again. On a few
    thousand rows the compiling costs more than it saves, so small data runs
    interpreted: whole-stage code generation off (``cdi dedupe`` of FEBRL 1's
    1,000 records: 126 s without it against 145-150 s with it) and expressions
    evaluated by Spark's interpreted implementations (two runs of 15 demo
    customers in one session, ``bench/stage_times.py``: 110.9 s against
    130.8 s). The two cross near a hundred thousand customers: ``cdi run`` of the
    scale benchmark's 10,140 customers (54,080 bronze rows) took 88.1 s
    interpreted against 101.6 s compiled (every stage quicker), of its 99,833
    customers (544,048 bronze rows) 182.8 s against 182.4 s (standardizing
    quicker, matching slower). On a million rows the generated code is what
    keeps joins and aggregates fast. A value given in the config's ``spark``
    section or the environment is left as given.
    """
    small = rows <= CODEGEN_ROWS
    return {
        key: small_value if small else large_value
        for key, (small_value, large_value) in SIZED_SETTINGS.items()
        if key not in configured
    }


def settings_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """Spark settings from ``CDI_SPARK_MASTER``, ``CDI_SPARK_REMOTE`` and ``CDI_SPARK_CONF_spark__sql__x=v``."""
    found: dict[str, str] = {}
    if environ.get("CDI_SPARK_MASTER"):
        found["spark.master"] = environ["CDI_SPARK_MASTER"]
    if environ.get("CDI_SPARK_REMOTE"):
        found[REMOTE] = environ["CDI_SPARK_REMOTE"]
    for name, value in environ.items():
        if name.startswith(ENV_PREFIX):
            found[name[len(ENV_PREFIX):].replace("__", ".")] = value
    return found


def archive_options(archive: Path | None = None) -> str:
    """JVM options that map the class archive, when ``make setup`` built one ("" otherwise).

    A cold driver then starts about 3 s sooner (a cold ``cdi run --stages
    ingest`` of 15 demo customers: 22.2-23.3 s against 25.6-26.7 s).
    """
    archive = CLASS_ARCHIVE if archive is None else archive
    if not archive.is_file():
        return ""
    return " ".join([f"-XX:SharedArchiveFile={archive}", *QUIET_CLASS_ARCHIVE])


def resolve_settings(
    configured: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Defaults (with the class archive, when there is one), then the config file's ``spark`` section,
    then the environment."""
    merged = dict(DEFAULTS)
    merged[EXTRA_JAVA_OPTIONS] = " ".join(filter(None, [DEFAULTS[EXTRA_JAVA_OPTIONS], archive_options()]))
    merged.update(jar_settings())
    merged.update({k: str(v) for k, v in (configured or {}).items()})
    merged.update(settings_from_env(os.environ if environ is None else environ))
    return merged


def jar_settings(cache: Path = JARS_CACHE) -> dict[str, str]:
    """Where the JVM jars come from.

    ``make setup`` resolves the packages once from Maven Central into the
    git-ignored Ivy cache. When every jar is there, the session takes them as
    plain files (offline, quiet, a little faster); otherwise Spark resolves
    ``spark.jars.packages`` through the same cache.
    """
    jars_dir = cache / "jars"
    expected = [jars_dir / f"{g}_{a}-{v}.jar" for g, a, v in (p.split(":") for p in JVM_PACKAGES)]
    if all(j.exists() for j in expected):
        return {"spark.jars": ",".join(str(j) for j in sorted(jars_dir.glob("*.jar")))}
    return {"spark.jars.packages": ",".join(JVM_PACKAGES), "spark.jars.ivy": str(cache)}


def submitted_settings() -> dict[str, str]:
    """What spark-submit was given (``--master``, ``--conf``), to win over cdi's own settings.

    Under spark-submit the JVM is already running (``PYSPARK_GATEWAY_PORT`` is
    set) and holds those settings; pyspark applies builder options after them,
    so without this ``--master`` would be ignored.
    """
    if "PYSPARK_GATEWAY_PORT" not in os.environ:
        return {}
    from pyspark import SparkConf, SparkContext

    SparkContext._ensure_initialized()
    return dict(SparkConf().getAll())


def default_spark_log() -> Path:
    """Where Spark's own output goes when the terminal is kept quiet: ``$CDI_SPARK_LOG`` or a per-process temp file."""
    configured = os.environ.get("CDI_SPARK_LOG")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / f"cdi-spark-{os.getpid()}.log"


def _prepare_process() -> None:
    """Every clock UTC and the workers on this interpreter (see ``build_session``)."""
    os.environ["TZ"] = "UTC"
    time.tzset()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")


def phonenumber_jar(cache: Path = JARS_CACHE) -> Path:
    """Where ``make setup`` puts libphonenumber's jar (``PHONENUMBER_PACKAGE``)."""
    group, artifact, version = PHONENUMBER_PACKAGE.split(":")
    return cache / "jars" / f"{group}_{artifact}-{version}.jar"


def is_local_master(master: str) -> bool:
    """``local`` or ``local[N]``: tasks run in the driver JVM (not ``local-cluster`` nor a cluster master)."""
    return master == "local" or master.startswith("local[")


def cdi_jar_settings(settings: Mapping[str, str], jar: Path | None = None, phones: Path | None = None) -> dict[str, str]:
    """cdi's jar (with libphonenumber, which its phone function uses) on the class path of a driver JVM that cdi
    starts, and its local file system for a local master.

    The jars go on every such driver's class path, so that the one class
    archive ``make setup`` builds (with them) maps into every one of them. The
    file system (``NIO_LOCAL_FS``) is for a local master only (``local``,
    ``local[N]``; not ``local-cluster`` nor a cluster master, whose executors
    are JVMs of their own, without the jar), and never over one configured in
    ``settings``. Hadoop's own starts a ``chmod`` process for every file and
    directory it creates and a ``readlink`` process for both sides of every
    rename when its native library is missing, as it is from pip's pyspark:
    about 18 processes per Delta commit, 457 in ``cdi dedupe`` of 1,000
    records (docs/benchmarks.md).
    """
    jar = CDI_JAR if jar is None else jar
    phones = phonenumber_jar() if phones is None else phones
    if not jar.is_file():
        return {}
    entries = [settings.get(DRIVER_CLASS_PATH), str(jar), str(phones) if phones.is_file() else None]
    class_path = {DRIVER_CLASS_PATH: os.pathsep.join(filter(None, entries))}
    if not is_local_master(settings.get("spark.master", "")) or any(key in settings for key in NIO_LOCAL_FS):
        return class_path
    return {**NIO_LOCAL_FS, **class_path}


def register_functions(spark: SparkSession, remote: bool = False) -> bool:
    """Register cdi's JVM functions (``E164_FUNCTION``) in ``spark``'s session; whether they are there.

    Only where the tasks can load the classes: a local master started with
    cdi's jars (``cdi_jar_settings``), or a Spark Connect server (``remote``)
    that has them (``tools/connect_server.py`` starts one so). Anywhere else the jobs use
    the Python implementations (``matching.normalize_contact``), which give
    the same values, slower.
    """
    if not remote and not is_local_master(spark.conf.get("spark.master", "")):
        return False
    try:
        spark.udf.registerJavaFunction(E164_FUNCTION, E164_CLASS, "string")
    except Exception:  # the class is not on the class path: the Python implementation is used
        return False
    return True


def has_function(spark: SparkSession, name: str) -> bool:
    """Whether ``name`` is a function of ``spark``'s session (``register_functions``)."""
    return spark.catalog.functionExists(name)


def remote_settings(settings: Mapping[str, str]) -> dict[str, str]:
    """What a Spark Connect session is built with: the server's address and the settings a session may set."""
    return {REMOTE: settings[REMOTE], **{k: v for k, v in settings.items() if k.startswith(REMOTE_PREFIXES)}}


def _session_settings(configured: Mapping[str, str] | None) -> dict[str, str]:
    settings = resolve_settings(configured)
    if REMOTE in settings:
        return remote_settings(settings)
    submitted = submitted_settings()
    if submitted:
        # spark-submit started the driver JVM: its class path is set.
        settings.update(submitted)
    else:
        settings.update(cdi_jar_settings(settings))
    settings.setdefault("spark.pyspark.python", os.environ["PYSPARK_PYTHON"])
    return settings


def _launch_jvm(settings: Mapping[str, str], jvm_log: Path) -> None:
    """Start the driver JVM with the session's settings, its stderr going to ``jvm_log``.

    The JVM keeps writing its console output there (log4j warnings, JDK
    notices, Python workers' stderr); this process's own stderr is never
    touched, so a message cdi prints meanwhile still reaches the terminal.
    """
    from pyspark import SparkConf, SparkContext
    from pyspark.java_gateway import launch_gateway

    jvm_log.parent.mkdir(parents=True, exist_ok=True)
    log = os.open(jvm_log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    try:
        gateway = launch_gateway(SparkConf().setAll(settings.items()), popen_kwargs={"stderr": log})
    finally:
        os.close(log)
    SparkContext._ensure_initialized(gateway=gateway)


def _jvm_running() -> bool:
    """Whether this process already has a driver JVM (a session built before, or spark-submit's)."""
    from pyspark import SparkContext

    return SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ


def _remote_session(settings: Mapping[str, str]) -> SparkSession:
    """A Spark Connect session with each of ``settings`` the server lets a session set.

    The rest (Delta's extension, the catalog) are the server's own; asking to
    change them would only print a warning per setting.
    """
    spark = SparkSession.builder.remote(settings[REMOTE]).getOrCreate()
    for key, value in settings.items():
        if key != REMOTE and spark.conf.isModifiable(key):
            spark.conf.set(key, value)
    register_functions(spark, remote=True)
    return spark


def _build(settings: Mapping[str, str], jvm_log: Path | None) -> SparkSession:
    if REMOTE in settings:
        return _remote_session(settings)
    builder = SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    if jvm_log is not None and not _jvm_running():
        _launch_jvm(settings, jvm_log)
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel(settings.get("cdi.log.level", "WARN"))
    register_functions(spark)
    return spark


def build_session(configured: Mapping[str, str] | None = None, jvm_log: Path | None = None) -> SparkSession:
    """Build (or return the running) SparkSession with Delta enabled.

    ``PYSPARK_PYTHON`` is set to this interpreter unless already set: pyspark
    reads the variable, not ``spark.pyspark.python``, when it starts workers,
    and the system Python lacks the project's packages. With ``jvm_log``, a
    JVM started here writes its console output (Spark's warnings) to that
    file instead of the terminal.

    Every clock is UTC, whatever the machine's time zone: Spark SQL's session
    time zone, the JVM's default (JDBC drivers and Hadoop use it) and this
    process's (PySpark turns timestamps it collects into naive local
    datetimes, and naive datetimes it is given into local time).
    """
    _prepare_process()
    return _build(_session_settings(configured), jvm_log)


class SessionStart:
    """A SparkSession that starts building now, on a background thread; ``session()`` waits for it.

    Starting the driver JVM and its SparkContext takes seconds, nearly all of
    them in the JVM, and so does importing the stages' modules and parsing the
    rest of the configuration in Python. The CLI starts the session as soon as
    the pipeline config's ``spark`` section is read and does the rest
    meanwhile. Nothing is written to the lake before ``session()`` returns, so
    a configuration error found meanwhile still stops the run before anything
    is written; the JVM then ends with this process.

    When this process already has a driver JVM (tests, spark-submit), the
    session is built in ``session()``, as ``build_session`` would.
    """

    def __init__(self, configured: Mapping[str, str] | None = None, jvm_log: Path | None = None) -> None:
        self._configured = configured
        self._jvm_log = jvm_log
        self._built: SparkSession | None = None
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None
        if not _jvm_running():
            _prepare_process()
            settings = _session_settings(configured)
            self._thread = threading.Thread(target=self._run, args=(settings,), name="cdi-session-start", daemon=True)
            self._thread.start()

    def _run(self, settings: Mapping[str, str]) -> None:
        try:
            self._built = _build(settings, self._jvm_log)
        except BaseException as error:  # handed to the thread that asks for the session
            self._error = error

    def session(self) -> SparkSession:
        if self._thread is None:
            return build_session(self._configured, self._jvm_log)
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._built is not None
        return self._built


def listing_parallelism(spark: SparkSession) -> int:
    """Tasks for listing a table's files: ``spark.default.parallelism`` when set, else the session's shuffle
    partitions (a Spark Connect client cannot ask the server for its cores)."""
    return int(spark.conf.get("spark.default.parallelism", None) or spark.conf.get("spark.sql.shuffle.partitions"))


@contextmanager
def session_conf(spark: SparkSession, settings: dict[str, str]) -> Iterator[None]:
    """Set session settings for the block, then put back what was there before."""
    before = {key: spark.conf.get(key, None) for key in settings}
    for key, value in settings.items():
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, value in before.items():
            if value is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, value)
