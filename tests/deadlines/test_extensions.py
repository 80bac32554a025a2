"""Extensions: asked before the due time, at most one, no longer than the original period;
the nearest supervising office decides; both due times are kept."""

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.departments.models import Department
from app.inquiries.models import Inquiry
from app.routing import service as routing
from tests import factories
from tests.conftest import Clock


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
    assert by_holder.status_code == 409  # only the supervising office decides
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
