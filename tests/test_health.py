import time

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from app import db
from app.main import create_app
from tests.conftest import Clock, make_client


async def test_healthz(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_when_database_is_at_head(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json()["checks"] == {
        "database": "ok",
        "pool": "ok",
        "migrations": "ok",
        "calendar": "ok",  # this year and next have rows (tests/deadlines/test_calendar_life_cycle)
    }


@pytest.mark.committing
async def test_readyz_when_migrations_lag(
    committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    async with committing_maker.begin() as session:
        await session.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    async with make_client(committing_maker, clock) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert "code expects" in response.json()["checks"]["migrations"]


@pytest.mark.committing
async def test_readyz_says_busy_not_unreachable_when_the_pool_is_exhausted(
    committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    # Before: readiness queried through the request pool, waited for it, then said "unreachable".
    engine = create_async_engine(committing_maker.kw["bind"].url, pool_size=1, max_overflow=0)
    maker = async_sessionmaker(engine, expire_on_commit=False)
    async with engine.connect() as held, make_client(maker, clock) as client:
        await held.execute(text("SELECT 1"))
        started = time.monotonic()
        response = await client.get("/readyz")
        elapsed = time.monotonic() - started
    await engine.dispose()
    assert response.status_code == 200, response.text
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["pool"] == "busy: 1 of 1 connections in use"
    assert elapsed < 2.5  # its own connection: it never waits on the busy pool (3 s timeout)


async def test_readyz_when_the_server_is_away_says_unreachable() -> None:
    engine = create_async_engine("postgresql+psycopg://nobody@127.0.0.1:1/none")
    app = create_app()
    app.dependency_overrides[db.maker] = lambda: async_sessionmaker(engine)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/readyz")
    await engine.dispose()
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == "unreachable: OperationalError"


async def test_metrics_count_requests_by_route(client: httpx.AsyncClient) -> None:
    await client.get("/healthz")
    body = (await client.get("/metrics")).text
    assert 'govinbox_http_requests_total{method="GET",route="/healthz",status="200"}' in body
    assert "govinbox_http_request_duration_seconds_bucket" in body


async def test_readyz_without_a_database_is_503() -> None:
    def unconfigured() -> None:
        raise db.DatabaseNotConfigured("DATABASE_URL is not set")

    app = create_app()
    app.dependency_overrides[db.maker] = unconfigured
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["detail"] == "DATABASE_URL is not set"
