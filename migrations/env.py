"""Alembic environment: async engine on psycopg 3, URL from the caller or DATABASE_URL."""

import asyncio
from logging.config import fileConfig

from alembic import context
from sqlalchemy import pool, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from app import models
from app.db import database_url

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    fileConfig(config.config_file_name, disable_existing_loggers=False)

target_metadata = models.Base.metadata


def include_object(
    obj: object, name: str | None, type_: str, reflected: bool, compare_to: object
) -> bool:
    # Procrastinate owns its tables and functions; Alembic only applies its schema (see versions).
    return not (type_ == "table" and name is not None and name.startswith("procrastinate_"))


# Replicas that start together (or a release step racing `make run`) migrate one at a time: each
# takes this session-level advisory lock on its migration connection first, so the others wait,
# then find the database at head and do nothing. The key is "govinbox" in ASCII.
MIGRATION_LOCK_KEY = int.from_bytes(b"govinbox", "big")


def run_migrations(connection: Connection) -> None:
    connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    connection.commit()  # a session lock outlives the transaction; each migration has its own
    try:
        _run_migrations(connection)
    finally:
        if connection.in_transaction():
            connection.rollback()  # a failed migration's transaction, so the unlock can run
        connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
        connection.commit()


def _run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        include_object=include_object,
        compare_server_default=False,
        transaction_per_migration=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_async() -> None:
    url = config.attributes.get("url") or database_url()
    engine = create_async_engine(url, poolclass=pool.NullPool)
    async with engine.connect() as connection:
        await connection.run_sync(run_migrations)
    await engine.dispose()


if context.is_offline_mode():
    raise SystemExit("offline (--sql) mode is not supported; migrations run against a database")
asyncio.run(run_async())
