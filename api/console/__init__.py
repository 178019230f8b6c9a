"""The agent console (`/console`): sign-in, the queue, case pages and their actions."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from fastapi.staticfiles import StaticFiles

from api.console import auth, pages, policy, reports
from api.console.auth import SignInRequired, sign_in_redirect
from api.console.canned import CannedReply
from api.console.i18n import STATIC


def install(app: FastAPI, *, canned: list[CannedReply]) -> None:
    """Add the console's routes, its static files and its sign-in redirect to the app."""
    app.state.canned = canned
    app.include_router(auth.router)
    app.include_router(pages.router)
    app.include_router(reports.router)
    app.include_router(policy.router)
    # Scripts and styles come from the app itself, never a CDN: the console works offline
    # and runs only code this repository pins.
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, exc: SignInRequired) -> Response:
        return sign_in_redirect(request, exc.next_path)
