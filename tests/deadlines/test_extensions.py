"""Extensions: asked before the due time, at most one, no longer than the original period;
the nearest supervising office decides; both due times are kept."""

import asyncio
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.deadlines import pauses
from app.departments.models import Department
from app.inquiries.models import Inquiry
from app.routing import service as routing
from tests import factories
from tests.conftest import Clock, make_client


@pytest.fixture
async def office(session: AsyncSession) -> Department:
    return await factories.department(session, "hefei-office", is_supervising_office=True)


@pytest.fixture
async def hrss(session: AsyncSession) -> Department:
    return await factories.department(session, "hefei-hrss")


@pytest.fixture
async def inquiry(session: AsyncSession, hrss: Department, office: Department) -> Inquiry:
    """A consultation (2 working days) received Monday 2026-11-23, due Wednesday 11-25."""
    account = await factories.account(session, hrss)
    inquiry = await factories.inquiry(
        session, account, content="怎么办理", received_at=datetime(2026, 11, 23, 2, tzinfo=UTC)
    )
    await routing.create_kind_rule(
        session, data=routing.KindRuleCreate(kind="consultation", priority=1, keywords=["怎么"])
    )
    assert await routing.route(session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[])
    await session.flush()
    assert inquiry.reply_due_at == datetime(2026, 11, 25, 15, 59, 59, tzinfo=UTC)
    return inquiry


async def key(session: AsyncSession, department: Department) -> dict[str, str]:
    return {"Authorization": f"Bearer {await factories.api_key(session, department)}"}


async def test_approved_extension_keeps_both_due_times(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    office: Department,
) -> None:
    path = f"/api/v1/inquiries/{inquiry.reference}/extension"
    too_long = await client.post(
        path, json={"working_days": 3, "reason": "需要现场核查"}, headers=await key(session, hrss)
    )
    assert too_long.status_code == 409  # longer than the original 2 working days
    asked = await client.post(
        path, json={"working_days": 2, "reason": "需要现场核查"}, headers=await key(session, hrss)
    )
    assert asked.status_code == 200
    again = await client.post(
        path, json={"working_days": 1, "reason": "再延一次"}, headers=await key(session, hrss)
    )
    assert again.status_code == 409
    by_holder = await client.post(
        f"{path}/decision",
        json={"approve": True, "note": "自己批"},
        headers=await key(session, hrss),
    )
    assert by_holder.status_code == 403  # only the supervising office decides
    approved = await client.post(
        f"{path}/decision",
        json={"approve": True, "note": "同意延期"},
        headers=await key(session, office),
    )
    assert approved.status_code == 200
    body = approved.json()
    assert (body["original_due_at"], body["reply_due_at"]) == (
        "2026-11-25T15:59:59Z",
        "2026-11-27T15:59:59Z",
    )


async def test_refused_and_late_requests(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    office: Department,
    clock: Clock,
) -> None:
    path = f"/api/v1/inquiries/{inquiry.reference}/extension"
    await client.post(
        path, json={"working_days": 1, "reason": "需要现场核查"}, headers=await key(session, hrss)
    )
    refused = await client.post(
        f"{path}/decision",
        json={"approve": False, "note": "不予延期"},
        headers=await key(session, office),
    )
    assert refused.json()["reply_due_at"] == "2026-11-25T15:59:59Z"
    assert refused.json()["original_due_at"] is None
    clock.now = datetime(2026, 11, 27, 2, tzinfo=UTC)  # after its due time, 11-26 23:59:59
    other = await factories.inquiry(
        session,
        await session.get_one(factories.Account, inquiry.account_id),
        citizen_id="o_late",
        content="怎么办",
    )
    assert await routing.route(session, inquiry_id=other.id, now=other.received_at, keywords=[])
    await session.flush()
    late = await client.post(
        f"/api/v1/inquiries/{other.reference}/extension",
        json={"working_days": 1, "reason": "来不及了"},
        headers=await key(session, hrss),
    )
    assert late.status_code == 409  # after the due time


