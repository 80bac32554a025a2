"""Returns (退单), transfers and the supervising office's binding arbitration."""

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from app.departments.models import Department
from app.inquiries.models import Inquiry
from tests import factories


@pytest.fixture
async def office(session: AsyncSession) -> Department:
    return await factories.department(session, "hefei-office", is_supervising_office=True)


@pytest.fixture
async def hrss(session: AsyncSession) -> Department:
    return await factories.department(session, "hefei-hrss")


@pytest.fixture
async def urban(session: AsyncSession) -> Department:
    return await factories.department(session, "hefei-urban")


@pytest.fixture
async def dispatcher(session: AsyncSession) -> Department:
    """The account's owner, below the office: it dispatches and receives returns."""
    return await factories.department(session, "hefei-press")


@pytest.fixture
async def inquiry(
    session: AsyncSession, dispatcher: Department, hrss: Department, office: Department
) -> Inquiry:
    account = await factories.account(session, dispatcher)
    return await factories.inquiry(session, account, department=hrss, content="楼下工地夜间施工")


async def key(session: AsyncSession, department: Department) -> dict[str, str]:
    return {"Authorization": f"Bearer {await factories.api_key(session, department)}"}


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


async def test_return_goes_back_to_the_dispatcher_with_reason_and_note(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    dispatcher: Department,
) -> None:
    hrss_key = await key(session, hrss)
    missing = await act(client, inquiry, "return", {"reason": "not_our_duty"}, hrss_key)
    assert missing.status_code == 422  # a note is required
    returned = await act(
        client, inquiry, "return", {"reason": "not_our_duty", "note": "噪音属于城管职责"}, hrss_key
    )
    assert returned.status_code == 200
    await session.refresh(inquiry)
    assert inquiry.department_id == dispatcher.id
    events = (
        await client.get(
            f"/api/v1/inquiries/{inquiry.reference}/events", headers=await key(session, dispatcher)
        )
    ).json()["items"]
    assert (events[-1]["action"], events[-1]["reason"]) == ("returned", "噪音属于城管职责")


async def test_a_transfer_is_audited(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    urban: Department,
) -> None:
    moved = await act(
        client,
        inquiry,
        "transfer",
        {"department_code": "hefei-urban", "note": "转城管"},
        await key(session, hrss),
    )
    assert moved.status_code == 200
    await session.refresh(inquiry)
    assert inquiry.department_id == urban.id
    to_self = await act(
        client,
        inquiry,
        "transfer",
        {"department_code": "hefei-urban", "note": "x2"},
        await key(session, urban),
    )
    assert to_self.status_code == 422


async def test_two_disclaimers_go_to_the_office_whose_decision_binds(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    urban: Department,
    dispatcher: Department,
    office: Department,
) -> None:
    await act(
        client,
        inquiry,
        "return",
        {"reason": "not_our_duty", "note": "不归人社"},
        await key(session, hrss),
    )
    dispatcher_key = await key(session, dispatcher)
    assert (
        await act(client, inquiry, "return", {"reason": "other", "note": "退回"}, dispatcher_key)
    ).status_code == 409
    await act(
        client,
        inquiry,
        "transfer",
        {"department_code": "hefei-urban", "note": "转城管"},
        dispatcher_key,
    )
    second = await act(
        client,
        inquiry,
        "return",
        {"reason": "not_our_duty", "note": "不归城管"},
        await key(session, urban),
    )
    assert second.status_code == 200
    await session.refresh(inquiry)
    assert (inquiry.department_id, inquiry.arbitration_office_id) == (office.id, office.id)
    office_key = await key(session, office)
    # Only the office decides, and not by a plain transfer.
    assert (
        await act(
            client,
            inquiry,
            "arbitrate",
            {"department_code": "hefei-urban", "note": "越权"},
            dispatcher_key,
        )
    ).status_code == 404
    assert (
        await act(
            client,
            inquiry,
            "transfer",
            {"department_code": "hefei-urban", "note": "x2"},
            office_key,
        )
    ).status_code == 409
    decided = await act(
        client,
        inquiry,
        "arbitrate",
        {"department_code": "hefei-urban", "note": "经协调由城管办理"},
        office_key,
    )
    assert decided.status_code == 200
    await session.refresh(inquiry)
    assert inquiry.department_id == urban.id
    assert inquiry.arbitrated_at is not None
    binding = await act(
        client,
        inquiry,
        "return",
        {"reason": "not_our_duty", "note": "还是不归我们"},
        await key(session, urban),
    )
    assert binding.status_code == 409
    assert "binds" in binding.json()["detail"]
    again = await act(
        client,
        inquiry,
        "arbitrate",
        {"department_code": "hefei-hrss", "note": "改主意"},
        office_key,
    )
    assert again.status_code == 404  # it is no longer the office's inquiry


async def test_the_office_can_refer_it_out(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    urban: Department,
    dispatcher: Department,
    office: Department,
) -> None:
    await act(
        client,
        inquiry,
        "return",
        {"reason": "not_our_duty", "note": "不归人社"},
        await key(session, hrss),
    )
    await act(
        client,
        inquiry,
        "transfer",
        {"department_code": "hefei-urban", "note": "转城管"},
        await key(session, dispatcher),
    )
    await act(
        client,
        inquiry,
        "return",
        {"reason": "not_our_duty", "note": "不归城管"},
        await key(session, urban),
    )
    referred = await act(
        client,
        inquiry,
        "arbitrate",
        {"entry_code": "hotline-12345", "note": "转12345"},
        await key(session, office),
    )
    assert referred.json()["status"] == "referred"
