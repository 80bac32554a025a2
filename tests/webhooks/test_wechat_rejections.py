"""Every refused WeChat request: the right status, never `success`, never a 500, nothing stored."""

import base64
import logging
import time
from collections.abc import AsyncIterator
from urllib.parse import parse_qsl, urlencode

import httpx
import pytest
import xmltodict
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app import db
from app.accounts.models import Account
from app.inquiries.models import Inquiry
from app.main import create_app
from app.settings import Settings, current_settings
from app.webhooks import wechat_crypto
from app.webhooks.models import InboxEvent
from tests import factories
from tests.conftest import Clock
from tests.webhooks import peers
from tests.webhooks.peers import WeChat, message_xml, text_xml

PATH = "/webhooks/wechat/hefei-wechat"
pytestmark = pytest.mark.usefixtures("account")

XXE = b"""<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<xml><ToUserName>gh_10f6c3c3ac5a</ToUserName><FromUserName>o1</FromUserName><CreateTime>1</CreateTime>
<MsgType>text</MsgType><Content>&xxe;</Content><MsgId>1</MsgId></xml>"""
LAUGHS = b"""<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY a "ha"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">
<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;">]><xml><Content>&d;</Content></xml>"""


@pytest.fixture
async def account(session: AsyncSession) -> Account:
    owner = await factories.department(session, "hefei-office", is_supervising_office=True)
    return await factories.account(session, owner)


@pytest.fixture
def wechat(clock: Clock, account: Account) -> WeChat:
    return WeChat(PATH, clock)


async def nothing_stored(session: AsyncSession) -> bool:
    events = await session.scalar(select(func.count()).select_from(InboxEvent))
    inquiries = await session.scalar(select(func.count()).select_from(Inquiry))
    return events == 0 and inquiries == 0


def resign(query: str, **changes: str) -> str:
    params = dict(parse_qsl(query)) | changes
    return urlencode(params)


async def post(client: httpx.AsyncClient, query: str, body: bytes) -> httpx.Response:
    return await client.post(f"{PATH}?{query}", content=body)


def encrypted_body(encrypted: str) -> bytes:
    return f"<xml><ToUserName><![CDATA[{peers.ORIGINAL_ID}]]></ToUserName><Encrypt><![CDATA[{encrypted}]]></Encrypt></xml>".encode()


def query_for(wechat: WeChat, encrypted: str, timestamp: str, nonce: str = "1") -> str:
    return urlencode(
        {
            "signature": peers.sign(peers.TOKEN, timestamp, nonce),
            "timestamp": timestamp,
            "nonce": nonce,
            "encrypt_type": "aes",
            "msg_signature": peers.sign(peers.TOKEN, timestamp, nonce, encrypted),
        }
    )


