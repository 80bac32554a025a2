"""The media fetch job: durable, retried with backoff, within the platform's 3 days."""

import asyncio
from datetime import UTC, datetime

import httpx
from procrastinate import JobContext, RetryStrategy

from app.accounts.models import Platform
from app.db import sessionmaker
from app.delivery import service as outbox
from app.delivery import wechat, weibo
from app.media import service, store
from app.media.models import Media, MediaStatus
from app.settings import settings
from app.worker import app

TASK = "fetch_media"
ATTEMPTS = 8  # 4 s … about 4.5 h apart: well inside the 3 days
RETRY = RetryStrategy(max_attempts=ATTEMPTS - 1, exponential_wait=4)
TOKEN_SECONDS = 20.0


class TryAgain(Exception):
    """Busy, unreachable or an answer cut short: the job runs again after its backoff."""


@app.periodic(cron="*/10 * * * *")
@app.task(name="recover_media", queue="routing", queueing_lock="recover_media")
async def recover_media(timestamp: int) -> None:
    """Every ten minutes: pending media whose fetch job is gone get a new one."""
    async with sessionmaker().begin() as session:
        await service.recover(session, now=datetime.fromtimestamp(timestamp, UTC), task=TASK)


@app.task(name=TASK, queue="routing", retry=RETRY, pass_context=True)
async def fetch_media(context: JobContext, media_id: int) -> None:
    await fetch(media_id, last_attempt=context.job.attempts + 1 >= ATTEMPTS)


async def fetch(media_id: int, *, last_attempt: bool = False) -> None:
    async with sessionmaker().begin() as session:
        job = await service.claim(session, media_id, now=datetime.now(UTC))
    if job is None:
        return
    if job.platform is Platform.weibo and not job.weibo_token:
        await _settle(job, MediaStatus.failed, code="unconfigured", error="no fan-service token")
        return
    if job.platform is Platform.wechat and not (job.app_id and job.secret):
        await _settle(job, MediaStatus.failed, code="unconfigured", error="no AppSecret")
        return
    async with httpx.AsyncClient() as http:
        try:
            if job.platform is Platform.weibo:
                assert job.weibo_token is not None
                content, content_type = await weibo.get_media(
                    http,
                    settings().weibo_upload_api_base,
                    access_token=job.weibo_token,
                    fid=job.platform_media_id,
                    max_bytes=settings().media_max_bytes,
                )
            else:
                content, content_type = await _wechat(http, job)
        except weibo.WeiboError as exc:
            if exc.code in weibo.TOKEN:
                # The admin sets a new token: the row stays pending, saying why, and is fetched
                # again (recover_media) within the 3 days.
                await _note(job, code=str(exc.code), error=exc.message)
                raise TryAgain(f"{exc.code} {exc.message}") from exc
            if exc.busy and not last_attempt:
                raise TryAgain(f"{exc.code} {exc.message}") from exc
            await _settle(job, MediaStatus.failed, code=str(exc.code), error=exc.message)
            return
        except wechat.WeChatError as exc:
            if exc.code in wechat.BUSY and not last_attempt:
                raise TryAgain(f"{exc.code} {exc.message}") from exc
            await _settle(job, MediaStatus.failed, code=str(exc.code), error=exc.message)
            return
        except (wechat.Unsent, wechat.Unknown, TimeoutError) as exc:
            # Fetching twice is harmless (unlike a send): anything unclear is tried again.
            if not last_attempt:
                raise TryAgain(f"{type(exc).__name__}: {exc}") from exc
            await _settle(job, MediaStatus.failed, code="unreachable", error=str(exc))
            return
    try:
        key = await asyncio.to_thread(store.put, content)
    except Exception as exc:  # the store's own errors (a folder, or boto3's): not the platform's
        error = f"{type(exc).__name__}: {exc}"
        if not last_attempt:
            await _note(job, code="store", error=error)
            raise TryAgain(error) from exc
        await _settle(job, MediaStatus.failed, code="store", error=error)
        return
    await _settle(job, MediaStatus.stored, content_type=content_type, size=len(content), key=key)


async def _wechat(http: httpx.AsyncClient, job: service.Fetch) -> tuple[bytes, str]:
    """media/get, with the cached token; a token WeChat calls invalid is renewed once."""
    for force in (False, True):
        async with asyncio.timeout(TOKEN_SECONDS), sessionmaker().begin() as session:
            access = await outbox.token(session, http, job, now=datetime.now(UTC), force=force)
        try:
            return await wechat.get_media(
                http,
                settings().wechat_api_base,
                access_token=access,
                media_id=job.platform_media_id,
                max_bytes=settings().media_max_bytes,
            )
        except wechat.WeChatError as exc:
            if exc.code not in wechat.TOKEN or force:
                raise
    raise AssertionError("unreachable")


async def _settle(job: service.Fetch, status: MediaStatus, **fields: object) -> None:
    async with sessionmaker().begin() as session:
        row = await session.get_one(Media, job.media_id, with_for_update=True)
        if row.status is MediaStatus.pending:
            service.settle(row, status, now=datetime.now(UTC), **fields)  # type: ignore[arg-type]


async def _note(job: service.Fetch, *, code: str, error: str) -> None:
    """Why the last attempt failed, on a row left pending (shown, and kept if it expires)."""
    async with sessionmaker().begin() as session:
        row = await session.get_one(Media, job.media_id, with_for_update=True)
        if row.status is MediaStatus.pending:
            row.error_code, row.error = code, error[:500]
