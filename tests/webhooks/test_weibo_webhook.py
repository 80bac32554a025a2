"""Weibo fan-service callbacks end to end."""

import json
from datetime import UTC, datetime
from urllib.parse import unquote

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account, Follower
from app.inquiries.models import Inquiry, InquiryMessage
from app.webhooks.models import InboxEvent
from tests import factories
from tests.conftest import Clock
from tests.webhooks.peers import WEIBO_SECRET, WEIBO_UID, Weibo, weibo_text

PATH = "/webhooks/weibo/hefei-weibo"
pytestmark = pytest.mark.usefixtures("account")


@pytest.fixture
async def account(session: AsyncSession) -> Account:
    owner = await factories.department(session, "hefei-office", is_supervising_office=True)
    return await factories.weibo_account(session, owner, uid=WEIBO_UID, app_secret=WEIBO_SECRET)


@pytest.fixture
def weibo(clock: Clock) -> Weibo:
    return Weibo(PATH, clock)


async def test_url_verification_official_example(client: httpx.AsyncClient, clock: Clock) -> None:
    clock.now = datetime.fromtimestamp(1397022061.823, UTC)
    query = "nonce=57155157&timestamp=1397022061823&echostr=dnPdpTZz85&signature=90e4c22c90a58f26526c2dd5b6c56c8822edeaa1"
    response = await client.get(f"{PATH}?{query}")
    assert (response.status_code, response.text) == (200, "dnPdpTZz85")
    assert (await client.get(f"{PATH}?{query.replace('90e4', '90e5')}")).status_code == 403


async def test_text_opens_an_inquiry_and_a_retry_does_not(
    client: httpx.AsyncClient, session: AsyncSession, weibo: Weibo
) -> None:
    message = weibo_text("建议地铁3号线早高峰增加班次")
    first = await weibo.post(client, message)
    again = await weibo.post(client, message)
    assert (first.status_code, first.content, again.content) == (200, b"", b"")
    inquiry = (await session.scalars(select(Inquiry))).one()
    assert inquiry.reference.startswith("WB20261124-")
    assert (await session.scalar(select(func.count()).select_from(InboxEvent))) == 1
    content = (await session.scalars(select(InquiryMessage.content))).one()
    assert content == "建议地铁3号线早高峰增加班次"


async def test_passive_acknowledgement(
    client: httpx.AsyncClient, session: AsyncSession, weibo: Weibo, account: Account
) -> None:
    account.ack_enabled = True
    account.ack_text = "已收到，编号{reference}"
    await session.flush()
    response = await weibo.post(client, weibo_text("你好"))
    reply = response.json()
    inquiry = (await session.scalars(select(Inquiry))).one()
    assert (reply["result"], reply["type"], reply["receiver_id"], reply["sender_id"]) == (
        True,
        "text",
        "2489518277",
        WEIBO_UID,
    )
    link = f"http://127.0.0.1:8000/answer?ref={inquiry.reference}&code={inquiry.query_code}"
    assert json.loads(unquote(reply["data"])) == {
        "text": f"已收到，编号{inquiry.reference}\n"
        f"查询码{inquiry.query_code}，可凭编号和查询码查看办理进展：{link}"
    }


async def test_a_long_acknowledgement_gives_way_to_the_query_code(
    client: httpx.AsyncClient, session: AsyncSession, weibo: Weibo, account: Account
) -> None:
    """Weibo takes 300 characters: the admin's text is cut, never the code and its link."""
    account.ack_enabled = True
    account.ack_text = "您的留言已收到，编号{reference}。" + "我们将依法依规认真办理。" * 22
    await session.flush()
    response = await weibo.post(client, weibo_text("你好"))
    sent = json.loads(unquote(response.json()["data"]))["text"]
    inquiry = (await session.scalars(select(Inquiry))).one()
    assert len(sent) <= 300
    assert sent.startswith(f"您的留言已收到，编号{inquiry.reference}。我们将依法依规")
    assert sent.endswith(f"/answer?ref={inquiry.reference}&code={inquiry.query_code}")


