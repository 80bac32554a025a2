from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.accounts.models import Account
from app.departments.models import Department
from app.inquiries import service
from app.inquiries.models import TRANSITIONS, InquiryStatus
from tests import factories

CITIZEN = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"


@pytest.fixture
async def department(session: AsyncSession) -> Department:
    return await factories.department(session, "hefei-hrss")


@pytest.fixture
async def account(session: AsyncSession, department: Department) -> Account:
    return await factories.account(session, department)


@pytest.fixture
async def headers(session: AsyncSession, department: Department) -> dict[str, str]:
    return {"Authorization": f"Bearer {await factories.api_key(session, department)}"}


async def test_reference_numbers_carry_the_china_date_and_a_sequence(
    session: AsyncSession, account: Account
) -> None:
    # 2026-11-24 23:30 UTC is already 25 November in Beijing.
    late = datetime(2026, 11, 24, 23, 30, tzinfo=UTC)
    first = await factories.inquiry(
        session, account, received_at=datetime(2026, 11, 24, 1, tzinfo=UTC)
    )
    second = await factories.inquiry(
        session, account, citizen_id="o2", received_at=datetime(2026, 11, 24, 2, tzinfo=UTC)
    )
    next_day = await factories.inquiry(session, account, citizen_id="o3", received_at=late)
    references = [first.reference, second.reference, next_day.reference]
    assert [r[:11] for r in references] == ["WX20261124-", "WX20261124-", "WX20261125-"]
    numbers = [int(r[11:]) for r in references]
    assert all(len(r) >= 17 for r in references)  # at least six digits
    assert numbers == sorted(set(numbers))  # unique and increasing, never reused


async def test_department_reads_its_own_without_the_citizen_id(
    client: httpx.AsyncClient,
    session: AsyncSession,
    account: Account,
    department: Department,
    headers: dict[str, str],
) -> None:
    inquiry = await factories.inquiry(
        session, account, department=department, content="怎么补缴社保？"
    )
    response = await client.get(f"/api/v1/inquiries/{inquiry.reference}", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert (body["status"], body["account_code"], body["kind"]) == (
        "assigned",
        "hefei-wechat",
        "other",
    )
    assert [m["content"] for m in body["messages"]] == ["怎么补缴社保？"]
    assert CITIZEN not in response.text


async def test_another_departments_inquiry_is_not_found(
    client: httpx.AsyncClient, session: AsyncSession, account: Account, headers: dict[str, str]
) -> None:
    other = await factories.department(session, "hefei-transport")
    theirs = await factories.inquiry(session, account, department=other)
    unassigned = await factories.inquiry(session, account, citizen_id="o2")
    for reference in (theirs.reference, unassigned.reference, "WX20991231-999999"):
        response = await client.get(f"/api/v1/inquiries/{reference}", headers=headers)
        assert response.status_code == 404
        assert response.json()["detail"] == f"No inquiry {reference} for this department."
        assert (
            await client.post(
                f"/api/v1/inquiries/{reference}/invalid",
                json={"reason": "垃圾信息"},
                headers=headers,
            )
        ).status_code == 404


async def test_forbidden_transition_says_what_is_allowed(
    client: httpx.AsyncClient,
    session: AsyncSession,
    account: Account,
    department: Department,
    headers: dict[str, str],
) -> None:
    inquiry = await factories.inquiry(session, account, department=department)
    response = await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/close", json={"reason": "已处理"}, headers=headers
    )
    assert response.status_code == 409
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == "/problems/transition-not-allowed"
    assert body["current_status"] == "assigned"
    assert body["allowed"] == ["invalid", "merged", "referred", "replied"]
    assert "cannot become closed" in body["detail"]
    # …and, as actions, what may be done now (issue 14).
    assert {"reply", "sign_for", "merge", "transfer", "note"} <= set(body["allowed_actions"])
    assert "close" not in body["allowed_actions"]


