"""Real PostgreSQL for every test: DATABASE_URL's server, or the embedded one.

Each run (each xdist worker) migrates its own template database and clones the test database from
it; every test runs inside a transaction that is rolled back. Tests marked `committing` get their
own clone, so they can commit and open several connections.
"""

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import NullPool

os.environ["ADMIN_TOKEN"] = "test-admin-token-0123456789abcdef"
os.environ.setdefault("LOG_LEVEL", "INFO")
# No test reaches the real platforms: delivery tests point this at their own fake.
os.environ["WECHAT_API_BASE"] = "http://127.0.0.1:9"
os.environ["WEIBO_API_BASE"] = "http://127.0.0.1:9"
os.environ["WEIBO_OPEN_API_BASE"] = "http://127.0.0.1:9"
os.environ["WEIBO_UPLOAD_API_BASE"] = "http://127.0.0.1:9"

# The environment above must be set before the app's settings are first read.
from app import db, embedded
from app.clock import utcnow
from app.deadlines import service as calendar
from app.main import create_app
from app.settings import PROJECT_ROOT, settings

ADMIN_TOKEN = os.environ["ADMIN_TOKEN"]


@pytest.fixture(scope="session")
def server_url() -> str:
    """A URL on the test server, to its maintenance database."""
    configured = settings().database_url
    if configured is not None:
        return configured
    return embedded.start(PROJECT_ROOT / "var" / "pgdata-test")


# The calendar seed reaches this far, so tests find provisional years in the table.
SEED_THROUGH = 2028


@pytest.fixture(scope="session")
async def template_database(server_url: str) -> AsyncIterator[str]:
    """A freshly migrated and seeded database, used only as the template of the test databases."""
    name = f"govinbox_tpl_{uuid.uuid4().hex[:12]}"
    url = embedded.create_database(server_url, name)
    try:
        await asyncio.to_thread(db.migrate, url)
        await calendar.seed_database(url, through_year=SEED_THROUGH)
        yield name
    finally:
        embedded.drop_database(server_url, name)


@pytest.fixture(scope="session")
def database_url(server_url: str, template_database: str) -> Iterator[str]:
    name = f"govinbox_test_{uuid.uuid4().hex[:12]}"
    url = embedded.create_database(server_url, name, template=template_database)
    yield url
    embedded.drop_database(server_url, name)


@pytest.fixture(scope="session")
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_async_engine(database_url, poolclass=NullPool)
    yield engine
    await engine.dispose()


@pytest.fixture
async def maker(engine: AsyncEngine) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions bound to one connection whose transaction is rolled back after the test."""
    async with engine.connect() as connection:
        transaction = await connection.begin()
        yield async_sessionmaker(
            bind=connection, expire_on_commit=False, join_transaction_mode="create_savepoint"
        )
        await transaction.rollback()


@pytest.fixture
async def session(maker: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session for arranging data and checking results, inside the test's transaction."""
    async with maker() as session:
        yield session


@pytest.fixture
async def committing_maker(
    server_url: str, template_database: str
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """A database of the test's own, cloned from the template: commits and races are real."""
    name = f"govinbox_commit_{uuid.uuid4().hex[:12]}"
    url = embedded.create_database(server_url, name, template=template_database)
    engine = create_async_engine(url, pool_size=8)
    yield async_sessionmaker(engine, expire_on_commit=False)
    await engine.dispose()
    await asyncio.to_thread(embedded.drop_database, server_url, name)


class Clock:
    """The app's notion of now, set by the test (Tuesday 2026-11-24 10:00 in Beijing)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


class TestConnections:
    """The webhook path's connections in a test: the test's own connection (its transaction is
    rolled back), or an autocommit one from a committing test's engine. The real pool
    (`db.webhook_connections`) runs in the subprocess tests (tests/operations/)."""

    def __init__(self, maker: async_sessionmaker[AsyncSession]) -> None:
        self.bind = maker.kw["bind"]

    @asynccontextmanager
    async def connection(
        self,
        timeout: float | None = None,  # noqa: ASYNC109  # the pool's signature
    ) -> AsyncIterator["psycopg.AsyncConnection[Any]"]:
        if isinstance(self.bind, AsyncConnection):
            yield (await self.bind.get_raw_connection()).driver_connection
            return
        async with self.bind.connect() as connection:
            await connection.execution_options(isolation_level="AUTOCOMMIT")
            yield (await connection.get_raw_connection()).driver_connection

    async def check(self) -> None:
        pass


def make_client(maker: async_sessionmaker[AsyncSession], clock: Clock) -> httpx.AsyncClient:
    app = create_app()
    app.dependency_overrides[db.maker] = lambda: maker
    app.dependency_overrides[db.webhook_connections] = lambda: TestConnections(maker)
    app.dependency_overrides[utcnow] = lambda: clock.now
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test")


@pytest.fixture
async def client(
    maker: async_sessionmaker[AsyncSession], clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(maker, clock) as client:
        yield client


@pytest.fixture
async def admin(client: httpx.AsyncClient) -> httpx.AsyncClient:
    """The test client, carrying the admin token."""
    client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
    return client
