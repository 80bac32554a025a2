"""The comment poll: every ten minutes, each article's new comments, page by page."""

import asyncio
import logging
from datetime import UTC, datetime

import httpx

from app.accounts.models import Account
from app.comments import service
from app.db import sessionmaker
from app.delivery import service as outbox
from app.delivery import wechat
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
    async with httpx.AsyncClient() as http:
        for article in articles:
            await poll(http, article, now=now)


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
