"""A real PostgreSQL server for the tests: no mocks.

``pg_server`` (one per session) runs ``initdb`` into a temporary directory and starts ``postgres`` on a free
loopback port with its unix socket in that directory, trust authentication and ``fsync=off`` (the data are thrown
away, durability across a machine crash is not what is tested; a clean stop and start keeps every committed row).
Tests may ``stop()`` and ``start()`` it: the same data directory and the same port, so a URL taken before a stop
works again after the start. At the end of the session, whatever the tests did or however they failed, the server
is stopped and its directory removed.

``pg_database`` (one per test) creates a database with a unique name on that server and drops it afterwards, so
tests never see each other's tables.

Root cannot run ``postgres``; as root the server runs as the ``postgres`` system user (Debian's package creates
it), or ``nobody`` where there is none. The binaries are looked for in ``$HFT_PG_BINDIR``, on ``PATH`` and under
Debian's ``/usr/lib/postgresql/<version>/bin``; ``.ci/postgres.sh`` installs them. The fixtures skip, saying why,
only when they are not there.

Import the fixtures into the conftest of the directory whose tests need them::

    from tests.pg import pg_database, pg_server  # noqa: F401
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

SUPERUSER = "hft"
DIR_PREFIX = "hft-pg-"
OWNER_FILE = "owner.pid"
START_TIMEOUT_S = 30
STOP_TIMEOUT_S = 30
# settings for a throwaway server: fast, small, and nothing outside its own directory. synchronous_commit stays on:
# a commit has returned only once its WAL is written, so even a crashed (killed) server keeps every committed row
# (fsync=off risks only an OS crash)
SERVER_SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "fsync": "off",
    "full_page_writes": "off",
    "max_connections": "50",
    "shared_buffers": "'32MB'",
    "logging_collector": "off",
    "log_min_messages": "warning",
}
# connection settings of the caller's environment would point the tools elsewhere
_PG_ENV = ("PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD", "PGSERVICE", "PGDATA",
           "PGOPTIONS", "PGSSLMODE", "PGCONNECT_TIMEOUT")


class PgUnavailableError(RuntimeError):
    """The server binaries are not on this machine."""


def find_bindir() -> Path:
    """Return the directory holding ``initdb``, ``pg_ctl`` and ``postgres``, the newest version when several are
    installed; raise ``PgUnavailableError`` saying where it looked when there is none."""
    candidates: list[Path] = []
    if os.environ.get("HFT_PG_BINDIR"):
        candidates.append(Path(os.environ["HFT_PG_BINDIR"]))
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    versions = glob.glob("/usr/lib/postgresql/*/bin")
    candidates += [Path(p) for p in sorted(versions, key=_version_key, reverse=True)]
    for bindir in candidates:
        if all(os.access(bindir / tool, os.X_OK) for tool in ("initdb", "pg_ctl", "postgres", "pg_isready")):
            return bindir
    raise PgUnavailableError("PostgreSQL server binaries (initdb, pg_ctl, postgres) not found in $HFT_PG_BINDIR, "
                             "on PATH or under /usr/lib/postgresql/<version>/bin: run .ci/postgres.sh "
                             "(apt-get install postgresql)")


def _version_key(path: str) -> tuple[int, ...]:
    version = Path(path).parent.name
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def free_port() -> int:
    """Return a loopback port nobody listens on now (the server binds it a moment later; a start that loses the
    race picks another)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _server_account() -> pwd.struct_passwd | None:
    """Return the unprivileged account the server runs as when we are root, ``None`` when we are not root (the
    server then runs as ourselves)."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and neither a 'postgres' nor a 'nobody' account exists to run the server")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_dirs() -> None:
    """Remove the server directories of test sessions that died without cleaning up (SIGKILL): those whose
    session process and postmaster are both gone. A concurrent session's directory is left alone."""
    for owner_file in Path(tempfile.gettempdir()).glob(f"{DIR_PREFIX}*/{OWNER_FILE}"):
        base = owner_file.parent
        try:
            owner = int(owner_file.read_text().split()[0])
            postmaster_pid = base / "data" / "postmaster.pid"
            postmaster = int(postmaster_pid.read_text().split()[0]) if postmaster_pid.exists() else 0
        except (OSError, ValueError, IndexError):
            continue
        if not _alive(owner) and not (postmaster and _alive(postmaster)):
            shutil.rmtree(base, ignore_errors=True)


