"""Fixtures shared by the workflow tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import Stack


@pytest.fixture
def pending_refunds(stack: Stack) -> Iterator[None]:
    """The payment provider answers "pending" while the test runs (peers are shared)."""
    stack.peers.refund_status = "pending"
    try:
        yield
    finally:
        stack.peers.refund_status = "succeeded"
