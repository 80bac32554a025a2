"""Liveness, readiness and metrics for the platform that runs the service."""

import asyncio
import logging
from datetime import datetime
from functools import cache
from typing import Any

from alembic.config import Config
from alembic.script import ScriptDirectory
from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from sqlalchemy import URL, select, text
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool, QueuePool

from app import worker
from app.clock import NowDep
from app.db import MakerDep
from app.deadlines.calendar import CHINA
from app.deadlines.models import CalendarYear, YearStatus
from app.settings import PROJECT_ROOT

router = APIRouter(tags=["operations"])
JOBS = Gauge(
    "govinbox_jobs",
    "Jobs that failed for good or are stuck (waiting past their time, or held by a dead "
    "worker), by task; read from the queue on each scrape.",
    ["task", "state"],
)
logger = logging.getLogger("govinbox.health")
NEXT_YEAR_MISSING = Gauge(
    "govinbox_calendar_next_year_missing",
    "1 from 1 November while next year's holiday notice is not entered.",
)


@cache
def migration_heads() -> frozenset[str]:
    """The revisions the code expects the database to be at."""
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    return frozenset(ScriptDirectory.from_config(config).get_heads())


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict[str, str]:
    """The process is alive. Touches nothing else."""
    return {"status": "ok"}


# Readiness asks the database on a connection of its own, never the request pool: a pool that is
# merely busy must not read as "database unreachable", and the probe must answer fast even then.
PROBE_SECONDS = 2.5


@cache
def _probe_engine(url: URL) -> AsyncEngine:
    return create_async_engine(
        url,
        poolclass=NullPool,
        hide_parameters=True,
        connect_args={"connect_timeout": 2, "options": "-c statement_timeout=2000"},
    )


def _database_url(maker: async_sessionmaker[AsyncSession]) -> URL:
    bind = maker.kw["bind"]
    return bind.engine.url if isinstance(bind, AsyncConnection) else bind.url


def _pool_check(maker: async_sessionmaker[AsyncSession]) -> str:
    """How busy this process's API connection pool is (busy is still ready: requests wait)."""
    pool = maker.kw["bind"].pool if isinstance(maker.kw["bind"], AsyncEngine) else None
    if not isinstance(pool, QueuePool):
        return "ok"
    limit = pool.size() + pool._max_overflow  # no public accessor
    in_use = pool.checkedout()
    return f"{'busy' if in_use >= limit else 'ok'}: {in_use} of {limit} connections in use"


@router.get(
    "/readyz",
    summary="Readiness",
    responses={
        503: {
            "description": "Database unreachable, migrations not at head, or no calendar for "
            "this or next year."
        }
    },
)
async def readyz(maker: MakerDep, now: NowDep) -> JSONResponse:
    """The database answers (on a connection of its own, within 2.5 s), its migrations are at
    the head this code expects, and the calendar has this year and next. 503 takes the replica
    out of rotation; it is not a liveness signal (that is /healthz), so an outage never gets
    replicas restarted."""
    body: dict[str, Any] = {"status": "ok", "checks": {}}
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            async with AsyncSession(_probe_engine(_database_url(maker))) as session:
                rows = await session.execute(text("SELECT version_num FROM alembic_version"))
                current = frozenset(row[0] for row in rows)
                missing, warning = await calendar_state(session, now)
    except TimeoutError:
        body["status"] = "unavailable"
        body["checks"]["database"] = f"no answer within {PROBE_SECONDS} s"
        return JSONResponse(body, status_code=503)
    except Exception as exc:
        body["status"] = "unavailable"
        body["checks"]["database"] = f"unreachable: {type(exc).__name__}"
        return JSONResponse(body, status_code=503)
    body["checks"]["database"] = "ok"
    body["checks"]["pool"] = _pool_check(maker)
    if current != migration_heads():
        body["status"] = "unavailable"
        body["checks"]["migrations"] = (
            f"database at {sorted(current)}, code expects {sorted(migration_heads())}"
        )
        return JSONResponse(body, status_code=503)
    body["checks"]["migrations"] = "ok"
    if missing:
        # Without a year's row its holidays and 调休 are ignored: deadlines would fall on rest days
        # and skip working Saturdays. Such a replica must not serve.
        body["status"] = "unavailable"
        body["checks"]["calendar"] = missing
        return JSONResponse(body, status_code=503)
    body["checks"]["calendar"] = "ok"
    NEXT_YEAR_MISSING.set(1 if warning else 0)
    if warning:
        # Still ready: deadlines into next year are computed, flagged provisional.
        logger.warning("calendar incomplete", extra={"warning": warning})
        body["warnings"] = [warning]
    return JSONResponse(body)


async def calendar_state(session: AsyncSession, now: datetime) -> tuple[str | None, str | None]:
    """This year and next (China time): what is missing (no row at all: not ready), and from
    1 November a warning while next year has no official notice (provisional: still ready)."""
    today = now.astimezone(CHINA).date()
    rows = await session.execute(
        select(CalendarYear.year, CalendarYear.status).where(
            CalendarYear.year.in_([today.year, today.year + 1])
        )
    )
    status = {year: status for year, status in rows}
    absent = [year for year in (today.year, today.year + 1) if year not in status]
    if absent:
        return (
            f"no calendar for {', '.join(map(str, absent))}: run `alembic upgrade head` and the "
            "worker (it keeps provisional years), or PUT /api/v1/admin/calendar/{year}",
            None,
        )
    if today.month < 11 or status[today.year + 1] is YearStatus.official:
        return None, None
    return None, (
        f"the {today.year + 1} holiday notice is not entered: deadlines reaching into "
        f"{today.year + 1} are provisional (PUT /api/v1/admin/calendar/{today.year + 1})"
    )


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(maker: MakerDep) -> Response:
    """Requests by route and status, latency, failed and stuck jobs by task, and the figures
    later features add."""
    try:
        async with asyncio.timeout(PROBE_SECONDS):
            async with AsyncSession(_probe_engine(_database_url(maker))) as session:
                figures = await worker.job_figures(session)
    except Exception as exc:
        # The process's own figures still go out; the job figures keep their last values.
        logger.warning("job figures unavailable", extra={"error": type(exc).__name__})
    else:
        JOBS.clear()
        for task, state, count in figures:
            JOBS.labels(task, state).set(count)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
