"""WeChat callbacks end to end, with wechatpy as the WeChat server."""

import logging
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from wechatpy import parse_message

from app.accounts.models import Account, Follower
from app.departments.models import Department
from app.inquiries import service as inquiries
from app.inquiries.models import Inquiry, InquiryEvent, InquiryMessage, InquiryStatus
from app.webhooks.models import InboxEvent
from tests import factories
from tests.conftest import Clock
from tests.webhooks import peers
from tests.webhooks.peers import CITIZEN, WeChat, message_xml, text_xml

PATH = "/webhooks/wechat/hefei-wechat"
pytestmark = pytest.mark.usefixtures("account")


@pytest.fixture
async def owner(session: AsyncSession) -> Department:
    return await factories.department(session, "hefei-office", is_supervising_office=True)


@pytest.fixture
async def account(session: AsyncSession, owner: Department) -> Account:
    account = await factories.account(session, owner)
    account.ack_enabled = True
    account.ack_text = "已收到，编号{reference}。"
    await session.flush()
    return account


@pytest.fixture
def wechat(clock: Clock, account: Account) -> WeChat:
    return WeChat(PATH, clock)


async def count(session: AsyncSession, model: type[object]) -> int:
    return int(await session.scalar(select(func.count()).select_from(model)) or 0)  # type: ignore[arg-type]


async def only_inquiry(session: AsyncSession) -> Inquiry:
    return (await session.scalars(select(Inquiry))).one()


async def test_url_verification_official_example(
    client: httpx.AsyncClient, session: AsyncSession, owner: Department, clock: Clock
) -> None:
    # The brief's §1.1 example: Token AAAAA, signed 2024-04-25.
    await factories.account(
        session,
        owner,
        code="doc-example",
        wechat_token="AAAAA",
        wechat_original_id="gh_97417a04a28d",
    )
    clock.now = datetime.fromtimestamp(1714036504, UTC)
    query = "signature=f464b24fc39322e44b38aa78f5edd27bd1441696&echostr=4375120948345356249&timestamp=1714036504&nonce=1514711492"
    response = await client.get(f"/webhooks/wechat/doc-example?{query}")
    assert (response.status_code, response.text) == (200, "4375120948345356249")
    wrong = await client.get(f"/webhooks/wechat/doc-example?{query.replace('f464', 'f465')}")
    assert wrong.status_code == 403
    assert "4375120948345356249" not in wrong.text


async def test_safe_mode_acknowledgement_carries_the_reference(
    client: httpx.AsyncClient, session: AsyncSession, wechat: WeChat
) -> None:
    response = await wechat.post(
        client,
        text_xml(
            "我在合肥工作，社保断缴了三个月，现在怎么补缴？",
            create_time=int(wechat.clock.now.timestamp()),
        ),
    )
    assert response.status_code == 200
    reply = parse_message(wechat.read_reply(response.content))
    inquiry = await only_inquiry(session)
    # The answer page's query code (查询码) and link come with it (tests/answers).
    link = f"http://127.0.0.1:8000/answer?ref={inquiry.reference}&code={inquiry.query_code}"
    assert reply.content == (
        f"已收到，编号{inquiry.reference}。\n"
        f"查询码{inquiry.query_code}，可凭编号和查询码查看办理进展：{link}"
    )
    assert reply.target == CITIZEN  # the reply goes to the citizen, from the account
    assert reply.source == peers.ORIGINAL_ID
    assert inquiry.reference.startswith("WX20261124-")
    assert (inquiry.status, inquiry.channel, inquiry.citizen_id) == (
        InquiryStatus.new,
        "private_message",
        CITIZEN,
    )
    messages = (await session.scalars(select(InquiryMessage))).all()
    assert [m.content for m in messages] == ["我在合肥工作，社保断缴了三个月，现在怎么补缴？"]


