"""What the accounts publish (issue 16): WeChat's completion events through the real webhook,
and the daily pull (freepublish/batchget) from the fake platform over real HTTP; an account no
source works for is flagged, never counted as publishing nothing."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts.models import Account
from app.deadlines.calendar import CHINA
from app.departments.models import Department
from app.publications import tasks as publication_tasks
from app.publications.models import Publication
from app.webhooks.models import InboxEvent
from tests import factories
from tests.conftest import ADMIN_TOKEN, Clock, make_client
from tests.delivery.test_outbox import WEBHOOK
from tests.fakes.wechat_api import FakeWeChat
from tests.fakes.weibo_api import FakeWeibo
from tests.inquiries.test_work import _city
from tests.webhooks.peers import ORIGINAL_ID, WeChat

pytestmark = pytest.mark.committing
City = tuple[httpx.AsyncClient, dict[str, str], str]
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


@pytest.fixture(autouse=True)
def _here(
    committing_maker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publication_tasks, "sessionmaker", lambda: committing_maker)


def _event(name: str, body: str, at: datetime) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName>"
        "<FromUserName><![CDATA[oEditor]]></FromUserName>"
        f"<CreateTime>{int(at.timestamp())}</CreateTime><MsgType><![CDATA[event]]></MsgType>"
        f"<Event><![CDATA[{name}]]></Event>{body}</xml>"
    )


PUBLISHED = (
    "<PublishEventInfo><publish_id>2247503051</publish_id><publish_status>0</publish_status>"
    "<article_id><![CDATA[ART_1]]></article_id><article_detail><count>1</count>"
    "<item><idx>1</idx><article_url><![CDATA[https://mp.weixin.qq.com/s/a1]]></article_url>"
    "</item></article_detail></PublishEventInfo>"
)
FAILED = PUBLISHED.replace("<publish_status>0", "<publish_status>1").replace("ART_1", "ART_X")
MASS_SENT = (
    "<MsgID>1000001625</MsgID><Status><![CDATA[send success]]></Status><TotalCount>100</TotalCount>"
    "<ArticleUrlResult><Count>2</Count><ResultList>"
    "<item><ArticleIdx>1</ArticleIdx><ArticleUrl><![CDATA[https://mp.weixin.qq.com/s/m1]]>"
    "</ArticleUrl></item><item><ArticleIdx>2</ArticleIdx><ArticleUrl>"
    "<![CDATA[https://mp.weixin.qq.com/s/m2]]></ArticleUrl></item></ResultList>"
    "</ArticleUrlResult>"
)


async def _publications(maker: async_sessionmaker[AsyncSession]) -> list[Publication]:
    async with maker() as session:
        return list(
            await session.scalars(
                select(Publication).order_by(Publication.platform_id, Publication.item_index)
            )
        )


async def test_completion_events_on_the_webhook_become_publications(
    fake: FakeWeChat, city: City, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    client, _, _ = city
    peer = WeChat(WEBHOOK, clock)
    for number, (name, body) in enumerate(
        (
            ("PUBLISHJOBFINISH", PUBLISHED),
            ("PUBLISHJOBFINISH", FAILED),
            ("MASSSENDJOBFINISH", MASS_SENT),
        )
    ):
        at = clock.now + timedelta(seconds=number)
        assert (await peer.post(client, _event(name, body, at))).status_code == 200

    # Intake queued a job with each completion event; run twice, it records nothing twice.
    async with committing_maker() as session:
        events = list(
            await session.scalars(
                select(InboxEvent.id)
                .where(InboxEvent.event_type.in_(["PUBLISHJOBFINISH", "MASSSENDJOBFINISH"]))
                .order_by(InboxEvent.id)
            )
        )
    assert len(events) == 3
    for event_id in events + events:
        await publication_tasks.record_publication(event_id)
    rows = await _publications(committing_maker)
    assert [(p.source, p.platform_id, p.item_index, p.url) for p in rows] == [
        ("masssend_event", "1000001625", 1, "https://mp.weixin.qq.com/s/m1"),
        ("masssend_event", "1000001625", 2, "https://mp.weixin.qq.com/s/m2"),
        ("publish_event", "ART_1", 1, "https://mp.weixin.qq.com/s/a1"),
    ]  # the failed 发布 is none


async def test_the_daily_pull_fills_in_and_an_account_without_a_source_is_unknown(
    fake: FakeWeChat, city: City, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    client, _, _ = city
    now = datetime.now(UTC)
    fake.published = [
        {
            "article_id": f"ART_{n}",
            "update_time": int((now - timedelta(days=n)).timestamp()),
            "content": {"news_item": [{"title": f"第{n}篇", "url": f"https://mp/s/{n}"}]},
        }
        for n in range(1, 26)
    ]
    async with committing_maker.begin() as session:
        office = await session.scalar(select(Department).where(Department.code == "hefei-office"))
        assert office is not None
        await factories.weibo_account(session, office, uid="1902538057", app_secret="w" * 32)
    await publication_tasks.pull_publications(int(now.timestamp()))
    # Two pages of 20 (the platform's most): 25 articles in all.
    assert [call["offset"] for call in fake.batchget_calls] == [0, 20]
    rows = await _publications(committing_maker)
    assert len(rows) == 25
    assert {(p.platform_id, p.title) for p in rows} >= {("ART_1", "第1篇"), ("ART_25", "第25篇")}
    wechat = (await client.get("/api/v1/admin/accounts/hefei-wechat", headers=ADMIN)).json()
    assert (wechat["publications_known"], wechat["publications_error"]) == (True, None)
    weibo = (await client.get("/api/v1/admin/accounts/hefei-weibo", headers=ADMIN)).json()
    assert weibo["publications_known"] is False  # unknown is not zero
    assert "timeline" in weibo["publications_error"]
    # The platform refuses the account: its publications become unknown, with the word.
    fake.publish_refused = True
    await publication_tasks.pull_publications(int(now.timestamp()) + 86400)
    wechat = (await client.get("/api/v1/admin/accounts/hefei-wechat", headers=ADMIN)).json()
    assert (wechat["publications_known"], wechat["publications_error"]) == (
        False,
        "48001 api unauthorized",
    )


def _post(number: int, at: datetime, **more: object) -> dict[str, object]:
    return {
        "id": number,
        "idstr": str(number),
        "created_at": at.astimezone(CHINA).strftime("%a %b %d %H:%M:%S %z %Y"),
        "text": f"第{number}条  微博\n正文",
        **more,
    }


async def test_a_weibo_accounts_timeline_is_pulled_with_what_each_post_reposts(
    fake_weibo: FakeWeibo, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """statuses/user_timeline, 100 a page, after the newest post recorded: each post with its
    time, its text for a title, its address, and whether it is original or reposts which post
    (the 1-hour repost rule needs that). A refusal makes the account's publications unknown."""
    now = datetime.now(UTC).replace(microsecond=0)
    provincial = 4_900_000_000_000_001
    fake_weibo.statuses = [
        _post(5_000_000_000_000_000 + n, now - timedelta(hours=n)) for n in range(3, 130)
    ]
    fake_weibo.statuses += [
        _post(
            5_000_000_000_000_002,
            now - timedelta(hours=2),
            retweeted_status=_post(provincial, now - timedelta(hours=2, minutes=30)),
        ),
        _post(
            5_000_000_000_000_001,
            now - timedelta(hours=1),
            retweeted_status={"deleted": "1", "text": "抱歉，此微博已被作者删除。"},
        ),
    ]
    async with committing_maker.begin() as session:
        office, _, _ = await _city(session)
        account = await factories.weibo_account(
            session, office, uid="2489518277", app_secret="w" * 32
        )
        account.weibo_access_token = fake_weibo.token
    # Weibo hides one post of the first page: a short page, which is no end of the timeline.
    fake_weibo.hidden = {5_000_000_000_000_050}
    await publication_tasks.pull_publications(int(now.timestamp()))
    assert [(c.get("max_id"), c["since_id"], c["count"]) for c in fake_weibo.timeline_calls] == [
        (None, "0", "100"),
        ("5000000000000029", "0", "100"),  # below the oldest seen
        ("5000000000000000", "0", "100"),  # an empty page: the end
    ]
    assert all(c["uid"] == "2489518277" for c in fake_weibo.timeline_calls)
    rows = {p.platform_id: p for p in await _publications(committing_maker)}
    assert len(rows) == 128
    assert "5000000000000050" not in rows
    first = rows["5000000000000003"]
    assert (first.source, first.original, first.repost_of, first.item_index) == (
        "weibo_timeline",
        True,
        None,
        1,
    )
    assert (first.title, first.url) == (
        "第5000000000000003条 微博 正文",
        "https://m.weibo.cn/status/5000000000000003",
    )
    assert first.published_at == now - timedelta(hours=3)
    repost = rows["5000000000000002"]
    assert (repost.original, repost.repost_of) == (
        False,
        f"https://m.weibo.cn/status/{provincial}",
    )
    gone = rows["5000000000000001"]
    assert (gone.original, gone.repost_of) == (False, "")  # a repost; what of, Weibo no longer says
    async with make_client(committing_maker, clock) as client:
        shown = (await client.get("/api/v1/admin/accounts/hefei-weibo", headers=ADMIN)).json()
        assert (shown["publications_known"], shown["publications_error"]) == (True, None)
        # The next pull reads after the newest recorded, and records what is new.
        fake_weibo.timeline_calls.clear()
        fake_weibo.statuses.append(_post(5_000_000_000_000_500, now + timedelta(minutes=5)))
        await publication_tasks.pull_publications(int(now.timestamp()) + 86400)
        assert [c["since_id"] for c in fake_weibo.timeline_calls] == ["5000000000000129"] * 2
        assert len(await _publications(committing_maker)) == 129
        # Weibo refuses the timeline (the app lacks the permission): unknown, with Weibo's word.
        fake_weibo.timeline_refusal = (403, 10014)
        await publication_tasks.pull_publications(int(now.timestamp()) + 2 * 86400)
        shown = (await client.get("/api/v1/admin/accounts/hefei-weibo", headers=ADMIN)).json()
        assert shown["publications_known"] is False
        assert shown["publications_error"].startswith("10014 ")


