"""A throwaway PostgreSQL server for tests: initdb in a temp dir, pg_ctl on a free port.

PostgreSQL refuses to run as root, and CI runs as root: then the cluster belongs to the
`postgres` system user and every server command runs through `runuser -u postgres --`.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

from tests.support.ports import free_port

SUPERUSER = "postgres"
DATABASE = "aftersales"
SEARCHED = "initdb/pg_ctl on PATH, or /usr/lib/postgresql/*/bin"
PREFIX = "aftersales-pg-"
OWNER_FILE = "owner.pid"  # the test process a cluster belongs to


def _temp_root(as_root: bool) -> str:
    # As root, under /tmp, so every parent directory is traversable by the postgres user.
    return "/tmp" if as_root else tempfile.gettempdir()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def find_bin_dir() -> Path | None:
    """The directory holding `initdb` and `pg_ctl`: PATH first, then Debian's versioned dirs."""
    candidates: list[Path] = []
    on_path = shutil.which("initdb")
    if on_path:
        candidates += [Path(on_path).parent, Path(on_path).resolve().parent]
    # Newest major version first.
    debian = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    candidates += [Path(p) for p in debian]
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    return None


class PostgresServer:
    """One PostgreSQL cluster on 127.0.0.1 with trust auth and one empty database."""

    def __init__(self, bin_dir: Path) -> None:
        self.bin_dir = bin_dir
        self.as_root = os.geteuid() == 0
        self.port = free_port()
        self.base: Path | None = None
        self.running = False

    @property
    def url(self) -> str:
        """The `AFTERSALES_DATABASE_URL` of the test database."""
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{DATABASE}"

    def _run(self, *args: str) -> None:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_root:
            command = ["runuser", "-u", SUPERUSER, "--", *command]
        done = subprocess.run(
            command, cwd=self.base, capture_output=True, text=True, timeout=120, check=False
        )
        if done.returncode != 0:
            log = self.base / "postgres.log" if self.base else None
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}):\n"
                f"{done.stdout}\n{done.stderr}\n{tail}"
            )

    def start(self) -> PostgresServer:
        """initdb, start the server, create the database."""
        self._reap_stale()
        if self.as_root:
            try:
                owner = pwd.getpwnam(SUPERUSER)
            except KeyError:
                raise RuntimeError(
                    "running as root, but there is no `postgres` system user to run PostgreSQL "
                    "as (installing Debian's `postgresql` package creates it)"
                ) from None
            self.base = Path(tempfile.mkdtemp(prefix=PREFIX, dir=_temp_root(True)))
            os.chmod(self.base, 0o755)
            os.chown(self.base, owner.pw_uid, owner.pw_gid)
        else:
            self.base = Path(tempfile.mkdtemp(prefix=PREFIX, dir=_temp_root(False)))
        (self.base / OWNER_FILE).write_text(str(os.getpid()))
        data, sockets = self.base / "data", self.base / "sockets"
        self._run(
            "initdb",
            "-D",
            str(data),
            "-U",
            SUPERUSER,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--no-locale",
            "--no-sync",
        )
        sockets.mkdir()
        if self.as_root:
            os.chown(sockets, owner.pw_uid, owner.pw_gid)
        options = (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {sockets} "
            # A test cluster loses nothing worth keeping in a crash; skip the flushes.
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(
            "pg_ctl",
            "-D",
            str(data),
            "-o",
            options,
            "-l",
            str(self.base / "postgres.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        self.running = True
        self._create_database()
        return self

    def _reap_stale(self) -> None:
        """Stop and delete clusters left by test runs that were killed before their teardown.

        pg_ctl starts the server detached, so a run ended by SIGKILL or a CI timeout would
        leave it running for good; the next run cleans up after it.
        """
        for base in glob.glob(os.path.join(_temp_root(self.as_root), f"{PREFIX}*")):
            try:
                owner = int((Path(base) / OWNER_FILE).read_text())
            except (OSError, ValueError):
                continue  # not ours, or still being created
            if _alive(owner):
                continue
            data = Path(base) / "data"
            if (data / "postmaster.pid").exists():
                command = [str(self.bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]
                if self.as_root:
                    command = ["runuser", "-u", SUPERUSER, "--", *command]
                subprocess.run(command, capture_output=True, timeout=60, check=False)
            shutil.rmtree(base, ignore_errors=True)

    def _create_database(self) -> None:
        import psycopg

        admin = f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres"
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f"CREATE DATABASE {DATABASE}")

    def stop(self) -> None:
        """Stop the server and delete the cluster."""
        try:
            if self.running and self.base is not None:
                self._run("pg_ctl", "-D", str(self.base / "data"), "-m", "fast", "-w", "stop")
                self.running = False
        finally:
            if self.base is not None:
                shutil.rmtree(self.base, ignore_errors=True)
                self.base = None

    def __enter__(self) -> PostgresServer:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
