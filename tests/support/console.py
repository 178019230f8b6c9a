"""Signing in to the console over plain HTTP, as a browser's form would."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@contextmanager
def signed_in_client(console_url: str, email: str, password: str) -> Iterator[httpx.Client]:
    """A client holding a console session for this login; asserts the sign-in worked."""
    with httpx.Client(timeout=30) as client:
        form = client.get(f"{console_url}/login")
        token = CSRF.search(form.text)
        assert token, form.text
        answer = client.post(
            f"{console_url}/login",
            data={"email": email, "password": password, "csrf_token": token.group(1)},
        )
        assert answer.status_code == 303, answer.text
        yield client
