"""Returns (退单), transfers and the supervising office's binding arbitration."""

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.departments.models import Department
from app.inquiries.models import Inquiry
from tests import factories
from tests.conftest import Clock


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
    assert again.status_code == 403  # no longer the office's to act on, only to read


@pytest.mark.usefixtures("urban")
async def test_the_office_can_refer_it_out(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    dispatcher: Department,
    office: Department,
) -> None:
    await _to_arbitration(client, session, inquiry, hrss, dispatcher)
    referred = await act(
        client,
        inquiry,
        "arbitrate",
        {"entry_code": "hotline-12345", "note": "转12345"},
        await key(session, office),
    )
    assert referred.json()["status"] == "referred"


async def _to_arbitration(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    dispatcher: Department,
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
    urban = await session.scalar(select(Department).where(Department.code == "hefei-urban"))
    assert urban is not None
    await act(
        client,
        inquiry,
        "return",
        {"reason": "not_our_duty", "note": "不归城管"},
        await key(session, urban),
    )


@pytest.mark.usefixtures("urban")
async def test_while_the_office_arbitrates_it_decides_first(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    dispatcher: Department,
    office: Department,
) -> None:
    await _to_arbitration(client, session, inquiry, hrss, dispatcher)
    office_key = await key(session, office)
    for action, body in [
        ("invalid", {"reason": "算了吧"}),
        ("refer", {"entry_code": "hotline-12345"}),
        ("kind", {"kind": "report", "reason": "改一下"}),
    ]:
        response = await act(client, inquiry, action, body, office_key)
        assert response.status_code == 409, action
    read = await client.get(f"/api/v1/inquiries/{inquiry.reference}", headers=office_key)
    assert read.json()["awaiting_arbitration"] is True


async def test_the_decision_binds_the_department_it_names(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    dispatcher: Department,
    office: Department,
    urban: Department,
) -> None:
    await _to_arbitration(client, session, inquiry, hrss, dispatcher)
    await act(
        client,
        inquiry,
        "arbitrate",
        {"department_code": "hefei-urban", "note": "由城管办理"},
        await key(session, office),
    )
    urban_key = await key(session, urban)
    assert (
        await act(
            client,
            inquiry,
            "transfer",
            {"department_code": "hefei-hrss", "note": "转走"},
            urban_key,
        )
    ).status_code == 409
    assert (
        await act(client, inquiry, "refer", {"entry_code": "hotline-12345"}, urban_key)
    ).status_code == 409
    # It still does its work: an answer, then closing, are not changes of hands.
    read = await client.get(f"/api/v1/inquiries/{inquiry.reference}", headers=urban_key)
    assert read.json()["awaiting_arbitration"] is False


async def test_no_office_above_both_means_no_arbitration_yet(
    client: httpx.AsyncClient, session: AsyncSession
) -> None:
    lonely = await factories.department(session, "wuhu-press", region_code="340200")
    wuhu_hrss = await factories.department(session, "wuhu-hrss", region_code="340200")
    account = await factories.account(
        session, lonely, code="wuhu-wechat", wechat_original_id="gh_000000000007"
    )
    inquiry = await factories.inquiry(session, account, department=wuhu_hrss)
    await act(
        client,
        inquiry,
        "return",
        {"reason": "not_our_duty", "note": "非本单位职责"},
        await key(session, wuhu_hrss),
    )
    dispatched = await act(
        client,
        inquiry,
        "transfer",
        {"department_code": "wuhu-hrss", "note": "再转"},
        await key(session, lonely),
    )
    assert dispatched.status_code == 200  # the dispatcher's transfer disclaims nothing
    second = await act(
        client,
        inquiry,
        "return",
        {"reason": "not_our_duty", "note": "非本单位职责"},
        await key(session, wuhu_hrss),
    )
    assert second.status_code == 409
    assert "No supervising office" in second.json()["detail"]


async def test_transfers_and_returns_keep_the_due_time(
    client: httpx.AsyncClient, session: AsyncSession, inquiry: Inquiry, hrss: Department
) -> None:
    due = inquiry.received_at + timedelta(days=3)
    inquiry.reply_due_at = due
    await session.flush()
    await act(
        client,
        inquiry,
        "transfer",
        {"department_code": "hefei-urban", "note": "转城管"},
        await key(session, hrss),
    )
    await session.refresh(inquiry)
    assert inquiry.reply_due_at == due


async def test_a_return_comes_within_one_working_day_of_receipt(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    clock: Clock,
) -> None:
    # Received Tuesday 2026-11-24 (10:00 Beijing): the window ends Wednesday 23:59:59.
    clock.now = datetime(2026, 11, 25, 15, 59, tzinfo=UTC)
    late_but_in_time = await act(
        client,
        inquiry,
        "return",
        {"reason": "not_our_duty", "note": "不归人社"},
        await key(session, hrss),
    )
    assert late_but_in_time.status_code == 200


async def test_a_late_return_is_refused(
    client: httpx.AsyncClient,
    session: AsyncSession,
    inquiry: Inquiry,
    hrss: Department,
    clock: Clock,
) -> None:
    clock.now = datetime(2026, 11, 25, 16, 1, tzinfo=UTC)  # Thursday 00:01 in Beijing
    late = await act(
        client,
        inquiry,
        "return",
        {"reason": "not_our_duty", "note": "不归人社"},
        await key(session, hrss),
    )
    assert late.status_code == 409
    assert "return window closed" in late.json()["detail"]
