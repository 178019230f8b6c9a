"""A database the API can't write to or reach is a 503 `database-unavailable`, not a 500.

PostgreSQL restarting, its connections dropped, an SQLite file on a read-only or full disk: the
request did nothing (its transaction rolled back), so the client may send it again, with the
same Idempotency-Key for an open, once the database is back.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import OperationalError

from api.errors import DATABASE_UNAVAILABLE, Problem

RETRY_AFTER = {"Retry-After": "5"}
# The driver's message names the cause (refused, read-only, disk full); its first line is enough.
_DETAIL_CHARS = 200


def unavailable(err: OperationalError) -> Problem:
    """A 503 naming what the database answered."""
    cause = str(err.orig if err.orig is not None else err).strip().splitlines()
    return Problem(
        503,
        DATABASE_UNAVAILABLE,
        "The database is unavailable; try again shortly.",
        (cause[0] if cause else "")[:_DETAIL_CHARS],
        headers=RETRY_AFTER,
    )


def install(app: FastAPI) -> None:
    """Answer a database that failed a route operationally with a 503."""

    async def _database(_: Request, exc: Exception) -> JSONResponse:
        if not isinstance(exc, OperationalError):
            raise exc
        return unavailable(exc).response()

    app.add_exception_handler(OperationalError, _database)