async def test_unknown_types_are_stored_and_ignored(
    client: httpx.AsyncClient, session: AsyncSession, weibo: Weibo
) -> None:
    response = await weibo.post(client, weibo_text("", kind="mention_v9", data={"x": 1}))
    assert (response.status_code, response.content) == (200, b"")
    assert (await session.scalar(select(func.count()).select_from(InboxEvent))) == 1
    assert (await session.scalar(select(func.count()).select_from(Inquiry))) == 0


async def test_follow_and_unfollow(
    client: httpx.AsyncClient, session: AsyncSession, weibo: Weibo
) -> None:
    await weibo.post(client, weibo_text("", kind="event", data={"subtype": "follow"}))
    follower = (await session.scalars(select(Follower))).one()
    assert follower.subscribed is True
    await weibo.post(
        client,
        weibo_text(
            "",
            kind="event",
            data={"subtype": "unfollow"},
            created_at="Tue Nov 24 10:05:00 +0800 2026",
        ),
    )
    await session.refresh(follower)
    assert follower.subscribed is False


@pytest.mark.parametrize(
    ("kind", "data", "content"),
    [
        ("position", {"longitude": "117.22", "latitude": "31.82"}, "[位置] (31.82, 117.22)"),
        ("voice", {"vfid": "1"}, "[语音]"),
        ("image", {"vfid": "2"}, "[图片]"),
    ],
)
async def test_other_message_types(
    client: httpx.AsyncClient,
    session: AsyncSession,
    weibo: Weibo,
    kind: str,
    data: dict[str, object],
    content: str,
) -> None:
    await weibo.post(client, weibo_text("", kind=kind, data=data))
    assert (await session.scalars(select(InquiryMessage.content))).one() == content


async def test_rejections(
    client: httpx.AsyncClient, session: AsyncSession, weibo: Weibo, clock: Clock
) -> None:
    query = weibo.query()
    bad_json = await client.post(f"{PATH}?{query}", content=b"{not json")
    assert bad_json.status_code == 400
    wrong = await client.post(f"{PATH}?{query.replace('signature=', 'signature=0')}", content=b"{}")
    assert wrong.status_code == 403
    other = weibo_text("你好") | {"receiver_id": 1}
    assert (await weibo.post(client, other)).status_code == 403
    stale_query = weibo.query()
    clock.advance(seconds=400)
    stale = await client.post(
        f"{PATH}?{stale_query}", content=json.dumps(weibo_text("你好")).encode()
    )
    assert stale.status_code == 403
    assert (await session.scalar(select(func.count()).select_from(InboxEvent))) == 0


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 20_000 + b"]" * 20_000,  # nesting deep enough to exhaust the parser
        json.dumps(weibo_text("\u0000")).encode(),
        b'{"type": "text", "receiver_id": 1902538057, "sender_id": 2489518277, '
        b'"created_at": "Tue Nov 24 10:00:00 +0800 2026", "text": "\\ud800"}',
        json.dumps(weibo_text("x") | {"sender_id": "9" * 150}).encode(),
        json.dumps(weibo_text("x")).encode("utf-16"),
        json.dumps(weibo_text("x") | {"created_at": "yesterday"}).encode(),
        json.dumps(weibo_text("", kind="event", data={"subtype": "s" * 70})).encode(),
    ],
)
async def test_crafted_bodies_are_400_not_500(
    client: httpx.AsyncClient, session: AsyncSession, weibo: Weibo, body: bytes
) -> None:
    response = await client.post(f"{PATH}?{weibo.query()}", content=body)
    assert response.status_code == 400
    assert (await session.scalar(select(func.count()).select_from(InboxEvent))) == 0


async def test_unknown_account_and_oversize(client: httpx.AsyncClient, weibo: Weibo) -> None:
    body = json.dumps(weibo_text("你好")).encode()
    assert (
        await client.post(f"/webhooks/weibo/nobody?{weibo.query()}", content=body)
    ).status_code == 404
    big = json.dumps(weibo_text("长" * 40_000)).encode()
    assert (await client.post(f"{PATH}?{weibo.query()}", content=big)).status_code == 413
