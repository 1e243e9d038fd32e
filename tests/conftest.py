"""Shared fixtures: one real local SparkSession with Delta for the whole run."""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")


@pytest.fixture(scope="session")
def spark(tmp_path_factory):
    from jobs.spark import build_session
    from tests.session import TEST_SESSION

    warehouse = tmp_path_factory.mktemp("warehouse")
    session = build_session({**TEST_SESSION, "spark.sql.warehouse.dir": str(warehouse)})
    yield session
    session.stop()


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL 15 server on 127.0.0.1 for the JDBC tests."""
    from tests import postgres_server

    server = postgres_server.start()
    yield server
    postgres_server.stop(server)


@pytest.fixture(scope="session")
def demo_run(spark, tmp_path_factory):
    """The demo pipeline run, published once for every test that reads a whole run's lake (``tests.demo_run``)."""
    from tests.demo_run import publish_demo

    return publish_demo(spark, tmp_path_factory.mktemp("demo_run"))
