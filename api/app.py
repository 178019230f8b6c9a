"""The FastAPI application."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from sqlalchemy import Engine
from starlette.middleware.base import RequestResponseEndpoint
from temporalio.client import Client

from aftersales.settings import Settings
from aftersales.temporal import connect
from api import cases, health, policy
from api.errors import Problem, install
from domain.policy import Policy, load_policy
from store.db import make_engine, migrate

MAX_BODY_BYTES = 1_000_000


def create_app(
    settings: Settings,
    *,
    client: Client | None = None,
    engine: Engine | None = None,
    policy_: Policy | None = None,
) -> FastAPI:
    """An app wired to the given settings; tests may hand in a client and engine."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.settings = settings
        app.state.policy = policy_ or load_policy(settings.policy)
        app.state.engine = engine or make_engine(settings.database_url)
        if engine is None:
            migrate(app.state.engine)
        app.state.temporal = client or await connect(settings)
        yield
        if engine is None:
            app.state.engine.dispose()

    app = FastAPI(
        title="aftersales",
        version="0.1.0",
        summary="Returns, exchanges, refunds, repairs and complaints as durable workflows.",
        lifespan=lifespan,
    )
    install(app)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: RequestResponseEndpoint) -> Response:
        length = request.headers.get("content-length")
        if length and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return Problem(413, "too-large", "The request body is too large.", f"At most {MAX_BODY_BYTES} bytes.").response()
        return await call_next(request)

    app.include_router(health.router)
    app.include_router(policy.router)
    app.include_router(cases.router)
    return app
