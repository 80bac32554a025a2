"""What citizens ask the service directly (issue 16), over the real webhook and a fake platform:
status queries, ratings on two axes with a reminder and call-backs (回访), a message after the
answer and after the close, and an unfollow."""

import asyncio
import json
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from wechatpy import parse_message

from app.deadlines.calendar import CHINA
from app.delivery import tasks
from app.delivery.models import Delivery, DeliveryStatus
from app.departments.models import Department
from app.inquiries.models import Inquiry, InquiryEvent, InquiryMessage
from app.push import service as push
from app.ratings import service as ratings
from app.ratings import tasks as rating_tasks
from app.ratings.models import Callback, Rating
from app.replies.models import Reply, ReplyPurpose
from app.routing import service as routing
from tests import factories
from tests.conftest import Clock, make_client
from tests.delivery.conftest import OPENID
from tests.delivery.test_outbox import (
    ANSWER,
    TEMPLATE,
    WEBHOOK,
    _account_sends,
    _answer,
    _close_window,
    _decision_xml,
    _deliveries,
    _weibo_fan_wrote,
)
from tests.fakes.wechat_api import FakeWeChat
from tests.fakes.weibo_api import FakeWeibo
from tests.inquiries.test_work import auth, feed
from tests.webhooks.peers import WeChat, Weibo, message_xml, text_xml, weibo_text

pytestmark = pytest.mark.committing
P = "/api/v1/inquiries"
City = tuple[httpx.AsyncClient, dict[str, str], str]


@pytest.fixture(autouse=True)
def _jobs_here(
    committing_maker: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rating_tasks, "sessionmaker", lambda: committing_maker)


async def _says(client: httpx.AsyncClient, clock: Clock, text: str, sender: str = OPENID) -> str:
    """The citizen sends `text` through the webhook; the passive reply's text, or ''."""
    peer = WeChat(WEBHOOK, clock)
    # Later than the jobs that ran meanwhile in real time (a prompt's time is the job's).
    clock.now = max(clock.now + timedelta(seconds=1), datetime.now(UTC))
    response = await peer.post(
        client, text_xml(text, sender=sender, create_time=int(clock.now.timestamp()))
    )
    assert response.status_code == 200, response.text
    if response.content == b"success":
        return ""
    return str(parse_message(peer.read_reply(response.content)).content)


async def _count(maker: async_sessionmaker[AsyncSession], model: type) -> int:
    async with maker() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


async def _deliver_all(maker: async_sessionmaker[AsyncSession]) -> None:
    for row in await _deliveries(maker, prompts=True):
        if row.status is DeliveryStatus.queued:
            await tasks.deliver(row.id)


async def _an_answer_waits_for_the_window(
    city: City, maker: async_sessionmaker[AsyncSession]
) -> None:
    """The citizen's window has closed: the answer is `awaiting_window`."""
    client, key, reference = city
    await _close_window(maker, OPENID)
    await _answer(client, key, reference)
    await _deliver_all(maker)
    [waiting] = await _deliveries(maker)
    assert waiting.status is DeliveryStatus.awaiting_window


