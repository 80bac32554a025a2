"""What the accounts publish (issue 16), for the 15-day rule and the 1-hour repost rule and for
the comments that hang on articles. WeChat tells us by events on the webhook (PUBLISHJOBFINISH
after a 发布, MASSSENDJOBFINISH after a mass send), each recorded by a job intake queues with
it; a daily pull of published articles (freepublish/batchget) catches what the back office
publishes without them. A Weibo account's posts come from its timeline
(statuses/user_timeline), which says what is original and what reposts which post. An account
no source works for is flagged: unknown is not zero."""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from defusedxml import ElementTree as SafeElementTree
from sqlalchemy import BigInteger, cast, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account
from app.deadlines.calendar import CHINA
from app.publications.models import Publication
from app.webhooks.models import InboxEvent

EVENTS = ("PUBLISHJOBFINISH", "MASSSENDJOBFINISH")


@dataclass(frozen=True)
class Item:
    """One article as a source reports it."""

    source: str
    platform_id: str
    item_index: int
    published_at: datetime
    title: str = ""
    url: str = ""
    msg_data_id: str | None = None
    original: bool | None = None  # None: the source does not say (WeChat's)
    repost_of: str | None = None  # the reposted post's URL ("" when Weibo no longer shows it)


def from_event(event_type: str, xml: str, sent_at: datetime) -> list[Item]:
    """The articles a completion event reports (a failed job reports none)."""
    root = SafeElementTree.fromstring(xml, forbid_dtd=True, forbid_entities=True)
    if event_type == "PUBLISHJOBFINISH":
        info = root.find("PublishEventInfo")
        if info is None or (info.findtext("publish_status") or "").strip() != "0":
            return []
        article = (info.findtext("article_id") or "").strip()
        return [
            Item(
                "publish_event",
                article,
                int((item.findtext("idx") or "1").strip()),
                sent_at,
                url=(item.findtext("article_url") or "").strip(),
            )
            for item in info.iterfind("article_detail/item")
            if article
        ]
    status = (root.findtext("Status") or "").strip()
    message = (root.findtext("MsgID") or "").strip()
    if not message or status != "send success":
        return []
    return [
        Item(
            "masssend_event",
            message,
            int((item.findtext("ArticleIdx") or "1").strip()),
            sent_at,
            url=(item.findtext("ArticleUrl") or "").strip(),
        )
        for item in root.iterfind("ArticleUrlResult/ResultList/item")
    ]


async def record(session: AsyncSession, account_id: int, items: list[Item]) -> int:
    """Upsert; a later source fills in what an earlier one did not know (a title, a URL).
    Returns how many were new."""
    new = 0
    for item in items:
        statement = insert(Publication).values(
            account_id=account_id,
            source=item.source,
            platform_id=item.platform_id,
            item_index=item.item_index,
            title=item.title,
            url=item.url,
            published_at=item.published_at,
            msg_data_id=item.msg_data_id,
            original=item.original,
            repost_of=item.repost_of,
        )
        result = await session.execute(
            statement.on_conflict_do_update(
                index_elements=["account_id", "platform_id", "item_index"],
                set_={
                    "title": text("COALESCE(NULLIF(publication.title, ''), excluded.title)"),
                    "url": text("COALESCE(NULLIF(publication.url, ''), excluded.url)"),
                    "msg_data_id": text("COALESCE(publication.msg_data_id, excluded.msg_data_id)"),
                    "published_at": text("LEAST(publication.published_at, excluded.published_at)"),
                    "original": text("COALESCE(excluded.original, publication.original)"),
                    "repost_of": text("COALESCE(excluded.repost_of, publication.repost_of)"),
                },
            ).returning(text("(xmax = 0) AS inserted"))
        )
        new += bool(result.scalar())
    return new


async def record_event(session: AsyncSession, inbox_event_id: int) -> int:
    """A completion event intake stored (and queued this job for): its articles. Returns how
    many were new (a job run again records nothing twice)."""
    event = await session.get_one(InboxEvent, inbox_event_id)
    if event.event_type not in EVENTS:
        return 0
    return await record(
        session, event.account_id, from_event(event.event_type, event.payload, event.sent_at)
    )


def entries(answer: dict[str, object], key: str) -> list[dict[str, Any]]:
    """A platform answer's list under `key`, its objects only."""
    found = answer.get(key)
    return [entry for entry in found if isinstance(entry, dict)] if isinstance(found, list) else []


def from_batchget(answer: dict[str, object]) -> Iterator[Item]:
    """freepublish/batchget's items: each published article with its items (news_item)."""
    for entry in entries(answer, "item"):
        article = str(entry.get("article_id", ""))
        updated = datetime.fromtimestamp(int(str(entry.get("update_time", 0))), UTC)
        content = entry.get("content") or {}
        news = content.get("news_item", []) if isinstance(content, dict) else []
        for index, news_item in enumerate(news, start=1):
            if article and isinstance(news_item, dict):
                yield Item(
                    "freepublish_pull",
                    article,
                    index,
                    updated,
                    title=str(news_item.get("title", "")),
                    url=str(news_item.get("url", "")),
                )


