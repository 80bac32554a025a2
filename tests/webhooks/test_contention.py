"""Every webhook is answered within WEBHOOK_DEADLINE_SECONDS of its arrival, behind held locks and
a stalled table too, with the webhook path's real connection pool.

Before: each message behind one held lock waited its own 3 s (seen: 6 s and 9 s), a lock timeout
was a text 500, and a stalled table gave answers slower than the platform's 5 s.
"""

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from psycopg import errors
from psycopg_pool import AsyncConnectionPool
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import db
from app.embedded import libpq_url
from app.inquiries.models import Inquiry
from app.main import create_app
from app.settings import Settings, current_settings
from app.webhooks.models import InboxEvent
from tests import factories
from tests.conftest import Clock
from tests.webhooks.peers import WeChat, text_xml

PATH = "/webhooks/wechat/hefei-wechat"
DEADLINE = 1.5
# The answer leaves within the deadline; the margin is for scheduling on a loaded 2-core machine
# (seen: 0.86 s with two suites running at once). Before the fix each queued message waited its
# own 3 s lock timeout, so the bound still tells the two apart.
MARGIN = 1.45


@pytest.fixture
async def contended(
    committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the real webhook pool (4 connections) on a committing database."""
    async with committing_maker.begin() as session:
        owner = await factories.department(session, "hefei-office", is_supervising_office=True)
        await factories.account(session, owner)
    url = committing_maker.kw["bind"].url.render_as_string(hide_password=False)
    pool: AsyncConnectionPool = AsyncConnectionPool(
        libpq_url(url), min_size=1, max_size=4, kwargs={"autocommit": True}, open=False
    )
    await pool.open(wait=True)
    app = create_app()
    app.dependency_overrides[db.maker] = lambda: committing_maker
    app.dependency_overrides[db.webhook_connections] = lambda: pool
    app.dependency_overrides[current_settings] = lambda: Settings(webhook_deadline_seconds=DEADLINE)
    from app.clock import utcnow

    app.dependency_overrides[utcnow] = lambda: clock.now
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        yield client
    await pool.close()


async def _timed(client: httpx.AsyncClient, query: str, body: bytes) -> tuple[int, float]:
    started = time.monotonic()
    response = await client.post(f"{PATH}?{query}", content=body)
    return response.status_code, time.monotonic() - started


async def _while_held(
    maker: async_sessionmaker[AsyncSession],
    client: httpx.AsyncClient,
    lock: str,
    requests: list[tuple[str, bytes]],
) -> list[tuple[int, float]]:
    """Every request sent at once while another transaction holds `lock`."""
    async with maker() as holder:
        await holder.execute(text(lock))
        answers = await _all(client, requests)
        await holder.rollback()
    return answers


async def _all(
    client: httpx.AsyncClient, requests: list[tuple[str, bytes]]
) -> list[tuple[int, float]]:
    return list(await asyncio.gather(*(_timed(client, q, b) for q, b in requests)))


@pytest.mark.committing
async def test_messages_behind_a_held_follower_lock_each_answer_within_the_deadline(
    contended: httpx.AsyncClient, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    wechat = WeChat(PATH, clock)
    await wechat.post(contended, text_xml("你好", create_time=1))  # the citizen's follower row
    requests = [wechat.request(text_xml(f"第{n}条", create_time=2 + n)) for n in range(8)]
    answers = await _while_held(
        committing_maker, contended, "SELECT 1 FROM follower FOR UPDATE", requests
    )
    assert {status for status, _ in answers} == {503}
    assert max(elapsed for _, elapsed in answers) < DEADLINE + MARGIN, answers
    # The platform retries the same deliveries once the lock is gone: each stored once.
    again = await _all(contended, requests)
    assert {status for status, _ in again} == {200}
    async with committing_maker() as session:
        assert await session.scalar(select(func.count()).select_from(InboxEvent)) == 9


@pytest.mark.committing
async def test_a_stalled_table_and_an_exhausted_pool_answer_within_the_deadline(
    contended: httpx.AsyncClient, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    wechat = WeChat(PATH, clock)
    requests = [
        wechat.request(text_xml("你好", sender=f"o_citizen_{n:04d}", create_time=1))
        for n in range(12)  # three times the pool: most wait for a connection first
    ]
    answers = await _while_held(
        committing_maker, contended, "LOCK TABLE inbox_event IN ACCESS EXCLUSIVE MODE", requests
    )
    assert {status for status, _ in answers} == {503}
    assert max(elapsed for _, elapsed in answers) < DEADLINE + MARGIN, answers
    again = await _all(contended, requests)
    assert {status for status, _ in again} == {200}


class CountingConnections:
    """Counts the connections the webhook path asks for."""

    def __init__(self) -> None:
        self.taken = 0

    def connection(self, timeout: float | None = None) -> Any:
        self.taken += 1
        raise AssertionError("no connection may be taken before the body is in")

    async def check(self) -> None:
        pass


@pytest.mark.parametrize("platform", ["wechat", "weibo"])
async def test_a_trickled_body_is_408_before_any_connection_is_taken(
    clock: Clock, platform: str
) -> None:
    # Before: the connection was a dependency, taken before the body was read, so slow
    # unauthenticated bodies could hold every connection of the pool.
    connections = CountingConnections()
    app = create_app()
    app.dependency_overrides[db.webhook_connections] = lambda: connections
    app.dependency_overrides[current_settings] = lambda: Settings(webhook_body_timeout_seconds=0.3)

    async def trickle() -> AsyncIterator[bytes]:
        yield b"<xml>"
        await asyncio.sleep(1.0)
        yield b"</xml>"

    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.post(f"/webhooks/{platform}/any?timestamp=1", content=trickle())
    assert response.status_code == 408
    assert connections.taken == 0


async def test_a_client_that_leaves_mid_body_is_400_not_500(clock: Clock) -> None:
    app = create_app()
    app.dependency_overrides[db.webhook_connections] = CountingConnections
    sent: list[dict[str, Any]] = []
    messages = iter(
        [{"type": "http.request", "body": b"<xml>", "more_body": True}, {"type": "http.disconnect"}]
    )

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": PATH,
        "raw_path": PATH.encode(),
        "root_path": "",
        "query_string": b"timestamp=1",
        "headers": [(b"host", b"test")],
        "client": ("127.0.0.1", 1),
        "server": ("test", 80),
    }
    await app(scope, receive, send)  # type: ignore[arg-type]
    assert sent[0]["status"] == 400


def test_any_other_database_refusal_is_a_503_never_a_500() -> None:
    from app.webhooks.router import _unavailable

    refusal = _unavailable(errors.ReadOnlySqlTransaction("cannot execute INSERT in a read-only"))
    assert refusal is not None
    assert (refusal.status, refusal.reason) == (503, "database_error")
    deadlock = _unavailable(errors.DeadlockDetected("deadlock detected"))
    assert deadlock is not None
    assert deadlock.reason == "conflict"


@pytest.mark.committing
async def test_a_sweep_page_in_flight_never_holds_up_intake(
    contended: httpx.AsyncClient, committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    # Issue 11, defect 9. A sweep page that has written an alert for an inquiry holds a
    # key-share lock on its row until it commits. Before: intake locked the inquiry FOR UPDATE,
    # waited on it and answered 503 after the deadline; FOR NO KEY UPDATE does not wait.
    wechat = WeChat(PATH, clock)
    assert (await wechat.post(contended, text_xml("你好", create_time=1))).status_code == 200
    async with committing_maker() as session:
        inquiry_id = await session.scalar(select(Inquiry.id))
    alert = (  # an integer id: nothing to inject
        "INSERT INTO deadline_alert (inquiry_id, kind, level, fired_at)"  # noqa: S608
        f" VALUES ({int(inquiry_id or 0)}, 'warning', 50, now())"
    )
    [(status, seconds)] = await _while_held(
        committing_maker, contended, alert, [wechat.request(text_xml("补充一下", create_time=2))]
    )
    assert status == 200
    assert seconds < MARGIN
    async with committing_maker() as session:
        inquiry = await session.get_one(Inquiry, inquiry_id)
        assert inquiry.message_count == 2
