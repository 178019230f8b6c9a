"""Ports for the servers the tests start as processes (API, Temporal, SMTP, PostgreSQL)."""

from __future__ import annotations

import random
import socket
from pathlib import Path

# Picked below the kernel's ephemeral range. A port is picked, its probe socket closed, and a
# server binds it a moment later; a port from bind(0) comes from the ephemeral range, so under
# a busy parallel suite an outgoing connection's source port could take it meanwhile ("address
# already in use"). Outgoing connections never take a port below that range.
LOWEST = 20000
# Its own generator: a test that seeds the module's `random` must not make parallel test
# processes pick the same ports.
_PICK = random.SystemRandom()


def _ephemeral_start() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_port() -> int:
    """A TCP port nothing listens on right now, outside the ephemeral range."""
    highest = max(LOWEST + 1000, _ephemeral_start())
    for _ in range(500):
        port = _PICK.randrange(LOWEST, highest)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port between {LOWEST} and {highest}")
