"""Pauses: enumerated reasons; a pause from day S to day E adds the working days in (S, E]."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deadlines import service as deadlines
from app.deadlines.calendar import CHINA, due_at
from app.departments.models import Department
from app.inquiries.models import Inquiry, InquiryMessage
from app.routing import service as routing
from tests import factories
from tests.conftest import Clock

BEIJING_NOON = 4  # 12:00 in Beijing is 04:00 UTC


def at(day: int, month: int = 10) -> datetime:
    return datetime(2026, month, day, BEIJING_NOON, tzinfo=UTC)


@pytest.fixture
async def owner(session: AsyncSession) -> Department:
    return await factories.department(session, "hefei-office", is_supervising_office=True)


@pytest.fixture
async def inquiry(session: AsyncSession, owner: Department) -> Inquiry:
    """Received 2026-09-30, a `help` item would be 10 working days; use a 5-working-day rule."""
    account = await factories.account(session, owner)
    inquiry = await factories.inquiry(session, account, content="你好", received_at=at(30, 9))
    assert await routing.route(session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[])
    work = await deadlines.load(session)
    inquiry.reply_due_at, _ = due_at(inquiry.received_at, "working_days", 5, work)
    inquiry.deadline_unit, inquiry.deadline_length = "working_days", 5
    await session.flush()
    assert inquiry.reply_due_at == datetime(2026, 10, 13, 15, 59, 59, tzinfo=UTC)  # pinned fact
    return inquiry


@pytest.fixture
async def headers(session: AsyncSession, owner: Department) -> dict[str, str]:
    return {"Authorization": f"Bearer {await factories.api_key(session, owner)}"}


async def test_a_pause_adds_the_working_days_inside_it(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    headers: dict[str, str],
    clock: Clock,
) -> None:
    path = f"/api/v1/inquiries/{inquiry.reference}"
    clock.now = at(9)  # Friday 2026-10-09
    paused = await client.post(
        f"{path}/pause",
        json={"reason": "consulting_agency", "note": "征求市场监管局意见"},
        headers=headers,
    )
    assert paused.status_code == 200, paused.text
    again = await client.post(
        f"{path}/pause", json={"reason": "awaiting_citizen", "note": "再停一次"}, headers=headers
    )
    assert again.status_code == 409
    clock.now = at(12)  # Monday 2026-10-12
    resumed = await client.post(f"{path}/resume", json={"note": "已回复"}, headers=headers)
    # (10-09, 10-12] holds Saturday 10-10 (a 调休 working day) and Monday 10-12: 2 working days.
    assert resumed.json()["reply_due_at"] == "2026-10-15T15:59:59Z"
    events = (await client.get(f"{path}/events", headers=headers)).json()["items"]
    assert [e["action"] for e in events[-2:]] == ["paused", "resumed"]


async def test_a_pause_within_one_day_moves_nothing(
    client: httpx.AsyncClient, inquiry: Inquiry, headers: dict[str, str], clock: Clock
) -> None:
    path = f"/api/v1/inquiries/{inquiry.reference}"
    clock.now = at(9)
    await client.post(
        f"{path}/pause",
        json={"reason": "citizen_unreachable", "note": "电话未接通"},
        headers=headers,
    )
    clock.now = datetime(2026, 10, 9, 9, tzinfo=UTC)  # 17:00 the same day in Beijing
    resumed = await client.post(f"{path}/resume", json={}, headers=headers)
    assert resumed.json()["reply_due_at"] == "2026-10-13T15:59:59Z"


async def test_only_enumerated_reasons_and_only_a_stopped_clock_resumes(
    client: httpx.AsyncClient, inquiry: Inquiry, headers: dict[str, str]
) -> None:
    path = f"/api/v1/inquiries/{inquiry.reference}"
    bad = await client.post(
        f"{path}/pause", json={"reason": "leader_on_holiday", "note": "领导休假"}, headers=headers
    )
    assert bad.status_code == 422
    assert (await client.post(f"{path}/resume", json={}, headers=headers)).status_code == 409


# The second case: a send time a year ahead (the sender's word) credits only the time that passed.
@pytest.mark.parametrize("sent_ahead", [timedelta(0), timedelta(days=365)])
async def test_the_citizens_next_message_ends_an_awaiting_citizen_pause(
    client: httpx.AsyncClient,
    session: AsyncSession,
    owner: Department,
    headers: dict[str, str],
    clock: Clock,
    sent_ahead: timedelta,
) -> None:
    account = await factories.account(
        session, owner, code="pause-wechat", wechat_original_id="gh_000000000008"
    )
    inquiry = await factories.inquiry(session, account, content="你好", received_at=at(8))
    assert await routing.route(session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[])
    await session.flush()
    due_before = inquiry.reply_due_at
    clock.now = at(9)
    paused = await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/pause",
        json={"reason": "awaiting_citizen", "note": "请补充材料"},
        headers=headers,
    )
    assert paused.status_code == 200
    appended = await factories.inquiry(session, account, content="材料已补充", received_at=at(12))
    assert appended.id == inquiry.id  # the citizen's answer joins the inquiry
    message = await session.scalar(
        select(InquiryMessage).where(
            InquiryMessage.inquiry_id == inquiry.id, InquiryMessage.seq == 2
        )
    )
    assert message is not None
    message.sent_at = at(12) + sent_ahead
    assert await routing.citizen_answered(session, inquiry_id=inquiry.id, seq=2, now=at(12))
    await session.refresh(inquiry)
    work = await deadlines.load(session)
    assert due_before is not None
    assert inquiry.reply_due_at is not None
    # Two working days inside (10-09, 10-12]: the due date moves two working days later.
    moved = work.add_working_days(due_before.astimezone(CHINA).date(), 2)[0]
    assert inquiry.reply_due_at.astimezone(CHINA).date() == moved
    assert not await routing.citizen_answered(
        session, inquiry_id=inquiry.id, seq=2, now=at(12)
    )  # once


async def test_an_hours_deadline_gets_the_pause_back_even_within_a_day(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    headers: dict[str, str],
    clock: Clock,
) -> None:
    inquiry.deadline_unit, inquiry.deadline_length = "hours", 2
    inquiry.reply_due_at = datetime(2026, 10, 9, 6, tzinfo=UTC)
    await session.flush()
    path = f"/api/v1/inquiries/{inquiry.reference}"
    clock.now = datetime(2026, 10, 9, 4, tzinfo=UTC)
    await client.post(
        f"{path}/pause",
        json={"reason": "citizen_unreachable", "note": "电话未接通"},
        headers=headers,
    )
    clock.now = datetime(2026, 10, 9, 4, 30, tzinfo=UTC)
    resumed = await client.post(f"{path}/resume", json={}, headers=headers)
    assert resumed.json()["reply_due_at"] == "2026-10-09T06:30:00Z"
