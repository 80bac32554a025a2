"""Replies reach the citizen (issue 15, first part): the outbox and WeChat's customer-service
API, over real HTTP against a fake platform on loopback (tests/fakes/wechat_api.py)."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts.models import Account, Follower
from app.answers import service as answers
from app.delivery import service, tasks
from app.delivery.models import Delivery, DeliveryStatus, PlatformToken, Via
from app.inquiries.models import Inquiry, InquiryEvent, InquiryMessage
from app.replies.models import Reply, ReplyPurpose
from app.routing import service as routing
from app.routing import tasks as routing_tasks
from app.settings import settings
from tests import factories
from tests.conftest import ADMIN_TOKEN, Clock, make_client
from tests.delivery.conftest import OPENID, arrive
from tests.fakes.wechat_api import FakeWeChat
from tests.fakes.weibo_api import FakeWeibo
from tests.inquiries.test_work import _city, auth
from tests.webhooks.peers import ORIGINAL_ID, WeChat, text_xml

pytestmark = pytest.mark.committing
P = "/api/v1/inquiries"
WEBHOOK = "/webhooks/wechat/hefei-wechat"
ANSWER = "您好，断缴3个月内可携带身份证到市民中心3号窗口补缴，咨询电话0551-12333。"


async def _answer(client: httpx.AsyncClient, key: dict[str, str], reference: str) -> int:
    posted = await client.post(
        f"{P}/{reference}/replies", json={"purpose": "answer", "text": ANSWER}, headers=key
    )
    assert posted.status_code == 201, posted.text
    return int(posted.json()["id"])


async def _deliveries(
    maker: async_sessionmaker[AsyncSession], *, prompts: bool = False
) -> list[Delivery]:
    """The deliveries, oldest first; without the rating prompts a delivered answer queues
    (tests/delivery/test_chat.py), unless `prompts`."""
    statement = select(Delivery).join(Reply, Reply.id == Delivery.reply_id).order_by(Delivery.id)
    if not prompts:
        statement = statement.where(Reply.purpose != ReplyPurpose.rating_prompt)
    async with maker() as session:
        return list(await session.scalars(statement))


async def test_an_answer_reaches_the_platform_once_and_the_token_is_shared(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    client, key, reference = city
    await _answer(client, key, reference)
    [queued] = await _deliveries(committing_maker)
    assert (queued.status, queued.citizen_id) == (DeliveryStatus.queued, OPENID)
    await tasks.deliver(queued.id)
    await tasks.deliver(queued.id)  # run twice (a retry): a known success is never sent again
    async with committing_maker() as session:
        code = (await session.scalars(select(Inquiry.query_code))).one()
    # The first text the citizen gets (no acknowledgement here) carries the answer page's code;
    # the reply as the department wrote and reads it does not.
    sent = ANSWER + answers.code_line(reference, code)
    assert fake.sends == [{"touser": OPENID, "msgtype": "text", "text": {"content": sent}}]
    assert "查询码" not in (await client.get(f"{P}/{reference}", headers=key)).text
    assert len(fake.tokens) == 1
    assert fake.tokens[0]["force_refresh"] is False
    [delivered] = await _deliveries(committing_maker)
    assert delivered.status is DeliveryStatus.delivered
    # Visible on the inquiry, and a change in the feed (an event).
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    assert view["replies"][0]["deliveries"] == [
        {
            "id": delivered.id,
            "via": "message",
            "status": "delivered",
            "error_code": None,
            "error": "",
        }
    ]
    async with committing_maker() as session:
        actions = list(await session.scalars(select(InquiryEvent.action)))
        assert "reply_delivered" in actions
        cached = await session.get_one(PlatformToken, delivered.account_id)
        assert cached.access_token == fake.token


async def test_an_expired_token_is_refreshed_once_and_the_send_retried(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    client, key, reference = city
    await _answer(client, key, reference)
    [row] = await _deliveries(committing_maker)
    async with committing_maker.begin() as session:  # a token cached by another worker
        session.add(
            PlatformToken(
                account_id=row.account_id,
                access_token="OLD",
                expires_at=datetime.now(UTC) + timedelta(hours=1),
            )
        )
    fake.token = "OLD"
    fake.expired.add("OLD")
    await tasks.deliver(row.id)
    assert [t["force_refresh"] for t in fake.tokens] == [True]
    assert fake.requests == 2
    assert len(fake.sends) == 1
    [done] = await _deliveries(committing_maker)
    assert done.status is DeliveryStatus.delivered


@pytest.mark.parametrize(
    ("code", "status"),
    [
        (45015, DeliveryStatus.awaiting_window),
        (45047, DeliveryStatus.awaiting_window),
        (43004, DeliveryStatus.failed),
        (40003, DeliveryStatus.failed),
    ],
)
async def test_what_the_platform_refuses_is_kept_and_visible(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
    code: int,
    status: DeliveryStatus,
) -> None:
    client, key, reference = city
    await _answer(client, key, reference)
    [row] = await _deliveries(committing_maker)
    fake.script = [code]
    await tasks.deliver(row.id)
    [settled] = await _deliveries(committing_maker)
    assert (settled.status, settled.error_code) == (status, str(code))
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    assert view["replies"][0]["deliveries"][0]["status"] == status.value
    # …and in the department's list, as a filter.
    listed = await client.get(f"{P}?status=replied&delivery={status.value}", headers=key)
    assert [i["reference"] for i in listed.json()["items"]] == [reference]
    other = "uncertain"
    unlisted = await client.get(f"{P}?status=replied&delivery={other}", headers=key)
    assert unlisted.json()["items"] == []
    await tasks.deliver(row.id)  # never sent again by a stray retry
    assert fake.requests == 1


async def test_a_busy_platform_is_tried_again_later(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    client, key, reference = city
    await _answer(client, key, reference)
    [row] = await _deliveries(committing_maker)
    fake.script = [-1]
    with pytest.raises(tasks.TryAgain):
        await tasks.deliver(row.id)
    [waiting] = await _deliveries(committing_maker)
    assert (waiting.status, waiting.error_code) == (DeliveryStatus.queued, "-1")
    await tasks.deliver(row.id)  # procrastinate's retry, after its backoff
    [done] = await _deliveries(committing_maker)
    assert done.status is DeliveryStatus.delivered


async def test_a_platform_still_busy_on_the_last_attempt_is_a_visible_failure(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    client, key, reference = city
    await _answer(client, key, reference)
    [row] = await _deliveries(committing_maker)
    fake.script = [45009]
    await tasks.deliver(row.id, last_attempt=True)
    [failed] = await _deliveries(committing_maker)
    assert (failed.status, failed.error_code) == (DeliveryStatus.failed, "45009")
    assert "quota" in failed.error


async def test_a_send_a_worker_left_in_flight_becomes_uncertain_and_is_never_resent(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    client, key, reference = city
    await _answer(client, key, reference)
    [row] = await _deliveries(committing_maker)
    async with committing_maker.begin() as session:  # claimed, then the worker died
        assert await service.claim(session, row.id, now=datetime.now(UTC) - timedelta(minutes=5))
    await tasks.deliver(row.id)  # the job run again: `sending` is left alone
    assert fake.requests == 0
    async with committing_maker.begin() as session:
        assert await service.recover(session, now=datetime.now(UTC)) == 1
    [uncertain] = await _deliveries(committing_maker)
    assert uncertain.status is DeliveryStatus.uncertain
    await tasks.deliver(row.id)
    assert fake.requests == 0
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    assert view["replies"][0]["deliveries"][0]["status"] == "uncertain"


def test_the_fake_is_honest_wechatpy_reads_its_errors(fake: FakeWeChat) -> None:
    """wechatpy's own client against the fake: it sends through the same endpoint and reads the
    errcodes the protocol brief lists, as it would from WeChat."""
    from wechatpy import WeChatClient
    from wechatpy.exceptions import WeChatClientException

    fake.token = "WECHATPY-TOKEN"  # wechatpy's own token fetch has a fixed URL: give it one
    client = WeChatClient("wx2c2769f8efd9abc2", "s" * 32, access_token=fake.token)
    client.API_BASE_URL = f"{fake.url}/cgi-bin/"
    client.message.send_text(OPENID, "你好")
    assert fake.sends[0]["text"] == {"content": "你好"}
    for code in (45015, 43004, 45047, -1):
        fake.script = [code]
        with pytest.raises(WeChatClientException) as refused:
            client.message.send_text(OPENID, "你好")
        assert refused.value.errcode == code


async def test_an_answer_goes_to_the_citizens_of_merged_repeats_too(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    client, key, reference = city
    async with committing_maker() as session:
        repeat = await arrive(session, "社保断缴了怎么补缴", "o_citizen_2", datetime.now(UTC))
        await session.commit()
    merged = await client.post(
        f"{P}/{repeat.reference}/merge",
        json={"into": reference, "reason": "同一事项"},
        headers=key,
    )
    assert merged.status_code == 200, merged.text
    await _answer(client, key, reference)
    rows = await _deliveries(committing_maker)
    assert [r.citizen_id for r in rows] == [OPENID, "o_citizen_2"]
    for row in rows:
        await tasks.deliver(row.id)
    assert sorted(send["touser"] for send in fake.sends) == sorted([OPENID, "o_citizen_2"])


async def test_a_referral_is_delivered_like_any_reply(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    client, key, reference = city
    async with committing_maker.begin() as session:
        await factories.court(session)
    referred = await client.post(
        f"{P}/{reference}/refer", json={"entry_code": "hefei-court"}, headers=key
    )
    assert referred.status_code == 200, referred.text
    [row] = await _deliveries(committing_maker)
    await tasks.deliver(row.id)
    assert "0551-12368" in fake.sends[0]["text"]["content"]


async def test_close_waits_for_the_answer_and_the_department_resends_or_confirms(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    client, key, reference = city
    await _answer(client, key, reference)
    [row] = await _deliveries(committing_maker)
    fake.script = [43004]  # unfollowed meanwhile
    await tasks.deliver(row.id)

    async def close() -> httpx.Response:
        return await client.post(f"{P}/{reference}/close", json={"reason": "已办结"}, headers=key)

    refused = await close()
    assert refused.status_code == 409
    assert "43004" in refused.json()["detail"]
    # The citizen followed again: the department sends it once more.
    again = await client.post(f"{P}/{reference}/deliveries/{row.id}/resend", headers=key)
    assert again.status_code == 200, again.text
    assert again.json()["status"] == "queued"
    await tasks.deliver(row.id)
    assert len(fake.sends) == 1
    twice = await client.post(f"{P}/{reference}/deliveries/{row.id}/resend", headers=key)
    assert twice.status_code == 409  # a known success is never sent again
    closed = await close()
    assert closed.status_code == 200, closed.text


async def test_an_uncertain_delivery_is_confirmed_by_the_department(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    client, key, reference = city
    await _answer(client, key, reference)
    [row] = await _deliveries(committing_maker)
    async with committing_maker.begin() as session:
        await service.claim(session, row.id, now=datetime.now(UTC) - timedelta(minutes=5))
    async with committing_maker.begin() as session:
        await service.recover(session, now=datetime.now(UTC))
    confirmed = await client.post(
        f"{P}/{reference}/deliveries/{row.id}/confirm",
        json={"reason": "市民来电确认已收到答复"},
        headers=key,
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["status"] == "delivered"
    assert fake.requests == 0
    closed = await client.post(f"{P}/{reference}/close", json={"reason": "已办结"}, headers=key)
    assert closed.status_code == 200, closed.text


async def _close_window(maker: async_sessionmaker[AsyncSession], citizen: str) -> None:
    """The citizen's last message was three days ago: the 48 h window has closed."""
    long_ago = datetime.now(UTC) - timedelta(days=3)
    async with maker.begin() as session:
        for inquiry in await session.scalars(select(Inquiry).where(Inquiry.citizen_id == citizen)):
            inquiry.last_message_at = long_ago
        await session.execute(
            update(Follower).where(Follower.citizen_id == citizen).values(last_message_at=long_ago)
        )


