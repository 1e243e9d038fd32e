"""cdi.hadoop's local file system (jvm/src/cdi/hadoop) against Hadoop's own, in the test session's JVM.

The two must agree on everything cdi's runs ask of them; only the way differs
(Java NIO instead of a ``chmod`` or ``readlink`` process).
"""

from __future__ import annotations

import os
import stat

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from py4j.protocol import Py4JJavaError

from jobs.spark import CDI_JAR, NIO_LOCAL_FS


@pytest.fixture(scope="module")
def file_systems(spark):
    """(cdi's, Hadoop's) raw local file systems."""
    jvm = spark._jvm
    found = jvm.cdi.hadoop.NioRawLocalFileSystem(), jvm.org.apache.hadoop.fs.RawLocalFileSystem()
    for fs in found:
        fs.initialize(jvm.java.net.URI("file:///"), spark._jsc.hadoopConfiguration())
    return found


def _path(spark, path) -> object:
    return spark._jvm.org.apache.hadoop.fs.Path(f"file://{path}")


def test_make_setup_built_the_jar_and_the_session_commits_through_it(spark, tmp_path):
    conf = spark._jsc.hadoopConfiguration()
    table = tmp_path / "table"

    spark.range(3).write.format("delta").save(str(table))
    spark.range(3, 5).write.format("delta").mode("append").save(str(table))

    assert CDI_JAR.is_file()
    assert {key: conf.get(key.removeprefix("spark.hadoop.")) for key in NIO_LOCAL_FS} == NIO_LOCAL_FS
    context = spark._jvm.org.apache.hadoop.fs.FileContext.getFileContext(_path(spark, table).toUri(), conf)
    assert context.getDefaultFileSystem().getClass().getName() == "cdi.hadoop.NioLocalFs"
    assert sorted(row.id for row in spark.read.format("delta").load(str(table)).collect()) == [0, 1, 2, 3, 4]
    assert sorted(p.name for p in (table / "_delta_log").glob("*.json")) == [
        "00000000000000000000.json", "00000000000000000001.json"
    ]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(mode=st.integers(0, 0o777), directory=st.booleans(), create_modes=st.booleans())
def test_permissions_are_set_as_hadoop_sets_them(spark, file_systems, tmp_path, mode, directory, create_modes):
    """As a plain FsPermission or as the FsCreateModes Hadoop's FileContext makes (which prints both its modes)."""
    ours, hadoops = file_systems
    permissions = spark._jvm.org.apache.hadoop.fs.permission
    permission = permissions.FsPermission(f"{mode:03o}")
    if create_modes:
        permission = permissions.FsCreateModes.create(permission, permissions.FsPermission("777"))
    modes = []
    for name, fs in (("ours", ours), ("hadoops", hadoops)):
        target = tmp_path / f"{name}-{mode:o}-{directory}-{create_modes}"
        if directory:
            target.mkdir()
        else:
            target.write_text("x")
        fs.setPermission(_path(spark, target), permission)
        modes.append(stat.S_IMODE(os.lstat(target).st_mode))
        os.chmod(target, 0o700)

    assert modes == [mode, mode]


def _link_status(fs, path) -> tuple | str:
    """What ``getFileLinkStatus`` says of ``path``, or the class of the exception it throws."""
    try:
        found = fs.getFileLinkStatus(path)
    except Py4JJavaError as error:
        return error.java_exception.getClass().getName()
    target = found.getSymlink().toString() if found.isSymlink() else None
    return found.isSymlink(), found.isDirectory(), found.getLen(), found.getPath().toString(), target


@pytest.mark.parametrize("qualified", [True, False], ids=["file: URI", "bare path"])
@pytest.mark.parametrize("kind", ["file", "directory", "missing", "link to a file", "link to a directory", "dangling link"])
def test_link_status_is_hadoops(spark, file_systems, tmp_path, kind, qualified):
    """Hadoop's own finds links only in a bare path (it hands ``readlink`` a ``file:`` URI as given); Delta's are URIs."""
    ours, hadoops = file_systems
    (tmp_path / "file").write_text("twelve bytes")
    (tmp_path / "directory").mkdir()
    path = tmp_path / kind
    if kind.endswith("link"):
        path.symlink_to(tmp_path / {"link to a file": "file", "link to a directory": "directory"}.get(kind, "gone"))
    path_of = (lambda p: _path(spark, p)) if qualified else (lambda p: spark._jvm.org.apache.hadoop.fs.Path(str(p)))

    found = _link_status(ours, path_of(path))

    assert found == _link_status(hadoops, path_of(path))
    if kind == "missing":
        assert found == "java.io.FileNotFoundException"
    if kind.endswith("link") and not qualified:
        assert found[0] is True