async def test_invalid_needs_a_reason_and_is_audited(
    client: httpx.AsyncClient,
    session: AsyncSession,
    account: Account,
    department: Department,
    headers: dict[str, str],
) -> None:
    inquiry = await factories.inquiry(session, account, department=department)
    missing = await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/invalid", json={}, headers=headers
    )
    assert missing.status_code == 422
    done = await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/invalid",
        json={"reason": "广告骚扰"},
        headers=headers,
    )
    assert done.json()["status"] == "invalid"
    events = (
        await client.get(f"/api/v1/inquiries/{inquiry.reference}/events", headers=headers)
    ).json()["items"]
    assert [(e["action"], e["from_status"], e["to_status"]) for e in events] == [
        ("created", None, "new"),
        ("status_changed", "new", "assigned"),
        ("status_changed", "assigned", "invalid"),
    ]
    assert events[-1]["reason"] == "广告骚扰"
    assert events[-1]["actor"] == "client:test-client (hefei-hrss)"
    again = await client.post(
        f"/api/v1/inquiries/{inquiry.reference}/invalid", json={"reason": "再来"}, headers=headers
    )
    assert again.status_code == 409
    assert again.json()["allowed"] == []


async def test_reply_then_close(
    session: AsyncSession, account: Account, department: Department
) -> None:
    inquiry = await factories.inquiry(session, account, department=department)
    service.transition(session, inquiry, InquiryStatus.replied, actor="test", reason="答复已送达")
    service.transition(session, inquiry, InquiryStatus.closed, actor="test", reason="办结")
    assert inquiry.status is InquiryStatus.closed


# Written out here on purpose: a wrong TRANSITIONS table must not pass by agreeing with itself.
ALLOWED = {
    ("new", "assigned"),
    ("new", "referred"),
    ("new", "invalid"),
    ("assigned", "replied"),
    ("assigned", "referred"),
    ("assigned", "invalid"),
    ("replied", "closed"),
    ("new", "merged"),
    ("assigned", "merged"),
    ("merged", "new"),  # the same-day undo, back to the status it had
    ("merged", "assigned"),
}


@pytest.mark.parametrize("current", list(InquiryStatus))
def test_transition_table_is_enforced(current: InquiryStatus) -> None:
    for target in InquiryStatus:
        if (current.value, target.value) in ALLOWED:
            service.check_transition(current, target)
        else:
            with pytest.raises(service.TransitionNotAllowed):
                service.check_transition(current, target)
    assert {(current.value, t.value) for t in TRANSITIONS[current]} <= ALLOWED


def test_ended_statuses_allow_nothing() -> None:
    assert {s for s, allowed in TRANSITIONS.items() if not allowed} == {
        InquiryStatus.closed,
        InquiryStatus.referred,
        InquiryStatus.invalid,
    }


async def test_a_supervising_office_reads_its_region_but_cannot_act(
    client: httpx.AsyncClient, session: AsyncSession, account: Account, department: Department
) -> None:
    office = await factories.department(session, "hefei-office", is_supervising_office=True)
    province = await factories.department(
        session, "ah-office", level="province", region_code="340000", is_supervising_office=True
    )
    elsewhere = await factories.department(
        session, "wuhu-office", level="city", region_code="340200", is_supervising_office=True
    )
    inquiry = await factories.inquiry(session, account, department=department)
    for reader in (office, province):
        headers = {"Authorization": f"Bearer {await factories.api_key(session, reader)}"}
        read = await client.get(f"/api/v1/inquiries/{inquiry.reference}", headers=headers)
        assert read.status_code == 200, reader.code
        act = await client.post(
            f"/api/v1/inquiries/{inquiry.reference}/invalid",
            json={"reason": "越权"},
            headers=headers,
        )
        assert act.status_code == 403, reader.code  # it may read it, not act on it
        assert act.json()["type"] == "/problems/not-the-holder"
    headers = {"Authorization": f"Bearer {await factories.api_key(session, elsewhere)}"}
    assert (
        await client.get(f"/api/v1/inquiries/{inquiry.reference}", headers=headers)
    ).status_code == 404


async def test_the_audit_trail_refuses_updates_and_deletes(
    session: AsyncSession, account: Account
) -> None:
    inquiry = await factories.inquiry(session, account)
    for statement in ("UPDATE inquiry_event SET reason = 'x'", "DELETE FROM inquiry_event"):
        with pytest.raises(DBAPIError, match="append-only"):
            async with session.begin_nested():
                await session.execute(text(statement))
    assert len((await session.scalars(service.events(inquiry))).all()) == 1
