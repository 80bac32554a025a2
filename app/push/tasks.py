"""Durable jobs of push: the sweep that queues notifications, and their delivery."""

from datetime import UTC, datetime
from typing import Any

import httpx
from procrastinate import JobContext, RetryStrategy

from app.db import sessionmaker
from app.push import client, service
from app.worker import app

# A failing delivery runs 5 times in all, 4, 16, 64 and 256 seconds apart (about 6 minutes);
# then the failure is put on the registration for the admin, and the next sweep sends the
# changes after it.
ATTEMPTS = 5
BACKOFF = RetryStrategy(max_attempts=ATTEMPTS - 1, exponential_wait=4)


@app.periodic(cron="* * * * *")
@app.task(name="sweep_push", queue="routing", queueing_lock="sweep_push")
async def sweep_push(timestamp: int) -> None:
    """Queue a notification for each registration whose department's feed moved."""
    async with sessionmaker().begin() as session:
        await service.queue_notifications(session)


@app.task(name=service.DELIVERY_TASK, queue="routing", retry=BACKOFF, pass_context=True)
async def deliver_push(
    context: JobContext, registration_id: int, changes: list[dict[str, Any]]
) -> None:
    await deliver(registration_id, changes, attempt=context.job.attempts + 1)


async def deliver(registration_id: int, changes: list[dict[str, Any]], *, attempt: int) -> None:
    """POST one notification, outside any transaction; the last failed attempt is recorded on the
    registration, a success clears what was recorded."""
    async with sessionmaker().begin() as session:
        target = await service.target(session, registration_id=registration_id)
    if target is None:
        return  # unregistered meanwhile
    try:
        async with httpx.AsyncClient(timeout=client.TIMEOUT) as http:
            await client.post(
                http,
                target.url,
                secret=target.secret,
                payload=service.notification(target.department_code, changes),
                now=datetime.now(UTC),
            )
    except client.DeliveryFailed as exc:
        if attempt < ATTEMPTS:
            raise
        async with sessionmaker().begin() as session:
            await service.record_failure(
                session, registration_id=registration_id, error=str(exc), now=datetime.now(UTC)
            )
        return
    async with sessionmaker().begin() as session:
        await service.record_success(
            session, registration_id=registration_id, now=datetime.now(UTC)
        )
