"""Every inquiry action checks the role it needs (app/roles.py, README "Roles"), and an inquiry a
key may read but not act on answers 403 on action routes, while one it may not read stays 404."""

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import psycopg
import pytest
from alembic import command
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession

from app import db, embedded
from app.auth import Requires, current_principal
from app.departments.models import Department
from app.inquiries.models import Inquiry
from app.main import create_app
from app.people.models import Role
from app.roles import REQUIRED_ROLE, Action
from app.routing import service as routing
from tests import factories


@pytest.fixture
async def office(session: AsyncSession) -> Department:
    return await factories.department(session, "hefei-office", is_supervising_office=True)


@pytest.fixture
async def hrss(session: AsyncSession) -> Department:
    return await factories.department(session, "hefei-hrss")


@pytest.fixture
async def inquiry(session: AsyncSession, hrss: Department, office: Department) -> Inquiry:
    """A consultation routed to hrss, received Monday 2026-11-23, due Wednesday 11-25."""
    account = await factories.account(session, hrss)
    inquiry = await factories.inquiry(
        session, account, content="怎么办理", received_at=datetime(2026, 11, 23, 2, tzinfo=UTC)
    )
    await routing.create_kind_rule(
        session, data=routing.KindRuleCreate(kind="consultation", priority=1, keywords=["怎么"])
    )
    assert await routing.route(session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[])
    await session.flush()
    assert inquiry.department_id == hrss.id
    return inquiry


async def bearer(
    session: AsyncSession, department: Department, *roles: Role, person: bool = False
) -> dict[str, str]:
    """A key of `department` acting with `roles`: a person's, or a client system's."""
    roles = roles or factories.ACTING_ROLES
    if person:
        holder = await factories.person(session, department, roles=list(roles))
        return {"Authorization": f"Bearer {await factories.api_key(session, department, holder)}"}
    key = await factories.api_key(session, department, roles=roles)
    return {"Authorization": f"Bearer {key}"}


async def act(
    client: httpx.AsyncClient,
    inquiry: Inquiry,
    action: str,
    body: dict[str, object],
    headers: dict[str, str],
) -> httpx.Response:
    return await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/{action}", json=body, headers=headers
    )


def assert_role_required(response: httpx.Response, role: Role) -> None:
    assert response.status_code == 403, response.text
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["type"], body["required_role"]) == ("/problems/role-required", role.value)
    assert f"the {role.value} role" in body["detail"]


async def test_an_operator_cannot_decide_an_extension(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    office: Department,
) -> None:
    asked = await act(
        client,
        inquiry,
        "extension",
        {"working_days": 2, "reason": "需要现场核查"},
        await bearer(session, hrss, Role.responder, person=True),
    )
    assert asked.status_code == 200
    operator = await bearer(session, office, Role.operator, person=True)
    refused = await act(
        client, inquiry, "extension/decision", {"approve": True, "note": "同意"}, operator
    )
    assert_role_required(refused, Role.supervisor)
    await session.refresh(inquiry)
    assert inquiry.original_due_at is None  # nothing was decided
    supervisor = await bearer(session, office, Role.supervisor, person=True)
    approved = await act(
        client, inquiry, "extension/decision", {"approve": True, "note": "同意"}, supervisor
    )
    assert approved.status_code == 200
    assert approved.json()["reply_due_at"] == "2026-11-27T15:59:59Z"


async def test_a_person_acts_with_the_persons_roles_as_they_are_now(
    client: httpx.AsyncClient, session: AsyncSession, inquiry: Inquiry, hrss: Department
) -> None:
    holder = await factories.person(session, hrss, roles=[Role.operator])
    headers = {"Authorization": f"Bearer {await factories.api_key(session, hrss, holder)}"}
    kind = {"kind": "complaint", "reason": "实为投诉"}
    assert_role_required(await act(client, inquiry, "kind", kind, headers), Role.responder)
    holder.roles = [Role.operator.value, Role.responder.value]
    await session.flush()
    assert (await act(client, inquiry, "kind", kind, headers)).status_code == 200


