"""Failed customer-token guesses, counted per client address: past the limit, a 429.

A customer token is the only credential of the status page and the customer API, and anyone
may send one: counting the misses per address stops a client walking the token space. The
counts live in the API process (per replica: N replicas admit N times the limit), and only
misses count, so a customer using their own link never nears it.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from fastapi import Request

from api.errors import TOO_MANY_GUESSES, Problem

# Addresses remembered at most: a flood from many addresses can't grow the process without
# bound; the least recently failing ones are forgotten first.
MAX_ADDRESSES = 50_000


class TokenGuesses:
    """The recent failed guesses of each client address, in a sliding window."""

    def __init__(
        self, limit: int, window_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit, self.window, self.clock = limit, window_seconds, clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        # The status page's routes count from threadpool threads, the bearer check from the
        # event loop: without it, two threads expiring one address's window race on its entry.
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float] | None:
        failures = self._failures.get(address)
        if failures is None:
            return None
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        if not failures:
            del self._failures[address]
            return None
        return failures

    def retry_after(self, address: str) -> int | None:
        """Seconds until this address may guess again, or None if it may now."""
        with self._lock:
            now = self.clock()
            failures = self._recent(address, now)
            if failures is None or len(failures) < self.limit:
                return None
            # The window has room again once the oldest failure that fills it leaves.
            return max(1, math.ceil(failures[-self.limit] + self.window - now))

    def failed(self, address: str) -> None:
        """Count one failed guess from this address."""
        with self._lock:
            now = self.clock()
            failures = self._recent(address, now) or deque(maxlen=self.limit)
            failures.append(now)
            self._failures[address] = failures
            self._failures.move_to_end(address)
            while len(self._failures) > MAX_ADDRESSES:
                self._failures.popitem(last=False)


def client_address(request: Request) -> str:
    """The client's address (uvicorn takes it from X-Forwarded-For behind a trusted proxy)."""
    return request.client.host if request.client else "unknown"


def _guesses(request: Request) -> TokenGuesses:
    guesses: TokenGuesses = request.app.state.token_guesses
    return guesses


def refuse_if_guessing(request: Request) -> None:
    """Raise a 429 problem, with Retry-After, if this client has failed too many guesses."""
    wait = _guesses(request).retry_after(client_address(request))
    if wait is not None:
        raise Problem(
            429,
            TOO_MANY_GUESSES,
            "Too many wrong tokens.",
            f"This address sent too many unknown case tokens; try again in {wait} seconds.",
            headers={"Retry-After": str(wait)},
        )


def count_failed_guess(request: Request) -> None:
    """Count a token that opened no case against this client."""
    _guesses(request).failed(client_address(request))