async def test_mass_sent_articles_get_their_comment_ids_even_after_a_missed_pull(
    fake: FakeWeChat, city: City, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """MASSSENDJOBFINISH gives URLs, no titles: the data API's items of that day go onto the
    mass send's items by number, never recorded a second time. The data API is read for every
    day since the last pull that worked, so a missed run loses no comment ids."""
    client, _, _ = city
    peer = WeChat(WEBHOOK, clock)
    assert (await peer.post(client, _event("MASSSENDJOBFINISH", MASS_SENT, clock.now))).is_success
    async with committing_maker() as session:
        [event_id] = await session.scalars(
            select(InboxEvent.id).where(InboxEvent.event_type == "MASSSENDJOBFINISH")
        )
    await publication_tasks.record_publication(event_id)
    now = datetime.now(UTC)
    sent = now - timedelta(days=3)  # the mass send went three days ago
    async with committing_maker.begin() as session:
        for row in await session.scalars(select(Publication)):
            row.published_at = sent
        account = (await session.scalars(select(Account))).one()
        # The last pull that worked was four days ago: the daily runs since were missed.
        account.publications_checked_at = now - timedelta(days=4)
    day = sent.astimezone(CHINA).strftime("%Y-%m-%d")
    fake.summaries = [
        {"ref_date": day, "msgid": "2247480001_1", "title": "社保补缴指南"},
        {"ref_date": day, "msgid": "2247480001_2", "title": "医保报销指南"},
    ]
    await publication_tasks.pull_publications(int(now.timestamp()))
    rows = await _publications(committing_maker)
    assert [(p.source, p.item_index, p.msg_data_id, p.title) for p in rows] == [
        ("masssend_event", 1, "2247480001", "社保补缴指南"),
        ("masssend_event", 2, "2247480001", "医保报销指南"),
    ]
