from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests import factories
from tests.conftest import Clock, make_client


@pytest.fixture
async def committed_client(
    committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    """The app on a database of the test's own, with a committed office and WeChat account
    (acknowledgements on): for races and the worker, which need real commits."""
    async with committing_maker.begin() as session:
        owner = await factories.department(session, "hefei-office", is_supervising_office=True)
        account = await factories.account(session, owner)
        account.ack_enabled = True
    async with make_client(committing_maker, clock) as client:
        yield client
