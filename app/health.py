"""Liveness, readiness and metrics for the platform that runs the service."""

from functools import cache
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from app.db import MakerDep
from app.settings import PROJECT_ROOT

router = APIRouter(tags=["operations"])


@cache
def migration_heads() -> frozenset[str]:
    """The revisions the code expects the database to be at."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is alive. Touches nothing else."""
    return {"status": "ok"}


@router.get(
    "/readyz",
    summary="Readiness",
    responses={503: {"description": "Database unreachable or migrations not at head."}},
)
async def readyz(
    maker: MakerDep,
) -> JSONResponse:
    """The database answers and its migrations are at the head this code expects."""
    body: dict[str, Any] = {"status": "ok", "checks": {}}
    try:
        async with maker() as session:
            rows = await session.execute(text("SELECT version_num FROM alembic_version"))
            current = frozenset(row[0] for row in rows)
    except Exception as exc:
        body["status"] = "unavailable"
        body["checks"]["database"] = f"unreachable: {type(exc).__name__}"
        return JSONResponse(body, status_code=503)
    body["checks"]["database"] = "ok"
    if current != migration_heads():
        body["status"] = "unavailable"
        body["checks"]["migrations"] = (
            f"database at {sorted(current)}, code expects {sorted(migration_heads())}"
        )
        return JSONResponse(body, status_code=503)
    body["checks"]["migrations"] = "ok"
    return JSONResponse(body)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics() -> Response:
    """Requests by route and status, latency, and the figures later features add."""
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
