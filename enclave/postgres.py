"""A PostgreSQL server of our own, from Debian's packages: a data folder made by `initdb`, a free
port on 127.0.0.1, and nothing else (no Unix socket, no other address).

The tests start one for the store's PostgreSQL backend and the bridge replicas, and
`enclave up --store postgresql` starts one for a local stack. PostgreSQL refuses to run as root:
as root, the server runs as the `postgres` user that Debian's package makes, and owns its folder.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from enclave.anvil import free_port
from enclave.lifetime import stop_process, tied_to_this_process

DATABASE = "enclave"
START_TIMEOUT_S = 30.0


class PostgresError(RuntimeError):
    """The server could not be made or started; the message says why and what to do."""


def binary(name: str) -> str:
    """`initdb`, `postgres` or `pg_ctl` of the newest PostgreSQL Debian's packages installed."""
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), key=_version)
    if candidates:
        return candidates[-1]
    found = shutil.which(name)
    if found is None:
        raise PostgresError(f"{name} not found: run `make setup`, which installs Debian's postgresql package")
    return found


def _version(path: str) -> int:
    try:
        return int(Path(path).parts[4])
    except (IndexError, ValueError):
        return 0


def available() -> bool:
    """Whether this machine has the server's programs."""
    try:
        binary("initdb")
        binary("postgres")
    except PostgresError:
        return False
    return True


@dataclass
class PostgresServer:
    """A server over `data_dir`, made on first start and kept across restarts; use it as a
    context manager or call `start` and `stop`. `url` carries the password, which is also in
    `data_dir`/password (mode 0600): nothing else holds it."""

    data_dir: Path
    port: int = field(default_factory=free_port)
    log_path: Path | None = None
    _process: subprocess.Popen[bytes] | None = None

    @property
    def password(self) -> str:
        return (self.data_dir / "password").read_text().strip()

    @property
    def url(self) -> str:
        return self.url_for(DATABASE)

    def url_for(self, database: str) -> str:
        """The URL of one of the server's databases (`postgres`: the one every server has)."""
        return f"postgresql://enclave:{self.password}@127.0.0.1:{self.port}/{database}"

    @property
    def pid(self) -> int:
        if self._process is None:
            raise PostgresError("the server is not running")
        return self._process.pid

    def start(self, timeout: float = START_TIMEOUT_S) -> PostgresServer:
        cluster = self.data_dir / "cluster"
        fresh = not (cluster / "PG_VERSION").exists()
        if fresh:
            self._initdb(cluster)
        argv = [
            binary("postgres"),
            "-D", str(cluster),
            "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1",
            "-c", "unix_socket_directories=",
            # A test or a local stack: what a crash loses is re-read from the chain.
            "-c", "fsync=off",
            "-c", "max_connections=200",
        ]  # fmt: skip
        log = open(self.log_path or self.data_dir / "postgres.log", "ab")  # noqa: SIM115 - the child keeps it
        try:
            # S603: the argument list is Debian's postgres binary and our own flags, no shell.
            self._process = subprocess.Popen(  # noqa: S603
                tied_to_this_process(self._as_owner(argv)), stdout=log, stderr=subprocess.STDOUT
            )
        finally:
            log.close()
        self._wait_ready(timeout)
        if fresh:
            self._create_database()
        return self

    def stop(self) -> None:
        if self._process is None:
            return
        stop_process(self._process, timeout=15)  # SIGTERM: PostgreSQL's "smart" shutdown; its children follow
        self._process = None

    def __enter__(self) -> PostgresServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.stop()

    # -- making the cluster ---------------------------------------------------------------------

    def _initdb(self, cluster: Path) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        password_file = self.data_dir / "password"
        password_file.write_text(secrets.token_hex(16) + "\n")
        password_file.chmod(0o600)
        self._give_to_owner(self.data_dir)
        # initdb reads the superuser's password from a file; it is the same one, readable by the
        # server's user only.
        argv = [
            binary("initdb"), "-D", str(cluster), "-U", "enclave", "--pwfile", str(password_file),
            "--auth", "scram-sha-256", "-E", "UTF8", "--locale", "C",
        ]  # fmt: skip
        # S603: Debian's initdb with our own arguments, no shell.
        done = subprocess.run(self._as_owner(argv), capture_output=True, text=True, timeout=120, check=False)  # noqa: S603
        if done.returncode != 0:
            raise PostgresError(f"initdb failed: {done.stderr.strip() or done.stdout.strip()}")

    def _create_database(self) -> None:
        import psycopg  # the bridge's dependency; imported here so the CLI starts without it

        with psycopg.connect(self.url_for("postgres"), autocommit=True, connect_timeout=10) as db:
            db.execute(f"CREATE DATABASE {DATABASE}")

    def _wait_ready(self, timeout: float) -> None:
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            if self._process is not None and self._process.poll() is not None:
                raise PostgresError(
                    f"postgres exited with {self._process.returncode}: see {self.data_dir}/postgres.log"
                )
            try:
                with psycopg.connect(self.url_for("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise PostgresError(f"postgres did not accept connections within {timeout:.0f} s") from None
                time.sleep(0.1)

    # -- running as the server's own user -------------------------------------------------------

    def _as_owner(self, argv: list[str]) -> list[str]:
        if os.geteuid() != 0:
            return argv
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            raise PostgresError("PostgreSQL does not run as root, and setpriv (util-linux) is missing")
        return [setpriv, "--reuid=postgres", "--regid=postgres", "--clear-groups", *argv]

    def _give_to_owner(self, folder: Path) -> None:
        if os.geteuid() != 0:
            return
        try:
            owner = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresError("as root, the server runs as `postgres`: install Debian's postgresql package") from None
        for path in (folder, *folder.rglob("*")):
            os.chown(path, owner.pw_uid, owner.pw_gid)
        folder.chmod(0o700)
