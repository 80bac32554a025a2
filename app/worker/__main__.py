"""`python -m app.worker`: the job worker alone, for the production layout (README, Production).

It runs until SIGTERM or SIGINT and never exits on a database outage (see `app.worker.run`).
"""

import asyncio
import logging
import signal

from prometheus_client import start_http_server

from app import worker
from app.db import check_database, database_url
from app.observability import configure_logging
from app.settings import settings_or_exit

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
    url = database_url()
    check_database(url)
    if config.worker_metrics_port is not None:
        start_http_server(config.worker_metrics_port)
    logger.info("job worker starting", extra={"queues": worker.QUEUES})
    asyncio.run(_main(url))


main()
