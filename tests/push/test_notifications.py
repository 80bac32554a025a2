"""Notifications: the sweep turns each registration's feed into one signed "poll now" at a
time; the worker delivers it with backoff; failures are the admin's to see."""

import asyncio
from datetime import UTC, datetime

import httpx
import procrastinate
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app import worker
from app.departments import service as departments
from app.push import client as push_client
from app.push import tasks as push_tasks
from app.routing import service as routing
from tests import factories
from tests.conftest import Clock, make_client
from tests.push.conftest import (
    CONTENT,
    Receiver,
    current_xact,
    deliveries,
    horizon_reaches,
    new_inquiry,
    queue_notifications,
    register,
    route,
    settle,
    sweep,
    sweep_now,
    work,
)

pytestmark = [pytest.mark.committing, pytest.mark.usefixtures("city")]

HRSS = "/api/v1/admin/departments/hefei-hrss/push"


async def test_new_work_and_left_view_are_notified_signed_and_without_text(
    committing_maker: async_sessionmaker[AsyncSession],
    admin_api: httpx.AsyncClient,
    receiver: Receiver,
    clock: Clock,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await register(admin_api, "hefei-hrss", receiver.url("/hrss"))
    # Rotated before anything was sent: notifications are signed with the new secret only.
    hrss_secret = (await admin_api.post(f"{HRSS}/secret")).json()["secret"]
    urban_secret = await register(admin_api, "hefei-urban", receiver.url("/urban"))

    inquiry = await new_inquiry(committing_maker, now)
    await route(committing_maker, inquiry, now)  # new work for hefei-hrss
    assert await sweep(committing_maker) == 1
    await work(committing_maker, monkeypatch)
    [first] = receiver.to("/hrss")
    assert first.signed_with(hrss_secret)
    assert abs(int(first.headers["x-govinbox-timestamp"]) - datetime.now(UTC).timestamp()) < 60
    assert first.headers["content-type"] == "application/json"
    assert first.json() == {
        "department": "hefei-hrss",
        "changes": [{"reference": inquiry.reference, "kinds": ["routed"]}],
        "feed": "/api/v1/inquiries/changes",
    }
    assert receiver.to("/urban") == []

    # hefei-hrss hands it to hefei-urban: it leaves hefei-hrss's view, and is urban's new work.
    async with committing_maker.begin() as session:
        hrss_key = await factories.api_key(
            session, await departments.get(session, code="hefei-hrss")
        )
    async with make_client(committing_maker, clock) as department_api:
        moved = await department_api.post(
            f"/api/v1/inquiries/{inquiry.reference}/transfer",
            json={"department_code": "hefei-urban", "note": "转hefei-urban办理"},
            headers={"Authorization": f"Bearer {hrss_key}"},
        )
    assert moved.status_code == 200, moved.text
    assert await sweep(committing_maker) == 2
    await work(committing_maker, monkeypatch)
    left = receiver.to("/hrss")[1]
    assert left.signed_with(hrss_secret)
    [[change]] = [left.json()["changes"]]
    assert change["reference"] == inquiry.reference
    # The holder's own action, then the hand-over that took it out of its view.
    assert change["kinds"] == ["transferred", "left_view"]
    [arrived] = receiver.to("/urban")
    assert arrived.signed_with(urban_secret)
    assert not arrived.signed_with(hrss_secret)
    assert arrived.json()["changes"] == [{"reference": inquiry.reference, "kinds": ["transferred"]}]

    # What the citizen wrote never travels, in a body or a header.
    for notification in receiver.received:
        assert CONTENT not in notification.body.decode()
        assert "社保" not in notification.body.decode()
        assert "社保" not in str(notification.headers)

    # Nothing new: nothing is sent again.
    assert await sweep(committing_maker) == 0
    admin_view = (await admin_api.get(HRSS)).json()
    assert admin_view["last_success_at"] is not None
    assert admin_view["consecutive_failures"] == 0


async def test_a_failing_endpoint_is_retried_then_shown_to_the_admin_and_success_clears_it(
    committing_maker: async_sessionmaker[AsyncSession],
    admin_api: httpx.AsyncClient,
    receiver: Receiver,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await register(admin_api, "hefei-hrss", receiver.url("/hrss"))
    receiver.status = 500
    await route(committing_maker, await new_inquiry(committing_maker, now), now)
    assert await sweep(committing_maker) == 1
    await work(committing_maker, monkeypatch)
    assert len(receiver.received) == 1
    async with committing_maker() as session:
        [(status, _)] = await deliveries(session)
    assert status == "todo"  # retried later, with backoff; not yet a failure to report
    assert (await admin_api.get(HRSS)).json()["last_error"] is None

    # While it is retried, nothing new is queued for the registration: one at a time, in order.
    await route(committing_maker, await new_inquiry(committing_maker, now, citizen="o_2"), now)
    assert await sweep(committing_maker) == 0

    async with committing_maker.begin() as session:  # the backoff has passed, attempts left: 1
        await session.execute(
            text(
                "UPDATE procrastinate_jobs SET attempts = 4, scheduled_at = now()"
                " WHERE task_name = 'deliver_push'"
            )
        )
    await work(committing_maker, monkeypatch)
    assert len(receiver.received) == 2
    failed = (await admin_api.get(HRSS)).json()
    assert failed["last_error"] == "HTTP 500"
    assert failed["consecutive_failures"] == 1
    assert failed["last_failure_at"] is not None
    assert failed["last_success_at"] is None

    # The endpoint is back: the next notification (the change made meanwhile) clears it.
    receiver.status = 204
    assert await sweep(committing_maker) == 1
    await work(committing_maker, monkeypatch)
    assert len(receiver.received) == 3
    cleared = (await admin_api.get(HRSS)).json()
    assert (cleared["last_error"], cleared["last_failure_at"], cleared["consecutive_failures"]) == (
        None,
        None,
        0,
    )
    assert cleared["last_success_at"] is not None


async def test_an_unreachable_endpoint_is_recorded_with_the_connection_error(
    committing_maker: async_sessionmaker[AsyncSession],
    admin_api: httpx.AsyncClient,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await register(admin_api, "hefei-hrss", "http://127.0.0.1:9/nobody-listens")
    await route(committing_maker, await new_inquiry(committing_maker, now), now)
    assert await sweep(committing_maker) == 1
    async with committing_maker.begin() as session:
        await session.execute(text("UPDATE procrastinate_jobs SET attempts = 4"))
    await work(committing_maker, monkeypatch)
    failed = (await admin_api.get(HRSS)).json()
    assert failed["last_error"].startswith("ConnectError")
    assert failed["consecutive_failures"] == 1


async def test_a_receiver_that_does_not_answer_in_time_is_a_failure(
    committing_maker: async_sessionmaker[AsyncSession],
    admin_api: httpx.AsyncClient,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async def stall(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(1)  # past the timeout
        writer.close()

    server = await asyncio.start_server(stall, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    assert push_client.TIMEOUT.read == 5.0
    monkeypatch.setattr(push_client, "TIMEOUT", httpx.Timeout(0.2))  # 5 s is slow for a test
    async with server:
        await register(admin_api, "hefei-hrss", f"http://127.0.0.1:{port}/slow")
        await route(committing_maker, await new_inquiry(committing_maker, now), now)
        assert await sweep(committing_maker) == 1
        async with committing_maker.begin() as session:
            await session.execute(text("UPDATE procrastinate_jobs SET attempts = 4"))
        await work(committing_maker, monkeypatch)
    failed = (await admin_api.get(HRSS)).json()
    assert failed["last_error"].startswith("ReadTimeout")


async def test_a_change_in_a_transaction_that_commits_late_is_not_skipped(
    committing_maker: async_sessionmaker[AsyncSession],
    admin_api: httpx.AsyncClient,
    receiver: Receiver,
    now: datetime,
) -> None:
    await register(admin_api, "hefei-hrss", receiver.url("/hrss"))
    early = await new_inquiry(committing_maker, now, citizen="o_early")
    late = await new_inquiry(committing_maker, now, citizen="o_late")
    async with committing_maker() as slow:
        # The slow transaction writes its change first, then stays open...
        assert await routing.route(slow, inquiry_id=early.id, now=now, keywords=[])
        await slow.flush()
        slow_xact = await current_xact(slow)
        # ...while a later one commits.
        await route(committing_maker, late, now)
        # Only the slow one is in flight before the later one now. A sweep must not hand out the
        # later change: the cursor would pass the slow one's, which would never be sent.
        await horizon_reaches(committing_maker, slow_xact)
        assert await sweep_now(committing_maker) == 0
        await slow.commit()
    assert await sweep(committing_maker) == 1
    async with committing_maker() as session:
        [(_, args)] = await deliveries(session)
    assert [change["reference"] for change in args["changes"]] == [
        early.reference,
        late.reference,
    ]


async def test_a_registration_deleted_before_delivery_is_sent_nothing(
    committing_maker: async_sessionmaker[AsyncSession],
    admin_api: httpx.AsyncClient,
    receiver: Receiver,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    await register(admin_api, "hefei-hrss", receiver.url("/hrss"))
    await route(committing_maker, await new_inquiry(committing_maker, now), now)
    assert await sweep(committing_maker) == 1
    assert (await admin_api.delete(HRSS)).status_code == 200
    await work(committing_maker, monkeypatch)
    await asyncio.sleep(0)
    assert receiver.received == []


async def test_a_new_registration_is_not_sent_history(
    committing_maker: async_sessionmaker[AsyncSession],
    admin_api: httpx.AsyncClient,
    receiver: Receiver,
    now: datetime,
) -> None:
    await route(committing_maker, await new_inquiry(committing_maker, now), now)
    await settle(committing_maker)
    await register(admin_api, "hefei-hrss", receiver.url("/hrss"))
    assert await sweep(committing_maker) == 0


async def test_the_workers_minute_sweep_queues_and_delivers(
    committing_maker: async_sessionmaker[AsyncSession],
    admin_api: httpx.AsyncClient,
    receiver: Receiver,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = await register(admin_api, "hefei-hrss", receiver.url("/hrss"))
    inquiry = await new_inquiry(committing_maker, now)
    await route(committing_maker, inquiry, now)
    await settle(committing_maker)
    url = committing_maker.kw["bind"].url.render_as_string(hide_password=False)
    async with worker.opened(url):  # as the periodic deferrer queues it every minute
        await push_tasks.sweep_push.defer_async(timestamp=int(now.timestamp()))
    await work(committing_maker, monkeypatch, minute_sweep=True)
    # The delivery the sweep queued while the queue looked empty is left to the next run (a
    # worker without wait stops at once): it failed once in four fresh-clone runs without this.
    await work(committing_maker, monkeypatch)
    [notification] = receiver.to("/hrss")
    assert notification.signed_with(secret)
    assert notification.json()["changes"] == [{"reference": inquiry.reference, "kinds": ["routed"]}]
    async with committing_maker() as session:
        assert [status for status, _ in await deliveries(session)] == ["succeeded"]
        sweeps = await session.scalars(
            text("SELECT status FROM procrastinate_jobs WHERE task_name = 'sweep_push'")
        )
        assert set(sweeps) == {"succeeded"}


async def test_a_notification_names_a_small_batch_and_the_next_sweep_the_rest(
    committing_maker: async_sessionmaker[AsyncSession],
    admin_api: httpx.AsyncClient,
    receiver: Receiver,
    now: datetime,
) -> None:
    await register(admin_api, "hefei-hrss", receiver.url("/hrss"))
    first = await new_inquiry(committing_maker, now, citizen="o_first")
    second = await new_inquiry(committing_maker, now, citizen="o_second")
    await route(committing_maker, first, now)
    await route(committing_maker, second, now)
    await settle(committing_maker)
    batches = []
    while True:  # one change per notification; each delivered before the next sweep
        async with committing_maker.begin() as session:
            if not await queue_notifications(session, limit=1):
                break
            [(_, args)] = [job for job in await deliveries(session) if job[0] == "todo"]
            batches.append(args["changes"])
            await session.execute(text("UPDATE procrastinate_jobs SET status = 'succeeded'"))
    assert batches[0] == [{"reference": first.reference, "kinds": ["routed"]}]
    assert len(batches) > 2
    references = [change["reference"] for batch in batches for change in batch]
    assert list(dict.fromkeys(references)) == [first.reference, second.reference]


def test_a_failing_delivery_runs_five_times_with_growing_waits() -> None:
    waits = [
        push_tasks.BACKOFF.get_retry_decision(exception=RuntimeError(), job=_job(attempts))
        for attempts in range(5)
    ]
    assert [wait is not None for wait in waits] == [True, True, True, True, False]
    retry_at = [wait.retry_at for wait in waits if wait is not None]
    assert retry_at == sorted(retry_at)
    assert (retry_at[3] - retry_at[0]).total_seconds() > 200  # 4, 16, 64, 256 s


def _job(attempts: int) -> procrastinate.jobs.Job:
    return procrastinate.jobs.Job(
        id=1, queue="routing", lock=None, queueing_lock=None, task_name="t", attempts=attempts
    )


async def test_a_new_message_on_its_inquiry_is_notified_without_its_text(
    committing_maker: async_sessionmaker[AsyncSession],
    admin_api: httpx.AsyncClient,
    receiver: Receiver,
    now: datetime,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = await register(admin_api, "hefei-hrss", receiver.url("/hrss"))
    inquiry = await new_inquiry(committing_maker, now)
    await route(committing_maker, inquiry, now)
    assert await sweep(committing_maker) == 1
    await work(committing_maker, monkeypatch)
    again = await new_inquiry(committing_maker, now, content="补充：我在合肥工作了五年")
    assert again.id == inquiry.id  # the citizen's open conversation takes it
    assert await sweep(committing_maker) == 1
    await work(committing_maker, monkeypatch)
    appended = receiver.to("/hrss")[1]
    assert appended.signed_with(secret)
    assert appended.json()["changes"] == [
        {"reference": inquiry.reference, "kinds": ["message_appended"]}
    ]
    assert "合肥" not in appended.body.decode()
