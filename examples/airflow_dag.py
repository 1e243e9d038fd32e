"""An Airflow DAG running cdi nightly: a dry run, then one task per pipeline stage.

Copy this file into Airflow's ``dags/`` folder on a machine where cdi is
installed (``CDI_HOME`` below: the project checkout with its ``.venv``).
Airflow is not a dependency of cdi: without it this module only defines the
commands (so it can be read and imported anywhere) and builds no DAG.

Why this shape:

- One run id for every task of a DAG run, from the logical date
  (``airflow-20261124T020000``): a retried task re-runs its stage for the
  same run, which cdi makes idempotent. (Airflow's own ``run_id`` contains
  ``:`` and ``+``, which cdi's run ids do not allow.)
- ``max_active_runs=1``: each task takes the lake lock only for its own
  stage, so two DAG runs could otherwise interleave stages on one lake (and
  lakes on s3a:// or hdfs:// take no lock at all).
- Exit code 5 (lake locked by another run) is worth a retry; 2 (config), 3
  (source) and 4 (validation stopped) need a person, so retries are few.
- A single task running ``cdi run`` is simpler and starts Spark once instead
  of five times; per-stage tasks give per-stage retries, timings and logs.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta

CDI_HOME = os.environ.get("CDI_HOME", "/opt/cdi")
CONFIG = f"{CDI_HOME}/conf/cdi.yaml"
STAGES = ("ingest", "standardize", "validate", "match", "publish")
RUN_ID = "airflow-{{ ts_nodash }}"  # Jinja: rendered by Airflow per DAG run
ENV = {
    "JAVA_HOME": "/usr/lib/jvm/java-17-openjdk-amd64",
    "CDI_DATA_DIR": f"{CDI_HOME}/demo_data",
    "CDI_LAKE": "/data/cdi/lake",
    # On a cluster: "CDI_SPARK_MASTER": "spark://spark-master:7077", or run examples/spark_submit.sh.
}


def cdi_command(*arguments: str) -> str:
    """The shell command of one task: cdi with JSON logs, from the project folder (relative conf paths)."""
    return f"cd {CDI_HOME} && {CDI_HOME}/.venv/bin/cdi --log-format json " + " ".join(arguments)


def stage_command(stage: str) -> str:
    return cdi_command("run", "--config", CONFIG, "--stages", stage, "--run-id", RUN_ID)


DRY_RUN_COMMAND = cdi_command("run", "--config", CONFIG, "--dry-run", "--run-id", RUN_ID)

try:
    from airflow import DAG
    from airflow.operators.bash import BashOperator  # Airflow 3: airflow.providers.standard.operators.bash
except ImportError:  # not in an Airflow environment: nothing to build
    DAG = None

if DAG is not None:
    with DAG(
        dag_id="cdi_nightly",
        schedule="0 2 * * *",
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        default_args={"retries": 2, "retry_delay": timedelta(minutes=10), "env": ENV, "append_env": True},
        tags=["cdi"],
    ) as dag:
        previous = BashOperator(task_id="dry_run", bash_command=DRY_RUN_COMMAND)
        for stage in STAGES:
            task = BashOperator(task_id=stage, bash_command=stage_command(stage))
            previous >> task
            previous = task