async def test_compatible_mode_official_sample(
    client: httpx.AsyncClient, session: AsyncSession, account: Account, clock: Clock
) -> None:
    """The brief's V1: Tencent's own compatible-mode body, as WeChat sent it in 2014."""
    account.ack_enabled = False
    await session.flush()
    clock.now = datetime.fromtimestamp(1409735669, UTC)
    body = "<xml><ToUserName><![CDATA[gh_10f6c3c3ac5a]]></ToUserName><FromUserName><![CDATA[oyORnuP8q7ou2gfYjqLzSIWZf0rs]]></FromUserName><CreateTime>1409735668</CreateTime><MsgType><![CDATA[text]]></MsgType><Content><![CDATA[abcdteT]]></Content><MsgId>6054768590064713728</MsgId><Encrypt><![CDATA[hyzAe4OzmOMbd6TvGdIOO6uBmdJoD0Fk53REIHvxYtJlE2B655HuD0m8KUePWB3+LrPXo87wzQ1QLvbeUgmBM4x6F8PGHQHFVAFmOD2LdJF9FrXpbUAh0B5GIItb52sn896wVsMSHGuPE328HnRGBcrS7C41IzDWyWNlZkyyXwon8T332jisa+h6tEDYsVticbSnyU8dKOIbgU6ux5VTjg3yt+WGzjlpKn6NPhRjpA912xMezR4kw6KWwMrCVKSVCZciVGCgavjIQ6X8tCOp3yZbGpy0VxpAe+77TszTfRd5RJSVO/HTnifJpXgCSUdUue1v6h0EIBYYI1BD1DlD+C0CR8e6OewpusjZ4uBl9FyJvnhvQl+q5rv1ixrcpCumEPo5MJSgM9ehVsNPfUM669WuMyVWQLCzpu9GhglF2PE=]]></Encrypt></xml>"
    query = "signature=16120ec1b8dbb870f510d87ce6bc2463eae6ca1a&timestamp=1409735669&nonce=1320562132&encrypt_type=aes&msg_signature=5d197aaffba7e9b25a30732f161a50dee96bd5fa"
    response = await client.post(f"{PATH}?{query}", content=body)
    assert (response.status_code, response.content) == (200, b"success")
    message = (await session.scalars(select(InquiryMessage))).one()
    assert (message.content, message.platform_msg_id) == ("abcdteT", "6054768590064713728")


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
async def test_every_mode_stores_and_answers(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock, mode: str, account: Account
) -> None:
    if mode == "plain":  # an account in plain mode has no EncodingAESKey
        account.wechat_encoding_aes_key = None
        await session.flush()
    wechat = WeChat(PATH, clock, mode=mode)
    response = await wechat.post(
        client, text_xml("  路灯坏了 <&> ", create_time=int(clock.now.timestamp()))
    )
    assert response.status_code == 200
    reply = parse_message(wechat.read_reply(response.content))
    inquiry = await only_inquiry(session)
    assert inquiry.reference in reply.content
    message = (await session.scalars(select(InquiryMessage))).one()
    assert message.content == "  路灯坏了 <&> "  # kept exactly, unlike wechatpy's parser


async def test_a_retry_gets_the_same_bytes_and_stores_nothing_new(
    client: httpx.AsyncClient, session: AsyncSession, wechat: WeChat
) -> None:
    xml = text_xml("住房公积金提取需要什么材料？", create_time=int(wechat.clock.now.timestamp()))
    first = await wechat.post(client, xml)
    # WeChat retries with the same message; nonce and even timestamp may differ.
    retries = [await wechat.post(client, xml) for _ in range(3)]
    assert all(r.status_code == 200 for r in retries)
    assert {r.content for r in retries} == {first.content}
    assert (
        await count(session, InboxEvent),
        await count(session, Inquiry),
        await count(session, InquiryMessage),
    ) == (1, 1, 1)


async def test_messages_in_a_row_make_one_inquiry_with_one_acknowledgement(
    client: httpx.AsyncClient, session: AsyncSession, wechat: WeChat, clock: Clock
) -> None:
    answers = []
    for text in ["你好", "我想问社保", "怎么补缴"]:
        answers.append(
            await wechat.post(client, text_xml(text, create_time=int(clock.now.timestamp())))
        )
        clock.advance(seconds=20)
    inquiry = await only_inquiry(session)
    messages = (await session.scalars(select(InquiryMessage).order_by(InquiryMessage.seq))).all()
    assert [(m.seq, m.content) for m in messages] == [
        (1, "你好"),
        (2, "我想问社保"),
        (3, "怎么补缴"),
    ]
    assert inquiry.message_count == 3
    assert inquiry.reference in parse_message(wechat.read_reply(answers[0].content)).content
    assert [a.content for a in answers[1:]] == [b"success", b"success"]  # one acknowledgement
    actions = (await session.scalars(select(InquiryEvent.action).order_by(InquiryEvent.id))).all()
    assert actions == ["created", "message_appended", "message_appended"]


