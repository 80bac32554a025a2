"""Intake queues routing in its own transaction; the worker runs it; a sweep re-queues leftovers."""

from datetime import datetime, timedelta

import httpx
import procrastinate
import pytest
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import idempotency, worker
from app.answers import tasks as answer_tasks
from app.comments import tasks as comment_tasks
from app.deadlines import tasks as deadline_tasks
from app.delivery import tasks as delivery_tasks
from app.departments.models import Department
from app.inquiries.models import Inquiry, InquiryEvent
from app.media import tasks as media_tasks
from app.publications import tasks as publication_tasks
from app.push import tasks as push_tasks
from app.ratings import tasks as rating_tasks
from app.routing import service as routing
from app.routing import tasks
from app.routing.tasks import SWEEP_GRACE
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
    # Issue 12, defect 1. Before: routing was queued at once on the first fragment, and the
    # first message had no urgency check of its own.
    wechat = WeChat(PATH, clock)
    await wechat.post(client, text_xml("你好", create_time=1))
    first = clock.now
    route_at = await _route_scheduled_at(session)
    clock.advance(seconds=12)
    await wechat.post(client, text_xml("着火了！", create_time=2))
    inquiry_id = (await session.scalars(select(Inquiry.id))).one()
    assert await jobs(session) == [
        ("check_urgent", "todo", {"inquiry_id": inquiry_id, "seq": 1}),
        ("route_inquiry", "todo", {"inquiry_id": inquiry_id}),
        ("check_urgent", "todo", {"inquiry_id": inquiry_id, "seq": 2}),
    ]
    # Routing waits the quiet period (20 s) after the latest fragment: the later one moved it.
    assert route_at == first + timedelta(seconds=20)
    assert await _route_scheduled_at(session) == clock.now + timedelta(seconds=20)
    # A citizen who never stops: an unrouted inquiry waits at most ten quiet periods.
    clock.advance(seconds=190)
    await wechat.post(client, text_xml("还有", create_time=3))
    assert await _route_scheduled_at(session) == first + timedelta(seconds=200)


@pytest.mark.usefixtures("account_ready")
async def test_a_fragment_while_routing_runs_never_collides_with_its_retry(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock
) -> None:
    # Review: with a queueing lock, a fragment arriving while the job ran queued a second one,
    # and the running job's retry (back to todo) then failed on the lock's unique index.
    wechat = WeChat(PATH, clock)
    await wechat.post(client, text_xml("你好", create_time=1))
    await session.execute(
        text("UPDATE procrastinate_jobs SET status = 'doing' WHERE task_name = 'route_inquiry'")
    )
    clock.advance(seconds=5)
    assert (await wechat.post(client, text_xml("在吗", create_time=2))).status_code == 200
    await session.execute(  # the running attempt fails and is retried
        text("UPDATE procrastinate_jobs SET status = 'todo' WHERE status = 'doing'")
    )
    routes = [job for job in await jobs(session) if job[0] == "route_inquiry"]
    assert [status for _, status, _ in routes] == ["todo", "todo"]  # two runs; one decides