async def test_a_status_query_answers_its_own_citizen_at_once_and_nobody_else(
    fake: FakeWeChat, city: City, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    client, _, reference = city
    async with committing_maker() as session:
        inquiry = (await session.scalars(select(Inquiry))).one()
    assert inquiry.reply_due_at is not None
    answer = await _says(client, clock, f"查询 {reference}")
    assert reference in answer
    assert "正在办理中" in answer
    due = inquiry.reply_due_at.astimezone(UTC) + timedelta(hours=8)  # Beijing
    assert f"将于{due.year}年{due.month}月{due.day}日前答复" in answer
    assert await _says(client, clock, f"查询：{reference.lower()}") == answer  # forgiving
    # Another citizen's reference says no more than one that does not exist.
    other = await _says(client, clock, f"查询 {reference}", sender="o_other")
    unknown = await _says(client, clock, "查询 WX20991231-000001", sender="o_other")
    assert other == f"未找到编号为{reference}的留言，请核对编号后再试。"
    assert unknown == "未找到编号为WX20991231-000001的留言，请核对编号后再试。"
    # Answered, but never an inquiry or a message of one.
    assert await _count(committing_maker, Inquiry) == 1
    assert await _count(committing_maker, InquiryMessage) == 1


async def test_ratings_on_two_axes_and_a_bad_one_opens_a_callback(
    fake: FakeWeChat, city: City, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    client, key, reference = city
    await _answer(client, key, reference)
    await _deliver_all(committing_maker)  # the answer; once delivered, the prompt is queued
    await _deliver_all(committing_maker)  # the prompt
    answer_sent, prompt_sent = fake.sends
    assert "请对编号" in prompt_sent["text"]["content"]
    assert "查询码" not in prompt_sent["text"]["content"]  # the answer carried it already
    assert await _says(client, clock, "24") == f"感谢您对编号{reference}的答复作出评价！"
    async with committing_maker() as session:
        rating = (await session.scalars(select(Rating))).one()
    assert (rating.solved, rating.satisfaction) == (False, 4)
    assert await _count(committing_maker, InquiryMessage) == 1  # never joins the inquiry
    await rating_tasks.rating_received(rating.id)
    await rating_tasks.rating_received(rating.id)  # a retry opens nothing twice
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    assert [(r["solved"], r["satisfaction"]) for r in view["ratings"]] == [(False, 4)]
    [callback] = view["callbacks"]
    assert callback["status"] == "open"
    async with committing_maker() as session:
        actions = list(await session.scalars(select(InquiryEvent.action)))
    assert {"rated", "callback_opened"} <= set(actions)
    # The department's list of call-backs has it; another department's has nothing of it.
    listed = (await client.get("/api/v1/callbacks", headers=key)).json()
    assert [(c["id"], c["reference"], c["overdue"]) for c in listed] == [
        (callback["id"], reference, False)
    ]
    async with committing_maker.begin() as session:
        urban = await session.scalar(select(Department).where(Department.code == "hefei-urban"))
        assert urban is not None
        other = auth(await factories.api_key(session, urban))
    assert (await client.get("/api/v1/callbacks", headers=other)).json() == []
    # Due in 5 working days (CALLBACK_WORKING_DAYS): at least a week of calendar days away.
    due = datetime.fromisoformat(callback["due_at"])
    assert timedelta(days=5) <= due - datetime.now(UTC) <= timedelta(days=12)
    # Past its due with no outcome, the department is told once: its feed, and push (which
    # notifies the kinds in NOTIFIED_KINDS; tests/push drives that path).
    assert "callback_overdue" in push.NOTIFIED_KINDS
    start = (await feed(client, f"{P}/changes", key, expect="callback_opened"))["next"]
    await rating_tasks.callbacks_overdue(int(due.timestamp()) - 60)  # not yet
    late = int(due.timestamp()) + 60
    await rating_tasks.callbacks_overdue(late)
    await rating_tasks.callbacks_overdue(late + 600)  # told once
    changes = await feed(client, f"{P}/changes?after={start}", key, expect="callback_overdue")
    assert [c["kind"] for c in changes["items"]] == ["callback_overdue"]
    async with committing_maker() as session:
        [overdue] = await session.scalars(
            select(InquiryEvent).where(InquiryEvent.action == "callback_overdue")
        )
    assert overdue.details["callback_id"] == callback["id"]
    assert overdue.actor == ratings.ACTOR
    # The prompt is used: more digits are an ordinary message now, a follow-up.
    assert await _says(client, clock, "11") == ""
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    assert view["follow_up_at"] is not None
    # The department called back and reached the citizen: they are asked again, and rate.
    done = await client.post(
        f"{P}/{reference}/callbacks/{callback['id']}",
        json={"reached": True, "outcome": "已电话回访，市民表示已补缴成功。"},
        headers=key,
    )
    assert done.status_code == 200, done.text
    assert done.json()["status"] == "done"
    again = await client.post(
        f"{P}/{reference}/callbacks/{callback['id']}",
        json={"reached": True, "outcome": "重复记录"},
        headers=key,
    )
    assert again.status_code == 409
    # The new prompt counts from its delivery, stamped by the job in real time: the test's clock
    # ran ahead of it (a second per message), so real time catches up first.
    await asyncio.sleep(max(0.0, (clock.now - datetime.now(UTC)).total_seconds()))
    await _deliver_all(committing_maker)
    assert "请对编号" in fake.sends[-1]["text"]["content"]
    assert await _says(client, clock, "11") == f"感谢您对编号{reference}的答复作出评价！"
    async with committing_maker() as session:
        latest = (await session.scalars(select(Rating).order_by(Rating.id.desc()))).first()
    assert latest is not None
    assert (latest.solved, latest.satisfaction) == (True, 1)
    await rating_tasks.rating_received(latest.id)
    assert await _count(committing_maker, Callback) == 1  # a good rating opens none
    assert answer_sent["touser"] == OPENID


async def test_a_single_digit_the_window_and_the_one_reminder(
    fake: FakeWeChat, city: City, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    client, key, reference = city
    await _answer(client, key, reference)
    await _deliver_all(committing_maker)  # the answer
    await _deliver_all(committing_maker)  # the prompt

    async def prompted(days_ago: float) -> None:
        async with committing_maker.begin() as session:
            inquiry = (await session.scalars(select(Inquiry))).one()
            inquiry.rating_prompted_at = datetime.now(UTC) - timedelta(days=days_ago)

    async def remind() -> int:
        async with committing_maker.begin() as session:
            return await ratings.remind(session, now=datetime.now(UTC))

    # Outside the window (RATING_WINDOW_DAYS, 7): digits are an ordinary message.
    await prompted(8)
    assert await _says(client, clock, "2") == ""
    assert await _count(committing_maker, Rating) == 0
    assert await _count(committing_maker, InquiryMessage) == 2
    # Three days without a rating: one reminder, never a second.
    await prompted(2)
    assert await remind() == 0
    await prompted(4)
    assert await remind() == 1
    assert await remind() == 0
    async with committing_maker() as session:
        prompts = list(
            await session.scalars(
                select(Reply.text).where(Reply.purpose == ReplyPurpose.rating_prompt)
            )
        )
    assert len(prompts) == 2
    assert "还未收到您的评价" in prompts[-1]
    await _deliver_all(committing_maker)  # the reminder reaches the citizen
    assert "还未收到您的评价" in fake.sends[-1]["text"]["content"]
    # A single digit is satisfaction alone.
    assert (
        await _says(client, clock, "３") == f"感谢您对编号{reference}的答复作出评价！"
    )  # full-width
    async with committing_maker() as session:
        rating = (await session.scalars(select(Rating))).one()
    assert (rating.solved, rating.satisfaction) == (None, 3)


async def test_after_the_close_a_new_message_is_a_new_inquiry_and_a_possible_repeat(
    fake: FakeWeChat, city: City, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    client, key, reference = city
    await _answer(client, key, reference)
    await _deliver_all(committing_maker)
    # The answer took longer than the conversation window (CONVERSATION_WINDOW_DAYS, 7).
    async with committing_maker.begin() as session:
        inquiry = (await session.scalars(select(Inquiry))).one()
        inquiry.last_message_at = datetime.now(UTC) - timedelta(days=10)
    # While `replied`, a message joins as a follow-up, flagged.
    assert await _says(client, clock, "谢谢，另外断缴期间的医保怎么办？") == ""
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    assert view["follow_up_at"] is not None
    assert view["possible_repeat"] is False
    closed = await client.post(f"{P}/{reference}/close", json={"reason": "已办结"}, headers=key)
    assert closed.status_code == 200, closed.text
    assert await _says(client, clock, "按你们说的去补缴社保，窗口说办不了") == ""
    async with committing_maker() as session:
        newer = (await session.scalars(select(Inquiry).order_by(Inquiry.id.desc()))).first()
    assert newer is not None
    assert newer.reference != reference
    assert newer.possible_repeat is True
    assert newer.previous_inquiry_id == inquiry.id
    async with committing_maker.begin() as session:
        assert await routing.route(session, inquiry_id=newer.id, now=newer.received_at, keywords=[])
    view = (await client.get(f"{P}/{newer.reference}", headers=key)).json()
    assert (view.get("possible_repeat"), view.get("previous_reference")) == (True, reference), view
    async with committing_maker() as session:
        events = list(await session.scalars(select(InquiryEvent.action)))
    assert "followed_up" in events


async def test_an_unfollow_fails_what_waits_visibly_and_nothing_more_is_sent(
    fake: FakeWeChat, city: City, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    client, key, reference = city
    await _an_answer_waits_for_the_window(city, committing_maker)
    clock.now += timedelta(seconds=1)
    unfollow = message_xml(
        "event", sender=OPENID, create_time=int(clock.now.timestamp()), Event="unsubscribe"
    )
    assert (await WeChat(WEBHOOK, clock).post(client, unfollow)).status_code == 200
    async with committing_maker() as session:
        account_id = (await session.scalars(select(Inquiry.account_id))).one()
    await tasks.citizen_unfollowed(account_id, OPENID)
    [failed] = await _deliveries(committing_maker)
    assert (failed.status, failed.error_code) == (DeliveryStatus.failed, "unfollowed")
    async with committing_maker() as session:
        actions = list(await session.scalars(select(InquiryEvent.action)))
    assert {"delivery_failed", "citizen_unfollowed"} <= set(actions)  # the department is told
    # A resend is not tried on the platform: the citizen cannot be reached there.
    again = await client.post(f"{P}/{reference}/deliveries/{failed.id}/resend", headers=key)
    assert again.status_code == 200, again.text
    await tasks.deliver(failed.id)
    async with committing_maker() as session:
        row = await session.get_one(Delivery, failed.id)
    assert (row.status, row.error_code) == (DeliveryStatus.failed, "unfollowed")
    assert fake.requests == 0


async def test_a_status_query_reopens_the_window_and_what_waited_goes_out(
    fake: FakeWeChat, city: City, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """ "查询" joins no inquiry, yet it is a message: the window opens again."""
    client, _key, reference = city
    await _an_answer_waits_for_the_window(city, committing_maker)
    assert "已答复" in await _says(client, clock, f"查询 {reference}")
    async with committing_maker() as session:
        account_id = (await session.scalars(select(Inquiry.account_id))).one()
    await tasks.citizen_wrote(account_id, OPENID)  # the job intake queued with the message
    await _deliver_all(committing_maker)
    assert [s["touser"] for s in fake.sends] == [OPENID]
    answered, _prompt = await _deliveries(committing_maker, prompts=True)
    assert answered.status is DeliveryStatus.delivered


async def test_a_prompt_counts_once_and_digits_may_be_spaced(
    fake: FakeWeChat, city: City, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """A digit after the rating is a message: a prompt is answered once (intake looks at the
    citizen's latest prompt only, never an older inquiry's)."""
    client, key, reference = city
    await _answer(client, key, reference)
    await _deliver_all(committing_maker)
    await _deliver_all(committing_maker)
    assert await _says(client, clock, "1 2") == f"感谢您对编号{reference}的答复作出评价！"
    assert await _says(client, clock, "5") == ""  # a message, not a second rating
    async with committing_maker() as session:
        rating = (await session.scalars(select(Rating))).one()
    assert (rating.solved, rating.satisfaction) == (True, 2)


async def test_long_after_the_answer_a_message_opens_a_new_inquiry(
    fake: FakeWeChat, city: City, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """The conversation window counts from the answer: an inquiry left `replied` does not take
    in what the citizen writes months later."""
    client, key, reference = city
    await _answer(client, key, reference)
    await _deliver_all(committing_maker)
    long_ago = datetime.now(UTC) - timedelta(days=30)
    async with committing_maker.begin() as session:
        inquiry = (await session.scalars(select(Inquiry))).one()
        inquiry.last_message_at = long_ago
        for reply in await session.scalars(select(Reply)):
            reply.created_at = long_ago
    assert await _says(client, clock, "另外想问一下公积金提取的事") == ""
    async with committing_maker() as session:
        inquiries = list(await session.scalars(select(Inquiry).order_by(Inquiry.id)))
    assert len(inquiries) == 2
    assert inquiries[0].follow_up_at is None
    assert inquiries[1].possible_repeat is False  # the first was answered, never closed


async def test_digits_count_from_when_the_prompt_reaches_the_citizen(
    fake: FakeWeChat, city: City, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """The answer reached the citizen by a notification, with their window closed: the prompt
    waits for their next message. Digits before it reached them are an ordinary message (they
    saw no prompt), and the rating window counts from its delivery, however long it waited."""
    client, key, reference = city
    await _account_sends(client, verified=True, subscribe_template_id=TEMPLATE)
    popup = _decision_xml(
        "subscribe_msg_popup_event", [(TEMPLATE, "accept")], int(clock.now.timestamp())
    )
    assert (await WeChat(WEBHOOK, clock).post(client, popup)).status_code == 200
    await _close_window(committing_maker, OPENID)
    await _answer(client, key, reference)
    await _deliver_all(committing_maker)  # the answer waits
    await _deliver_all(committing_maker)  # the notification goes
    await _deliver_all(committing_maker)  # the prompt, queued once the notification went
    waiting = [d.status for d in await _deliveries(committing_maker, prompts=True)]
    assert waiting.count(DeliveryStatus.awaiting_window) == 2  # the answer and the prompt
    assert [endpoint for endpoint, _ in fake.notifications] == ["bizsend"]
    async with committing_maker.begin() as session:
        inquiry = (await session.scalars(select(Inquiry))).one()
        assert inquiry.rating_prompted_at is None  # nothing the citizen could answer yet
        # The prompt was queued eight days ago: past RATING_WINDOW_DAYS, had it counted.
        await session.execute(
            update(Reply)
            .where(Reply.purpose == ReplyPurpose.rating_prompt)
            .values(created_at=Reply.created_at - timedelta(days=8))
        )
    assert await _says(client, clock, "3") == ""  # a message: it opens the window
    await tasks.citizen_wrote(inquiry.account_id, OPENID)
    await _deliver_all(committing_maker)
    answer_sent, prompt_sent = fake.sends  # what waited, in order
    assert answer_sent["text"]["content"].startswith(ANSWER)
    assert "请对编号" in prompt_sent["text"]["content"]
    assert await _says(client, clock, "12") == f"感谢您对编号{reference}的答复作出评价！"
    async with committing_maker() as session:
        rating = (await session.scalars(select(Rating))).one()
    assert (rating.solved, rating.satisfaction) == (True, 2)


@pytest.mark.parametrize(
    ("digits", "solved", "satisfaction", "bad"),
    [
        ("14", True, 4, True),  # solved, yet 不满意
        ("21", False, 1, True),  # 未解决, however satisfied
        ("5", None, 5, True),  # satisfaction alone: 非常不满意
        ("13", True, 3, False),  # 已解决, 基本满意
    ],
)
async def test_which_ratings_open_a_call_back_and_one_not_reached(
    fake: FakeWeChat,
    city: City,
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
    digits: str,
    solved: bool | None,
    satisfaction: int,
    bad: bool,
) -> None:
    """A bad rating is 4 or 5, or 未解决, whatever the other axis says. A call-back that did
    not reach the citizen is recorded too, and asks for no new rating."""
    client, key, reference = city
    await _answer(client, key, reference)
    await _deliver_all(committing_maker)  # the answer
    await _deliver_all(committing_maker)  # the prompt
    assert await _says(client, clock, digits) == f"感谢您对编号{reference}的答复作出评价！"
    async with committing_maker() as session:
        rating = (await session.scalars(select(Rating))).one()
    assert (rating.solved, rating.satisfaction) == (solved, satisfaction)
    await rating_tasks.rating_received(rating.id)
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    assert len(view["callbacks"]) == (1 if bad else 0)
    if not bad:
        return
    [callback] = view["callbacks"]
    sent = len(fake.sends)
    done = await client.post(
        f"{P}/{reference}/callbacks/{callback['id']}",
        json={"reached": False, "outcome": "三次致电均未接通，已短信告知。"},
        headers=key,
    )
    assert done.status_code == 200, done.text
    await _deliver_all(committing_maker)
    assert len(fake.sends) == sent  # nobody to ask again
    listed = (await client.get("/api/v1/callbacks?status=done", headers=key)).json()
    assert [(c["id"], c["status"]) for c in listed] == [(callback["id"], "done")]
    assert (await client.get("/api/v1/callbacks", headers=key)).json() == []  # open: none


async def test_a_weibo_fan_asks_for_status_and_gets_the_passive_reply(
    fake_weibo: FakeWeibo, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    """The same command on Weibo: the status comes back in the push's answer (URL-encoded JSON
    text), at once; a fan who is not the inquiry's citizen learns nothing."""
    clock.now = datetime.now(UTC).replace(microsecond=0)
    account, inquiry, _ = await _weibo_fan_wrote(committing_maker, fake_weibo, clock.now)
    peer = Weibo(f"/webhooks/weibo/{account.code}", clock, secret="w" * 32)

    async def asks(sender: str) -> str:
        clock.now += timedelta(seconds=1)
        created = clock.now.astimezone(CHINA).strftime("%a %b %d %H:%M:%S %z %Y")
        push = weibo_text(f"查询 {inquiry.reference}", sender=sender, created_at=created)
        async with make_client(committing_maker, clock) as client:
            answer = await peer.post(client, push | {"receiver_id": int(account.weibo_uid or 0)})
        assert answer.status_code == 200, answer.text
        return str(json.loads(unquote(answer.json()["data"]))["text"])

    own = await asks("1902538057")
    assert inquiry.reference in own
    assert "正在办理中" in own
    assert await asks("1111111111") == f"未找到编号为{inquiry.reference}的留言，请核对编号后再试。"
    assert await _count(committing_maker, Inquiry) == 1
