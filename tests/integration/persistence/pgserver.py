"""A private PostgreSQL server for tests: ``initdb`` in a temporary folder,
``pg_ctl start`` on 127.0.0.1 and a free port, ``pg_ctl stop -m fast`` at
the end, then the folder is removed.

initdb refuses to run as root: as root, the commands run as the ``postgres``
system user (``runuser -u postgres --``), which owns the folder.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: The database the tests use (created by ``start``).
DATABASE = "hewitt_test"
USER = "hewitt"


class PostgresUnavailable(Exception):
    """PostgreSQL is not installed (or cannot be run) on this machine."""


def find_bin_dir() -> Path:
    """The folder with initdb and pg_ctl: $HEWITT_PG_BIN if set, else on PATH,
    else the newest /usr/lib/postgresql/*/bin (Debian installs them there,
    off PATH)."""
    chosen = os.environ.get("HEWITT_PG_BIN")
    if chosen:
        if all((Path(chosen) / name).is_file() for name in ("initdb", "pg_ctl", "createdb")):
            return Path(chosen)
        raise PostgresUnavailable(f"HEWITT_PG_BIN={chosen} has no initdb, pg_ctl, createdb")
    initdb, pg_ctl = shutil.which("initdb"), shutil.which("pg_ctl")
    if initdb and pg_ctl:
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if candidates:
        return Path(candidates[-1]).parent
    raise PostgresUnavailable(
        "initdb and pg_ctl are not on PATH nor in /usr/lib/postgresql/*/bin "
        "(Debian: apt-get install -y postgresql)"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresServer:
    """One private cluster. Use ``PostgresServer.started()``."""

    def __init__(self, bin_dir: Path, folder: Path, as_user: str | None) -> None:
        self.bin_dir = bin_dir
        self.folder = folder
        self.data = folder / "data"
        self.sockets = folder / "sockets"
        self.log = folder / "server.log"
        self.as_user = as_user
        self.port = 0

    @property
    def dsn(self) -> str:
        return f"postgresql://{USER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *command: str) -> None:
        argv = [str(self.bin_dir / command[0]), *command[1:]]
        if self.as_user is not None:
            argv = ["runuser", "-u", self.as_user, "--", *argv]
        result = subprocess.run(argv, capture_output=True, text=True, check=False, cwd="/")
        if result.returncode != 0:
            log = self.log.read_text(errors="replace") if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(argv)} failed ({result.returncode}):\n{result.stdout}\n"
                f"{result.stderr}\n{log[-4000:]}"
            )

    def start(self) -> None:
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            USER,
            "--auth=trust",
            "--encoding=UTF8",
            "--no-locale",
            "--no-sync",  # the cluster is thrown away; the server itself runs with fsync on
        )
        for attempt in range(3):
            self.port = free_port()
            options = (
                f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.sockets} "
                "-c fsync=on -c synchronous_commit=on"
            )
            try:
                self._run(
                    "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60",
                    "-o", options, "start",
                )  # fmt: skip
                break
            except RuntimeError:
                if attempt == 2:  # the port was taken meanwhile, three times: give up
                    raise
        self._run("createdb", "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, DATABASE)

    def stop(self) -> None:
        if self.port and (self.data / "postmaster.pid").exists():
            self._run("pg_ctl", "-D", str(self.data), "-m", "fast", "-w", "stop")

    @staticmethod
    def prerequisites() -> tuple[Path, str | None]:
        """(the folder of initdb and pg_ctl, the user to run them as); raises
        PostgresUnavailable when PostgreSQL cannot be run here."""
        bin_dir = find_bin_dir()
        if os.geteuid() != 0:
            return bin_dir, None
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresUnavailable(
                "running as root and there is no 'postgres' user to run initdb as"
            ) from None
        if shutil.which("runuser") is None:
            raise PostgresUnavailable("running as root and runuser is not installed")
        return bin_dir, "postgres"

    @classmethod
    @contextmanager
    def started(
        cls, prerequisites: tuple[Path, str | None] | None = None
    ) -> Iterator[PostgresServer]:
        """A running server; stopped and its folder deleted on exit."""
        bin_dir, as_user = prerequisites or cls.prerequisites()
        folder = Path(tempfile.mkdtemp(prefix="hewitt-pg-"))
        try:
            (folder / "sockets").mkdir()
            if as_user is not None:
                account = pwd.getpwnam(as_user)
                for path in (folder, folder / "sockets"):
                    os.chown(path, account.pw_uid, account.pw_gid)
            server = cls(bin_dir, folder, as_user)
            try:
                server.start()
                yield server
            finally:
                server.stop()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
