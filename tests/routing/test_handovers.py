"""Hand-overs (issue 12, defects 2 to 4): transfers count as disclaimers and stay in the region
of the account's supervising office; who holds an inquiry is first-class state; deactivating a
department hands its open work on."""

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.deadlines.models import DeadlineExtension
from app.departments.models import Department
from app.inquiries.models import Inquiry, InquiryAssignment, InquiryStatus
from app.routing import service as routing
from app.routing.schemas import RoutingRuleCreate
from tests import factories


@pytest.fixture
async def office(session: AsyncSession) -> Department:
    return await factories.department(session, "hefei-office", is_supervising_office=True)


@pytest.fixture
async def hrss(session: AsyncSession, office: Department) -> Department:
    return await factories.department(session, "hefei-hrss")


@pytest.fixture
async def urban(session: AsyncSession, office: Department) -> Department:
    return await factories.department(session, "hefei-urban")


@pytest.fixture
async def inquiry(session: AsyncSession, office: Department, hrss: Department) -> Inquiry:
    """Routed by a rule to hefei-hrss; the account belongs to hefei-press, under the office."""
    press = await factories.department(session, "hefei-press")
    account = await factories.account(session, press)
    await routing.create_rule(
        session,
        data=RoutingRuleCreate(
            name="social-insurance",
            priority=1,
            keywords=["社保"],
            department_code="hefei-hrss",
            explanation="社保缴费问题属于市人社局职责",
        ),
    )
    inquiry = await factories.inquiry(session, account, content="社保断缴怎么办")
    assert await routing.route(session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[])
    assert inquiry.department_id == hrss.id
    return inquiry


async def headers(session: AsyncSession, department: Department) -> dict[str, str]:
    return {"Authorization": f"Bearer {await factories.api_key(session, department)}"}


async def transfer(
    client: httpx.AsyncClient, inquiry: Inquiry, to: str, by: dict[str, str]
) -> httpx.Response:
    return await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/transfer",
        json={"department_code": to, "note": f"转{to}办理"},
        headers=by,
    )


async def test_transfers_count_as_disclaimers_so_nothing_ping_pongs(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    urban: Department,
    office: Department,
) -> None:
    # Before: two departments could pass it back and forth for ever.
    assert (await transfer(client, inquiry, "hefei-urban", await headers(session, hrss))).is_success
    back = await transfer(client, inquiry, "hefei-hrss", await headers(session, urban))
    assert back.status_code == 200
    await session.refresh(inquiry)
    # The second disclaimer: the supervising office decides, not hefei-hrss.
    assert (inquiry.department_id, inquiry.arbitration_office_id) == (office.id, office.id)
    assert back.json()["assignment"]["decision"] == "sent_to_arbitration"


@pytest.mark.usefixtures("urban")
async def test_hand_overs_stay_in_the_supervising_offices_region(
    client: httpx.AsyncClient, session: AsyncSession, inquiry: Inquiry, hrss: Department
) -> None:
    # Before: a department could transfer to another city, out of the owning office's sight.
    await factories.department(session, "wuhu-hrss", region_code="340200")
    away = await transfer(client, inquiry, "wuhu-hrss", await headers(session, hrss))
    assert away.status_code == 422
    assert away.json()["type"] == "/problems/invalid-transfer-target"
    await session.refresh(inquiry)
    assert inquiry.department_id == hrss.id


