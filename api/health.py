"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool

from api.contract import problems
from api.deps import EngineDep, TemporalDep
from api.errors import NOT_READY, Problem

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz", responses=problems(503))
async def readyz(engine: EngineDep, client: TemporalDep) -> dict[str, str]:
    """Temporal and the database both answer."""
    try:
        await run_in_threadpool(_ping, engine)
    except Exception as err:
        raise Problem(503, NOT_READY, "The database is not reachable.", str(err)) from err
    try:
        await client.service_client.check_health()
    except Exception as err:
        raise Problem(503, NOT_READY, "Temporal is not reachable.", str(err)) from err
    return {"status": "ready"}


def _ping(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT 1"))


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"description": "The text exposition format.", "content": {CONTENT_TYPE_LATEST: {}}}
    },
)
async def metrics(request: Request) -> Response:
    """Prometheus metrics: this process's, and the business figures from the database."""
    business: CollectorRegistry = request.app.state.business_metrics
    # The figures are a database read: on the threadpool, never on the event loop.
    figures = await run_in_threadpool(generate_latest, business)
    return Response(generate_latest() + figures, media_type=CONTENT_TYPE_LATEST)
