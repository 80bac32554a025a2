"""Publications: the completion events intake queues a job for, and the daily pull (WeChat's
published articles, a Weibo account's timeline)."""

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from app.accounts.models import Account, Platform
from app.db import sessionmaker
from app.deadlines.calendar import CHINA
from app.delivery import service as outbox
from app.delivery import wechat, weibo
from app.publications import service
from app.settings import settings
from app.worker import app

PAGE = 20  # freepublish/batchget takes at most 20
TOKEN_SECONDS = 20.0


@app.task(name="record_publication", queue="routing")
async def record_publication(inbox_event_id: int) -> None:
    """Queued by intake with a publish or mass-send completion event."""
    async with sessionmaker().begin() as session:
        await service.record_event(session, inbox_event_id)


@app.periodic(cron="30 18 * * *")  # 02:30 in Beijing
@app.task(name="pull_publications", queue="routing", queueing_lock="pull_publications")
async def pull_publications(timestamp: int) -> None:
    """Each WeChat account's published articles and each Weibo account's timeline, of the last
    PUBLICATIONS_PULL_DAYS; an account no source works for (no AppSecret or token; the platform
    refuses) is flagged with why."""
    now = datetime.fromtimestamp(timestamp, UTC)
    async with sessionmaker().begin() as session:
        ids = [(a.id, a.platform) for a in await service.accounts(session)]
    for account_id, platform in ids:
        error = (
            await pull(account_id, now=now)
            if platform is Platform.wechat
            else await pull_weibo(account_id, now=now)
        )
        async with sessionmaker().begin() as session:
            account = await session.get_one(Account, account_id, with_for_update=True)
            service.pulled(account, now=now, error=error)


async def pull(account_id: int, *, now: datetime) -> str | None:
    """One account's pull; None, or why its publications are unknown."""
    async with sessionmaker().begin() as session:
        account = await session.get_one(Account, account_id)
        credentials = service.Credentials(
            account.id, account.wechat_app_id, account.wechat_app_secret
        )
        worked = account.publications_checked_at if account.publications_error is None else None
    if not (credentials.app_id and credentials.secret):
        return "no AppSecret: the published articles cannot be pulled"
    since = now - timedelta(days=settings().publications_pull_days)
    base = settings().wechat_api_base
    offset = 0
    async with httpx.AsyncClient() as http:
        try:
            while True:
                async with asyncio.timeout(TOKEN_SECONDS), sessionmaker().begin() as session:
                    access = await outbox.token(session, http, credentials, now=now, force=False)
                answer = await wechat.freepublish_batchget(
                    http, base, access_token=access, offset=offset, count=PAGE
                )
                items = list(service.from_batchget(answer))
                async with sessionmaker().begin() as session:
                    await service.record(session, account_id, items)
                offset += PAGE
                total = int(str(answer.get("total_count", 0)))
                if offset >= total or any(item.published_at < since for item in items):
                    break
            # The comments' ids: sent articles from the data API (it has no today), for every
            # day since the last pull that worked (a missed run loses nothing), at most a week.
            for day in summary_days(now, worked):
                async with asyncio.timeout(TOKEN_SECONDS), sessionmaker().begin() as session:
                    access = await outbox.token(session, http, credentials, now=now, force=False)
                summary = await wechat.article_summary(
                    http, base, access_token=access, day=day.astimezone(CHINA).strftime("%Y-%m-%d")
                )
                async with sessionmaker().begin() as session:
                    await service.record_summary(
                        session, account_id, list(service.from_summary(summary))
                    )
            return None
        except wechat.WeChatError as exc:
            return f"{exc.code} {exc.message}"
        except (wechat.Unsent, wechat.Unknown, TimeoutError) as exc:
            return f"unreachable: {exc}"


SUMMARY_DAYS = 7  # the data API read back at most this far (a first pull, a long outage)


def summary_days(now: datetime, worked: datetime | None) -> list[datetime]:
    """The days the data API is read for: yesterday back to the day before the last pull that
    worked (read again: nothing is recorded twice), at most SUMMARY_DAYS."""
    back = SUMMARY_DAYS if worked is None else min(SUMMARY_DAYS, (now - worked).days + 1)
    return [now - timedelta(days=k) for k in range(1, max(back, 1) + 1)]


WEIBO_PAGE = 100  # statuses/user_timeline's most
WEIBO_PAGES = 50


async def pull_weibo(account_id: int, *, now: datetime) -> str | None:
    """A Weibo account's posts after the newest recorded, back to PUBLICATIONS_PULL_DAYS, each
    page below the oldest id seen (`max_id`: a post deleted meanwhile shifts nothing), until a
    page comes back empty (Weibo may leave a page short where it hides a post: that is no end).
    All of it is recorded in one transaction once every page is in, because the next pull reads
    after the newest recorded: a pull cut short records nothing rather than leave a gap. None,
    or why its publications are unknown."""
    async with sessionmaker().begin() as session:
        account = await session.get_one(Account, account_id)
        token, uid = account.weibo_access_token, account.weibo_uid
        since = await service.weibo_since(session, account_id)
    if not (token and uid):
        return "no Weibo token or uid: the account's timeline cannot be read"
    oldest = now - timedelta(days=settings().publications_pull_days)
    found: list[service.Item] = []
    below: int | None = None
    async with httpx.AsyncClient() as http:
        try:
            for _ in range(WEIBO_PAGES):
                statuses = await weibo.user_timeline(
                    http,
                    settings().weibo_open_api_base,
                    access_token=token,
                    uid=uid,
                    since_id=since,
                    max_id=below,
                    count=WEIBO_PAGE,
                )
                items = list(service.from_timeline(statuses))
                found += items
                ids = [int(post) for post in map(service.weibo_id, statuses) if post]
                if not ids or any(i.published_at < oldest for i in items):
                    break
                below = min(ids) - 1
            else:
                return f"more than {WEIBO_PAGES * WEIBO_PAGE} posts since the last pull"
        except weibo.WeiboError as exc:
            return f"{exc.code} {exc.message}"
        except (wechat.Unsent, wechat.Unknown) as exc:
            return f"unreachable: {exc}"
    async with sessionmaker().begin() as session:
        await service.record(session, account_id, found)
    return None
