"""Run a real `aftersales dev` stack in a test, and find and reap every process it started."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.support.ports import free_port

BIN = Path(sys.executable).parent
# What `aftersales dev` promises: every process gone this long after SIGINT or SIGTERM.
STOP_BUDGET = 10.0
READY_TIMEOUT = 90.0


def clean_env() -> dict[str, str]:
    """This environment without AFTERSALES_* settings, with the venv's binaries on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AFTERSALES_")}
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    return env


@dataclass
class Ports:
    """The dev stack's three ports."""

    api: int
    temporal: int
    ui: int

    @classmethod
    def free(cls) -> Ports:
        """Three ports nobody listens on right now."""
        return cls(api=free_port(), temporal=free_port(), ui=free_port())

    @property
    def api_url(self) -> str:
        """Where the API answers."""
        return f"http://127.0.0.1:{self.api}"

    def all(self) -> tuple[int, int, int]:
        """Every port of the stack."""
        return (self.api, self.temporal, self.ui)


def log_tail(log: Path, data_dir: Path) -> str:
    """The end of the stack's output and of Temporal's log, for assertion messages."""
    parts = [log.read_text(errors="replace")[-3000:] if log.exists() else ""]
    temporal_log = data_dir / "temporal.log"
    if temporal_log.exists():
        parts.append(temporal_log.read_text(errors="replace")[-2000:])
    return "\n---\n".join(parts)


def alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def descendants(root: int) -> dict[int, str]:
    """Every live process below `root`, as pid → command line (read from /proc)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
        parents[int(entry.name)] = int(stat.rsplit(")", 1)[1].split()[1])
    found: dict[int, str] = {}
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, ppid in parents.items():
            if ppid == parent and pid not in found and alive(pid):
                try:
                    cmdline = (Path(f"/proc/{pid}/cmdline").read_bytes()).replace(b"\0", b" ")
                except (FileNotFoundError, ProcessLookupError):
                    continue
                found[pid] = cmdline.decode(errors="replace").strip()
                frontier.append(pid)
    return found


def listening(port: int) -> bool:
    """Whether something accepts connections on the port."""
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def bindable(port: int) -> bool:
    """Whether a server could bind the port now (as servers do, with SO_REUSEADDR)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def gone_by(pids: list[int], ports: Ports, deadline: float) -> list[str]:
    """Wait until `deadline` (monotonic) for every pid to end and every port to be free.

    Answers what is still there at the deadline (empty when everything went).
    """
    while True:
        left = [f"pid {pid}" for pid in pids if alive(pid)]
        left += [f"port {p}" for p in ports.all() if listening(p) or not bindable(p)]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def kill_all(pids: list[int]) -> None:
    """SIGKILL whatever of `pids` still runs (cleanup after a failed test)."""
    for pid in pids:
        if alive(pid):
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@dataclass
class DevProcess:
    """A running `aftersales dev` and the processes it started."""

    process: subprocess.Popen[bytes]
    children: dict[int, str]

    def child(self, marker: str) -> int:
        """The pid of the child whose command line contains `marker`."""
        [pid] = [pid for pid, cmd in self.children.items() if marker in cmd]
        return pid

    @property
    def pids(self) -> list[int]:
        """The supervisor and every process below it."""
        return [self.process.pid, *self.children]


def start_dev(data_dir: Path, ports: Ports, log: Path) -> DevProcess:
    """Start `aftersales dev` and wait until /readyz answers; fails with the log if it doesn't."""
    with log.open("ab") as out:
        process = subprocess.Popen(
            [
                str(BIN / "aftersales"),
                "dev",
                "--data-dir",
                str(data_dir),
                "--api-port",
                str(ports.api),
                "--temporal-port",
                str(ports.temporal),
                "--ui-port",
                str(ports.ui),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=clean_env(),
            # Its own session, as from a terminal; the stack must not lean on our signals.
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while True:
            assert process.poll() is None, f"dev stack exited early:\n{log_tail(log, data_dir)}"
            try:
                if httpx.get(f"{ports.api_url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (
                f"not ready in {READY_TIMEOUT:.0f} s:\n{log_tail(log, data_dir)}"
            )
            time.sleep(0.2)
        children = descendants(process.pid)
    except BaseException:
        kill_all([process.pid, *descendants(process.pid)])
        process.wait(timeout=10)
        raise
    return DevProcess(process, children)


@contextmanager
def dev_stack(data_dir: Path, ports: Ports, log: Path) -> Iterator[DevProcess]:
    """A running stack; on leaving, Ctrl-C must stop every process of it within STOP_BUDGET."""
    dev = start_dev(data_dir, ports, log)
    try:
        yield dev
        # What Ctrl-C in a terminal does.
        dev.process.send_signal(signal.SIGINT)
        deadline = time.monotonic() + STOP_BUDGET
        code = dev.process.wait(timeout=STOP_BUDGET)
        assert code == 0, f"exit {code}:\n{log_tail(log, data_dir)}"
        assert "Traceback" not in log.read_text(errors="replace"), log_tail(log, data_dir)
        left = gone_by(dev.pids, ports, deadline)
        assert not left, f"outlived the dev stack: {left}\n{dev.children}"
    finally:
        kill_all(dev.pids)
        if dev.process.poll() is None:
            dev.process.wait(timeout=10)