async def _citizen_writes(
    client: httpx.AsyncClient, maker: async_sessionmaker[AsyncSession], clock: Clock, text: str
) -> None:
    """Through the webhook, then the job intake queued for the message (check_urgent)."""
    answer = await WeChat(WEBHOOK, clock).post(
        client, text_xml(text, sender=OPENID, create_time=int(clock.now.timestamp()))
    )
    assert answer.status_code == 200, answer.text
    async with maker() as session:
        newest = (
            await session.execute(
                select(InquiryMessage.inquiry_id, InquiryMessage.seq)
                .order_by(InquiryMessage.id.desc())
                .limit(1)
            )
        ).one()
    await routing_tasks.check_urgent(newest.inquiry_id, newest.seq)


@pytest.mark.parametrize("joins", [True, False], ids=["message-joins", "message-opens-new"])
async def test_a_reply_that_found_the_window_closed_waits_and_goes_when_the_citizen_writes(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
    joins: bool,
) -> None:
    client, key, reference = city
    await _answer(client, key, reference)
    await _close_window(committing_maker, OPENID)
    [row] = await _deliveries(committing_maker)
    await tasks.deliver(row.id)
    [waiting] = await _deliveries(committing_maker)
    assert (waiting.status, waiting.error_code) == (
        DeliveryStatus.awaiting_window,
        "window_closed",
    )
    assert fake.requests == 0  # planned for: a closed window is never tried
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    assert view["window"]["open"] is False
    assert view["window"]["next_path"] == "answer_page"  # the account sends no notifications
    if not joins:  # the conversation ended: the next message opens a new inquiry
        async with committing_maker.begin() as session:
            for inquiry in await session.scalars(select(Inquiry)):
                inquiry.accepts_messages = False
    clock.now = datetime.now(UTC).replace(microsecond=0)  # the job counts in real time
    await _citizen_writes(client, committing_maker, clock, "请问有结果了吗")
    async with committing_maker() as session:
        assert len((await session.scalars(select(Inquiry))).all()) == (1 if joins else 2)
    [woken] = await _deliveries(committing_maker)
    assert woken.status is DeliveryStatus.queued
    await tasks.deliver(woken.id)
    assert [send["touser"] for send in fake.sends] == [OPENID]
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    assert view["window"]["open"] is True
    assert view["window"]["messages_left"] == 4


