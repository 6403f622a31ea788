"""A throw-away PostgreSQL server for tests and benchmarks.

``PostgresServer`` runs ``initdb`` and ``pg_ctl`` (from ``PATH`` or
``/usr/lib/postgresql/<version>/bin``) on a temporary data directory and a free port on
127.0.0.1, with durability switched off (``fsync``, ``synchronous_commit``,
``full_page_writes``) because the data is thrown away. ``initdb`` refuses to run as root,
so as root the server runs as the ``postgres`` user through ``runuser``. Connections over
TCP need the superuser's password (SCRAM), so tests of a wrong password are meaningful.

    with PostgresServer() as server:
        dsn = server.create_database("bench")   # postgresql+psycopg://...
        ...

Shell scripts (``.ci/postgres.sh``) use the command line instead::

    eval "$(python -m metaqore.testing.postgres start)"   # exports the DSN and data dir
    python -m metaqore.testing.postgres stop "$METAQORE_TEST_POSTGRES_DIR"

Admin statements go through psycopg 3 (the ``postgres`` extra).
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import secrets
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self
from urllib.parse import quote

#: Environment variables the ``start`` command exports.
DSN_ENV = "METAQORE_TEST_POSTGRES_DSN"
DIR_ENV = "METAQORE_TEST_POSTGRES_DIR"

#: Server settings for a disposable server: fast, not durable.
SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "200",
    "listen_addresses": "'127.0.0.1'",
}

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")
_SERVICE_USER = "postgres"


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be started here; the message says why."""


def find_bindir() -> Path:
    """The directory holding ``initdb``, ``pg_ctl`` and ``postgres``."""
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: [int(part) for part in re.findall(r"\d+", path)],
    )
    if candidates:
        return Path(candidates[-1]).parent
    raise PostgresUnavailable(
        "PostgreSQL is not installed (no initdb on PATH or in /usr/lib/postgresql/*/bin)"
    )


