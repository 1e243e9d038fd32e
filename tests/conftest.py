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
    """The demo pipeline run, published once for every test that reads a whole run's lake (``tests.demo_run``).

    Under pytest-xdist (``make test``) the workers share one: the first to need it publishes it into the
    session's common temporary folder, the others wait for it and read it back.
    """
    from tests.demo_run import publish_demo, shared_demo_run

    if os.environ.get("PYTEST_XDIST_WORKER") is None:
        return publish_demo(spark, tmp_path_factory.mktemp("demo_run"))
    return shared_demo_run(spark, tmp_path_factory.getbasetemp().parent / "demo_run")