async def test_after_the_inquiry_ends_a_new_linked_inquiry_opens(
    client: httpx.AsyncClient, session: AsyncSession, wechat: WeChat, clock: Clock
) -> None:
    await wechat.post(client, text_xml("第一个问题", create_time=int(clock.now.timestamp())))
    first = await only_inquiry(session)
    inquiries.transition(session, first, InquiryStatus.invalid, actor="test", reason="测试")
    await session.flush()
    clock.advance(minutes=5)
    response = await wechat.post(
        client, text_xml("第二个问题", create_time=int(clock.now.timestamp()))
    )
    second = (await session.scalars(select(Inquiry).where(Inquiry.id != first.id))).one()
    assert second.previous_inquiry_id == first.id
    assert second.reference in parse_message(wechat.read_reply(response.content)).content
    assert second.accepts_messages


async def test_after_the_open_window_a_new_linked_inquiry_opens(
    client: httpx.AsyncClient, session: AsyncSession, wechat: WeChat, clock: Clock
) -> None:
    await wechat.post(client, text_xml("第一个问题", create_time=int(clock.now.timestamp())))
    clock.advance(days=6, hours=23)
    await wechat.post(client, text_xml("补充一下", create_time=int(clock.now.timestamp())))
    assert await count(session, Inquiry) == 1
    clock.advance(days=7, minutes=1)
    await wechat.post(client, text_xml("新的问题", create_time=int(clock.now.timestamp())))
    first, second = (await session.scalars(select(Inquiry).order_by(Inquiry.id))).all()
    await session.refresh(first)
    assert (first.message_count, first.accepts_messages) == (2, False)
    assert (second.previous_inquiry_id, second.accepts_messages) == (first.id, True)


async def test_two_citizens_never_share(
    client: httpx.AsyncClient, session: AsyncSession, wechat: WeChat
) -> None:
    now = int(wechat.clock.now.timestamp())
    await wechat.post(client, text_xml("你好", create_time=now))
    await wechat.post(
        client, text_xml("你好", sender="o_other_citizen_000000000000", create_time=now)
    )
    rows = (await session.execute(select(Inquiry.citizen_id, Inquiry.message_count))).all()
    assert sorted(rows) == sorted([(CITIZEN, 1), ("o_other_citizen_000000000000", 1)])


@pytest.mark.parametrize(
    ("msg_type", "fields", "content"),
    [
        (
            "image",
            {"PicUrl": "http://mmbiz.qpic.cn/x.jpg", "MediaId": "m1"},
            "[图片] http://mmbiz.qpic.cn/x.jpg",
        ),
        ("voice", {"MediaId": "m2", "Format": "amr", "Recognition": "路灯坏了"}, "路灯坏了"),
        ("voice", {"MediaId": "m3", "Format": "amr"}, "[语音]"),
        ("video", {"MediaId": "m4", "ThumbMediaId": "t4"}, "[视频]"),
        ("shortvideo", {"MediaId": "m5", "ThumbMediaId": "t5"}, "[视频]"),
        (
            "location",
            {"Location_X": "31.82", "Location_Y": "117.22", "Scale": "20", "Label": "长江路"},
            "[位置] 长江路 (31.82, 117.22)",
        ),
        (
            "link",
            {"Title": "标题", "Description": "描述", "Url": "http://example.org"},
            "[链接] 标题 描述 http://example.org",
        ),
    ],
)
async def test_every_message_type_becomes_an_inquiry(
    client: httpx.AsyncClient,
    session: AsyncSession,
    wechat: WeChat,
    msg_type: str,
    fields: dict[str, str],
    content: str,
) -> None:
    response = await wechat.post(
        client, message_xml(msg_type, create_time=int(wechat.clock.now.timestamp()), **fields)
    )
    assert response.status_code == 200
    message = (await session.scalars(select(InquiryMessage))).one()
    assert (message.msg_type, message.content) == (msg_type, content)


