"""Comments (留言) on the accounts' articles (issue 16). WeChat does not push them: a periodic
job lists new ones per article (comment/list, fewer than 50 a call, a cursor per article) for
accounts with comment management enabled. Each becomes an inquiry of channel `comment` through
the same intake as messages (deduplicated on the comment id, never threaded); the public reply,
once a reviewer approved it, goes back through comment/reply/add, one per comment."""

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account
from app.comments.models import Comment
from app.inquiries.models import Channel
from app.publications.models import Publication
from app.webhooks import service as intake

PAGE = 49  # comment/list: fewer than 50 a call
OVERLAP = 5


@dataclass(frozen=True)
class Article:
    """One article whose comments are polled."""

    publication_id: int
    account_id: int
    account_code: str
    msg_data_id: str
    index: int  # comment/list counts an article's items from 0
    seen: int


async def articles(session: AsyncSession, *, now: datetime, days: int) -> list[Article]:
    """Articles of the last `days` with a msg_data_id, of accounts with comments enabled."""
    rows = (
        await session.execute(
            select(Publication, Account.code)
            .join(Account, Account.id == Publication.account_id)
            .where(
                Account.active,
                Account.comments_enabled,
                Publication.msg_data_id.is_not(None),
                Publication.published_at > now - timedelta(days=days),
            )
            .order_by(Publication.id)
        )
    ).all()
    return [
        Article(p.id, p.account_id, code, str(p.msg_data_id), p.item_index - 1, p.comments_seen)
        for p, code in rows
    ]


async def take(
    session: AsyncSession, article: Article, comments: list[dict[str, Any]], *, now: datetime
) -> int:
    """Comments read from the platform, each an inquiry once (the inbox's dedupe key is the
    comment's id); the article's cursor moves past them. Returns how many were new."""
    connection = (await (await session.connection()).get_raw_connection()).driver_connection
    assert connection is not None
    account = await intake.account(
        connection,
        (await session.get_one(Account, article.account_id)).platform,
        article.account_code,
        seconds=5,
    )
    new = 0
    for comment in comments:
        comment_id = str(comment.get("user_comment_id", ""))
        openid = str(comment.get("openid", ""))
        if not comment_id.isdigit() or not openid:
            continue
        at = datetime.fromtimestamp(int(str(comment.get("create_time", 0))), UTC)
        stored = await intake.store(
            connection,
            account,
            intake.Delivery(
                dedupe_key=f"comment:{article.msg_data_id}:{article.index}:{comment_id}",
                sender_id=openid,
                msg_type="comment",
                event_type=None,
                sent_at=at,
                payload=repr(comment)[:4000],
                content=str(comment.get("content", "")),
                platform_msg_id=comment_id,
                channel=Channel.comment,
            ),
            now=now,
            open_window=timedelta(days=7),
            quiet=timedelta(seconds=0),
            seconds=5,
        )
        if stored.opened and stored.inquiry_id is not None:
            session.add(
                Comment(
                    publication_id=article.publication_id,
                    inquiry_id=stored.inquiry_id,
                    platform_comment_id=comment_id,
                    commented_at=at,
                )
            )
            new += 1
    publication = await session.get_one(Publication, article.publication_id, with_for_update=True)
    publication.comments_seen = article.seen + len(comments)
    publication.comments_polled_at = now
    await session.flush()
    return new


async def target(session: AsyncSession, inquiry_id: int) -> tuple[str, int, str] | None:
    """Where a reply to a comment inquiry goes: (msg_data_id, index, user_comment_id)."""
    row = (
        await session.execute(
            select(Publication.msg_data_id, Publication.item_index, Comment.platform_comment_id)
            .join(Comment, Comment.publication_id == Publication.id)
            .where(Comment.inquiry_id == inquiry_id)
        )
    ).first()
    if row is None or row[0] is None:
        return None
    return str(row[0]), int(row[1]) - 1, str(row[2])
