"""A throwaway PostgreSQL server from Debian's packages, on 127.0.0.1 only."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclass(frozen=True)
class PostgresServer:
    port: int
    user: str
    password: str
    database: str
    data_dir: Path

    @property
    def jdbc_url(self) -> str:
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} dbname={self.database} user={self.user} password={self.password}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_postgres(*command: str) -> None:
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *command], check=True, capture_output=True, text=True)


def start() -> PostgresServer:
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError("PostgreSQL 15 is not installed: run `make test` (it installs Debian's postgresql)")
    base = Path(tempfile.mkdtemp(prefix="cdi-pg-", dir="/tmp"))
    data, sock = base / "data", base / "sock"
    if os.geteuid() == 0:
        shutil.chown(base, "postgres", "postgres")
    for folder in (data, sock):
        folder.mkdir(mode=0o700)
        if os.geteuid() == 0:
            shutil.chown(folder, "postgres", "postgres")
    password = secrets.token_hex(12)
    pwfile = base / "pw"
    pwfile.write_text(password)
    if os.geteuid() == 0:
        shutil.chown(pwfile, "postgres", "postgres")
    _as_postgres(
        str(PG_BIN / "initdb"), "-D", str(data), "-E", "UTF8", "--locale=C.UTF-8", "-U", "cdi",
        f"--pwfile={pwfile}", "--auth-local=trust", "--auth-host=scram-sha-256",
    )
    port = _free_port()
    _as_postgres(
        str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "-o",
        f"-p {port} -k {sock} -c listen_addresses=127.0.0.1 -c fsync=off", "start",
    )
    return PostgresServer(port=port, user="cdi", password=password, database="postgres", data_dir=data)


def stop(server: PostgresServer) -> None:
    _as_postgres(str(PG_BIN / "pg_ctl"), "-D", str(server.data_dir), "-m", "immediate", "stop")
    shutil.rmtree(server.data_dir.parent, ignore_errors=True)