async def test_the_windows_message_quota_is_planned_for(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client, key, reference = city
    monkeypatch.setattr(settings(), "wechat_window_messages", 1)
    interim = await client.post(
        f"{P}/{reference}/replies",
        json={"purpose": "interim", "text": "您好，您反映的问题正在核实，3个工作日内答复。"},
        headers=key,
    )
    assert interim.status_code == 201
    await _answer(client, key, reference)
    first, second = await _deliveries(committing_maker)
    await tasks.deliver(first.id)
    await tasks.deliver(second.id)
    _, waiting = await _deliveries(committing_maker)
    assert (waiting.status, waiting.error_code) == (DeliveryStatus.awaiting_window, "quota_used")
    assert fake.requests == 1


async def test_a_holding_reply_goes_before_the_window_closes_on_an_unanswered_inquiry(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    client, key, reference = city
    now = datetime.now(UTC)

    async def last_wrote(hours_ago: float) -> None:
        async with committing_maker.begin() as session:
            inquiry = (await session.scalars(select(Inquiry))).one()
            inquiry.last_message_at = now - timedelta(hours=hours_ago)

    async def sweep() -> int:
        async with committing_maker.begin() as session:
            return await service.send_holding_replies(session, now=now)

    await last_wrote(38)  # the window closes in 10 h: not yet
    assert await sweep() == 0
    await last_wrote(45)  # in 3 h, within the 4 h lead
    assert await sweep() == 1
    assert await sweep() == 0  # once per window
    [row] = await _deliveries(committing_maker)
    await tasks.deliver(row.id)
    [sent] = fake.sends
    assert reference in sent["text"]["content"]
    assert "请直接回复本消息" in sent["text"]["content"]
    async with committing_maker() as session:
        code = (await session.scalars(select(Inquiry.query_code))).one()
    # It may be the first text the citizen gets: it carries the answer page's code and link.
    assert f"查询码{code}" in sent["text"]["content"]
    assert f"/answer?ref={reference}&code={code}" in sent["text"]["content"]
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    assert [r["purpose"] for r in view["replies"]] == ["holding"]
    assert view["status"] == "assigned"  # a holding reply is never an answer
    assert view["clock"]["first_responded_at"] is None  # nor a person's response
    async with committing_maker() as session:
        actions = list(await session.scalars(select(InquiryEvent.action)))
    assert "window_closing" in actions  # the department is warned (feed, push)


async def _weibo_fan_wrote(
    maker: async_sessionmaker[AsyncSession], fake_weibo: FakeWeibo, at: datetime
) -> tuple[Account, Inquiry, dict[str, str]]:
    """A Weibo account with the fake's fan-service token, and a fan's message routed to
    hefei-hrss, written `at`; with hefei-hrss's key."""
    async with maker() as session:
        office, hrss, _ = await _city(session)
        account = await factories.weibo_account(
            session, office, uid="2489518277", app_secret="w" * 32
        )
        account.weibo_access_token = fake_weibo.token
        inquiry = await factories.inquiry(
            session, account, content="社保怎么办", citizen_id="1902538057", received_at=at
        )
        assert await routing.route(session, inquiry_id=inquiry.id, now=at, keywords=[])
        key = auth(await factories.api_key(session, hrss))
        await session.commit()
    return account, inquiry, key


@pytest.mark.parametrize(
    "answer", [None, (400, 21301), (503, 10001)], ids=["ok", "refused", "busy"]
)
async def test_a_weibo_reply_goes_through_the_fan_service_api(
    fake_weibo: FakeWeibo,
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
    answer: tuple[int, int] | None,
) -> None:
    monkeypatch.setattr(tasks, "sessionmaker", lambda: committing_maker)
    clock.now = datetime.now(UTC).replace(microsecond=0)
    _, inquiry, key = await _weibo_fan_wrote(committing_maker, fake_weibo, clock.now)
    async with make_client(committing_maker, clock) as client:
        await _answer(client, key, inquiry.reference)
    [row] = await _deliveries(committing_maker)
    fake_weibo.script = [answer]
    if answer is not None and answer[0] >= 500:
        with pytest.raises(tasks.TryAgain):
            await tasks.deliver(row.id)
        [waiting] = await _deliveries(committing_maker)
        assert (waiting.status, waiting.error_code) == (DeliveryStatus.queued, "10001")
        return
    await tasks.deliver(row.id)
    [settled] = await _deliveries(committing_maker)
    if answer is None:
        assert settled.status is DeliveryStatus.delivered
        [sent] = fake_weibo.sends
        assert sent["data"]["text"].startswith(ANSWER + "\n查询码")  # the first text: the code
    else:
        assert (settled.status, settled.error_code) == (DeliveryStatus.failed, "21301")


async def test_a_weibo_accounts_own_window_is_used(
    fake_weibo: FakeWeibo,
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Sources disagree on Weibo's window (48 h, older pages 72 h): it is set per account."""
    monkeypatch.setattr(tasks, "sessionmaker", lambda: committing_maker)
    clock.now = datetime.now(UTC).replace(microsecond=0)
    account, inquiry, key = await _weibo_fan_wrote(
        committing_maker, fake_weibo, clock.now - timedelta(hours=60)
    )
    async with make_client(committing_maker, clock) as client:
        await _answer(client, key, inquiry.reference)
        [row] = await _deliveries(committing_maker)
        await tasks.deliver(row.id)  # 60 h after the fan wrote: closed at the default 48 h
        [waiting] = await _deliveries(committing_maker)
        assert waiting.status is DeliveryStatus.awaiting_window
        longer = await client.patch(
            f"/api/v1/admin/accounts/{account.code}",
            json={"weibo_window_hours": 72},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert longer.status_code == 200, longer.text
        assert longer.json()["weibo_window_hours"] == 72
        again = await client.post(
            f"{P}/{inquiry.reference}/deliveries/{row.id}/resend", headers=key
        )
        assert again.status_code == 200, again.text
    await tasks.deliver(row.id)
    [sent] = await _deliveries(committing_maker)
    assert sent.status is DeliveryStatus.delivered
    assert len(fake_weibo.sends) == 1


async def test_a_late_answer_of_an_attempt_given_up_on_never_sends_twice(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Found in review: a slow attempt, recovered as uncertain, resent and delivered, then
    answering "busy" put the row back in the queue, and its retry sent it again."""
    client, key, reference = city
    await _answer(client, key, reference)
    [row] = await _deliveries(committing_maker)
    async with committing_maker.begin() as session:  # attempt 1 claims, then hangs
        slow = await service.claim(session, row.id, now=datetime.now(UTC) - timedelta(minutes=5))
    assert slow is not None
    async with committing_maker.begin() as session:
        await service.recover(session, now=datetime.now(UTC))
    resent = await client.post(f"{P}/{reference}/deliveries/{row.id}/resend", headers=key)
    assert resent.status_code == 200, resent.text
    await tasks.deliver(row.id)  # attempt 2 delivers
    await tasks._settle(slow, DeliveryStatus.queued, "-1", "system error")  # attempt 1, late
    [settled] = await _deliveries(committing_maker)
    assert settled.status is DeliveryStatus.delivered
    await tasks.deliver(row.id)  # attempt 1's retry
    assert len(fake.sends) == 1


async def test_a_token_that_could_not_be_fetched_is_retried_never_uncertain(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Found in review: nothing was sent, yet a broken token answer made the row uncertain."""
    client, key, reference = city
    await _answer(client, key, reference)
    [row] = await _deliveries(committing_maker)
    fake.token_broken = True
    with pytest.raises(tasks.TryAgain):
        await tasks.deliver(row.id)
    [waiting] = await _deliveries(committing_maker)
    assert (waiting.status, waiting.error_code) == (DeliveryStatus.queued, "token")
    fake.token_broken = False
    await tasks.deliver(row.id)
    [done] = await _deliveries(committing_maker)
    assert done.status is DeliveryStatus.delivered


async def test_a_queued_delivery_whose_job_is_gone_gets_a_new_one(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    client, key, reference = city
    await _answer(client, key, reference)
    [row] = await _deliveries(committing_maker)
    async with committing_maker.begin() as session:  # its job failed for good
        await session.execute(
            text("UPDATE procrastinate_jobs SET status = 'failed' WHERE task_name = :t"),
            {"t": service.TASK},
        )
        await session.execute(
            text("UPDATE delivery SET updated_at = now() - interval '1 hour' WHERE id = :id"),
            {"id": row.id},
        )
    async with committing_maker.begin() as session:
        assert await service.recover(session, now=datetime.now(UTC)) == 1
    async with committing_maker() as session:
        todo = await session.scalar(
            text(
                "SELECT count(*) FROM procrastinate_jobs WHERE task_name = :t AND status = 'todo'"
            ),
            {"t": service.TASK},
        )
    assert todo == 1


async def test_a_holding_reply_that_missed_its_window_is_dropped_not_deferred(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    """Found in review: a deferred holding reply went out after the citizen wrote again,
    before the answer."""
    del city  # the inquiry it made
    async with committing_maker.begin() as session:
        inquiry = (await session.scalars(select(Inquiry))).one()
        inquiry.last_message_at = datetime.now(UTC) - timedelta(hours=45)
    async with committing_maker.begin() as session:
        assert await service.send_holding_replies(session, now=datetime.now(UTC)) == 1
    await _close_window(committing_maker, OPENID)  # it closed before the job ran
    [row] = await _deliveries(committing_maker)
    await tasks.deliver(row.id)
    [dropped] = await _deliveries(committing_maker)
    assert (dropped.status, dropped.error_code) == (DeliveryStatus.failed, "window_closed")
    assert fake.requests == 0


TEMPLATE = "VRR0UEO9VJOLs0MHlU0OilqX6MVFDwH3_3gz3Oc0NIc"


def _decision_xml(event: str, decisions: list[tuple[str, str]], create_time: int) -> str:
    """A 订阅通知 decision as WeChat pushes it (docs/platforms.md): one <List> per template."""
    wrapper = (
        "SubscribeMsgPopupEvent" if event.endswith("popup_event") else "SubscribeMsgChangeEvent"
    )
    items = "".join(
        f"<List><TemplateId><![CDATA[{template}]]></TemplateId>"
        f"<SubscribeStatusString><![CDATA[{status}]]></SubscribeStatusString>"
        "<PopupScene>2</PopupScene></List>"
        for template, status in decisions
    )
    return (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName>"
        f"<FromUserName><![CDATA[{OPENID}]]></FromUserName><CreateTime>{create_time}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        f"<{wrapper}>{items}</{wrapper}></xml>"
    )


async def _account_sends(client: httpx.AsyncClient, **fields: object) -> dict[str, object]:
    changed = await client.patch(
        "/api/v1/admin/accounts/hefei-wechat",
        json=fields,
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert changed.status_code == 200, changed.text
    return dict(changed.json())


async def test_where_the_window_closed_a_subscription_notification_links_the_answer_page(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> None:
    client, key, reference = city
    account = await _account_sends(client, verified=True, subscribe_template_id=TEMPLATE)
    assert account["may_use"] == ["customer_service_message", "subscribe_notification"]
    # The citizen accepts the template in the popup (and refuses another), through the webhook.
    peer = WeChat(WEBHOOK, clock)
    popup = _decision_xml(
        "subscribe_msg_popup_event",
        [(TEMPLATE, "accept"), ("another_template", "reject")],
        int(clock.now.timestamp()),
    )
    assert (await peer.post(client, popup)).status_code == 200
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    assert view["window"]["next_path"] == "message"  # the window is open: the message itself
    await _close_window(committing_maker, OPENID)
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    assert view["window"]["next_path"] == "subscribe"
    await _answer(client, key, reference)
    [row] = await _deliveries(committing_maker)
    await tasks.deliver(row.id)
    answer, notification = await _deliveries(committing_maker)
    assert answer.status is DeliveryStatus.awaiting_window  # it still goes when the citizen writes
    assert (notification.via, notification.status) == (Via.subscribe, DeliveryStatus.queued)
    await tasks.deliver(notification.id)
    async with committing_maker() as session:
        code = (await session.scalars(select(Inquiry.query_code))).one()
    [(endpoint, body)] = fake.notifications
    assert endpoint == "bizsend"
    assert fake.sends == []  # no customer-service message was tried
    assert (body["touser"], body["template_id"]) == (OPENID, TEMPLATE)
    assert body["page"] == f"{settings().public_base_url}/answer?ref={reference}&code={code}"
    assert body["data"]["character_string1"] == {"value": reference}
    assert body["data"]["phrase2"] == {"value": "已答复"}
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    assert [(d["via"], d["status"]) for d in view["replies"][0]["deliveries"]] == [
        ("message", "awaiting_window"),
        ("subscribe", "delivered"),
    ]
    # Told that the answer is ready, with the page that has it: the answer has reached them.
    closed = await client.post(f"{P}/{reference}/close", json={"reason": "已办结"}, headers=key)
    assert closed.status_code == 200, closed.text
    page = await client.get(body["page"].removeprefix(settings().public_base_url))
    assert (page.status_code, ANSWER in page.text) == (200, True)
    # A later change in the citizen's settings withdraws the grant: the answer page alone.
    clock.now += timedelta(seconds=5)
    change = _decision_xml(
        "subscribe_msg_change_event", [(TEMPLATE, "reject")], int(clock.now.timestamp())
    )
    assert (await peer.post(client, change)).status_code == 200
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    assert view["window"]["next_path"] == "answer_page"


async def test_a_template_message_where_there_is_no_subscription_and_a_one_time_grant_is_used(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> None:
    client, key, reference = city
    await _account_sends(
        client,
        verified=True,
        subscribe_template_id=TEMPLATE,
        subscribe_long_term=False,  # one notification per grant
        template_id="tm_answer_ready",
        template_fields={"keyword1": "{reference}", "keyword2": "{status}"},
    )
    popup = _decision_xml("subscribe_msg_popup_event", [(TEMPLATE, "accept")], 1)
    popup = popup.replace("<CreateTime>1<", f"<CreateTime>{int(clock.now.timestamp())}<")
    assert (await WeChat(WEBHOOK, clock).post(client, popup)).status_code == 200
    await _close_window(committing_maker, OPENID)
    interim = await client.post(
        f"{P}/{reference}/replies",
        json={"purpose": "interim", "text": "您好，您反映的问题正在核实。"},
        headers=key,
    )
    assert interim.status_code == 201
    [waiting] = await _deliveries(committing_maker)
    await tasks.deliver(waiting.id)
    assert len(await _deliveries(committing_maker)) == 1  # progress news is no "answer ready"
    await _answer(client, key, reference)
    answer = (await _deliveries(committing_maker))[-1]
    await tasks.deliver(answer.id)
    first = (await _deliveries(committing_maker))[-1]
    assert first.via is Via.subscribe
    await tasks.deliver(first.id)
    # The grant is used: the next inquiry's answer goes as a template message.
    async with committing_maker.begin() as session:
        for inquiry in await session.scalars(select(Inquiry)):
            inquiry.accepts_messages = False  # the conversation ended: a new inquiry
        second = await arrive(session, "社保卡丢了怎么补办", OPENID, clock.now)
    await _close_window(committing_maker, OPENID)
    view = (await client.get(f"{P}/{second.reference}", headers=key)).json()
    assert view["window"]["next_path"] == "template"
    await _answer(client, key, second.reference)
    await tasks.deliver((await _deliveries(committing_maker))[-1].id)
    notification = (await _deliveries(committing_maker))[-1]
    assert notification.via is Via.template
    await tasks.deliver(notification.id)
    assert [endpoint for endpoint, _ in fake.notifications] == ["bizsend", "template"]
    body = fake.notifications[1][1]
    assert body["url"].endswith(f"/answer?ref={second.reference}&code={second.query_code}")
    assert body["data"] == {
        "keyword1": {"value": second.reference},
        "keyword2": {"value": "已答复"},
    }
    # A citizen known to have unfollowed gets no template message: the answer page alone.
    async with committing_maker.begin() as session:
        await session.execute(
            text("UPDATE follower SET unsubscribed_at = now() WHERE citizen_id = :c"),
            {"c": OPENID},
        )
    view = (await client.get(f"{P}/{second.reference}", headers=key)).json()
    assert view["window"]["next_path"] == "answer_page"


async def test_a_notification_the_platform_refuses_is_a_visible_failure(
    fake: FakeWeChat,
    city: tuple[httpx.AsyncClient, dict[str, str], str],
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> None:
    client, key, reference = city
    await _account_sends(
        client, verified=True, subscribe_template_id=TEMPLATE, template_id="tm_answer_ready"
    )
    popup = _decision_xml(
        "subscribe_msg_popup_event", [(TEMPLATE, "accept")], int(clock.now.timestamp())
    )
    assert (await WeChat(WEBHOOK, clock).post(client, popup)).status_code == 200
    await _close_window(committing_maker, OPENID)
    await _answer(client, key, reference)
    await tasks.deliver((await _deliveries(committing_maker))[0].id)
    subscribe = (await _deliveries(committing_maker))[-1]
    fake.script = [43101]  # the citizen cancelled the subscription
    await tasks.deliver(subscribe.id)
    # The platform's word withdraws the grant, and the next rung is tried: a template message.
    template = (await _deliveries(committing_maker))[-1]
    assert template.via is Via.template
    view = (await client.get(f"{P}/{reference}", headers=key)).json()
    assert view["window"]["next_path"] == "template"
    fake.script = [43004]  # unfollowed meanwhile
    await tasks.deliver(template.id)
    _, first, second = await _deliveries(committing_maker)
    assert [(d.via, d.status, d.error_code) for d in (first, second)] == [
        (Via.subscribe, DeliveryStatus.failed, "43101"),
        (Via.template, DeliveryStatus.failed, "43004"),
    ]
    refused = await client.post(f"{P}/{reference}/close", json={"reason": "已办结"}, headers=key)
    assert refused.status_code == 409  # neither the answer nor the notification arrived


def test_the_fake_is_honest_wechatpy_sends_its_notifications_to_it(fake: FakeWeChat) -> None:
    """wechatpy's own template-message and subscription-notification calls against the fake: its body is accepted, its msgid
    read, and the errors the brief lists for it come back as wechatpy's exceptions."""
    from wechatpy import WeChatClient
    from wechatpy.exceptions import WeChatClientException

    client = WeChatClient("wx2c2769f8efd9abc2", "s" * 32, access_token="TOKEN")
    client.API_BASE_URL = f"{fake.url}/cgi-bin/"
    fake.token = "TOKEN"
    answer = client.message.send_template(
        OPENID, "tm_answer_ready", {"keyword1": {"value": "WX20261124-000001"}}, url="https://x/a"
    )
    assert answer["msgid"] > 0
    assert fake.notifications[0][1]["url"] == "https://x/a"
    for code in (43004, 40037, 43101):
        fake.script = [code]
        with pytest.raises(WeChatClientException) as raised:
            client.message.send_template(OPENID, "tm", {"keyword1": {"value": "x"}})
        assert raised.value.errcode == code
    # wechatpy's subscription notification (send_subscribe_message: bizsend) likewise.
    client.message.send_subscribe_message(
        OPENID, TEMPLATE, {"thing1": {"value": "已答复"}}, page="https://x/a"
    )
    assert fake.notifications[1] == (
        "bizsend",
        {
            "touser": OPENID,
            "template_id": TEMPLATE,
            "data": {"thing1": {"value": "已答复"}},
            "page": "https://x/a",
        },
    )
    fake.script = [43101]
    with pytest.raises(WeChatClientException) as cancelled:
        client.message.send_subscribe_message(OPENID, TEMPLATE, {"thing1": {"value": "x"}})
    assert cancelled.value.errcode == 43101
