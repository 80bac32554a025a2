"""Every case of the hostile corpus (hostile_cases.py) gets its documented status, and nothing is
stored: no raw event, follower, inquiry or message (row counts before and after)."""

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Follower
from app.inquiries.models import Inquiry, InquiryMessage
from app.webhooks.models import InboxEvent
from tests import factories
from tests.conftest import Clock
from tests.webhooks import peers
from tests.webhooks.hostile_cases import CASES, PLAIN, WECHAT, WEIBO, Case, Peers


@pytest.fixture
async def accounts(session: AsyncSession) -> None:
    owner = await factories.department(session, "hefei-office", is_supervising_office=True)
    safe = await factories.account(session, owner)
    safe.ack_enabled = True  # a nonce is stored only when there is an acknowledgement
    await factories.account(
        session,
        owner,
        code="hefei-plain",
        wechat_original_id="gh_00000000plain",
        wechat_app_id=None,
        wechat_encoding_aes_key=None,
    )
    await factories.weibo_account(
        session, owner, uid=peers.WEIBO_UID, app_secret=peers.WEIBO_SECRET
    )
    await session.flush()


async def _rows(session: AsyncSession) -> list[int]:
    counted = (InboxEvent, Follower, Inquiry, InquiryMessage)
    return [int(await session.scalar(select(func.count()).select_from(m)) or 0) for m in counted]


@pytest.mark.usefixtures("accounts")
@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_hostile_input_is_refused_and_stores_nothing(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock, case: Case
) -> None:
    sides = Peers(
        peers.WeChat(WECHAT, clock),
        peers.WeChat(PLAIN, clock, mode="plain"),
        peers.Weibo(WEIBO, clock),
        int(clock.now.timestamp()),
    )
    request = case.build(sides)
    before = await _rows(session)
    body = request.body() if callable(request.body) else request.body
    response = await client.request(request.method, request.path, content=body)  # type: ignore[arg-type]
    assert response.status_code == case.status, response.text
    assert b"success" not in response.content
    assert await _rows(session) == before


async def test_a_webhook_answers_405_for_other_methods(client: httpx.AsyncClient) -> None:
    response = await client.put(f"{WECHAT}?signature=x")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, POST"
