"""Durable jobs of the deadline clock: the sweep that warns and escalates, the recount after a
year is entered."""

from datetime import UTC, datetime

from app.db import sessionmaker
from app.deadlines import alerts, service, store
from app.settings import settings
from app.worker import app


@app.periodic(cron="* * * * *")
@app.task(name="sweep_deadlines", queue="routing", queueing_lock="sweep_deadlines")
async def sweep_deadlines(timestamp: int) -> None:
    """Deadline warnings and escalation; idempotent (each alert is a unique row)."""
    config = settings()
    await alerts.sweep(
        sessionmaker().begin,
        now=datetime.fromtimestamp(timestamp, UTC),
        office_hours=config.office_hours,
        fractions=config.warning_fractions,
    )


@app.task(name="recount_year", queue="routing")
async def recount_year(recount_id: int) -> None:
    """Count a year's open inquiries again, a batch per transaction: intake waits on at most one
    batch's row locks, and a job that dies resumes where the last batch committed."""
    while True:
        async with sessionmaker().begin() as session:
            if not await service.recount_batch(session, recount_id, now=datetime.now(UTC)):
                return


# Daily at 00:05 in China (procrastinate reads cron in UTC). The worker also runs `seed` when it
# starts, so a new deployment does not wait for the first run, and a missed day costs nothing:
# the table reaches two years ahead.
@app.periodic(cron="5 16 * * *")
@app.task(name="keep_calendar", queue="routing", queueing_lock="keep_calendar")
async def keep_calendar(timestamp: int) -> None:
    """Provisional years up to today + 2 (China time); official years are never touched."""
    async with sessionmaker().begin() as session:
        await store.seed(
            session, through_year=store.through_year(datetime.fromtimestamp(timestamp, UTC))
        )
