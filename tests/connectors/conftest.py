"""Fixtures for connector tests: one real Peers server per test, reset between uses."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.http_peers import Peers

SECRET = "test-outbound-secret"


@pytest.fixture
def peers() -> Iterator[Peers]:
    with Peers(secret=SECRET) as server:
        yield server