async def test_the_current_holder_and_routings_decision_are_both_readable(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    urban: Department,
) -> None:
    # Before: after a transfer the inquiry still said only why routing chose hefei-hrss, and
    # the holder's history lived in audit-event JSON.
    moved = await transfer(client, inquiry, "hefei-urban", await headers(session, hrss))
    assert moved.status_code == 200
    body = moved.json()
    assert body["routing_explanation"] == "社保缴费问题属于市人社局职责"
    assert body["assignment"]["department_code"] == "hefei-urban"
    assert body["assignment"]["decision"] == "transferred"
    assert body["assignment"]["reason"] == "转hefei-urban办理"
    history = list(
        await session.scalars(
            select(InquiryAssignment)
            .where(InquiryAssignment.inquiry_id == inquiry.id)
            .order_by(InquiryAssignment.id)
        )
    )
    assert [(a.department_id, a.decision, a.until is None) for a in history] == [
        (hrss.id, "routed", False),
        (urban.id, "transferred", True),
    ]
    # routing-wrong is for the department routing chose, read from the assignment.
    wrong = await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/routing-wrong",
        json={"reason": "不是我们的职责"},
        headers=await headers(session, urban),
    )
    assert wrong.status_code == 409


async def test_deactivating_a_department_hands_its_open_work_on(
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    office: Department,
) -> None:
    # Before: its open inquiries and pending extensions stayed with a department nobody could
    # act for.
    asked = await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/extension",
        json={"working_days": 2, "reason": "需要现场核查"},
        headers=await headers(session, hrss),
    )
    assert asked.status_code == 200
    assert (await admin.delete("/api/v1/admin/departments/hefei-hrss")).status_code == 200
    await session.refresh(inquiry)
    press = await session.scalar(select(Department).where(Department.code == "hefei-press"))
    assert press is not None
    assert inquiry.department_id == press.id  # the dispatcher
    held = (
        await session.scalars(
            select(InquiryAssignment).where(
                InquiryAssignment.inquiry_id == inquiry.id, InquiryAssignment.until.is_(None)
            )
        )
    ).one()
    assert (held.decision, held.decided_by) == ("handed_back", "admin")
    extension = (await session.scalars(select(DeadlineExtension))).one()
    assert extension.office_id == office.id


async def test_routing_never_falls_back_to_an_inactive_owner(
    admin: httpx.AsyncClient, session: AsyncSession, office: Department
) -> None:
    press = await factories.department(session, "hefei-press")
    account = await factories.account(session, press)
    assert (await admin.delete("/api/v1/admin/departments/hefei-press")).status_code == 200
    await session.refresh(press)  # the API wrote it through a session of its own
    inquiry = await factories.inquiry(session, account, content="你好")
    assert await routing.route(session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[])
    assert inquiry.department_id == office.id  # the nearest active office triages it


async def test_answered_work_is_handed_on_too(
    admin: httpx.AsyncClient, session: AsyncSession, inquiry: Inquiry, hrss: Department
) -> None:
    # Review: a `replied` inquiry (not yet closed) stayed with the deactivated department, and
    # nobody could close it.
    inquiry.status = InquiryStatus.replied
    await session.flush()
    assert (await admin.delete("/api/v1/admin/departments/hefei-hrss")).status_code == 200
    await session.refresh(inquiry)
    assert inquiry.department_id != hrss.id


async def test_a_disclaimer_is_judged_when_it_happens(
    client: httpx.AsyncClient,
    admin: httpx.AsyncClient,
    session: AsyncSession,
    urban: Department,
    office: Department,
) -> None:
    # Review: counted against today's dispatcher, the old owner's own dispatch became a
    # disclaimer once the owner was deactivated, and one return went straight to arbitration.
    press = await factories.department(session, "hefei-press")
    account = await factories.account(session, press)
    inquiry = await factories.inquiry(session, account, content="你好")
    assert await routing.route(session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=[])
    assert (
        await transfer(client, inquiry, "hefei-urban", await headers(session, press))
    ).is_success
    assert (await admin.delete("/api/v1/admin/departments/hefei-press")).status_code == 200
    returned = await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/return",
        json={"reason": "not_our_duty", "note": "不归城管"},
        headers=await headers(session, urban),
    )
    assert returned.status_code == 200, returned.text
    await session.refresh(inquiry)
    assert (inquiry.department_id, inquiry.arbitration_office_id) == (office.id, None)
