"""Where every table of a cdi lake lives.

A lake root is a local folder or any Hadoop URI Spark can write to
(``s3a://bucket/cdi``, ``hdfs:///cdi``); tables are Delta under fixed paths.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from pathlib import Path


def _is_uri(root: str) -> bool:
    return "://" in root or root.startswith("file:")


@dataclass(frozen=True)
class Lake:
    root: str

    @classmethod
    def at(cls, root: str | Path) -> "Lake":
        text = str(root)
        return cls(text if _is_uri(text) else str(Path(text).resolve()))

    def path(self, *parts: str) -> str:
        return posixpath.join(self.root, *parts)

    def bronze(self, source: str) -> str:
        return self.path("bronze", source)

    def bronze_activity(self, source: str, activity: str) -> str:
        """An activity table of a source; a source name holds no ``.``, so this never meets a source's table."""
        return self.path("bronze", f"{source}.{activity}")

    @property
    def customers_std(self) -> str:
        return self.path("silver", "customers_std")

    @property
    def quarantine(self) -> str:
        return self.path("silver", "quarantine")

    @property
    def run_audit(self) -> str:
        return self.path("ops", "run_audit")

    def gold(self, table: str) -> str:
        return self.path("gold", table)

    def run_dir(self, run_id: str) -> str:
        return self.path("_runs", run_id)

    @property
    def is_local(self) -> bool:
        return not _is_uri(self.root)
