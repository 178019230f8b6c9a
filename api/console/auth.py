"""Signing agents in and out of the console: session cookies, CSRF tokens, throttling.

The session cookie is HttpOnly and SameSite=Lax (a link from the Temporal UI or a mail still
opens the console), and Secure when the public URL is https. Every form carries a CSRF
token: the session's own once signed in, and on the sign-in form a double-submit token (a
cookie and the same value in the form), so no other site can sign a browser in either.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Annotated
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.console.i18n import negotiate, render
from api.deps import app_engine, app_settings
from api.errors import FORBIDDEN, UNAUTHORIZED, Problem
from domain.models import Locale
from store import accounts
from store.accounts import SignedIn
from store.tables import utcnow

router = APIRouter(tags=["console"], include_in_schema=False)

SESSION_COOKIE = "aftersales_console"
LOGIN_CSRF_COOKIE = "aftersales_console_login"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
HOME = "/console"
LOGIN = "/console/login"
# Pages the browser must not keep: they show customers' data to whoever signed in.
PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    # Only the app's own script and styles run; evidence images may come from anywhere.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' https: http: data:; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "Referrer-Policy": "same-origin",
}


class SignInRequired(Exception):
    """No live console session: a page answers with the sign-in form, a form post with 401."""

    def __init__(self, next_path: str) -> None:
        super().__init__("sign in first")
        self.next_path = next_path


@dataclass(frozen=True)
class ConsoleAgent:
    """The signed-in agent and the language their pages come in."""

    agent: SignedIn
    locale: Locale

    @property
    def csrf_token(self) -> str:
        """The session's CSRF token, for the forms of the page."""
        return self.agent.csrf_token or ""


def _secure(request: Request) -> bool:
    return app_settings(request).public_url.startswith("https://")


def _session_agent(engine: Engine, cookie: str) -> SignedIn | None:
    with Session(engine) as session:
        return accounts.agent_for_session(session, cookie=cookie, now=utcnow())


async def console_agent(request: Request) -> ConsoleAgent:
    """The agent of the request's console session; SignInRequired when there is none."""
    cookie = request.cookies.get(SESSION_COOKIE)
    agent = (
        await run_in_threadpool(_session_agent, app_engine(request), cookie)
        if cookie and len(cookie) <= 100
        else None
    )
    if agent is None:
        raise SignInRequired(request.url.path)
    locale = negotiate(agent.locale, request.headers.get("accept-language", ""))
    return ConsoleAgent(agent=agent, locale=locale)


async def checked_agent(
    request: Request, signed_in: Annotated[ConsoleAgent, Depends(console_agent)]
) -> ConsoleAgent:
    """The signed-in agent of a form post that carries the session's CSRF token; 403 if not."""
    sent = request.headers.get(CSRF_HEADER)
    if sent is None:
        form = await request.form()
        value = form.get(CSRF_FIELD)
        sent = value if isinstance(value, str) else None
    if not sent or not secrets.compare_digest(sent, signed_in.csrf_token):
        raise Problem(
            403,
            FORBIDDEN,
            "The form's CSRF token is missing or not this session's.",
            "Reload the page and send the form again.",
        )
    return signed_in


ConsoleAgentDep = Annotated[ConsoleAgent, Depends(console_agent)]
CheckedAgentDep = Annotated[ConsoleAgent, Depends(checked_agent)]


def _safe_next(path: str | None) -> str:
    # Only a console path: a sign-in link must never send the agent to another site.
    if path and path.startswith(HOME) and not path.startswith("//") and "\\" not in path:
        return path
    return HOME


def login_page(
    request: Request, *, status_code: int = 200, error: str | None = None, email: str = ""
) -> Response:
    """The sign-in form, with a fresh double-submit CSRF token."""
    token = secrets.token_urlsafe(32)
    locale = negotiate(None, request.headers.get("accept-language", ""))
    html = render(
        "login.html.j2",
        locale,
        {
            "csrf_token": token,
            "next": _safe_next(request.query_params.get("next")),
            "error": error,
            "email": email,
        },
    )
    response = HTMLResponse(html, status_code=status_code, headers=PAGE_HEADERS)
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        httponly=True,
        samesite="strict",
        secure=_secure(request),
        path=LOGIN,
        max_age=3600,
    )
    return response


def sign_in_redirect(request: Request, next_path: str) -> Response:
    """Where a page sends a browser with no session: the sign-in form, back here after."""
    if request.method != "GET":
        return Problem(
            401, UNAUTHORIZED, "Sign in first.", "The console session has ended."
        ).response()
    return RedirectResponse(f"{LOGIN}?next={quote(next_path)}", status_code=303)


@router.get("/console/login", response_class=HTMLResponse)
async def login_form(request: Request) -> Response:
    """The sign-in form."""
    return login_page(request)


@dataclass(frozen=True)
class _Attempt:
    throttled: bool
    cookie: str | None = None


def _sign_in(engine: Engine, email: str, password: str, address: str) -> _Attempt:
    now = utcnow()
    with Session(engine) as session:
        if accounts.throttled(session, email=email, address=address, now=now):
            return _Attempt(throttled=True)
        agent = accounts.authenticate(
            session, email=email, password=password, address=address, now=now
        )
        cookie = None
        if agent is not None:
            cookie, _ = accounts.start_session(session, agent_id=agent.agent_id, now=now)
        session.commit()
        return _Attempt(throttled=False, cookie=cookie)


@router.post("/console/login", response_class=HTMLResponse)
async def login(
    request: Request,
    email: Annotated[str, Form(max_length=320)] = "",
    password: Annotated[str, Form(max_length=1000)] = "",
    csrf_token: Annotated[str, Form(max_length=100)] = "",
    next: Annotated[str, Form(max_length=2000)] = HOME,
) -> Response:
    """Sign in: 303 to the console with a session cookie; the form again on a failure."""
    expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
    if not csrf_token or not expected or not secrets.compare_digest(csrf_token, expected):
        return login_page(request, status_code=403, error="csrf", email=email)
    address = request.client.host if request.client else "unknown"
    attempt = await run_in_threadpool(
        _sign_in, app_engine(request), email.strip(), password, address
    )
    if attempt.throttled:
        return login_page(request, status_code=429, error="throttled", email=email)
    if attempt.cookie is None:
        return login_page(request, status_code=401, error="wrong", email=email)
    response = RedirectResponse(_safe_next(next), status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        attempt.cookie,
        httponly=True,
        samesite="lax",
        secure=_secure(request),
        path="/",
        max_age=accounts.SESSION_HOURS * 3600,
    )
    response.delete_cookie(LOGIN_CSRF_COOKIE, path=LOGIN)
    return response


def _sign_out(engine: Engine, cookie: str) -> None:
    with Session(engine) as session:
        accounts.end_session(session, cookie=cookie)
        session.commit()


@router.post("/console/logout")
async def logout(request: Request, _: CheckedAgentDep) -> Response:
    """Sign out: the session ends on the server, the cookie is cleared."""
    cookie = request.cookies.get(SESSION_COOKIE, "")
    await run_in_threadpool(_sign_out, app_engine(request), cookie)
    response = RedirectResponse(LOGIN, status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