async def test_events_keep_follower_state_and_open_nothing(
    client: httpx.AsyncClient, session: AsyncSession, wechat: WeChat, clock: Clock
) -> None:
    t0 = int(clock.now.timestamp())
    responses = [
        await wechat.post(client, message_xml("event", create_time=t0, Event="subscribe")),
        await wechat.post(client, message_xml("event", create_time=t0 + 60, Event="unsubscribe")),
        await wechat.post(
            client, message_xml("event", create_time=t0 + 120, Event="CLICK", EventKey="menu_1")
        ),
        await wechat.post(
            client, message_xml("event", create_time=t0 + 120, Event="brand_new_event")
        ),
    ]
    assert [r.content for r in responses] == [b"success"] * 4
    assert await count(session, Inquiry) == 0
    assert await count(session, InboxEvent) == 4
    follower = (await session.scalars(select(Follower))).one()
    assert follower.subscribed is False
    assert follower.unsubscribed_at == datetime.fromtimestamp(t0 + 60, UTC)
    await wechat.post(client, message_xml("event", create_time=t0 + 180, Event="subscribe"))
    await wechat.post(client, text_xml("你好", create_time=t0 + 200))
    await session.refresh(follower)
    assert follower.subscribed is True
    assert follower.last_message_at == datetime.fromtimestamp(t0 + 200, UTC)


async def test_key_rotation_accepts_the_previous_key(
    client: httpx.AsyncClient, session: AsyncSession, account: Account, clock: Clock
) -> None:
    account.wechat_previous_encoding_aes_key = peers.AES_KEY
    account.wechat_encoding_aes_key = (
        peers.PREVIOUS_AES_KEY
    )  # the new key; WeChat still uses the old
    await session.flush()
    old = WeChat(PATH, clock, aes_key=peers.AES_KEY)
    response = await old.post(
        client, text_xml("轮换期间的消息", create_time=int(clock.now.timestamp()))
    )
    assert response.status_code == 200
    # The reply is encrypted with the key that worked, so WeChat (still on it) can read it.
    assert (await only_inquiry(session)).reference in parse_message(
        old.read_reply(response.content)
    ).content
    new = WeChat(PATH, clock, aes_key=peers.PREVIOUS_AES_KEY)
    assert (
        await new.post(
            client, text_xml("新密钥", sender="o_new", create_time=int(clock.now.timestamp()))
        )
    ).status_code == 200


async def test_unknown_and_inactive_accounts_are_404(
    client: httpx.AsyncClient, wechat: WeChat, account: Account, session: AsyncSession
) -> None:
    query, body = wechat.request(text_xml("你好", create_time=int(wechat.clock.now.timestamp())))
    assert (await client.post(f"/webhooks/wechat/nobody?{query}", content=body)).status_code == 404
    account.active = False
    await session.flush()
    assert (await client.post(f"{PATH}?{query}", content=body)).status_code == 404


async def test_verification_needs_a_fresh_timestamp_and_an_echostr(
    client: httpx.AsyncClient, wechat: WeChat, clock: Clock
) -> None:
    query, _ = wechat.request("<xml/>")
    assert (await client.get(f"{PATH}?{query}")).status_code == 400  # no echostr
    assert (await client.get(f"{PATH}?{query}&echostr=abc")).text == "abc"
    clock.advance(seconds=301)
    assert (await client.get(f"{PATH}?{query}&echostr=abc")).status_code == 403


async def test_an_event_retry_is_stored_once(
    client: httpx.AsyncClient, session: AsyncSession, wechat: WeChat
) -> None:
    xml = message_xml("event", create_time=1_800_000_000, Event="subscribe")
    for _ in range(3):
        assert (await wechat.post(client, xml)).content == b"success"
    assert await count(session, InboxEvent) == 1


async def test_a_new_message_type_still_opens_an_inquiry(
    client: httpx.AsyncClient, session: AsyncSession, wechat: WeChat
) -> None:
    xml = message_xml("miniprogrampage", create_time=1, Title="办事指南", AppId="wx1")
    assert (await wechat.post(client, xml)).status_code == 200
    message = (await session.scalars(select(InquiryMessage))).one()
    assert message.content == "[miniprogrampage]"


async def test_message_bodies_and_secrets_stay_out_of_the_logs(
    client: httpx.AsyncClient, wechat: WeChat, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret_text = "我的身份证号是340104199001011234"
    await wechat.post(client, text_xml(secret_text, create_time=1))
    query, body = wechat.request(text_xml(secret_text, create_time=2))
    await client.post(f"{PATH}?{query}&signature=bad", content=body)  # a rejection logs too
    logged = caplog.text + "".join(str(r.__dict__) for r in caplog.records)
    for forbidden in (secret_text, peers.TOKEN, peers.AES_KEY, CITIZEN):
        assert forbidden not in logged
