"""`python -m app.worker`: the job worker alone, for the production layout (README, Production).

It runs until SIGTERM or SIGINT and never exits on a database outage (see `app.worker.run`).
"""

import asyncio
import logging
import signal
from datetime import UTC, datetime

from prometheus_client import start_http_server

from app import models, worker  # noqa: F401  # every model, so the mappers configure
from app.db import wait_for_database
from app.deadlines import store as calendar
from app.observability import configure_logging
from app.settings import configuration_error, settings_or_exit

logger = logging.getLogger("govinbox.worker")


async def _main(url: str) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, task.cancel)
    try:
        await worker.run(url)
    except asyncio.CancelledError:
        logger.info("job worker stopped")


def main() -> None:
    config = settings_or_exit()
    configure_logging(config.log_level)
    if config.database_url is None:
        configuration_error("DATABASE_URL", "is required for the worker")
    url = config.database_url
    wait_for_database(url)
    # Provisional calendar years up to today + 2, as the daily `keep_calendar` job keeps them
    # (idempotent): a new deployment need not wait for its first run to be ready (/readyz).
    # Official years come with `alembic upgrade head` (migration 0014), never from here.
    asyncio.run(calendar.seed_provisional(url, now=datetime.now(UTC)))
    if config.worker_metrics_port is not None:
        start_http_server(config.worker_metrics_port)
    logger.info("job worker starting", extra={"queues": worker.QUEUES})
    asyncio.run(_main(url))


main()
