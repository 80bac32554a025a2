"""Races with real commits: each test has its own database and the app its own connections."""

import asyncio

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.inquiries.models import Inquiry, InquiryMessage
from app.webhooks.models import InboxEvent
from tests.conftest import Clock
from tests.webhooks.peers import WeChat, text_xml

PATH = "/webhooks/wechat/hefei-wechat"
pytestmark = pytest.mark.committing


async def counts(maker: async_sessionmaker[AsyncSession]) -> tuple[int, int, int]:
    async with maker() as session:
        return (
            int(await session.scalar(select(func.count()).select_from(InboxEvent)) or 0),
            int(await session.scalar(select(func.count()).select_from(Inquiry)) or 0),
            int(await session.scalar(select(func.count()).select_from(InquiryMessage)) or 0),
        )


async def test_the_same_message_four_times_at_once(
    committed_client: httpx.AsyncClient,
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> None:
    wechat = WeChat(PATH, clock)
    xml = text_xml("公司拖欠工资两个月了，老板不接电话", create_time=int(clock.now.timestamp()))
    # Each delivery with its own nonce, as WeChat's retries would come.
    responses = await asyncio.gather(
        *(wechat.post(committed_client, xml, nonce=str(n)) for n in range(4))
    )
    assert [r.status_code for r in responses] == [200] * 4
    assert len({r.content for r in responses}) == 1
    assert await counts(committing_maker) == (1, 1, 1)


async def test_two_messages_of_one_citizen_at_once_open_one_inquiry(
    committed_client: httpx.AsyncClient,
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> None:
    wechat = WeChat(PATH, clock)
    now = int(clock.now.timestamp())
    for _ in range(3):  # a few rounds, since a race is a matter of luck
        responses = await asyncio.gather(
            *(
                wechat.post(committed_client, text_xml(text, create_time=now))
                for text in ("你好", "我想问社保", "怎么补缴")
            )
        )
        assert [r.status_code for r in responses] == [200] * 3
    events, inquiries, messages = await counts(committing_maker)
    assert (events, inquiries, messages) == (9, 1, 9)
    acknowledged = [r for r in responses if r.content != b"success"]
    assert len(acknowledged) == 0  # the acknowledgement went out once, in the first round