_PR_SET_PDEATHSIG = 1
try:  # resolved once here: the function below runs in the forked child, where as little as possible should happen
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def _stop_with_parent() -> None:
    """In the postmaster's child process, after the switch to the server's account (a change of user clears the
    setting): ask the kernel to send SIGINT, PostgreSQL's fast shutdown, when the test process dies."""
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, int(signal.SIGINT))


@dataclass
class PgServer:
    """One PostgreSQL server in a temporary directory. Drive it from one process (the pytest session)."""

    bindir: Path
    base: Path
    port: int
    account: pwd.struct_passwd | None
    user: str = SUPERUSER
    host: str = "127.0.0.1"
    version: str = ""
    _ever_started: bool = field(default=False, repr=False)
    _postmaster: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def datadir(self) -> Path:
        return self.base / "data"

    @property
    def socket_dir(self) -> Path:
        return self.base / "socket"

    @property
    def logfile(self) -> Path:
        return self.base / "server.log"

    @property
    def url(self) -> str:
        """The URL of the ``postgres`` maintenance database, as the superuser."""
        return self.url_for("postgres")

    def url_for(self, dbname: str) -> str:
        """Return the URL of database ``dbname`` on this server, as the superuser (trust: no password)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    @property
    def running(self) -> bool:
        return self._postmaster is not None and self._postmaster.poll() is None

    # -- lifecycle -------------------------------------------------------------------------------------------

    @classmethod
    def create(cls, bindir: Path | None = None) -> PgServer:
        """Run ``initdb`` into a new temporary directory; the server is not started yet. The directory belongs to
        the caller (``destroy()`` removes it)."""
        bindir = bindir or find_bindir()
        account = _server_account()
        remove_stale_dirs()
        base = Path(tempfile.mkdtemp(prefix=DIR_PREFIX))
        server = cls(bindir=bindir, base=base, port=free_port(), account=account)
        try:
            (base / OWNER_FILE).write_text(f"{os.getpid()}\n")
            server.socket_dir.mkdir()
            if account is not None:
                for path in (base, server.socket_dir):
                    os.chown(path, account.pw_uid, account.pw_gid)
            server._run([str(bindir / "initdb"), "-D", str(server.datadir), "-U", SUPERUSER, "-A", "trust",
                         "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"])
            server.version = server._run([str(bindir / "postgres"), "--version"]).stdout.strip()
            server._write_settings()
        except BaseException:
            server.destroy()
            raise
        return server

    def start(self) -> None:
        """Start the server and return once it accepts connections; on the same port as before, unless this is the
        first start and another process took the port meanwhile.

        The postmaster is our child (not ``pg_ctl start``'s), so its exit is reaped here and a stop leaves no
        zombie; it runs in its own session, so a Ctrl-C of the test run does not reach it before the fixture's
        stop does; and it is asked to shut down (SIGINT, a fast shutdown) when the test process dies without
        stopping it (SIGKILL, a CI timeout)."""
        if self.running:
            return
        for attempt in range(3):
            error = self._spawn_and_wait()
            if error is None:
                self._ever_started = True
                return
            if not ("Address already in use" in error and attempt < 2 and not self._ever_started):
                raise RuntimeError(f"PostgreSQL did not start on {self.host}:{self.port}:\n{error}")
            self.port = free_port()
            self._write_settings()

    def stop(self) -> None:
        """Stop the server (``pg_ctl stop -m fast``: open sessions are ended, committed rows stay) and return once
        it has exited. Stopping a stopped server does nothing."""
        postmaster, self._postmaster = self._postmaster, None
        if postmaster is None:
            return
        if postmaster.poll() is None:
            self._ctl("stop", "-m", "fast", "-w", "-t", str(STOP_TIMEOUT_S), check=False)
        try:
            postmaster.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            postmaster.kill()  # its backends exit when the postmaster is gone
            postmaster.wait(STOP_TIMEOUT_S)

    def destroy(self) -> None:
        """Stop the server if it runs and remove its directory. Safe to call more than once."""
        try:
            self.stop()
        finally:
            shutil.rmtree(self.base, ignore_errors=True)

    # -- databases -------------------------------------------------------------------------------------------

    def create_database(self, prefix: str = "test") -> str:
        """Create a database with a unique name and return the name."""
        name = f"{prefix}_{uuid.uuid4().hex[:12]}"
        self._admin(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        """Drop database ``name``, ending whatever sessions are still connected to it."""
        self._admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def _admin(self, sql: str) -> None:
        import psycopg  # the driver comes with the dev extra; the server helpers above do not need it

        with psycopg.connect(self.url, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql)

    # -- internals -------------------------------------------------------------------------------------------

    def _write_settings(self) -> None:
        """Write the server's settings into its data directory, where every start reads them: the port and socket
        stay the same across a stop and a start."""
        settings = dict(SERVER_SETTINGS, port=str(self.port), unix_socket_directories=f"'{self.socket_dir}'")
        text = "# written by tests/pg.py\n" + "".join(f"{key} = {value}\n" for key, value in settings.items())
        conf = self.datadir / "postgresql.auto.conf"
        conf.write_text(text)
        if self.account is not None:
            os.chown(conf, self.account.pw_uid, self.account.pw_gid)

    def _ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self._run([str(self.bindir / "pg_ctl"), "-D", str(self.datadir), *args], check=check)

    def _tool_options(self) -> dict[str, object]:
        """Return the keyword arguments that run a PostgreSQL program as the server's account, in the server's
        directory, without the caller's PG* settings."""
        env = {key: value for key, value in os.environ.items() if key not in _PG_ENV}
        env["LC_ALL"] = "C"
        options: dict[str, object] = {"cwd": self.base, "env": env, "stdin": subprocess.DEVNULL}
        if self.account is not None:
            env["HOME"] = str(self.base)
            options.update(user=self.account.pw_uid, group=self.account.pw_gid, extra_groups=[])
        return options

    def _run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL tool as the server's account and wait for it."""
        result = subprocess.run(argv, capture_output=True, text=True, timeout=START_TIMEOUT_S + 30,
                                **self._tool_options())
        if check and result.returncode != 0:
            raise RuntimeError(f"{Path(argv[0]).name} failed (exit {result.returncode}): "
                               f"{result.stdout}{result.stderr}")
        return result

    def _spawn_and_wait(self) -> str | None:
        """Start the postmaster and wait until it accepts TCP connections on the address the tests use; return
        ``None`` then, or the end of the server log when it exited or did not get ready in time."""
        with open(self.logfile, "ab") as log:
            self._postmaster = subprocess.Popen([str(self.bindir / "postgres"), "-D", str(self.datadir)],
                                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                                preexec_fn=_stop_with_parent, **self._tool_options())
        ready = [str(self.bindir / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port), "-U", self.user,
                 "-d", "postgres", "-t", "1"]
        deadline = time.monotonic() + START_TIMEOUT_S
        while self._postmaster.poll() is None:
            if self._run(ready, check=False).returncode == 0:
                return None
            if time.monotonic() > deadline:
                self.stop()
                return f"not accepting connections after {START_TIMEOUT_S} s\n{self._log_tail()}"
            time.sleep(0.02)
        self._postmaster = None
        return self._log_tail()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.logfile.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no server log)"


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """Yield a running PostgreSQL server for the whole session; stop it and remove its directory at the end,
    even when tests failed or left it stopped. Skip only when the server binaries are not installed."""
    try:
        server = PgServer.create()
    except PgUnavailableError as exc:
        pytest.skip(str(exc))
    try:
        server.start()
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_database(pg_server: PgServer) -> Iterator[str]:
    """Yield the URL of a new, empty database for this test; drop it afterwards (starting the server again first
    when the test left it stopped, so the next test finds it running)."""
    name = pg_server.create_database()
    try:
        yield pg_server.url_for(name)
    finally:
        pg_server.start()
        pg_server.drop_database(name)
