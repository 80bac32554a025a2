"""The answer page (issue 15, rung 4 of the ladder): reached with the reference and the query code
(查询码) that the acknowledgement carried, through the public path (webhook, routing, the
department's answer), with identical 404s and a per-reference limit on wrong codes."""

import re
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession
from wechatpy import parse_message

from app.accounts.models import Account
from app.answers import service
from app.inquiries.models import Channel, Inquiry
from app.routing import service as routing
from app.settings import settings
from app.webhooks import service as intake
from tests import factories
from tests.conftest import Clock
from tests.inquiries.test_work import _city, auth
from tests.webhooks.peers import WeChat, text_xml

P = "/api/v1/inquiries"
ANSWER = "您好，断缴3个月内可携带身份证到市民中心3号窗口补缴，咨询电话0551-12333。"


async def _citizen_asks(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock, sender: str, content: str
) -> tuple[Inquiry, str]:
    """A message through the webhook, routed; the acknowledgement's link to the answer page."""
    peer = WeChat("/webhooks/wechat/hefei-wechat", clock)
    response = await peer.post(
        client, text_xml(content, sender=sender, create_time=int(clock.now.timestamp()))
    )
    assert response.status_code == 200, response.text
    ack = parse_message(peer.read_reply(response.content)).content
    inquiry = await session.scalar(
        select(Inquiry).where(Inquiry.citizen_id == sender).order_by(Inquiry.id.desc())
    )
    assert inquiry is not None
    assert await routing.route(session, inquiry_id=inquiry.id, now=clock.now, keywords=[])
    await session.flush()  # the API's requests use sessions of their own
    found = re.search(r"查询码([0-9]{10})，可凭编号和查询码查看办理进展：(\S+)$", ack)
    assert found is not None, ack
    assert found.group(1) == inquiry.query_code
    link = urlsplit(found.group(2))
    assert f"{link.scheme}://{link.netloc}" == settings().public_base_url
    return inquiry, f"{link.path}?{link.query}"


@pytest.fixture
async def hrss_key(session: AsyncSession) -> dict[str, str]:
    office, hrss, _ = await _city(session)
    await factories.account(session, office, ack_enabled=True, ack_text="已收到，编号{reference}。")
    return auth(await factories.api_key(session, hrss))


async def test_the_acknowledgements_code_opens_the_page_with_status_due_and_answer(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock, hrss_key: dict[str, str]
) -> None:
    inquiry, page = await _citizen_asks(client, session, clock, "o_1", "社保断缴了怎么补缴？")
    assert page == f"/answer?ref={inquiry.reference}&code={inquiry.query_code}"
    handling = await client.get(page)
    assert handling.status_code == 200
    assert handling.headers["content-type"].startswith("text/html")
    # The address carries the code: never cached, never passed on as a referrer.
    assert handling.headers["cache-control"] == "no-store"
    assert handling.headers["referrer-policy"] == "no-referrer"
    assert 'name="viewport"' in handling.text  # for a phone
    assert inquiry.reference in handling.text
    assert "办理中" in handling.text
    assert "部门 hefei-hrss" in handling.text  # the department that handles it
    assert inquiry.reply_due_at is not None
    assert f"{service.beijing(inquiry.reply_due_at, time=False)}前" in handling.text
    assert "尚未答复" in handling.text
    posted = await client.post(
        f"{P}/{inquiry.reference}/replies",
        json={"purpose": "answer", "text": ANSWER},
        headers=hrss_key,
    )
    assert posted.status_code == 201, posted.text
    answered = await client.get(page)
    assert "已答复" in answered.text
    assert ANSWER in answered.text  # before any platform delivery: the page always works
    assert "尚未答复" not in answered.text
    # The page escapes what it shows.
    await session.execute(
        text("UPDATE reply SET text = '<script>alert(1)</script>' WHERE inquiry_id = :id"),
        {"id": inquiry.id},
    )
    escaped = await client.get(page)
    assert escaped.status_code == 200
    assert "<script>alert(1)</script>" not in escaped.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in escaped.text


async def test_an_unknown_reference_and_a_wrong_code_look_the_same(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock, hrss_key: dict[str, str]
) -> None:
    inquiry, _ = await _citizen_asks(client, session, clock, "o_1", "社保断缴了怎么补缴？")
    wrong_code = f"{(int(inquiry.query_code) + 1) % 10**10:010d}"
    wrong = await client.get(f"/answer?ref={inquiry.reference}&code={wrong_code}")
    unknown = await client.get(f"/answer?ref=WX20991231-999999&code={inquiry.query_code}")
    malformed = await client.get("/answer?ref=not-a-reference&code=x")
    no_code = await client.get(f"/answer?ref={inquiry.reference}")
    for response in (wrong, unknown, malformed, no_code):
        assert response.status_code == 404
        assert response.text == wrong.text
        assert _headers(response) == _headers(wrong)
    assert "未找到该受理编号，或查询码不正确" in wrong.text
    assert inquiry.reference not in wrong.text  # nothing said about the reference
    form = await client.get("/answer")
    assert (form.status_code, 'name="code"' in form.text) == (200, True)


def _headers(response: httpx.Response) -> dict[str, str]:
    return {k: v for k, v in response.headers.items() if k not in ("x-request-id", "date")}