def from_summary(answer: dict[str, object]) -> Iterator[Item]:
    """datacube/getarticlesummary's list: `msgid` is "<msg_data_id>_<index>" (index from 1),
    the id comment/list takes; `ref_date` the day, in Beijing."""
    for entry in entries(answer, "list"):
        msg_data_id, _, index = str(entry.get("msgid", "")).partition("_")
        if not (msg_data_id.isdigit() and index.isdigit()):
            continue
        day = datetime.strptime(str(entry.get("ref_date", "")), "%Y-%m-%d")
        yield Item(
            "datacube_pull",
            msg_data_id,
            int(index),
            day.replace(tzinfo=CHINA).astimezone(UTC),
            title=str(entry.get("title", "")),
            msg_data_id=msg_data_id,
        )


async def record_summary(session: AsyncSession, account_id: int, items: list[Item]) -> int:
    """Articles the data API reports: their msg_data_id (and title) goes onto the article
    already recorded with the same title within two days (learnt from an event or the pull),
    or else onto the one item of that number of the day's mass send (whose event has no
    title); an article not recorded yet is recorded from here. Returns how many were new."""
    unmatched = []
    for item in items:
        seen = await session.scalar(
            select(Publication.id).where(
                Publication.account_id == account_id,
                Publication.msg_data_id == item.msg_data_id,
                Publication.item_index == item.item_index,
            )
        )
        if seen is not None:
            continue  # learnt already (the same day read again, or matched before)
        known = await session.scalar(
            select(Publication)
            .where(
                Publication.account_id == account_id,
                Publication.title == item.title,
                Publication.title != "",
                Publication.msg_data_id.is_(None),
                Publication.published_at.between(
                    item.published_at - timedelta(days=2), item.published_at + timedelta(days=2)
                ),
            )
            .order_by(Publication.id)
            .limit(1)
            .with_for_update()
        )
        if known is None:
            known = await _mass_sent(session, account_id, item)
        if known is not None:
            known.msg_data_id = item.msg_data_id
            known.title = known.title or item.title
        else:
            unmatched.append(item)
    await session.flush()
    return await record(session, account_id, unmatched)


WEIBO_CREATED_AT = "%a %b %d %H:%M:%S %z %Y"  # "Tue Nov 24 10:00:00 +0800 2026"
WEIBO_TITLE = 60  # a post has no title: its first characters stand for one


def weibo_post_url(post_id: str) -> str:
    """A Weibo post's address by its numeric id (the same form for the account's own posts and
    the posts they repost, so a repost can be matched with its original)."""
    return f"https://m.weibo.cn/status/{post_id}"


def weibo_id(status: dict[str, Any]) -> str:
    found = str(status.get("idstr") or status.get("id") or "")
    return found if found.isdigit() else ""


def from_timeline(statuses: list[dict[str, Any]]) -> Iterator[Item]:
    """statuses/user_timeline's posts: each original or a repost (`retweeted_status`) of the
    post it names; one whose id or time is unreadable is left out."""
    for status in statuses:
        post = weibo_id(status)
        try:
            published = datetime.strptime(str(status.get("created_at", "")), WEIBO_CREATED_AT)
        except ValueError:
            continue
        if not post:
            continue
        reposted = status.get("retweeted_status")
        of = weibo_id(reposted) if isinstance(reposted, dict) else None
        yield Item(
            "weibo_timeline",
            post,
            1,
            published.astimezone(UTC),
            title=" ".join(str(status.get("text", "")).split())[:WEIBO_TITLE],
            url=weibo_post_url(post),
            original=not isinstance(reposted, dict),
            repost_of=None if of is None else (weibo_post_url(of) if of else ""),
        )


async def weibo_since(session: AsyncSession, account_id: int) -> int:
    """The newest post of the account's timeline recorded: the next pull reads after it."""
    newest = await session.scalar(
        select(func.max(cast(Publication.platform_id, BigInteger))).where(
            Publication.account_id == account_id, Publication.source == "weibo_timeline"
        )
    )
    return int(newest or 0)


async def _mass_sent(session: AsyncSession, account_id: int, item: Item) -> Publication | None:
    """The item of the same number of a mass send on the same Beijing day, if exactly one mass
    send that day has it (MASSSENDJOBFINISH gives URLs, not titles, so titles cannot match)."""
    found = list(
        await session.scalars(
            select(Publication)
            .where(
                Publication.account_id == account_id,
                Publication.source == "masssend_event",
                Publication.msg_data_id.is_(None),
                Publication.item_index == item.item_index,
                Publication.published_at >= item.published_at,  # the day's start, in Beijing
                Publication.published_at < item.published_at + timedelta(days=1),
            )
            .limit(2)
            .with_for_update()
        )
    )
    return found[0] if len(found) == 1 else None


@dataclass(frozen=True)
class Credentials:
    account_id: int
    app_id: str | None
    secret: str | None


async def accounts(session: AsyncSession) -> list[Account]:
    """Every active account: each is pulled from the source its platform has."""
    return list(await session.scalars(select(Account).where(Account.active).order_by(Account.id)))


def pulled(account: Account, *, now: datetime, error: str | None) -> None:
    """The pull's outcome on the account: the flag says whether its publications are known."""
    account.publications_checked_at, account.publications_error = now, error
