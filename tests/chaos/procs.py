"""Real processes a chaos scenario starts, kills and restarts: each in its own process group,
its output in a log file, and every one of them gone when the scenario ends."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import httpx

from aftersales.dev import _die_with_parent
from aftersales.temporal import dev_server_argv
from tests.api.postgres import SUPERUSER, PostgresServer
from tests.support.dev_stack import listening

# The API and the worker run this checkout's code (`python -m` from its root), whichever
# checkout the environment's `aftersales` script was installed from.
ROOT = Path(__file__).resolve().parents[2]
AFTERSALES = [sys.executable, "-m", "aftersales.cli"]
START_TIMEOUT = 90.0
# SIGTERM, then SIGKILL after this long: a stop never holds a scenario up.
STOP_GRACE = 5.0


class Service:
    """One long-running process: started, killed (SIGKILL, no cleanup) and started again."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        env: dict[str, str],
        log: Path,
        ready: Callable[[], bool],
    ) -> None:
        self.name, self.argv, self.env, self.log, self.ready = name, argv, env, log, ready
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def running(self) -> bool:
        """Whether the process runs now."""
        return self.process is not None and self.process.poll() is None

    def spawn(self) -> None:
        """Start the process without waiting for it to be ready (call from the main thread:
        the kernel ties the child's death signal to the thread that forked it)."""
        if self.running:
            raise RuntimeError(f"{self.name} is running already")
        with self.log.open("ab") as out:
            out.write(f"\n=== start #{self.starts + 1} of {self.name}\n".encode())
            out.flush()
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
                cwd=ROOT,
                # Its own group: a kill reaches whatever it started, and nothing else.
                start_new_session=True,
                # If the chaos run itself dies, the kernel ends this process too.
                preexec_fn=_die_with_parent(),
            )
        self.starts += 1

    async def start(self, timeout: float = START_TIMEOUT) -> None:
        """Start the process and wait until it is ready; fails with its log when it isn't."""
        self.spawn()
        await self.wait_ready(timeout)

    async def wait_ready(self, timeout: float = START_TIMEOUT) -> None:
        """Wait until `ready()` holds; fails with the log's tail if the process exits first."""
        deadline = time.monotonic() + timeout
        while not await asyncio.to_thread(self.ready):
            if not self.running:
                raise RuntimeError(f"{self.name} exited early:\n{self.tail()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} not ready in {timeout:.0f} s:\n{self.tail()}")
            await asyncio.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL the process group, as a crash or an OOM kill would: no cleanup at all."""
        self._signal(signal.SIGKILL)
        if self.process is not None:
            self.process.wait(timeout=10)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after STOP_GRACE."""
        if self.running:
            self._signal(signal.SIGTERM)
            with suppress(subprocess.TimeoutExpired):
                assert self.process is not None
                self.process.wait(timeout=STOP_GRACE)
        self.kill()

    def _signal(self, signum: int) -> None:
        if self.process is not None:
            with suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signum)

    def tail(self, chars: int = 3000) -> str:
        """The end of the process's output."""
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def temporal_service(data_dir: Path, port: int, env: dict[str, str]) -> Service:
    """The Temporal dev server on a persistent SQLite file: a restart keeps every workflow."""
    argv = dev_server_argv(db=data_dir / "temporal.db", port=port, log_level="error")
    return Service(
        "temporal", argv, env=env, log=data_dir / "temporal.log", ready=lambda: listening(port)
    )


def http_ready(url: str) -> Callable[[], bool]:
    """Ready when GET `url` answers 200."""

    def ready() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def api_service(data_dir: Path, port: int, env: dict[str, str], name: str = "api") -> Service:
    """`aftersales api` on `port`, ready once /readyz answers 200."""
    argv = [*AFTERSALES, "api", "--port", str(port), "--log-level", "warning"]
    return Service(
        name,
        argv,
        env=env,
        log=data_dir / f"{name}.log",
        ready=http_ready(f"http://127.0.0.1:{port}/readyz"),
    )


def worker_service(data_dir: Path, env: dict[str, str], name: str = "worker") -> Service:
    """`aftersales worker`, ready once it polls (it writes its ready file then)."""
    ready_file = data_dir / f"{name}.ready"
    argv = [*AFTERSALES, "worker", "--ready-file", str(ready_file)]
    service = Service(name, argv, env=env, log=data_dir / f"{name}.log", ready=ready_file.exists)
    spawn = service.spawn

    def fresh_spawn() -> None:
        # A restarted worker writes the file again once it polls.
        ready_file.unlink(missing_ok=True)
        spawn()

    service.spawn = fresh_spawn  # type: ignore[method-assign]
    return service


class RestartablePostgres(PostgresServer):
    """The tests' throwaway PostgreSQL, with a crash and a restart on the same data and port.

    It commits as a production server does (`synchronous_commit=on`): the tests' cluster skips
    that, and a crash then loses commits it had acknowledged, which no service could survive.
    (`fsync` stays off: a process crash leaves the kernel's page cache intact.)
    """

    def start(self) -> RestartablePostgres:
        """initdb and start as the tests do, then restart with durable commits."""
        super().start()
        assert self.base is not None
        self._run("pg_ctl", "-D", str(self.base / "data"), "-m", "fast", "-w", "stop")
        self.running = False
        self.restart()
        return self

    def _options(self) -> str:
        assert self.base is not None
        return (
            f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.base / 'sockets'} "
            "-c fsync=off -c synchronous_commit=on"
        )

    def crash(self) -> None:
        """Stop at once, as a crash: `immediate` mode drops every connection without a
        checkpoint, so the next start runs crash recovery."""
        assert self.base is not None
        self._run("pg_ctl", "-D", str(self.base / "data"), "-m", "immediate", "-w", "stop")
        self.running = False

    def restart(self) -> None:
        """Start again on the same data and port."""
        assert self.base is not None
        self._run(
            "pg_ctl",
            "-D",
            str(self.base / "data"),
            "-o",
            self._options(),
            "-l",
            str(self.base / "postgres.log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        self.running = True


__all__ = ["SUPERUSER", "RestartablePostgres", "Service"]