async def test_wrong_codes_are_limited_per_reference_known_or_not(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: Clock,
    hrss_key: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(settings(), "answer_page_attempts", 3)
    inquiry, page = await _citizen_asks(client, session, clock, "o_1", "社保断缴了怎么补缴？")
    unknown = "WX20991231-999999"
    for reference in (inquiry.reference, unknown):
        for _ in range(3):
            guess = await client.get(f"/answer?ref={reference}&code=0000000000")
            assert guess.status_code == 404
    limited = await client.get(page)  # even the right code, while the reference is limited
    limited_unknown = await client.get(f"/answer?ref={unknown}&code=0000000000")
    assert limited.status_code == limited_unknown.status_code == 429
    assert limited.text == limited_unknown.text  # which references exist stays unsaid
    assert 1 <= int(limited.headers["retry-after"]) <= 3600
    _other, other_page = await _citizen_asks(client, session, clock, "o_2", "社保卡怎么办理？")
    assert (await client.get(other_page)).status_code == 200  # per reference: others unaffected
    clock.now += timedelta(minutes=settings().answer_page_window_minutes)
    assert (await client.get(page)).status_code == 200  # the window is over
    # The hourly purge forgets the counts whose window is over (the unknown reference's and
    # the other inquiry's); those just counted again stay.
    assert await service.purge(session, now=clock.now) == 2
    kept = await session.scalars(text("SELECT key FROM answer_attempt ORDER BY key"))
    assert list(kept) == ["client:127.0.0.1", f"ref:{inquiry.reference}"]


async def test_wrong_codes_are_limited_per_client_over_all_references(
    client: httpx.AsyncClient,
    session: AsyncSession,
    clock: Clock,
    hrss_key: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """One client walking the (sequential) references: its own limit, whichever it tries."""
    monkeypatch.setattr(settings(), "answer_page_client_attempts", 5)
    _inquiry, page = await _citizen_asks(client, session, clock, "o_1", "社保断缴了怎么补缴？")
    for number in range(5):
        guess = await client.get(f"/answer?ref=WX20261124-00010{number}&code=0000000000")
        assert guess.status_code == 404
    assert (await client.get(page)).status_code == 429
    elsewhere = {"X-Forwarded-For": "ignored"}  # the peer's address counts, not a header
    assert (await client.get(page, headers=elsewhere)).status_code == 429


async def test_a_merged_repeats_citizen_sees_the_answer_it_was_merged_into(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock, hrss_key: dict[str, str]
) -> None:
    first, _ = await _citizen_asks(client, session, clock, "o_1", "社保断缴了怎么补缴？")
    repeat, repeat_page = await _citizen_asks(client, session, clock, "o_2", "社保断缴了怎么补缴")
    merged = await client.post(
        f"{P}/{repeat.reference}/merge",
        json={"into": first.reference, "reason": "同一事项重复反映"},
        headers=hrss_key,
    )
    assert merged.status_code == 200, merged.text
    posted = await client.post(
        f"{P}/{first.reference}/replies",
        json={"purpose": "answer", "text": ANSWER},
        headers=hrss_key,
    )
    assert posted.status_code == 201, posted.text
    shown = await client.get(repeat_page)
    assert shown.status_code == 200
    assert repeat.reference in shown.text
    assert first.reference not in shown.text  # another citizen's reference is never shown
    assert "合并办理" in shown.text
    assert ANSWER in shown.text
    assert "已答复" in shown.text


async def test_a_public_comment_is_never_acknowledged_so_never_given_the_code(
    session: AsyncSession, hrss_key: dict[str, str]
) -> None:
    account = await session.scalar(select(Account))
    assert account is not None
    connection = (await (await session.connection()).get_raw_connection()).driver_connection
    webhook_account = await intake.account(connection, account.platform, account.code, seconds=5)
    assert webhook_account.ack_enabled
    stored = await intake.store(
        connection,
        webhook_account,
        intake.Delivery(
            dedupe_key="comment:1",
            sender_id="o_commenter",
            msg_type="text",
            event_type=None,
            sent_at=datetime(2026, 11, 24, 2, 0, tzinfo=UTC),
            payload="{}",
            content="评论：社保怎么补缴",
            channel=Channel.comment,
        ),
        now=datetime(2026, 11, 24, 2, 0, tzinfo=UTC),
        open_window=timedelta(days=7),
        quiet=timedelta(seconds=20),
        seconds=5,
    )
    assert stored.opened
    assert stored.ack_text is None  # no acknowledgement, so no code, on a public comment


async def test_notification_templates_are_for_service_accounts_only(
    admin: httpx.AsyncClient, session: AsyncSession, hrss_key: dict[str, str]
) -> None:
    to_subscription = await admin.patch(
        "/api/v1/admin/accounts/hefei-wechat",
        json={"account_type": "wechat_subscription", "template_id": "tm_answer_ready"},
    )
    assert to_subscription.status_code == 422, to_subscription.text
    unverified = await admin.patch(
        "/api/v1/admin/accounts/hefei-wechat", json={"template_id": "tm_answer_ready"}
    )
    assert unverified.status_code == 200
    # An unverified service account may not send template messages: not offered.
    assert unverified.json()["may_use"] == []
    cleared = await admin.patch("/api/v1/admin/accounts/hefei-wechat", json={"template_id": ""})
    assert cleared.json()["template_id"] is None
