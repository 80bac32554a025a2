"""Durable jobs of routing. State lives in our tables; each job re-reads it and is idempotent."""

from datetime import UTC, datetime, timedelta

from procrastinate import JobContext
from procrastinate.manager import JobManager

from app.db import sessionmaker
from app.deadlines import alerts
from app.routing import service
from app.settings import settings
from app.worker import app

# An inquiry younger than this is left to the job its own intake queued.
SWEEP_GRACE = timedelta(minutes=2)


@app.task(name="route_inquiry", queue="routing", retry=5)
async def route_inquiry(inquiry_id: int) -> None:
    async with sessionmaker().begin() as session:
        await service.route(
            session,
            inquiry_id=inquiry_id,
            now=datetime.now(UTC),
            keywords=settings().urgent_keywords,
        )


@app.task(name="check_urgent", queue="routing", retry=5)
async def check_urgent(inquiry_id: int, seq: int) -> None:
    """Runs for every message appended to an open inquiry."""
    async with sessionmaker().begin() as session:
        await service.check_urgent(
            session, inquiry_id=inquiry_id, seq=seq, keywords=settings().urgent_keywords
        )
        await service.citizen_answered(session, inquiry_id=inquiry_id, seq=seq)


@app.periodic(cron="* * * * *")
@app.task(name="sweep_unrouted", queue="routing", queueing_lock="sweep_unrouted", pass_context=True)
async def sweep_unrouted(context: JobContext, timestamp: int) -> None:
    # A job left `doing` by a worker that died (no heartbeat) goes back to the queue first, so
    # the sweep below does not mistake it for work in progress.
    await retry_stalled(context.app.job_manager)
    async with sessionmaker().begin() as session:
        await service.requeue_unrouted(
            session, now=datetime.fromtimestamp(timestamp, UTC), grace=SWEEP_GRACE
        )


@app.periodic(cron="* * * * *")
@app.task(name="sweep_deadlines", queue="routing", queueing_lock="sweep_deadlines")
async def sweep_deadlines(timestamp: int) -> None:
    """Deadline warnings and escalation; idempotent (each alert is a unique row)."""
    config = settings()
    async with sessionmaker().begin() as session:
        await alerts.sweep(
            session,
            now=datetime.fromtimestamp(timestamp, UTC),
            office_hours=config.office_hours,
            fractions=config.warning_fractions,
        )


async def retry_stalled(job_manager: JobManager) -> int:
    """Put jobs of dead workers (stale heartbeat) back in the queue; returns how many."""
    stalled = list(await job_manager.get_stalled_jobs(queue="routing"))
    for job in stalled:
        await job_manager.retry_job(job)
    return len(stalled)
