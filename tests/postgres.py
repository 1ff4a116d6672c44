"""A throwaway PostgreSQL server for tests: Debian's binaries, a data folder in the system temp
folder, loopback only, trust authentication, gone at the end of the session.

Used by the ``postgres`` fixture (tests/conftest.py) and by the PostgreSQL benchmark note.
Nothing here needs a running server beforehand: :func:`find_bin` finds ``initdb``/``pg_ctl``
(``GLOVEWATCH_PG_BIN``, else ``/usr/lib/postgresql/<newest>/bin``, else ``PATH``) and
:class:`PgServer` starts its own instance. As root (CI), the server runs as the ``postgres``
user (``initdb`` refuses root), in a folder handed to that user.
"""

from __future__ import annotations

import contextlib
import importlib.util
import itertools
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SUPERUSER = "gw"
TEMPLATE = "gw_template"
SHARED = "gw_shared"


def find_bin() -> Path | None:
    """The folder holding PostgreSQL's ``initdb`` and ``pg_ctl``, or None."""
    wanted = os.environ.get("GLOVEWATCH_PG_BIN")
    if wanted:  # this folder or none
        folder = Path(wanted)
        return folder if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file() else None
    candidates: list[Path] = []
    versions = sorted(
        Path("/usr/lib/postgresql").glob("*/bin"),
        key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += versions
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).parent)
    for folder in candidates:
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def unavailable() -> str | None:
    """Why no test server can be started here (None: it can)."""
    if find_bin() is None:
        return (
            "PostgreSQL is not installed (no initdb/pg_ctl in GLOVEWATCH_PG_BIN, "
            "/usr/lib/postgresql/*/bin or on PATH); install Debian's 'postgresql' package to "
            "run these tests"
        )
    if os.geteuid() == 0 and _runas_user() is None:
        return "running as root without a 'postgres' user to run the server as"
    if importlib.util.find_spec("psycopg") is None:
        return "the psycopg package is missing (pip install -r requirements.txt)"
    return None


def _runas_user() -> str | None:
    import pwd

    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return None
    return "postgres"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PgServer:
    """One PostgreSQL instance on 127.0.0.1 in a private temp folder."""

    def __init__(self, durable: bool = False):
        """``durable=False`` switches fsync off (tests); benchmarks keep the defaults."""
        found = find_bin()
        if found is None:
            raise RuntimeError(unavailable() or "no PostgreSQL")
        self.bin: Path = found
        self.durable = durable
        self.folder = Path(tempfile.mkdtemp(prefix="gw-pg-"))
        self.data = self.folder / "data"
        self.log = self.folder / "server.log"
        self.port = _free_port()
        self.user = _runas_user() if os.geteuid() == 0 else None
        self._names = itertools.count(1)
        self.started = False

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        cmd = [*args]
        if self.user:
            cmd = ["runuser", "-u", self.user, "--", *cmd]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)

    def start(self) -> PgServer:
        """initdb, then start on loopback; raises RuntimeError with the server's words."""
        if self.user:
            shutil.chown(self.folder, self.user)
        os.chmod(self.folder, 0o700)
        init = self._run(
            str(self.bin / "initdb"),
            "-D",
            str(self.data),
            "-U",
            SUPERUSER,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
            *self._locale(),
        )
        if init.returncode:
            raise RuntimeError(f"initdb failed: {init.stderr.strip() or init.stdout.strip()}")
        opts = [
            f"-p {self.port}",
            f"-k {self.folder}",
            "-c listen_addresses=127.0.0.1",
            "-c max_connections=200",
        ]
        if not self.durable:
            opts += ["-c fsync=off", "-c synchronous_commit=off", "-c full_page_writes=off"]
        started = self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-w",
            "-t",
            "60",
            "-o",
            " ".join(opts),
            "start",
        )
        if started.returncode:
            log = self.log.read_text(errors="replace")[-2000:] if self.log.exists() else ""
            raise RuntimeError(f"pg_ctl start failed: {started.stderr.strip()} {log}")
        self.started = True
        return self

    def _locale(self) -> list[str]:
        # A locale whose text order is not byte order (ICU en-US) where the build has ICU,
        # so that tests see the store's own "C" collation at work, as on a real server.
        probe = subprocess.run(
            [str(self.bin / "initdb"), "--help"], capture_output=True, text=True, check=False
        )
        if "--locale-provider" in probe.stdout:
            return ["--locale=C.UTF-8", "--locale-provider=icu", "--icu-locale=en-US"]
        return ["--locale=C.UTF-8"]

    def url(self, database: str = "postgres", driver: str = "postgresql+psycopg") -> str:
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    @contextlib.contextmanager
    def admin(self, database: str = "postgres") -> Iterator[Any]:
        """An autocommit psycopg connection (default: to the maintenance database)."""
        import psycopg

        conn = psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=database, autocommit=True
        )
        try:
            yield conn
        finally:
            conn.close()

    def create_database(self, name: str | None = None, template: str = "template0") -> str:
        """A new empty database (copied from ``template``); returns its name."""
        name = name or f"gw_test_{os.getpid()}_{next(self._names)}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}" STRATEGY FILE_COPY')
        return name

    def empty(self, name: str) -> None:
        """Delete every row of a GloveWatch database and restart its id sequences."""
        from core.storage import schema

        tables = ", ".join(f'"{tbl.name}"' for tbl in schema.metadata.sorted_tables)
        with self.admin(name) as conn:
            conn.execute("SET lock_timeout = '20s'")
            conn.execute(f"TRUNCATE {tables} RESTART IDENTITY CASCADE")

    def drop_database(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def stop(self) -> None:
        """Stop the server and delete its folder."""
        if self.started:
            self._run(
                str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
            )
            self.started = False
        shutil.rmtree(self.folder, ignore_errors=True)
