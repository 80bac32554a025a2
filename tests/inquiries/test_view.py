"""Reading one inquiry (issue 13): everything a clerk needs, the citizen as a pseudonym, and a
read log the office can ask for, at most once an hour per key, that is never a change."""

from datetime import datetime, timedelta

import httpx
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.inquiries.models import InquiryChange
from app.routing import service as routing
from app.routing.schemas import RoutingRuleCreate
from tests import factories
from tests.conftest import Clock

CITIZEN = "oyORnuP8q7ou2gfYjqLzSIWZf0rs"


async def test_one_inquiry_carries_its_clock_holder_and_replies_and_hides_the_citizen(
    client: httpx.AsyncClient, session: AsyncSession, clock: Clock
) -> None:
    office = await factories.department(session, "hefei-office", is_supervising_office=True)
    hrss = await factories.department(session, "hefei-hrss")
    account = await factories.account(session, office)
    await routing.create_rule(
        session,
        data=RoutingRuleCreate(
            name="hrss",
            priority=1,
            keywords=["社保"],
            department_code="hefei-hrss",
            explanation="社保缴费问题属于市人社局职责",
        ),
    )
    inquiry = await factories.inquiry(session, account, content="社保断缴了，家里着火了")
    assert await routing.route(
        session, inquiry_id=inquiry.id, now=inquiry.received_at, keywords=["着火"]
    )
    other = await factories.inquiry(session, account, content="你好", citizen_id="o_other")
    assert await routing.route(session, inquiry_id=other.id, now=other.received_at, keywords=[])
    hrss_key = {"Authorization": f"Bearer {await factories.api_key(session, hrss)}"}
    office_key = {"Authorization": f"Bearer {await factories.api_key(session, office)}"}
    changes_before = await session.scalar(select(func.count()).select_from(InquiryChange))

    answer = await client.get(f"/api/v1/inquiries/{inquiry.reference}", headers=hrss_key)
    assert answer.status_code == 200
    body = answer.json()
    assert CITIZEN not in answer.text
    assert body["citizen"].startswith("c-")
    assert body["messages"][0]["content"] == "社保断缴了，家里着火了"
    assert body["assignment"]["department_code"] == "hefei-hrss"
    assert body["routing_explanation"] == "社保缴费问题属于市人社局职责"
    clock_view = body["clock"]
    assert clock_view["reply_due_at"] == body["reply_due_at"]
    assert clock_view["deadline_unit"] == "working_days"
    assert clock_view["first_response_unit"] == "hours"  # urgent
    assert clock_view["calendar_version"]
    assert clock_view["pauses"] == []
    assert [reply["purpose"] for reply in body["replies"]] == ["urgent_advice"]
    assert body["links"]["events"].endswith("/events")
    # The same citizen keeps the same pseudonym; another citizen has another.
    again = (await client.get(f"/api/v1/inquiries/{inquiry.reference}", headers=hrss_key)).json()
    assert again["citizen"] == body["citizen"]
    other_view = await client.get(f"/api/v1/inquiries/{other.reference}", headers=office_key)
    assert other_view.json()["citizen"] != body["citizen"]

    # Reads are logged once an hour per key, are no change, and the office can ask.
    clock.advance(minutes=30)
    await client.get(f"/api/v1/inquiries/{inquiry.reference}", headers=hrss_key)
    clock.advance(hours=1)
    await client.get(f"/api/v1/inquiries/{inquiry.reference}", headers=hrss_key)
    assert await session.scalar(select(func.count()).select_from(InquiryChange)) == changes_before
    reads = await client.get(f"/api/v1/inquiries/{inquiry.reference}/reads", headers=office_key)
    assert reads.status_code == 200
    assert [entry["department_code"] for entry in reads.json()] == ["hefei-hrss", "hefei-hrss"]
    first, second = (datetime.fromisoformat(entry["at"]) for entry in reads.json())
    assert second - first >= timedelta(hours=1)
    refused = await client.get(f"/api/v1/inquiries/{inquiry.reference}/reads", headers=hrss_key)
    assert refused.status_code == 403
