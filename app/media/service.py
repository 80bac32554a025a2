"""Media citizens send (issue 16): fetched before the platform drops it (WeChat keeps temporary
media 3 days), by a durable job with retries, into the file store; served to the department
holding (or reading) the inquiry; a fetch that finally failed is shown as such."""

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account, Platform
from app.inquiries.models import Inquiry
from app.media.models import Media, MediaStatus
from app.problems import Conflict, NotFound

# WeChat's temporary media (protocol brief §8.6); Weibo names none, so the same is assumed.
LIFETIME = timedelta(days=3)


@dataclass(frozen=True)
class Fetch:
    """What one fetch needs, read when it was claimed."""

    media_id: int
    account_id: int
    app_id: str | None
    secret: str | None
    platform_media_id: str
    attempt: int
    platform: Platform = Platform.wechat
    weibo_token: str | None = None  # a Weibo account's fan-service token


async def claim(session: AsyncSession, media_id: int, *, now: datetime) -> Fetch | None:
    """A pending media row to fetch now (counted as an attempt), or None: stored or failed
    already, or past the platform's lifetime (then failed, visibly)."""
    row = await session.scalar(select(Media).where(Media.id == media_id).with_for_update())
    if row is None or row.status is not MediaStatus.pending:
        return None
    inquiry = await session.get_one(Inquiry, row.inquiry_id)
    if now - row.created_at > LIFETIME:
        last = f" (last: {row.error_code} {row.error})" if row.error_code else ""
        settle(row, MediaStatus.failed, code="expired", error=f"past the platform's 3 days{last}")
        return None
    account = await session.get_one(Account, inquiry.account_id)
    row.attempts += 1
    await session.flush()
    return Fetch(
        row.id,
        account.id,
        account.wechat_app_id,
        account.wechat_app_secret,
        row.platform_media_id,
        row.attempts,
        account.platform,
        account.weibo_access_token,
    )


def settle(
    row: Media,
    status: MediaStatus,
    *,
    code: str | None = None,
    error: str = "",
    content_type: str | None = None,
    size: int | None = None,
    key: str | None = None,
    now: datetime | None = None,
) -> None:
    row.status, row.error_code, row.error = status, code, error
    if status is MediaStatus.stored:
        row.content_type, row.size, row.storage_key, row.fetched_at = content_type, size, key, now


class MediaNotFound(NotFound):
    title = "Media not found"
    slug = "media-not-found"
    example_detail = "No media 42 on WX20261124-000123."


class MediaUnavailable(Conflict):
    title = "Media not available"
    slug = "media-unavailable"
    example_detail = (
        "Media 42 of WX20261124-000123 could not be fetched (40007 invalid media_id: the "
        "platform keeps it 3 days); ask the citizen to send it again."
    )


async def get(session: AsyncSession, inquiry: Inquiry, media_id: int) -> Media:
    """A stored media file of the inquiry; 404 for another inquiry's, 409 (with the reason)
    while it is being fetched or when the fetch failed."""
    row = await session.scalar(
        select(Media).where(Media.id == media_id, Media.inquiry_id == inquiry.id)
    )
    if row is None:
        raise MediaNotFound(f"No media {media_id} on {inquiry.reference}.")
    if row.status is MediaStatus.pending:
        raise MediaUnavailable(
            f"Media {row.id} of {inquiry.reference} is still being fetched.",
            media_status=row.status.value,
        )
    if row.status is MediaStatus.failed:
        raise MediaUnavailable(
            f"Media {row.id} of {inquiry.reference} could not be fetched "
            f"({row.error_code} {row.error}); ask the citizen to send it again.",
            media_status=row.status.value,
        )
    return row


ORPHAN_GRACE = timedelta(minutes=10)
_DEFER = text(
    "SELECT procrastinate_defer_jobs_v1(ARRAY[ROW('routing', :task, 0, NULL, NULL,"
    " CAST(:args AS jsonb), NULL)::procrastinate_job_to_defer_v1])"
)
# Pending media whose fetch job is gone (it failed for good, or a worker of an older release did
# not know it): inside the platform's 3 days, a new one.
_ORPHANS = text(
    """
    SELECT m.id FROM media m
     WHERE m.status = 'pending' AND m.updated_at < :before AND m.created_at > :alive
       AND NOT EXISTS (SELECT 1 FROM procrastinate_jobs j
                        WHERE j.task_name = :task AND j.status IN ('todo', 'doing')
                          AND j.args ->> 'media_id' = m.id::text)
     ORDER BY m.id
     LIMIT 500
    """
)


async def recover(session: AsyncSession, *, now: datetime, task: str) -> int:
    """A new fetch job for each pending media row that has none; returns how many. Past the
    3 days the next run of the job marks it expired, visibly."""
    orphans = list(
        await session.scalars(
            _ORPHANS, {"before": now - ORPHAN_GRACE, "alive": now - LIFETIME, "task": task}
        )
    )
    for media_id in orphans:
        await session.execute(_DEFER, {"task": task, "args": json.dumps({"media_id": media_id})})
        await session.execute(update(Media).where(Media.id == media_id).values(updated_at=now))
    return len(orphans)
