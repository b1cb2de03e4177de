"""A throw-away PostgreSQL cluster under /tmp for tests and benchmarks (Debian's postgresql).

initdb and pg_ctl run as the `postgres` user when we are root (`runuser -u postgres --`), as
ourselves otherwise. The server listens on a socket directory under /tmp and on 127.0.0.1 at a
free port, with trust authentication (it is reachable from this machine only, and only while a
test runs). Each test gets a schema of its own (`url_for_schema`), which is much faster than a
database of its own; durability settings stay PostgreSQL's defaults (fsync, synchronous_commit on).
"""

from __future__ import annotations

import glob
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import quote


def binaries() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Cluster:
    def __init__(self, base: Path, bindir: Path, port: int):
        self.base, self.bindir, self.port = base, bindir, port
        self.data, self.sockets = base / "data", base / "sockets"
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
        self._schemas = itertools.count(1)

    def _as_owner(self, *argv: str) -> list[str]:
        return ["runuser", "-u", "postgres", "--", *argv] if os.geteuid() == 0 else list(argv)

    def start(self) -> Cluster:
        for folder in (self.data, self.sockets):
            folder.mkdir(parents=True)
        if os.geteuid() == 0:
            shutil.chown(self.base, "postgres")
            for folder in (self.data, self.sockets):
                shutil.chown(folder, "postgres")
        run = lambda *argv: subprocess.run(self._as_owner(*argv), check=True, capture_output=True, text=True)  # noqa: E731
        run(str(self.bindir / "initdb"), "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync",
            "-E", "UTF8", "--locale", "C.UTF-8")
        options = f"-k {self.sockets} -p {self.port} -c listen_addresses=127.0.0.1 -c max_connections=200"
        run(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.base / "server.log"), "-o", options,
            "-w", "-t", "60", "start")
        return self

    def stop(self) -> None:
        subprocess.run(self._as_owner(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w",
                                      "stop"), capture_output=True)
        shutil.rmtree(self.base, ignore_errors=True)

    def new_schema(self) -> str:
        """A fresh, empty schema and the URL that makes it the only one runbook sees."""
        import psycopg

        name = f"t{os.getpid()}_{next(self._schemas)}"
        with psycopg.connect(self.url, autocommit=True) as conn:
            conn.execute(f"CREATE SCHEMA {name}")
        return self.url_for_schema(name)

    def url_for_schema(self, schema: str, user: str = "postgres") -> str:
        return (f"postgresql://{user}@127.0.0.1:{self.port}/postgres?options="
                + quote(f"-csearch_path={schema}", safe=""))


def start_cluster(where: str = "/tmp") -> Cluster:
    """A cluster in a new directory under `where` (benchmarks: another filesystem, another disk)."""
    bindir = binaries()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (apt-get install postgresql)")
    base = Path(tempfile.mkdtemp(prefix="runbook-pg-", dir=where))
    os.chmod(base, 0o755)
    return Cluster(base, bindir, _free_port()).start()
