"""Warnings in working time within office hours; escalation one level up per further breach;
idempotent sweeps; overdue as a query."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.deadlines import alerts
from app.deadlines.calendar import CHINA
from app.deadlines.models import DeadlineAlert, DeadlinePause
from app.departments.models import Department
from app.inquiries.models import Inquiry, InquiryEvent
from app.routing import service as routing
from tests import factories

HOURS = ("08:30", "17:30")


def beijing(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=CHINA).astimezone(UTC)


@pytest.fixture
async def province(session: AsyncSession) -> Department:
    return await factories.department(
        session, "ah-office", level="province", region_code="340000", is_supervising_office=True
    )


@pytest.fixture
async def office(session: AsyncSession, province: Department) -> Department:
    return await factories.department(session, "hefei-office", is_supervising_office=True)


@pytest.fixture
async def bureau(session: AsyncSession, office: Department) -> Department:
    return await factories.department(session, "hefei-hrss", parent_code="hefei-office")


@pytest.fixture
async def county(session: AsyncSession, bureau: Department) -> Department:
    await factories.department(
        session, "ss-office", level="county", region_code="340104", is_supervising_office=True
    )
    return await factories.department(
        session, "ss-hrss", level="county", region_code="340104", parent_code="hefei-hrss"
    )


@pytest.fixture
async def inquiry(session: AsyncSession, county: Department) -> Inquiry:
    """A consultation: received Monday 2026-11-23 10:00, 2 working days, due Wednesday 23:59:59."""
    account = await factories.account(session, county, level="county")
    await routing.create_kind_rule(
        session, data=routing.KindRuleCreate(kind="consultation", priority=1, keywords=["怎么"])
    )
    inquiry = await factories.inquiry(
        session, account, content="怎么办", received_at=beijing(23, 10)
    )
    assert await routing.route(session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[])
    await session.flush()
    assert inquiry.reply_due_at == beijing(25, 23, 59).replace(second=59)
    # These tests follow the reply clock; the first response's has its own (test_first_response).
    inquiry.first_responded_at = inquiry.received_at
    return inquiry


async def sweep(session: AsyncSession, now: datetime) -> int:
    """One sweep, its pages in the test's transaction."""

    @asynccontextmanager
    async def same() -> AsyncIterator[AsyncSession]:
        yield session

    return await alerts.sweep(same, now=now, office_hours=HOURS, fractions=[0.5, 0.8])


async def actions(session: AsyncSession, inquiry: Inquiry) -> list[tuple[str, int | None]]:
    rows = await session.scalars(
        select(InquiryEvent)
        .where(
            InquiryEvent.inquiry_id == inquiry.id,
            InquiryEvent.action.in_(["deadline_warning", "escalated"]),
        )
        .order_by(InquiryEvent.id)
    )
    return [(e.action.value, e.details.get("level")) for e in rows]


@pytest.mark.usefixtures("inquiry")
async def test_warnings_follow_working_time_and_office_hours(
    session: AsyncSession, inquiry: Inquiry
) -> None:
    assert await sweep(session, beijing(24, 8)) == 0  # Tuesday before office hours: nothing yet
    assert await sweep(session, beijing(24, 13)) == 0  # a quarter of the working time
    assert await sweep(session, beijing(25, 9)) == 1  # Wednesday 09:00: one of two days done, 50 %
    assert await sweep(session, beijing(25, 9, 1)) == 0  # idempotent
    assert await sweep(session, beijing(25, 13)) == 0  # 75 %
    assert await sweep(session, beijing(25, 14)) == 1  # 80 %, within office hours
    assert await actions(session, inquiry) == [("deadline_warning", 50), ("deadline_warning", 80)]


async def test_escalation_climbs_one_level_per_further_breach(
    session: AsyncSession,
    inquiry: Inquiry,
    bureau: Department,
    office: Department,
    province: Department,
) -> None:
    now = beijing(26, 9)  # Thursday: overdue
    assert [i.id for i in await session.scalars(alerts.overdue(now))] == [inquiry.id]
    await sweep(session, now)
    level_one = (
        await session.scalars(select(DeadlineAlert).where(DeadlineAlert.kind == "escalation"))
    ).one()
    assert level_one.department_id == bureau.id  # the parent department reads it first
    await sweep(session, beijing(30, 9))  # 2 more working days (one more period): level 2
    levels = {
        a.level: a.department_id
        for a in await session.scalars(
            select(DeadlineAlert).where(DeadlineAlert.kind == "escalation")
        )
    }
    assert levels[2] == office.id
    assert ("escalated", 2) in await actions(session, inquiry)


