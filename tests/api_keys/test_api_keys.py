import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api_keys.models import ApiKey
from app.departments.models import Department
from app.people.models import Person
from tests import factories


@pytest.fixture
async def department(session: AsyncSession) -> Department:
    return await factories.department(session, "hefei-hrss")


@pytest.fixture
async def holder(session: AsyncSession, department: Department) -> Person:
    return await factories.person(session, department, "张伟", roles=["responder"])


async def test_key_is_shown_once_and_stored_as_a_hash(
    admin: httpx.AsyncClient, holder: Person, session: AsyncSession
) -> None:
    issued = await admin.post(
        "/api/v1/admin/departments/hefei-hrss/api-keys",
        json={"person_id": holder.id, "label": "desk"},
    )
    assert issued.status_code == 201
    key = issued.json()["key"]
    assert key.startswith("gvk_")
    assert len(key) > 40
    assert issued.json()["prefix"] == key[:12]
    listed = await admin.get("/api/v1/admin/departments/hefei-hrss/api-keys")
    assert listed.json()["items"][0]["person_id"] == holder.id
    assert key not in listed.text
    stored = await session.scalar(select(ApiKey))
    assert stored is not None
    assert key not in (stored.key_hash, stored.prefix)


async def test_a_key_resolves_to_its_department_and_holder(
    admin: httpx.AsyncClient,
    client: httpx.AsyncClient,
    department: Department,
    holder: Person,
    session: AsyncSession,
) -> None:
    account = await factories.account(session, department)
    inquiry = await factories.inquiry(session, account, department=department)
    key = (
        await admin.post(
            "/api/v1/admin/departments/hefei-hrss/api-keys", json={"person_id": holder.id}
        )
    ).json()["key"]
    response = await client.get(
        f"/api/v1/inquiries/{inquiry.reference}", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200, response.text
    changed = await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/invalid",
        json={"reason": "测试消息"},
        headers={"Authorization": f"Bearer {key}"},
    )
    assert changed.status_code == 200
    events = (
        await client.get(
            f"/api/v1/inquiries/{inquiry.reference}/events",
            headers={"Authorization": f"Bearer {key}"},
        )
    ).json()["items"]
    assert events[-1]["actor"] == f"person:{holder.id} 张伟 (hefei-hrss)"


async def test_revoked_key_and_inactive_holder_fail(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, holder: Person
) -> None:
    issued = (
        await admin.post(
            "/api/v1/admin/departments/hefei-hrss/api-keys", json={"person_id": holder.id}
        )
    ).json()
    headers = {"Authorization": f"Bearer {issued['key']}"}
    assert (
        await client.get("/api/v1/inquiries/WX20261124-000001", headers=headers)
    ).status_code == 404
    revoked = await admin.delete(f"/api/v1/admin/api-keys/{issued['id']}")
    assert revoked.json()["revoked_at"] is not None
    assert (
        await client.get("/api/v1/inquiries/WX20261124-000001", headers=headers)
    ).status_code == 401

    second = (
        await admin.post(
            "/api/v1/admin/departments/hefei-hrss/api-keys", json={"person_id": holder.id}
        )
    ).json()
    headers = {"Authorization": f"Bearer {second['key']}"}
    await admin.delete(f"/api/v1/admin/people/{holder.id}")
    assert (
        await client.get("/api/v1/inquiries/WX20261124-000001", headers=headers)
    ).status_code == 401


async def test_inactive_department_key_fails(
    admin: httpx.AsyncClient, client: httpx.AsyncClient, department: Department
) -> None:
    issued = (
        await admin.post(
            "/api/v1/admin/departments/hefei-hrss/api-keys", json={"client_name": "crm"}
        )
    ).json()
    await admin.delete("/api/v1/admin/departments/hefei-hrss")
    response = await client.get(
        "/api/v1/inquiries/X", headers={"Authorization": f"Bearer {issued['key']}"}
    )
    assert response.status_code == 401


async def test_the_admin_token_is_not_a_department_key(admin: httpx.AsyncClient) -> None:
    assert (await admin.get("/api/v1/inquiries/WX20261124-000001")).status_code == 401


async def test_holder_must_belong_to_the_department(
    admin: httpx.AsyncClient, session: AsyncSession, department: Department
) -> None:
    other = await factories.department(session, "hefei-transport")
    stranger = await factories.person(session, other)
    response = await admin.post(
        "/api/v1/admin/departments/hefei-hrss/api-keys", json={"person_id": stranger.id}
    )
    assert response.status_code == 422
    assert response.json()["type"] == "/problems/holder-not-in-department"
    neither = await admin.post("/api/v1/admin/departments/hefei-hrss/api-keys", json={"label": "x"})
    assert neither.status_code == 422
