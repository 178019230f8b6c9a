"""The FastAPI application."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anyio.to_thread
from fastapi import FastAPI
from sqlalchemy import Engine
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from temporalio.client import Client

from api import (
    cases,
    console,
    contract,
    database_errors,
    health,
    notifications,
    policy,
    reports,
    request_ids,
    status_page,
    temporal_calls,
    webhooks,
)
from api.console.canned import load_canned
from api.errors import install, too_large
from api.guesses import TokenGuesses
from api.metrics import business_registry
from config.redaction import redact
from config.settings import Settings
from config.temporal import connect
from config.tracing import temporal_interceptors
from domain.policy import Policy, load_policy
from store.db import API_THREADS, make_engine, migrate

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

MAX_BODY_BYTES = 1_000_000


class BodyLimit:
    """Refuse request bodies over `max_bytes` with a 413, whether or not they state a length.

    A Content-Length check alone lets a chunked body of any size through to be read into
    memory; counting the bytes as they arrive holds the limit for every request.
    """

    def __init__(self, app: ASGIApp, max_bytes: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        detail = f"At most {self.max_bytes} bytes."
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            await too_large(detail).response()(scope, receive, send)
            return
        received = 0

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    # Raised while the route reads its body; FastAPI passes HTTPExceptions
                    # on, and the app's handler answers it as a problem (api.errors).
                    raise HTTPException(413, detail)
            return message

        await self.app(scope, counted, send)


# Where a request span keeps its URL (older and current semantic conventions): a status
# page's URL holds the customer's token.
_URL_ATTRIBUTES = ("http.target", "http.url", "url.path", "url.full", "url.query")


def redact_span_urls(span: Any, scope: dict[str, Any]) -> None:
    """Rewrite the request span's URL attributes with tokens and secrets hidden."""
    attributes = getattr(span, "attributes", None) or {}
    for name in _URL_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str):
            span.set_attribute(name, redact(value))


def settle_heap() -> None:
    """Move what start-up allocated (modules, schemas, the engine) out of the collector's way.

    A full collection walks every tracked object, and an API process holds a few hundred
    thousand from its imports alone: each one took 50-165 ms on a busy machine, and the
    requests it stopped were the API's p99. Frozen objects are never scanned again, so a
    full collection only walks what requests left behind.
    """
    gc.collect()
    gc.freeze()


def create_app(
    settings: Settings,
    *,
    client: Client | None = None,
    engine: Engine | None = None,
    policy_: Policy | None = None,
    own_process: bool = False,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """An app wired to the given settings; tests may hand in a client and engine.

    `own_process`: the app is all its process serves (`aftersales api`), so once it has
    started it may settle the process's heap (`settle_heap`); an app inside a test process
    leaves the collector alone.
    `tracer_provider` (tracing on, config.tracing): a span per request, and the Temporal
    client it connects carries them on to the workflows. A client handed in brings its own
    interceptors.
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The threadpool that runs sync routes and DB work; the engine's pool has a
        # connection for each of its threads (store.db.POOL_SIZE).
        # Checked again here for an app served by other means than `aftersales api`.
        settings.refuse_dev_secrets("API")
        anyio.to_thread.current_default_thread_limiter().total_tokens = API_THREADS
        app.state.settings = settings
        app.state.policy = policy_ or load_policy(settings.policy)
        app.state.engine = engine or make_engine(settings.database_url, pool_size=API_THREADS)
        if engine is None:
            migrate(app.state.engine)
        app.state.temporal = client or await connect(
            settings, interceptors=temporal_interceptors(tracer_provider)
        )
        app.state.business_metrics = business_registry(app.state.engine)
        if own_process:
            settle_heap()
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
    temporal_calls.install(app)
    # Made here, not at start-up: the count is the app's, whatever serves it.
    app.state.token_guesses = TokenGuesses(
        settings.token_guess_limit, settings.token_guess_window_seconds
    )
    database_errors.install(app)
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    # Outermost (added last): every answer, a 413 too, carries the request ID, and every line
    # logged while serving it (the access log's too) names it.
    app.add_middleware(request_ids.RequestIds)

    app.include_router(health.router)
    app.include_router(policy.router)
    app.include_router(cases.router)
    app.include_router(reports.router)
    app.include_router(notifications.router)
    app.include_router(webhooks.router)
    app.include_router(status_page.router)
    console.install(app, canned=load_canned(settings.canned_replies))
    contract.install(app)
    if tracer_provider is not None:
        # Only when on: off, no tracing middleware sits in front of any route.
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=tracer_provider,
            server_request_hook=redact_span_urls,
            # One span per request: the ASGI send/receive spans add nothing an on-call
            # engineer reads, and cost a span each per body chunk.
            exclude_spans=["receive", "send"],
        )
    return app
