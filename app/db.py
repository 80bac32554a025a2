"""Declarative base, the engine and one transaction per request."""

import logging
import time
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import psycopg
from fastapi import Depends
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.ext.asyncio import (
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.embedded import libpq_url
from app.settings import PROJECT_ROOT, configuration_error, settings

logger = logging.getLogger("govinbox.db")

if TYPE_CHECKING:
    from alembic.config import Config


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(column_0_N_label)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "ck": "ck_%(table_name)s_%(constraint_name)s",
            "fk": "fk_%(table_name)s_%(column_0_N_name)s",
            "pk": "pk_%(table_name)s",
        }
    )
    # Read server-side defaults (timestamps) back with RETURNING, so no lazy load is needed.
    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012


class Timestamped:
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class DatabaseNotConfigured(RuntimeError):
    pass


def database_url() -> str:
    """The configured URL; `app.serve` and the tests set it when they start embedded PostgreSQL."""
    url = settings().database_url
    if url is None:
        raise DatabaseNotConfigured("DATABASE_URL is not set (make run starts one for you)")
    return url


def check_database(url: str) -> bool:
    """At start-up: True if the database answers, False if its server is unreachable now (a
    transient state the caller waits out); a database that does not exist or credentials the
    server refuses are configuration errors (one line, exit code 2)."""
    try:
        with psycopg.connect(libpq_url(url), connect_timeout=5):
            return True
    except psycopg.OperationalError as exc:
        message = str(exc)
        if 'database "' in message and "does not exist" in message:
            configuration_error("DATABASE_URL", "its database does not exist on the server")
        if "authentication failed" in message or (
            'role "' in message and "does not exist" in message
        ):
            configuration_error("DATABASE_URL", "the server refused its user or password")
        logger.warning("database unreachable at start-up", extra={"error": type(exc).__name__})
        return False


def wait_for_database(url: str) -> None:
    """At start-up, a server that is away is waited for (logged), never a reason to exit."""
    delay = 1.0
    while not check_database(url):
        logger.warning("waiting for the database", extra={"retry_in_seconds": delay})
        time.sleep(delay)
        delay = min(delay * 2, 30.0)


@cache
def sessionmaker() -> async_sessionmaker[AsyncSession]:
    # hide_parameters: a failed statement's message must never carry a secret into a log line.
    # pool_timeout: a request that cannot get a connection soon answers 503 (webhooks retry)
    # instead of outliving the platforms' 5 s budget. No pre-ping (a round trip per request on
    # the webhook path): a dropped connection fails that request with a 503 and is replaced.
    # A pool as large as the load it serves: overflow connections are opened and closed per
    # request, which costs more than the request itself (bench/intake.py).
    config = settings()
    engine = create_async_engine(
        database_url(),
        hide_parameters=True,
        pool_size=config.database_pool_size,
        max_overflow=config.database_pool_size,
        pool_timeout=3,
        pool_recycle=1800,
    )
    return async_sessionmaker(engine, expire_on_commit=False)


async def maker() -> async_sessionmaker[AsyncSession]:
    """The sessionmaker as a dependency (async: no thread hop per request); tests override it."""
    return sessionmaker()


MakerDep = Annotated[async_sessionmaker[AsyncSession], Depends(maker)]


async def get_session(maker: MakerDep) -> AsyncIterator[AsyncSession]:
    async with maker.begin() as session:  # commit on success, rollback on any exception
        yield session


SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


class Connections(Protocol):
    """Where the webhook path gets a connection: at most `timeout` seconds of waiting."""

    def connection(
        self, timeout: float | None = None
    ) -> AbstractAsyncContextManager["psycopg.AsyncConnection[Any]"]: ...

    async def check(self) -> None: ...


_webhook_pools: dict[str, AsyncConnectionPool] = {}


async def webhook_connections() -> Connections:
    """The webhook path's own pool of autocommit psycopg connections.

    Its own, so that webhooks and the API cannot starve each other, and psycopg's pool because it
    takes a timeout per request (the webhook's remaining time) and replaces broken connections
    by itself after a database restart. Tests override this dependency.
    """
    url = libpq_url(database_url())
    pool = _webhook_pools.get(url)
    if pool is None:
        pool = _webhook_pools[url] = AsyncConnectionPool(
            url,
            min_size=min(2, settings().database_pool_size),
            max_size=settings().database_pool_size,
            kwargs={"autocommit": True},
            open=False,
            name="webhooks",
        )
        await pool.open(wait=False)
    return pool


WebhookConnectionsDep = Annotated[Connections, Depends(webhook_connections)]


async def close_webhook_pools() -> None:
    """At shutdown."""
    while _webhook_pools:
        await _webhook_pools.popitem()[1].close()


def alembic_config(url: str) -> "Config":
    """Alembic's config for this project, pointed at `url`, leaving the caller's logging alone."""
    from alembic.config import Config

    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    config.attributes["url"] = url
    config.attributes["configure_logging"] = False
    return config


def migrate(url: str, revision: str = "head") -> None:
    """Upgrade the database at `url` (blocking: call it from a thread inside an event loop)."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)
