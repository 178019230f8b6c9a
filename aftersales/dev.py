"""`aftersales dev`: the Temporal dev server with its UI, a worker and the API, one process each.

This process only supervises. The API and the worker are `aftersales api` and
`aftersales worker` child processes, so neither can starve the other's event loop, and a
stuck one can be killed without waiting for its cooperation. Ctrl-C or SIGTERM stops the API
and the worker, then Temporal, each with a bounded grace period, so the whole stack is gone
within 10 seconds even under load. Every child also gets SIGTERM from the kernel if
this process dies without cleaning up (SIGKILL, a crash): nothing is left holding the ports.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from types import FrameType
from typing import IO, Any

import httpx
from sqlalchemy import Engine
from sqlmodel import Session

from config.settings import Settings
from domain.names import AgentRole

# The API and the worker get this long to finish in-flight work after SIGTERM, then Temporal
# gets TEMPORAL_GRACE; SIGKILL follows each. Together they stay well under the 10 s we promise.
CHILD_GRACE = 4.0
TEMPORAL_GRACE = 3.0
# Starting is slower on a loaded machine; a child that isn't ready by then has failed.
START_TIMEOUT = 60.0
_POLL = 0.1
_PR_SET_PDEATHSIG = 1
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Stop(Exception):
    """SIGINT or SIGTERM arrived: leave whatever we are waiting on and stop the stack."""


class DevStackError(Exception):
    """A part of the stack failed to start or died; the message says which and where to look."""


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent() -> Callable[[], None] | None:
    """A preexec_fn asking the kernel to SIGTERM the child when this process dies (Linux)."""
    if not sys.platform.startswith("linux"):
        return None  # elsewhere the process groups, killed on the way out, have to do
    # Loaded here, before fork: the child should only make the system call.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    parent = os.getpid()

    def set_parent_death_signal() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        # If the parent died before prctl, nobody will send the signal: leave now.
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)

    return set_parent_death_signal


def child_env(settings: Settings) -> dict[str, str]:
    """This environment with every setting spelled out, so each child sees the same stack."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFTERSALES_")}
    for name, value in settings.model_dump().items():
        if value is not None:
            env[f"AFTERSALES_{name.upper()}"] = str(value)
    return env


# The dev stack's own console login: a supervisor, so every console action can be tried.
DEV_AGENT_EMAIL = "dev-agent@localhost"
DEV_AGENT_PASSWORD = "dev-agent-password"


def ensure_dev_agent(engine: Engine) -> None:
    """Add the dev agent if the database has none of that email (a dev database only)."""
    from store import accounts

    with Session(engine) as session:
        if accounts.get_agent(session, email=DEV_AGENT_EMAIL) is None:
            accounts.add_agent(
                session,
                email=DEV_AGENT_EMAIL,
                name="Dev Agent",
                role=AgentRole.SUPERVISOR,
                password=DEV_AGENT_PASSWORD,
                queues=["customer_service"],
                locale="en",
            )
            session.commit()


def banner(settings: Settings) -> str:
    """What the dev stack prints: where everything is, the dev keys and the console login."""
    keys = "\n".join(f"    {role:<12} {key}" for key, role in settings.keys_by_token().items())
    api = f"http://{settings.api_host}:{settings.api_port}"
    return (
        "\naftersales dev stack is up\n"
        f"  API          {api}  (docs: /docs)\n"
        f"  Console      {api}/console  sign in as {DEV_AGENT_EMAIL} / {DEV_AGENT_PASSWORD}\n"
        f"  Temporal UI  http://localhost:{settings.dev_ui_port}\n"
        f"  Temporal     {settings.temporal_address}  namespace {settings.temporal_namespace}\n"
        f"  Data         {settings.data_dir.resolve()}\n"
        f"  API keys (Authorization: Bearer <key>):\n{keys}\n"
        "  Ctrl-C stops everything; cases survive a restart.\n"
    )