async def test_the_parent_reads_but_cannot_act_and_the_office_lists_it(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    bureau: Department,
    office: Department,
    clock: object,
) -> None:
    parent_key = {"Authorization": f"Bearer {await factories.api_key(session, bureau)}"}
    path = f"/api/v1/inquiries/{inquiry.reference}"
    assert (await client.get(path, headers=parent_key)).status_code == 404  # not before the breach
    await sweep(session, beijing(26, 9))
    await session.flush()
    assert (await client.get(path, headers=parent_key)).status_code == 200
    assert (
        await client.post(f"{path}/invalid", json={"reason": "越权"}, headers=parent_key)
    ).status_code == 403  # it may read it, not act on it
    clock.now = beijing(26, 10)  # type: ignore[attr-defined]
    office_key = {"Authorization": f"Bearer {await factories.api_key(session, office)}"}
    listed = (await client.get("/api/v1/escalations", headers=office_key)).json()
    assert [i["reference"] for i in listed["items"]] == [inquiry.reference]


@pytest.mark.committing
async def test_concurrent_sweeps_fire_each_alert_once(
    committing_maker: async_sessionmaker[AsyncSession],
) -> None:
    async with committing_maker.begin() as session:
        office = await factories.department(session, "hefei-office", is_supervising_office=True)
        account = await factories.account(session, office)
        inquiry = await factories.inquiry(
            session, account, content="你好", received_at=beijing(2, 10)
        )
        await routing.route(session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[])
        inquiry.first_responded_at = inquiry.received_at

    async def one() -> int:
        return await alerts.sweep(
            committing_maker.begin, now=beijing(24, 10), office_hours=HOURS, fractions=[0.5, 0.8]
        )

    results = await asyncio.gather(one(), one(), one())
    async with committing_maker() as session:
        stored = await session.scalar(select(func.count()).select_from(DeadlineAlert))
    assert sum(results) == stored
    assert stored == 3  # 50 %, 80 % and escalation level 1 (10 working days passed on 11-17)


async def test_hours_rules_warn_around_the_clock(session: AsyncSession, inquiry: Inquiry) -> None:
    inquiry.deadline_unit, inquiry.deadline_length = "hours", 2
    inquiry.received_at, inquiry.reply_due_at = beijing(24, 22), beijing(25, 0)
    await session.flush()
    assert await sweep(session, beijing(24, 23, 40)) == 2  # 83 % at night: both warnings fire


@pytest.mark.parametrize("unit", ["working_days", "calendar_days"])
async def test_a_further_period_escalates_only_once_it_has_ended(
    session: AsyncSession, inquiry: Inquiry, unit: str
) -> None:
    # Issue 11, defect 6. Before: a 1-day rule fired levels 1 and 2 together the day after.
    inquiry.deadline_unit, inquiry.deadline_length = unit, 1  # due Wednesday 25th, 23:59:59
    await session.flush()
    await sweep(session, beijing(26, 9))  # Thursday: breached; Thursday itself not over yet
    assert [a for a in await actions(session, inquiry) if a[0] == "escalated"] == [("escalated", 1)]
    await sweep(session, beijing(26, 23, 59))
    assert ("escalated", 2) not in await actions(session, inquiry)
    await sweep(session, beijing(27, 0, 1))  # Thursday, the further day, has ended
    assert ("escalated", 2) in await actions(session, inquiry)
    assert ("escalated", 3) not in await actions(session, inquiry)


async def test_a_stopped_clock_is_never_warned_about_nor_escalated(
    session: AsyncSession, inquiry: Inquiry
) -> None:
    # Issue 11, defect 1. Before: the sweep read reply_due_at only, so a paused inquiry whose
    # un-moved due time passed was warned about, escalated and listed overdue.
    session.add(
        DeadlinePause(
            inquiry_id=inquiry.id,
            reason="awaiting_citizen",
            status="running",
            requested_at=beijing(24, 9),
            requested_by="test",
            started_at=beijing(24, 9),
            started_by="test",
        )
    )
    await session.flush()
    assert await sweep(session, beijing(25, 14)) == 0  # would be the 50 % and 80 % warnings
    assert await sweep(session, beijing(30, 9)) == 0  # would be levels 1 and 2
    assert list(await session.scalars(alerts.overdue(beijing(30, 9)))) == []


async def test_each_page_of_the_sweep_is_its_own_transaction(
    session: AsyncSession, inquiry: Inquiry
) -> None:
    # Issue 11, defect 9. Before: one transaction held every page's alert rows until the end.
    other = await factories.inquiry(
        session,
        await session.get_one(factories.Account, inquiry.account_id),
        citizen_id="o_other",
        content="怎么办",
        received_at=beijing(23, 10),
    )
    assert await routing.route(session, inquiry_id=other.id, now=other.received_at, keywords=[])
    opened: list[int] = []

    @asynccontextmanager
    async def transaction() -> AsyncIterator[AsyncSession]:
        opened.append(len(opened))
        async with session.begin_nested():
            yield session

    await alerts.sweep(
        transaction, now=beijing(25, 14), office_hours=HOURS, fractions=[0.5], batch=1
    )
    assert len(opened) == 3  # a page per inquiry, then the empty page that ends it