async def test_a_responder_client_key_cannot_arbitrate(
    client: httpx.AsyncClient,
    session: AsyncSession,
    hrss: Department,
    office: Department,
) -> None:
    dispatcher = await factories.department(session, "hefei-press")
    urban = await factories.department(session, "hefei-urban")
    account = await factories.account(session, dispatcher, code="press-wechat")
    inquiry = await factories.inquiry(session, account, department=hrss, content="夜间施工")
    note = {"reason": "not_our_duty", "note": "不归我们"}
    assert (
        await act(client, inquiry, "return", note, await bearer(session, hrss))
    ).status_code == 200
    to_urban = {"department_code": "hefei-urban", "note": "转城管"}
    transferred = await act(
        client, inquiry, "transfer", to_urban, await bearer(session, dispatcher)
    )
    assert transferred.status_code == 200
    assert (
        await act(client, inquiry, "return", note, await bearer(session, urban))
    ).status_code == 200
    await session.refresh(inquiry)
    assert inquiry.arbitration_office_id == office.id

    decision = {"department_code": "hefei-hrss", "note": "由人社办理"}
    responder = await bearer(session, office, Role.responder)
    assert_role_required(
        await act(client, inquiry, "arbitrate", decision, responder), Role.supervisor
    )
    await session.refresh(inquiry)
    assert inquiry.arbitrated_at is None
    supervisor = await bearer(session, office, Role.supervisor)
    assert (await act(client, inquiry, "arbitrate", decision, supervisor)).status_code == 200


async def test_a_reviewer_cannot_transfer(
    client: httpx.AsyncClient, session: AsyncSession, inquiry: Inquiry, hrss: Department
) -> None:
    await factories.department(session, "hefei-urban")
    reviewer = await bearer(session, hrss, Role.reviewer)
    transfer = {"department_code": "hefei-urban", "note": "转城管"}
    assert_role_required(await act(client, inquiry, "transfer", transfer, reviewer), Role.responder)
    await session.refresh(inquiry)
    assert inquiry.department_id == hrss.id
    # Reading needs no role.
    read = await client.get(f"/api/v1/inquiries/{inquiry.reference}", headers=reviewer)
    assert read.status_code == 200


async def test_readable_but_not_held_is_403_and_another_departments_is_404(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    office: Department,
) -> None:
    wuhu = await factories.department(
        session, "wuhu-office", region_code="340200", is_supervising_office=True
    )
    invalid = {"reason": "越权"}
    in_region = await act(client, inquiry, "invalid", invalid, await bearer(session, office))
    assert in_region.status_code == 403
    assert in_region.headers["content-type"] == "application/problem+json"
    assert in_region.json()["type"] == "/problems/not-the-holder"
    elsewhere = await act(client, inquiry, "invalid", invalid, await bearer(session, wuhu))
    assert elsewhere.status_code == 404
    assert elsewhere.json()["type"] == "/problems/inquiry-not-found"
    await session.refresh(inquiry)
    assert inquiry.status == "assigned"


async def test_routing_wrong_on_an_ended_inquiry_is_refused(
    client: httpx.AsyncClient, session: AsyncSession, inquiry: Inquiry, hrss: Department
) -> None:
    headers = await bearer(session, hrss)
    assert (await act(client, inquiry, "invalid", {"reason": "骚扰"}, headers)).status_code == 200
    wrong = await act(client, inquiry, "routing-wrong", {"reason": "不归我们"}, headers)
    assert wrong.status_code == 409
    assert wrong.json()["type"] == "/problems/not-changeable"
    await session.refresh(inquiry)
    assert inquiry.routing_marked_wrong_at is None


