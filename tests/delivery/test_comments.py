"""Comments on the accounts' articles (issue 16), against the fake WeChat over real HTTP: the
publication pull learns the articles and their comment ids, the poll reads comments page by
page (fewer than 50 a call, a cursor per article) into inquiries of their own, and the approved
public reply goes back once (88005: already replied, recorded as delivered)."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.comments import tasks as comment_tasks
from app.comments.models import Comment
from app.deadlines.calendar import CHINA
from app.delivery import tasks
from app.delivery.models import Delivery, DeliveryStatus
from app.departments.models import Department
from app.inquiries.models import Channel, EventAction, Inquiry, InquiryEvent
from app.publications import tasks as publication_tasks
from app.publications.models import Publication
from app.replies.models import Reply
from app.routing import service as routing
from app.settings import settings
from tests import factories
from tests.conftest import ADMIN_TOKEN, Clock, make_client
from tests.delivery.conftest import OPENID
from tests.delivery.test_outbox import WEBHOOK
from tests.fakes.wechat_api import FakeWeChat, serve
from tests.fakes.weibo_api import FakeWeibo
from tests.inquiries.test_work import _city, auth
from tests.inquiries.test_workbench import _people
from tests.webhooks.peers import WeChat, message_xml

pytestmark = pytest.mark.committing
P = "/api/v1/inquiries"
City = tuple[httpx.AsyncClient, dict[str, str], str]
MSG_DATA_ID = "2247483647"


@pytest.fixture(autouse=True)
def _here(
    committing_maker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(publication_tasks, "sessionmaker", lambda: committing_maker)
    monkeypatch.setattr(comment_tasks, "sessionmaker", lambda: committing_maker)


def _comment(number: int, at: datetime) -> dict[str, object]:
    return {
        "user_comment_id": number,
        "openid": f"o_reader_{number}",
        "create_time": int(at.timestamp()),
        "content": f"第{number}条留言：社保断缴了怎么补缴？",
        "comment_type": 0,
    }


async def _count(maker: async_sessionmaker[AsyncSession]) -> int:
    async with maker() as session:
        found = await session.scalar(
            select(func.count()).select_from(Inquiry).where(Inquiry.channel == Channel.comment)
        )
        return int(found or 0)


async def test_comments_are_polled_page_by_page_and_answered_once(
    fake: FakeWeChat, city: City, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    client, _, private_reference = city
    now = datetime.now(UTC)
    enabled = await client.patch(
        "/api/v1/admin/accounts/hefei-wechat",
        json={"comments_enabled": True},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert enabled.status_code == 200, enabled.text
    # The article, from the pull; its comment id (msg_data_id) from the data API, by its title.
    fake.published = [
        {
            "article_id": "ART_1",
            "update_time": int(now.timestamp()),
            "content": {"news_item": [{"title": "社保补缴指南", "url": "https://mp/s/1"}]},
        }
    ]
    fake.summaries = [
        {
            "ref_date": now.astimezone(CHINA).strftime("%Y-%m-%d"),
            "msgid": f"{MSG_DATA_ID}_1",
            "title": "社保补缴指南",
        }
    ]
    # The data API reports yesterday's sends: the pull the day after learns the id; pulled
    # again, nothing is recorded twice.
    await publication_tasks.pull_publications(int((now + timedelta(days=1)).timestamp()))
    await publication_tasks.pull_publications(int((now + timedelta(days=1)).timestamp()))
    async with committing_maker() as session:
        article = (await session.scalars(select(Publication))).one()
    assert (article.platform_id, article.msg_data_id) == ("ART_1", MSG_DATA_ID)
    # 60 comments: two calls of at most 49.
    fake.comments[(MSG_DATA_ID, 0)] = [_comment(n, now) for n in range(1, 61)]
    # One reader is also the citizen of the private inquiry: their comment is linked to none.
    fake.comments[(MSG_DATA_ID, 0)][59]["openid"] = OPENID
    await comment_tasks.poll_comments(int(now.timestamp()))
    assert [(c["begin"], c["count"], c["index"]) for c in fake.comment_calls] == [
        (0, 49, 0),
        (49, 49, 0),
    ]
    assert await _count(committing_maker) == 60
    # The next poll starts at the cursor, a few back (a deleted comment shifts the later ones):
    # only what is new becomes an inquiry, never twice.
    fake.comments[(MSG_DATA_ID, 0)].append(_comment(61, now + timedelta(minutes=5)))
    await comment_tasks.poll_comments(int(now.timestamp()) + 600)
    assert fake.comment_calls[-1]["begin"] == 60 - 5
    assert await _count(committing_maker) == 61
    async with committing_maker() as session:
        inquiries = list(
            await session.scalars(
                select(Inquiry).where(Inquiry.channel == Channel.comment).order_by(Inquiry.id)
            )
        )
        assert len({i.reference for i in inquiries}) == 61  # never threaded
        [theirs] = [i for i in inquiries if i.citizen_id == OPENID]
        assert (theirs.previous_inquiry_id, theirs.possible_repeat) == (None, False)
        assert all(not i.accepts_messages for i in inquiries)
        first, second = inquiries[0], inquiries[1]
        hrss = await session.scalar(select(Department).where(Department.code == "hefei-hrss"))
        assert hrss is not None
    async with committing_maker.begin() as session:
        for inquiry in (first, second):
            assert await routing.route(
                session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[]
            )
        _, _, keys = await _people(session, hrss)

    async def answered(inquiry: Inquiry, text: str) -> Delivery:
        """A public reply: a responder writes, a reviewer approves, the job sends."""
        submitted = await client.post(
            f"{P}/{inquiry.reference}/replies",
            json={"purpose": "answer", "text": text},
            headers=auth(keys["responder"]),
        )
        assert submitted.status_code == 201, submitted.text
        assert submitted.json()["status"] == "awaiting_approval"
        approved = await client.post(
            f"{P}/{inquiry.reference}/replies/{submitted.json()['id']}/review",
            json={"approve": True, "note": "同意"},
            headers=auth(keys["reviewer"]),
        )
        assert approved.status_code == 200, approved.text
        async with committing_maker() as session:
            row = await session.scalar(select(Delivery).where(Delivery.inquiry_id == inquiry.id))
        assert row is not None
        await tasks.deliver(row.id)
        async with committing_maker() as session:
            return await session.get_one(Delivery, row.id)

    # A comment takes one reply: no interim one; and a comment never merges with a private
    # message, whose answer must never be posted publicly.
    interim = await client.post(
        f"{P}/{first.reference}/replies",
        json={"purpose": "interim", "text": "您好，您反映的问题正在核实。"},
        headers=auth(keys["responder"]),
    )
    assert interim.status_code == 409
    assert interim.json()["type"] == "/problems/one-reply-per-comment"
    merged = await client.post(
        f"{P}/{first.reference}/merge",
        json={"into": private_reference, "reason": "同一事项"},
        headers=auth(keys["responder"]),
    )
    assert merged.status_code == 409, merged.text
    assert merged.json()["type"] == "/problems/merge-refused"
    sent = await answered(first, "您好，补缴请到市民中心3号窗口办理，咨询电话12333。")
    assert (sent.status, sent.error_code) == (DeliveryStatus.delivered, None)
    assert fake.comment_replies == {
        (MSG_DATA_ID, 0, "1"): "您好，补缴请到市民中心3号窗口办理，咨询电话12333。"
    }  # through comment/reply/add, and never with a query code: a public reply
    # The back office answered the second comment already: one reply per comment.
    fake.comment_replies[(MSG_DATA_ID, 0, "2")] = "已在后台回复"
    again = await answered(second, "您好，请咨询12333。")
    assert (again.status, again.error_code) == (DeliveryStatus.delivered, "88005")
    assert fake.comment_replies[(MSG_DATA_ID, 0, "2")] == "已在后台回复"
    async with committing_maker() as session:
        assert await session.scalar(select(func.count()).select_from(Comment)) == 61
    # Life-and-safety words on a comment flag it urgent (its short due applies) but post no
    # automatic advice: the comment's one reply is kept for the department's answer.
    third = inquiries[2]
    async with committing_maker.begin() as session:
        assert await routing.route(
            session, inquiry_id=third.id, now=third.received_at, keywords=["断缴"]
        )
    async with committing_maker() as session:
        flagged = await session.get_one(Inquiry, third.id)
        assert flagged.urgent
        replies = await session.scalar(
            select(func.count()).select_from(Reply).where(Reply.inquiry_id == third.id)
        )
        assert replies == 0
    answer = "您好，如遇紧急情况请拨打110；补缴请到市民中心3号窗口办理。"
    urgent = await answered(third, answer)
    assert (urgent.status, urgent.error_code) == (DeliveryStatus.delivered, None)
    assert fake.comment_replies[(MSG_DATA_ID, 0, "3")] == answer
    # A commenter who unfollowed the account still gets the public reply: it needs no follower.
    fourth = inquiries[3]
    async with committing_maker.begin() as session:
        assert await routing.route(
            session, inquiry_id=fourth.id, now=fourth.received_at, keywords=[]
        )
    clock.now = max(clock.now, datetime.now(UTC)) + timedelta(seconds=1)
    unfollow = message_xml(
        "event", sender="o_reader_4", create_time=int(clock.now.timestamp()), Event="unsubscribe"
    )
    assert (await WeChat(WEBHOOK, clock).post(client, unfollow)).status_code == 200
    await tasks.citizen_unfollowed(fourth.account_id, "o_reader_4")
    public = await answered(fourth, "您好，补缴请到市民中心3号窗口办理。")
    assert (public.status, public.error_code) == (DeliveryStatus.delivered, None)
    async with committing_maker() as session:
        told = await session.scalar(
            select(func.count())
            .select_from(InquiryEvent)
            .where(
                InquiryEvent.inquiry_id == fourth.id,
                InquiryEvent.action == EventAction.citizen_unfollowed,
            )
        )
    assert told == 0  # nothing was cut off
    # Out of scope, a comment's one reply is its referral: the directory's verified text, posted
    # at once; a note of the department's would go public unreviewed, so it is refused.
    fifth = inquiries[4]
    async with committing_maker.begin() as session:
        assert await routing.route(session, inquiry_id=fifth.id, now=fifth.received_at, keywords=[])
        await factories.court(session)
    noted = await client.post(
        f"{P}/{fifth.reference}/refer",
        json={"entry_code": "hefei-court", "note": "经办人张三，手机13912345678"},
        headers=auth(keys["responder"]),
    )
    assert noted.status_code == 409, noted.text
    assert noted.json()["type"] == "/problems/public-referral-note"
    referred = await client.post(
        f"{P}/{fifth.reference}/refer",
        json={"entry_code": "hefei-court"},
        headers=auth(keys["responder"]),
    )
    assert referred.status_code == 200, referred.text
    async with committing_maker() as session:
        row = await session.scalar(select(Delivery).where(Delivery.inquiry_id == fifth.id))
    assert row is not None
    await tasks.deliver(row.id)
    async with committing_maker() as session:
        posted = await session.get_one(Delivery, row.id)
    assert posted.status is DeliveryStatus.delivered
    assert "0551-12368" in fake.comment_replies[(MSG_DATA_ID, 0, "5")]


def _weibo_comment(number: int, post: int, at: datetime) -> dict[str, object]:
    """A comment as Weibo's comments API shapes it."""
    return {
        "id": 5000 + number,
        "idstr": str(5000 + number),
        "created_at": at.astimezone(CHINA).strftime("%a %b %d %H:%M:%S %z %Y"),
        "text": f"第{number}条评论：社保断缴了怎么补缴？",
        "user": {"id": 3000 + number, "idstr": str(3000 + number)},
        "status": {"id": post, "idstr": str(post)},
    }