def _is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def _as_owner(command: Sequence[str]) -> list[str]:
    """Run as the ``postgres`` user when we are root (initdb and postgres refuse root)."""
    if not _is_root():
        return list(command)
    runuser = shutil.which("runuser")
    if runuser is None:
        raise PostgresUnavailable("running as root, and runuser is missing to drop to postgres")
    return [runuser, "-u", _SERVICE_USER, "--", *command]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _run(command: Sequence[str], what: str, *, timeout: float) -> None:
    try:
        subprocess.run(
            command,
            check=True,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.CalledProcessError as exc:
        detail = (exc.stderr or exc.stdout or "").strip().splitlines()
        raise PostgresUnavailable(
            f"{what} failed (exit {exc.returncode}): {detail[-1] if detail else 'no output'}"
        ) from None
    except subprocess.TimeoutExpired:
        raise PostgresUnavailable(f"{what} did not finish within {timeout:g} s") from None
    except OSError as exc:
        raise PostgresUnavailable(f"{what} could not run: {exc}") from None


def _check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise ValueError(f"not a plain database name: {name!r} (letters, digits, _)")
    return name


class PostgresServer:
    """A PostgreSQL server of its own for as long as the ``with`` block (or until
    :meth:`stop`): temporary data directory, free port, superuser ``user`` with a random
    password, and a first database ``database``."""

    def __init__(
        self,
        *,
        user: str = "metaqore",
        database: str = "metaqore",
        bindir: Path | None = None,
        startup_timeout: float = 60.0,
        settings: dict[str, str] | None = None,
    ) -> None:
        self.user = _check_name(user)
        self.database = _check_name(database)
        self.password = secrets.token_hex(12)
        self.host = "127.0.0.1"
        self.port = 0
        self._bindir = bindir
        self._startup_timeout = startup_timeout
        self._settings = {**SETTINGS, **(settings or {})}
        self.base_dir: Path | None = None
        self.running = False

    # -- lifecycle -----------------------------------------------------------------

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def data_dir(self) -> Path:
        if self.base_dir is None:
            raise RuntimeError("the server is not started")
        return self.base_dir / "data"

    @property
    def log_path(self) -> Path:
        if self.base_dir is None:
            raise RuntimeError("the server is not started")
        return self.base_dir / "server.log"

    def start(self) -> Self:
        """initdb, start, create the first database; raise :class:`PostgresUnavailable`
        (after cleaning up) if any step fails."""
        if self.running:
            return self
        bindir = self._bindir or find_bindir()
        self._bindir = bindir
        self.base_dir = Path(tempfile.mkdtemp(prefix="metaqore-pg-"))
        try:
            self._initdb(bindir)
            for attempt in range(3):
                self.port = _free_port()
                try:
                    self._pg_ctl_start(bindir)
                    break
                except PostgresUnavailable:
                    # Another process may have taken the port between probe and bind.
                    if attempt == 2 or "could not bind" not in self._log_tail():
                        raise
            self.running = True
            # A safety net: a process that exits without stop() leaves no server behind.
            atexit.register(self.stop)
            self._admin(f'CREATE DATABASE "{self.database}"')
        except BaseException:
            self.stop()
            raise
        return self

    def _initdb(self, bindir: Path) -> None:
        assert self.base_dir is not None
        password_file = self.base_dir / "password"
        password_file.write_text(self.password + "\n", encoding="utf-8")
        if _is_root():
            try:
                shutil.chown(self.base_dir, user=_SERVICE_USER)
                shutil.chown(password_file, user=_SERVICE_USER)
            except (LookupError, OSError) as exc:
                raise PostgresUnavailable(
                    f"running as root, and the '{_SERVICE_USER}' user cannot own "
                    f"{self.base_dir}: {exc}"
                ) from None
        _run(
            _as_owner(
                [
                    str(bindir / "initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    self.user,
                    f"--pwfile={password_file}",
                    "--auth-local=trust",
                    "--auth-host=scram-sha-256",
                    "-E",
                    "UTF8",
                    "--no-locale",
                    "--no-sync",
                ]
            ),
            "initdb",
            timeout=self._startup_timeout,
        )
        password_file.unlink()

    def _pg_ctl_start(self, bindir: Path) -> None:
        settings = {
            **self._settings,
            "port": str(self.port),
            "unix_socket_directories": f"'{self.data_dir}'",
        }
        # Appended as root keeps the file's owner; the last setting of a name wins.
        with (self.data_dir / "postgresql.conf").open("a", encoding="utf-8") as conf:
            conf.write("\n# metaqore.testing.postgres\n")
            conf.writelines(f"{name} = {value}\n" for name, value in settings.items())
        _run(
            _as_owner(
                [
                    str(bindir / "pg_ctl"),
                    "-D",
                    str(self.data_dir),
                    "-l",
                    str(self.log_path),
                    "-w",
                    "-t",
                    str(int(self._startup_timeout)),
                    "start",
                ]
            ),
            f"pg_ctl start (log: {self.log_path})",
            timeout=self._startup_timeout + 10,
        )

    def _log_tail(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]
        except OSError:
            return ""

    def detach(self) -> Path:
        """Leave the server running after this process exits; returns the directory to
        pass to :func:`stop_data_dir` (or ``stop DIR``) later."""
        if self.base_dir is None:
            raise RuntimeError("the server is not started")
        atexit.unregister(self.stop)
        return self.base_dir

    def stop(self) -> None:
        """Stop the server (if it runs) and delete its data directory."""
        base, self.base_dir = self.base_dir, None
        self.running = False
        atexit.unregister(self.stop)
        if base is None:
            return
        stop_data_dir(base, bindir=self._bindir)

    # -- databases -------------------------------------------------------------------

    def dsn_for(self, database: str) -> str:
        """The SQLAlchemy DSN of ``database`` on this server."""
        return (
            f"postgresql+psycopg://{self.user}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{_check_name(database)}"
        )

    @property
    def dsn(self) -> str:
        """The DSN of the server's first database."""
        return self.dsn_for(self.database)

    def create_database(self, name: str) -> str:
        """Create an empty database and return its DSN."""
        self._admin(f'CREATE DATABASE "{_check_name(name)}"')
        return self.dsn_for(name)

    def drop_database(self, name: str) -> None:
        """Drop a database (closing its connections first); a missing one is fine."""
        self._admin(f'DROP DATABASE IF EXISTS "{_check_name(name)}" WITH (FORCE)')

    def _admin(self, statement: str) -> None:
        if not self.running:
            raise RuntimeError("the server is not running")
        try:
            import psycopg
        except ImportError:
            raise PostgresUnavailable(
                "psycopg 3 is not installed: pip install 'metaqore[postgres]'"
            ) from None
        with psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
            autocommit=True,
            connect_timeout=10,
        ) as connection:
            connection.execute(statement)


def stop_data_dir(base_dir: Path, *, bindir: Path | None = None) -> None:
    """Stop the server whose files are under ``base_dir`` and delete them."""
    data = base_dir / "data"
    try:
        if (data / "postmaster.pid").exists():
            pg_ctl = str((bindir or find_bindir()) / "pg_ctl")
            subprocess.run(
                _as_owner([pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]),
                capture_output=True,
                timeout=60,
                check=False,
                stdin=subprocess.DEVNULL,
            )
    finally:
        shutil.rmtree(base_dir, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    """``start``: start a server, print ``export`` lines, leave it running.
    ``stop DIR``: stop the server started with that directory and delete it."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["start"]:
        started = time.monotonic()
        try:
            server = PostgresServer().start()
        except PostgresUnavailable as exc:
            print(f"cannot start PostgreSQL: {exc}", file=sys.stderr)
            return 1
        version = _server_version(server)
        print(f"export {DSN_ENV}={shlex.quote(server.dsn)}")
        print(f"export {DIR_ENV}={shlex.quote(str(server.detach()))}")
        print(
            f"PostgreSQL {version} on port {server.port} "
            f"(started in {time.monotonic() - started:.1f} s)",
            file=sys.stderr,
        )
        return 0
    if len(args) == 2 and args[0] == "stop":
        stop_data_dir(Path(args[1]))
        return 0
    print("usage: python -m metaqore.testing.postgres start | stop DIR", file=sys.stderr)
    return 2


def _server_version(server: PostgresServer) -> Any:
    import psycopg

    with psycopg.connect(
        host=server.host,
        port=server.port,
        user=server.user,
        password=server.password,
        dbname=server.database,
    ) as connection:
        row = connection.execute("SHOW server_version").fetchone()
        return str(row[0]).split()[0] if row else "?"


if __name__ == "__main__":
    raise SystemExit(main())


__all__ = [
    "DIR_ENV",
    "DSN_ENV",
    "SETTINGS",
    "PostgresServer",
    "PostgresUnavailable",
    "find_bindir",
    "stop_data_dir",
]
