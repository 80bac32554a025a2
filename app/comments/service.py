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
from app.comments.models import Comment, CommentFeed
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
        new += await _store(
            session,
            connection,
            account,
            comment,
            dedupe_key=f"comment:{article.msg_data_id}:{article.index}:{comment_id}",
            sender=openid,
            kind="comment",
            content=str(comment.get("content", "")),
            at=at,
            now=now,
            publication_id=article.publication_id,
            post_id=None,
        )
    publication = await session.get_one(Publication, article.publication_id, with_for_update=True)
    publication.comments_seen = article.seen + len(comments)
    publication.comments_polled_at = now
    await session.flush()
    return new


async def _store(
    session: AsyncSession,
    connection: intake.Connection,
    account: intake.WebhookAccount,
    comment: dict[str, Any],
    *,
    dedupe_key: str,
    sender: str,
    kind: str,
    content: str,
    at: datetime,
    now: datetime,
    publication_id: int | None,
    post_id: str | None,
) -> int:
    """One comment through intake (channel `comment`: a new inquiry, never threaded; the dedupe
    key makes it once), and where its reply goes. 1 if it was new."""
    comment_id = dedupe_key.rpartition(":")[2]
    stored = await intake.store(
        connection,
        account,
        intake.Delivery(
            dedupe_key=dedupe_key,
            sender_id=sender,
            msg_type=kind,
            event_type=None,
            sent_at=at,
            payload=repr(comment)[:4000],
            content=content,
            platform_msg_id=comment_id,
            channel=Channel.comment,
        ),
        now=now,
        open_window=timedelta(days=7),
        quiet=timedelta(seconds=0),
        seconds=5,
    )
    if not (stored.opened and stored.inquiry_id is not None):
        return 0
    session.add(
        Comment(
            publication_id=publication_id,
            platform_post_id=post_id,
            inquiry_id=stored.inquiry_id,
            platform_comment_id=comment_id,
            commented_at=at,
        )
    )
    return 1


async def target(session: AsyncSession, inquiry_id: int) -> tuple[str, int, str] | None:
    """Where a reply to a comment inquiry goes: WeChat (msg_data_id, index, user_comment_id);
    Weibo (the post's id, 0, the comment's id)."""
    row = (
        await session.execute(
            select(
                Publication.msg_data_id,
                Publication.item_index,
                Comment.platform_post_id,
                Comment.platform_comment_id,
            )
            .select_from(Comment)
            .outerjoin(Publication, Publication.id == Comment.publication_id)
            .where(Comment.inquiry_id == inquiry_id)
        )
    ).first()
    if row is None:
        return None
    msg_data_id, index, post_id, comment_id = row
    if post_id is not None:
        return str(post_id), 0, str(comment_id)
    if msg_data_id is None:
        return None
    return str(msg_data_id), int(index) - 1, str(comment_id)


WEIBO_TIME = "%a %b %d %H:%M:%S %z %Y"  # Weibo's created_at (protocol brief §5)


async def take_weibo(
    session: AsyncSession,
    account_id: int,
    feed: str,
    comments: list[dict[str, Any]],
    *,
    now: datetime,
    complete: bool = True,
) -> int:
    """Comments from a Weibo feed (on the account's posts, or @mentioning it), each an inquiry
    once (dedupe on the comment's id, whichever feed brought it); the feed's since_id moves to
    the newest, only when every comment after it was read (`complete`): else older ones would
    be skipped for good. Returns how many were new."""
    connection = (await (await session.connection()).get_raw_connection()).driver_connection
    assert connection is not None
    account = await session.get_one(Account, account_id)
    webhook_account = await intake.account(connection, account.platform, account.code, seconds=5)
    new, newest = 0, 0
    for comment in comments:
        comment_id = str(comment.get("idstr") or comment.get("id") or "")
        user = comment.get("user") if isinstance(comment.get("user"), dict) else {}
        status = comment.get("status") if isinstance(comment.get("status"), dict) else {}
        sender = str((user or {}).get("idstr") or (user or {}).get("id") or "")
        post_id = str((status or {}).get("idstr") or (status or {}).get("id") or "")
        if not (comment_id.isdigit() and sender.isdigit() and post_id.isdigit()):
            continue
        newest = max(newest, int(comment_id))
        try:
            at = datetime.strptime(str(comment.get("created_at", "")), WEIBO_TIME)
        except ValueError:
            at = now
        new += await _store(
            session,
            connection,
            webhook_account,
            comment,
            dedupe_key=f"weibo-comment:{comment_id}",
            sender=sender,
            kind="comment" if feed == "to_me" else "mention",
            content=str(comment.get("text", "")),
            at=at,
            now=now,
            publication_id=None,
            post_id=post_id,
        )
    cursor = await session.get(CommentFeed, (account_id, feed), with_for_update=True)
    if cursor is None:
        cursor = CommentFeed(account_id=account_id, feed=feed, since_id=0)
        session.add(cursor)
    if complete:
        cursor.since_id = max(cursor.since_id or 0, newest)
    await session.flush()
    return new
