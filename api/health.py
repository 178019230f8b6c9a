"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from api.deps import SessionDep, TemporalDep
from api.errors import Problem

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(session: SessionDep, client: TemporalDep) -> dict[str, str]:
    """Temporal and the database both answer."""
    try:
        session.exec(text("SELECT 1"))  # type: ignore[call-overload]
    except Exception as err:
        raise Problem(503, "not-ready", "The database is not reachable.", str(err)) from err
    try:
        await client.service_client.check_health()
    except Exception as err:
        raise Problem(503, "not-ready", "Temporal is not reachable.", str(err)) from err
    return {"status": "ready"}


@router.get("/metrics")
async def metrics() -> Response:
    """Prometheus metrics of this process."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