async def test_weibo_comments_and_mentions_are_read_into_inquiries_and_answered_publicly(
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tasks, "sessionmaker", lambda: committing_maker)
    now = datetime.now(UTC)
    with serve(FakeWeibo()) as fake_weibo:
        monkeypatch.setattr(settings(), "weibo_api_base", fake_weibo.url)
        async with committing_maker.begin() as session:
            office, hrss, _ = await _city(session)
            account = await factories.weibo_account(
                session, office, uid="2489518277", app_secret="w" * 32
            )
            account.weibo_access_token = fake_weibo.token
            account.comments_enabled = True
            _, _, keys = await _people(session, hrss)
        # 60 comments on the account's posts (two pages of 50) and 2 that @mention it.
        fake_weibo.feeds["to_me"] = [_weibo_comment(n, 4800000001, now) for n in range(1, 61)]
        fake_weibo.feeds["mentions"] = [_weibo_comment(n, 4800000002, now) for n in (61, 62)]
        # Weibo hides one comment of the first page: a short page, which is no end.
        fake_weibo.hidden = {5030}
        await comment_tasks.poll_comments(int(now.timestamp()))
        assert await _count(committing_maker) == 61
        # Each page below the oldest of the one before (max_id), until an empty one.
        assert [
            call[1].get("max_id") for call in fake_weibo.comment_calls if call[0] == "to_me"
        ] == [None, "5010", "5000"]
        # Read again from each feed's since_id: nothing twice; a new one only.
        fake_weibo.feeds["to_me"].append(_weibo_comment(63, 4800000001, now))
        await comment_tasks.poll_comments(int(now.timestamp()) + 600)
        assert fake_weibo.comment_calls[-2][1]["since_id"] == "5060"
        assert await _count(committing_maker) == 62
        async with committing_maker.begin() as session:
            first = await session.scalar(
                select(Inquiry)
                .where(Inquiry.channel == Channel.comment)
                .order_by(Inquiry.id)
                .limit(1)
            )
            assert first is not None
            assert await routing.route(
                session, inquiry_id=first.id, now=first.received_at, keywords=[]
            )
        async with make_client(committing_maker, clock) as client:
            submitted = await client.post(
                f"{P}/{first.reference}/replies",
                json={"purpose": "answer", "text": "您好，补缴请咨询12333。"},
                headers=auth(keys["responder"]),
            )
            assert submitted.status_code == 201, submitted.text
            approved = await client.post(
                f"{P}/{first.reference}/replies/{submitted.json()['id']}/review",
                json={"approve": True, "note": "同意"},
                headers=auth(keys["reviewer"]),
            )
            assert approved.status_code == 200, approved.text
        async with committing_maker() as session:
            row = await session.scalar(select(Delivery).where(Delivery.inquiry_id == first.id))
        assert row is not None
        # A server error may have posted it: uncertain, never tried again by itself.
        fake_weibo.comment_script = [(503, 10001)]
        await tasks.deliver(row.id)
        await tasks.deliver(row.id)
        async with committing_maker() as session:
            unsure = await session.get_one(Delivery, row.id)
        assert (unsure.status, unsure.error_code) == (DeliveryStatus.uncertain, "10001")
        assert fake_weibo.comment_replies == []
        # The department looked under the post, found nothing, and sends it again.
        async with make_client(committing_maker, clock) as client:
            resent = await client.post(
                f"{P}/{first.reference}/deliveries/{row.id}/resend",
                headers=auth(keys["responder"]),
            )
            assert resent.status_code == 200, resent.text
        await tasks.deliver(row.id)
        async with committing_maker() as session:
            sent = await session.get_one(Delivery, row.id)
        assert sent.status is DeliveryStatus.delivered
        [reply] = fake_weibo.comment_replies
        # The comment the inquiry came from, under its post; a public reply: no query code.
        assert (reply["id"], reply["comment"]) == ("4800000001", "您好，补缴请咨询12333。")
        assert reply["cid"] in {str(5000 + n) for n in range(1, 61)}
