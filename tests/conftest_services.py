"""Real services for the tests of registration, sync and restart: MariaDB and supervisord on loopback.

Loaded as a plugin by tests/conftest.py.  MariaDB (Debian's ``mariadbd``,
installed by scripts/ensure-system-packages.sh) is started once per session,
only when a collected test uses the ``mariadb`` database alias, in a fresh
data directory, on a free loopback port, with real users and passwords:

* ``root`` (password ``ROOT_PASSWORD``): pytest-django creates the test database
  ``test_esb`` (and its tables, from tests/django_esb) with it;
* ``esbgen`` (``WRITER_PASSWORD``, which needs URL quoting): may read and write ``test_esb``;
* ``reader`` (``READER_PASSWORD``): may only read ``test_esb``.

If MariaDB cannot start, the tests that need it fail with the reason; they never skip.
supervisord (PyPI ``supervisor``) is started once per session, lazily, on a
unix socket in a temporary folder, managing a program named ``esb``.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

ROOT_PASSWORD = "root-Pw.1"
WRITER, WRITER_PASSWORD = "esbgen", "s3cr@t:pw/1"
READER, READER_PASSWORD = "reader", "reader-Pw.2"
TEST_DB = "test_esb"
START_DEADLINE = 60.0  # seconds a service may take to come up before the tests fail


def pytest_configure(config) -> None:
    # A shell without job control starts a background job with SIGINT ignored, and an ignored
    # signal stays ignored across exec: every esbgen the tests interrupt would then go on as if
    # Ctrl-C had never come. A handler is reset to the default at exec, so each child gets Python's.
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _program(*names: str) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
        for folder in ("/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"):
            if os.access(Path(folder, name), os.X_OK):
                return str(Path(folder, name))
    return None


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


class MariaDB:
    """A throw-away MariaDB server on 127.0.0.1:<free port>."""

    def __init__(self, base: Path):
        self.base = base
        self.data = base / "data"
        self.socket = base / "mysqld.sock"
        self.log = base / "mysqld.log"
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> None:
        mariadbd = _program("mariadbd", "mysqld")
        install_db = _program("mariadb-install-db", "mysql_install_db")
        if not mariadbd or not install_db:
            pytest.fail(
                "MariaDB is not installed (no mariadbd/mariadb-install-db): run `make test`, whose "
                "scripts/ensure-system-packages.sh installs Debian's mariadb-server",
                pytrace=False,
            )
        as_root = ["--user=root"] if os.geteuid() == 0 else []
        done = subprocess.run(
            [install_db, "--no-defaults", f"--datadir={self.data}", "--auth-root-authentication-method=normal",
             "--skip-test-db", "--skip-name-resolve", *as_root],
            capture_output=True, text=True, check=False,
        )
        if done.returncode != 0:
            output = " | ".join((done.stdout + done.stderr).strip().splitlines()[-8:])
            pytest.fail(f"mariadb-install-db failed (exit {done.returncode}): {output}", pytrace=False)
        self.process = subprocess.Popen(
            [mariadbd, "--no-defaults", f"--datadir={self.data}", f"--socket={self.socket}", f"--port={self.port}",
             "--bind-address=127.0.0.1", f"--pid-file={self.base / 'mysqld.pid'}", f"--log-error={self.log}",
             "--skip-log-bin", "--skip-name-resolve", "--innodb-buffer-pool-size=32M", *as_root],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        deadline = time.monotonic() + START_DEADLINE
        while True:
            if self.process.poll() is not None:
                pytest.fail(f"mariadbd exited with {self.process.returncode} at start: {_tail(self.log)}", pytrace=False)
            try:
                connection = self._connect(unix_socket=str(self.socket), user="root", password="")
                break
            except Exception as error:  # not listening yet
                if time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"mariadbd did not accept connections: {error}; log: {_tail(self.log)}", pytrace=False)
                time.sleep(0.1)
        with connection.cursor() as cursor:
            for statement in (
                "ALTER USER 'root'@'localhost' IDENTIFIED BY %(root)s",
                "CREATE OR REPLACE USER 'root'@'127.0.0.1' IDENTIFIED BY %(root)s",
                "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION",
                f"CREATE USER '{WRITER}'@'%%' IDENTIFIED BY %(writer)s",
                f"GRANT SELECT, INSERT, UPDATE, DELETE ON `{TEST_DB}`.* TO '{WRITER}'@'%%'",
                f"CREATE USER '{READER}'@'%%' IDENTIFIED BY %(reader)s",
                f"GRANT SELECT ON `{TEST_DB}`.* TO '{READER}'@'%%'",
                "FLUSH PRIVILEGES",
            ):
                cursor.execute(statement, {"root": ROOT_PASSWORD, "writer": WRITER_PASSWORD, "reader": READER_PASSWORD})
        connection.close()

    @staticmethod
    def _connect(**kwargs: Any):
        import pymysql

        return pymysql.connect(connect_timeout=5, autocommit=True, **kwargs)

    def sql(self, statement: str, args: Any = None, database: str | None = TEST_DB) -> list[tuple]:
        """Run one statement as root over TCP; the rows it returns."""
        connection = self._connect(host="127.0.0.1", port=self.port, user="root", password=ROOT_PASSWORD,
                                   database=database)
        try:
            with connection.cursor() as cursor:
                cursor.execute(statement, args)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def url(self, user: str = WRITER, password: str | None = WRITER_PASSWORD, database: str = TEST_DB,
            port: int | None = None) -> str:
        auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password is not None else "")
        return f"mysql://{auth}@127.0.0.1:{port or self.port}/{database}"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory) -> MariaDB:
    server = MariaDB(tmp_path_factory.mktemp("mariadb"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


def _uses_alias(items, alias: str) -> bool:
    for item in items:
        for marker in item.iter_markers("django_db"):
            databases = marker.kwargs.get("databases")
            if databases == "__all__" or (databases and alias in databases):
                return True
    return False


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, request) -> None:
    """Point the ``mariadb`` alias at the server this session starts, when a test uses it."""
    if not _uses_alias(request.session.items, "mariadb"):
        return
    server = request.getfixturevalue("mariadb_server")
    from django.conf import settings

    settings.DATABASES["mariadb"].update(HOST="127.0.0.1", PORT=str(server.port), USER="root", PASSWORD=ROOT_PASSWORD)


@pytest.fixture
def unblocked_db(django_db_blocker):
    """Database connections allowed without a test database (esbgen's own, to files of the test)."""
    with django_db_blocker.unblock():
        yield


@dataclass
class EsbDatabase:
    """The test database of one alias, as esbgen and a manage.py subprocess reach it."""

    kind: str  # "sqlite" or "mariadb"
    alias: str
    server: MariaDB | None = None

    @property
    def name(self) -> str:
        from django.db import connections

        return connections[self.alias].settings_dict["NAME"]

    @property
    def url(self) -> str:
        """What an operator passes as --database (MariaDB: the read-write user, with its password)."""
        if self.server is None:
            return f"sqlite://{self.name}"
        return self.server.url()

    def model(self):
        from django_esb.bkcore.models import ComponentSystem

        return ComponentSystem.objects.using(self.alias)

    def rows(self, name: str | None = None) -> list[dict[str, Any]]:
        query = self.model().all()
        if name is not None:
            query = query.filter(name=name)
        return list(query.order_by("pk").values("name", "label", "remark", "component_admin", "execute_timeout"))

    def add(self, **fields: Any) -> None:
        self.model().create(**fields)


DATABASES = [
    pytest.param("sqlite", marks=pytest.mark.django_db(transaction=True, databases=["default"]), id="sqlite"),
    pytest.param("mariadb", marks=pytest.mark.django_db(transaction=True, databases=["mariadb"]), id="mariadb"),
]


@pytest.fixture(params=DATABASES)
def esb_db(request) -> EsbDatabase:
    """The ESB's database on SQLite, then on MariaDB (each test runs on both), emptied after the test."""
    if request.param == "sqlite":
        return EsbDatabase("sqlite", "default")
    return EsbDatabase("mariadb", "mariadb", request.getfixturevalue("mariadb_server"))


@pytest.fixture
def sqlite_db() -> EsbDatabase:
    """The SQLite test database alone (mark the test django_db(transaction=True))."""
    return EsbDatabase("sqlite", "default")


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The standalone ``esbgen`` command in a fresh process (no Django configured beforehand)."""
    return subprocess.run([sys.executable, "-m", "esbgen", *map(str, args)], env=env, cwd=cwd,
                          capture_output=True, text=True, check=False)


class Supervisor:
    """supervisord on a unix socket, managing a long-sleeping program named ``esb`` (or ``program``, its section)."""

    def __init__(self, base: Path, program: str | None = None):
        self.base = base
        self.program = program or (f"command={sys.executable} -c \"import signal; signal.pause()\"\n"
                                   "startsecs=0\nstopwaitsecs=10\nautorestart=false\n")
        self.conf = base / "supervisord.conf"
        self.sock = base / "supervisor.sock"
        self.process: subprocess.Popen | None = None
        bin_dir = Path(sys.executable).parent
        self.supervisord = str(bin_dir / "supervisord")
        self.supervisorctl = str(bin_dir / "supervisorctl")

    def start(self) -> None:
        if not os.access(self.supervisord, os.X_OK):
            pytest.fail(f"{self.supervisord} is missing: install the test extra (pip install -e '.[test]')", pytrace=False)
        self.conf.write_text(
            f"[unix_http_server]\nfile={self.sock}\nchmod=0700\n\n"
            f"[supervisord]\nlogfile={self.base / 'supervisord.log'}\npidfile={self.base / 'supervisord.pid'}\n"
            f"childlogdir={self.base}\nnodaemon=true\n\n"
            "[rpcinterface:supervisor]\nsupervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
            f"[supervisorctl]\nserverurl=unix://{self.sock}\n\n"
            f"[program:esb]\n{self.program}"
        )
        self.process = subprocess.Popen([self.supervisord, "-c", str(self.conf)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + START_DEADLINE
        while self.pid() is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"supervisord did not start the esb program: {_tail(self.base / 'supervisord.log')}",
                            pytrace=False)
            time.sleep(0.05)

    def ctl(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([self.supervisorctl, "-c", str(self.conf), *args], capture_output=True, text=True,
                              check=False)

    def pid(self) -> int | None:
        done = self.ctl("pid", "esb")
        text = done.stdout.strip()
        return int(text) if done.returncode == 0 and text.isdigit() and int(text) > 0 else None

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def supervisor(tmp_path_factory) -> Supervisor:
    # A short base path: unix socket paths are limited to about 100 bytes.
    service = Supervisor(tmp_path_factory.mktemp("sv"))
    try:
        service.start()
        yield service
    finally:
        service.stop()