async def _route_scheduled_at(session: AsyncSession) -> datetime:
    scheduled = await session.scalar(
        text("SELECT scheduled_at FROM procrastinate_jobs WHERE task_name = 'route_inquiry'")
    )
    assert isinstance(scheduled, datetime)
    return scheduled


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
    monkeypatch.setattr(deadline_tasks, "sessionmaker", lambda: committing_maker)
    monkeypatch.setattr(push_tasks, "sessionmaker", lambda: committing_maker)
    monkeypatch.setattr(delivery_tasks, "sessionmaker", lambda: committing_maker)
    monkeypatch.setattr(idempotency, "sessionmaker", lambda: committing_maker)
    monkeypatch.setattr(answer_tasks, "sessionmaker", lambda: committing_maker)
    monkeypatch.setattr(rating_tasks, "sessionmaker", lambda: committing_maker)
    for module in (media_tasks, publication_tasks, comment_tasks):
        monkeypatch.setattr(module, "sessionmaker", lambda: committing_maker)
    url = committing_maker.kw["bind"].url.render_as_string(hide_password=False)
    await worker.run(url, wait=False)
    # A job deferred by a job still running when the queue looked empty (check_urgent's urgent
    # advice, to be delivered) is left to the next run: a worker without wait stops at once.
    await worker.run(url, wait=False)
    async with committing_maker() as session:
        inquiry = (await session.scalars(select(Inquiry))).one()
        assert inquiry.routed_at is not None
        assert inquiry.urgent is True
        statuses = {task: status for task, status, _ in await jobs(session)}
        # The daily calendar job is deferred too when the worker starts within minutes of its slot.
        assert statuses.pop("keep_calendar", "succeeded") == "succeeded"
        assert statuses.pop("purge_idempotency_keys", "succeeded") == "succeeded"  # hourly
        assert statuses.pop("purge_answer_attempts", "succeeded") == "succeeded"  # hourly
        assert statuses.pop("remind_ratings", "succeeded") == "succeeded"  # hourly
        assert statuses.pop("poll_comments", "succeeded") == "succeeded"  # every 10 min
        assert statuses.pop("recover_media", "succeeded") == "succeeded"  # every 10 min
        assert statuses.pop("callbacks_overdue", "succeeded") == "succeeded"  # every 10 min
        assert statuses.pop("pull_publications", "succeeded") == "succeeded"  # daily
        assert statuses.pop("send_holding_replies", "succeeded") == "succeeded"  # every 5 min
        # The worker also deferred its periodic sweep on start.
        assert statuses == {
            "route_inquiry": "succeeded",
            "check_urgent": "succeeded",
            "sweep_unrouted": "succeeded",
            "sweep_deadlines": "succeeded",
            "sweep_push": "succeeded",
            "recover_deliveries": "succeeded",
            # The urgent advice's delivery: this account has no AppSecret, a visible failure.
            "deliver_reply": "succeeded",
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
        assert await tasks.retry_stalled(app.job_manager) == 2
        assert await tasks.retry_stalled(app.job_manager) == 0
    async with committing_maker() as session:
        assert [(task, status) for task, status, _ in await jobs(session)] == [
            ("check_urgent", "todo"),
            ("route_inquiry", "todo"),
        ]


@pytest.mark.committing
async def test_routing_that_fails_every_attempt_becomes_a_recorded_fallback(
    committed_client: httpx.AsyncClient,
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Before: the job retried, then failed, then the sweep queued it again, forever; the
    # inquiry stayed invisible to every department.
    await WeChat(PATH, clock).post(committed_client, text_xml("我要咨询社保", create_time=1))

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("routing rules unreadable")

    monkeypatch.setattr(routing, "decide", broken)
    monkeypatch.setattr(tasks, "sessionmaker", lambda: committing_maker)
    url = committing_maker.kw["bind"].url.render_as_string(hide_password=False)
    async with committing_maker.begin() as session:  # four attempts failed already
        await session.execute(text("UPDATE procrastinate_jobs SET attempts = 3"))
    await worker.run(url, wait=False)  # the fourth attempt fails and is scheduled again
    async with committing_maker() as session:
        assert await _route_job_status(session) == "todo"
        assert (await session.scalars(select(Inquiry))).one().routed_at is None
        await session.execute(text("UPDATE procrastinate_jobs SET scheduled_at = now()"))
        await session.commit()
    await worker.run(url, wait=False)  # the fifth and last
    async with committing_maker() as session:
        inquiry = (await session.scalars(select(Inquiry))).one()
        holder = await session.get_one(Department, inquiry.department_id)
        assert holder.code == "hefei-office"
        assert inquiry.status == "assigned"
        assert "routing failed after 5 attempts: RuntimeError" in inquiry.routing_explanation
        routed = (
            await session.scalars(select(InquiryEvent).where(InquiryEvent.action == "routed"))
        ).one()
        assert routed.details["routing_failed"] == "RuntimeError: routing rules unreadable"
        assert await _route_job_status(session) == "succeeded"


async def _route_job_status(session: AsyncSession) -> str:
    return str(
        await session.scalar(
            text("SELECT status FROM procrastinate_jobs WHERE task_name = 'route_inquiry'")
        )
    )


async def test_failing_jobs_back_off() -> None:
    waits = [
        tasks.BACKOFF.get_retry_decision(exception=RuntimeError(), job=_job(attempts))
        for attempts in range(5)
    ]
    delays = [round((w.retry_at - waits[0].retry_at).total_seconds()) if w else None for w in waits]
    assert [w is not None for w in waits] == [True, True, True, True, False]
    assert delays[1] - delays[0] >= 10  # 4, 16, 64, 256 s: growing, not every minute


def _job(attempts: int) -> procrastinate.jobs.Job:
    return procrastinate.jobs.Job(
        id=1, queue="routing", lock=None, queueing_lock=None, task_name="t", attempts=attempts
    )


async def test_sweep_runs_an_urgency_check_again_when_its_job_failed(
    session: AsyncSession,
) -> None:
    owner = await factories.department(session, "hefei-office", is_supervising_office=True)
    account = await factories.account(session, owner)
    inquiry = await factories.inquiry(session, account, content="你好")
    await routing.route(session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=["着火"])
    await factories.inquiry(session, account, content="楼道里着火了")  # appended: seq 2
    await session.execute(text("UPDATE procrastinate_jobs SET status = 'failed'"))
    later = inquiry.received_at + timedelta(minutes=5)
    assert await routing.requeue_urgent_checks(session, now=later, grace=SWEEP_GRACE) == 1
    assert await routing.requeue_urgent_checks(session, now=later, grace=SWEEP_GRACE) == 0
    assert (await jobs(session))[-1] == (
        "check_urgent",
        "todo",
        {"inquiry_id": inquiry.id, "seq": 2},
    )
    assert await routing.check_urgent(
        session, inquiry_id=inquiry.id, seq=2, keywords=["着火"], now=later
    )
    assert await routing.requeue_urgent_checks(session, now=later, grace=SWEEP_GRACE) == 0


@pytest.mark.committing
async def test_metrics_count_failed_and_stuck_jobs_by_task(
    committed_client: httpx.AsyncClient,
    committing_maker: async_sessionmaker[AsyncSession],
    clock: Clock,
) -> None:
    wechat = WeChat(PATH, clock)
    await wechat.post(committed_client, text_xml("你好", create_time=1))
    await wechat.post(committed_client, text_xml("在吗", create_time=2))
    async with committing_maker.begin() as session:
        await session.execute(
            text(
                "UPDATE procrastinate_jobs SET status = 'failed' WHERE task_name = 'route_inquiry'"
            )
        )
        await session.execute(
            text(
                "UPDATE procrastinate_jobs SET scheduled_at = now() - interval '1 hour'"
                " WHERE task_name = 'check_urgent' AND args ->> 'seq' = '2'"
            )
        )
    body = (await committed_client.get("/metrics")).text
    assert 'govinbox_jobs{state="failed",task="route_inquiry"} 1.0' in body
    assert 'govinbox_jobs{state="stuck",task="check_urgent"} 1.0' in body


async def test_reference_numbers_widen_past_a_million(session: AsyncSession) -> None:
    # Before: lpad() cut "1000000" to "100000"; the next inquiries collided and failed.
    owner = await factories.department(session, "hefei-office", is_supervising_office=True)
    account = await factories.account(session, owner)
    await session.execute(text("SELECT setval('inquiry_reference_wechat', 999998)"))
    references = [
        (await factories.inquiry(session, account, citizen_id=f"o_citizen_{n}")).reference
        for n in range(3)
    ]
    assert references == ["WX20261124-999999", "WX20261124-1000000", "WX20261124-1000001"]
