"""The job queue: procrastinate on the same PostgreSQL. Run alone with `python -m app.worker`.

This is a package so that `python -m app.worker` runs `__main__.py` and imports this module once:
run as a plain module, the file would be `__main__`, the tasks would register on a second App, and
every job would fail "Task not found".
"""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import procrastinate
from prometheus_client import Counter
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from app.embedded import libpq_url

QUEUES = ["routing"]
CONCURRENCY = 4
# After losing the database the worker starts again after 1, 2, 4 … at most 30 seconds.
BACKOFF_FIRST_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
# A run that lasted this long was healthy: the next loss starts the backoff from the beginning.
HEALTHY_RUN_SECONDS = 60.0

logger = logging.getLogger("govinbox.worker")
RESTARTS = Counter(
    "govinbox_worker_restarts_total",
    "Times the job worker started again after it lost the database, by what ended the run.",
    ["reason"],
)

# Connection details come at open time (DATABASE_URL may be set by `make run` after import).
app = procrastinate.App(
    connector=procrastinate.PsycopgConnector(),
    import_paths=[
        "app.routing.tasks",
        "app.deadlines.tasks",
        "app.push.tasks",
        "app.idempotency",
        "app.delivery.tasks",
        "app.answers.tasks",
        "app.ratings.tasks",
        "app.media.tasks",
        "app.publications.tasks",
        "app.comments.tasks",
    ],
)


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[procrastinate.App]:
    """The job app, connected to the database at `url` for the duration of the block."""
    connector = procrastinate.PsycopgConnector(conninfo=libpq_url(url), min_size=1, max_size=4)
    with app.replace_connector(connector):
        try:
            async with app.open_async():
                yield app
        finally:
            # After a failed open too: its pool would otherwise go on connecting in the
            # background, one more pool for every restart during an outage.
            await connector.close_async()


# On a stop, jobs in progress get this long to finish; then they are cancelled (and a job left
# `doing` is put back by the sweep). procrastinate's default would wait for ever.
SHUTDOWN_GRACE_SECONDS = 10.0


# The heartbeat is how an idle worker notices the database went away (a failed heartbeat stops
# it, and `run` starts it again): every 2 s, where procrastinate's 10 s let a short outage pass
# unseen, leaving the worker's connections to fail one by one later.
HEARTBEAT_SECONDS = 2.0


async def _run_once(url: str, *, wait: bool) -> None:
    async with opened(url):
        await app.run_worker_async(
            queues=QUEUES,
            wait=wait,
            install_signal_handlers=False,
            concurrency=CONCURRENCY,
            shutdown_graceful_timeout=SHUTDOWN_GRACE_SECONDS,
            update_heartbeat_interval=HEARTBEAT_SECONDS,
        )


async def run(url: str, *, wait: bool = True) -> None:
    """Work the queues until cancelled (or, with wait=False, until they are empty).

    A database outage never ends it: procrastinate stops its worker when a fetch or a heartbeat
    fails, and this loop starts it again with backoff, logged and counted, until cancelled.
    Jobs the lost run left `doing` are put back by the routing sweep (stale heartbeat).
    """
    if not wait:
        await _run_once(url, wait=False)
        return
    loop = asyncio.get_running_loop()
    delay = BACKOFF_FIRST_SECONDS
    while True:
        started = loop.time()
        error: Exception | None = None
        try:
            await _run_once(url, wait=True)
        except Exception as exc:
            # A stop asked for while the database is away ends in a database error (the worker
            # cannot unregister), not CancelledError: it must still stop, not start again.
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise asyncio.CancelledError from exc
            error = exc
        if loop.time() - started > HEALTHY_RUN_SECONDS:
            delay = BACKOFF_FIRST_SECONDS
        reason = "error" if error is not None else "stopped"
        RESTARTS.labels(reason).inc()
        logger.warning(
            "job worker lost the database; starting again",
            extra={
                "reason": reason,
                "error": f"{type(error).__name__}: {error}" if error else None,
                "retry_in_seconds": delay,
            },
        )
        await asyncio.sleep(delay)
        delay = min(delay * 2, BACKOFF_MAX_SECONDS)


# Failed: gave up (routing records a fallback first; a failed row is a bug or an outage to look
# at). Stuck: waiting past its time (5 minutes) with no worker taking it, or taken by a worker
# whose heartbeat stopped (procrastinate's stalled jobs; the routing sweep puts them back).
_FIGURES = text(
    """
    SELECT task_name, 'failed' AS state, count(*) FROM procrastinate_jobs
     WHERE status = 'failed' GROUP BY task_name
    UNION ALL
    SELECT j.task_name, 'stuck', count(*) FROM procrastinate_jobs j
      LEFT JOIN procrastinate_workers w ON w.id = j.worker_id
     WHERE (j.status = 'doing'
            AND (w.id IS NULL OR w.last_heartbeat < now() - make_interval(secs => :stalled)))
        OR (j.status = 'todo'
            AND coalesce(j.scheduled_at, (SELECT max(e.at) FROM procrastinate_events e
                                          WHERE e.job_id = j.id)) < now() - interval '5 minutes')
     GROUP BY j.task_name
    """
)
STALLED_SECONDS = 30  # procrastinate's default for a worker whose heartbeat stopped


async def job_figures(session: AsyncSession) -> list[tuple[str, str, int]]:
    """Failed and stuck jobs by task (for /metrics)."""
    rows = await session.execute(_FIGURES, {"stalled": STALLED_SECONDS})
    return [(task, state, count) for task, state, count in rows]
