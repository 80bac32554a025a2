"""Declarative base, the engine and one transaction per request."""

from collections.abc import AsyncIterator
from datetime import datetime
from functools import cache
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends
from sqlalchemy import DateTime, MetaData, func
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from app.settings import PROJECT_ROOT, settings

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


async def get_autocommit_connection(maker: MakerDep) -> AsyncIterator[AsyncConnection]:
    """A connection whose every statement is its own transaction: for a route whose work is one
    atomic statement (webhook intake), sparing the BEGIN and COMMIT round trips."""
    bind = maker.kw["bind"]
    if isinstance(bind, AsyncConnection):
        # Already inside a transaction (the tests' rollback-per-test connection): use it as it is.
        yield bind
        return
    async with bind.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        yield connection


AutocommitDep = Annotated[AsyncConnection, Depends(get_autocommit_connection)]


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
