"""A department corrects what routing decided: the kind, or the routing itself; both audited."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.departments.models import Department
from app.inquiries.models import Inquiry
from tests import factories


@pytest.fixture
async def department(session: AsyncSession) -> Department:
    return await factories.department(session, "hefei-hrss")


@pytest.fixture
async def inquiry(session: AsyncSession, department: Department) -> Inquiry:
    office = await factories.department(session, "hefei-office", is_supervising_office=True)
    account = await factories.account(session, office)
    return await factories.inquiry(session, account, department=department)


@pytest.fixture
async def headers(session: AsyncSession, department: Department) -> dict[str, str]:
    return {"Authorization": f"Bearer {await factories.api_key(session, department)}"}


async def test_correct_the_kind(
    client: httpx.AsyncClient, inquiry: Inquiry, headers: dict[str, str]
) -> None:
    path = f"/api/v1/inquiries/{inquiry.reference}"
    changed = await client.post(
        f"{path}/kind", json={"kind": "complaint", "reason": "是投诉"}, headers=headers
    )
    assert changed.json()["kind"] == "complaint"
    events = (await client.get(f"{path}/events", headers=headers)).json()["items"]
    assert events[-1]["action"] == "kind_changed"
    assert events[-1]["reason"] == "是投诉"
    bad = await client.post(f"{path}/kind", json={"kind": "gossip", "reason": "x"}, headers=headers)
    assert bad.status_code == 422


async def test_mark_routing_wrong_counts_against_the_rule(
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    inquiry: Inquiry,
    headers: dict[str, str],
    session: AsyncSession,
) -> None:
    inquiry.routed_at = inquiry.received_at  # routed by the fallback (no rule)
    await session.flush()
    path = f"/api/v1/inquiries/{inquiry.reference}/routing-wrong"
    first = await client.post(path, json={"reason": "不属于我局职责"}, headers={**headers})
    assert first.status_code == 200
    again = await client.post(path, json={"reason": "再说一次"}, headers=headers)
    assert again.status_code == 409
    accuracy = (await admin.get("/api/v1/admin/routing/accuracy")).json()
    assert accuracy == [{"rule_name": None, "routed": 1, "marked_wrong": 1, "accuracy": 0.0}]


async def test_another_department_cannot_correct(
    client: httpx.AsyncClient, inquiry: Inquiry, session: AsyncSession
) -> None:
    other = await factories.department(session, "hefei-transport")
    headers = {"Authorization": f"Bearer {await factories.api_key(session, other)}"}
    response = await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/kind",
        json={"kind": "report", "reason": "越权"},
        headers=headers,
    )
    assert response.status_code == 404