async def test_keys_are_issued_with_roles_checked_against_the_role_list(
    admin: httpx.AsyncClient, session: AsyncSession, hrss: Department
) -> None:
    path = "/api/v1/admin/departments/hefei-hrss/api-keys"
    default = await admin.post(path, json={"client_name": "crm"})
    assert (default.status_code, default.json()["roles"]) == (201, ["responder"])
    chosen = await admin.post(path, json={"client_name": "desk", "roles": ["reviewer", "reviewer"]})
    assert (chosen.status_code, chosen.json()["roles"]) == (201, ["reviewer"])
    assert (await admin.post(path, json={"client_name": "x", "roles": ["boss"]})).status_code == 422
    holder = await factories.person(session, hrss, roles=[Role.responder])
    for_person = await admin.post(path, json={"person_id": holder.id, "roles": ["supervisor"]})
    assert for_person.status_code == 422  # a person's key acts with the person's roles
    personal = await admin.post(path, json={"person_id": holder.id})
    assert (personal.status_code, personal.json()["roles"]) == (201, None)


def _uses_principal(dependant: Dependant) -> bool:
    return any(
        sub.call is current_principal or _uses_principal(sub) for sub in dependant.dependencies
    )


def test_every_inquiry_action_route_declares_its_action_in_the_role_table() -> None:
    assert set(REQUIRED_ROLE) == set(Action)
    assert Role.operator not in REQUIRED_ROLE.values()  # the account only, no inquiry action
    acting = {
        context.path: route
        for context in iter_route_contexts(create_app().routes)
        if isinstance(route := context.original_route, APIRoute)
        and route.methods - {"GET", "HEAD"}
        and _uses_principal(route.dependant)
    }
    assert len(acting) >= 14  # invalid, close, kind, routing-wrong, refer, return, transfer, …
    declared: dict[str, Action] = {}
    for path, route in acting.items():
        checks = [
            sub.call for sub in route.dependant.dependencies if isinstance(sub.call, Requires)
        ]
        assert len(checks) == 1, f"{path} checks no role (dependencies=[acting(Action.…)])"
        declared[path] = checks[0].action
    assert declared["/api/v1/inquiries/{reference}/arbitrate"] is Action.arbitrate
    assert declared["/api/v1/inquiries/{reference}/extension/decision"] is Action.decide_extension
    assert declared["/api/v1/inquiries/{reference}/pause/decision"] is Action.decide_pause
    # Every action has its route; a few share one (reply and answer-given, merge and unmerge,
    # adding and changing a template).
    assert set(declared.values()) == set(Action)


OLD_KEYS = """
INSERT INTO department (code, name, level, region_code, duties, is_supervising_office, active)
VALUES ('hefei-hrss', '市人社局', 'city', '340100', '', false, true);
INSERT INTO person (department_id, name, contact, roles, active)
SELECT id, '王芳', '', ARRAY['operator'], true FROM department;
INSERT INTO api_key (department_id, person_id, client_name, label, prefix, key_hash)
SELECT d.id, NULL, 'crm', '', 'gvk_a', 'hash-a' FROM department d
UNION ALL
SELECT p.department_id, p.id, NULL, '', 'gvk_b', 'hash-b' FROM person p;
"""


async def test_existing_client_keys_migrate_to_responder(server_url: str) -> None:
    name = f"govinbox_roles_{uuid.uuid4().hex[:12]}"
    url = embedded.create_database(server_url, name)
    try:
        config = db.alembic_config(url)
        await asyncio.to_thread(command.upgrade, config, "0015")
        with psycopg.connect(embedded.libpq_url(url)) as connection:
            connection.execute(OLD_KEYS)
        await asyncio.to_thread(command.upgrade, config, "0016")
        with psycopg.connect(embedded.libpq_url(url)) as connection:
            keys = connection.execute("SELECT prefix, roles FROM api_key ORDER BY prefix")
            # The client system answers as a responder; the person's key keeps the person's roles.
            assert keys.fetchall() == [("gvk_a", ["responder"]), ("gvk_b", None)]
        await asyncio.to_thread(command.upgrade, config, "head")
    finally:
        embedded.drop_database(server_url, name)
