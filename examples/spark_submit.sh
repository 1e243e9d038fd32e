#!/usr/bin/env bash
# Run any cdi command on a Spark cluster with spark-submit (client mode: the driver runs here).
#
#   examples/spark_submit.sh spark://spark-master:7077 run --config conf/cdi.yaml --run-id nightly-20261124
#   examples/spark_submit.sh 'local[2]' --log-format json run --dry-run
#
# Needs, on this machine: the project venv with cdi installed and the JVM jars resolved (`make setup`).
# Every worker needs the same Python packages at the same path (PYSPARK_PYTHON below): a shared
# venv, or an image built from the same pyproject.toml. Tune executors with SPARK_SUBMIT_OPTS_EXTRA,
# e.g. SPARK_SUBMIT_OPTS_EXTRA="--executor-memory 8g --total-executor-cores 16".
set -euo pipefail

MASTER=${1:?usage: $0 MASTER_URL CDI_ARGUMENTS...}
shift
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${CDI_VENV:-$ROOT/.venv}

export JAVA_HOME=${JAVA_HOME:-/usr/lib/jvm/java-17-openjdk-amd64}
export PYSPARK_PYTHON=$VENV/bin/python PYSPARK_DRIVER_PYTHON=$VENV/bin/python
export GX_ANALYTICS_ENABLED=false
# cdi's session builder sets spark.master itself (from conf/cdi.yaml or its default local[*]); the
# environment is the setting that wins over both, so it must name the same master as --master.
export CDI_SPARK_MASTER=$MASTER

# Delta and the JDBC drivers must be on the driver's classpath from the start: under spark-submit the
# JVM is already running when cdi builds its session, so they have to come in here as --conf
# spark.jars (cached files) or spark.jars.packages (resolved from Maven into the Ivy cache).
JAR_CONF=()
while IFS= read -r setting; do
  JAR_CONF+=(--conf "$setting")
done < <("$VENV/bin/python" -c 'from jobs.spark import jar_settings
for key, value in jar_settings().items(): print(f"{key}={value}")')

# shellcheck disable=SC2086  # SPARK_SUBMIT_OPTS_EXTRA is a list of options on purpose
exec "$VENV/bin/spark-submit" \
  --master "$MASTER" \
  --deploy-mode client \
  --name cdi \
  --driver-memory "${CDI_DRIVER_MEMORY:-4g}" \
  "${JAR_CONF[@]}" \
  --conf "spark.driver.extraJavaOptions=-Dlog4j2.configurationFile=file:$ROOT/conf/log4j2.properties" \
  --conf spark.executorEnv.GX_ANALYTICS_ENABLED=false \
  ${SPARK_SUBMIT_OPTS_EXTRA:-} \
  "$ROOT/examples/cdi_submit.py" "$@"
