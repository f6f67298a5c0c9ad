"""A throwaway PostgreSQL server for the tests, started from the machine's own binaries.

``CHANJING_NOTIFIER_TEST_PG`` (a URL to a server where the user may CREATE DATABASE) skips
all of this. Otherwise one server is started per test session in a temporary directory,
listening on 127.0.0.1 and a private socket, and removed afterwards. ``initdb`` refuses to
run as root, so under root the cluster belongs to the ``postgres`` user (or ``nobody``).
Durability settings are off: a test server that loses data on a power cut loses nothing.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from tests.kit.net import free_port

ENV_URL = "CHANJING_NOTIFIER_TEST_PG"


class PgUnavailable(RuntimeError):
    """No URL given and no PostgreSQL binaries to start a server from."""


def _bindir() -> Path:
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    raise PgUnavailable(
        "no PostgreSQL binaries (initdb) found: install the `postgresql` package, or set "
        f"{ENV_URL} to a server's URL"
    )


def _run_as() -> str | None:
    """The user to run the server as: ourselves unless we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    raise PgUnavailable("running as root and no unprivileged user (postgres) to run initdb as")


class PgServer:
    """One cluster; :meth:`database` hands out fresh, empty databases on it."""

    def __init__(self, admin_url: str, *, owned: Path | None = None) -> None:
        self.admin_url = admin_url
        self._owned = owned
        #: How to run pg_ctl on an owned cluster: (argv before the action, run as user).
        self._ctl: tuple[list[str], str | None] | None = None

    @property
    def restartable(self) -> bool:
        """Started by us (not ``CHANJING_NOTIFIER_TEST_PG``): it may be stopped and started."""
        return self._ctl is not None

    def _pg_ctl(self, *action: str) -> None:
        assert self._ctl is not None, "not our server: set no CHANJING_NOTIFIER_TEST_PG"
        argv, user = self._ctl
        subprocess.run(
            [*argv, *action], user=user, check=True, capture_output=True, cwd=self._owned
        )

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """The server is down (a fast shutdown: sessions are cut, as in a restart) while the
        block runs, then started again on the same port; returns once it accepts
        connections. Every connection open before is gone."""
        self._pg_ctl("-m", "fast", "-w", "-t", "60", "stop")
        try:
            yield
        finally:
            self._pg_ctl("-w", "-t", "60", "start")

    @classmethod
    @contextmanager
    def start(cls) -> Iterator[PgServer]:
        url = os.environ.get(ENV_URL)
        if url:
            yield cls(url)
            return
        bindir = _bindir()
        user = _run_as()
        root = Path(tempfile.mkdtemp(prefix="chanjing-pg-"))
        data, sockets = root / "data", root / "sock"
        sockets.mkdir()
        if user is not None:
            entry = pwd.getpwnam(user)
            for path in (root, sockets):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        port = free_port()
        try:
            subprocess.run(
                [
                    *(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust"),
                    *("--no-sync", "-E", "UTF8", "--locale=C"),
                ],
                user=user,
                check=True,
                capture_output=True,
                cwd=root,
            )
            options = (
                f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
            )
            subprocess.run(
                [
                    *(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log")),
                    *("-o", options, "-w", "-t", "60", "start"),
                ],
                user=user,
                check=True,
                capture_output=True,
                cwd=root,
            )
        except subprocess.CalledProcessError as exc:
            log = root / "server.log"
            detail = (exc.stderr or b"").decode(errors="replace")
            if log.exists():
                detail += log.read_text(errors="replace")
            shutil.rmtree(root, ignore_errors=True)
            raise PgUnavailable(f"could not start a test PostgreSQL: {detail}") from exc
        server = cls(f"postgresql://postgres@127.0.0.1:{port}/postgres", owned=root)
        server._ctl = (
            [
                *(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log")),
                *("-o", options),
            ],
            user,
        )
        try:
            yield server
        finally:
            subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                user=user,
                capture_output=True,
                cwd=root,
            )
            shutil.rmtree(root, ignore_errors=True)

    def database(self) -> str:
        """A new empty database; its URL."""
        name = "t_" + uuid.uuid4().hex[:16]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        base, _, _ = self.admin_url.rpartition("/")
        return f"{base}/{name}"

    def drop(self, url: str) -> None:
        name = url.rpartition("/")[2]
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
