"""Jobs of ratings: a rating intake recorded, the one reminder, and overdue call-backs."""

from datetime import UTC, datetime

from app.db import sessionmaker
from app.ratings import service
from app.worker import app


@app.task(name="rating_received", queue="routing")
async def rating_received(rating_id: int) -> None:
    """Queued by intake with the rating: the department hears of it; a bad one opens a
    call-back."""
    async with sessionmaker().begin() as session:
        await service.received(session, rating_id, now=datetime.now(UTC))


@app.periodic(cron="23 * * * *")
@app.task(name="remind_ratings", queue="routing", queueing_lock="remind_ratings")
async def remind_ratings(timestamp: int) -> None:
    """Hourly: one reminder for prompts left unanswered RATING_REMINDER_DAYS."""
    async with sessionmaker().begin() as session:
        await service.remind(session, now=datetime.fromtimestamp(timestamp, UTC))


@app.periodic(cron="*/10 * * * *")
@app.task(name="callbacks_overdue", queue="routing", queueing_lock="callbacks_overdue")
async def callbacks_overdue(timestamp: int) -> None:
    """Every ten minutes: call-backs past their due are told to the department, once."""
    async with sessionmaker().begin() as session:
        await service.overdue(session, now=datetime.fromtimestamp(timestamp, UTC))