async def test_bad_signature(
    client: httpx.AsyncClient,
    session: AsyncSession,
    wechat: WeChat,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    query, body = wechat.request(text_xml("你好", create_time=1))
    response = await post(client, resign(query, signature="0" * 40), body)
    assert response.status_code == 403
    assert b"success" not in response.content
    assert await nothing_stored(session)
    assert any(getattr(r, "reason", None) == "bad_signature" for r in caplog.records)


async def test_signature_over_other_parameters(
    client: httpx.AsyncClient, session: AsyncSession, wechat: WeChat
) -> None:
    query, body = wechat.request(text_xml("你好", create_time=1))
    params = dict(parse_qsl(query))
    # Passing the plain signature where msg_signature belongs (wechatpy issue #739).
    assert (
        await post(client, resign(query, msg_signature=params["signature"]), body)
    ).status_code == 403
    # A signature computed over another nonce.
    assert (await post(client, resign(query, nonce="999"), body)).status_code == 403
    assert await nothing_stored(session)


async def test_stale_timestamp(
    client: httpx.AsyncClient, session: AsyncSession, wechat: WeChat, clock: Clock
) -> None:
    query, body = wechat.request(text_xml("你好", create_time=1))
    clock.advance(seconds=301)
    assert (await post(client, query, body)).status_code == 403
    assert await nothing_stored(session)


async def test_wrong_app_id(client: httpx.AsyncClient, session: AsyncSession, clock: Clock) -> None:
    other = WeChat(PATH, clock, app_id="wx0000000000000000")
    response = await other.post(client, text_xml("你好", create_time=1))
    assert response.status_code == 403
    assert await nothing_stored(session)


async def test_message_for_another_account(
    client: httpx.AsyncClient, session: AsyncSession, wechat: WeChat
) -> None:
    xml = text_xml("你好", create_time=1).replace(peers.ORIGINAL_ID, "gh_000000000000")
    assert (await wechat.post(client, xml)).status_code == 403
    assert await nothing_stored(session)


@pytest.mark.parametrize(
    "hostile", [XXE, LAUGHS, b"<xml><unclosed></xml>", b"not xml", b"<!DOCTYPE x><xml/>"]
)
async def test_hostile_or_malformed_plain_body(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock, hostile: bytes, account: Account
) -> None:
    account.wechat_encoding_aes_key = None  # plain mode
    await session.flush()
    wechat = WeChat(PATH, clock, mode="plain")
    query, _ = wechat.request(text_xml("你好", create_time=1))
    response = await post(client, query, hostile)
    assert response.status_code == 400
    assert b"root:" not in response.content
    assert await nothing_stored(session)


async def test_hostile_xml_inside_the_ciphertext(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock, wechat: WeChat
) -> None:
    timestamp = str(int(clock.now.timestamp()))
    encrypted = wechat_crypto.encrypt(
        XXE, key=wechat_crypto.aes_key(peers.AES_KEY), app_id=peers.APP_ID
    )
    response = await post(
        client, query_for(wechat, encrypted, timestamp), encrypted_body(encrypted)
    )
    assert response.status_code == 400
    assert await nothing_stored(session)


async def test_truncated_ciphertext_and_bad_padding(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock, wechat: WeChat
) -> None:
    timestamp = str(int(clock.now.timestamp()))
    _, body = wechat.request(text_xml("你好", create_time=1))
    encrypted = xmltodict.parse(body)["xml"]["Encrypt"]
    raw = base64.b64decode(encrypted)
    truncated = base64.b64encode(raw[:-5]).decode()
    # Flip the last ciphertext block so the padding decrypts to garbage.
    tampered = base64.b64encode(raw[:-16] + bytes(16)).decode()
    for bad in (truncated, tampered, "!!!not-base64!!!"):
        response = await post(client, query_for(wechat, bad, timestamp), encrypted_body(bad))
        assert response.status_code == 400, bad
    assert await nothing_stored(session)


async def test_oversize_body(
    client: httpx.AsyncClient, session: AsyncSession, wechat: WeChat
) -> None:
    query, _ = wechat.request(text_xml("你好", create_time=1))
    response = await post(client, query, b"<xml>" + b"x" * 70_000 + b"</xml>")
    assert response.status_code == 413
    assert await nothing_stored(session)


async def test_missing_parameters(
    client: httpx.AsyncClient, session: AsyncSession, wechat: WeChat
) -> None:
    _, body = wechat.request(text_xml("你好", create_time=1))
    assert (await post(client, "timestamp=1", body)).status_code == 400
    assert await nothing_stored(session)


async def test_rejections_are_counted(client: httpx.AsyncClient, wechat: WeChat) -> None:
    query, body = wechat.request(text_xml("你好", create_time=1))
    await post(client, resign(query, signature="0" * 40), body)
    metrics = (await client.get("/metrics")).text
    assert 'govinbox_webhook_rejections_total{platform="wechat",reason="bad_signature"}' in metrics


@pytest.fixture
async def unreachable_client(clock: Clock) -> AsyncIterator[httpx.AsyncClient]:
    # The real webhook pool, pointed at a port where nothing listens.
    pool: AsyncConnectionPool = AsyncConnectionPool(
        "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1", min_size=1, open=False
    )
    await pool.open(wait=False)
    app = create_app()
    app.dependency_overrides[db.webhook_connections] = lambda: pool
    app.dependency_overrides[current_settings] = lambda: Settings(webhook_deadline_seconds=1)
    from app.clock import utcnow

    app.dependency_overrides[utcnow] = lambda: clock.now
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as client:
        yield client
    await pool.close()


async def test_database_down_is_503_so_the_platform_retries(
    unreachable_client: httpx.AsyncClient, wechat: WeChat, caplog: pytest.LogCaptureFixture
) -> None:
    started = time.monotonic()
    response = await wechat.post(unreachable_client, text_xml("你好", create_time=1))
    assert time.monotonic() - started < 2.5  # WEBHOOK_DEADLINE_SECONDS is 1 here, not 5 s
    assert response.status_code == 503
    assert b"success" not in response.content
    assert response.headers["retry-after"] == "5"
    assert any(getattr(r, "reason", None) == "no_connection" for r in caplog.records)


async def test_plaintext_is_refused_for_an_encrypted_account(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock
) -> None:
    # Plain mode signs no part of the body; a leaked query string must not carry a forged one.
    plain = WeChat(PATH, clock, mode="plain")
    response = await plain.post(client, text_xml("伪造的消息", create_time=1))
    assert response.status_code == 403
    assert await nothing_stored(session)


@pytest.mark.parametrize(
    "body",
    [
        text_xml("x", sender="o" * 129, create_time=1).encode(),
        message_xml("t" * 40, create_time=1).encode(),
        message_xml("event", create_time=1, Event="E" * 70).encode(),
        text_xml("x", create_time=1).replace(">1<", ">99999999999999999999<").encode(),
        text_xml("x", create_time=1).replace(">1<", ">²<").encode(),
        text_xml("x", msg_id=1, create_time=1).replace("<MsgId>1<", "<MsgId>1x<").encode(),
        '<?xml version="1.0" encoding="ISO-8859-1"?><xml><Content>\xe9</Content></xml>'.encode(
            "latin-1"
        ),
        "<xml><Content>é</Content></xml>".encode("utf-16"),
    ],
)
async def test_crafted_bodies_with_a_valid_signature_are_400_not_500(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock, account: Account, body: bytes
) -> None:
    account.wechat_encoding_aes_key = None  # plain mode: the signature does not cover the body
    await session.flush()
    query, _ = WeChat(PATH, clock, mode="plain").request("<xml/>")
    response = await post(client, query, body)
    assert response.status_code == 400
    assert await nothing_stored(session)
