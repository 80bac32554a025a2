"""The answer page's housekeeping."""

from datetime import UTC, datetime

from app.answers import service
from app.db import sessionmaker
from app.worker import app


@app.periodic(cron="41 * * * *")
@app.task(name="purge_answer_attempts", queue="routing", queueing_lock="purge_answer_attempts")
async def purge_answer_attempts(timestamp: int) -> None:
    """Hourly: counts of wrong codes whose window is over."""
    async with sessionmaker().begin() as session:
        await service.purge(session, now=datetime.fromtimestamp(timestamp, UTC))
