"""A worker killed in the middle of a platform call (issue 15): the fake WeChat holds the send
open, the worker process gets SIGKILL, and the delivery becomes `uncertain`, never sent again;
the fake counted exactly one request."""

import asyncio
import secrets
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

import app.models  # noqa: F401  (every model, so the mappers configure)
from app.delivery import service, tasks
from app.delivery.models import Delivery, DeliveryStatus
from app.embedded import create_database, drop_database
from tests import factories
from tests.conftest import Clock, make_client
from tests.delivery.conftest import OPENID, arrive
from tests.delivery.test_outbox import ANSWER
from tests.fakes.wechat_api import FakeWeChat, serve
from tests.inquiries.test_work import _city, auth
from tests.operations.harness import Processes

pytestmark = pytest.mark.processes


@pytest.fixture
def processes(server_url: str, tmp_path: Path) -> Iterator[Processes]:
    name = f"govinbox_death_{secrets.token_hex(4)}"
    running = Processes(tmp_path, create_database(server_url, name))
    yield running
    running.stop()
    drop_database(server_url, name)


async def _status(maker: async_sessionmaker[AsyncSession], delivery_id: int) -> DeliveryStatus:
    async with maker() as session:
        return (await session.get_one(Delivery, delivery_id)).status


async def test_a_worker_killed_mid_send_leaves_an_uncertain_delivery_sent_once(
    processes: Processes, monkeypatch: pytest.MonkeyPatch
) -> None:
    processes.run("-m", "alembic", "upgrade", "head")
    engine = create_async_engine(processes.env["DATABASE_URL"])
    maker = async_sessionmaker(engine, expire_on_commit=False)
    clock = Clock()
    clock.now = datetime.now(UTC).replace(microsecond=0)
    async with maker() as session:
        office, hrss, _ = await _city(session)
        await factories.account(session, office, wechat_app_secret="s" * 32)
        inquiry = await arrive(session, "社保怎么办", OPENID, clock.now)
        key = auth(await factories.api_key(session, hrss))
        await session.commit()
    async with make_client(maker, clock) as client:
        posted = await client.post(
            f"/api/v1/inquiries/{inquiry.reference}/replies",
            json={"purpose": "answer", "text": ANSWER},
            headers=key,
        )
        assert posted.status_code == 201, posted.text
    async with maker() as session:
        delivery_id = (await session.scalars(select(Delivery.id))).one()

    with serve(FakeWeChat(gate=threading.Event())) as fake:
        assert fake.gate is not None
        worker = processes.start("worker", "-m", "app.worker", WECHAT_API_BASE=fake.url)
        deadline = time.monotonic() + 60
        while fake.requests == 0:  # the worker is inside the call, `sending` committed
            assert time.monotonic() < deadline, processes.log("worker")[-3000:]
            assert worker.poll() is None, processes.log("worker")[-3000:]
            await asyncio.sleep(0.1)
        assert await _status(maker, delivery_id) is DeliveryStatus.sending
        processes.kill("worker")
        fake.gate.set()  # the platform answers, to nobody
        # The job run again (procrastinate re-queues a dead worker's job): no second send.
        monkeypatch.setattr(tasks, "sessionmaker", lambda: maker)
        await tasks.deliver(delivery_id)
        async with maker.begin() as session:
            monkeypatch.setattr(service.settings(), "delivery_sending_timeout_seconds", 0.1)
            await asyncio.sleep(0.2)
            assert await service.recover(session, now=datetime.now(UTC)) == 1
        assert await _status(maker, delivery_id) is DeliveryStatus.uncertain
        await tasks.deliver(delivery_id)
        assert fake.requests == 1
        [sent] = fake.sends  # exactly one, the answer (the first text: with the query code)
        assert sent["touser"] == OPENID
        assert sent["text"]["content"].startswith(ANSWER + "\n查询码")
    await engine.dispose()
