"""A department corrects what routing decided: the kind, or the routing itself; both audited."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.departments.models import Department
from app.inquiries.models import Inquiry
from app.routing import service as routing
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
    session: AsyncSession,
    department: Department,
) -> None:
    account = await factories.account(
        session, department, code="hrss-wechat", wechat_original_id="gh_000000000009"
    )
    await admin.post(
        "/api/v1/admin/routing/rules",
        json={
            "name": "si",
            "priority": 1,
            "department_code": department.code,
            "keywords": ["社保"],
            "explanation": "社保属于人社局职责",
        },
    )
    routed = await factories.inquiry(session, account, content="社保怎么交")
    assert await routing.route(session, inquiry_id=routed.id, now=routed.received_at, keywords=[])
    await session.flush()
    headers = {"Authorization": f"Bearer {await factories.api_key(session, department)}"}
    path = f"/api/v1/inquiries/{routed.reference}/routing-wrong"
    assert (
        await client.post(path, json={"reason": "不属于我局职责"}, headers=headers)
    ).status_code == 200
    assert (
        await client.post(path, json={"reason": "再说一次"}, headers=headers)
    ).status_code == 409
    accuracy = (await admin.get("/api/v1/admin/routing/accuracy")).json()
    assert accuracy == [{"rule_name": "si", "routed": 1, "marked_wrong": 1, "accuracy": 0.0}]


async def test_only_the_department_routing_chose_can_mark_it_wrong(
    client: httpx.AsyncClient, session: AsyncSession, department: Department
) -> None:
    account = await factories.account(
        session, department, code="hrss-wechat", wechat_original_id="gh_000000000009"
    )
    routed = await factories.inquiry(session, account, content="你好")
    assert await routing.route(session, inquiry_id=routed.id, now=routed.received_at, keywords=[])
    other = await factories.department(session, "hefei-transport")
    headers = {"Authorization": f"Bearer {await factories.api_key(session, department)}"}
    moved = await client.post(
        f"/api/v1/inquiries/{routed.reference}/transfer",
        json={"department_code": other.code, "note": "转交"},
        headers=headers,
    )
    assert moved.status_code == 200
    other_headers = {"Authorization": f"Bearer {await factories.api_key(session, other)}"}
    refused = await client.post(
        f"/api/v1/inquiries/{routed.reference}/routing-wrong",
        json={"reason": "不归我们"},
        headers=other_headers,
    )
    assert refused.status_code == 409


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


async def test_an_ended_inquiry_keeps_its_kind(
    client: httpx.AsyncClient, inquiry: Inquiry, headers: dict[str, str]
) -> None:
    path = f"/api/v1/inquiries/{inquiry.reference}"
    await client.post(f"{path}/invalid", json={"reason": "广告"}, headers=headers)
    response = await client.post(
        f"{path}/kind", json={"kind": "report", "reason": "改一下"}, headers=headers
    )
    assert response.status_code == 409
