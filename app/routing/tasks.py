"""Durable jobs of routing. State lives in our tables; each job re-reads it and is idempotent."""

from datetime import UTC, datetime, timedelta

from procrastinate import JobContext, RetryStrategy
from procrastinate.manager import JobManager

from app.db import sessionmaker
from app.routing import service
from app.settings import settings
from app.worker import app

# An inquiry younger than this is left to the job its own intake queued.
SWEEP_GRACE = timedelta(minutes=2)
# A failing job runs 5 times in all, 4, 16, 64 and 256 seconds apart (about 6 minutes), then
# routing gives the inquiry to the account's owning department with the error on record.
ATTEMPTS = 5
BACKOFF = RetryStrategy(max_attempts=ATTEMPTS - 1, exponential_wait=4)


@app.task(name="route_inquiry", queue="routing", retry=BACKOFF, pass_context=True)
async def route_inquiry(context: JobContext, inquiry_id: int) -> None:
    await route_or_fall_back(inquiry_id, attempt=context.job.attempts + 1)


async def route_or_fall_back(inquiry_id: int, *, attempt: int) -> None:
    """Route; on the last attempt, a failure becomes a recorded fallback instead of an inquiry
    nobody sees."""
    keywords = settings().urgent_keywords
    try:
        async with sessionmaker().begin() as session:
            now = datetime.now(UTC)
            if not await service.route(session, inquiry_id=inquiry_id, now=now, keywords=keywords):
                # Routed already: a later fragment may change the decision (no key has acted).
                await service.reroute(session, inquiry_id=inquiry_id, now=now, keywords=keywords)
    except Exception as exc:
        if attempt < ATTEMPTS:
            raise
        async with sessionmaker().begin() as session:
            await service.fall_back(
                session,
                inquiry_id=inquiry_id,
                now=datetime.now(UTC),
                keywords=keywords,
                error=f"{type(exc).__name__}: {exc}",
                attempts=attempt,
            )


@app.task(name="check_urgent", queue="routing", retry=BACKOFF)
async def check_urgent(inquiry_id: int, seq: int) -> None:
    """Runs for every message appended to an open inquiry (and again from the sweep for a
    message no check has read)."""
    now = datetime.now(UTC)
    async with sessionmaker().begin() as session:
        await service.check_urgent(
            session, inquiry_id=inquiry_id, seq=seq, keywords=settings().urgent_keywords, now=now
        )
        await service.citizen_answered(session, inquiry_id=inquiry_id, seq=seq, now=now)
        await service.window_renewed(session, inquiry_id=inquiry_id)


@app.periodic(cron="* * * * *")
@app.task(name="sweep_unrouted", queue="routing", queueing_lock="sweep_unrouted", pass_context=True)
async def sweep_unrouted(context: JobContext, timestamp: int) -> None:
    # A job left `doing` by a worker that died (no heartbeat) goes back to the queue first, so
    # the sweep below does not mistake it for work in progress.
    await retry_stalled(context.app.job_manager)
    now = datetime.fromtimestamp(timestamp, UTC)
    async with sessionmaker().begin() as session:
        await service.requeue_unrouted(session, now=now, grace=SWEEP_GRACE)
        await service.requeue_urgent_checks(session, now=now, grace=SWEEP_GRACE)


async def retry_stalled(job_manager: JobManager) -> int:
    """Put jobs of dead workers (stale heartbeat) back in the queue; returns how many."""
    stalled = list(await job_manager.get_stalled_jobs(queue="routing"))
    for job in stalled:
        await job_manager.retry_job(job)
    return len(stalled)
