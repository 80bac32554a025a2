"""The job queue: procrastinate on the same PostgreSQL. Run alone with `python -m app.worker`."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import procrastinate

from app.embedded import libpq_url

QUEUES = ["routing"]

# Connection details come at open time (DATABASE_URL may be set by `make run` after import).
app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(), import_paths=["app.routing.tasks"]
)


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[procrastinate.App]:
    """The job app, connected to the database at `url` for the duration of the block."""
    connector = procrastinate.PsycopgConnector(conninfo=libpq_url(url), min_size=1, max_size=4)
    with app.replace_connector(connector):
        async with app.open_async():
            yield app


async def run(url: str, *, wait: bool = True, install_signal_handlers: bool = True) -> None:
    """Work the queues until stopped (or, with wait=False, until they are empty)."""
    async with opened(url):
        await app.run_worker_async(
            queues=QUEUES, wait=wait, install_signal_handlers=install_signal_handlers, concurrency=4
        )


if __name__ == "__main__":
    from app.db import database_url
    from app.observability import configure_logging
    from app.settings import settings

    configure_logging(settings().log_level)
    asyncio.run(run(database_url()))
