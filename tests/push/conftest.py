"""A receiver for push notifications (a tiny HTTP server on 127.0.0.1), and a committed city:
the office, two departments, an account, and a routing rule that sends 社保 to hefei-hrss."""

import asyncio
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import idempotency, worker
from app.accounts.models import Account
from app.answers import tasks as answer_tasks
from app.comments import tasks as comment_tasks
from app.deadlines import tasks as deadline_tasks
from app.delivery import tasks as delivery_tasks
from app.inquiries.models import Inquiry
from app.media import tasks as media_tasks
from app.publications import tasks as publication_tasks
from app.push import service as push
from app.push import tasks as push_tasks
from app.ratings import tasks as rating_tasks
from app.routing import service as routing
from app.routing import tasks as routing_tasks
from app.routing.schemas import RoutingRuleCreate
from tests import factories
from tests.conftest import ADMIN_TOKEN, Clock, make_client

# Never in a notification: what the citizen wrote.
CONTENT = "社保断缴了怎么补缴？我的身份证号是340104199001011234"


@dataclass
class Notification:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def signed_with(self, secret: str) -> bool:
        """Verified as a receiver would: HMAC-SHA256 over "<timestamp>.<body>"."""
        timestamp = self.headers["x-govinbox-timestamp"]
        expected = hmac.new(
            secret.encode(), f"{timestamp}.".encode() + self.body, hashlib.sha256
        ).hexdigest()
        return hmac.compare_digest(self.headers["x-govinbox-signature"], f"sha256={expected}")


@dataclass
class Receiver:
    """Answers every POST with `status` and keeps what it was sent."""

    port: int = 0
    status: int = 200
    received: list[Notification] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def to(self, path: str) -> list[Notification]:
        return [n for n in self.received if n.path == path]

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        path = head[0].split(" ")[1]
        headers = {
            name.strip().lower(): value.strip()
            for name, value in (line.split(":", 1) for line in head[1:] if line)
        }
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.received.append(Notification(path, headers, body))
        writer.write(
            f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
        )
        await writer.drain()
        writer.close()
        await writer.wait_closed()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    server = await asyncio.start_server(receiver.handle, "127.0.0.1", 0)
    receiver.port = server.sockets[0].getsockname()[1]
    async with server:
        yield receiver


@pytest.fixture
def now(clock: Clock) -> datetime:
    """Real time: the worker's deadline sweep reads the real clock, and must find nothing due."""
    clock.now = datetime.now(UTC)
    return clock.now


@pytest.fixture
async def city(committing_maker: async_sessionmaker[AsyncSession], now: datetime) -> None:
    async with committing_maker.begin() as session:
        await factories.department(session, "hefei-office", is_supervising_office=True)
        await factories.department(session, "hefei-hrss")
        await factories.department(session, "hefei-urban")
        press = await factories.department(session, "hefei-press")
        await factories.account(session, press)
        await routing.create_rule(
            session,
            data=RoutingRuleCreate(
                name="social-insurance",
                priority=1,
                keywords=["社保"],
                department_code="hefei-hrss",
                explanation="社保缴费问题属于市人社局职责",
            ),
        )


@pytest.fixture
async def admin_api(
    committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(committing_maker, clock) as client:
        client.headers["Authorization"] = f"Bearer {ADMIN_TOKEN}"
        yield client


async def register(admin: httpx.AsyncClient, code: str, url: str) -> str:
    """Register `url` for the department; returns the secret (shown once)."""
    response = await admin.post(f"/api/v1/admin/departments/{code}/push", json={"url": url})
    assert response.status_code == 201, response.text
    return str(response.json()["secret"])


async def new_inquiry(
    maker: async_sessionmaker[AsyncSession],
    now: datetime,
    *,
    citizen: str = "o_citizen_1",
    content: str = CONTENT,
) -> Inquiry:
    """A message as intake stores it, committed: a new inquiry, not yet routed (its routing job
    is left out, so the test decides when routing happens), or the citizen's open one."""
    async with maker.begin() as session:
        account = (await session.scalars(select(Account))).one()
        inquiry = await factories.inquiry(
            session, account, content=content, citizen_id=citizen, received_at=now
        )
        await session.execute(
            text(
                "DELETE FROM procrastinate_jobs"
                " WHERE task_name IN ('route_inquiry', 'check_urgent') AND status = 'todo'"
            )
        )
    return inquiry


async def route(maker: async_sessionmaker[AsyncSession], inquiry: Inquiry, now: datetime) -> None:
    async with maker.begin() as session:
        assert await routing.route(session, inquiry_id=inquiry.id, now=now, keywords=[])


async def current_xact(session: AsyncSession) -> str:
    return str(await session.scalar(text("SELECT pg_current_xact_id()::text")))


async def horizon_reaches(maker: async_sessionmaker[AsyncSession], xact: str) -> None:
    """Wait until every transaction older than `xact` has ended. The horizon is the server's:
    other tests on it (their rolled-back transactions) hold it back for a while."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while True:
        async with maker() as session:
            if await session.scalar(
                text("SELECT pg_snapshot_xmin(pg_current_snapshot()) >= CAST(:xact AS xid8)"),
                {"xact": xact},
            ):
                return
        assert loop.time() < deadline, "a transaction elsewhere on the server stays open"
        await asyncio.sleep(0.05)


async def settle(maker: async_sessionmaker[AsyncSession]) -> None:
    """Wait until everything committed so far is past the horizon."""
    async with maker.begin() as session:
        mark = await current_xact(session)
    await horizon_reaches(maker, str(int(mark) + 1))


# The sweep as the tests run it, by hand (`work` keeps the worker's own minute sweep out).
queue_notifications = push.queue_notifications


async def sweep(maker: async_sessionmaker[AsyncSession]) -> int:
    """Queue notifications once everything committed so far is past the horizon."""
    await settle(maker)
    return await sweep_now(maker)


async def sweep_now(maker: async_sessionmaker[AsyncSession]) -> int:
    async with maker.begin() as session:
        return await queue_notifications(session)


async def work(
    maker: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
    *,
    minute_sweep: bool = False,
) -> None:
    """The worker runs what is due now (the deliveries queued), then stops. Its minute sweep
    (`sweep_push`, queued when it starts) finds nothing unless `minute_sweep`, so a test decides
    when notifications are queued."""
    for tasks in (
        routing_tasks,
        deadline_tasks,
        push_tasks,
        delivery_tasks,
        idempotency,
        answer_tasks,
        rating_tasks,
        media_tasks,
        publication_tasks,
        comment_tasks,
    ):
        monkeypatch.setattr(tasks, "sessionmaker", lambda: maker)

    async def nothing(session: AsyncSession) -> int:
        return 0

    monkeypatch.setattr(
        push, "queue_notifications", queue_notifications if minute_sweep else nothing
    )
    await worker.run(maker.kw["bind"].url.render_as_string(hide_password=False), wait=False)


async def deliveries(session: AsyncSession) -> list[tuple[str, dict[str, Any]]]:
    rows = await session.execute(
        text(
            "SELECT status, args FROM procrastinate_jobs WHERE task_name = 'deliver_push'"
            " ORDER BY id"
        )
    )
    return [(row.status, row.args) for row in rows]
