"""Intake queues routing in its own transaction; the worker runs it; a sweep re-queues leftovers."""

from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import worker
from app.inquiries.models import Inquiry, InquiryEvent
from app.routing import service as routing
from app.routing import tasks
from tests import factories
from tests.conftest import Clock
from tests.webhooks.peers import WeChat, text_xml

PATH = "/webhooks/wechat/hefei-wechat"


async def jobs(session: AsyncSession) -> list[tuple[str, str, dict[str, int]]]:
    rows = await session.execute(
        text("SELECT task_name, status, args FROM procrastinate_jobs ORDER BY id")
    )
    return [(row.task_name, row.status, row.args) for row in rows]


@pytest.fixture
async def account_ready(session: AsyncSession) -> None:
    owner = await factories.department(session, "hefei-office", is_supervising_office=True)
    await factories.account(session, owner)


@pytest.mark.usefixtures("account_ready")
async def test_new_inquiry_queues_routing_and_a_later_message_an_urgency_check(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock
) -> None:
    wechat = WeChat(PATH, clock)
    await wechat.post(client, text_xml("你好", create_time=1))
    await wechat.post(client, text_xml("着火了！", create_time=2))
    inquiry_id = (await session.scalars(select(Inquiry.id))).one()
    assert await jobs(session) == [
        ("route_inquiry", "todo", {"inquiry_id": inquiry_id}),
        ("check_urgent", "todo", {"inquiry_id": inquiry_id, "seq": 2}),
    ]


@pytest.mark.usefixtures("account_ready")
async def test_a_rejected_request_queues_nothing(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock
) -> None:
    wechat = WeChat(PATH, clock, app_id="wx0000000000000000")
    assert (await wechat.post(client, text_xml("你好", create_time=1))).status_code == 403
    assert await jobs(session) == []


async def test_routing_is_decided_once_and_flags_urgent(session: AsyncSession) -> None:
    owner = await factories.department(session, "hefei-office", is_supervising_office=True)
    account = await factories.account(session, owner)
    inquiry = await factories.inquiry(session, account, content="着火了！长江路有个仓库在冒大烟")
    keywords = ["着火", "冒大烟"]
    assert await routing.route(
        session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=keywords
    )
    assert not await routing.route(
        session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=keywords
    )
    await session.refresh(inquiry)
    # No routing rule yet: the account's owning department gets it, and that is recorded.
    assert (inquiry.urgent, inquiry.department_id, inquiry.routing_rule_id) == (
        True,
        owner.id,
        None,
    )
    assert inquiry.routing_explanation == routing.fallback_explanation(owner)
    actions = (
        await session.scalars(
            select(InquiryEvent.action)
            .where(InquiryEvent.inquiry_id == inquiry.id)
            .order_by(InquiryEvent.id)
        )
    ).all()
    assert actions == ["created", "flagged_urgent", "routed", "deadline_set", "status_changed"]
    flagged = (
        await session.scalars(select(InquiryEvent).where(InquiryEvent.action == "flagged_urgent"))
    ).one()
    assert flagged.details["keywords"] == ["着火", "冒大烟"]


async def test_sweep_requeues_inquiries_whose_job_was_lost(session: AsyncSession) -> None:
    owner = await factories.department(session, "hefei-office", is_supervising_office=True)
    account = await factories.account(session, owner)
    inquiry = await factories.inquiry(session, account)
    await session.execute(text("UPDATE procrastinate_jobs SET status = 'failed'"))
    later = inquiry.received_at + timedelta(minutes=5)
    assert (
        await routing.requeue_unrouted(session, now=inquiry.received_at, grace=timedelta(minutes=2))
        == 0
    )
    assert await routing.requeue_unrouted(session, now=later, grace=timedelta(minutes=2)) == 1
    assert (
        await routing.requeue_unrouted(session, now=later, grace=timedelta(minutes=2)) == 0
    )  # already queued
    assert (await jobs(session))[-1] == ("route_inquiry", "todo", {"inquiry_id": inquiry.id})


@pytest.mark.committing
async def test_the_worker_runs_the_queued_jobs(
    committed_client: httpx.AsyncClient,
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wechat = WeChat(PATH, clock)
    await wechat.post(committed_client, text_xml("你好", create_time=1))
    await wechat.post(committed_client, text_xml("路口发生车祸，有人受伤", create_time=2))
    monkeypatch.setattr(tasks, "sessionmaker", lambda: committing_maker)
    url = committing_maker.kw["bind"].url.render_as_string(hide_password=False)
    await worker.run(url, wait=False)
    async with committing_maker() as session:
        inquiry = (await session.scalars(select(Inquiry))).one()
        assert inquiry.routed_at is not None
        assert inquiry.urgent is True
        statuses = {task: status for task, status, _ in await jobs(session)}
        # The worker also deferred its periodic sweep on start.
        assert statuses == {
            "route_inquiry": "succeeded",
            "check_urgent": "succeeded",
            "sweep_unrouted": "succeeded",
            "sweep_deadlines": "succeeded",
        }


@pytest.mark.committing
async def test_jobs_of_a_dead_worker_are_queued_again(
    committed_client: httpx.AsyncClient,
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> None:
    await WeChat(PATH, clock).post(committed_client, text_xml("你好", create_time=1))
    async with committing_maker.begin() as session:
        # A worker that took the job and then died: its heartbeat stopped an hour ago.
        await session.execute(
            text(
                "WITH dead AS (INSERT INTO procrastinate_workers (last_heartbeat)"
                " VALUES (now() - interval '1 hour') RETURNING id)"
                " UPDATE procrastinate_jobs SET status = 'doing', worker_id = (SELECT id FROM dead)"
            )
        )
    url = committing_maker.kw["bind"].url.render_as_string(hide_password=False)
    async with worker.opened(url) as app:
        assert await tasks.retry_stalled(app.job_manager) == 1
        assert await tasks.retry_stalled(app.job_manager) == 0
    async with committing_maker() as session:
        assert [(task, status) for task, status, _ in await jobs(session)] == [
            ("route_inquiry", "todo")
        ]