async def test_the_decision_is_refused_once_the_inquiry_has_ended(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    office: Department,
) -> None:
    # Issue 11, defect 4. Before: the office could still approve, moving an ended inquiry's due.
    path = f"/api/v1/inquiries/{inquiry.reference}"
    hrss_key = await key(session, hrss)
    asked = await client.post(
        f"{path}/extension", json={"working_days": 1, "reason": "需要现场核查"}, headers=hrss_key
    )
    assert asked.status_code == 200
    ended = await client.post(
        f"{path}/invalid", json={"reason": "重复的测试消息"}, headers=hrss_key
    )
    assert ended.status_code == 200
    decided = await client.post(
        f"{path}/extension/decision",
        json={"approve": True, "note": "同意延期"},
        headers=await key(session, office),
    )
    assert decided.status_code == 409
    await session.refresh(inquiry)
    assert inquiry.reply_due_at == datetime(2026, 11, 25, 15, 59, 59, tzinfo=UTC)


async def test_after_a_transfer_the_new_holders_office_decides(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    office: Department,
) -> None:
    # Issue 11, defect 4. Before: the office of the department that asked decided for ever,
    # though the inquiry had moved to a county under another office.
    county_office = await factories.department(
        session, "feidong-office", level="county", region_code="340122", is_supervising_office=True
    )
    county = await factories.department(
        session, "feidong-hrss", level="county", region_code="340122"
    )
    path = f"/api/v1/inquiries/{inquiry.reference}"
    hrss_key = await key(session, hrss)
    await client.post(
        f"{path}/extension", json={"working_days": 1, "reason": "需要现场核查"}, headers=hrss_key
    )
    moved = await client.post(
        f"{path}/transfer",
        json={"department_code": county.code, "note": "属肥东县办理"},
        headers=hrss_key,
    )
    assert moved.status_code == 200, moved.text
    decision = {"approve": True, "note": "同意延期"}
    old_office = await client.post(
        f"{path}/extension/decision", json=decision, headers=await key(session, office)
    )
    assert old_office.status_code == 403
    new_office = await client.post(
        f"{path}/extension/decision", json=decision, headers=await key(session, county_office)
    )
    assert new_office.status_code == 200, new_office.text
    assert new_office.json()["reply_due_at"] == "2026-11-26T15:59:59Z"


@pytest.mark.committing
async def test_a_resume_committed_meanwhile_is_not_lost(
    committing_maker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    # Issue 11, defect 4. Before: the decision read the due time without a lock and wrote
    # "stale due + N" after a concurrent resume had committed, losing the pause's credit.
    async with committing_maker.begin() as session:
        office = await factories.department(session, "hefei-office", is_supervising_office=True)
        hrss = await factories.department(session, "hefei-hrss")
        account = await factories.account(session, hrss)
        inquiry = await factories.inquiry(
            session, account, content="你好", received_at=datetime(2026, 11, 2, 2, tzinfo=UTC)
        )
        assert await routing.route(
            session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[]
        )
        hrss_key, office_key = await key(session, hrss), await key(session, office)
    path = f"/api/v1/inquiries/{inquiry.reference}"
    async with make_client(committing_maker, clock) as client:
        clock.now = datetime(2026, 11, 3, 2, tzinfo=UTC)  # Tuesday
        assert (
            await client.post(
                f"{path}/pause",
                json={"reason": "awaiting_citizen", "note": "请补充材料"},
                headers=hrss_key,
            )
        ).status_code == 200
        asked = await client.post(
            f"{path}/extension", json={"working_days": 2, "reason": "需要核查"}, headers=hrss_key
        )
        assert asked.status_code == 200
        before = asked.json()["reply_due_at"]
        clock.now = datetime(2026, 11, 6, 2, tzinfo=UTC)  # Friday: 2 working days inside
        async with committing_maker.begin() as resuming:
            locked = await resuming.scalar(
                select(Inquiry).where(Inquiry.id == inquiry.id).with_for_update()
            )
            assert locked is not None
            deciding = asyncio.create_task(
                client.post(
                    f"{path}/extension/decision",
                    json={"approve": True, "note": "同意"},
                    headers=office_key,
                )
            )
            await asyncio.sleep(0.5)  # the decision is under way, waiting on the row
            assert await pauses.end_pause(resuming, locked, now=clock.now, actor="test") is not None
        decided = await deciding
    assert decided.status_code == 200, decided.text
    async with committing_maker() as session:
        final = await session.get_one(Inquiry, inquiry.id)
    # 10 working days from 11-02 (other: 10) → 11-16; +2 paused → 11-18; +2 extension → 11-20.
    assert before == "2026-11-16T15:59:59Z"
    assert final.original_due_at == datetime(2026, 11, 18, 15, 59, 59, tzinfo=UTC)
    assert final.reply_due_at == datetime(2026, 11, 20, 15, 59, 59, tzinfo=UTC)
