"""The comment poll: every ten minutes, each article's new comments, page by page."""

import asyncio
import logging
from datetime import UTC, datetime

import httpx
from sqlalchemy import select

from app.accounts.models import Account, Platform
from app.comments import service
from app.comments.models import CommentFeed
from app.db import sessionmaker
from app.delivery import service as outbox
from app.delivery import wechat, weibo
from app.publications.service import Credentials, entries
from app.settings import settings
from app.worker import app

TOKEN_SECONDS = 20.0
logger = logging.getLogger("govinbox.comments")


@app.periodic(cron="*/10 * * * *")
@app.task(name="poll_comments", queue="routing", queueing_lock="poll_comments")
async def poll_comments(timestamp: int) -> None:
    now = datetime.fromtimestamp(timestamp, UTC)
    async with sessionmaker().begin() as session:
        articles = await service.articles(session, now=now, days=settings().comments_poll_days)
        weibo = [
            (a.id, str(a.weibo_access_token))
            for a in await session.scalars(
                select(Account).where(
                    Account.active,
                    Account.platform == Platform.weibo,
                    Account.comments_enabled,
                    Account.weibo_access_token.is_not(None),
                )
            )
        ]
    async with httpx.AsyncClient() as http:
        for article in articles:
            await poll(http, article, now=now)
        for account_id, token in weibo:
            for feed in WEIBO_FEEDS:
                await poll_weibo(http, account_id, token, feed, now=now)


WEIBO_FEEDS = ("to_me", "mentions")  # comments on the account's posts; comments @mentioning it
WEIBO_PAGE = 50
WEIBO_PAGES = 100  # 5,000 comments a feed in one poll


async def poll_weibo(
    http: httpx.AsyncClient, account_id: int, token: str, feed: str, *, now: datetime
) -> int:
    """One Weibo feed's comments newer than its since_id, newest first, each page below the
    oldest id seen (max_id: a comment deleted meanwhile shifts nothing) until a page comes back
    empty (Weibo may leave a page short where it hides a comment: that is no end), taken in one
    transaction: the since_id moves only once every page is in."""
    async with sessionmaker().begin() as session:
        cursor = await session.get(CommentFeed, (account_id, feed))
        since = cursor.since_id if cursor is not None else 0
    found: list[dict[str, object]] = []
    below: int | None = None
    complete = False
    try:
        for _ in range(WEIBO_PAGES):
            batch = await weibo.comments(
                http,
                settings().weibo_api_base,
                access_token=token,
                feed=feed,
                since_id=since,
                max_id=below,
                count=WEIBO_PAGE,
            )
            found += batch
            ids = [int(str(c.get("id"))) for c in batch if str(c.get("id", "")).isdigit()]
            if not ids:
                complete = True
                break
            below = min(ids) - 1
        else:
            logger.warning(
                "weibo comment poll: more than the pages of one poll; the cursor stays",
                extra={"account_id": account_id, "feed": feed, "pages": WEIBO_PAGES},
            )
    except (weibo.WeiboError, wechat.Unsent, wechat.Unknown) as exc:
        logger.warning(
            "weibo comment poll failed", extra={"account_id": account_id, "error": str(exc)}
        )
        return 0
    async with sessionmaker().begin() as session:
        return await service.take_weibo(
            session, account_id, feed, found, now=now, complete=complete
        )


async def poll(http: httpx.AsyncClient, article: service.Article, *, now: datetime) -> int:
    """One article's new comments (fewer than 50 a call, from its cursor); each page is its
    own transaction, so a failure later keeps what was taken. Returns how many were new."""
    async with sessionmaker().begin() as session:
        account = await session.get_one(Account, article.account_id)
        credentials = Credentials(account.id, account.wechat_app_id, account.wechat_app_secret)
    # A little overlap: a comment deleted meanwhile shifts the later ones back; the inbox's
    # dedupe key keeps what is read twice from counting twice.
    new, seen = 0, max(0, article.seen - service.OVERLAP)
    try:
        while True:
            async with asyncio.timeout(TOKEN_SECONDS), sessionmaker().begin() as session:
                access = await outbox.token(session, http, credentials, now=now, force=False)
            page = await wechat.comment_list(
                http,
                settings().wechat_api_base,
                access_token=access,
                msg_data_id=article.msg_data_id,
                index=article.index,
                begin=seen,
                count=service.PAGE,
            )
            comments = entries(page, "comment")
            async with sessionmaker().begin() as session:
                new += await service.take(
                    session,
                    service.Article(
                        article.publication_id,
                        article.account_id,
                        article.account_code,
                        article.msg_data_id,
                        article.index,
                        seen,
                    ),
                    comments,
                    now=now,
                )
            seen += len(comments)
            if len(comments) < service.PAGE:
                return new
    except (wechat.WeChatError, wechat.Unsent, wechat.Unknown, TimeoutError) as exc:
        # Tried again at the next poll, from the cursor (88000: no comment privilege).
        logger.warning(
            "comment poll failed",
            extra={"publication_id": article.publication_id, "error": str(exc)},
        )
        return new