class DevStack:
    """The three child processes of `aftersales dev`, started in order and stopped in reverse."""

    def __init__(self, settings: Settings, *, out: IO[str] | None = None) -> None:
        self.settings = settings
        self.out = out or sys.stderr
        self.temporal: subprocess.Popen[bytes] | None = None
        self.children: dict[str, subprocess.Popen[bytes]] = {}
        self._env = child_env(settings)
        self._preexec = _die_with_parent()

    def say(self, text: str) -> None:
        """One line from the supervisor on stderr."""
        print(f"aftersales dev: {text}", file=self.out, flush=True)

    # -- starting ---------------------------------------------------------------------------

    def start_temporal(self) -> None:
        """Start the real Temporal dev server (SQLite in the data dir) and wait for its port."""
        from aftersales.temporal import dev_server_argv

        settings, data_dir = self.settings, self.settings.data_dir
        port = settings.dev_temporal_port
        for taken in (port, settings.dev_ui_port, settings.api_port):
            if _port_open(taken):
                raise DevStackError(
                    f"port {taken} is taken; is another stack running? Use --temporal-port, "
                    "--ui-port or --api-port."
                )
        with (data_dir / "temporal.log").open("ab") as log:
            self.temporal = subprocess.Popen(
                dev_server_argv(
                    db=data_dir / "temporal.db", port=port, ui_port=settings.dev_ui_port
                ),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                # Its own group: a terminal's Ctrl-C reaches only this process, which stops
                # Temporal last, after the worker has let go of its tasks.
                process_group=0,
                preexec_fn=self._preexec,
            )
        self._wait(
            "Temporal",
            lambda: _port_open(port),
            self.temporal,
            f"see {data_dir / 'temporal.log'}",
        )

    def start_child(self, name: str, args: list[str], ready: Callable[[], bool]) -> None:
        """Start `aftersales <args>` as a child and wait until `ready()` holds."""
        process = subprocess.Popen(
            [sys.executable, "-m", "aftersales.cli", *args],
            stdin=subprocess.DEVNULL,
            env=self._env,
            # Output goes where ours goes; signals come only from this supervisor.
            process_group=0,
            preexec_fn=self._preexec,
        )
        self.children[name] = process
        self._wait(name, ready, process, "see its output above")

    def _wait(
        self, name: str, ready: Callable[[], bool], process: subprocess.Popen[bytes], hint: str
    ) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            if process.poll() is not None:
                raise DevStackError(f"{name} exited early with code {process.returncode}; {hint}")
            if time.monotonic() > deadline:
                raise DevStackError(f"{name} did not start within {START_TIMEOUT:.0f} s; {hint}")
            time.sleep(_POLL)

    # -- running ----------------------------------------------------------------------------

    def supervise(self) -> None:
        """Wait until a signal arrives (raises _Stop) or a child dies (raises DevStackError)."""
        watched = {"Temporal": self.temporal, **self.children}
        while True:
            for name, process in watched.items():
                if process is not None and process.poll() is not None:
                    raise DevStackError(f"{name} exited with code {process.returncode}")
            time.sleep(0.2)

    # -- stopping ---------------------------------------------------------------------------

    def stop(self) -> None:
        """SIGTERM the API and worker, then Temporal; SIGKILL whatever outlives its grace."""
        _terminate(list(self.children.values()), CHILD_GRACE)
        if self.temporal is not None:
            _terminate([self.temporal], TEMPORAL_GRACE)


def _signal_group(process: subprocess.Popen[bytes], signum: int) -> None:
    # Each child leads its own process group; the group catches anything it started.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


def _terminate(processes: list[subprocess.Popen[bytes]], grace: float) -> None:
    running = [p for p in processes if p.poll() is None]
    for process in running:
        _signal_group(process, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for process in running:
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=max(0.0, deadline - time.monotonic()))
    for process in processes:
        # The leader may be gone while something it started still holds a port.
        _signal_group(process, signal.SIGKILL)
        if process.poll() is None:
            process.wait(timeout=5)


class _Signals:
    """While entered, the first SIGINT or SIGTERM raises _Stop, unless the stop has begun."""

    def __init__(self) -> None:
        self.stopping = False
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            self.stopping = True
            raise _Stop

    def __enter__(self) -> _Signals:
        self._previous = {s: signal.signal(s, self._handler) for s in STOP_SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for signum, old in self._previous.items():
            signal.signal(signum, old)


def _api_ready(settings: Settings) -> Callable[[], bool]:
    url = f"http://{settings.api_host}:{settings.api_port}/readyz"

    def ready() -> bool:
        try:
            return httpx.get(url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    return ready


def run_dev(settings: Settings) -> int:
    """Run the whole stack until Ctrl-C or SIGTERM, then stop every part; answers the exit code."""
    from domain.policy import load_policy
    from store.db import (
        StorageUnwritable,
        check_database_writable,
        check_writable,
        make_engine,
        migrate,
    )

    # Temporal's database, the logs and (by default) the cases live in the data dir: on a
    # read-only or full disk nothing could start, so say so before anything does.
    try:
        check_writable(settings.data_dir)
    except StorageUnwritable as err:
        raise DevStackError(f"the data directory {err}") from None
    try:
        check_database_writable(settings.database_url)
    except StorageUnwritable as err:
        raise DevStackError(f"the database directory {err}") from None
    load_policy(settings.policy)  # a broken policy file fails here, before anything starts
    ready_file = settings.data_dir / "worker.ready"
    ready_file.unlink(missing_ok=True)
    stack = DevStack(settings)
    api = ["api", "--host", settings.api_host, "--port", str(settings.api_port)]
    code = 0
    with _Signals() as signals:
        try:
            stack.start_temporal()
            # Migrated once, here, so the API and the worker never race to do it.
            engine = make_engine(settings.database_url)
            try:
                migrate(engine)
                ensure_dev_agent(engine)
            finally:
                engine.dispose()
            stack.start_child(
                "worker",
                # As the API's: the dev stack's output is for people, warnings and errors only.
                ["worker", "--ready-file", str(ready_file), "--log-level", "warning"],
                ready_file.exists,
            )
            # The dev stack's output is for people: no access log line per request.
            stack.start_child("API", [*api, "--log-level", "warning"], _api_ready(settings))
            print(banner(settings), flush=True)
            stack.supervise()
        except DevStackError as err:
            stack.say(f"{err}; stopping")
            code = 1
        except _Stop:
            pass
        finally:
            signals.stopping = True  # from here on a signal can't cut the stop short
            stack.stop()
            ready_file.unlink(missing_ok=True)
    return code
