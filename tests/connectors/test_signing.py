"""Signature scheme of DESIGN 7: t=<ts>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from activities.signing import sign, verify

SECRET = "s3cret"
BODY = b'{"amount":"990.00","case_id":"R-1"}'
NOW = 1_790_000_000


def test_sign_matches_the_documented_scheme() -> None:
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign(SECRET, BODY, timestamp=NOW) == f"t={NOW},v1={expected}"


def test_round_trip() -> None:
    assert verify(SECRET, BODY, sign(SECRET, BODY, timestamp=NOW), now=NOW)


def test_tolerance_boundary_is_inclusive() -> None:
    header = sign(SECRET, BODY, timestamp=NOW - 300)
    assert verify(SECRET, BODY, header, now=NOW)


def test_tampered_body_is_refused() -> None:
    header = sign(SECRET, BODY, timestamp=NOW)
    assert not verify(SECRET, BODY.replace(b"990", b"999"), header, now=NOW)


def test_tampered_timestamp_is_refused() -> None:
    digest = sign(SECRET, BODY, timestamp=NOW).split("v1=")[1]
    assert not verify(SECRET, BODY, f"t={NOW + 1},v1={digest}", now=NOW)


def test_wrong_secret_is_refused() -> None:
    assert not verify(SECRET, BODY, sign("other", BODY, timestamp=NOW), now=NOW)


def test_stale_signature_is_refused() -> None:
    header = sign(SECRET, BODY, timestamp=NOW - 301)
    assert not verify(SECRET, BODY, header, now=NOW)


def test_future_signature_is_refused() -> None:
    header = sign(SECRET, BODY, timestamp=NOW + 301)
    assert not verify(SECRET, BODY, header, now=NOW)


def test_custom_tolerance() -> None:
    header = sign(SECRET, BODY, timestamp=NOW - 30)
    assert not verify(SECRET, BODY, header, now=NOW, tolerance=10)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "garbage",
        f"t={NOW}",
        "v1=" + "0" * 64,
        f"t=abc,v1={'0' * 64}",
        f"t={NOW},v1=xyz",
        f"t={NOW},v1=ünïcödé",
        f"t={NOW},t={NOW},v1={'0' * 64}",
        f"t={NOW},v1",
        "t=" + "9" * 2000,
    ],
)
def test_malformed_headers_are_refused(header: str | None) -> None:
    assert not verify(SECRET, BODY, header, now=NOW)


def test_any_matching_v1_is_accepted_for_secret_rotation() -> None:
    good = sign(SECRET, BODY, timestamp=NOW).split("v1=")[1]
    header = f"t={NOW},v1={'0' * 64},v1={good}"
    assert verify(SECRET, BODY, header, now=NOW)
