"""The delivery tests' shared set-up: the fake WeChat on loopback, and a routed inquiry of a WeChat
account with an AppSecret and its department's key."""

from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.accounts.models import Account
from app.delivery import tasks
from app.inquiries.models import Inquiry
from app.routing import service as routing
from app.routing import tasks as routing_tasks
from app.settings import settings
from tests import factories
from tests.conftest import Clock, make_client
from tests.fakes.wechat_api import FakeWeChat, serve
from tests.fakes.weibo_api import FakeWeibo
from tests.inquiries.test_work import _city, auth

OPENID = "o_citizen_1"


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWeChat]:
    with serve(FakeWeChat()) as running:
        monkeypatch.setattr(settings(), "wechat_api_base", running.url)
        yield running


@pytest.fixture
def fake_weibo(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWeibo]:
    """The fake Weibo, standing for every Weibo host the service calls."""
    with serve(FakeWeibo()) as running:
        for base in ("weibo_api_base", "weibo_open_api_base", "weibo_upload_api_base"):
            monkeypatch.setattr(settings(), base, running.url)
        yield running


@pytest.fixture
async def city(
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str], str]]:
    """A routed inquiry from a WeChat account with an AppSecret, and its department's key; the
    delivery job's transactions use the test's database."""
    monkeypatch.setattr(tasks, "sessionmaker", lambda: committing_maker)
    monkeypatch.setattr(routing_tasks, "sessionmaker", lambda: committing_maker)
    # The delivery job counts the window in real time: the citizen writes now.
    clock.now = datetime.now(UTC).replace(microsecond=0)
    async with committing_maker() as session:
        office, hrss, _ = await _city(session)
        await factories.account(session, office, wechat_app_secret="s" * 32)
        inquiry = await arrive(session, "社保怎么办", OPENID, clock.now)
        key = auth(await factories.api_key(session, hrss))
        await session.commit()
    async with make_client(committing_maker, clock) as client:
        yield client, key, inquiry.reference


async def arrive(session: AsyncSession, content: str, citizen: str, now: datetime) -> Inquiry:
    """A citizen's message, routed (to hefei-hrss for 社保), received `now`."""
    account = await session.scalar(select(Account))
    assert account is not None
    inquiry = await factories.inquiry(
        session, account, content=content, citizen_id=citizen, received_at=now
    )
    assert await routing.route(session, inquiry_id=inquiry.id, now=now, keywords=[])
    return inquiry
