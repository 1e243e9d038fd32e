# Two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
CDI := $(VENV)/bin/cdi
DEMO_DIR ?= demo_data
CUSTOMERS ?= 1000

# Spark 4.0 needs Java 17 (it fails on the newer JDK also installed here).
JAVA17 := $(firstword $(wildcard /usr/lib/jvm/java-17-openjdk-amd64 /usr/lib/jvm/java-17-openjdk*))
ifneq ($(JAVA17),)
export JAVA_HOME := $(JAVA17)
export PATH := $(JAVA17)/bin:$(PATH)
endif
export SPARK_LOCAL_IP := 127.0.0.1
export GX_ANALYTICS_ENABLED := false
export PYSPARK_PYTHON := $(abspath $(PY))

.PHONY: setup demo test clean system-packages

## setup: the venv with every Python package, Spark's JVM jars in .ivy/, cdi's own JVM classes in .jvm/ and the JVM
## class archive in .cds/
setup: $(VENV)/.installed .ivy/.resolved .jvm/cdi.jar .cds/.built

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,bench]'
	touch $@

.ivy/.resolved: $(VENV)/.installed jobs/spark.py
	$(PY) -m jobs.jars
	touch $@

# cdi's own JVM classes (jvm/src), compiled against the Spark and Hadoop classes pyspark ships and the jars in
# .ivy/ (libphonenumber); jobs/spark.py puts the jar on a local driver's class path when it is there.
.jvm/cdi.jar: $(VENV)/.installed .ivy/.resolved $(wildcard jvm/src/cdi/*/*.java)
	rm -rf .jvm && mkdir -p .jvm/classes
	javac -Xlint:all,-path -Werror -d .jvm/classes -cp "$$($(PY) -c 'import pyspark, pathlib; print(pathlib.Path(pyspark.__file__).parent / "jars")')/*:.ivy/jars/*" jvm/src/cdi/*/*.java
	jar cf $@ -C .jvm/classes .

# The classes a Spark driver loads, archived once so that every later session maps them (jobs/class_archive.py).
.cds/.built: .ivy/.resolved .jvm/cdi.jar jobs/class_archive.py
	rm -f .cds/spark.jsa
	$(PY) -m jobs.class_archive
	touch $@

## system-packages: Debian's PostgreSQL (JDBC tests) and Chromium (browser tests), when absent
system-packages:
	@bash tools/system-packages.sh

## demo: generate the demo departmental sources and run the whole pipeline on them
demo: setup
	rm -rf lake
	$(CDI) demo-data --out $(DEMO_DIR) --customers $(CUSTOMERS) --seed 42
	CDI_DATA_DIR=$(DEMO_DIR) $(CDI) run --config conf/cdi.yaml --run-id demo-1
	$(CDI) show --config conf/cdi.yaml
	@echo
	@echo "Accuracy against the generator's ground truth:"
	$(CDI) evaluate --config conf/cdi.yaml --truth $(DEMO_DIR)/truth.csv
	@password=$$($(PY) -c 'import secrets; print(secrets.token_urlsafe(12))'); \
	 secret=$$($(PY) -c 'import secrets; print(secrets.token_hex(32))'); \
	 CDI_NEW_PASSWORD=$$password $(CDI) create-user demo --role steward --stewards conf/stewards.yaml >/dev/null; \
	 echo; \
	 echo "Review the uncertain pairs in a browser (user 'demo', password '$$password', shown only now):"; \
	 echo "  CDI_SESSION_SECRET=$$secret $(CDI) serve --config conf/cdi.yaml --stewards conf/stewards.yaml --insecure-http"; \
	 echo "  then open http://127.0.0.1:8765"

## test: the same set-up, then the whole test suite on two workers, a test file whole on one of them (its module
## fixtures are built once); each worker has its own SparkSession. A run's driver waits on Python, py4j and the
## planner about as much as it computes, so two overlap: 23.8 min against 27.7 min in one process on 2 cores
## (docs/benchmarks.md). TEST_WORKERS=0 runs the suite in one process.
TEST_WORKERS ?= 2
test: setup system-packages
	$(PY) -m pytest -q -n $(TEST_WORKERS) --dist loadfile

clean:
	rm -rf lake runs demo_data .pytest_cache
